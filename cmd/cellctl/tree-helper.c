/* Running cellctl-tree (tree-helper.h). */
#include "tree-helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/libexec.h"
#include "base/util.h"

/* In the child: fds 3 (the directory), 4 (the error channel) and the
 * stream at stream_target (0 or 1), nothing else above 2. */
static void __attribute__((noreturn))
exec_helper(const char *path, const char *verb, int dirfd, int stream_fd,
            int stream_target, int error_fd) {
  /* Out of the way of the numbers they go to, first. */
  int d = fcntl(dirfd, F_DUPFD, 10), s = fcntl(stream_fd, F_DUPFD, 10),
      e = fcntl(error_fd, F_DUPFD, 10);
  if (d < 0 || s < 0 || e < 0 || dup2(d, 3) < 0 || dup2(e, 4) < 0 ||
      dup2(s, stream_target) < 0) {
    dprintf(error_fd, "%d set up cellctl-tree's fds", errno);
    _exit(127);
  }
  cell_close_fds_from(5, NULL, 0);
  execl(path, "cellctl-tree", verb, (char *)NULL);
  dprintf(4, "%d run `%s`: %s", errno, path, strerror(errno));
  _exit(127);
}

/* What the helper wrote to the error channel ("ERRNUM MESSAGE"). */
static int helper_error(const char *text, cell_error **err) {
  char *end;
  long errnum = strtol(text, &end, 10);
  if (end == text || *end != ' ')
    return cell_fail(err, EIO, "cellctl-tree failed");
  return cell_fail(err, (int)errnum, "%s", end + 1);
}

static int run(const char *verb, int dirfd, int stream_fd, int stream_target,
               cell_error **err) {
  cleanup_free char *path = cell_libexec_path("cellctl-tree");
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe");
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    return cell_fail(err, e, "fork for cellctl-tree");
  }
  if (pid == 0) {
    close(p[0]);
    exec_helper(path, verb, dirfd, stream_fd, stream_target, p[1]);
  }
  close(p[1]);
  char text[4096];
  ssize_t n = cell_read_all(p[0], text, sizeof(text) - 1);
  size_t len = n > 0 ? (size_t)n : 0;
  text[len] = '\0';
  close(p[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return cell_fail_errno(err, "wait for cellctl-tree");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  if (len > 0)
    return helper_error(text, err);
  if (WIFSIGNALED(status))
    return cell_fail(err, EIO, "cellctl-tree %s: killed by signal %d", verb,
                     WTERMSIG(status));
  return cell_fail(err, EIO, "cellctl-tree %s: exit status %d, no reason given",
                   verb, WEXITSTATUS(status));
}

int tree_helper_pack(int dirfd, int out_fd, cell_error **err) {
  return run("pack", dirfd, out_fd, STDOUT_FILENO, err);
}

int tree_helper_unpack(int dirfd, int in_fd, cell_error **err) {
  return run("unpack", dirfd, in_fd, STDIN_FILENO, err);
}
