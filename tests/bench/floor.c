/* floor: the kernel's floor under `cell run`, a benchmark helper.  One
 * process clones a child into the namespaces of cell's default config (pid,
 * network, ipc, uts, mount, cgroup), the child binds the rootfs onto
 * itself, pivot_roots into it, detaches the old root and execs the command;
 * the parent waits for it and exits with its status.  No cgroup, no
 * /proc or /dev, no state, no seccomp: what no runtime can go below.
 * timeit measures it as a whole process, like a runtime.
 *
 *   floor ROOTFS CMD [ARG...]
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char stack[64 * 1024] __attribute__((aligned(16)));

static int child(void *arg) {
  char **argv = arg;
  const char *rootfs = argv[0];
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
      mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0 ||
      chdir(rootfs) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
      umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
    perror("floor: pivot_root");
    return 126;
  }
  execv(argv[1], argv + 1);
  perror("floor: exec");
  return 127;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: floor ROOTFS CMD [ARG...]\n");
    return 2;
  }
  int flags = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
              CLONE_NEWNS | CLONE_NEWCGROUP | SIGCHLD;
  pid_t pid = clone(child, stack + sizeof(stack), flags, argv + 1);
  if (pid < 0) {
    perror("floor: clone");
    return 125;
  }
  int status;
  if (waitpid(pid, &status, 0) < 0) {
    perror("floor: waitpid");
    return 125;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
