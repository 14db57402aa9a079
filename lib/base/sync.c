#include "base/sync.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "base/util.h"

/* Large enough for a state JSON with many annotations. */
#define SYNC_MAX_PAYLOAD (128 * 1024)

struct sync_header {
  int type;
  int errnum;
};

static int send_raw(int fd, int type, int errnum, const char *payload,
                    int passed_fd) {
  struct sync_header h = {.type = type, .errnum = errnum};
  size_t len = payload ? strlen(payload) : 0;
  if (len > SYNC_MAX_PAYLOAD)
    len = SYNC_MAX_PAYLOAD;
  struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)payload, len}};
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
  union cell_fd_control control;
  cell_msg_attach_fds(&mh, &control, &passed_fd, passed_fd >= 0);
  ssize_t r;
  do
    r = sendmsg(fd, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -1 : 0;
}

int sync_send(int fd, int type, const char *payload, cell_error **err) {
  if (send_raw(fd, type, 0, payload, -1) < 0)
    return cell_fail_errno(err, "sync with the container process");
  return 0;
}

int sync_send_fd(int fd, int type, int passed_fd, cell_error **err) {
  if (send_raw(fd, type, 0, NULL, passed_fd) < 0)
    return cell_fail_errno(err, "sync with the container process");
  return 0;
}

void sync_send_error(int fd, const cell_error *e) {
  send_raw(fd, SYNC_ERROR, e ? e->errnum : 0, e ? e->msg : "unknown error", -1);
}

int sync_recv(int fd, struct sync_msg *msg, cell_error **err) {
  memset(msg, 0, sizeof(*msg));
  struct sync_header h;
  /* One buffer for the whole process (single-threaded): no allocation of
   * 128 KiB per message on the path of every container start. */
  static char buf[SYNC_MAX_PAYLOAD + 1];
  struct iovec iov[2] = {{&h, sizeof(h)}, {buf, SYNC_MAX_PAYLOAD}};
  union {
    char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  msg->fd = -1;
  struct msghdr mh = {.msg_iov = iov,
                      .msg_iovlen = 2,
                      .msg_control = control.buf,
                      .msg_controllen = sizeof(control.buf)};
  ssize_t r;
  do
    r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return cell_fail_errno(err, "sync with the container process");
  if (r == 0)
    return cell_fail(err, 0, "container process exited during setup");
  if ((size_t)r < sizeof(h))
    return cell_fail(err, EPROTO, "sync with the container process");
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof(cred));
      msg->sender_pid = cred.pid;
    }
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      memcpy(&msg->fd, CMSG_DATA(c), sizeof(int));
  }
  msg->type = h.type;
  msg->errnum = h.errnum;
  msg->len = (size_t)r - sizeof(h);
  if (msg->len > 0) {
    buf[msg->len] = '\0';
    msg->payload = xstrndup(buf, msg->len);
  }
  return 0;
}

int sync_expect(int fd, int type, struct sync_msg *msg, cell_error **err) {
  if (sync_recv(fd, msg, err) < 0)
    return -1;
  if (msg->type == SYNC_ERROR) {
    cell_fail(err, 0, "%s", msg->payload ? msg->payload : "container setup failed");
    (*err)->errnum = msg->errnum;
    sync_msg_clear(msg);
    return -1;
  }
  if (msg->type != type) {
    int got = msg->type;
    sync_msg_clear(msg);
    return cell_fail(err, EPROTO, "sync: expected message %d, got %d", type, got);
  }
  return 0;
}

void sync_msg_clear(struct sync_msg *msg) {
  free(msg->payload);
  if (msg->fd >= 0)
    close(msg->fd);
  memset(msg, 0, sizeof(*msg));
  msg->fd = -1;
}
