/* celld's log of operations (daemon-log.h). */
#include "daemon/daemon-log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

/* A client's op or name longer than this is cut: a line stays a line. */
#define LOG_VALUE_MAX 256

/* A pipe or a socket with a stalled reader would block a write; a
 * regular file or a terminal does not wait on anyone. */
static int make_nonblocking_if_stream(int fd, cell_error **err) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return cell_fail_errno(err, "fstat the log");
  if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
    return 0;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return cell_fail_errno(err, "make the log non-blocking");
  return 0;
}

int daemon_log_open(const char *path, int *fd, cell_error **err) {
  cleanup_close int out =
      path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
                  0640)
           : fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  if (out < 0)
    return path ? cell_fail_errno(err, "--log `%s`: open (give a file celld "
                                  "may write)", path)
                : cell_fail_errno(err, "log to standard error");
  if (make_nonblocking_if_stream(out, err) < 0)
    return -1;
  *fd = steal_fd(&out);
  return 0;
}

char *daemon_log_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char date[32];
  strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  return xasprintf("%s.%03ldZ", date, ts.tv_nsec / 1000000);
}

static bool plain_char(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || strchr("._:/@+-", ch) != NULL;
}

/* key=value, the value quoted (with \" \\ \n and \xHH) when it is not
 * plain, cut at LOG_VALUE_MAX bytes. */
static void put_value(FILE *out, const char *key, const char *value) {
  size_t len = strnlen(value, LOG_VALUE_MAX + 1);
  bool plain = len > 0;
  for (size_t i = 0; i < len && plain; i++)
    plain = plain_char((unsigned char)value[i]);
  fprintf(out, " %s=", key);
  if (plain && len <= LOG_VALUE_MAX) {
    fputs(value, out);
    return;
  }
  fputc('"', out);
  for (size_t i = 0; i < len && i < LOG_VALUE_MAX; i++) {
    unsigned char ch = (unsigned char)value[i];
    if (ch == '"' || ch == '\\')
      fprintf(out, "\\%c", ch);
    else if (ch == '\n')
      fputs("\\n", out);
    else if (ch < 0x20 || ch >= 0x7f)
      fprintf(out, "\\x%02x", ch);
    else
      fputc(ch, out);
  }
  if (len > LOG_VALUE_MAX)
    fputs("...", out);
  fputc('"', out);
}

char *daemon_log_format(const struct op_log_entry *e, const char *time) {
  char *line = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&line, &size);
  if (!out)
    abort();
  fprintf(out, "%s uid=%u pid=%d", time, (unsigned)e->uid, (int)e->pid);
  put_value(out, "op", e->op ? e->op : "-");
  if (e->name)
    put_value(out, "name", e->name);
  if (e->error) {
    /* celld's message, but it may quote what the client sent. */
    put_value(out, "error", e->error);
    if (e->code)
      put_value(out, "code", e->code);
  } else {
    fputs(" ok", out);
  }
  fputc('\n', out);
  fclose(out);
  return line;
}

void daemon_log_op(int fd, const struct op_log_entry *e) {
  if (fd < 0)
    return;
  cleanup_free char *now = daemon_log_time();
  cleanup_free char *line = daemon_log_format(e, now);
  /* One write: O_APPEND keeps lines of other writers whole.  A short or
   * failed write (ENOSPC, EAGAIN) loses this line, and celld goes on. */
  ssize_t n;
  do
    n = write(fd, line, strlen(line));
  while (n < 0 && errno == EINTR);
}
