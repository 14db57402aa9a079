/* try-syscall NAME: make one system call that a confined root must not be
 * able to make, and say how the kernel answered: "allowed" (exit 0) or the
 * errno's name (exit 1).  Static, so that it runs in any rootfs.  The
 * arguments are harmless on purpose: a call that gets past the filter and
 * the capability checks fails on them (EFAULT, EBADF, EINVAL) instead of
 * doing anything.  Except leave_project, which is the escape itself: it
 * takes / out of its project (XFS, ext4), and so out of its disk quota. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct probe {
  const char *name;
  long (*call)(void);
};

static long call_init_module(void) { return syscall(SYS_init_module, NULL, 0, ""); }
static long call_finit_module(void) { return syscall(SYS_finit_module, -1, "", 0); }
static long call_delete_module(void) { return syscall(SYS_delete_module, "cell-none", 0); }
static long call_kexec_load(void) { return syscall(SYS_kexec_load, 0, 0, NULL, 0); }
static long call_open_by_handle_at(void) {
  return syscall(SYS_open_by_handle_at, -1, NULL, 0);
}
static long call_iopl(void) { return syscall(SYS_iopl, 3); }
static long call_swapoff(void) { return syscall(SYS_swapoff, "/cell-none"); }
/* umount2("/", MNT_FORCE): refused by the filter before the kernel looks. */
static long call_umount_force(void) { return syscall(SYS_umount2, "/cell-none", 1); }
/* Project id 0 and no inheritance on /: what is written next would count
 * in no project.  Only the init user namespace may change either. */
static long call_leave_project(void) {
  int fd = open("/", O_RDONLY | O_DIRECTORY);
  struct fsxattr fa;
  if (fd < 0 || ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
    return -1;
  fa.fsx_projid = 0;
  fa.fsx_xflags &= ~FS_XFLAG_PROJINHERIT;
  return ioctl(fd, FS_IOC_FSSETXATTR, &fa);
}

static const struct probe probes[] = {
    {"init_module", call_init_module},
    {"finit_module", call_finit_module},
    {"delete_module", call_delete_module},
    {"kexec_load", call_kexec_load},
    {"open_by_handle_at", call_open_by_handle_at},
    {"iopl", call_iopl},
    {"swapoff", call_swapoff},
    {"umount_force", call_umount_force},
    {"leave_project", call_leave_project},
};

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: try-syscall NAME\n");
    return 2;
  }
  for (size_t i = 0; i < sizeof(probes) / sizeof(*probes); i++) {
    if (strcmp(argv[1], probes[i].name) != 0)
      continue;
    if (probes[i].call() == 0) {
      puts("allowed");
      return 0;
    }
    puts(strerrorname_np(errno));
    return 1;
  }
  fprintf(stderr, "try-syscall: unknown call `%s`\n", argv[1]);
  return 2;
}
