/* celld's startup: the records loaded, what a killed celld left half-made
 * swept away, the instances that still run adopted, and the autostart
 * ones started. */
#include "daemon/daemon-startup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cgroup/cgroup.h"
#include "daemon/daemon-checkpoint.h"
#include "daemon/daemon-console.h"
#include "daemon/daemon-image.h"
#include "daemon/daemon-intent.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-net.h"
#include "daemon/daemon-oom.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-runtime.h"
#include "daemon/instance-settings.h"
#include "daemon/idrange.h"
#include "runtime/container.h"
#include "storage/pool.h"

static void warn_record(const char *file, const char *msg) {
  log_error("instances/%s: %s: skipped", file, msg);
}

/* Its cgroup frozen, the record not paused: a snapshot, checkpoint or
 * migration froze it and celld was killed before the thaw.  Left so, it
 * would hang for ever (even SIGKILL waits for a thaw): it runs again. */
static void thaw_unfinished_freeze(struct instance *in, bool was_paused) {
  if (was_paused || !inst_cgroup_is_frozen(in))
    return;
  cell_error *err = NULL;
  if (inst_freeze(in, false, &err) < 0) {
    log_error("%s", err->msg);
    cell_error_free(&err);
    return;
  }
  log_warn("%s: left frozen by an operation an earlier celld did not "
           "finish: thawed", in->rec->name);
}

/* Thawed if an unfinished op left it frozen, and its state as its cgroup
 * says (paused before celld restarted: frozen still), saved. */
static void settle_adopted(struct daemon *d, struct instance *in,
                           bool was_paused) {
  thaw_unfinished_freeze(in, was_paused);
  inst_set_state(in, inst_cgroup_is_frozen(in) ? "paused" : "running");
  inst_save_or_log(d, in);
}

static void sweep_unfinished_checkpoints(struct daemon *d,
                                         const struct instance *in);

/* ---- a criu an earlier celld started -------------------------------------
 * A celld killed while criu dumps an instance leaves that criu running
 * (daemon-checkpoint.c's lock).  Until it ends, the instance is held:
 * thawed now, it would be frozen again by criu at its end; its images'
 * directory, removed now, is still being written. */

/* Whether criu runs on it still: its lock is held. */
static bool earlier_criu_works(struct daemon *d, const char *name) {
  cleanup_free char *path = xasprintf("%s/" CHECKPOINT_CRIU_LOCK, name);
  cleanup_close int fd =
      openat(d->instdirfd, path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  return fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

struct criu_wait {
  char *name;
  char *lock;      /* the lock's path */
  bool was_paused; /* by its record */
};

static void criu_wait_free(void *p) {
  struct criu_wait *w = p;
  free(w->name);
  free(w->lock);
  free(w);
}

/* In a child: the lock taken, that is, that criu gone. */
static void run_criu_wait(struct daemon *d, void *arg, int outfd) {
  (void)d;
  struct criu_wait *w = arg;
  int keep[] = {outfd};
  image_child_setup(keep, 1);
  cell_error *err = NULL;
  int fd = open(w->lock, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || flock(fd, LOCK_EX) < 0)
    cell_fail_errno(&err, "wait for `%s`", w->lock);
  image_child_result(outfd, err);
  _exit(err ? 1 : 0);
}

/* That criu is gone: what it left is dealt with as any killed celld's. */
static void earlier_criu_ended(struct daemon *d, struct image_job *j,
                               const struct json_value *v) {
  struct criu_wait *w = j->ctx;
  struct instance *in = daemon_find_instance(d, w->name);
  const char *error = NULL;
  if (!in || in->hold != HOLD_EARLIER_CRIU)
    return;
  in->hold = HOLD_NONE;
  if (!image_child_ok(v, &error)) {
    log_error("%s: %s: left as it is", w->name, error ? error : "failed");
    return;
  }
  log_info("%s: the criu an earlier celld started has ended", w->name);
  sweep_unfinished_checkpoints(d, in);
  if (in->pidfd >= 0) /* (criu's checkpoint --stop killed it) */
    settle_adopted(d, in, w->was_paused);
}

/* Its process killed before a result: the instance is left held by no
 * one, as criu left it (`cellctl resume` thaws it). */
static void earlier_criu_wait_over(struct daemon *d, struct image_job *j) {
  struct criu_wait *w = j->ctx;
  struct instance *in = daemon_find_instance(d, w->name);
  if (!j->done && in && in->hold == HOLD_EARLIER_CRIU) {
    in->hold = HOLD_NONE;
    log_error("%s: the wait for an earlier celld's criu died: left as it is",
              w->name);
  }
}

/* Held until that criu is gone; 0 when none runs. */
static int hold_for_earlier_criu(struct daemon *d, struct instance *in,
                                 bool was_paused) {
  if (!earlier_criu_works(d, in->rec->name))
    return 0;
  struct criu_wait *w = xcalloc(1, sizeof(*w));
  w->name = xstrdup(in->rec->name);
  w->lock = xasprintf("%s/%s/" CHECKPOINT_CRIU_LOCK, d->instances_dir,
                      in->rec->name);
  w->was_paused = was_paused;
  cleanup_free char *what =
      xasprintf("the wait for an earlier celld's criu on `%s`", w->name);
  struct image_job *j = image_job_new(0, what, w, criu_wait_free);
  j->on_result = earlier_criu_ended;
  j->on_end = earlier_criu_wait_over;
  cell_error *err = NULL;
  int pipefd = -1;
  pid_t pid = image_child_spawn(run_criu_wait, d, w, &pipefd, &err);
  if (pid < 0) {
    log_error("%s: %s", w->name, err->msg);
    cell_error_free(&err);
    daemon_image_job_free(j);
    return -1;
  }
  daemon_image_add_job(d, NULL, j, pid, pipefd);
  in->hold = HOLD_EARLIER_CRIU;
  log_warn("%s: a criu an earlier celld started still works on it: held "
           "until it ends", w->name);
  return 1;
}

/* Match the records against the runtime: what still runs is watched again
 * (through a pidfd: it is no longer our child, so its exit status will be
 * unknown); what died meanwhile is cleaned up. */
static void adopt(struct daemon *d, struct instance *in) {
  const char *name = in->rec->name;
  const char *state = in->rec->state;
  bool was_paused = strcmp(state, "paused") == 0;
  bool was_running = strcmp(state, "running") == 0 || was_paused ||
                     strcmp(state, "restarting") == 0;
  pid_t pid = 0;
  cell_error *err = NULL;
  int pidfd = -1;
  if (daemon_runtime_pid(d, name, &pid, &err) == 0) {
    cleanup_free char *json = NULL;
    if (container_state_json(d->runroot, name, &json, &err) == 0 &&
        (strstr(json, "\"running\"") || strstr(json, "\"paused\""))) {
      pidfd = cell_pidfd_open(pid);
    }
  }
  cell_error_free(&err);
  if (pidfd >= 0) {
    in->pid = pid;
    in->pidfd = pidfd;
    in->child = daemon_parent_of(pid) == getpid();
    daemon_watch(d, pidfd, TAG_PIDFD, EPOLLIN);
    oom_watch(d, in);
    if (hold_for_earlier_criu(d, in, was_paused) == 0)
      settle_adopted(d, in, was_paused);
    /* Its root lives in its own mount namespace: what a celld killed in
     * the middle of its start left in ours goes. */
    daemon_rootfs_umount(d, name);
    log_info("%s: found %s as pid %d", name, in->rec->state, (int)pid);
    return;
  }
  daemon_runtime_delete(d, name);
  daemon_rootfs_umount(d, name);
  if (was_running) {
    /* It died while we were away: when and how is not known. */
    inst_set_state(in, "stopped");
    in->rec->exit_code = -1;
    free(in->rec->exit_time);
    in->rec->exit_time = NULL;
    inst_save_or_log(d, in);
    log_warn("%s: died while celld was not running (exit status unknown)", name);
    /* Its last words, as at any exit (the keeper may have kept them). */
    daemon_console_save(d, name);
    if (in->rec->restart != RESTART_NO)
      inst_arm_timer(d, in, 0 + 1, true);
  }
}

static bool has_snapshot(const struct instance_record *r, const char *name) {
  for (size_t i = 0; i < r->n_snaps; i++)
    if (strcmp(r->snaps[i].name, name) == 0)
      return true;
  return false;
}

/* criu's images of a checkpoint a killed celld did not finish: .tmp-SNAP
 * until the dump is whole, then SNAP, which its record names once the
 * snapshot of its disk is made.  Images no snapshot names go: a later
 * snapshot of that name would be taken for a stateful one. */
static void sweep_unfinished_checkpoints(struct daemon *d,
                                         const struct instance *in) {
  cleanup_free char *path = xasprintf("%s/checkpoints", in->rec->name);
  int fd = openat(d->instdirfd, path,
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return;
  DIR *dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(dir))) {
    if (e->d_type == DT_REG || strcmp(e->d_name, ".") == 0 ||
        strcmp(e->d_name, "..") == 0 ||
        (strncmp(e->d_name, ".tmp-", 5) != 0 &&
         has_snapshot(in->rec, e->d_name)))
      continue;
    cell_error *err = NULL;
    log_warn("%s: the images of a checkpoint an earlier celld did not "
             "finish: removing %s", in->rec->name, e->d_name);
    if (cell_rm_rf_at(dirfd(dir), e->d_name, &err) < 0) {
      log_error("%s", err->msg);
      cell_error_free(&err);
    }
  }
  closedir(dir);
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
      daemon_runtime_delete(d, e->d_name);
      continue;
    }
    daemon_rootfs_umount(d, e->d_name);
    /* A disk that is a btrfs subvolume first: rm -rf does not cross it. */
    cleanup_free char *disk = xasprintf("%s/%s/disk", dirpath, e->d_name);
    if (pool_disk_remove(disk, &err) < 0 ||
        cell_rm_rf_at(d->instdirfd, e->d_name, &err) < 0) {
      log_error("%s", err->msg);
      cell_error_free(&err);
    }
  }
  closedir(dir);
}

/* Whether the instance of that name has its disk in that pool. */
static bool disk_in_pool(struct daemon *d, const char *name, const char *pool) {
  const struct instance *in = daemon_find_instance(d, name);
  return in && in->rec->image && in->rec->pool &&
         strcmp(in->rec->pool, pool) == 0;
}

/* A disk in a pool outside the default one without an instance that has
 * it there: left by a celld killed in a create or a destroy. */
static void sweep_pool(struct daemon *d, const struct daemon_pool *p) {
  cleanup_free char *dirpath = xasprintf("%s/instances", p->path);
  DIR *dir = opendir(dirpath);
  if (!dir)
    return;
  for (struct dirent *e; (e = readdir(dir));) {
    cell_error *err = NULL;
    if (e->d_name[0] == '.' || e->d_type != DT_DIR ||
        disk_in_pool(d, e->d_name, p->name) ||
        instance_check_name(e->d_name, &err) < 0) {
      cell_error_free(&err);
      continue;
    }
    log_warn("pool `%s`: %s: a disk left by an earlier celld: removing it",
             p->name, e->d_name);
    cleanup_free char *inst = xasprintf("%s/%s", dirpath, e->d_name);
    cleanup_free char *disk = xasprintf("%s/disk", inst);
    if (pool_disk_remove(disk, &err) < 0 || rmdir(inst) < 0) {
      log_error("pool `%s`: %s: %s", p->name, e->d_name,
                err ? err->msg : strerror(errno));
      cell_error_free(&err);
    }
  }
  closedir(dir);
}

/* Whether an instance's disk has project id id (the host uid of its root). */
static bool project_claimed(void *ctx, uint32_t id) {
  struct daemon *d = ctx;
  for (size_t i = 0; i < d->n_inst; i++)
    if (d->inst[i]->rec->image && d->inst[i]->rec->id_start == id)
      return true;
  return false;
}

/* Project quota limits on ids of celld's uid pool that no instance has:
 * left by a celld killed between setting a limit and removing its disk
 * (a disk left with its directory had its limit lifted with it). */
static void lift_stray_limits(struct daemon *d, const char *pool,
                              const char *path) {
  cell_error *err = NULL;
  int n = pool_lift_stray_limits(path, d->cfg->pool.start, d->cfg->pool.count,
                                 project_claimed, d, &err);
  if (n < 0) {
    log_error("pool `%s`: %s", pool, err->msg);
    cell_error_free(&err);
  } else if (n > 0) {
    log_warn("pool `%s`: lifted %d project quota limit%s left by an earlier "
             "celld", pool, n, n == 1 ? "" : "s");
  }
}

/* Whether every process in cg runs as an id of celld's pool: only then is
 * a cgroup ours to empty (cgroup_parent may be shared, or badly chosen). */
static bool only_pool_processes(struct daemon *d, const struct cgroup *cg) {
  cleanup_free pid_t *pids = NULL;
  size_t n = 0;
  cell_error *err = NULL;
  if (cgroup_pids_everywhere(cg, &pids, &n, &err) < 0) {
    cell_error_free(&err);
    return false;
  }
  const struct idrange_pool *pool = &d->cfg->pool;
  for (size_t i = 0; i < n; i++) {
    char path[32];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%d", (int)pids[i]);
    if (stat(path, &st) < 0)
      continue; /* gone meanwhile */
    if (st.st_uid < pool->start || st.st_uid - pool->start >= pool->count)
      return false;
  }
  return true;
}

/* A cgroup below cgroup_parent with no instance of that name: what is
 * left of an instance whose create or destroy a killed celld cut short,
 * with whatever still runs in it (an init whose record was never made). */
static void sweep_cgroups(struct daemon *d) {
  cleanup_strv char **names = NULL;
  cell_error *err = NULL;
  if (cgroup_children(d->cfg->cgroup_parent, &names, &err) < 0) {
    log_warn("cgroups below %s: %s", d->cfg->cgroup_parent, err->msg);
    cell_error_free(&err);
    return;
  }
  for (size_t i = 0; names[i]; i++) {
    if (daemon_find_instance(d, names[i]) ||
        instance_check_name(names[i], &err) < 0) {
      cell_error_free(&err);
      continue;
    }
    cleanup_free char *path = xasprintf("%s/%s", d->cfg->cgroup_parent, names[i]);
    struct cgroup *cg = NULL;
    if (cgroup_open(path, &cg, &err) < 0) {
      log_error("%s", err->msg);
      cell_error_free(&err);
      continue;
    }
    if (!only_pool_processes(d, cg)) {
      log_warn("%s: a cgroup below %s with processes outside celld's ids: left alone",
               names[i], d->cfg->cgroup_parent);
    } else {
      log_warn("%s: a cgroup left by an earlier celld: killing what runs in it, removing it",
               names[i]);
      if (cgroup_destroy(cg, &err) < 0) {
        log_error("%s", err->msg);
        cell_error_free(&err);
      }
    }
    cgroup_free(cg);
  }
}

static void sweep_exec_dir(struct daemon *d) {
  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, d->execdir, &err) < 0 ||
      cell_mkdir_p(d->execdir, 0700, &err) < 0) {
    log_warn("%s", err->msg);
    cell_error_free(&err);
  }
}

/* What the runtime still runs of it (a migrated copy held frozen for
 * a commit): killed, thawed to die, and waited for a moment. */
static void kill_leftover(struct daemon *d, struct instance *in) {
  pid_t pid = 0;
  cell_error *err = NULL;
  int pidfd = daemon_runtime_pid(d, in->rec->name, &pid, &err) == 0
                  ? cell_pidfd_open(pid)
                  : -1;
  cell_error_free(&err);
  if (pidfd < 0)
    return;
  daemon_pidfd_signal(pidfd, SIGKILL);
  if (inst_freeze(in, false, &err) < 0)
    cell_error_free(&err);
  struct pollfd p = {.fd = pidfd, .events = POLLIN};
  poll(&p, 1, 10000);
  close(pidfd);
}

/* A migration received and not committed (its intent left): the source
 * runs it, or will again; nothing of it stays here. */
static int drop_received(struct daemon *d, struct instance *in,
                         cell_error **err) {
  log_warn("%s: a migration received by an earlier celld, not committed: "
           "removed", in->rec->name);
  kill_leftover(d, in);
  inst_destroy_now(d, in, err);
  if (*err)
    return -1;
  instance_record_drop_layers(in->rec);
  daemon_remove_instance(d, in);
  return 0;
}

int daemon_load_instances(struct daemon *d, cell_error **err) {
  struct instance_record **recs = NULL;
  size_t n = 0;
  intent_replay_renames(d);
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
  intent_replay(d, drop_received);
  sweep_orphans(d, d->runroot, true);
  sweep_orphans(d, d->instances_dir, false);
  for (size_t i = 0; i < d->cfg->n_pools; i++)
    sweep_pool(d, &d->cfg->pools[i]);
  lift_stray_limits(d, DAEMON_DEFAULT_POOL, d->cfg->state_dir);
  for (size_t i = 0; i < d->cfg->n_pools; i++)
    lift_stray_limits(d, d->cfg->pools[i].name, d->cfg->pools[i].path);
  sweep_cgroups(d);
  sweep_exec_dir(d);
  daemon_net_sweep_bridges(d);
  for (size_t i = 0; i < d->n_inst; i++) {
    adopt(d, d->inst[i]);
    if (d->inst[i]->hold != HOLD_EARLIER_CRIU)
      sweep_unfinished_checkpoints(d, d->inst[i]);
  }
  return 0;
}

static long autostart_number(const struct instance *in, const char *key) {
  const char *v = instance_setting(in->rec, key);
  return v ? strtol(v, NULL, 10) : 0;
}

struct autostart_entry {
  struct instance *in;
  size_t loaded; /* its place in d->inst */
  long priority;
};

/* Higher autostart.priority first; equal ones in the order loaded. */
static int by_priority(const void *a, const void *b) {
  const struct autostart_entry *x = a, *y = b;
  if (x->priority != y->priority)
    return y->priority > x->priority ? 1 : -1;
  return x->loaded < y->loaded ? -1 : x->loaded > y->loaded;
}

static void autostart_now(struct daemon *d, struct instance *in) {
  cell_error *err = NULL;
  if (inst_start(d, in, &err) < 0) {
    log_error("autostart: %s", err->msg);
    cell_error_free(&err);
    inst_save_or_log(d, in);
    return;
  }
  daemon_emit(d, in, "started");
}

/* In order of autostart.priority; one with an autostart.delay holds the
 * ones after it back that many seconds, on the start timer (celld serves
 * meanwhile). */
void daemon_autostart(struct daemon *d) {
  struct autostart_entry *order = xcalloc(d->n_inst + 1, sizeof(*order));
  size_t n = 0;
  for (size_t i = 0; i < d->n_inst; i++)
    if (d->inst[i]->rec->autostart && d->inst[i]->pidfd < 0)
      order[n++] = (struct autostart_entry){
          d->inst[i], i, autostart_number(d->inst[i], "autostart.priority")};
  qsort(order, n, sizeof(*order), by_priority);
  long wait_ms = 0;
  for (size_t i = 0; i < n; i++) {
    if (wait_ms == 0)
      autostart_now(d, order[i].in);
    else
      inst_arm_timer(d, order[i].in, wait_ms, true);
    wait_ms += autostart_number(order[i].in, "autostart.delay") * 1000;
  }
  free(order);
}
