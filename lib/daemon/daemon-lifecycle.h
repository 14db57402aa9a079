/* An instance's lifecycle in celld: start, stop (halt signal, SIGKILL at
 * the deadline), its exit, the restart policy, destroy.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_LIFECYCLE_H
#define CELL_DAEMON_LIFECYCLE_H

#include <stdbool.h>

#include "base/error.h"
#include "daemon/daemon-types.h"

/* The instance's timer in ms: a restart delay (restart) or the SIGKILL
 * deadline of a stop. */
void inst_arm_timer(struct daemon *d, struct instance *in, long ms,
                    bool restart);
void inst_disarm_timer(struct daemon *d, struct instance *in);
/* Mount its root, create and start its container, attach its networks:
 * running.  Undone on failure. */
/* A networks= setting that waits (planned on a running instance, or
 * taken from a profile) made into r's networks: addresses chosen, as
 * create chooses them; on failure *code says why. */
int inst_plan_networks(struct daemon *d, struct instance_record *r,
                       enum api_code *code, cell_error **err);
int inst_start(struct daemon *d, struct instance *in, cell_error **err);

/* Paused: running, its cgroup frozen (state "paused"). */
bool inst_is_paused(const struct instance *in);
/* Freeze (pause) or thaw (resume) its cgroup; the state follows. */
int inst_freeze(struct instance *in, bool frozen, cell_error **err);
/* Whether its cgroup is frozen now (false when it cannot be read). */
bool inst_cgroup_is_frozen(const struct instance *in);
/* Thawed when paused (what ends it must reach its processes); a failure
 * is logged. */
void inst_thaw_if_paused(struct instance *in);
/* The halt signal (thawed first); SIGKILL after timeout seconds. */
void inst_stop(struct daemon *d, struct instance *in, int timeout);
/* Everything of a stopped instance goes but its entry in d->inst. */
void inst_destroy_now(struct daemon *d, struct instance *in, cell_error **err);
/* Destroy, tell the waiters and the subscribers, forget it. */
void inst_finish_destroy(struct daemon *d, struct instance *in);
/* Its pidfd (TAG_PIDFD) is readable: maybe it exited. */
void lifecycle_on_pidfd(struct daemon *d, int fd);
/* Its timer (TAG_TIMER) fired. */
void lifecycle_on_timer(struct daemon *d, int fd);

#endif
