/* The system calls libcell makes without a glibc wrapper (or around one
 * that does not do what we need), and the constants that older kernel
 * headers lack.  Every raw syscall() of libcell is here, typed, so that a
 * reader sees each one once and a new kernel header changes one place.
 * Each returns what the kernel returns: -1 with errno on failure. */
#ifndef CELL_SYSCALLS_H
#define CELL_SYSCALLS_H

#include <linux/bpf.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

static inline int sys_openat2(int dirfd, const char *path,
                              const struct open_how *how) {
  return (int)syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
}

static inline pid_t sys_clone3(struct clone_args *args) {
  return (pid_t)syscall(SYS_clone3, args, sizeof(*args));
}

/* clone(2) as fork with flags: no new stack, the child returns here. */
static inline pid_t sys_clone_fork(unsigned long flags) {
  return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
}

static inline int sys_close_range(unsigned first, unsigned last,
                                  unsigned flags) {
  return (int)syscall(SYS_close_range, first, last, flags);
}

static inline int sys_pidfd_open(pid_t pid, unsigned flags) {
  return (int)syscall(SYS_pidfd_open, pid, flags);
}

static inline int sys_pidfd_send_signal(int pidfd, int sig) {
  return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static inline int sys_pivot_root(const char *new_root, const char *put_old) {
  return (int)syscall(SYS_pivot_root, new_root, put_old);
}

static inline int sys_seccomp(unsigned op, unsigned long flags, void *args) {
  return (int)syscall(SYS_seccomp, op, flags, args);
}

static inline int sys_bpf(int cmd, union bpf_attr *attr) {
  return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static inline int sys_open_tree(int dirfd, const char *path, unsigned flags) {
  return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

static inline int sys_move_mount(int from_dirfd, const char *from_path,
                                 int to_dirfd, const char *to_path,
                                 unsigned flags) {
  return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd,
                      to_path, flags);
}

/* The new mount API, for a procfs instance of our own (base/procfs). */
static inline int sys_fsopen(const char *fsname, unsigned flags) {
  return (int)syscall(SYS_fsopen, fsname, flags);
}

static inline int sys_fsconfig(int fsfd, unsigned cmd, const char *key,
                               const void *value, int aux) {
  return (int)syscall(SYS_fsconfig, fsfd, cmd, key, value, aux);
}

static inline int sys_fsmount(int fsfd, unsigned flags, unsigned attr_flags) {
  return (int)syscall(SYS_fsmount, fsfd, flags, attr_flags);
}

/* The kernel's struct sigaction (not glibc's): glibc's sigaction refuses
 * the real-time signals it reserves for itself. */
struct kernel_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  unsigned long mask;
};

static inline int sys_rt_sigaction(int sig, const struct kernel_sigaction *act,
                                   struct kernel_sigaction *old) {
  return (int)syscall(SYS_rt_sigaction, sig, act, old, sizeof(act->mask));
}

/* quotactl on the filesystem fd is on (5.14): no device path to find. */
static inline int sys_quotactl_fd(int fd, unsigned cmd, int id, void *addr) {
  return (int)syscall(SYS_quotactl_fd, fd, cmd, id, addr);
}

#endif
