/* exe-watch SECONDS OWN: run inside an instance, as its root, what
 * CVE-2019-5736 does: watch /proc for processes that join the instance
 * (the exec helpers of the runtime, whose image is the host's binary until
 * they exec), stop each the moment it is seen, and try to open its
 * /proc/PID/exe; then let it go on.  For SECONDS.  One line per process
 * caught:
 *   PID refused ERRNO   the kernel kept its exe from us (not dumpable)
 *   PID own             its exe is OWN, a program of the instance (it had
 *                       exec'd already)
 *   PID HOST            its exe opened and is none of the instance's: the
 *                       host's binary, reachable for writing once idle
 * Static, so that it runs in any rootfs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIDS 4194304

static unsigned char *seen;

/* Every process there now is the instance's own: not watched. */
static void mark_present(void) {
  DIR *d = opendir("/proc");
  if (!d)
    return;
  for (struct dirent *e; (e = readdir(d));) {
    long pid = strtol(e->d_name, NULL, 10);
    if (pid > 0 && pid < MAX_PIDS)
      seen[pid] = 1;
  }
  closedir(d);
}

/* Whether pid is done with: caught (or gone).  A process still of the
 * host's credentials (before it joins the user namespace) cannot be
 * signalled yet: it is tried again at the next pass. */
static bool try_exe(pid_t pid, const struct stat *own) {
  if (kill(pid, SIGSTOP) < 0)
    return errno != EPERM;
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    printf("%d refused %s\n", (int)pid, strerrorname_np(errno));
  } else {
    struct stat st;
    bool mine = fstat(fd, &st) == 0 && st.st_dev == own->st_dev &&
                st.st_ino == own->st_ino;
    printf("%d %s\n", (int)pid, mine ? "own" : "HOST");
    close(fd);
  }
  fflush(stdout);
  kill(pid, SIGCONT);
  return true;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: exe-watch SECONDS OWN\n");
    return 2;
  }
  struct stat own;
  if (stat(argv[2], &own) < 0) {
    perror(argv[2]);
    return 2;
  }
  seen = calloc(MAX_PIDS, 1);
  if (!seen)
    return 2;
  mark_present();
  double end = now() + atof(argv[1]);
  while (now() < end) {
    DIR *d = opendir("/proc");
    if (!d)
      return 2;
    for (struct dirent *e; (e = readdir(d));) {
      long pid = strtol(e->d_name, NULL, 10);
      if (pid <= 0 || pid >= MAX_PIDS || seen[pid])
        continue;
      seen[pid] = try_exe((pid_t)pid, &own);
    }
    closedir(d);
  }
  return 0;
}
