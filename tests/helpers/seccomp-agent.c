/* seccomp-agent SOCKET DIR ERRNO: a seccomp notify agent for the tests, as
 * linux.seccomp.listenerPath describes it.  It listens on SOCKET; each
 * runtime connection brings the container process state (JSON) and a
 * listener fd (SCM_RIGHTS): the state goes to DIR/state-N.json (N = 1, 2,
 * ... in the order of the connections), and every syscall notified on the
 * fd is answered with the error ERRNO.  Runs until killed. */
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_LISTENERS 64

static int listen_on(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(a.sun_path)) {
    fprintf(stderr, "seccomp-agent: socket path too long: %s\n", path);
    exit(2);
  }
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
      listen(fd, 16) < 0) {
    perror("seccomp-agent: listen");
    exit(2);
  }
  return fd;
}

/* One connection: the state and the fd; -1 when it brought no fd. */
static int take_listener(int lfd, const char *dir, int n) {
  int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0)
    return -1;
  char buf[65536];
  union {
    char b[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {buf, sizeof(buf) - 1};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
  ssize_t len = recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
  close(c);
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  if (len <= 0 || cm == NULL || cm->cmsg_type != SCM_RIGHTS)
    return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
  char path[4096];
  snprintf(path, sizeof(path), "%s/state-%d.json", dir, n);
  char tmp[4200];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (f) {
    fwrite(buf, 1, (size_t)len, f);
    fclose(f);
    rename(tmp, path); /* whole, for a test that polls for it */
  }
  return fd;
}

/* Answer one notification with -err; false when the listener is done. */
static int answer(int fd, int err) {
  struct seccomp_notif req;
  memset(&req, 0, sizeof(req));
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
    return errno == EINTR || errno == ENOENT;
  struct seccomp_notif_resp resp = {.id = req.id, .error = -err};
  /* ENOENT: the process was killed meanwhile; nothing to answer. */
  if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT)
    return 0;
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: seccomp-agent SOCKET DIR ERRNO\n");
    return 2;
  }
  int err = atoi(argv[3]);
  struct pollfd fds[MAX_LISTENERS + 1];
  nfds_t n = 1;
  int connections = 0;
  fds[0] = (struct pollfd){.fd = listen_on(argv[1]), .events = POLLIN};
  for (;;) {
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR)
        continue;
      perror("seccomp-agent: poll");
      return 1;
    }
    for (nfds_t i = 1; i < n; i++) {
      if (fds[i].revents & POLLIN && answer(fds[i].fd, err))
        continue;
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        close(fds[i].fd); /* every process of the filter is gone */
        fds[i--] = fds[--n];
      }
    }
    if (fds[0].revents & POLLIN) {
      int fd = take_listener(fds[0].fd, argv[2], ++connections);
      if (fd >= 0 && n < MAX_LISTENERS + 1)
        fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
      else if (fd >= 0)
        close(fd);
    }
  }
}
