/* Preloaded into criu by the checkpoint tests, to make an order that a
 * loaded machine makes only now and then happen every time.  An open for
 * writing of a file whose name starts with one of $LATE_OPEN's prefixes
 * (colon-separated) waits: while the file $LATE_OPEN_GATE exists when that
 * is set (the test removes it to let criu go on), else one second.  The
 * first wait creates $LATE_OPEN_MARK, when set, so that the test knows
 * criu has got there.  Every other open passes at once.
 *
 *   LATE_OPEN=uid_map:gid_map      a restore writes the id maps late;
 *   LATE_OPEN=core- LATE_OPEN_GATE=F   a dump stops in its middle, its
 *                                  tasks seized, until F is removed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static bool starts_with_one_of(const char *name, const char *prefixes) {
  size_t name_len = strlen(name);
  for (const char *p = prefixes; *p;) {
    size_t len = strcspn(p, ":");
    if (len > 0 && len <= name_len && strncmp(name, p, len) == 0)
      return true;
    p += len + (p[len] == ':');
  }
  return false;
}

static bool is_late(const char *path, int flags) {
  const char *prefixes = getenv("LATE_OPEN");
  if (!path || !prefixes || (flags & O_ACCMODE) == O_RDONLY)
    return false;
  const char *slash = strrchr(path, '/');
  return starts_with_one_of(slash ? slash + 1 : path, prefixes);
}

static void sleep_ms(long ms) {
  nanosleep(&(struct timespec){.tv_sec = ms / 1000,
                               .tv_nsec = (ms % 1000) * 1000000L},
            NULL);
}

/* The raw syscall: our own open must not come back through the wrapper. */
static void mark_waiting(void) {
  const char *mark = getenv("LATE_OPEN_MARK");
  if (!mark)
    return;
  long fd = syscall(SYS_openat, AT_FDCWD, mark,
                    O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0)
    close((int)fd);
}

/* A gate left by a failed test holds no criu for ever: 300 s at most. */
static void wait_if_late(const char *path, int flags) {
  if (!is_late(path, flags))
    return;
  mark_waiting();
  const char *gate = getenv("LATE_OPEN_GATE");
  if (!gate || !*gate) {
    sleep_ms(1000);
    return;
  }
  for (int i = 0; i < 6000 && access(gate, F_OK) == 0; i++)
    sleep_ms(50);
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE
             ? va_arg(ap, mode_t)
             : 0;
}

/* open, open64, openat and openat64: the same wait, then libc's own.  The
 * mode is read only when the flags say there is one. */
#define WRAP(name, params, path, ...)                                          \
  int name params {                                                            \
    va_list ap;                                                                \
    va_start(ap, flags);                                                       \
    mode_t mode = mode_arg(flags, ap);                                         \
    va_end(ap);                                                                \
    wait_if_late(path, flags);                                                 \
    static int (*real)();                                                      \
    if (!real)                                                                 \
      real = (int (*)())dlsym(RTLD_NEXT, #name);                               \
    return real(__VA_ARGS__, mode);                                            \
  }

WRAP(openat, (int dirfd, const char *path, int flags, ...), path, dirfd, path,
     flags)
WRAP(openat64, (int dirfd, const char *path, int flags, ...), path, dirfd,
     path, flags)
WRAP(open, (const char *path, int flags, ...), path, path, flags)
WRAP(open64, (const char *path, int flags, ...), path, path, flags)
