#include "base/util.h"
#include "base/syscalls.h"

#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    abort();
  return p;
}

void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL)
    abort();
  return p;
}

void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (p == NULL)
    abort();
  return p;
}

char *xstrdup(const char *s) {
  char *r = strdup(s ? s : "");
  if (r == NULL)
    abort();
  return r;
}

char *xstrndup(const char *s, size_t n) {
  char *r = strndup(s, n);
  if (r == NULL)
    abort();
  return r;
}

char *xasprintf(const char *fmt, ...) {
  char *r = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&r, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  return r;
}

void cell_strv_free(char **v) {
  if (v == NULL)
    return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

size_t cell_strv_len(char *const *v) {
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

char **cell_strv_dup(char *const *v) {
  if (v == NULL)
    return NULL;
  size_t n = cell_strv_len(v);
  char **r = xcalloc(n + 1, sizeof(char *));
  for (size_t i = 0; i < n; i++)
    r[i] = xstrdup(v[i]);
  return r;
}

void cell_strv_push(char ***v, const char *s) {
  size_t n = cell_strv_len(*v);
  *v = xrealloc(*v, (n + 2) * sizeof(char *));
  (*v)[n] = xstrdup(s);
  (*v)[n + 1] = NULL;
}

ssize_t cell_write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  size_t done = 0;
  while (done < len) {
    ssize_t r = write(fd, p + done, len - done);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    done += (size_t)r;
  }
  return (ssize_t)done;
}

ssize_t cell_read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  size_t done = 0;
  while (done < len) {
    ssize_t r = read(fd, p + done, len - done);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0)
      break;
    done += (size_t)r;
  }
  return (ssize_t)done;
}

int cell_read_file_at(int dirfd, const char *path, size_t max, char **out,
                      size_t *len, cell_error **err) {
  if (max == 0)
    max = 64u << 20;
  cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  size_t cap = 4096, n = 0;
  cleanup_free char *buf = xmalloc(cap + 1);
  for (;;) {
    if (n == cap) {
      if (cap >= max)
        return cell_fail(err, EFBIG, "read `%s`", path);
      cap *= 2;
      buf = xrealloc(buf, cap + 1);
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return cell_fail_errno(err, "read `%s`", path);
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  if (len)
    *len = n;
  *out = steal_pointer(&buf);
  return 0;
}

/* name may be a path: the temporary file goes beside it, in its directory,
 * which is the one to fsync when durable. */
static int write_atomic_in_dir(int dirfd, const char *name, const void *data,
                               size_t len, mode_t mode, bool durable,
                               cell_error **err) {
  cleanup_free char *tmp = xasprintf(".%s.tmp", name);
  cleanup_close int fd =
      openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return cell_fail_errno(err, "create `%s`", tmp);
  if (cell_write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0)) {
    int e = errno;
    unlinkat(dirfd, tmp, 0);
    return cell_fail(err, e, "write `%s`", tmp);
  }
  if (renameat(dirfd, tmp, dirfd, name) < 0) {
    int e = errno;
    unlinkat(dirfd, tmp, 0);
    return cell_fail(err, e, "rename `%s`", tmp);
  }
  /* Make the rename itself durable. */
  if (durable)
    fsync(dirfd);
  return 0;
}

static int write_atomic_at(int dirfd, const char *name, const void *data,
                           size_t len, mode_t mode, bool durable,
                           cell_error **err) {
  const char *slash = strrchr(name, '/');
  if (slash == NULL && dirfd != AT_FDCWD)
    return write_atomic_in_dir(dirfd, name, data, len, mode, durable, err);
  cleanup_free char *dir =
      slash == NULL ? xstrdup(".")
                    : xstrndup(name, slash == name ? 1 : (size_t)(slash - name));
  cleanup_close int dfd =
      openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return cell_fail_errno(err, "open directory `%s`", dir);
  return write_atomic_in_dir(dfd, slash ? slash + 1 : name, data, len, mode,
                             durable, err);
}

int cell_write_file_atomic_at(int dirfd, const char *name, const void *data,
                              size_t len, mode_t mode, cell_error **err) {
  return write_atomic_at(dirfd, name, data, len, mode, true, err);
}

int cell_replace_file_at(int dirfd, const char *name, const void *data,
                         size_t len, mode_t mode, cell_error **err) {
  return write_atomic_at(dirfd, name, data, len, mode, false, err);
}

int cell_write_pid_file(const char *path, pid_t pid, cell_error **err) {
  if (path == NULL)
    return 0;
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
  if (cell_replace_file_at(AT_FDCWD, path, buf, (size_t)n, 0644, err) < 0)
    return cell_error_wrap(err, "--pid-file `%s`", path);
  return 0;
}

int cell_write_knob(const char *path, const char *data, size_t len,
                    cell_error **err) {
  cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  if (cell_write_all(fd, data, len) < 0)
    return cell_fail_errno(err, "write `%s`", path);
  return 0;
}

int cell_mkdir_p(const char *path, mode_t mode, cell_error **err) {
  cleanup_free char *p = xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST)
      return cell_fail_errno(err, "mkdir `%s`", p);
    *s = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", p);
  return 0;
}

int cell_rm_rf_at(int dirfd, const char *name, cell_error **err) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT)
      return 0;
    return cell_fail_errno(err, "stat `%s`", name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
      return cell_fail_errno(err, "unlink `%s`", name);
    return 0;
  }
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", name);
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return cell_fail_errno(err, "opendir `%s`", name);
  }
  struct dirent *de;
  int ret = 0;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    struct stat cst;
    if (fstatat(fd, de->d_name, &cst, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISDIR(cst.st_mode) && cst.st_dev != st.st_dev)
      continue; /* never descend into another mount */
    if (cell_rm_rf_at(fd, de->d_name, err) < 0) {
      ret = -1;
      break;
    }
  }
  closedir(d);
  if (ret < 0)
    return ret;
  if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return cell_fail_errno(err, "rmdir `%s`", name);
  return 0;
}

/* The start time of pid (field 22 of /proc/PID/stat): 0 and *gone when
 * the process is gone or a zombie, 0 and !*gone when /proc could not tell. */
static unsigned long long read_start_time(pid_t pid, bool *gone) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  *gone = false;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *gone = errno == ENOENT || errno == ESRCH;
    return 0;
  }
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  int read_errno = errno;
  close(fd);
  if (n <= 0) {
    *gone = n == 0 || read_errno == ESRCH;
    return 0;
  }
  buf[n] = '\0';
  /* comm may contain spaces and parens: parse after the last ')'. */
  char *p = strrchr(buf, ')');
  errno = EIO; /* for the returns below: /proc/PID/stat is not as expected */
  if (p == NULL)
    return 0;
  p += 2; /* now at field 3 (state) */
  if (*p == 'Z' || *p == 'X') {
    *gone = true;
    return 0;
  }
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (p == NULL)
      return 0;
    p++;
  }
  return strtoull(p, NULL, 10);
}

unsigned long long cell_proc_start_time(pid_t pid) {
  bool gone;
  unsigned long long st = read_start_time(pid, &gone);
  if (st == 0 && gone)
    errno = ESRCH;
  return st;
}

bool cell_proc_alive(pid_t pid, unsigned long long start_time) {
  if (pid <= 0)
    return false;
  bool gone;
  unsigned long long st = read_start_time(pid, &gone);
  /* When /proc cannot tell, the process counts as alive: taking a running
   * container for a stopped one would let delete remove it from under its
   * processes. */
  if (st == 0)
    return !gone;
  return st == start_time;
}

int cell_pidfd_open(pid_t pid) { return sys_pidfd_open(pid, 0); }

static int cmp_int(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

/* close_range(2) over the gaps between the kept fds: no /proc needed (the
 * container process calls this after pivot_root), no fd missed. */
void cell_close_fds_from(int from, const int *keep, size_t nkeep) {
  int sorted[16];
  size_t n = 0;
  for (size_t i = 0; i < nkeep && n < sizeof(sorted) / sizeof(sorted[0]); i++)
    if (keep[i] >= from)
      sorted[n++] = keep[i];
  qsort(sorted, n, sizeof(int), cmp_int);
  unsigned lo = (unsigned)from;
  for (size_t i = 0; i < n; i++) {
    if ((unsigned)sorted[i] > lo)
      sys_close_range(lo, (unsigned)sorted[i] - 1, 0);
    lo = (unsigned)sorted[i] + 1;
  }
  sys_close_range(lo, ~0U, 0);
}

bool cell_parse_ll(const char *s, long long min, long long max, long long *out) {
  if (s == NULL || *s == '\0')
    return false;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    return false;
  *out = v;
  return true;
}

/* The UTC date of a day count since 1970-01-01 (the proleptic Gregorian
 * calendar, in 400-year eras). */
static void civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d) {
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  unsigned doe = (unsigned)(days - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Not gmtime_r: glibc reads the time zone (/etc/localtime) at its first
 * call, on every container start, for a UTC time that needs none. */
char *cell_rfc3339(const struct timespec *t) {
  struct timespec ts = *t;
  int64_t secs = ts.tv_sec;
  int64_t days = secs / 86400, rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  return xasprintf("%04lld-%02u-%02uT%02d:%02d:%02d.%09ldZ", (long long)y, m,
                   d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60),
                   ts.tv_nsec);
}

char *cell_rfc3339_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return cell_rfc3339(&ts);
}

void cell_reset_signals(void) {
  /* The raw syscall: glibc refuses the two real-time signals it reserves
   * for itself, and an ignored one would still be inherited. */
  struct kernel_sigaction dfl = {.handler = SIG_DFL};
  for (int sig = 1; sig < NSIG; sig++)
    sys_rt_sigaction(sig, &dfl, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

void cell_msg_attach_fds(struct msghdr *mh, union cell_fd_control *ctl,
                         const int *fds, size_t n) {
  if (n == 0)
    return;
  memset(ctl, 0, sizeof(*ctl));
  mh->msg_control = ctl->buf;
  mh->msg_controllen = CMSG_SPACE(n * sizeof(int));
  struct cmsghdr *c = CMSG_FIRSTHDR(mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(n * sizeof(int));
  memcpy(CMSG_DATA(c), fds, n * sizeof(int));
}

/* The whole payload, the fd riding on the first sendmsg only (as the spec
 * asks when the data takes several calls). */
int cell_send_with_fd(int sock, const char *data, size_t len, int fd) {
  bool fd_sent = false;
  while (len > 0) {
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    union cell_fd_control control;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    cell_msg_attach_fds(&mh, &control, &fd, fd_sent ? 0 : 1);
    ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    fd_sent = true;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}


/* The multiplier of a size's unit suffix ("", K, M, G, T, each alone or
 * with "B" or "iB"; all powers of 1024), or 0 when it is none of them. */
static long long size_unit(const char *u) {
  static const char units[] = "kmgt";
  if (*u == '\0')
    return 1;
  const char *at = strchr(units, *u | 0x20);
  if (!at || *at == '\0')
    return 0;
  if (u[1] != '\0' && strcmp(u + 1, "iB") != 0 && strcmp(u + 1, "B") != 0)
    return 0;
  return 1LL << (10 * (at - units + 1));
}

/* "1.5G": the whole part, then up to 9 digits of fraction, scaled by the
 * unit in integers (a double would round 8E-ish sizes).  A fraction needs
 * a unit: half a byte means nothing. */
bool cell_parse_size(const char *s, long long *out) {
  if (!isdigit((unsigned char)*s))
    return false;
  char *end;
  errno = 0;
  long long whole = strtoll(s, &end, 10);
  if (errno)
    return false;
  long long frac = 0, scale = 1;
  if (*end == '.') {
    end++;
    if (!isdigit((unsigned char)*end))
      return false;
    for (; isdigit((unsigned char)*end); end++) {
      if (scale >= 1000000000)
        return false;
      frac = frac * 10 + (*end - '0');
      scale *= 10;
    }
  }
  long long mul = size_unit(end);
  if (mul == 0 || (scale > 1 && mul == 1) || whole > INT64_MAX / mul)
    return false;
  /* frac * mul / scale, without overflow: mul is 1024 * m with m <= 2^30
   * and frac < 10^9, so frac * m fits in 63 bits. */
  long long part = 0;
  if (scale > 1) {
    long long fm = frac * (mul / 1024);
    part = fm / scale * 1024 + fm % scale * 1024 / scale;
  }
  if (whole * mul > INT64_MAX - part)
    return false;
  *out = whole * mul + part;
  return true;
}

char *cell_find_in_path(const char *name) {
  const char *path = getenv("PATH");
  cleanup_free char *copy =
      xstrdup(path && *path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  char *save = NULL;
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    char *p = xasprintf("%s/%s", d, name);
    if (access(p, X_OK) == 0)
      return p;
    free(p);
  }
  return NULL;
}

pid_t cell_pidfile_process(const char *pidfile, const char *word1,
                           const char *word2) {
  cleanup_free char *text = NULL, *cmdline = NULL;
  size_t len = 0;
  long long pid;
  cell_error *err = NULL;
  if (cell_read_file_at(AT_FDCWD, pidfile, 64, &text, &len, &err) < 0) {
    cell_error_free(&err);
    return 0;
  }
  text[strcspn(text, "\n")] = '\0';
  if (!cell_parse_ll(text, 2, INT32_MAX, &pid))
    return 0;
  cleanup_free char *path = xasprintf("/proc/%lld/cmdline", pid);
  if (cell_read_file_at(AT_FDCWD, path, 1 << 16, &cmdline, &len, &err) < 0) {
    cell_error_free(&err);
    return 0;
  }
  for (size_t i = 0; i + 1 < len; i++)
    if (cmdline[i] == '\0')
      cmdline[i] = ' ';
  return strstr(cmdline, word1) && strstr(cmdline, word2) ? (pid_t)pid : 0;
}
