/* Stateful snapshots: the checkpoint op (an instance's storage snapshot
 * plus criu's images of its processes, taken at the same frozen instant)
 * and what restore needs to know of them.  criu runs in a child process
 * that the loop watches as it does an import (daemon-image.c): celld goes
 * on answering other clients meanwhile.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_CHECKPOINT_H
#define CELL_DAEMON_CHECKPOINT_H

#include <stdbool.h>

#include "base/error.h"
#include "base/json.h"
#include "daemon/daemon-types.h"

/* A restore of a stateful snapshot (op_restore found one): in a child,
 * whether criu can work here first; when it cannot, the refusal (one line
 * naming criu's version, the kernel and the reason `criu check` gives),
 * and nothing touched.  Then the storage as a plain restore brings it
 * back, and the processes from criu's images. */
void checkpoint_restore(struct daemon *d, struct conn *c, struct instance *in,
                        const char *snap);

/* restore: a stateful snapshot's processes too (checkpoint_restore), a
 * plain one's disk (daemon-snapshot.c). */
void op_restore(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v);
void op_checkpoint(struct daemon *d, struct conn *c, struct instance *in,
                   const struct json_value *v);

#endif
