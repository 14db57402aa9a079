/* The ops that change an existing instance (handlers of the ops[] table
 * in daemon-ops.c; in is the instance the request names).
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_CONTROL_H
#define CELL_DAEMON_CONTROL_H

#include "base/json.h"
#include "daemon/daemon-types.h"

void op_start(struct daemon *d, struct conn *c, struct instance *in,
              const struct json_value *v);
/* The answer comes once it has stopped. */
void op_stop(struct daemon *d, struct conn *c, struct instance *in,
             const struct json_value *v);
/* Stop and start again (only start when it is not running). */
void op_restart(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v);
/* `force`: kill it when running; the answer comes once it is gone. */
void op_destroy(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v);
/* Freeze its cgroup (state "paused"); thaw it (state "running"). */
void op_pause(struct daemon *d, struct conn *c, struct instance *in,
              const struct json_value *v);
void op_resume(struct daemon *d, struct conn *c, struct instance *in,
               const struct json_value *v);

#endif
