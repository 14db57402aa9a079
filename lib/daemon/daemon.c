/* celld's event loop and the lifecycle of its instances. */
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
#include <sys/resource.h>
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

int daemon_watch(struct daemon *d, int fd, enum tag t, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.u64 = ev_data(t, fd)};
  return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void daemon_unwatch(struct daemon *d, int fd) {
  epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* ---- instances ------------------------------------------------------------ */

char *daemon_inst_dir(struct daemon *d, const char *name) {
  return xasprintf("%s/%s", d->instances_dir, name);
}

struct instance *daemon_find_instance(struct daemon *d, const char *name) {
  for (size_t i = 0; i < d->n_inst; i++)
    if (strcmp(d->inst[i]->rec->name, name) == 0)
      return d->inst[i];
  return NULL;
}

struct instance *daemon_add_instance(struct daemon *d,
                                     struct instance_record *rec) {
  struct instance *in = xcalloc(1, sizeof(*in));
  in->rec = rec;
  in->pidfd = -1;
  in->timerfd = -1;
  in->oom_fd = -1;
  d->inst = xrealloc(d->inst, (d->n_inst + 1) * sizeof(*d->inst));
  d->inst[d->n_inst++] = in;
  return in;
}

static void unwatch_oom(struct daemon *d, struct instance *in);

static void free_instance(struct daemon *d, struct instance *in) {
  if (in->pidfd >= 0) {
    daemon_unwatch(d, in->pidfd);
    close(in->pidfd);
  }
  if (in->timerfd >= 0) {
    daemon_unwatch(d, in->timerfd);
    close(in->timerfd);
  }
  unwatch_oom(d, in);
  instance_record_free(in->rec);
  free(in->waiters);
  free(in);
}

void daemon_remove_instance(struct daemon *d, struct instance *in) {
  for (size_t i = 0; i < d->n_inst; i++) {
    if (d->inst[i] != in)
      continue;
    memmove(&d->inst[i], &d->inst[i + 1], (d->n_inst - i - 1) * sizeof(*d->inst));
    d->n_inst--;
    break;
  }
  free_instance(d, in);
}

void inst_set_state(struct instance *in, const char *state) {
  free(in->rec->state);
  in->rec->state = xstrdup(state);
}

int inst_save(struct daemon *d, struct instance *in, cell_error **err) {
  return instance_record_save(d->instdirfd, in->rec, err);
}

void inst_save_or_log(struct daemon *d, struct instance *in) {
  cell_error *err = NULL;
  if (inst_save(d, in, &err) < 0) {
    log_error("%s", err->msg);
    cell_error_free(&err);
  }
}

/* Start counting the instance's OOM kills from what they are now, and
 * listen for the kernel's notice of the next one (read the count on it:
 * no polling).  Without a notice fd the 500 ms tick reads the count. */
static void watch_oom(struct daemon *d, struct instance *in) {
  unwatch_oom(d, in);
  cell_error *err = NULL;
  if (cgroup_open(in->rec->cgroup, &in->cgroup, &err) == 0)
    cgroup_keep_only(in->cgroup, "memory");
  if (!in->cgroup ||
      cgroup_oom_count(in->cgroup, &in->oom_kills, &err) < 0) {
    log_debug("%s: no OOM events: %s", in->rec->name, err->msg);
    cell_error_free(&err);
    cgroup_free(in->cgroup);
    in->cgroup = NULL;
    return;
  }
  in->oom_fd = cgroup_oom_watch(in->cgroup, &err);
  if (in->oom_fd < 0) {
    log_debug("%s: OOM kill count polled: %s", in->rec->name, err->msg);
    cell_error_free(&err);
  } else {
    daemon_watch(d, in->oom_fd, TAG_OOM_EVENT, EPOLLIN);
  }
}

static void unwatch_oom(struct daemon *d, struct instance *in) {
  if (in->oom_fd >= 0) {
    daemon_unwatch(d, in->oom_fd);
    close(in->oom_fd);
  }
  in->oom_fd = -1;
  in->oom_recheck = 0;
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
    in->oom_recheck = 0;
    daemon_emit_event(d, in, "oom");
  }
}

/* The kernel's notice.  On cgroup v1 it comes as the cgroup runs out of
 * memory, maybe before the killer has counted its kill: the next ticks
 * read the count again. */
static void on_oom_event(struct daemon *d, int fd) {
  cgroup_oom_watch_ack(fd);
  for (size_t i = 0; i < d->n_inst; i++) {
    struct instance *in = d->inst[i];
    if (in->oom_fd != fd)
      continue;
    in->oom_recheck = 4;
    on_oom_check(d, in);
    return;
  }
}

static void on_oom_tick(struct daemon *d) {
  uint64_t ticks;
  if (read(d->oomfd, &ticks, sizeof(ticks)) < 0)
    return;
  for (size_t i = 0; i < d->n_inst; i++) {
    struct instance *in = d->inst[i];
    if (in->oom_fd >= 0 && in->oom_recheck == 0)
      continue;
    if (in->oom_recheck > 0)
      in->oom_recheck--;
    on_oom_check(d, in);
  }
}

static void answer_waiters(struct daemon *d, struct instance *in,
                           const char *error) {
  for (size_t i = 0; i < in->n_waiters; i++) {
    struct conn *c = daemon_find_conn(d, in->waiters[i]);
    if (!c)
      continue;
    if (error)
      conn_error(d, c, error);
    else
      conn_reply_instance(d, c, in);
  }
  free(in->waiters);
  in->waiters = NULL;
  in->n_waiters = 0;
}

void inst_add_waiter(struct instance *in, struct conn *c) {
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
    daemon_watch(d, in->timerfd, TAG_TIMER, EPOLLIN);
  }
  struct itimerspec its = {.it_value = {ms / 1000, (ms % 1000) * 1000000}};
  timerfd_settime(in->timerfd, 0, &its, NULL);
  in->timer_restart = restart;
}

void inst_disarm_timer(struct daemon *d, struct instance *in) {
  if (in->timerfd < 0)
    return;
  daemon_unwatch(d, in->timerfd);
  close(in->timerfd);
  in->timerfd = -1;
}

/* ---- start, stop, exit ----------------------------------------------------- */

int daemon_pidfd_signal(int pidfd, int sig) {
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
  cleanup_free char *dir = daemon_inst_dir(d, name);
  cell_error *err = NULL;
  if (instance_rootfs_umount(dir, &err) < 0) {
    log_error("%s: %s", name, err->msg);
    cell_error_free(&err);
  }
}

int inst_mount_root(struct daemon *d, struct instance *in, cell_error **err) {
  cleanup_free char *dir = daemon_inst_dir(d, in->rec->name);
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

void daemon_restore_stdio(int saved[3]) {
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
  /* The init's terminal: its pty master goes to the console keeper. */
  cleanup_free char *console_path = NULL;
  cleanup_close int console = daemon_console_listen(d, in, &console_path, err);
  o.console_socket = console_path;
  int r = console < 0 ? -1 : container_create(&o, err);
  daemon_restore_stdio(saved);
  daemon_console_take(d, in, console, console_path, r == 0);
  if (r < 0)
    return -1;
  pid_t pid;
  if (runtime_pid(d, in->rec->name, &pid, err) < 0)
    return -1;
  /* No setpgid: the init runs on its console pty and so leads a session
   * of its own; a signal to celld's group (^C, a service manager) does
   * not reach it. */
  int pidfd = cell_pidfd_open(pid);
  if (pidfd < 0)
    return cell_fail_errno(err, "pidfd_open %d", (int)pid);
  /* Its network namespace exists and its init has not run yet. */
  if (daemon_net_attach(d, in->rec, pid, err) < 0 ||
      container_start(d->runroot, in->rec->name, err) < 0) {
    close(pidfd);
    return -1;
  }
  in->pid = pid;
  in->pidfd = pidfd;
  in->child = parent_of(pid) == getpid();
  daemon_watch(d, pidfd, TAG_PIDFD, EPOLLIN);
  return 0;
}

int inst_start(struct daemon *d, struct instance *in,
               cell_error **err) {
  if (in->pidfd >= 0)
    return cell_fail(err, 0, "instance `%s` is already running", in->rec->name);
  inst_disarm_timer(d, in);
  cleanup_free char *dir = daemon_inst_dir(d, in->rec->name);
  runtime_delete(d, in->rec->name);
  if (inst_mount_root(d, in, err) < 0 || create_and_start(d, in, dir, err) < 0) {
    runtime_delete(d, in->rec->name);
    /* With the bridge, when it was made for this start alone. */
    daemon_net_detach(d, in->rec, true);
    rootfs_umount(d, in->rec->name);
    return cell_error_wrap(err, "start `%s`", in->rec->name);
  }
  in->stopping = false;
  in->after = AFTER_NOTHING;
  watch_oom(d, in);
  inst_set_state(in, "running");
  if (inst_save(d, in, err) < 0)
    return -1;
  return 0;
}

static int halt_signal(const struct instance *in) {
  /* busybox (and sysvinit-like) init: SIGUSR2 is poweroff; anything else
   * gets the conventional SIGTERM. */
  return strcmp(in->rec->init[0], DEFAULT_INIT) == 0 ? SIGUSR2 : SIGTERM;
}

void inst_stop(struct daemon *d, struct instance *in, int timeout) {
  if (in->stopping)
    return;
  in->stopping = true;
  if (daemon_pidfd_signal(in->pidfd, halt_signal(in)) < 0)
    log_warn("%s: signal the init: %s", in->rec->name, strerror(errno));
  arm_timer(d, in, timeout * 1000L, false);
}

/* Test-only (docs/api.md): CELLD_TEST_PAUSE=create stops celld for 60 s
 * in the middle of a create (directory made, root mounted, no record yet),
 * =destroy in the middle of a destroy (init killed, root unmounted, record
 * still there), so that a test can kill -9 it there. */
void daemon_test_pause(const char *where) {
  const char *want = getenv("CELLD_TEST_PAUSE");
  if (want && strcmp(want, where) == 0) {
    log_warn("CELLD_TEST_PAUSE=%s: pausing", where);
    sleep(60);
  }
}

void inst_destroy_now(struct daemon *d, struct instance *in,
                      cell_error **err) {
  const char *name = in->rec->name;
  runtime_delete(d, name);
  daemon_console_remove(d, name);
  daemon_net_detach(d, in->rec, true);
  rootfs_umount(d, name);
  cleanup_free char *dir = daemon_inst_dir(d, name);
  cleanup_free char *still_mounted = xasprintf("%s/rootfs", dir);
  if (instance_is_mountpoint(still_mounted)) {
    cell_fail(err, 0, "destroy `%s`: `%s` is still mounted", name, still_mounted);
    return;
  }
  daemon_test_pause("destroy");
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

int daemon_exit_code(const siginfo_t *si) {
  if (si->si_code == CLD_EXITED)
    return si->si_status & 0xff;
  return 128 + si->si_status;
}

void inst_finish_destroy(struct daemon *d, struct instance *in) {
  cell_error *err = NULL;
  inst_destroy_now(d, in, &err);
  if (err) {
    answer_waiters(d, in, err->msg);
    cell_error_free(&err);
    return;
  }
  daemon_emit_event(d, in, "destroyed");
  answer_waiters(d, in, NULL);
  daemon_remove_instance(d, in);
}

/* The init is gone (code -1: unknown). */
static void instance_exited(struct daemon *d, struct instance *in, int code) {
  daemon_unwatch(d, in->pidfd);
  close(in->pidfd);
  in->pidfd = -1;
  in->pid = 0;
  inst_disarm_timer(d, in);
  /* An OOM kill of the init itself is seen before it is forgotten. */
  on_oom_check(d, in);
  unwatch_oom(d, in);
  runtime_delete(d, in->rec->name);
  daemon_net_detach(d, in->rec, false);
  rootfs_umount(d, in->rec->name);
  in->rec->exit_code = code;
  free(in->rec->exit_time);
  in->rec->exit_time = cell_rfc3339_now();
  inst_set_state(in, "stopped");
  bool stopping = in->stopping;
  daemon_emit_event(d, in, stopping ? "stopped" : "died");
  if (in->after == AFTER_DESTROY) {
    inst_finish_destroy(d, in);
    return;
  }
  if (in->after == AFTER_START) {
    in->after = AFTER_NOTHING;
    cell_error *err = NULL;
    if (inst_start(d, in, &err) < 0) {
      inst_save_or_log(d, in);
      answer_waiters(d, in, err->msg);
      cell_error_free(&err);
      return;
    }
    daemon_emit_event(d, in, "restarted");
    answer_waiters(d, in, NULL);
    return;
  }
  if (wants_restart(in)) {
    in->rec->restarts++;
    inst_set_state(in, "restarting");
    arm_timer(d, in, RESTART_DELAY_MS, true);
  }
  in->stopping = false;
  inst_save_or_log(d, in);
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
      code = daemon_exit_code(&si);
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
      exec_on_exit(d, execer->exec_pidfd);
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
      inst_disarm_timer(d, in);
      cell_error *err = NULL;
      if (inst_start(d, in, &err) < 0) {
        log_error("%s", err->msg);
        cell_error_free(&err);
        inst_set_state(in, "stopped");
        inst_save_or_log(d, in);
        return;
      }
      daemon_emit_event(d, in, "restarted");
      return;
    }
    log_warn("%s: did not stop in time: SIGKILL", in->rec->name);
    if (in->pidfd >= 0)
      daemon_pidfd_signal(in->pidfd, SIGKILL);
    inst_disarm_timer(d, in);
    return;
  }
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
    daemon_watch(d, pidfd, TAG_PIDFD, EPOLLIN);
    watch_oom(d, in);
    inst_set_state(in, "running");
    inst_save_or_log(d, in);
    log_info("%s: found running as pid %d", name, (int)pid);
    return;
  }
  runtime_delete(d, name);
  rootfs_umount(d, name);
  if (was_running) {
    /* It died while we were away: when and how is not known. */
    inst_set_state(in, "stopped");
    in->rec->exit_code = -1;
    free(in->rec->exit_time);
    in->rec->exit_time = NULL;
    inst_save_or_log(d, in);
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
    if (e->d_name[0] == '.' || e->d_type != DT_DIR || daemon_find_instance(d, e->d_name))
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
    daemon_add_instance(d, recs[i]);
  }
  free(recs);
  if (d->n_inst > 1)
    qsort(d->inst, d->n_inst, sizeof(*d->inst), cmp_created);
  sweep_orphans(d, d->runroot, true);
  sweep_orphans(d, d->instances_dir, false);
  sweep_exec_dir(d);
  daemon_net_sweep_bridges(d);
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
    if (inst_start(d, in, &err) < 0) {
      log_error("autostart: %s", err->msg);
      cell_error_free(&err);
      inst_save_or_log(d, in);
      continue;
    }
    daemon_emit_event(d, in, "started");
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
  return daemon_watch(d, d->oomfd, TAG_OOM, EPOLLIN) < 0
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
        daemon_on_accept(d);
      } else if (t == TAG_SIGNAL) {
        on_signal(d);
      } else if (t == TAG_PIDFD) {
        on_pidfd(d, fd);
      } else if (t == TAG_TIMER) {
        on_timer(d, fd);
      } else if (t == TAG_OOM) {
        on_oom_tick(d);
      } else if (t == TAG_OOM_EVENT) {
        on_oom_event(d, fd);
      } else if (t == TAG_EXEC) {
        exec_on_exit(d, fd);
      } else {
        struct conn *c = daemon_conn_by_fd(d, fd);
        if (!c)
          continue;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
          conn_on_readable(d, c);
        else if (evs[i].events & EPOLLOUT)
          conn_flush(d, c);
      }
    }
  }
}

static void teardown(struct daemon *d) {
  daemon_console_close(d);
  while (d->n_conns)
    conn_close(d, d->conns[0]);
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
                     .instdirfd = -1, .oomfd = -1, .keeperfd = -1};
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
  if (resolve_group(&d, err) < 0 || open_signals(&d, &old, err) < 0 ||
      open_state(&d, &lockfd, err) < 0 || load_instances(&d, err) < 0 ||
      open_listener(&d, err) < 0)
    goto out;
  daemon_console_init(&d);
  daemon_watch(&d, d.listenfd, TAG_LISTEN, EPOLLIN);
  daemon_watch(&d, d.sigfd, TAG_SIGNAL, EPOLLIN);
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

