#include "runtime/terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "base/resolve.h"
#include "base/util.h"

int terminal_connect(const char *socket_path, int *fd, cell_error **err) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof(addr.sun_path))
    return cell_fail(err, ENAMETOOLONG, "--console-socket `%s`", socket_path);
  strcpy(addr.sun_path, socket_path);
  cleanup_close int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return cell_fail_errno(err, "--console-socket: socket");
  if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
    return cell_fail_errno(err, "--console-socket: connect `%s`", socket_path);
  *fd = steal_fd(&s);
  return 0;
}

int terminal_send_fd(int sock, int fd, const char *name, cell_error **err) {
  if (cell_send_with_fd(sock, name, strlen(name), fd) < 0)
    return cell_fail_errno(err, "send the terminal to --console-socket");
  return 0;
}

/* /dev/console inside the container is the pty slave (bind mount), so
 * that programs writing to the console reach the caller. */
static int bind_console(const char *slave, cell_error **err) {
  cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return cell_fail_errno(err, "open /");
  cleanup_close int target = resolve_create(root, "/dev/console", true, err);
  if (target < 0)
    return cell_error_wrap(err, "/dev/console");
  char path[32];
  if (mount(slave, resolve_fd_path(target, path), NULL, MS_BIND, NULL) < 0)
    return cell_fail_errno(err, "bind `%s` on /dev/console", slave);
  return 0;
}

int terminal_setup(int console_fd, const struct spec_process *p,
                   bool bind_dev_console, cell_error **err) {
  cleanup_close int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    return cell_fail_errno(err, "process.terminal: open /dev/ptmx");
  char slave[64];
  if (unlockpt(master) < 0 || ptsname_r(master, slave, sizeof(slave)) != 0)
    return cell_fail_errno(err, "process.terminal: unlock the pty");
  cleanup_close int sfd = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (sfd < 0)
    return cell_fail_errno(err, "process.terminal: open `%s`", slave);
  if (p->console_size) {
    struct winsize ws = {.ws_row = (unsigned short)p->console_size->height,
                         .ws_col = (unsigned short)p->console_size->width};
    if (ioctl(sfd, TIOCSWINSZ, &ws) < 0)
      return cell_fail_errno(err, "process.consoleSize");
  }
  if (fchown(sfd, p->user.uid, (gid_t)-1) < 0 && errno != EINVAL)
    return cell_fail_errno(err, "process.terminal: chown `%s`", slave);
  if (bind_dev_console && bind_console(slave, err) < 0)
    return -1;
  if (terminal_send_fd(console_fd, master, slave, err) < 0)
    return -1;
  if (setsid() < 0 || ioctl(sfd, TIOCSCTTY, 0) < 0)
    return cell_fail_errno(err, "process.terminal: make `%s` the controlling terminal", slave);
  for (int fd = 0; fd < 3; fd++)
    if (dup2(sfd, fd) < 0)
      return cell_fail_errno(err, "process.terminal: dup2");
  return 0;
}

int terminal_recv_fd(int sock, int *fd, cell_error **err) {
  char name[256];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = {name, sizeof(name)};
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = control.buf,
                      .msg_controllen = sizeof(control.buf)};
  ssize_t r;
  do
    r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return cell_fail_errno(err, "receive the terminal");
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  if (r == 0 || c == NULL || c->cmsg_type != SCM_RIGHTS)
    return cell_fail(err, EPROTO, "receive the terminal: no fd");
  memcpy(fd, CMSG_DATA(c), sizeof(int));
  return 0;
}

int terminal_pair(int *ours, int *theirs, cell_error **err) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return cell_fail_errno(err, "socketpair for the terminal");
  *ours = sv[0];
  *theirs = sv[1];
  return 0;
}
