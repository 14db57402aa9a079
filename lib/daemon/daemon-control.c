/* The ops that change an existing instance: start, stop, restart, destroy,
 * set (its limits, applied to the running cgroup at once), and pause and
 * resume (its cgroup frozen and thawed). */
#include "daemon/daemon-control.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "base/util.h"
#include "storage/pool.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/daemon-runtime.h"
#include "daemon/instance-cpuset.h"
#include "oci/spec.h"
#include "runtime/container-cgroup.h"

void op_start(struct daemon *d, struct conn *c, struct instance *in,
              const struct json_value *v) {
  cell_error *err = NULL;
  if (in->pidfd >= 0) {
    cell_fail(&err, 0, "instance `%s` is already running", in->rec->name);
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  if (in->timerfd >= 0 && in->timer_restart)
    inst_disarm_timer(d, in);
  if (inst_start(d, in, &err) < 0) {
    inst_save_or_log(d, in);
    conn_fail(d, c, err->errnum == EBUSY ? API_WRONG_STATE : API_FAILED, &err);
    return;
  }
  in->rec->restarts = 0;
  inst_save_or_log(d, in);
  daemon_emit(d, in, "started");
  conn_reply_instance(d, c, in);
}

static int timeout_of(struct daemon *d, const struct json_value *v,
                      cell_error **err) {
  const struct json_value *t = json_object_get(v, "timeout");
  int64_t n = d->cfg->stop_timeout;
  if (t && (!json_get_int64(t, &n) || n < 0 || n > 3600))
    return cell_fail(err, 0, "field `timeout`: must be an integer in [0, 3600]");
  return (int)n;
}

/* Stop it; the answer comes once it has stopped (and, for a restart,
 * started again). */
static void stop_then(struct daemon *d, struct conn *c, struct instance *in,
                      const struct json_value *v, enum after_exit after) {
  cell_error *err = NULL;
  int timeout = timeout_of(d, v, &err);
  if (timeout < 0) {
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  if (in->pidfd < 0) {
    if (in->timerfd >= 0 && in->timer_restart) {
      /* A pending policy restart: stopping cancels it. */
      inst_disarm_timer(d, in);
      inst_set_state(in, "stopped");
      inst_save_or_log(d, in);
    }
    if (after == AFTER_START) {
      op_start(d, c, in, v);
      return;
    }
    cleanup_free char *msg = xasprintf(
        "instance `%s` is not running: nothing to stop", in->rec->name);
    conn_error(d, c, API_WRONG_STATE, msg);
    return;
  }
  in->after = after;
  inst_add_waiter(in, c->id);
  inst_stop(d, in, timeout);
}

void op_stop(struct daemon *d, struct conn *c, struct instance *in,
             const struct json_value *v) {
  stop_then(d, c, in, v, AFTER_NOTHING);
}

void op_restart(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v) {
  stop_then(d, c, in, v, AFTER_START);
}

void op_destroy(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v) {
  const struct json_value *force = json_object_get(v, "force");
  if (in->exports > 0) {
    conn_error(d, c, API_WRONG_STATE, "instance is being exported: destroy it "
                                      "when the export is done");
    return;
  }
  if (in->pidfd >= 0) {
    if (!force || !force->u.boolean) {
      cleanup_free char *msg = xasprintf(
          "instance `%s` is running: stop it first, or use destroy -f",
          in->rec->name);
      conn_error(d, c, API_WRONG_STATE, msg);
      return;
    }
    in->after = AFTER_DESTROY;
    in->stopping = true;
    inst_add_waiter(in, c->id);
    /* A frozen process waits for the thaw even to die. */
    inst_thaw_if_paused(in);
    daemon_pidfd_signal(in->pidfd, SIGKILL);
    return;
  }
  inst_add_waiter(in, c->id);
  inst_finish_destroy(d, in);
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
  /* Its CPUs follow the limit; without one, every CPU again. */
  cleanup_free char *cpus = instance_cpuset(r);
  if (!cpus)
    cpus = instance_cpuset_all();
  if (cpus)
    json_gen_kv_string(g, "cpus", cpus);
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

/* A new disk limit, live: the qgroup of the instance's subvolume, running
 * or not (a write past it fails from then on).  Where the pool cannot
 * limit, refused as at create; an instance made before its pool had
 * quotas has a plain directory, and says so. */
static int set_disk_limit(struct daemon *d, const struct instance_record *r,
                          int64_t bytes, enum api_code *code,
                          cell_error **err) {
  *code = API_INVALID_REQUEST;
  if (bytes > 0 && bytes < (1 << 20))
    return cell_fail(err, 0, "field `disk`: at least 1 MiB");
  if (!r->image)
    return cell_fail(err, 0, "field `disk`: an instance of an image only, "
                     "not of a template");
  const char *pool = r->pool ? r->pool : DAEMON_DEFAULT_POOL;
  const char *path = daemon_config_pool_path(d->cfg, pool);
  cleanup_free char *disk = daemon_inst_disk_dir(d, r, err);
  if (!disk || !path)
    return -1;
  if (bytes == 0 && r->disk == 0)
    return 0; /* no limit, none to lift */
  if (pool_require_quota(pool, path, err) < 0)
    return -1;
  *code = API_FAILED;
  if (pool_disk_set_limit(disk, (uint64_t)bytes, err) < 0)
    return cell_error_wrap(err, "instance `%s`", r->name);
  return 0;
}

void op_set(struct daemon *d, struct conn *c, struct instance *in,
            const struct json_value *v) {
  cell_error *err = NULL;
  bool gm, gc, gp, gd;
  int64_t memory = in->rec->memory, milli = in->rec->cpu_milli, pids = in->rec->pids;
  int64_t disk = in->rec->disk;
  if (request_limit(v, "memory", &memory, &gm, &err) < 0 ||
      request_cpus(v, &milli, &gc, &err) < 0 ||
      request_limit(v, "pids", &pids, &gp, &err) < 0 ||
      request_limit(v, "disk", &disk, &gd, &err) < 0) {
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  if (!gm && !gc && !gp && !gd) {
    conn_error(d, c, API_INVALID_REQUEST,
               "set: nothing to set (memory, cpus, pids, disk)");
    return;
  }
  if (memory > 0 && memory < (4 << 20)) {
    conn_error(d, c, API_INVALID_REQUEST, "field `memory`: at least 4 MiB");
    return;
  }
  enum api_code code;
  if (gd && set_disk_limit(d, in->rec, disk, &code, &err) < 0) {
    conn_fail(d, c, code, &err);
    return;
  }
  in->rec->disk = disk;
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
  if (inst_save(d, in, &err) < 0)
    goto fail;
  daemon_emit(d, in, "updated");
  conn_reply_instance(d, c, in);
  return;
fail:
  conn_fail(d, c, API_FAILED, &err);
}

/* Pause and resume: the cgroup freezer (v1's freezer.state, v2's
 * cgroup.freeze).  A paused instance stays paused across a restart of
 * celld: the state is in its record and in its cgroup. */
static void pause_or_resume(struct daemon *d, struct conn *c,
                            struct instance *in, bool pause) {
  cell_error *err = NULL;
  if (in->pidfd < 0) {
    cell_fail(&err, 0, "instance `%s` is not running: start it first",
              in->rec->name);
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  if (inst_is_paused(in) == pause) {
    cell_fail(&err, 0, pause ? "instance `%s` is already paused (cellctl "
                               "resume %s)"
                             : "instance `%s` is not paused (%s runs)",
              in->rec->name, in->rec->name);
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  if (inst_freeze(in, pause, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  inst_save_or_log(d, in);
  daemon_emit(d, in, pause ? "paused" : "resumed");
  conn_reply_instance(d, c, in);
}

void op_pause(struct daemon *d, struct conn *c, struct instance *in,
              const struct json_value *v) {
  pause_or_resume(d, c, in, true);
}

void op_resume(struct daemon *d, struct conn *c, struct instance *in,
               const struct json_value *v) {
  pause_or_resume(d, c, in, false);
}
