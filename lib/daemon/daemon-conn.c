/* celld's client connections: line framing, replies, event subscribers,
 * and who the peer is (SO_PEERCRED). */
#include "daemon/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "cgroup/cgroup.h"
#include "runtime/container-cgroup.h"
#include "runtime/container.h"
#include "runtime/exec.h"
#include "daemon/instance.h"
#include "base/json.h"
#include "base/log.h"
#include "oci/spec.h"
#include "runtime/terminal.h"
#include "base/util.h"

#include "daemon/daemon-internal.h"

/* ---- clients --------------------------------------------------------------- */

struct conn *daemon_find_conn(struct daemon *d, uint64_t id) {
  for (size_t i = 0; i < d->n_conns; i++)
    if (d->conns[i]->id == id)
      return d->conns[i];
  return NULL;
}

struct conn *daemon_conn_by_fd(struct daemon *d, int fd) {
  for (size_t i = 0; i < d->n_conns; i++)
    if (d->conns[i]->fd == fd)
      return d->conns[i];
  return NULL;
}

void conn_drop_fds(struct conn *c) {
  for (size_t i = 0; i < c->n_fds; i++)
    close(c->fds[i]);
  c->n_fds = 0;
}

void conn_close(struct daemon *d, struct conn *c) {
  for (size_t i = 0; i < d->n_conns; i++) {
    if (d->conns[i] != c)
      continue;
    memmove(&d->conns[i], &d->conns[i + 1], (d->n_conns - i - 1) * sizeof(*d->conns));
    d->n_conns--;
    break;
  }
  daemon_unwatch(d, c->fd);
  close(c->fd);
  conn_drop_fds(c);
  if (c->exec_pidfd >= 0) {
    /* The client went: its command loses its terminal (or its reader). */
    syscall(SYS_pidfd_send_signal, c->exec_pidfd, SIGHUP, NULL, 0);
    daemon_unwatch(d, c->exec_pidfd);
    close(c->exec_pidfd);
  }
  free(c->in);
  free(c->out);
  free(c);
}

static void update_conn_events(struct daemon *d, struct conn *c) {
  struct epoll_event ev = {.events = EPOLLIN | (c->out_len ? EPOLLOUT : 0),
                           .data.u64 = ev_data(TAG_CONN, c->fd)};
  epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what the socket takes now; the rest waits for EPOLLOUT.  Returns
 * false when the connection was closed. */
bool conn_flush(struct daemon *d, struct conn *c) {
  while (c->out_len > 0) {
    ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n <= 0) {
      conn_close(d, c);
      return false;
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
  }
  if (c->out_len == 0 && c->closing) {
    conn_close(d, c);
    return false;
  }
  update_conn_events(d, c);
  return true;
}

bool conn_send(struct daemon *d, struct conn *c, const char *json) {
  size_t len = strlen(json);
  if (c->out_len + len + 1 > MAX_OUTBUF) {
    /* A subscriber that does not read loses its subscription, not our
     * memory. */
    log_warn("client %d: output buffer full: closing", (int)c->cred.pid);
    conn_close(d, c);
    return false;
  }
  c->out = xrealloc(c->out, c->out_len + len + 1);
  memcpy(c->out + c->out_len, json, len);
  c->out[c->out_len + len] = '\n';
  c->out_len += len + 1;
  return conn_flush(d, c);
}

void conn_error(struct daemon *d, struct conn *c, const char *msg) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", false);
  json_gen_kv_string(g, "error", msg);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

void conn_reply_instance(struct daemon *d, struct conn *c, struct instance *in) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  if (in) {
    cleanup_free char *rec = instance_record_to_json(in->rec, false);
    cell_error *err = NULL;
    cleanup_json struct json_value *v = NULL;
    if (json_parse(rec, strlen(rec), &v, &err) == 0) {
      json_gen_key(g, "instance");
      json_gen_value(g, v);
    }
    cell_error_free(&err);
  }
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

bool conn_may_see(const struct conn *c, const struct instance *in) {
  return c->root || (c->member && in->rec->owner == c->cred.uid);
}

void daemon_emit_event(struct daemon *d, struct instance *in, const char *event) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_string(g, "event", event);
  json_gen_kv_string(g, "name", in->rec->name);
  cleanup_free char *now = cell_rfc3339_now();
  json_gen_kv_string(g, "time", now);
  if (strcmp(event, "died") == 0) {
    json_gen_key(g, "exit_code");
    if (in->rec->exit_code >= 0)
      json_gen_int(g, in->rec->exit_code);
    else
      json_gen_null(g);
  }
  if (strcmp(event, "oom") == 0) {
    json_gen_key(g, "oom_kills");
    json_gen_int(g, (int64_t)in->oom_kills);
  }
  json_gen_object_close(g);
  cleanup_free char *line = json_gen_finish(g, NULL);
  json_gen_free(g);
  log_info("%s: %s", in->rec->name, event);
  /* send_line may close (and remove) a connection: walk a copy. */
  size_t n = d->n_conns;
  uint64_t *ids = xcalloc(n ? n : 1, sizeof(*ids));
  for (size_t i = 0; i < n; i++)
    ids[i] = d->conns[i]->id;
  for (size_t i = 0; i < n; i++) {
    struct conn *c = daemon_find_conn(d, ids[i]);
    if (c && c->subscriber && conn_may_see(c, in))
      conn_send(d, c, line);
  }
  free(ids);
}

static ssize_t recv_with_fds(struct conn *c, char *buf, size_t len) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * 8)];
    struct cmsghdr align;
  } control;
  struct iovec iov = {buf, len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = control.buf,
                      .msg_controllen = sizeof(control.buf)};
  ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0)
    return n;
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
    if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
      continue;
    size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
      if (c->n_fds < 3)
        c->fds[c->n_fds++] = fd;
      else
        close(fd);
    }
  }
  return n;
}

void conn_on_readable(struct daemon *d, struct conn *c) {
  uint64_t id = c->id;
  char buf[8192];
  ssize_t n = recv_with_fds(c, buf, sizeof(buf));
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    conn_close(d, c);
    return;
  }
  c->in = xrealloc(c->in, c->in_len + (size_t)n + 1);
  memcpy(c->in + c->in_len, buf, (size_t)n);
  c->in_len += (size_t)n;
  for (;;) {
    c = daemon_find_conn(d, id);
    if (!c || c->closing)
      return;
    char *nl = memchr(c->in, '\n', c->in_len);
    if (!nl) {
      if (c->in_len > DAEMON_MAX_REQUEST) {
        cleanup_free char *msg = xasprintf(
            "request larger than %d bytes: closing the connection", DAEMON_MAX_REQUEST);
        c->in_len = 0;
        conn_error(d, c, msg);
        if ((c = daemon_find_conn(d, id))) {
          c->closing = true;
          conn_flush(d, c);
        }
      }
      return;
    }
    size_t len = (size_t)(nl - c->in);
    cleanup_free char *line = xstrndup(c->in, len);
    memmove(c->in, nl + 1, c->in_len - len - 1);
    c->in_len -= len + 1;
    if (len > DAEMON_MAX_REQUEST) {
      {
      cleanup_free char *msg = xasprintf("request larger than %d bytes", DAEMON_MAX_REQUEST);
      conn_error(d, c, msg);
    }
      continue;
    }
    if (len > 0)
      ops_handle_line(d, c, line, len);
    /* Fds are for the request they came with, not a later one. */
    if ((c = daemon_find_conn(d, id)))
      conn_drop_fds(c);
  }
}

static bool peer_in_group(int fd, gid_t gid) {
  gid_t groups[256];
  socklen_t len = sizeof(groups);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
    return false;
  for (size_t i = 0; i < len / sizeof(gid_t); i++)
    if (groups[i] == gid)
      return true;
  return false;
}

void daemon_on_accept(struct daemon *d) {
  int fd = accept4(d->listenfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return;
  struct conn *c = xcalloc(1, sizeof(*c));
  c->fd = fd;
  c->exec_pidfd = -1;
  c->id = ++d->next_conn_id;
  socklen_t len = sizeof(c->cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
    close(fd);
    free(c);
    return;
  }
  c->root = c->cred.uid == 0;
  c->member = d->have_group &&
              (c->cred.gid == d->group_gid || peer_in_group(fd, d->group_gid));
  d->conns = xrealloc(d->conns, (d->n_conns + 1) * sizeof(*d->conns));
  d->conns[d->n_conns++] = c;
  daemon_watch(d, fd, TAG_CONN, EPOLLIN);
  /* Refused per request (every op checks), so that the peer reads why. */
  if (!c->root && !c->member)
    log_info("uid %u (pid %d) connected: not root, not in the celld group",
             (unsigned)c->cred.uid, (int)c->cred.pid);
}

