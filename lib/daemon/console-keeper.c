/* Instance consoles of celld: the keeper and its protocol.
 *
 * The packets (console_send/console_recv), the keeper process that holds
 * every console's pty master and its ring buffer (console-ring.c), and
 * celld's way to reach or start it.  See console-keeper.h for the
 * protocol. */
#include "daemon/console-keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/console-ring.h"

/* ---- packets ---------------------------------------------------------------- */

int console_send(int sock, char type, const void *data, size_t len, int fd,
                 int flags) {
  struct iovec iov[2] = {{.iov_base = &type, .iov_len = 1},
                         {.iov_base = (void *)data, .iov_len = len}};
  union cell_fd_control control;
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
  cell_msg_attach_fds(&mh, &control, &fd, fd >= 0);
  ssize_t n;
  do
    n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -1 : 0;
}

ssize_t console_recv(int sock, void *buf, size_t size, int *fd, int flags) {
  union {
    char buf[CMSG_SPACE(4 * sizeof(int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = {.iov_base = buf, .iov_len = size};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = control.buf,
                      .msg_controllen = sizeof(control.buf)};
  if (fd)
    *fd = -1;
  ssize_t n;
  do
    n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (fd && *fd < 0)
        *fd = got;
      else
        close(got);
    }
  }
  if (mh.msg_flags & MSG_TRUNC) {
    if (fd && *fd >= 0) {
      close(*fd);
      *fd = -1;
    }
    errno = EMSGSIZE;
    return -1;
  }
  return n;
}

/* ---- the keeper ------------------------------------------------------------- */

/* Typed input a console's pty did not take yet: beyond this, its clients
 * are not read until it drains. */
#define INPUT_MAX (64 * 1024)
/* Output queued for a client that does not read: beyond this it is
 * dropped, so that it never holds up the console. */
#define CLIENT_BACKLOG (1 << 20)
/* Reads of one master per wakeup, so that a chatty instance cannot starve
 * the others. */
#define READS_PER_WAKEUP 16

enum kind { K_LISTEN, K_CTL, K_CONSOLE, K_CLIENT };

/* What an epoll event points to.  Objects closed while a batch of events
 * is handled are only marked dead and freed after it. */
struct kobj {
  enum kind kind;
  int fd;
  uint32_t events; /* what epoll watches for */
  bool dead;
};

struct console;

struct client {
  struct kobj k;
  struct console *con;
  char *out; /* packets: 2-byte length, then the packet */
  size_t out_len, out_off;
};

struct console {
  struct kobj k; /* fd: the pty master; -1 once the instance is gone */
  /* Our own fd of the pty's instance side.  An init may close every fd of
   * its console and open /dev/console again later (systemd does, at
   * start): without a holder the pty would hang up in between, and the
   * init's next open would fail with EIO.  So the pty lives until celld
   * says the instance stopped (CONSOLE_CTL_HANGUP). */
  int peer;
  char *name;
  struct console_ring ring;
  char *in; /* typed input the pty did not take yet */
  size_t in_len;
  struct client **clients;
  size_t n_clients;
  /* Its instance stopped and celld has not saved the buffer yet (it
   * does at the exit, or at its next startup when it was away then): the
   * keeper stays for it. */
  bool unsaved;
};

struct keeper {
  int epfd;
  struct kobj listen;
  const char *path;
  struct console **cons;
  size_t n_cons;
  struct kobj **ctls;
  size_t n_ctls;
  struct kobj **grave;
  size_t n_grave;
};

static void bury(struct keeper *kp, struct kobj *k) {
  k->dead = true;
  kp->grave = xrealloc(kp->grave, (kp->n_grave + 1) * sizeof(*kp->grave));
  kp->grave[kp->n_grave++] = k;
}

static void free_buried(struct keeper *kp) {
  for (size_t i = 0; i < kp->n_grave; i++) {
    struct kobj *k = kp->grave[i];
    if (k->kind == K_CLIENT) {
      free(((struct client *)k)->out);
    } else if (k->kind == K_CONSOLE) {
      struct console *con = (struct console *)k;
      free(con->name);
      console_ring_free(&con->ring);
      free(con->in);
      free(con->clients);
    }
    free(k);
  }
  kp->n_grave = 0;
}

static void watch(struct keeper *kp, struct kobj *k, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = k};
  if (epoll_ctl(kp->epfd, EPOLL_CTL_ADD, k->fd, &ev) < 0)
    log_error("console keeper: epoll_ctl: %s", strerror(errno));
  k->events = events;
}

static void rewatch(struct keeper *kp, struct kobj *k, uint32_t events) {
  if (k->events == events)
    return;
  struct epoll_event ev = {.events = events, .data.ptr = k};
  epoll_ctl(kp->epfd, EPOLL_CTL_MOD, k->fd, &ev);
  k->events = events;
}

static void unwatch_close(struct keeper *kp, struct kobj *k) {
  if (k->fd < 0)
    return;
  epoll_ctl(kp->epfd, EPOLL_CTL_DEL, k->fd, NULL);
  close(k->fd);
  k->fd = -1;
}

static bool input_paused(const struct console *con) {
  return con->in_len >= INPUT_MAX;
}

static void client_events(struct keeper *kp, struct client *cl) {
  rewatch(kp, &cl->k,
          (input_paused(cl->con) ? 0 : EPOLLIN) |
              (cl->out_len > cl->out_off ? EPOLLOUT : 0));
}

static void client_close(struct keeper *kp, struct client *cl) {
  struct console *con = cl->con;
  for (size_t i = 0; i < con->n_clients; i++) {
    if (con->clients[i] != cl)
      continue;
    memmove(&con->clients[i], &con->clients[i + 1],
            (con->n_clients - i - 1) * sizeof(*con->clients));
    con->n_clients--;
    break;
  }
  unwatch_close(kp, &cl->k);
  bury(kp, &cl->k);
}

static void client_flush(struct keeper *kp, struct client *cl) {
  while (cl->out_off < cl->out_len) {
    uint16_t len;
    memcpy(&len, cl->out + cl->out_off, sizeof(len));
    ssize_t n = send(cl->k.fd, cl->out + cl->out_off + sizeof(len), len,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n < 0) {
      client_close(kp, cl);
      return;
    }
    cl->out_off += sizeof(len) + len;
  }
  if (cl->out_off == cl->out_len) {
    cl->out_off = cl->out_len = 0;
  } else if (cl->out_off > cl->out_len / 2) {
    memmove(cl->out, cl->out + cl->out_off, cl->out_len - cl->out_off);
    cl->out_len -= cl->out_off;
    cl->out_off = 0;
  }
  client_events(kp, cl);
}

/* Queue one packet for a client and send what its socket takes. */
static void client_queue(struct keeper *kp, struct client *cl, char type,
                         const char *data, size_t n) {
  if (cl->out_len - cl->out_off + n > CLIENT_BACKLOG) {
    log_warn("console keeper: %s: a client does not read its console: "
             "dropping it", cl->con->name);
    client_close(kp, cl);
    return;
  }
  uint16_t len = (uint16_t)(n + 1);
  cl->out = xrealloc(cl->out, cl->out_len + sizeof(len) + len);
  memcpy(cl->out + cl->out_len, &len, sizeof(len));
  cl->out[cl->out_len + sizeof(len)] = type;
  if (n)
    memcpy(cl->out + cl->out_len + sizeof(len) + 1, data, n);
  cl->out_len += sizeof(len) + len;
  client_flush(kp, cl);
}

static void console_close_clients(struct keeper *kp, struct console *con) {
  while (con->n_clients)
    client_close(kp, con->clients[con->n_clients - 1]);
}

static void close_peer(struct console *con) {
  if (con->peer >= 0)
    close(con->peer);
  con->peer = -1;
}

static void hold_peer(struct console *con) {
  close_peer(con);
  con->peer = ioctl(con->k.fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (con->peer < 0)
    log_debug("console keeper: %s: cannot hold the pty's other side (%s): "
              "an init that reopens its console may lose it",
              con->name, strerror(errno));
}

/* The instance's side of the pty is closed: it stopped.  The buffer stays
 * for its next start (an `add` of the same name). */
static void console_hangup(struct keeper *kp, struct console *con) {
  log_debug("console keeper: %s: the instance closed its console", con->name);
  unwatch_close(kp, &con->k);
  close_peer(con);
  console_close_clients(kp, con);
  con->unsaved = true;
  free(con->in);
  con->in = NULL;
  con->in_len = 0;
}

static void console_destroy(struct keeper *kp, struct console *con) {
  for (size_t i = 0; i < kp->n_cons; i++) {
    if (kp->cons[i] != con)
      continue;
    memmove(&kp->cons[i], &kp->cons[i + 1],
            (kp->n_cons - i - 1) * sizeof(*kp->cons));
    kp->n_cons--;
    break;
  }
  unwatch_close(kp, &con->k);
  close_peer(con);
  console_close_clients(kp, con);
  bury(kp, &con->k);
}

static struct console *console_find(struct keeper *kp, const char *name) {
  for (size_t i = 0; i < kp->n_cons; i++)
    if (strcmp(kp->cons[i]->name, name) == 0)
      return kp->cons[i];
  return NULL;
}

static void master_events(struct keeper *kp, struct console *con) {
  if (con->k.fd >= 0)
    rewatch(kp, &con->k, EPOLLIN | (con->in_len ? EPOLLOUT : 0));
}

/* Hand the pty what it takes of the typed input. */
static void console_flush_input(struct keeper *kp, struct console *con) {
  bool was_paused = input_paused(con);
  while (con->in_len > 0 && con->k.fd >= 0) {
    ssize_t n = write(con->k.fd, con->in, con->in_len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      break;
    if (n <= 0) {
      /* The pty is going away: reading it will tell. */
      con->in_len = 0;
      break;
    }
    memmove(con->in, con->in + n, con->in_len - (size_t)n);
    con->in_len -= (size_t)n;
  }
  master_events(kp, con);
  if (was_paused != input_paused(con))
    for (size_t i = 0; i < con->n_clients; i++)
      client_events(kp, con->clients[i]);
}

static void console_readable(struct keeper *kp, struct console *con) {
  char buf[CONSOLE_MSG_MAX];
  for (int i = 0; i < READS_PER_WAKEUP && con->k.fd >= 0; i++) {
    ssize_t n = read(con->k.fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n < 0 && errno == EIO && con->peer >= 0) {
      /* The init hung the console up (systemd calls vhangup(2) on it),
       * which cut our hold too: take a fresh one.  The instance's end is
       * celld's to say. */
      hold_peer(con);
      if (con->peer >= 0)
        continue;
    }
    if (n <= 0) {
      /* EIO: no process holds the pty's other side any more. */
      console_hangup(kp, con);
      return;
    }
    console_ring_append(&con->ring, buf, (size_t)n);
    /* Backwards: a client that cannot keep up leaves the array. */
    for (size_t k = con->n_clients; k-- > 0;)
      client_queue(kp, con->clients[k], CONSOLE_MSG_DATA, buf, (size_t)n);
  }
}

static void client_readable(struct keeper *kp, struct client *cl,
                            uint32_t events) {
  struct console *con = cl->con;
  char buf[1 + CONSOLE_MSG_MAX];
  for (int i = 0; i < READS_PER_WAKEUP; i++) {
    if (input_paused(con)) {
      if (events & (EPOLLHUP | EPOLLERR))
        client_close(kp, cl);
      return;
    }
    ssize_t n = console_recv(cl->k.fd, buf, sizeof(buf), NULL, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n <= 0) {
      client_close(kp, cl);
      return;
    }
    if (buf[0] == CONSOLE_MSG_DATA && n > 1 && con->k.fd >= 0) {
      con->in = xrealloc(con->in, con->in_len + (size_t)n - 1);
      memcpy(con->in + con->in_len, buf + 1, (size_t)n - 1);
      con->in_len += (size_t)n - 1;
      console_flush_input(kp, con);
    } else if (buf[0] == CONSOLE_MSG_WINSIZE &&
               (size_t)n == 1 + sizeof(struct winsize) && con->k.fd >= 0) {
      struct winsize ws;
      memcpy(&ws, buf + 1, sizeof(ws));
      if (ioctl(con->k.fd, TIOCSWINSZ, &ws) < 0)
        log_debug("console keeper: %s: TIOCSWINSZ: %s", con->name, strerror(errno));
    }
  }
}

static bool set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

/* A console of that name with no pty yet (an empty buffer). */
static struct console *console_new(struct keeper *kp, const char *name) {
  struct console *con = xcalloc(1, sizeof(*con));
  con->k.kind = K_CONSOLE;
  con->k.fd = -1;
  con->peer = -1;
  con->name = xstrdup(name);
  console_ring_init(&con->ring, CONSOLE_RING_MAX);
  kp->cons = xrealloc(kp->cons, (kp->n_cons + 1) * sizeof(*kp->cons));
  kp->cons[kp->n_cons++] = con;
  return con;
}

static void ctl_add(struct keeper *kp, const char *name, int master) {
  struct console *con = console_find(kp, name);
  if (!con) {
    con = console_new(kp, name);
  } else if (con->k.fd >= 0) {
    /* A restart before we saw the old pty go: its clients follow. */
    unwatch_close(kp, &con->k);
    con->in_len = 0;
  }
  set_nonblock(master);
  con->k.fd = master;
  hold_peer(con);
  watch(kp, &con->k, EPOLLIN);
  log_debug("console keeper: %s: console added", name);
}

/* What the pty of a console still holds, into its buffer: its instance is
 * gone, and its last words may not have been read yet. */
static void console_drain(struct keeper *kp, struct console *con) {
  for (int i = 0; i < 64 && con->k.fd >= 0; i++)
    console_readable(kp, con);
}

static void ctl_save(struct keeper *kp, const char *name, int fd) {
  struct console *con = console_find(kp, name);
  if (con) {
    console_drain(kp, con);
    const char *span[2];
    size_t len[2];
    console_ring_spans(&con->ring, span, len);
    /* Emptied only here: a keeper that has no such console (a new one)
     * leaves an earlier save as it was. */
    if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0 ||
        cell_write_all(fd, span[0], len[0]) < 0 ||
        cell_write_all(fd, span[1], len[1]) < 0 || fsync(fd) < 0)
      log_warn("console keeper: %s: save the console: %s", name, strerror(errno));
    else
      con->unsaved = false;
  }
  close(fd);
}

static void ctl_load(struct keeper *kp, const char *name, int fd) {
  if (!console_find(kp, name)) {
    struct console *con = console_new(kp, name);
    cleanup_free char *buf = xmalloc(CONSOLE_RING_MAX);
    ssize_t n;
    off_t off = 0;
    /* From its start, wherever its offset is. */
    while ((n = pread(fd, buf, CONSOLE_RING_MAX, off)) > 0) {
      console_ring_append(&con->ring, buf, (size_t)n);
      off += n;
    }
    log_debug("console keeper: %s: console loaded (%zu bytes)", name, con->ring.len);
  }
  close(fd);
}

/* A stopped instance's console: its buffer, then EOF.  The socket is new
 * and empty, so 64 KiB go in without waiting. */
static void send_buffer_and_close(struct console *con, int fd) {
  const char *span[2];
  size_t len[2];
  console_ring_spans(&con->ring, span, len);
  for (int s = 0; s < 2; s++)
    for (size_t off = 0; off < len[s]; off += CONSOLE_MSG_MAX) {
      size_t n = len[s] - off < CONSOLE_MSG_MAX ? len[s] - off : CONSOLE_MSG_MAX;
      if (console_send(fd, CONSOLE_MSG_DATA, span[s] + off, n, -1, MSG_DONTWAIT) < 0)
        break;
    }
  close(fd);
}

/* Refuse an attach: the reason, then EOF. */
static void refuse(int fd, const char *fmt, const char *name) {
  cleanup_free char *msg = xasprintf(fmt, name);
  console_send(fd, CONSOLE_MSG_ERROR, msg, strlen(msg), -1, MSG_DONTWAIT);
  close(fd);
}

static void ctl_attach(struct keeper *kp, const char *name, int fd) {
  struct console *con = console_find(kp, name);
  if (!con) {
    refuse(fd, "no console for `%s`: it was lost with an earlier console "
               "keeper; it comes back when the instance starts again", name);
    return;
  }
  if (con->k.fd < 0) {
    send_buffer_and_close(con, fd);
    return;
  }
  set_nonblock(fd);
  struct client *cl = xcalloc(1, sizeof(*cl));
  cl->k.kind = K_CLIENT;
  cl->k.fd = fd;
  cl->con = con;
  con->clients = xrealloc(con->clients, (con->n_clients + 1) * sizeof(*con->clients));
  con->clients[con->n_clients++] = cl;
  watch(kp, &cl->k, input_paused(con) ? 0 : EPOLLIN);
  /* What it missed: the buffer, then live output. */
  const char *span[2];
  size_t len[2];
  console_ring_spans(&con->ring, span, len);
  for (int s = 0; s < 2 && !cl->k.dead; s++)
    for (size_t off = 0; off < len[s] && !cl->k.dead; off += CONSOLE_MSG_MAX) {
      size_t n = len[s] - off < CONSOLE_MSG_MAX ? len[s] - off : CONSOLE_MSG_MAX;
      client_queue(kp, cl, CONSOLE_MSG_DATA, span[s] + off, n);
    }
  log_debug("console keeper: %s: a client attached (%zu now)", name, con->n_clients);
}

static void ctl_close(struct keeper *kp, struct kobj *k) {
  for (size_t i = 0; i < kp->n_ctls; i++) {
    if (kp->ctls[i] != k)
      continue;
    memmove(&kp->ctls[i], &kp->ctls[i + 1], (kp->n_ctls - i - 1) * sizeof(*kp->ctls));
    kp->n_ctls--;
    break;
  }
  unwatch_close(kp, k);
  bury(kp, k);
  log_debug("console keeper: celld disconnected");
}

static void ctl_message(struct keeper *kp, const char *msg, size_t n, int fd) {
  const char *name = msg + 1;
  size_t name_len = n - 1;
  if (name_len == 0 || name_len > 255 || strlen(name) != name_len) {
    log_warn("console keeper: a malformed request: ignored");
    if (fd >= 0)
      close(fd);
    return;
  }
  switch (msg[0]) {
  case CONSOLE_CTL_ADD:
    if (fd < 0) {
      log_warn("console keeper: %s: add without a pty", name);
      return;
    }
    ctl_add(kp, name, fd);
    return;
  case CONSOLE_CTL_ATTACH:
    if (fd < 0) {
      log_warn("console keeper: %s: attach without a socket", name);
      return;
    }
    ctl_attach(kp, name, fd);
    return;
  case CONSOLE_CTL_SAVE:
  case CONSOLE_CTL_LOAD:
    if (fd < 0) {
      log_warn("console keeper: %s: save or load without a file", name);
      return;
    }
    (msg[0] == CONSOLE_CTL_SAVE ? ctl_save : ctl_load)(kp, name, fd);
    return;
  case CONSOLE_CTL_HANGUP: {
    if (fd >= 0)
      close(fd);
    struct console *con = console_find(kp, name);
    if (con && con->k.fd >= 0)
      console_readable(kp, con); /* its last words first */
    if (con && con->k.fd >= 0)
      console_hangup(kp, con);
    return;
  }
  case CONSOLE_CTL_REMOVE: {
    if (fd >= 0)
      close(fd);
    struct console *con = console_find(kp, name);
    if (con) {
      console_destroy(kp, con);
      log_debug("console keeper: %s: console removed", name);
    }
    return;
  }
  default:
    log_warn("console keeper: unknown request `%c`: ignored", msg[0]);
    if (fd >= 0)
      close(fd);
  }
}

static void ctl_readable(struct keeper *kp, struct kobj *k) {
  char buf[512];
  for (;;) {
    int fd = -1;
    ssize_t n = console_recv(k->fd, buf, sizeof(buf) - 1, &fd, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n <= 0) {
      ctl_close(kp, k);
      return;
    }
    buf[n] = '\0';
    ctl_message(kp, buf, (size_t)n, fd);
  }
}

/* celld (uid 0 only: the socket's mode says so too). */
static bool accept_ctl(struct keeper *kp) {
  int fd = accept4(kp->listen.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return false;
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
    log_warn("console keeper: refused a connection from uid %u", (unsigned)cred.uid);
    close(fd);
    return true;
  }
  struct kobj *k = xcalloc(1, sizeof(*k));
  k->kind = K_CTL;
  k->fd = fd;
  kp->ctls = xrealloc(kp->ctls, (kp->n_ctls + 1) * sizeof(*kp->ctls));
  kp->ctls[kp->n_ctls++] = k;
  watch(kp, k, EPOLLIN);
  log_debug("console keeper: celld (pid %d) connected", (int)cred.pid);
  return true;
}

static bool holds_something(const struct keeper *kp) {
  if (kp->n_ctls)
    return true;
  for (size_t i = 0; i < kp->n_cons; i++)
    if (kp->cons[i]->k.fd >= 0 || kp->cons[i]->unsaved)
      return true;
  return false;
}

static void handle(struct keeper *kp, struct kobj *k, uint32_t events) {
  if (k->dead)
    return;
  switch (k->kind) {
  case K_LISTEN:
    while (accept_ctl(kp))
      ;
    return;
  case K_CTL:
    ctl_readable(kp, k);
    return;
  case K_CONSOLE: {
    struct console *con = (struct console *)k;
    if (events & EPOLLOUT)
      console_flush_input(kp, con);
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
      console_readable(kp, con);
    return;
  }
  case K_CLIENT: {
    struct client *cl = (struct client *)k;
    if (events & EPOLLOUT)
      client_flush(kp, cl);
    if (!cl->k.dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
      client_readable(kp, cl, events);
    return;
  }
  }
}

void console_keeper_run(int listenfd, const char *path) {
  struct keeper kp = {.path = path};
  kp.listen.kind = K_LISTEN;
  kp.listen.fd = listenfd;
  kp.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (kp.epfd < 0) {
    log_error("console keeper: epoll_create1: %s", strerror(errno));
    unlink(path);
    _exit(1);
  }
  watch(&kp, &kp.listen, EPOLLIN);
  log_debug("console keeper: pid %d serving %s", (int)getpid(), path);
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(kp.epfd, evs, 64, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      log_error("console keeper: epoll_wait: %s", strerror(errno));
      break;
    }
    for (int i = 0; i < n; i++)
      handle(&kp, evs[i].data.ptr, evs[i].events);
    free_buried(&kp);
    /* Nothing to hold and nobody to serve: go, unless a celld is just
     * knocking.  The name goes first, while we still listen: a celld that
     * finds no name starts a new keeper; one that connected already sees
     * us close and does the same. */
    while (!holds_something(&kp))
      if (!accept_ctl(&kp))
        goto done;
  }
done:
  unlink(path);
  log_debug("console keeper: nothing left to hold: exiting");
  _exit(0);
}

/* In the forked child: a process of its own, holding nothing of celld's. */
static void keeper_child(int listenfd, const char *path) {
  setsid();
  int keep[2] = {listenfd, log_fd()};
  cell_close_fds_from(3, keep, keep[1] >= 0 ? 2 : 1);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    if (null > STDERR_FILENO)
      close(null);
  }
  cell_reset_signals();
  signal(SIGPIPE, SIG_IGN);
  /* An fd per running instance: as many as we may. */
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  prctl(PR_SET_NAME, "celld-console", 0, 0, 0);
  if (chdir("/") < 0)
    log_debug("console keeper: chdir /: %s", strerror(errno));
  console_keeper_run(listenfd, path);
}

/* A keeper that stopped answering must not stop celld: bounded sends. */
static void set_send_timeout(int fd) {
  struct timeval tv = {.tv_sec = 2};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int console_keeper_connect(const char *state_dir, bool *spawned, pid_t *pid,
                           cell_error **err) {
  *spawned = false;
  *pid = 0;
  cleanup_free char *path = xasprintf("%s/%s", state_dir, CONSOLE_SOCKET);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path))
    return cell_fail(err, ENAMETOOLONG, "console keeper socket `%s`", path);
  strcpy(sa.sun_path, path);
  cleanup_close int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0)
    return cell_fail_errno(err, "socket");
  if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
    set_send_timeout(s);
    return steal_fd(&s);
  }
  if (errno != ECONNREFUSED && errno != ENOENT)
    return cell_fail_errno(err, "connect to the console keeper `%s`", path);
  /* None answers (a name left by a keeper that died, or none): a new one,
   * listening before it exists and with our connection already queued, so
   * that it never finds itself with nothing to do at birth. */
  cleanup_close int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (l < 0)
    return cell_fail_errno(err, "socket");
  unlink(path);
  mode_t old = umask(0177);
  int r = bind(l, (struct sockaddr *)&sa, sizeof(sa));
  umask(old);
  if (r < 0 || listen(l, 16) < 0)
    return cell_fail_errno(err, "console keeper socket `%s`", path);
  if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    cell_fail_errno(err, "connect to the console keeper `%s`", path);
    unlink(path);
    return -1;
  }
  pid_t child = fork();
  if (child < 0) {
    cell_fail_errno(err, "fork the console keeper");
    unlink(path);
    return -1;
  }
  if (child == 0)
    keeper_child(l, path);
  *spawned = true;
  *pid = child;
  set_send_timeout(s);
  return steal_fd(&s);
}
