/* syscall-probe: what a program inside a container gets from the kernel
 * (or from the container's seccomp filter) for a few calls, one line each:
 *
 *   syscall-probe clone3     "clone3: ENOSYS" (clone3(NULL, 0): any filter
 *                             answer, else the kernel's EINVAL)
 *   syscall-probe nr:N       "nr:N: ENOSYS", syscall number N, no arguments
 *   syscall-probe thread     "thread: ok" when pthread_create works (glibc
 *                             tries clone3 first, clone on ENOSYS only)
 *
 * Linked statically: it runs in the busybox test rootfs, which has no libc. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_clone3
#define __NR_clone3 435
#endif

static const char *errno_name(int e) {
  switch (e) {
  case ENOSYS: return "ENOSYS";
  case EPERM: return "EPERM";
  case EINVAL: return "EINVAL";
  case EFAULT: return "EFAULT";
  case EACCES: return "EACCES";
  default: return strerror(e);
  }
}

static void report_call(const char *what, long r) {
  if (r < 0)
    printf("%s: %s\n", what, errno_name(errno));
  else
    printf("%s: %ld\n", what, r);
}

static void *thread_main(void *arg) { return arg; }

static void probe_thread(void) {
  pthread_t t;
  int e = pthread_create(&t, NULL, thread_main, NULL);
  if (e != 0) {
    printf("thread: %s\n", errno_name(e));
    return;
  }
  pthread_join(t, NULL);
  printf("thread: ok\n");
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "clone3") == 0) {
      report_call(a, syscall(__NR_clone3, NULL, 0));
    } else if (strncmp(a, "nr:", 3) == 0) {
      report_call(a, syscall(strtol(a + 3, NULL, 10)));
    } else if (strcmp(a, "thread") == 0) {
      probe_thread();
    } else {
      fprintf(stderr, "syscall-probe: unknown probe `%s` (clone3, nr:N, thread)\n", a);
      return 2;
    }
  }
  return 0;
}
