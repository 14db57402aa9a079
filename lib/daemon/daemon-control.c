/* The ops that change an existing instance's life: start, stop, restart,
 * destroy, and pause and resume (its cgroup frozen and thawed); set is
 * daemon-settings.c's. */
#include "daemon/daemon-control.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-runtime.h"

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
  /* inst_start saved the record; again only when a count of policy
   * restarts goes (each save is two fsyncs). */
  if (in->rec->restarts != 0) {
    in->rec->restarts = 0;
    inst_save_or_log(d, in);
  }
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
