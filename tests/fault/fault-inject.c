/* Fault injection for the end-to-end tests: an LD_PRELOAD library that
 * makes one chosen fallible call of cell (or celld) fail with a chosen
 * errno, so that a test can walk every failure point of a command and
 * check what a user would: a clear error, nothing left behind, a retry
 * that works.
 *
 * The calls counted are the ones that change or probe the system and can
 * fail for reasons outside the program's control: mount and unmount,
 * mkdir, open, rename, mknod, symlink, chown, unshare and setns, socket
 * and sendmsg (netlink), fsync and syncfs, writes to procfs, sysfs and cgroupfs, and
 * the raw system calls of lib/base/syscalls.h (clone3, openat2,
 * pivot_root, open_tree, move_mount, pidfd_*, seccomp, bpf).  The count is
 * shared by every process of the run (the runtime, the container process
 * before its exec, helpers), through a file mapped by all of them, so
 * "the Nth call" means the same call in each run of the same command.
 *
 * Environment:
 *   CELL_FAULT_STATE  a file of 516 KiB (4 KiB + 8 bytes per call) the
 *                     test made (required; without it the library does
 *                     nothing)
 *   CELL_FAULT_AT     fail the Nth counted call (1-based); 0 or unset:
 *                     only count; "file": the number is read from the
 *                     state file at each call (for a daemon, whose test
 *                     moves the point from one request to the next)
 *   CELL_FAULT_ERRNO  the errno of the failure (default EIO)
 *   CELL_FAULT_KILL   1: the Nth call is not failed: the process the
 *                     library was loaded into (celld) is killed with
 *                     SIGKILL before the call is made, a crash at that
 *                     step, and so is the child it forked that makes it.
 *                     It and its forks count; the programs they run do
 *                     not (the variables are taken out of the
 *                     environment).
 *   CELL_FAULT_ONLY   a comma-separated list of the calls to count (the
 *                     names in "site", e.g. "renameat,mkdirat,fsync");
 *                     unset: all of them but unlinkat, which is counted
 *                     only when named here
 * The state file holds, after the run: the number of counted calls, and
 * whether the fault was injected and where ("mount /path/cell+0x1234",
 * for addr2line).  Its layout: calls (int64 at 0), injected (int64 at 8),
 * site (256 bytes at 16), fail_at (int64 at 272), no_kill (int64 at 280:
 * not 0, a CELL_FAULT_KILL run fails the call as without it), and from
 * 4096 the hash of each call's path (uint64 each). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define FAULT_MAX_CALLS 65536

struct fault_state {
  atomic_long calls;    /* counted so far, by every process */
  atomic_long injected; /* the call number that failed; 0: none yet */
  char site[256];       /* "NAME FILE+0xOFFSET" of the call that failed */
  atomic_long fail_at;  /* with CELL_FAULT_AT=file: the call to fail */
  atomic_long no_kill;  /* with CELL_FAULT_KILL: fail the call instead */
  char pad[4096 - 4 * sizeof(long) - 256];
  /* At 4096: for each call counted (the first FAULT_MAX_CALLS), a hash of
   * the call and its last callers, so that a test can fail one call of
   * each distinct path instead of every call. */
  uint64_t path[FAULT_MAX_CALLS];
};

static struct fault_state *state;
static long fail_at;
static bool fail_at_from_file;
static int fail_errno = EIO;
static bool kill_mode;
static pid_t main_pid;
static char only[256]; /* ",name,name," or empty: every call */

__attribute__((constructor)) static void fault_init(void) {
  const char *path = getenv("CELL_FAULT_STATE");
  if (path == NULL)
    return;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return;
  struct stat st;
  if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct fault_state)) {
    close(fd);
    return;
  }
  void *p = mmap(NULL, sizeof(struct fault_state), PROT_READ | PROT_WRITE,
                 MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED)
    return;
  /* backtrace() loads libgcc on its first call: not in the middle of a
   * hooked call. */
  void *frames[1];
  backtrace(frames, 1);
  state = p;
  const char *at = getenv("CELL_FAULT_AT");
  fail_at_from_file = at && strcmp(at, "file") == 0;
  fail_at = at && !fail_at_from_file ? atol(at) : 0;
  const char *e = getenv("CELL_FAULT_ERRNO");
  if (e)
    fail_errno = atoi(e);
  const char *k = getenv("CELL_FAULT_KILL");
  kill_mode = k && strcmp(k, "1") == 0;
  main_pid = getpid();
  if (kill_mode) {
    unsetenv("CELL_FAULT_KILL");
    unsetenv("CELL_FAULT_STATE");
  }
  const char *o = getenv("CELL_FAULT_ONLY");
  if (o && *o)
    snprintf(only, sizeof(only), ",%s,", o);
}

/* Whether calls of that name are counted in this process. */
static bool counted(const char *name) {
  if (!only[0])
    return strcmp(name, "unlinkat") != 0;
  char key[64];
  snprintf(key, sizeof(key), ",%s,", name);
  return strstr(only, key) != NULL;
}

/* Count one call made from caller; true when it is the one to fail
 * (errno is then set). */
/* The call and its last few callers, as offsets in their files (the same
 * in every run, whatever the address space layout). */
static uint64_t path_hash(const char *name) {
  void *frames[6];
  int n = backtrace(frames, 6);
  uint64_t h = 1469598103934665603ull;
  for (const char *c = name; *c; c++)
    h = (h ^ (unsigned char)*c) * 1099511628211ull;
  /* Frame 0 is here, frame 1 the wrapper: the callers start at 2. */
  for (int i = 2; i < n; i++) {
    Dl_info info;
    uintptr_t off = (uintptr_t)frames[i];
    if (dladdr(frames[i], &info) && info.dli_fbase)
      off -= (uintptr_t)info.dli_fbase;
    h = (h ^ off) * 1099511628211ull;
  }
  return h;
}

static bool fault_count(const char *name, void *caller) {
  long n = atomic_fetch_add(&state->calls, 1) + 1;
  if (n <= FAULT_MAX_CALLS)
    state->path[n - 1] = path_hash(name);
  long at = fail_at_from_file ? atomic_load(&state->fail_at) : fail_at;
  if (n != at)
    return false;
  Dl_info info;
  if (dladdr(caller, &info) && info.dli_fname)
    snprintf(state->site, sizeof(state->site), "%s %s+%#lx", name,
             info.dli_fname,
             (unsigned long)((char *)caller - (char *)info.dli_fbase) - 1);
  else
    snprintf(state->site, sizeof(state->site), "%s ?", name);
  atomic_store(&state->injected, n);
  if (kill_mode && !atomic_load(&state->no_kill)) {
    kill(main_pid, SIGKILL);
    kill(getpid(), SIGKILL);
  }
  errno = fail_errno;
  return true;
}
static __thread bool in_hook; /* backtrace() itself may open files */

static bool fault_hit_from(const char *name, void *caller) {
  if (state == NULL || in_hook || !counted(name))
    return false;
  in_hook = true;
  int saved = errno;
  bool hit = fault_count(name, caller);
  if (!hit)
    errno = saved;
  in_hook = false;
  return hit;
}
#define fault_hit(name) fault_hit_from(name, __builtin_return_address(0))

#define REAL(ret, name, ...)                                                   \
  static ret (*real_##name)(__VA_ARGS__);                                      \
  if (real_##name == NULL)                                                     \
    real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);

int mount(const char *src, const char *target, const char *type,
          unsigned long flags, const void *data) {
  REAL(int, mount, const char *, const char *, const char *, unsigned long,
       const void *);
  if (fault_hit("mount"))
    return -1;
  return real_mount(src, target, type, flags, data);
}

int umount2(const char *target, int flags) {
  REAL(int, umount2, const char *, int);
  if (fault_hit("umount2"))
    return -1;
  return real_umount2(target, flags);
}

int mkdir(const char *path, mode_t mode) {
  REAL(int, mkdir, const char *, mode_t);
  if (fault_hit("mkdir"))
    return -1;
  return real_mkdir(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode) {
  REAL(int, mkdirat, int, const char *, mode_t);
  if (fault_hit("mkdirat"))
    return -1;
  return real_mkdirat(dirfd, path, mode);
}

int mknodat(int dirfd, const char *path, mode_t mode, dev_t dev) {
  REAL(int, mknodat, int, const char *, mode_t, dev_t);
  if (fault_hit("mknodat"))
    return -1;
  return real_mknodat(dirfd, path, mode, dev);
}

int symlinkat(const char *target, int dirfd, const char *path) {
  REAL(int, symlinkat, const char *, int, const char *);
  if (fault_hit("symlinkat"))
    return -1;
  return real_symlinkat(target, dirfd, path);
}

int renameat(int olddir, const char *old, int newdir, const char *new_) {
  REAL(int, renameat, int, const char *, int, const char *);
  if (fault_hit("renameat"))
    return -1;
  return real_renameat(olddir, old, newdir, new_);
}

int rename(const char *old, const char *new_) {
  REAL(int, rename, const char *, const char *);
  if (fault_hit("rename"))
    return -1;
  return real_rename(old, new_);
}

int unlinkat(int dirfd, const char *path, int flags) {
  REAL(int, unlinkat, int, const char *, int);
  if (fault_hit("unlinkat"))
    return -1;
  return real_unlinkat(dirfd, path, flags);
}

int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags) {
  REAL(int, fchownat, int, const char *, uid_t, gid_t, int);
  if (fault_hit("fchownat"))
    return -1;
  return real_fchownat(dirfd, path, uid, gid, flags);
}

static int open_mode(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE
             ? va_arg(ap, int)
             : 0;
}

int open(const char *path, int flags, ...) {
  REAL(int, open, const char *, int, ...);
  va_list ap;
  va_start(ap, flags);
  int mode = open_mode(flags, ap);
  va_end(ap);
  if (fault_hit("open"))
    return -1;
  return real_open(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
  REAL(int, openat, int, const char *, int, ...);
  va_list ap;
  va_start(ap, flags);
  int mode = open_mode(flags, ap);
  va_end(ap);
  if (fault_hit("openat"))
    return -1;
  return real_openat(dirfd, path, flags, mode);
}

int mount_setattr(int dirfd, const char *path, unsigned flags,
                  struct mount_attr *attr, size_t size) {
  REAL(int, mount_setattr, int, const char *, unsigned, struct mount_attr *,
       size_t);
  if (fault_hit("mount_setattr"))
    return -1;
  return real_mount_setattr(dirfd, path, flags, attr, size);
}

int open_tree(int dirfd, const char *path, unsigned flags) {
  REAL(int, open_tree, int, const char *, unsigned);
  if (fault_hit("open_tree"))
    return -1;
  return real_open_tree(dirfd, path, flags);
}

int move_mount(int from_dirfd, const char *from, int to_dirfd, const char *to,
               unsigned flags) {
  REAL(int, move_mount, int, const char *, int, const char *, unsigned);
  if (fault_hit("move_mount"))
    return -1;
  return real_move_mount(from_dirfd, from, to_dirfd, to, flags);
}

int unshare(int flags) {
  REAL(int, unshare, int);
  if (fault_hit("unshare"))
    return -1;
  return real_unshare(flags);
}

int setns(int fd, int type) {
  REAL(int, setns, int, int);
  if (fault_hit("setns"))
    return -1;
  return real_setns(fd, type);
}

int socket(int domain, int type, int protocol) {
  REAL(int, socket, int, int, int);
  if (fault_hit("socket"))
    return -1;
  return real_socket(domain, type, protocol);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  REAL(ssize_t, sendmsg, int, const struct msghdr *, int);
  if (fault_hit("sendmsg"))
    return -1;
  return real_sendmsg(fd, msg, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags,
               const struct sockaddr *to, socklen_t tolen) {
  REAL(ssize_t, sendto, int, const void *, size_t, int,
       const struct sockaddr *, socklen_t);
  if (fault_hit("sendto"))
    return -1;
  return real_sendto(fd, buf, len, flags, to, tolen);
}

int fsync(int fd) {
  REAL(int, fsync, int);
  if (fault_hit("fsync"))
    return -1;
  return real_fsync(fd);
}

int syncfs(int fd) {
  REAL(int, syncfs, int);
  if (fault_hit("syncfs"))
    return -1;
  return real_syncfs(fd);
}

/* Writes count only to the kernel's control files: procfs (uid_map,
 * sysctls, oom_score_adj), sysfs and cgroupfs. */
static bool is_kernel_control_file(int fd) {
  struct statfs sfs;
  if (fstatfs(fd, &sfs) < 0)
    return false;
  return sfs.f_type == PROC_SUPER_MAGIC || sfs.f_type == SYSFS_MAGIC ||
         sfs.f_type == CGROUP_SUPER_MAGIC || sfs.f_type == CGROUP2_SUPER_MAGIC;
}

ssize_t write(int fd, const void *buf, size_t len) {
  REAL(ssize_t, write, int, const void *, size_t);
  if (is_kernel_control_file(fd) && fault_hit("write"))
    return -1;
  return real_write(fd, buf, len);
}

static const char *counted_syscall(long nr) {
  switch (nr) {
  case SYS_clone3: return "clone3";
  case SYS_clone: return "clone";
  case SYS_openat2: return "openat2";
  case SYS_pivot_root: return "pivot_root";
  case SYS_open_tree: return "open_tree";
  case SYS_move_mount: return "move_mount";
  case SYS_mount_setattr: return "mount_setattr";
  case SYS_pidfd_open: return "pidfd_open";
  case SYS_pidfd_send_signal: return "pidfd_send_signal";
  case SYS_seccomp: return "seccomp";
  case SYS_bpf: return "bpf";
  default: return NULL;
  }
}

long syscall(long nr, ...) {
  REAL(long, syscall, long, ...);
  va_list ap;
  va_start(ap, nr);
  long a[6];
  for (int i = 0; i < 6; i++)
    a[i] = va_arg(ap, long);
  va_end(ap);
  const char *name = counted_syscall(nr);
  if (name && fault_hit(name))
    return -1;
  return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
