/* An instance's lifecycle in celld: its start (root mounted, container
 * created with its console, networks attached, init started), its stop,
 * its exit (what it leaves is undone; the restart policy), its destroy.
 * Clients hear of it through the hooks of struct daemon. */
#include "daemon/daemon-lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/procfs.h"
#include "base/util.h"
#include "cgroup/cgroup.h"
#include "daemon/daemon-console.h"
#include "daemon/daemon-intent.h"
#include "daemon/daemon-lxcfs.h"
#include "daemon/daemon-net.h"
#include "daemon/daemon-oom.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-runtime.h"
#include "daemon/instance-attach.h"
#include "daemon/instance-rootfs.h"
#include "daemon/instance-settings.h"
#include "daemon/instance-spec.h"
#include "daemon/profile.h"
#include "runtime/container.h"
#include "storage/pool.h"

void inst_arm_timer(struct daemon *d, struct instance *in, long ms,
                    bool restart) {
  if (in->timerfd < 0) {
    in->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (in->timerfd < 0) {
      log_error("%s: timerfd: %s", in->rec->name, strerror(errno));
      return;
    }
    daemon_watch(d, in->timerfd, TAG_TIMER, EPOLLIN);
  }
  /* An it_value of zero disarms a timerfd: "now" is one nanosecond
   * (stop --timeout 0 waited for ever). */
  struct itimerspec its = {.it_value = {ms / 1000, (ms % 1000) * 1000000}};
  if (ms <= 0)
    its.it_value = (struct timespec){0, 1};
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

static int create_and_start(struct daemon *d, struct instance *in,
                            const char *dir, cell_error **err) {
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
  const char *lxcfs_dir = lxcfs_dir_for_start(d);
  free(in->proc_view);
  in->proc_view = lxcfs_proc_view(d);
  cleanup_free char *spec = instance_spec_json(in->rec, rootfs, lxcfs_dir, err);
  cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!spec || dirfd < 0)
    return spec ? cell_fail_errno(err, "open `%s`", dir) : -1;
  /* Made again from the record at every start: no fsync. */
  if (cell_replace_file_at(dirfd, "config.json", spec, strlen(spec), 0600,
                           err) < 0)
    return -1;
  /* One procfs root for all starts: no teardown of one at each, were it
   * a private instance. */
  if (d->procfs < 0)
    d->procfs = procfs_open_root(err);
  if (d->procfs < 0)
    return -1;
  struct container_opts o = {.root = d->runroot,
                             .id = in->rec->name,
                             .bundle = dir,
                             .writable_net_sysctls = true,
                             .procfs = &d->procfs};
  /* The port filters' transactions run while the container is made;
   * attach waits for them. */
  __attribute__((cleanup(daemon_net_filters_cancel)))
  struct daemon_net_filters filters = {.n = 0};
  if (daemon_net_filters_begin(d, in->rec, &filters, err) < 0)
    return -1;
  int saved[3] = {-1, -1, -1};
  if (daemon_swap_stdio(dir, saved, err) < 0)
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
  if (daemon_runtime_pid(d, in->rec->name, &pid, err) < 0)
    return -1;
  /* No setpgid: the init runs on its console pty and so leads a session
   * of its own; a signal to celld's group (^C, a service manager) does
   * not reach it. */
  int pidfd = cell_pidfd_open(pid);
  if (pidfd < 0)
    return cell_fail_errno(err, "pidfd_open %d", (int)pid);
  cleanup_free char *devdir = xasprintf("%s/devices", dir);
  /* Its network and mount namespaces exist and its init has not run yet:
   * its host directories and devices are there when it does. */
  if (daemon_net_attach(d, in->rec, pid, &filters, err) < 0 ||
      attach_settings(in->rec, pid, devdir, err) < 0 ||
      container_start(d->runroot, in->rec->name, err) < 0) {
    close(pidfd);
    return -1;
  }
  in->pid = pid;
  in->pidfd = pidfd;
  in->child = daemon_parent_of(pid) == getpid();
  daemon_watch(d, pidfd, TAG_PIDFD, EPOLLIN);
  return 0;
}

int inst_plan_networks(struct daemon *d, struct instance_record *r,
                       enum api_code *code, cell_error **err) {
  const char *planned = instance_setting(r, "networks");
  if (!planned)
    return 0;
  cleanup_free char *json = settings_networks_json(planned);
  cleanup_json struct json_value *nets = NULL;
  if (json_parse(json, strlen(json), &nets, err) < 0)
    return -1;
  for (size_t i = 0; i < r->n_nets; i++) {
    free(r->nets[i].network);
    free(r->nets[i].ifname);
    free(r->nets[i].host_veth);
    free(r->nets[i].ipv4);
    free(r->nets[i].ipv6);
  }
  memset(r->nets, 0, sizeof(r->nets));
  r->n_nets = 0;
  if (daemon_net_plan(d, nets, r, code, err) < 0)
    return cell_error_wrap(err, "networks");
  instance_setting_drop(r, "networks");
  return 0;
}

/* The profiles it uses, again, in order: an edit of one reaches it at
 * this start.  What it sets itself (own_keys) stays. */
static int apply_profiles(struct daemon *d, struct instance_record *r,
                          cell_error **err) {
  if (!r->profiles)
    return 0;
  cleanup_close int dirfd = profile_dir_open(d->cfg->state_dir, err);
  if (dirfd < 0)
    return -1;
  for (size_t i = 0; r->profiles[i]; i++) {
    struct profile *p = NULL;
    if (profile_load(dirfd, r->profiles[i], &p, err) < 0)
      return -1;
    int rc = profile_apply(p, r, err);
    profile_free(p);
    if (rc < 0)
      return -1;
  }
  return 0;
}

int inst_start(struct daemon *d, struct instance *in, cell_error **err) {
  if (in->pidfd >= 0)
    return cell_fail(err, 0, "instance `%s` is already running", in->rec->name);
  if (in->exports > 0)
    return cell_fail(err, EBUSY, "instance `%s` is being exported: start it "
                     "when the export is done", in->rec->name);
  if (in->hold != HOLD_NONE)
    return cell_fail(err, EBUSY, "instance `%s`: %s", in->rec->name,
                     instance_hold_why(in->hold));
  inst_disarm_timer(d, in);
  cleanup_free char *dir = daemon_inst_dir(d, in->rec->name);
  daemon_runtime_delete(d, in->rec->name);
  enum api_code code;
  if (apply_profiles(d, in->rec, err) < 0 ||
      inst_plan_networks(d, in->rec, &code, err) < 0)
    return cell_error_wrap(err, "start `%s`", in->rec->name);
  /* The root is mounted in our namespace only while the container is
   * made (it copies the namespace): instances that run leave nothing in
   * it, and the copy each new one makes stays as small as the first. */
  if (inst_mount_root(d, in, err) < 0 ||
      inst_update_names(in->rec, dir, err) < 0 ||
      instance_rootfs_keep_root_only(dir, err) < 0 ||
      create_and_start(d, in, dir, err) < 0) {
    daemon_runtime_delete(d, in->rec->name);
    /* With the bridge, when it was made for this start alone. */
    daemon_net_detach(d, in->rec, true);
    daemon_rootfs_umount(d, in->rec->name);
    return cell_error_wrap(err, "start `%s`", in->rec->name);
  }
  daemon_rootfs_umount(d, in->rec->name);
  in->stopping = false;
  in->after = AFTER_NOTHING;
  /* What waited for a start has it now. */
  cell_strv_free(steal_pointer(&in->rec->pending));
  oom_watch(d, in);
  inst_set_state(in, "running");
  if (inst_save(d, in, err) < 0)
    return -1;
  return 0;
}

bool inst_is_paused(const struct instance *in) {
  return in->pidfd >= 0 && strcmp(in->rec->state, "paused") == 0;
}

int inst_freeze(struct instance *in, bool frozen, cell_error **err) {
  struct cgroup *cg = NULL;
  if (cgroup_open(in->rec->cgroup, &cg, err) < 0)
    return -1;
  int rc = cgroup_freeze(cg, frozen, err);
  cgroup_free(cg);
  if (rc < 0)
    return cell_error_wrap(err, "%s `%s`", frozen ? "pause" : "resume",
                           in->rec->name);
  inst_set_state(in, frozen ? "paused" : "running");
  return 0;
}

bool inst_cgroup_is_frozen(const struct instance *in) {
  struct cgroup *cg = NULL;
  cell_error *err = NULL;
  if (cgroup_open(in->rec->cgroup, &cg, &err) < 0) {
    cell_error_free(&err);
    return false;
  }
  bool frozen = cgroup_is_frozen(cg);
  cgroup_free(cg);
  return frozen;
}

void inst_thaw_if_paused(struct instance *in) {
  if (!inst_is_paused(in))
    return;
  cell_error *err = NULL;
  if (inst_freeze(in, false, &err) < 0) {
    log_error("%s", err->msg);
    cell_error_free(&err);
  }
}

static int halt_signal(const struct instance *in) {
  /* Chosen at create from the init (or given); records from before that
   * have none: the conventional SIGTERM. */
  return in->rec->halt_signal > 0 ? in->rec->halt_signal : SIGTERM;
}

void inst_stop(struct daemon *d, struct instance *in, int timeout) {
  if (in->stopping)
    return;
  in->stopping = true;
  /* A frozen init would not see its halt signal until thawed. */
  inst_thaw_if_paused(in);
  if (daemon_pidfd_signal(in->pidfd, halt_signal(in)) < 0)
    log_warn("%s: signal the init: %s", in->rec->name, strerror(errno));
  inst_arm_timer(d, in, timeout * 1000L, false);
}

/* The instance's disk, first: a btrfs subvolume is a mount boundary that
 * rm -rf of its directory does not cross.  Outside the default pool, its
 * directory there too.  A pool celld.conf no longer names is left alone
 * (said in the log): the record still goes. */
static int remove_disk(struct daemon *d, const struct instance_record *r,
                       cell_error **err) {
  cell_error *gone = NULL;
  cleanup_free char *disk = daemon_inst_disk_dir(d, r, &gone);
  if (!disk) {
    log_warn("%s", gone->msg);
    cell_error_free(&gone);
    return 0;
  }
  if (pool_disk_remove(disk, err) < 0)
    return -1;
  if (!r->pool || strcmp(r->pool, DAEMON_DEFAULT_POOL) == 0)
    return 0;
  cleanup_free char *dir = xstrndup(disk, strlen(disk) - strlen("/disk"));
  if (rmdir(dir) < 0 && errno != ENOENT)
    return cell_fail_errno(err, "rmdir `%s`", dir);
  return 0;
}

void inst_destroy_now(struct daemon *d, struct instance *in, cell_error **err) {
  const char *name = in->rec->name;
  daemon_runtime_delete(d, name);
  daemon_console_remove(d, name);
  daemon_net_detach(d, in->rec, true);
  daemon_rootfs_umount(d, name);
  cleanup_free char *dir = daemon_inst_dir(d, name);
  cleanup_free char *still_mounted = xasprintf("%s/rootfs", dir);
  if (instance_is_mountpoint(still_mounted)) {
    cell_fail(err, 0, "destroy `%s`: `%s` is still mounted", name, still_mounted);
    return;
  }
  daemon_test_pause("destroy");
  if (remove_disk(d, in->rec, err) < 0)
    return;
  if (cell_rm_rf_at(d->instdirfd, name, err) < 0)
    return;
  if (instance_record_remove(d->instdirfd, name, err) < 0)
    return;
  /* An intent a replay could not carry out goes with it: it must not act
   * on a later instance of the same name. */
  intent_end(d, name);
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

void inst_finish_destroy(struct daemon *d, struct instance *in) {
  cell_error *err = NULL;
  inst_destroy_now(d, in, &err);
  if (err) {
    inst_answer_waiters(d, in, err->msg);
    cell_error_free(&err);
    return;
  }
  daemon_emit(d, in, "destroyed");
  /* Its own layers and its snapshots' go (unless a clone shares them)
   * before the client hears it is gone. */
  instance_record_drop_layers(in->rec);
  /* And its image, when it was the last to hold one without a name. */
  free(steal_pointer(&in->rec->image));
  daemon_collect_images(d);
  inst_answer_waiters(d, in, NULL);
  daemon_remove_instance(d, in);
}

/* How an init ended.  reboot(2) in a pid namespace ends its init: killed
 * by SIGHUP for a restart, by SIGINT for a power-off or halt
 * (pid_namespaces(7)).  Nothing else sends it those: its own namespace
 * cannot signal it unasked, and celld halts with the init's halt signal. */
enum init_end { INIT_EXITED, INIT_REBOOTED, INIT_POWERED_OFF };

static enum init_end init_end_of(const siginfo_t *si) {
  if (si->si_code != CLD_KILLED && si->si_code != CLD_DUMPED)
    return INIT_EXITED;
  if (si->si_status == SIGHUP)
    return INIT_REBOOTED;
  if (si->si_status == SIGINT)
    return INIT_POWERED_OFF;
  return INIT_EXITED;
}

static const char *end_event(const struct instance *in, enum init_end end) {
  if (in->stopping)
    return "stopped";
  switch (end) {
  case INIT_REBOOTED:
    return "rebooted";
  case INIT_POWERED_OFF:
    return "poweroff";
  default:
    return "died";
  }
}

/* The init is gone (code -1: unknown). */
static void instance_exited(struct daemon *d, struct instance *in, int code,
                            enum init_end end) {
  daemon_unwatch(d, in->pidfd);
  close(in->pidfd);
  in->pidfd = -1;
  in->pid = 0;
  in->killed = false;
  inst_disarm_timer(d, in);
  /* An OOM kill of the init itself is seen before it is forgotten. */
  oom_check(d, in);
  oom_unwatch(d, in);
  daemon_runtime_delete(d, in->rec->name);
  daemon_console_hangup(d, in->rec->name);
  daemon_net_detach(d, in->rec, false);
  daemon_rootfs_umount(d, in->rec->name);
  /* Its last words stay readable (cellctl console) past a celld restart. */
  daemon_console_save(d, in->rec->name);
  in->rec->exit_code = code;
  free(in->rec->exit_time);
  in->rec->exit_time = cell_rfc3339_now();
  inst_set_state(in, "stopped");
  daemon_emit(d, in, end_event(in, end));
  /* `reboot` inside: start again at once, whatever the restart policy.
   * `poweroff` inside: stopped, as if by `cellctl stop`. */
  if (end == INIT_REBOOTED && !in->stopping && in->after == AFTER_NOTHING)
    in->after = AFTER_START;
  if (end == INIT_POWERED_OFF)
    in->stopping = true;
  if (in->after == AFTER_DESTROY) {
    inst_finish_destroy(d, in);
    return;
  }
  if (in->after == AFTER_START) {
    in->after = AFTER_NOTHING;
    cell_error *err = NULL;
    if (inst_start(d, in, &err) < 0) {
      inst_save_or_log(d, in);
      inst_answer_waiters(d, in, err->msg);
      cell_error_free(&err);
      return;
    }
    daemon_emit(d, in, "restarted");
    inst_answer_waiters(d, in, NULL);
    return;
  }
  if (wants_restart(in)) {
    in->rec->restarts++;
    inst_set_state(in, "restarting");
    inst_arm_timer(d, in, RESTART_DELAY_MS, true);
  }
  in->stopping = false;
  inst_save_or_log(d, in);
  inst_answer_waiters(d, in, NULL);
}

void lifecycle_on_pidfd(struct daemon *d, int fd) {
  for (size_t i = 0; i < d->n_inst; i++) {
    struct instance *in = d->inst[i];
    if (in->pidfd != fd)
      continue;
    int code = -1;
    enum init_end end = INIT_EXITED;
    if (in->child) {
      siginfo_t si = {0};
      if (waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return; /* not gone yet (or reaped elsewhere: the pidfd stays readable) */
      code = daemon_exit_code(&si);
      end = init_end_of(&si);
    }
    instance_exited(d, in, code, end);
    return;
  }
}

/* How often SIGKILL is sent again while the init is still there. */
enum { KILL_AGAIN_MS = 1000 };

/* SIGKILL to every process of the instance, through its cgroup, which is
 * thawed first if something left it frozen (a frozen process waits for the
 * thaw even to die). */
static void kill_whole_cgroup(const struct instance *in) {
  struct cgroup *cg = NULL;
  cell_error *err = NULL;
  if (cgroup_open(in->rec->cgroup, &cg, &err) == 0)
    cgroup_kill_all(cg, SIGKILL, &err);
  if (err) {
    log_warn("%s: kill its cgroup: %s", in->rec->name, err->msg);
    cell_error_free(&err);
  }
  cgroup_free(cg);
}

void lifecycle_on_timer(struct daemon *d, int fd) {
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
      daemon_emit(d, in, "restarted");
      return;
    }
    if (in->killed)
      log_warn("%s: still there after SIGKILL: again", in->rec->name);
    else
      log_warn("%s: did not stop in time: SIGKILL", in->rec->name);
    in->killed = true;
    if (in->pidfd >= 0)
      daemon_pidfd_signal(in->pidfd, SIGKILL);
    kill_whole_cgroup(in);
    /* Until its exit disarms it: a kill that failed half-way (a thaw
     * refused, say) would leave the init frozen, and a stop or a
     * destroy -f waiting for ever. */
    inst_arm_timer(d, in, KILL_AGAIN_MS, false);
    return;
  }
}
