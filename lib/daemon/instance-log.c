/* An instance's own log (instance-log.h). */
#include "daemon/instance-log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/daemon-log.h"

#define LOG_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)

/* The log, made log.1 first when it is full. */
static int open_for_append(int dirfd, size_t cap) {
  int fd = openat(dirfd, "log", LOG_FLAGS, 0600);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  if ((size_t)st.st_size < cap)
    return fd;
  close(fd);
  if (renameat(dirfd, "log", dirfd, "log.1") < 0)
    return -1;
  return openat(dirfd, "log", LOG_FLAGS | O_EXCL, 0600);
}

void instance_log_append(int dirfd, const char *text, size_t cap) {
  cleanup_close int fd = open_for_append(dirfd, cap);
  if (fd < 0)
    return;
  cleanup_free char *now = daemon_log_time();
  cleanup_free char *line = xasprintf("%s %s\n", now, text);
  ssize_t n;
  do
    n = write(fd, line, strlen(line));
  while (n < 0 && errno == EINTR);
}

/* The whole of one file beneath dirfd ("" when it does not exist). */
static int read_log_file(int dirfd, const char *name, char **out,
                         cell_error **err) {
  if (cell_read_file_at(dirfd, name, 4 * INSTANCE_LOG_MAX, out, NULL, err) == 0)
    return 0;
  if ((*err)->errnum != ENOENT)
    return -1;
  cell_error_free(err);
  *out = xstrdup("");
  return 0;
}

int instance_log_tail(int dirfd, size_t n, size_t max_bytes, char ***lines,
                      cell_error **err) {
  cleanup_free char *old = NULL, *cur = NULL;
  if (read_log_file(dirfd, "log.1", &old, err) < 0 ||
      read_log_file(dirfd, "log", &cur, err) < 0)
    return -1;
  cleanup_free char *all = xasprintf("%s%s", old, cur);
  /* From the end back: the last n lines that fit in max_bytes. */
  size_t end = strlen(all), start = end, count = 0;
  while (start > 0 && (n == 0 || count < n)) {
    size_t s = start - 1; /* the newline ending the line before */
    while (s > 0 && all[s - 1] != '\n')
      s--;
    if (end - s > max_bytes)
      break;
    start = s;
    count++;
  }
  char **out = xcalloc(count + 1, sizeof(*out));
  size_t i = 0;
  for (char *p = all + start; i < count && *p; i++) {
    char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    out[i] = xstrndup(p, len);
    p += len + (nl ? 1 : 0);
  }
  *lines = out;
  return 0;
}
