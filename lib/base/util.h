/* Small helpers shared by all of libcell: cleanup attributes, whole-file
 * I/O, string vectors, retrying syscalls. */
#ifndef CELL_UTIL_H
#define CELL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"

/* ---- cleanup attributes ------------------------------------------------ */
static inline void cell_freep(void *p) { free(*(void **)p); }
static inline void cell_closep(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}
static inline void cell_fclosep(FILE **f) {
  if (*f)
    fclose(*f);
}
void cell_strv_free(char **v);
static inline void cell_strv_freep(char ***v) { cell_strv_free(*v); }

#define cleanup_free __attribute__((cleanup(cell_freep)))
#define cleanup_close __attribute__((cleanup(cell_closep)))
#define cleanup_fclose __attribute__((cleanup(cell_fclosep)))
#define cleanup_strv __attribute__((cleanup(cell_strv_freep)))

/* Hand ownership out of a cleanup variable. */
#define steal_pointer(pp)                                                      \
  ({                                                                           \
    __typeof__(*(pp)) _p = *(pp);                                              \
    *(pp) = NULL;                                                              \
    _p;                                                                        \
  })
#define steal_fd(fdp)                                                          \
  ({                                                                           \
    int _fd = *(fdp);                                                          \
    *(fdp) = -1;                                                               \
    _fd;                                                                       \
  })

/* ---- memory: allocation failure aborts (nothing sensible to do) ------- */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- NULL-terminated string vectors ----------------------------------- */
size_t cell_strv_len(char *const *v);
char **cell_strv_dup(char *const *v);
/* Append a copy of s; *v may be NULL. */
void cell_strv_push(char ***v, const char *s);

/* ---- files ------------------------------------------------------------- */
/* Read a whole file (at most max bytes; 0 = 64 MiB) into a NUL-terminated
 * buffer.  dirfd may be AT_FDCWD. */
int cell_read_file_at(int dirfd, const char *path, size_t max, char **out,
                      size_t *len, cell_error **err);
/* Write data to a file, replacing it atomically: temp file in the same
 * directory, fsync, rename, fsync of the directory.  name may be a path
 * (relative to dirfd). */
int cell_write_file_atomic_at(int dirfd, const char *name, const void *data,
                              size_t len, mode_t mode, cell_error **err);
/* The same without the fsyncs: readers never see a torn file, but a crash
 * of the host may lose it.  For what dies with the host anyway (a
 * container's runtime state, a pid file): an fsync there costs milliseconds
 * on a disk-backed /run and buys nothing. */
int cell_replace_file_at(int dirfd, const char *name, const void *data,
                         size_t len, mode_t mode, cell_error **err);
/* --pid-file: the pid, replaced atomically (runc's readers may poll it),
 * not fsynced; nothing when path is NULL. */
int cell_write_pid_file(const char *path, pid_t pid, cell_error **err);
/* Open, write all, close.  For /proc and /sys knobs (no O_CREAT). */
int cell_write_knob(const char *path, const char *data, size_t len,
                    cell_error **err);
/* write(2)/read(2) looping over partial transfers and EINTR. */
ssize_t cell_write_all(int fd, const void *buf, size_t len);
ssize_t cell_read_all(int fd, void *buf, size_t len);
/* mkdir -p relative to dirfd (AT_FDCWD allowed), not for paths inside a
 * container rootfs (see resolve.h for that). */
int cell_mkdir_p(const char *path, mode_t mode, cell_error **err);
/* rm -rf of a directory tree that we own (state directories).  Does not
 * cross mount points. */
int cell_rm_rf_at(int dirfd, const char *name, cell_error **err);

/* ---- processes ----------------------------------------------------------- */
/* Start time of pid in clock ticks since boot (field 22 of /proc/PID/stat);
 * 0 when the process does not exist or is a zombie (errno ESRCH), or when
 * /proc could not tell (errno says why). */
unsigned long long cell_proc_start_time(pid_t pid);
/* True when pid is alive (not a zombie) and has the given start time. */
bool cell_proc_alive(pid_t pid, unsigned long long start_time);
int cell_pidfd_open(pid_t pid);
/* An executable of that name in $PATH (unset: the usual directories,
 * sbin ones too), or NULL; the caller frees. */
char *cell_find_in_path(const char *name);

/* The pid in pidfile when that process still runs a command line that
 * holds both words (a daemon an earlier run started: its program's name,
 * and an argument only that run gave it); 0 otherwise. */
pid_t cell_pidfile_process(const char *pidfile, const char *word1,
                           const char *word2);
/* Default disposition for every signal (ignored ones survive exec) and an
 * empty mask: for a process about to exec something else. */
void cell_reset_signals(void);
/* Close every fd >= from except those in keep[0..nkeep). */
void cell_close_fds_from(int from, const int *keep, size_t nkeep);
/* Parse a decimal integer in [min,max]; false on any garbage. */
bool cell_parse_ll(const char *s, long long min, long long max, long long *out);
/* SIZE: bytes, or a number with K, M, G or T and a fraction if wanted
 * ("1.5G"); powers of 1024 whether written "M", "MB" or "MiB". */
bool cell_parse_size(const char *s, long long *out);

/* Control data with room for up to CELL_MAX_PASSED_FDS fds. */
#define CELL_MAX_PASSED_FDS 4
union cell_fd_control {
  char buf[CMSG_SPACE(CELL_MAX_PASSED_FDS * sizeof(int))];
  struct cmsghdr align;
};
/* Attach n fds (SCM_RIGHTS; n <= CELL_MAX_PASSED_FDS, 0: none) to mh, its
 * control data in ctl. */
void cell_msg_attach_fds(struct msghdr *mh, union cell_fd_control *ctl,
                         const int *fds, size_t n);

/* Send all of data over a unix stream socket, fd riding along
 * (SCM_RIGHTS) on the first sendmsg.  -1 with errno on failure. */
int cell_send_with_fd(int sock, const char *data, size_t len, int fd);

/* A time as RFC 3339 with nanoseconds, UTC ("2026-01-02T03:04:05.123456789Z"). */
char *cell_rfc3339(const struct timespec *ts);
/* The current time so. */
char *cell_rfc3339_now(void);

#endif
