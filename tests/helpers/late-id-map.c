/* Preloaded into criu by celld-criu.bats: criu's restore writes the id
 * maps of the restored tree's user namespace one second late, as a
 * loaded machine can make it, so that the root task's first steps in its
 * new user namespace run before the maps exist.  Only opens for writing
 * of a uid_map or gid_map wait; everything else passes at once. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static bool is_id_map(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  return strcmp(base, "uid_map") == 0 || strcmp(base, "gid_map") == 0;
}

static void wait_if_id_map(const char *path, int flags) {
  if (path && (flags & O_ACCMODE) != O_RDONLY && is_id_map(path))
    nanosleep(&(struct timespec){.tv_sec = 1}, NULL);
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
    wait_if_id_map(path, flags);                                               \
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
