/* celld's event loop, on top of its other files: startup (state dir,
 * signals, the records, the listening socket), the epoll loop that hands
 * each event to its owner, accepted connections and their request lines
 * handed to the dispatcher (daemon-ops.c).  It sets the hooks through which
 * the instances' side reaches the clients. */
#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-console.h"
#include "daemon/daemon-dnsmasq.h"
#include "daemon/daemon-exec.h"
#include "daemon/daemon-image.h"
#include "daemon/daemon-http.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-log.h"
#include "daemon/daemon-lxcfs.h"
#include "daemon/daemon-oom.h"
#include "daemon/daemon-ops.h"
#include "daemon/daemon-ready.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-startup.h"
#include "daemon/daemon-types.h"

/* SIGCHLD: reap what is not an instance's init (those are waited for
 * through their pidfds): processes orphaned to us as subreaper. */
static void reap_orphans(struct daemon *d) {
  for (;;) {
    siginfo_t si = {0};
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
      return;
    if (si.si_pid == lxcfs_pid(d)) {
      lxcfs_on_exit(d);
      continue;
    }
    if (dnsmasq_on_exit(d, si.si_pid))
      continue;
    struct instance *owner = NULL;
    for (size_t i = 0; i < d->n_inst; i++)
      if (d->inst[i]->pidfd >= 0 && d->inst[i]->pid == si.si_pid)
        owner = d->inst[i];
    if (owner) {
      lifecycle_on_pidfd(d, owner->pidfd);
      continue;
    }
    struct conn *execer = NULL;
    for (size_t i = 0; i < d->n_conns; i++)
      if (d->conns[i]->exec_pidfd >= 0 && d->conns[i]->exec_pid == si.si_pid)
        execer = d->conns[i];
    if (execer) {
      exec_on_exit(d, execer->exec_pidfd);
      continue;
    }
    waitpid(si.si_pid, NULL, WNOHANG);
  }
}

/* recv, keeping up to 3 fds sent along (exec's stdio); more are closed. */
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

static void on_readable(struct daemon *d, struct conn *c) {
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
        conn_error(d, c, API_INVALID_REQUEST, msg);
        if ((c = daemon_find_conn(d, id))) {
          c->closing = true;
          conn_flush(d, c);
        }
      }
      return;
    }
    size_t len = (size_t)(nl - c->in);
    /* Every byte received, a NUL too: the parser gets exactly len bytes
     * (a copy cut at a NUL would be shorter than len). */
    cleanup_free char *line = xmalloc(len + 1);
    memcpy(line, c->in, len);
    line[len] = '\0';
    memmove(c->in, nl + 1, c->in_len - len - 1);
    c->in_len -= len + 1;
    if (len > DAEMON_MAX_REQUEST) {
      cleanup_free char *msg = xasprintf("request larger than %d bytes", DAEMON_MAX_REQUEST);
      conn_error(d, c, API_INVALID_REQUEST, msg);
      continue;
    }
    if (len > 0)
      ops_handle_line(d, c, line, len);
    /* Fds are for the request they came with, not a later one. */
    if ((c = daemon_find_conn(d, id)))
      conn_drop_fds(c);
    /* A peer with no rights has read its refusal: it has no use for the
     * connection, and must not hold one of ours. */
    if (c && !c->root && !c->member && len > 0) {
      c->closing = true;
      conn_flush(d, c);
      return;
    }
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

/* Out of fds, the pending peer would stay in the backlog and the listener
 * readable: epoll would wake us at once, forever.  The spare fd makes room
 * to accept that peer and close it. */
static void shed_pending_peer(struct daemon *d) {
  if (d->sparefd < 0)
    return;
  close(d->sparefd);
  int fd = accept4(d->listenfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd >= 0)
    close(fd);
  d->sparefd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  log_warn("out of file descriptors: a connection was closed unanswered");
}

/* Over max_connections_per_uid or max_connections (root is never counted,
 * so that it always gets in): why, or NULL when the peer may stay. */
static char *over_limit(struct daemon *d, const struct conn *c) {
  if (c->root)
    return NULL;
  int of_uid = 0, all = 0;
  for (size_t i = 0; i < d->n_conns; i++) {
    const struct conn *o = d->conns[i];
    if (o == c || o->root)
      continue;
    all++;
    of_uid += o->cred.uid == c->cred.uid;
  }
  if (of_uid >= d->cfg->max_connections_per_uid)
    return xasprintf("too many connections of uid %u (max_connections_per_uid "
                     "= %d in celld.conf): close some, then retry",
                     (unsigned)c->cred.uid, d->cfg->max_connections_per_uid);
  if (all >= d->cfg->max_connections)
    return xasprintf("too many connections (max_connections = %d in "
                     "celld.conf): retry later", d->cfg->max_connections);
  return NULL;
}

static void on_accept(struct daemon *d) {
  int fd = accept4(d->listenfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0 && (errno == EMFILE || errno == ENFILE))
    shed_pending_peer(d);
  if (fd < 0)
    return;
  struct conn *c = xcalloc(1, sizeof(*c));
  c->fd = fd;
  c->exec_pidfd = c->helper_sock = c->helper_pidfd = c->spawn_pidfd = -1;
  c->import_pidfd = -1;
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
  cleanup_free char *refusal = over_limit(d, c);
  if (refusal) {
    log_debug("uid %u (pid %d): %s", (unsigned)c->cred.uid, (int)c->cred.pid,
              refusal);
    uint64_t id = c->id;
    conn_error(d, c, API_FAILED, refusal);
    if ((c = daemon_find_conn(d, id))) {
      c->closing = true;
      conn_flush(d, c);
    }
    return;
  }
  /* Refused per request (every op checks), so that the peer reads why;
   * until it asks, it may wait a little, not hold the connection. */
  if (!c->root && !c->member) {
    c->deadline_ms = daemon_now_ms() + STRANGER_IDLE_MS;
    log_debug("uid %u (pid %d) connected: not root, not in the celld group",
              (unsigned)c->cred.uid, (int)c->cred.pid);
  }
}

/* The deadline timer rings at the earliest deadline of the connections
 * (a peer with no rights that idles, an exec that does not start). */
static void arm_deadline(struct daemon *d) {
  uint64_t first = 0;
  for (size_t i = 0; i < d->n_conns; i++) {
    uint64_t t = d->conns[i]->deadline_ms;
    if (t && (!first || t < first))
      first = t;
  }
  struct itimerspec its = {0};
  if (first) {
    its.it_value.tv_sec = (time_t)(first / 1000);
    its.it_value.tv_nsec = (long)(first % 1000) * 1000000;
  }
  timerfd_settime(d->deadlinefd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_deadline(struct daemon *d) {
  uint64_t ticks;
  if (read(d->deadlinefd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN)
    return;
  uint64_t now = daemon_now_ms();
  /* Closing one changes the array: start over after each. */
  for (size_t i = 0; i < d->n_conns;) {
    struct conn *c = d->conns[i];
    if (!c->deadline_ms || c->deadline_ms > now) {
      i++;
      continue;
    }
    c->deadline_ms = 0;
    if (c->helper_sock >= 0) {
      exec_on_timeout(d, c);
    } else {
      log_debug("uid %u (pid %d): idle with no rights: closed",
                (unsigned)c->cred.uid, (int)c->cred.pid);
      conn_close(d, c);
    }
    i = 0;
  }
}

static int open_listener(struct daemon *d, cell_error **err) {
  const char *path = d->cfg->socket_path;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path))
    return cell_fail(err, 0, "socket `%s`", path);
  strcpy(sa.sun_path, path);
  cleanup_free char *parent = xstrdup(path);
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent) {
    *slash = '\0';
    if (cell_mkdir_p(parent, 0755, err) < 0)
      return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return cell_fail_errno(err, "socket");
  /* A socket file left by a killed celld: remove it, unless a live celld
   * answers on it. */
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
    close(probe);
    close(fd);
    return cell_fail(err, 0, "socket `%s`: another celld answers on it", path);
  }
  if (probe >= 0)
    close(probe);
  unlink(path);
  mode_t old = umask(0177);
  int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  umask(old);
  if (r < 0 || listen(fd, 128) < 0) {
    cell_fail_errno(err, "socket `%s`", path);
    close(fd);
    return -1;
  }
  if (chmod(path, d->cfg->socket_mode) < 0 ||
      (d->have_group && chown(path, 0, d->group_gid) < 0)) {
    cell_fail_errno(err, "socket `%s`: set its mode/group", path);
    close(fd);
    return -1;
  }
  d->listenfd = fd;
  return 0;
}

static int open_deadline_timer(struct daemon *d, cell_error **err) {
  d->deadlinefd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (d->deadlinefd < 0)
    return cell_fail_errno(err, "timerfd");
  d->sparefd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (d->sparefd < 0)
    return cell_fail_errno(err, "open `/dev/null`");
  daemon_watch(d, d->deadlinefd, TAG_DEADLINE, EPOLLIN);
  return 0;
}

/* How long a new celld waits for the state dir's lock: the processes a
 * celld killed with -9 had forked (an exec helper, a container's init
 * before it closes celld's fds) hold it for moments after it died. */
#define STATE_LOCK_WAIT_MS 5000

static int lock_state_dir(int fd) {
  for (int waited = 0;; waited += 50) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
      return 0;
    if (errno != EWOULDBLOCK || waited >= STATE_LOCK_WAIT_MS)
      return -1;
    usleep(50 * 1000);
  }
}

/* Each pool's instances/ directory, root's alone (an instance reaches its
 * disk through its idmapped mount, never by this path).  A pool that
 * cannot be made ready (its filesystem not mounted yet) is said in the
 * log and in `pools`; celld serves the others. */
static void prepare_pools(const struct daemon_config *c) {
  for (size_t i = 0; i < c->n_pools; i++) {
    cleanup_free char *dir = xasprintf("%s/instances", c->pools[i].path);
    cleanup_error cell_error *err = NULL;
    if (cell_mkdir_p(dir, 0700, &err) < 0)
      log_warn("pool `%s`: %s", c->pools[i].name, err->msg);
  }
}

static int open_state(struct daemon *d, int *lockfd, cell_error **err) {
  const struct daemon_config *c = d->cfg;
  if (cell_mkdir_p(c->state_dir, 0711, err) < 0)
    return -1;
  /* Instance roots lie below: their (unprivileged) root must traverse. */
  chmod(c->state_dir, 0711);
  d->instances_dir = xasprintf("%s/instances", c->state_dir);
  d->runroot = xasprintf("%s/run", c->state_dir);
  d->execdir = xasprintf("%s/exec", c->state_dir);
  if (cell_mkdir_p(d->instances_dir, 0711, err) < 0 ||
      cell_mkdir_p(d->runroot, 0711, err) < 0 ||
      cell_mkdir_p(d->execdir, 0700, err) < 0)
    return -1;
  chmod(d->instances_dir, 0711);
  cleanup_free char *lock = xasprintf("%s/celld.lock", c->state_dir);
  *lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (*lockfd < 0)
    return cell_fail_errno(err, "open `%s`", lock);
  if (lock_state_dir(*lockfd) < 0)
    return cell_fail_errno(err, "state dir `%s`: another celld uses it", c->state_dir);
  d->instdirfd = open(d->instances_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d->instdirfd < 0)
    return cell_fail_errno(err, "open `%s`", d->instances_dir);
  prepare_pools(c);
  return 0;
}

static int open_signals(struct daemon *d, sigset_t *old, cell_error **err) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &set, old) < 0)
    return cell_fail_errno(err, "sigprocmask");
  d->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (d->sigfd < 0)
    return cell_fail_errno(err, "signalfd");
  return 0;
}

static void on_signal(struct daemon *d) {
  struct signalfd_siginfo si;
  while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    if (si.ssi_signo == SIGCHLD)
      reap_orphans(d);
    else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
      log_info("signal %d: exiting (instances keep running)", (int)si.ssi_signo);
      d->quit = true;
    }
  }
}

static void loop(struct daemon *d) {
  struct epoll_event evs[64];
  while (!d->quit) {
    int n = epoll_wait(d->epfd, evs, 64, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      log_error("epoll_wait: %s", strerror(errno));
      return;
    }
    for (int i = 0; i < n; i++) {
      enum tag t = (enum tag)(evs[i].data.u64 & 0xff);
      int fd = (int)(evs[i].data.u64 >> 8);
      if (t == TAG_LISTEN) {
        on_accept(d);
      } else if (t == TAG_SIGNAL) {
        on_signal(d);
      } else if (t == TAG_PIDFD) {
        lifecycle_on_pidfd(d, fd);
      } else if (t == TAG_TIMER) {
        lifecycle_on_timer(d, fd);
      } else if (t == TAG_OOM) {
        oom_on_tick(d);
      } else if (t == TAG_OOM_EVENT) {
        oom_on_event(d, fd);
      } else if (t == TAG_EXEC) {
        exec_on_exit(d, fd);
      } else if (t == TAG_EXEC_HELPER) {
        exec_on_helper(d, fd);
      } else if (t == TAG_DEADLINE) {
        on_deadline(d);
      } else if (t == TAG_LXCFS) {
        lxcfs_on_pidfd(d, fd);
      } else if (t == TAG_LXCFS_TIMER) {
        lxcfs_on_timer(d);
      } else if (t == TAG_DNSMASQ) {
        dnsmasq_on_pidfd(d, fd);
      } else if (t == TAG_DNSMASQ_TIMER) {
        dnsmasq_on_timer(d, fd);
      } else if (t == TAG_IMAGE_JOB) {
        image_job_on_readable(d, fd);
      } else if (t == TAG_HTTP || t == TAG_HTTP_TIMER) {
        http_on_event(d);
      } else {
        struct conn *c = daemon_conn_by_fd(d, fd);
        if (!c)
          continue;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
          on_readable(d, c);
        else if (evs[i].events & EPOLLOUT)
          conn_flush(d, c);
      }
    }
    arm_deadline(d);
    if (d->names_changed) {
      d->names_changed = false;
      dnsmasq_sync(d);
    }
  }
}

static void teardown(struct daemon *d) {
  http_stop(d);
  daemon_image_stop_jobs(d);
  image_store_free(steal_pointer(&d->store));
  daemon_console_close(d);
  lxcfs_stop(d);
  dnsmasq_stop(d);
  while (d->n_conns)
    conn_close(d, d->conns[0]);
  free(d->conns);
  for (size_t i = 0; i < d->n_inst; i++)
    daemon_free_instance(d, d->inst[i]);
  free(d->inst);
  if (d->listenfd >= 0) {
    close(d->listenfd);
    unlink(d->cfg->socket_path);
  }
  if (d->sigfd >= 0)
    close(d->sigfd);
  if (d->deadlinefd >= 0)
    close(d->deadlinefd);
  if (d->sparefd >= 0)
    close(d->sparefd);
  if (d->procfs >= 0)
    close(d->procfs);
  if (d->oomfd >= 0)
    close(d->oomfd);
  if (d->epfd >= 0)
    close(d->epfd);
  if (d->instdirfd >= 0)
    close(d->instdirfd);
  if (d->logfd >= 0)
    close(d->logfd);
  free(d->instances_dir);
  free(d->runroot);
  free(d->execdir);
}

static int resolve_group(struct daemon *d, cell_error **err) {
  if (!d->cfg->group)
    return 0;
  struct group *g = getgrnam(d->cfg->group);
  if (!g) {
    long long n;
    if (!cell_parse_ll(d->cfg->group, 0, UINT32_MAX - 1, &n))
      return cell_fail(err, 0, "group `%s`: no such group", d->cfg->group);
    d->group_gid = (gid_t)n;
  } else {
    d->group_gid = g->gr_gid;
  }
  d->have_group = true;
  return 0;
}

/* A few fds per instance: the usual soft limit of 1024 would stop celld
 * at a few hundred.  The hard limit is what the admin allows. */
static void raise_fd_limit(void) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) < 0)
      log_warn("raise RLIMIT_NOFILE: %s", strerror(errno));
  }
}

int daemon_run(const struct daemon_config *cfg, cell_error **err) {
  struct daemon d = {.cfg = cfg, .epfd = -1, .listenfd = -1, .sigfd = -1,
                     .instdirfd = -1, .oomfd = -1, .keeperfd = -1,
                     .logfd = -1,
                     .ready_fd = cfg->ready_fd,
                     .deadlinefd = -1, .sparefd = -1, .procfs = -1,
                     .emit_event = conn_emit_event,
                     .answer_waiter = conn_answer_waiter};
  cleanup_close int lockfd = -1;
  sigset_t old;
  int r = -1;
  /* Instances re-parent to us when their runtime-side parent goes: we
   * are the one who reaps and watches them. */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
    cell_fail_errno(err, "PR_SET_CHILD_SUBREAPER");
    return -1;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  d.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (d.epfd < 0) {
    cell_fail_errno(err, "epoll_create1");
    return -1;
  }
  if (daemon_log_open(cfg->log_path, &d.logfd, err) < 0)
    goto out;
  if (resolve_group(&d, err) < 0 || open_signals(&d, &old, err) < 0 ||
      open_state(&d, &lockfd, err) < 0 || daemon_image_open_store(&d, err) < 0 ||
      daemon_load_instances(&d, err) < 0 || open_listener(&d, err) < 0)
    goto out;
  daemon_collect_images(&d);
  if (open_deadline_timer(&d, err) < 0)
    goto out;
  daemon_console_init(&d);
  lxcfs_init(&d);
  dnsmasq_init(&d);
  daemon_watch(&d, d.listenfd, TAG_LISTEN, EPOLLIN);
  daemon_watch(&d, d.sigfd, TAG_SIGNAL, EPOLLIN);
  if (oom_open_timer(&d, err) < 0 || http_start(&d, err) < 0)
    goto out;
  /* The socket accepts from here on: whoever waits may go on (requests
   * that come during the autostart wait for it in the socket's queue). */
  if (daemon_announce_ready(&d, err) < 0)
    goto out;
  if (cfg->autostart)
    daemon_autostart(&d);
  log_info("serving on %s (state %s, %zu instances)", cfg->socket_path,
           cfg->state_dir, d.n_inst);
  loop(&d);
  daemon_announce_stopping(&d);
  r = 0;
out:
  teardown(&d);
  sigprocmask(SIG_SETMASK, &old, NULL);
  return r;
}

