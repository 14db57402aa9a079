/* celld-criu-action: the action script celld gives criu when it restores
 * an instance (lib/daemon/daemon-checkpoint.c).  criu runs its action
 * script at every step of a restore, six of them while the instance is
 * still frozen; a shell script costs a dynamic loader and a shell each
 * time, this static program a fraction of that.
 *
 * Only post-setup-namespaces is celld's: the restored init's pid
 * (CRTOOLS_INIT_PID) goes to the fifo `net-request` in the directory of
 * the path criu ran this by (a symbolic link in the restore's work
 * directory), and the line celld answers on the fifo `net-answer` there,
 * once the instance's NICs are made, is the verdict: "ok" or not.  Every
 * other action succeeds at once. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/util.h"
#include "daemon/criu-action.h"

/* `name` in the directory of the link criu ran. */
static char *beside_link(const char *link, const char *name) {
  cleanup_free char *copy = xstrdup(link);
  return xasprintf("%s/%s", dirname(copy), name);
}

static int send_pid(const char *request, const char *pid, cell_error **err) {
  int fd = open(request, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", request);
  cleanup_free char *line = xasprintf("%s\n", pid);
  int r = cell_write_all(fd, line, strlen(line));
  int e = errno;
  close(fd);
  return r < 0 ? cell_fail(err, e, "write `%s`", request) : 0;
}

/* celld's verdict: its thread writes one short line, then closes. */
static int read_verdict(const char *answer, cell_error **err) {
  int fd = open(answer, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", answer);
  char buf[16] = {0};
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  int e = errno;
  close(fd);
  if (n < 0)
    return cell_fail(err, e, "read `%s`", answer);
  if (strcmp(buf, "ok\n") != 0)
    return cell_fail(err, 0, "celld could not make the restored instance's "
                     "network (its log says why)");
  return 0;
}

static int hand_over(const char *self, cell_error **err) {
  const char *pid = getenv("CRTOOLS_INIT_PID");
  if (pid == NULL || *pid == '\0')
    return cell_fail(err, EINVAL, "no CRTOOLS_INIT_PID: run by criu "
                     "restore --action-script only");
  cleanup_free char *request = beside_link(self, CRIU_ACTION_REQUEST);
  cleanup_free char *answer = beside_link(self, CRIU_ACTION_ANSWER);
  if (send_pid(request, pid, err) < 0)
    return -1;
  return read_verdict(answer, err);
}

int main(int argc, char **argv) {
  const char *action = getenv("CRTOOLS_SCRIPT_ACTION");
  if (action == NULL || strcmp(action, CRIU_ACTION_OURS) != 0)
    return 0;
  cleanup_error cell_error *err = NULL;
  if (argc < 1)
    return 1;
  if (hand_over(argv[0], &err) == 0)
    return 0;
  fprintf(stderr, "celld-criu-action: %s\n", err->msg);
  return 1;
}
