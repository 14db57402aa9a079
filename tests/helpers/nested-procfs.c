/* nested-procfs: run inside a --no-pivot container, try the escapes the
 * runtime must prevent, and say how far they got.
 *
 *   nested-procfs DIR
 *
 * 1. Leave the chroot that --no-pivot made (the classic chroot(2) escape:
 *    chroot into DIR, a directory we may create in, with the cwd left
 *    outside it, then climb with ".."): the kernel refuses a new user
 *    namespace to a chrooted process, and this puts us at the root of the
 *    container's mount namespace.  Needs CAP_SYS_CHROOT.
 * 2. unshare a user, mount, pid and network namespace: every mount
 *    inherited is now locked, the container's masked /proc and /sys
 *    included.
 * 3. In a child (the first of the new pid namespace), mount a fresh procfs.
 *    The kernel allows that only while some procfs of the mount namespace
 *    is fully visible: a runtime that left the host's /proc in the
 *    namespace lets it through, with /proc/sysrq-trigger and the rest
 *    unmasked.
 * 4. In the same child, mount a fresh sysfs (the new network namespace is
 *    ours, which sysfs asks for).  The same rule: only while some sysfs of
 *    the mount namespace is fully visible, with /sys/firmware unmasked.
 *
 * Prints "chroot left", "unshare: ...", then "mount proc: ok" or
 * "mount proc: <error>", and "mount sysfs: ok" or "mount sysfs: <error>".
 * Exit status 0 when a mount worked (an escape), 1 when both were refused,
 * 2 when an earlier step failed.  Static: it runs in a busybox rootfs. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int leave_chroot(const char *dir) {
  if (mkdir(dir, 0700) < 0 && errno != EEXIST)
    return -1;
  if (chroot(dir) < 0)
    return -1;
  for (int i = 0; i < 256; i++)
    if (chdir("..") < 0)
      return -1;
  return chroot(".");
}

static int mount_fresh_proc(void) {
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
    printf("mount proc: %s\n", strerror(errno));
    return 1;
  }
  printf("mount proc: ok (sysrq-trigger %s)\n",
         access("/proc/sysrq-trigger", F_OK) == 0 ? "present" : "absent");
  return 0;
}

static int mount_fresh_sysfs(void) {
  if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
    printf("mount sysfs: %s\n", strerror(errno));
    return 1;
  }
  printf("mount sysfs: ok (firmware %s)\n",
         access("/sys/firmware", F_OK) == 0 ? "present" : "absent");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: nested-procfs DIR\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  if (leave_chroot(argv[1]) < 0) {
    printf("leave the chroot: %s\n", strerror(errno));
    return 2;
  }
  printf("chroot left\n");
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET) < 0) {
    printf("unshare: %s\n", strerror(errno));
    return 2;
  }
  printf("unshare: ok\n");
  pid_t pid = fork();
  if (pid < 0) {
    printf("fork: %s\n", strerror(errno));
    return 2;
  }
  if (pid == 0) {
    /* Both, whatever the first gave: each is an escape of its own. */
    int proc = mount_fresh_proc();
    int sysfs = mount_fresh_sysfs();
    _exit(proc == 0 || sysfs == 0 ? 0 : 1);
  }
  int status;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
    return 2;
  return WEXITSTATUS(status);
}
