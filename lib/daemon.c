/* celld's event loop: instances, clients, signals, timers. */
#include "daemon.h"

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

#include "cgroup.h"
#include "container-cgroup.h"
#include "container.h"
#include "exec.h"
#include "instance.h"
#include "json.h"
#include "log.h"
#include "spec.h"
#include "terminal.h"
#include "util.h"

#define DEFAULT_INIT "/sbin/init"
#define MAX_OUTBUF (1 << 20)
#define RESTART_DELAY_MS 1000
/* How often the OOM kill counters of running instances are read. */
#define OOM_POLL_MS 500

enum after_exit { AFTER_NOTHING, AFTER_START, AFTER_DESTROY };

struct instance {
  struct instance_record *rec;
  pid_t pid;
  int pidfd;          /* -1 when not running */
  bool child;         /* ours to wait for: the exit status is known */
  bool stopping;      /* we asked it to stop: not a failure */
  enum after_exit after;
  int timerfd;        /* SIGKILL deadline, or the restart delay */
  bool timer_restart; /* the timer is the restart delay */
  uint64_t *waiters;  /* clients waiting for it to stop */
  size_t n_waiters;
  struct cgroup *cgroup;        /* while running: for its OOM kill count */
  unsigned long long oom_kills; /* the count already reported */
};

struct conn {
  uint64_t id;
  int fd;
  struct ucred cred;
  bool root, member;
  bool subscriber;
  char *in;
  size_t in_len;
  char *out;
  size_t out_len;
  bool closing; /* close once out is flushed */
  int fds[3];   /* received with SCM_RIGHTS, for the next request */
  size_t n_fds;
  pid_t exec_pid;  /* the exec running for this client */
  int exec_pidfd;  /* -1 when none */
};

enum tag { TAG_LISTEN, TAG_SIGNAL, TAG_CONN, TAG_PIDFD, TAG_TIMER, TAG_EXEC,
           TAG_OOM };

struct daemon {
  const struct daemon_config *cfg;
  int epfd, listenfd, sigfd, instdirfd, oomfd;
  char *instances_dir, *runroot, *execdir;
  gid_t group_gid;
  bool have_group;
  struct instance **inst;
  size_t n_inst;
  struct conn **conns;
  size_t n_conns;
  uint64_t next_conn_id;
  bool quit;
};

/* epoll data: a tag in the low byte, an index-free handle above.  The
 * handle is the fd: each fd is in one place only. */
static uint64_t ev_data(enum tag t, int fd) { return ((uint64_t)fd << 8) | t; }

static int watch(struct daemon *d, int fd, enum tag t, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.u64 = ev_data(t, fd)};
  return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void unwatch(struct daemon *d, int fd) {
  epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void on_exec_exit(struct daemon *d, int pidfd);

/* ---- instances ------------------------------------------------------------ */

static char *inst_dir(struct daemon *d, const char *name) {
  return xasprintf("%s/%s", d->instances_dir, name);
}

static struct instance *find_instance(struct daemon *d, const char *name) {
  for (size_t i = 0; i < d->n_inst; i++)
    if (strcmp(d->inst[i]->rec->name, name) == 0)
      return d->inst[i];
  return NULL;
}

static struct instance *add_instance(struct daemon *d,
                                     struct instance_record *rec) {
  struct instance *in = xcalloc(1, sizeof(*in));
  in->rec = rec;
  in->pidfd = -1;
  in->timerfd = -1;
  d->inst = xrealloc(d->inst, (d->n_inst + 1) * sizeof(*d->inst));
  d->inst[d->n_inst++] = in;
  return in;
}

static void free_instance(struct daemon *d, struct instance *in) {
  if (in->pidfd >= 0) {
    unwatch(d, in->pidfd);
    close(in->pidfd);
  }
  if (in->timerfd >= 0) {
    unwatch(d, in->timerfd);
    close(in->timerfd);
  }
  cgroup_free(in->cgroup);
  instance_record_free(in->rec);
  free(in->waiters);
  free(in);
}

static void remove_instance(struct daemon *d, struct instance *in) {
  for (size_t i = 0; i < d->n_inst; i++) {
    if (d->inst[i] != in)
      continue;
    memmove(&d->inst[i], &d->inst[i + 1], (d->n_inst - i - 1) * sizeof(*d->inst));
    d->n_inst--;
    break;
  }
  free_instance(d, in);
}

static void set_state(struct instance *in, const char *state) {
  free(in->rec->state);
  in->rec->state = xstrdup(state);
}

static int save(struct daemon *d, struct instance *in, cell_error **err) {
  return instance_record_save(d->instdirfd, in->rec, err);
}

static void save_or_log(struct daemon *d, struct instance *in) {
  cell_error *err = NULL;
  if (save(d, in, &err) < 0) {
    log_error("%s", err->msg);
    cell_error_free(&err);
  }
}

/* ---- clients --------------------------------------------------------------- */

static struct conn *find_conn(struct daemon *d, uint64_t id) {
  for (size_t i = 0; i < d->n_conns; i++)
    if (d->conns[i]->id == id)
      return d->conns[i];
  return NULL;
}

static struct conn *conn_by_fd(struct daemon *d, int fd) {
  for (size_t i = 0; i < d->n_conns; i++)
    if (d->conns[i]->fd == fd)
      return d->conns[i];
  return NULL;
}

static void drop_fds(struct conn *c) {
  for (size_t i = 0; i < c->n_fds; i++)
    close(c->fds[i]);
  c->n_fds = 0;
}

static void close_conn(struct daemon *d, struct conn *c) {
  for (size_t i = 0; i < d->n_conns; i++) {
    if (d->conns[i] != c)
      continue;
    memmove(&d->conns[i], &d->conns[i + 1], (d->n_conns - i - 1) * sizeof(*d->conns));
    d->n_conns--;
    break;
  }
  unwatch(d, c->fd);
  close(c->fd);
  drop_fds(c);
  if (c->exec_pidfd >= 0) {
    /* The client went: its command loses its terminal (or its reader). */
    syscall(SYS_pidfd_send_signal, c->exec_pidfd, SIGHUP, NULL, 0);
    unwatch(d, c->exec_pidfd);
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
static bool flush_conn(struct daemon *d, struct conn *c) {
  while (c->out_len > 0) {
    ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n <= 0) {
      close_conn(d, c);
      return false;
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
  }
  if (c->out_len == 0 && c->closing) {
    close_conn(d, c);
    return false;
  }
  update_conn_events(d, c);
  return true;
}

static bool send_line(struct daemon *d, struct conn *c, const char *json) {
  size_t len = strlen(json);
  if (c->out_len + len + 1 > MAX_OUTBUF) {
    /* A subscriber that does not read loses its subscription, not our
     * memory. */
    log_warn("client %d: output buffer full: closing", (int)c->cred.pid);
    close_conn(d, c);
    return false;
  }
  c->out = xrealloc(c->out, c->out_len + len + 1);
  memcpy(c->out + c->out_len, json, len);
  c->out[c->out_len + len] = '\n';
  c->out_len += len + 1;
  return flush_conn(d, c);
}

static void reply_error(struct daemon *d, struct conn *c, const char *msg) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", false);
  json_gen_kv_string(g, "error", msg);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  send_line(d, c, out);
}

static void reply_ok(struct daemon *d, struct conn *c, struct instance *in) {
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
  send_line(d, c, out);
}

static bool may_see(const struct conn *c, const struct instance *in) {
  return c->root || (c->member && in->rec->owner == c->cred.uid);
}

static void emit_event(struct daemon *d, struct instance *in, const char *event) {
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
    struct conn *c = find_conn(d, ids[i]);
    if (c && c->subscriber && may_see(c, in))
      send_line(d, c, line);
  }
  free(ids);
}

/* Start counting the instance's OOM kills from what they are now. */
static void watch_oom(struct instance *in) {
  cgroup_free(in->cgroup);
  in->cgroup = NULL;
  cell_error *err = NULL;
  if (cgroup_open(in->rec->cgroup, &in->cgroup, &err) < 0 ||
      cgroup_oom_count(in->cgroup, &in->oom_kills, &err) < 0) {
    log_debug("%s: no OOM events: %s", in->rec->name, err->msg);
    cell_error_free(&err);
    cgroup_free(in->cgroup);
    in->cgroup = NULL;
  }
}

static void unwatch_oom(struct instance *in) {
  cgroup_free(in->cgroup);
  in->cgroup = NULL;
}

static void on_oom_check(struct daemon *d, struct instance *in) {
  unsigned long long n = 0;
  cell_error *err = NULL;
  if (!in->cgroup || cgroup_oom_count(in->cgroup, &n, &err) < 0) {
    cell_error_free(&err);
    return;
  }
  if (n > in->oom_kills) {
    in->oom_kills = n;
    emit_event(d, in, "oom");
  }
}

static void on_oom_tick(struct daemon *d) {
  uint64_t ticks;
  if (read(d->oomfd, &ticks, sizeof(ticks)) < 0)
    return;
  for (size_t i = 0; i < d->n_inst; i++)
    on_oom_check(d, d->inst[i]);
}

static void answer_waiters(struct daemon *d, struct instance *in,
                           const char *error) {
  for (size_t i = 0; i < in->n_waiters; i++) {
    struct conn *c = find_conn(d, in->waiters[i]);
    if (!c)
      continue;
    if (error)
      reply_error(d, c, error);
    else
      reply_ok(d, c, in);
  }
  free(in->waiters);
  in->waiters = NULL;
  in->n_waiters = 0;
}

static void add_waiter(struct instance *in, struct conn *c) {
  in->waiters = xrealloc(in->waiters, (in->n_waiters + 1) * sizeof(*in->waiters));
  in->waiters[in->n_waiters++] = c->id;
}

/* ---- timers ---------------------------------------------------------------- */

static void arm_timer(struct daemon *d, struct instance *in, long ms,
                      bool restart) {
  if (in->timerfd < 0) {
    in->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (in->timerfd < 0) {
      log_error("%s: timerfd: %s", in->rec->name, strerror(errno));
      return;
    }
    watch(d, in->timerfd, TAG_TIMER, EPOLLIN);
  }
  struct itimerspec its = {.it_value = {ms / 1000, (ms % 1000) * 1000000}};
  timerfd_settime(in->timerfd, 0, &its, NULL);
  in->timer_restart = restart;
}

static void disarm_timer(struct daemon *d, struct instance *in) {
  if (in->timerfd < 0)
    return;
  unwatch(d, in->timerfd);
  close(in->timerfd);
  in->timerfd = -1;
}

/* ---- start, stop, exit ----------------------------------------------------- */

static int pidfd_signal(int pidfd, int sig) {
  return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static pid_t parent_of(pid_t pid) {
  cleanup_free char *path = xasprintf("/proc/%d/stat", (int)pid);
  cleanup_free char *text = NULL;
  size_t len = 0;
  cell_error *err = NULL;
  if (cell_read_file_at(AT_FDCWD, path, 4096, &text, &len, &err) < 0) {
    cell_error_free(&err);
    return -1;
  }
  const char *p = strrchr(text, ')');
  int ppid = -1;
  if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
    return -1;
  return ppid;
}

/* The init's host pid from the runtime's state. */
static int runtime_pid(struct daemon *d, const char *name, pid_t *pid,
                       cell_error **err) {
  cleanup_free char *json = NULL;
  if (container_state_json(d->runroot, name, &json, err) < 0)
    return -1;
  cleanup_json struct json_value *v = NULL;
  if (json_parse(json, strlen(json), &v, err) < 0)
    return -1;
  int64_t p = 0;
  if (!json_get_int64(json_object_get(v, "pid"), &p) || p <= 0)
    return cell_fail(err, 0, "instance `%s`: no process", name);
  *pid = (pid_t)p;
  return 0;
}

static void runtime_delete(struct daemon *d, const char *name) {
  cell_error *err = NULL;
  if (container_delete(d->runroot, name, true, &err) < 0) {
    if (!strstr(err->msg, "does not exist"))
      log_warn("%s: delete the container: %s", name, err->msg);
    cell_error_free(&err);
  }
}

static void rootfs_umount(struct daemon *d, const char *name) {
  cleanup_free char *dir = inst_dir(d, name);
  cell_error *err = NULL;
  if (instance_rootfs_umount(dir, &err) < 0) {
    log_error("%s: %s", name, err->msg);
    cell_error_free(&err);
  }
}

static int mount_root(struct daemon *d, struct instance *in, cell_error **err) {
  cleanup_free char *dir = inst_dir(d, in->rec->name);
  const char *mode = NULL;
  if (instance_rootfs_mount(dir, in->rec, d->cfg->force_copy, &mode, err) < 0)
    return -1;
  if (!in->rec->rootfs_mode || strcmp(in->rec->rootfs_mode, mode) != 0) {
    free(in->rec->rootfs_mode);
    in->rec->rootfs_mode = xstrdup(mode);
  }
  return 0;
}

/* The container's stdio: /dev/null in, <dir>/console.log out, so that an
 * instance never writes to (or dies with) our own stderr. */
static int swap_stdio(const char *dir, int saved[3], cell_error **err) {
  cleanup_free char *logpath = xasprintf("%s/console.log", dir);
  cleanup_close int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  cleanup_close int logfd =
      open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null < 0 || logfd < 0)
    return cell_fail_errno(err, "open `%s`", logpath);
  for (int i = 0; i < 3; i++)
    saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
  dup2(null, 0);
  dup2(logfd, 1);
  dup2(logfd, 2);
  return 0;
}

static void restore_stdio(int saved[3]) {
  for (int i = 0; i < 3; i++) {
    if (saved[i] >= 0) {
      dup2(saved[i], i);
      close(saved[i]);
    }
  }
}

static int create_and_start(struct daemon *d, struct instance *in,
                            const char *dir, cell_error **err) {
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
  cleanup_free char *spec = instance_spec_json(in->rec, rootfs, err);
  cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!spec || dirfd < 0)
    return spec ? cell_fail_errno(err, "open `%s`", dir) : -1;
  if (cell_write_file_atomic_at(dirfd, "config.json", spec, strlen(spec), 0600,
                                err) < 0)
    return -1;
  struct container_opts o = {.root = d->runroot, .id = in->rec->name, .bundle = dir};
  int saved[3] = {-1, -1, -1};
  if (swap_stdio(dir, saved, err) < 0)
    return -1;
  int r = container_create(&o, err);
  restore_stdio(saved);
  if (r < 0)
    return -1;
  pid_t pid;
  if (runtime_pid(d, in->rec->name, &pid, err) < 0)
    return -1;
  /* Out of our process group: a signal to celld's group (^C, a service
   * manager) must not reach the instances.  The init has not exec'd yet,
   * so setpgid still may move it. */
  if (setpgid(pid, pid) < 0)
    log_debug("%s: setpgid %d: %s", in->rec->name, (int)pid, strerror(errno));
  int pidfd = cell_pidfd_open(pid);
  if (pidfd < 0)
    return cell_fail_errno(err, "pidfd_open %d", (int)pid);
  if (container_start(d->runroot, in->rec->name, err) < 0) {
    close(pidfd);
    return -1;
  }
  in->pid = pid;
  in->pidfd = pidfd;
  in->child = parent_of(pid) == getpid();
  watch(d, pidfd, TAG_PIDFD, EPOLLIN);
  return 0;
}

static int start_instance(struct daemon *d, struct instance *in,
                          cell_error **err) {
  if (in->pidfd >= 0)
    return cell_fail(err, 0, "instance `%s` is already running", in->rec->name);
  disarm_timer(d, in);
  cleanup_free char *dir = inst_dir(d, in->rec->name);
  runtime_delete(d, in->rec->name);
  if (mount_root(d, in, err) < 0 || create_and_start(d, in, dir, err) < 0) {
    runtime_delete(d, in->rec->name);
    rootfs_umount(d, in->rec->name);
    return cell_error_wrap(err, "start `%s`", in->rec->name);
  }
  in->stopping = false;
  in->after = AFTER_NOTHING;
  watch_oom(in);
  set_state(in, "running");
  if (save(d, in, err) < 0)
    return -1;
  return 0;
}

static int halt_signal(const struct instance *in) {
  /* busybox (and sysvinit-like) init: SIGUSR2 is poweroff; anything else
   * gets the conventional SIGTERM. */
  return strcmp(in->rec->init[0], DEFAULT_INIT) == 0 ? SIGUSR2 : SIGTERM;
}

static void stop_instance(struct daemon *d, struct instance *in, int timeout) {
  if (in->stopping)
    return;
  in->stopping = true;
  if (pidfd_signal(in->pidfd, halt_signal(in)) < 0)
    log_warn("%s: signal the init: %s", in->rec->name, strerror(errno));
  arm_timer(d, in, timeout * 1000L, false);
}

static void destroy_now(struct daemon *d, struct instance *in,
                        cell_error **err) {
  const char *name = in->rec->name;
  runtime_delete(d, name);
  rootfs_umount(d, name);
  cleanup_free char *dir = inst_dir(d, name);
  cleanup_free char *still_mounted = xasprintf("%s/rootfs", dir);
  if (instance_is_mountpoint(still_mounted)) {
    cell_fail(err, 0, "destroy `%s`: `%s` is still mounted", name, still_mounted);
    return;
  }
  if (cell_rm_rf_at(d->instdirfd, name, err) < 0)
    return;
  if (instance_record_remove(d->instdirfd, name, err) < 0)
    return;
}

static bool wants_restart(const struct instance *in) {
  const struct instance_record *r = in->rec;
  if (in->stopping || r->restart == RESTART_NO)
    return false;
  if (r->restart == RESTART_ALWAYS)
    return true;
  /* on-failure: an unknown status (we were not its parent) counts as a
   * failure: the instance did not stop through us. */
  if (r->exit_code == 0)
    return false;
  return r->restart_max == 0 || r->restarts < r->restart_max;
}

static int exit_code_of(const siginfo_t *si) {
  if (si->si_code == CLD_EXITED)
    return si->si_status & 0xff;
  return 128 + si->si_status;
}

static void finish_destroy(struct daemon *d, struct instance *in) {
  cell_error *err = NULL;
  destroy_now(d, in, &err);
  if (err) {
    answer_waiters(d, in, err->msg);
    cell_error_free(&err);
    return;
  }
  emit_event(d, in, "destroyed");
  answer_waiters(d, in, NULL);
  remove_instance(d, in);
}

/* The init is gone (code -1: unknown). */
static void instance_exited(struct daemon *d, struct instance *in, int code) {
  unwatch(d, in->pidfd);
  close(in->pidfd);
  in->pidfd = -1;
  in->pid = 0;
  disarm_timer(d, in);
  /* An OOM kill of the init itself is seen before it is forgotten. */
  on_oom_check(d, in);
  unwatch_oom(in);
  runtime_delete(d, in->rec->name);
  rootfs_umount(d, in->rec->name);
  in->rec->exit_code = code;
  free(in->rec->exit_time);
  in->rec->exit_time = cell_rfc3339_now();
  set_state(in, "stopped");
  bool stopping = in->stopping;
  emit_event(d, in, stopping ? "stopped" : "died");
  if (in->after == AFTER_DESTROY) {
    finish_destroy(d, in);
    return;
  }
  if (in->after == AFTER_START) {
    in->after = AFTER_NOTHING;
    cell_error *err = NULL;
    if (start_instance(d, in, &err) < 0) {
      save_or_log(d, in);
      answer_waiters(d, in, err->msg);
      cell_error_free(&err);
      return;
    }
    emit_event(d, in, "restarted");
    answer_waiters(d, in, NULL);
    return;
  }
  if (wants_restart(in)) {
    in->rec->restarts++;
    set_state(in, "restarting");
    arm_timer(d, in, RESTART_DELAY_MS, true);
  }
  in->stopping = false;
  save_or_log(d, in);
  answer_waiters(d, in, NULL);
}

static void on_pidfd(struct daemon *d, int fd) {
  for (size_t i = 0; i < d->n_inst; i++) {
    struct instance *in = d->inst[i];
    if (in->pidfd != fd)
      continue;
    int code = -1;
    if (in->child) {
      siginfo_t si = {0};
      if (waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return; /* not gone yet (or reaped elsewhere: the pidfd stays readable) */
      code = exit_code_of(&si);
    }
    instance_exited(d, in, code);
    return;
  }
}

/* SIGCHLD: reap what is not an instance's init (those are waited for
 * through their pidfds): processes orphaned to us as subreaper. */
static void reap_orphans(struct daemon *d) {
  for (;;) {
    siginfo_t si = {0};
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
      return;
    struct instance *owner = NULL;
    for (size_t i = 0; i < d->n_inst; i++)
      if (d->inst[i]->pidfd >= 0 && d->inst[i]->pid == si.si_pid)
        owner = d->inst[i];
    if (owner) {
      on_pidfd(d, owner->pidfd);
      continue;
    }
    struct conn *execer = NULL;
    for (size_t i = 0; i < d->n_conns; i++)
      if (d->conns[i]->exec_pidfd >= 0 && d->conns[i]->exec_pid == si.si_pid)
        execer = d->conns[i];
    if (execer) {
      on_exec_exit(d, execer->exec_pidfd);
      continue;
    }
    waitpid(si.si_pid, NULL, WNOHANG);
  }
}

static void on_timer(struct daemon *d, int fd) {
  for (size_t i = 0; i < d->n_inst; i++) {
    struct instance *in = d->inst[i];
    if (in->timerfd != fd)
      continue;
    uint64_t ticks;
    if (read(fd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN)
      return;
    if (in->timer_restart) {
      disarm_timer(d, in);
      cell_error *err = NULL;
      if (start_instance(d, in, &err) < 0) {
        log_error("%s", err->msg);
        cell_error_free(&err);
        set_state(in, "stopped");
        save_or_log(d, in);
        return;
      }
      emit_event(d, in, "restarted");
      return;
    }
    log_warn("%s: did not stop in time: SIGKILL", in->rec->name);
    if (in->pidfd >= 0)
      pidfd_signal(in->pidfd, SIGKILL);
    disarm_timer(d, in);
    return;
  }
}

/* ---- requests --------------------------------------------------------------- */

struct request {
  const struct json_value *v;
  const char *op;
  const char *name;
};

static const char *str_field(const struct json_value *v, const char *key) {
  const struct json_value *f = json_object_get(v, key);
  return f && f->type == JSON_STRING ? f->u.string : NULL;
}

/* Every member of the request must be one the op knows, of the right type. */
static int check_fields(const struct json_value *v, const char *const *allowed,
                        cell_error **err) {
  for (size_t i = 0; i < v->u.object.len; i++) {
    const char *k = v->u.object.keys[i];
    bool ok = strcmp(k, "version") == 0 || strcmp(k, "op") == 0;
    for (const char *const *a = allowed; !ok && *a; a++)
      ok = strcmp(*a + 1, k) == 0;
    if (!ok)
      return cell_fail(err, 0, "unknown field `%s`", k);
  }
  for (const char *const *a = allowed; *a; a++) {
    const struct json_value *f = json_object_get(v, *a + 1);
    if (!f)
      continue;
    char t = **a;
    bool good = (t == 's' && f->type == JSON_STRING) ||
                (t == 'b' && f->type == JSON_BOOL) ||
                (t == 'n' && f->type == JSON_NUMBER) ||
                (t == 'a' && f->type == JSON_ARRAY);
    if (!good)
      return cell_fail(err, 0, "field `%s`: must be a %s", *a + 1,
                       t == 's' ? "string" : t == 'b' ? "boolean"
                       : t == 'n' ? "number" : "array");
  }
  return 0;
}

static int get_limit(const struct json_value *v, const char *key, int64_t *out,
                     bool *given, cell_error **err) {
  const struct json_value *f = json_object_get(v, key);
  *given = f != NULL;
  if (!f)
    return 0;
  if (!json_get_int64(f, out) || *out < 0)
    return cell_fail(err, 0, "field `%s`: must be an integer >= 0", key);
  return 0;
}

static int get_cpus(const struct json_value *v, int64_t *milli, bool *given,
                    cell_error **err) {
  const struct json_value *f = json_object_get(v, "cpus");
  *given = f != NULL;
  if (!f)
    return 0;
  double cpus;
  if (!json_get_double(f, &cpus) || cpus < 0 || cpus > 4096)
    return cell_fail(err, 0, "field `cpus`: must be a number in [0, 4096]");
  *milli = (int64_t)(cpus * 1000 + 0.5);
  if (cpus > 0 && *milli < 10)
    return cell_fail(err, 0, "field `cpus`: at least 0.01");
  return 0;
}

static int lookup(struct daemon *d, struct conn *c, const char *name,
                  struct instance **out, cell_error **err) {
  if (!name)
    return cell_fail(err, 0, "field `name`: required");
  if (instance_check_name(name, err) < 0)
    return -1;
  struct instance *in = find_instance(d, name);
  if (!in || !may_see(c, in))
    return cell_fail(err, 0, "instance `%s` does not exist", name);
  *out = in;
  return 0;
}

static int used_ranges(struct daemon *d, uint32_t **out) {
  uint32_t *used = xcalloc(d->n_inst ? d->n_inst : 1, sizeof(*used));
  for (size_t i = 0; i < d->n_inst; i++)
    used[i] = d->inst[i]->rec->id_start;
  *out = used;
  return 0;
}

static bool template_lacks_inittab(const char *template_dir) {
  cleanup_free char *p = xasprintf("%s/etc/inittab", template_dir);
  return access(p, F_OK) != 0;
}

/* busybox init without /etc/inittab wants ttys that an instance does not
 * have: give it one that runs rcS (when there is one) and keeps going with
 * no console. */
static int write_default_inittab(const char *dir, uint32_t owner,
                                 cell_error **err) {
  static const char text[] =
      "# written by celld: the template has no inittab\n"
      "::sysinit:/bin/sh -c '[ -x /etc/init.d/rcS ] && exec /etc/init.d/rcS; exit 0'\n"
      "::shutdown:/bin/sh -c 'kill -TERM -1 2>/dev/null; exit 0'\n";
  cleanup_free char *etc = xasprintf("%s/rootfs/etc", dir);
  cleanup_close int etcfd = open(etc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (etcfd < 0)
    return cell_fail_errno(err, "open `%s`", etc);
  if (cell_write_file_atomic_at(etcfd, "inittab", text, sizeof(text) - 1, 0644,
                                err) < 0)
    return -1;
  if (fchownat(etcfd, "inittab", owner, owner, 0) < 0)
    return cell_fail_errno(err, "chown `%s/inittab`", etc);
  return 0;
}

static int fill_record(struct daemon *d, struct conn *c,
                       const struct json_value *v, struct instance_record *r,
                       cell_error **err) {
  const char *name = str_field(v, "name");
  const char *tmpl = str_field(v, "template");
  if (!name)
    return cell_fail(err, 0, "field `name`: required");
  if (instance_check_name(name, err) < 0)
    return -1;
  if (find_instance(d, name))
    return cell_fail(err, 0, "instance `%s` already exists", name);
  if (!tmpl)
    return cell_fail(err, 0, "field `template`: required");
  if (instance_check_template(tmpl, err) < 0)
    return -1;
  r->name = xstrdup(name);
  r->template_dir = realpath(tmpl, NULL);
  if (!r->template_dir)
    return cell_fail_errno(err, "template `%s`", tmpl);
  bool given;
  int64_t milli = 0;
  if (get_limit(v, "memory", &r->memory, &given, err) < 0 ||
      get_limit(v, "pids", &r->pids, &given, err) < 0 ||
      get_cpus(v, &milli, &given, err) < 0)
    return -1;
  r->cpu_milli = milli;
  if (r->memory > 0 && r->memory < (4 << 20))
    return cell_fail(err, 0, "field `memory`: at least 4 MiB");
  const char *restart = str_field(v, "restart");
  if (instance_parse_restart(restart ? restart : "no", &r->restart,
                             &r->restart_max, err) < 0)
    return -1;
  const struct json_value *autostart = json_object_get(v, "autostart");
  r->autostart = autostart && autostart->u.boolean;
  const char *hostname = str_field(v, "hostname");
  if (hostname && (strlen(hostname) == 0 || strlen(hostname) > 64 ||
                   strspn(hostname, "abcdefghijklmnopqrstuvwxyz"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
                       strlen(hostname)))
    return cell_fail(err, 0, "field `hostname`: `%s` is not a host name",
                     hostname);
  r->hostname = xstrdup(hostname ? hostname : name);
  const struct json_value *init = json_object_get(v, "init");
  if (init) {
    if (init->u.array.len == 0 || init->u.array.len > 256)
      return cell_fail(err, 0, "field `init`: 1 to 256 strings");
    for (size_t i = 0; i < init->u.array.len; i++) {
      const struct json_value *a = init->u.array.items[i];
      if (a->type != JSON_STRING)
        return cell_fail(err, 0, "field `init[%zu]`: must be a string", i);
      cell_strv_push(&r->init, a->u.string);
    }
    if (r->init[0][0] != '/')
      return cell_fail(err, 0, "field `init[0]`: must be an absolute path");
  } else {
    cell_strv_push(&r->init, DEFAULT_INIT);
  }
  r->owner = c->cred.uid;
  r->id_count = d->cfg->pool.size;
  r->state = xstrdup("created");
  r->exit_code = -1;
  r->created = cell_rfc3339_now();
  r->cgroup = xasprintf("%s/%s", d->cfg->cgroup_parent, name);
  cleanup_free uint32_t *used = NULL;
  used_ranges(d, &used);
  return idrange_alloc(&d->cfg->pool, used, d->n_inst, &r->id_start, err);
}

/* Test-only (docs/api.md): CELLD_TEST_PAUSE=create stops celld for 60 s
 * in the middle of a create (directory made, root mounted, no record yet),
 * so that a test can kill -9 it there. */
static void test_pause(const char *where) {
  const char *want = getenv("CELLD_TEST_PAUSE");
  if (want && strcmp(want, where) == 0) {
    log_warn("CELLD_TEST_PAUSE=%s: pausing", where);
    sleep(60);
  }
}

static int prepare_instance_dir(struct daemon *d, struct instance *in,
                                cell_error **err) {
  const struct instance_record *r = in->rec;
  if (mkdirat(d->instdirfd, r->name, 0711) < 0)
    return cell_fail_errno(err, "mkdir `%s/%s`", d->instances_dir, r->name);
  if (mount_root(d, in, err) < 0)
    return -1;
  test_pause("create");
  cleanup_free char *dir = inst_dir(d, r->name);
  int rc = 0;
  if (strcmp(r->init[0], DEFAULT_INIT) == 0 &&
      template_lacks_inittab(r->template_dir))
    rc = write_default_inittab(dir, r->id_start, err);
  /* Mounted only while running. */
  cell_error *uerr = NULL;
  if (instance_rootfs_umount(dir, &uerr) < 0) {
    if (rc == 0) {
      *err = uerr;
      return -1;
    }
    cell_error_free(&uerr);
  }
  return rc;
}

static void op_create(struct daemon *d, struct conn *c,
                      const struct json_value *v) {
  static const char *const allowed[] = {
      "sname", "stemplate", "nmemory", "ncpus", "npids", "ainit",
      "bautostart", "srestart", "shostname", NULL};
  cell_error *err = NULL;
  if (!c->root && !c->member) {
    reply_error(d, c, "permission denied: only root and members of the celld group may create instances");
    return;
  }
  struct instance_record *r = xcalloc(1, sizeof(*r));
  if (check_fields(v, allowed, &err) < 0 || fill_record(d, c, v, r, &err) < 0) {
    instance_record_free(r);
    reply_error(d, c, err->msg);
    cell_error_free(&err);
    return;
  }
  struct instance *in = add_instance(d, r);
  if (prepare_instance_dir(d, in, &err) < 0 || save(d, in, &err) < 0) {
    /* No half-made instance: mounts, directory, record all go. */
    cell_error *e2 = NULL;
    destroy_now(d, in, &e2);
    if (e2)
      log_error("%s", e2->msg);
    cell_error_free(&e2);
    remove_instance(d, in);
    reply_error(d, c, err->msg);
    cell_error_free(&err);
    return;
  }
  emit_event(d, in, "created");
  reply_ok(d, c, in);
}

static void op_start(struct daemon *d, struct conn *c, struct instance *in) {
  cell_error *err = NULL;
  if (in->timerfd >= 0 && in->timer_restart)
    disarm_timer(d, in);
  if (start_instance(d, in, &err) < 0) {
    save_or_log(d, in);
    reply_error(d, c, err->msg);
    cell_error_free(&err);
    return;
  }
  in->rec->restarts = 0;
  save_or_log(d, in);
  emit_event(d, in, "started");
  reply_ok(d, c, in);
}

static int timeout_of(struct daemon *d, const struct json_value *v,
                      cell_error **err) {
  const struct json_value *t = json_object_get(v, "timeout");
  int64_t n = d->cfg->stop_timeout;
  if (t && (!json_get_int64(t, &n) || n < 0 || n > 3600))
    return cell_fail(err, 0, "field `timeout`: must be an integer in [0, 3600]");
  return (int)n;
}

static void op_stop(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v, enum after_exit after) {
  cell_error *err = NULL;
  int timeout = timeout_of(d, v, &err);
  if (timeout < 0) {
    reply_error(d, c, err->msg);
    cell_error_free(&err);
    return;
  }
  if (in->pidfd < 0) {
    if (in->timerfd >= 0 && in->timer_restart) {
      /* A pending policy restart: stopping cancels it. */
      disarm_timer(d, in);
      set_state(in, "stopped");
      save_or_log(d, in);
    }
    if (after == AFTER_START) {
      op_start(d, c, in);
      return;
    }
    reply_error(d, c, "instance is not running");
    return;
  }
  in->after = after;
  add_waiter(in, c);
  stop_instance(d, in, timeout);
}

static void op_destroy(struct daemon *d, struct conn *c, struct instance *in,
                       const struct json_value *v) {
  const struct json_value *force = json_object_get(v, "force");
  if (in->pidfd >= 0) {
    if (!force || !force->u.boolean) {
      reply_error(d, c, "instance is running: stop it first, or force");
      return;
    }
    in->after = AFTER_DESTROY;
    in->stopping = true;
    add_waiter(in, c);
    pidfd_signal(in->pidfd, SIGKILL);
    return;
  }
  add_waiter(in, c);
  finish_destroy(d, in);
}

static char *resources_json(const struct instance_record *r) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_key(g, "memory");
  json_gen_object_open(g);
  json_gen_kv_int(g, "limit", r->memory > 0 ? r->memory : -1);
  json_gen_object_close(g);
  json_gen_key(g, "cpu");
  json_gen_object_open(g);
  json_gen_kv_int(g, "period", 100000);
  json_gen_kv_int(g, "quota", r->cpu_milli > 0 ? r->cpu_milli * 100 : -1);
  json_gen_object_close(g);
  json_gen_key(g, "pids");
  json_gen_object_open(g);
  json_gen_kv_int(g, "limit", r->pids > 0 ? r->pids : -1);
  json_gen_object_close(g);
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}

static void op_set(struct daemon *d, struct conn *c, struct instance *in,
                   const struct json_value *v) {
  cell_error *err = NULL;
  bool gm, gc, gp;
  int64_t memory = in->rec->memory, milli = in->rec->cpu_milli, pids = in->rec->pids;
  if (get_limit(v, "memory", &memory, &gm, &err) < 0 ||
      get_cpus(v, &milli, &gc, &err) < 0 ||
      get_limit(v, "pids", &pids, &gp, &err) < 0)
    goto fail;
  if (!gm && !gc && !gp) {
    reply_error(d, c, "set: nothing to set (memory, cpus, pids)");
    return;
  }
  if (memory > 0 && memory < (4 << 20)) {
    cell_fail(&err, 0, "field `memory`: at least 4 MiB");
    goto fail;
  }
  struct instance_record next = *in->rec;
  next.memory = memory;
  next.cpu_milli = milli;
  next.pids = pids;
  if (in->pidfd >= 0) {
    cleanup_free char *json = resources_json(&next);
    cleanup_resources struct spec_resources *res = NULL;
    if (spec_parse_resources(json, strlen(json), &res, &err) < 0 ||
        container_update(d->runroot, in->rec->name, res, &err) < 0)
      goto fail;
  }
  in->rec->memory = memory;
  in->rec->cpu_milli = milli;
  in->rec->pids = pids;
  if (save(d, in, &err) < 0)
    goto fail;
  emit_event(d, in, "updated");
  reply_ok(d, c, in);
  return;
fail:
  reply_error(d, c, err->msg);
  cell_error_free(&err);
}

static void op_list(struct daemon *d, struct conn *c) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "instances");
  json_gen_array_open(g);
  for (size_t i = 0; i < d->n_inst; i++) {
    struct instance *in = d->inst[i];
    if (!may_see(c, in))
      continue;
    cleanup_free char *rec = instance_record_to_json(in->rec, false);
    cleanup_json struct json_value *v = NULL;
    cell_error *err = NULL;
    if (json_parse(rec, strlen(rec), &v, &err) < 0) {
      cell_error_free(&err);
      continue;
    }
    json_gen_object_open(g);
    for (size_t k = 0; k < v->u.object.len; k++) {
      json_gen_key(g, v->u.object.keys[k]);
      json_gen_value(g, v->u.object.values[k]);
    }
    json_gen_kv_int(g, "pid", in->pidfd >= 0 ? in->pid : 0);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  send_line(d, c, out);
}

static void op_show(struct daemon *d, struct conn *c, struct instance *in) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  cleanup_free char *rec = instance_record_to_json(in->rec, false);
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(rec, strlen(rec), &v, &err) == 0) {
    json_gen_key(g, "instance");
    json_gen_object_open(g);
    for (size_t k = 0; k < v->u.object.len; k++) {
      json_gen_key(g, v->u.object.keys[k]);
      json_gen_value(g, v->u.object.values[k]);
    }
    json_gen_kv_int(g, "pid", in->pidfd >= 0 ? in->pid : 0);
    json_gen_kv_bool(g, "exit_status_known", in->pidfd < 0 || in->child);
    json_gen_object_close(g);
  }
  cell_error_free(&err);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  send_line(d, c, out);
}

/* ---- exec -------------------------------------------------------------------- */

/* Strings of a JSON array, with a bound on their count; NULL on error. */
static char **strv_field(const struct json_value *v, const char *key,
                         size_t max, cell_error **err) {
  const struct json_value *a = json_object_get(v, key);
  if (!a)
    return xcalloc(1, sizeof(char *));
  if (a->u.array.len > max)
    return cell_fail(err, 0, "field `%s`: at most %zu strings", key, max), NULL;
  char **out = xcalloc(a->u.array.len + 1, sizeof(char *));
  for (size_t i = 0; i < a->u.array.len; i++) {
    const struct json_value *s = a->u.array.items[i];
    if (s->type != JSON_STRING) {
      cell_strv_free(out);
      return cell_fail(err, 0, "field `%s[%zu]`: must be a string", key, i), NULL;
    }
    out[i] = xstrdup(s->u.string);
  }
  return out;
}

static int check_exec_request(const struct json_value *v, char **args,
                              char **env, cell_error **err) {
  if (!args[0] || !args[0][0])
    return cell_fail(err, 0, "field `args`: a command is needed");
  for (size_t i = 0; env[i]; i++)
    if (env[i][0] == '=' || !strchr(env[i], '='))
      return cell_fail(err, 0, "field `env[%zu]`: `%s` is not KEY=VALUE", i, env[i]);
  const char *cwd = str_field(v, "cwd");
  if (cwd && cwd[0] != '/')
    return cell_fail(err, 0, "field `cwd`: must be an absolute path");
  return 0;
}

/* A listening socket for the exec's pty master (exec_opts.console_socket
 * is a path). */
static int console_listener(const char *path, cell_error **err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path))
    return cell_fail(err, 0, "socket `%s`: path too long", path);
  strcpy(sa.sun_path, path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return cell_fail_errno(err, "socket");
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
    cell_fail_errno(err, "socket `%s`", path);
    close(fd);
    return -1;
  }
  return fd;
}

static int read_pid_file(const char *path, pid_t *pid, cell_error **err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  long long n;
  if (cell_read_file_at(AT_FDCWD, path, 64, &text, &len, err) < 0)
    return -1;
  if (!cell_parse_ll(text, 1, INT32_MAX, &n))
    return cell_fail(err, 0, "`%s`: not a pid", path);
  *pid = (pid_t)n;
  return 0;
}

/* Run the command in the instance, detached: it is our child, its stdio
 * the client's fds (or a pty whose master goes back to the client). */
static int spawn_exec(struct daemon *d, struct conn *c, struct instance *in,
                      char **args, char **env, const char *cwd, bool tty,
                      pid_t *pid, int *master, cell_error **err) {
  cleanup_free char *pidfile = xasprintf("%s/%llu.pid", d->execdir,
                                         (unsigned long long)c->id);
  cleanup_free char *sockpath = xasprintf("%s/%llu.sock", d->execdir,
                                          (unsigned long long)c->id);
  cleanup_close int listener = -1;
  if (tty && (listener = console_listener(sockpath, err)) < 0)
    return -1;
  struct exec_opts o = {.root = d->runroot, .id = in->rec->name, .args = args,
                        .env = env, .cwd = cwd, .tty = tty, .detach = true,
                        .pid_file = pidfile,
                        .console_socket = tty ? sockpath : NULL};
  int saved[3] = {-1, -1, -1};
  if (!tty) {
    for (int i = 0; i < 3; i++)
      saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
    for (int i = 0; i < 3; i++)
      dup2(c->fds[i], i);
  }
  int code = 0;
  int r = container_exec(&o, &code, err);
  restore_stdio(saved);
  if (tty)
    unlink(sockpath);
  if (r < 0) {
    unlink(pidfile);
    return -1;
  }
  r = read_pid_file(pidfile, pid, err);
  unlink(pidfile);
  if (r < 0)
    return -1;
  if (tty) {
    /* The command connected and sent its master before it exec'd. */
    cleanup_close int peer = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (peer < 0 || terminal_recv_fd(peer, master, err) < 0) {
      if (peer < 0)
        cell_fail_errno(err, "exec: receive the terminal");
      kill(*pid, SIGKILL);
      return -1;
    }
  }
  return 0;
}

static void op_exec(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v) {
  cell_error *err = NULL;
  cleanup_strv char **args = strv_field(v, "args", 4096, &err);
  cleanup_strv char **env = args ? strv_field(v, "env", 4096, &err) : NULL;
  const struct json_value *t = json_object_get(v, "tty");
  bool tty = t && t->u.boolean;
  pid_t pid = 0;
  int master = -1;
  cleanup_free char *line = NULL;
  if (!args || !env || check_exec_request(v, args, env, &err) < 0)
    goto fail;
  if (in->pidfd < 0) {
    cell_fail(&err, 0, "instance `%s` is not running", in->rec->name);
    goto fail;
  }
  if (!tty && c->n_fds != 3) {
    cell_fail(&err, 0, "exec without a tty: stdin, stdout and stderr must "
                       "come with the request (SCM_RIGHTS)");
    goto fail;
  }
  if (spawn_exec(d, c, in, args, env, str_field(v, "cwd"), tty, &pid, &master,
                 &err) < 0) {
    cell_error_wrap(&err, "exec in `%s`", in->rec->name);
    goto fail;
  }
  drop_fds(c);
  c->exec_pid = pid;
  c->exec_pidfd = cell_pidfd_open(pid);
  if (c->exec_pidfd >= 0)
    watch(d, c->exec_pidfd, TAG_EXEC, EPOLLIN);
  line = xasprintf("{\"ok\":true,\"pid\":%d}\n", (int)pid);
  if (master >= 0) {
    /* The master rides with the answer; we keep no copy of it. */
    int rc = cell_send_with_fd(c->fd, line, strlen(line), master);
    close(master);
    if (rc < 0)
      close_conn(d, c);
    return;
  }
  line[strlen(line) - 1] = '\0';
  send_line(d, c, line);
  return;
fail:
  reply_error(d, c, err->msg);
  cell_error_free(&err);
}

/* No answer: the exit line is what the client waits for. */
static void op_signal(struct daemon *d, struct conn *c,
                      const struct json_value *v) {
  int64_t sig = 0;
  const struct json_value *s = json_object_get(v, "signal");
  if (!s || !json_get_int64(s, &sig) || sig < 1 || sig > 64) {
    reply_error(d, c, "field `signal`: required, an integer in [1, 64]");
    return;
  }
  if (c->exec_pidfd < 0) {
    reply_error(d, c, "signal: no exec runs on this connection");
    return;
  }
  if (pidfd_signal(c->exec_pidfd, (int)sig) < 0)
    log_debug("exec %d: signal %d: %s", (int)c->exec_pid, (int)sig, strerror(errno));
}

static void on_exec_exit(struct daemon *d, int pidfd) {
  struct conn *c = NULL;
  for (size_t i = 0; i < d->n_conns && !c; i++)
    if (d->conns[i]->exec_pidfd == pidfd)
      c = d->conns[i];
  if (!c)
    return;
  siginfo_t si = {0};
  if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
    return;
  unwatch(d, pidfd);
  close(pidfd);
  c->exec_pidfd = -1;
  c->exec_pid = 0;
  cleanup_free char *line = xasprintf("{\"ok\":true,\"exit_code\":%d}",
                                      exit_code_of(&si));
  send_line(d, c, line);
}

static void dispatch(struct daemon *d, struct conn *c, const struct json_value *v) {
  cell_error *err = NULL;
  int64_t version = 0;
  const struct json_value *ver = json_object_get(v, "version");
  if (!ver || !json_get_int64(ver, &version)) {
    reply_error(d, c, "field `version`: required, an integer");
    return;
  }
  if (version != DAEMON_API_VERSION) {
    cleanup_free char *msg = xasprintf(
        "version %lld: not supported (this celld speaks version %d)",
        (long long)version, DAEMON_API_VERSION);
    reply_error(d, c, msg);
    return;
  }
  const char *op = str_field(v, "op");
  if (!op) {
    reply_error(d, c, "field `op`: required, a string");
    return;
  }
  if (strcmp(op, "create") == 0) {
    op_create(d, c, v);
    return;
  }
  if (!c->root && !c->member) {
    reply_error(d, c, "permission denied: not root and not a member of the celld group");
    return;
  }
  if (strcmp(op, "list") == 0 || strcmp(op, "events") == 0) {
    static const char *const none[] = {NULL};
    if (check_fields(v, none, &err) < 0)
      goto fail;
    if (op[0] == 'l') {
      op_list(d, c);
    } else {
      c->subscriber = true;
      send_line(d, c, "{\"ok\":true}");
    }
    return;
  }
  if (c->exec_pidfd >= 0 && strcmp(op, "signal") != 0) {
    reply_error(d, c, "an exec runs on this connection: only `signal` until it exits");
    return;
  }
  if (strcmp(op, "exec") == 0 || strcmp(op, "signal") == 0) {
    static const char *const exec_fields[] = {"sname", "aargs", "btty", "aenv",
                                              "scwd", NULL};
    static const char *const signal_fields[] = {"nsignal", NULL};
    if (check_fields(v, op[0] == 'e' ? exec_fields : signal_fields, &err) < 0)
      goto fail;
    if (op[0] == 's') {
      op_signal(d, c, v);
      return;
    }
    struct instance *in = NULL;
    if (lookup(d, c, str_field(v, "name"), &in, &err) < 0)
      goto fail;
    op_exec(d, c, in, v);
    return;
  }
  static const char *const name_only[] = {"sname", NULL};
  static const char *const with_timeout[] = {"sname", "ntimeout", NULL};
  static const char *const with_force[] = {"sname", "bforce", NULL};
  static const char *const limits[] = {"sname", "nmemory", "ncpus", "npids", NULL};
  const char *const *allowed;
  if (strcmp(op, "start") == 0 || strcmp(op, "show") == 0)
    allowed = name_only;
  else if (strcmp(op, "stop") == 0 || strcmp(op, "restart") == 0)
    allowed = with_timeout;
  else if (strcmp(op, "destroy") == 0)
    allowed = with_force;
  else if (strcmp(op, "set") == 0)
    allowed = limits;
  else {
    cleanup_free char *msg = xasprintf("op `%s`: unknown", op);
    reply_error(d, c, msg);
    return;
  }
  struct instance *in = NULL;
  if (check_fields(v, allowed, &err) < 0 ||
      lookup(d, c, str_field(v, "name"), &in, &err) < 0)
    goto fail;
  if (strcmp(op, "start") == 0)
    op_start(d, c, in);
  else if (strcmp(op, "show") == 0)
    op_show(d, c, in);
  else if (strcmp(op, "stop") == 0)
    op_stop(d, c, in, v, AFTER_NOTHING);
  else if (strcmp(op, "restart") == 0)
    op_stop(d, c, in, v, AFTER_START);
  else if (strcmp(op, "destroy") == 0)
    op_destroy(d, c, in, v);
  else
    op_set(d, c, in, v);
  return;
fail:
  reply_error(d, c, err->msg);
  cell_error_free(&err);
}

static void handle_line(struct daemon *d, struct conn *c, const char *line,
                        size_t len) {
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(line, len, &v, &err) < 0) {
    cleanup_free char *msg = xasprintf("malformed request: %s", err->msg);
    cell_error_free(&err);
    reply_error(d, c, msg);
    return;
  }
  if (v->type != JSON_OBJECT) {
    reply_error(d, c, "malformed request: not a JSON object");
    return;
  }
  dispatch(d, c, v);
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

static void on_conn_readable(struct daemon *d, struct conn *c) {
  uint64_t id = c->id;
  char buf[8192];
  ssize_t n = recv_with_fds(c, buf, sizeof(buf));
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    close_conn(d, c);
    return;
  }
  c->in = xrealloc(c->in, c->in_len + (size_t)n + 1);
  memcpy(c->in + c->in_len, buf, (size_t)n);
  c->in_len += (size_t)n;
  for (;;) {
    c = find_conn(d, id);
    if (!c || c->closing)
      return;
    char *nl = memchr(c->in, '\n', c->in_len);
    if (!nl) {
      if (c->in_len > DAEMON_MAX_REQUEST) {
        cleanup_free char *msg = xasprintf(
            "request larger than %d bytes: closing the connection", DAEMON_MAX_REQUEST);
        c->in_len = 0;
        reply_error(d, c, msg);
        if ((c = find_conn(d, id))) {
          c->closing = true;
          flush_conn(d, c);
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
      reply_error(d, c, msg);
    }
      continue;
    }
    if (len > 0)
      handle_line(d, c, line, len);
    /* Fds are for the request they came with, not a later one. */
    if ((c = find_conn(d, id)))
      drop_fds(c);
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

static void on_accept(struct daemon *d) {
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
  watch(d, fd, TAG_CONN, EPOLLIN);
  /* Refused per request (every op checks), so that the peer reads why. */
  if (!c->root && !c->member)
    log_info("uid %u (pid %d) connected: not root, not in the celld group",
             (unsigned)c->cred.uid, (int)c->cred.pid);
}

/* ---- startup ------------------------------------------------------------------ */

static void warn_record(const char *file, const char *msg) {
  log_error("instances/%s: %s: skipped", file, msg);
}

/* Match the records against the runtime: what still runs is watched again
 * (through a pidfd: it is no longer our child, so its exit status will be
 * unknown); what died meanwhile is cleaned up. */
static void adopt(struct daemon *d, struct instance *in) {
  const char *name = in->rec->name;
  const char *state = in->rec->state;
  bool was_running = strcmp(state, "running") == 0 || strcmp(state, "restarting") == 0;
  pid_t pid = 0;
  cell_error *err = NULL;
  int pidfd = -1;
  if (runtime_pid(d, name, &pid, &err) == 0) {
    cleanup_free char *json = NULL;
    if (container_state_json(d->runroot, name, &json, &err) == 0 &&
        strstr(json, "\"running\"")) {
      pidfd = cell_pidfd_open(pid);
    }
  }
  cell_error_free(&err);
  if (pidfd >= 0) {
    in->pid = pid;
    in->pidfd = pidfd;
    in->child = parent_of(pid) == getpid();
    watch(d, pidfd, TAG_PIDFD, EPOLLIN);
    watch_oom(in);
    set_state(in, "running");
    save_or_log(d, in);
    log_info("%s: found running as pid %d", name, (int)pid);
    return;
  }
  runtime_delete(d, name);
  rootfs_umount(d, name);
  if (was_running) {
    /* It died while we were away: when and how is not known. */
    set_state(in, "stopped");
    in->rec->exit_code = -1;
    free(in->rec->exit_time);
    in->rec->exit_time = NULL;
    save_or_log(d, in);
    log_warn("%s: died while celld was not running (exit status unknown)", name);
    if (in->rec->restart != RESTART_NO)
      arm_timer(d, in, 0 + 1, true);
  }
}

static int cmp_created(const void *a, const void *b) {
  const struct instance *x = *(struct instance *const *)a;
  const struct instance *y = *(struct instance *const *)b;
  int r = strcmp(x->rec->created, y->rec->created);
  return r ? r : strcmp(x->rec->name, y->rec->name);
}

/* What a celld killed in the middle of a create or destroy left: an
 * instance directory (maybe with mounts) or runtime state without a
 * record.  Ranges need nothing: they are taken only by records. */
static void sweep_orphans(struct daemon *d, const char *dirpath, bool runtime) {
  DIR *dir = opendir(dirpath);
  if (!dir)
    return;
  struct dirent *e;
  while ((e = readdir(dir))) {
    if (e->d_name[0] == '.' || e->d_type != DT_DIR || find_instance(d, e->d_name))
      continue;
    cell_error *err = NULL;
    if (instance_check_name(e->d_name, &err) < 0) {
      cell_error_free(&err);
      continue;
    }
    log_warn("%s: left half-made by an earlier celld: removing it", e->d_name);
    if (runtime) {
      runtime_delete(d, e->d_name);
      continue;
    }
    rootfs_umount(d, e->d_name);
    if (cell_rm_rf_at(d->instdirfd, e->d_name, &err) < 0) {
      log_error("%s", err->msg);
      cell_error_free(&err);
    }
  }
  closedir(dir);
}

static void sweep_exec_dir(struct daemon *d) {
  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, d->execdir, &err) < 0 ||
      cell_mkdir_p(d->execdir, 0700, &err) < 0) {
    log_warn("%s", err->msg);
    cell_error_free(&err);
  }
}

static int load_instances(struct daemon *d, cell_error **err) {
  struct instance_record **recs = NULL;
  size_t n = 0;
  if (instance_record_load_all(d->instdirfd, &recs, &n, warn_record, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    cell_error *e = NULL;
    if (idrange_check_block(&d->cfg->pool, recs[i]->id_start, &e) < 0 ||
        recs[i]->id_count != d->cfg->pool.size) {
      /* Keep it (its range stays taken) but say so. */
      log_warn("%s: %s", recs[i]->name, e ? e->msg : "range size differs from the pool's");
      cell_error_free(&e);
    }
    add_instance(d, recs[i]);
  }
  free(recs);
  if (d->n_inst > 1)
    qsort(d->inst, d->n_inst, sizeof(*d->inst), cmp_created);
  sweep_orphans(d, d->runroot, true);
  sweep_orphans(d, d->instances_dir, false);
  sweep_exec_dir(d);
  for (size_t i = 0; i < d->n_inst; i++)
    adopt(d, d->inst[i]);
  return 0;
}

static void autostart(struct daemon *d) {
  for (size_t i = 0; i < d->n_inst; i++) {
    struct instance *in = d->inst[i];
    if (!in->rec->autostart || in->pidfd >= 0)
      continue;
    cell_error *err = NULL;
    if (start_instance(d, in, &err) < 0) {
      log_error("autostart: %s", err->msg);
      cell_error_free(&err);
      save_or_log(d, in);
      continue;
    }
    emit_event(d, in, "started");
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
  if (flock(*lockfd, LOCK_EX | LOCK_NB) < 0)
    return cell_fail_errno(err, "state dir `%s`: another celld uses it", c->state_dir);
  d->instdirfd = open(d->instances_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d->instdirfd < 0)
    return cell_fail_errno(err, "open `%s`", d->instances_dir);
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

static int open_oom_timer(struct daemon *d, cell_error **err) {
  d->oomfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (d->oomfd < 0)
    return cell_fail_errno(err, "timerfd_create");
  struct timespec every = {OOM_POLL_MS / 1000, (OOM_POLL_MS % 1000) * 1000000L};
  struct itimerspec its = {.it_interval = every, .it_value = every};
  if (timerfd_settime(d->oomfd, 0, &its, NULL) < 0)
    return cell_fail_errno(err, "timerfd_settime");
  return watch(d, d->oomfd, TAG_OOM, EPOLLIN) < 0
             ? cell_fail_errno(err, "epoll_ctl") : 0;
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
        on_pidfd(d, fd);
      } else if (t == TAG_TIMER) {
        on_timer(d, fd);
      } else if (t == TAG_OOM) {
        on_oom_tick(d);
      } else if (t == TAG_EXEC) {
        on_exec_exit(d, fd);
      } else {
        struct conn *c = conn_by_fd(d, fd);
        if (!c)
          continue;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
          on_conn_readable(d, c);
        else if (evs[i].events & EPOLLOUT)
          flush_conn(d, c);
      }
    }
  }
}

static void teardown(struct daemon *d) {
  while (d->n_conns)
    close_conn(d, d->conns[0]);
  free(d->conns);
  for (size_t i = 0; i < d->n_inst; i++)
    free_instance(d, d->inst[i]);
  free(d->inst);
  if (d->listenfd >= 0) {
    close(d->listenfd);
    unlink(d->cfg->socket_path);
  }
  if (d->sigfd >= 0)
    close(d->sigfd);
  if (d->oomfd >= 0)
    close(d->oomfd);
  if (d->epfd >= 0)
    close(d->epfd);
  if (d->instdirfd >= 0)
    close(d->instdirfd);
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

int daemon_run(const struct daemon_config *cfg, cell_error **err) {
  struct daemon d = {.cfg = cfg, .epfd = -1, .listenfd = -1, .sigfd = -1,
                     .instdirfd = -1, .oomfd = -1};
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
  d.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (d.epfd < 0) {
    cell_fail_errno(err, "epoll_create1");
    return -1;
  }
  if (resolve_group(&d, err) < 0 || open_signals(&d, &old, err) < 0 ||
      open_state(&d, &lockfd, err) < 0 || load_instances(&d, err) < 0 ||
      open_listener(&d, err) < 0)
    goto out;
  watch(&d, d.listenfd, TAG_LISTEN, EPOLLIN);
  watch(&d, d.sigfd, TAG_SIGNAL, EPOLLIN);
  if (open_oom_timer(&d, err) < 0)
    goto out;
  if (cfg->autostart)
    autostart(&d);
  log_info("serving on %s (state %s, %zu instances)", cfg->socket_path,
           cfg->state_dir, d.n_inst);
  loop(&d);
  r = 0;
out:
  teardown(&d);
  sigprocmask(SIG_SETMASK, &old, NULL);
  return r;
}
