/* Live migration of a running instance from one celld to another
 * (cellctl migrate NAME --to CMD; cellctl receive on the target).  The
 * two cellds speak over one two-way byte stream that cellctl hands each
 * of them (SCM_RIGHTS); docs/api.md, "Migration", has the protocol.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_MIGRATE_H
#define CELL_DAEMON_MIGRATE_H

#include "base/json.h"
#include "daemon/daemon-types.h"

/* migrate: the source's side, in a child: criu usable, the target agrees
 * (name free, networks, ids, criu) and says which layers it has; while it
 * runs, the other layers and rounds of memory pre-copy; then frozen: the
 * final dump (what changed since the last round), the writable layer and
 * the images sent, the target's "running" awaited.  Then the instance is killed and destroyed here; on
 * any failure it thaws and runs on. */
void op_migrate(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v);
/* receive: the target's side: the stream's fd (and the fd answers go to,
 * the same one for a socket) with the request.  The instance made, its
 * processes restored; on any failure nothing is left of it. */
void op_receive(struct daemon *d, struct conn *c, struct instance *unused,
                const struct json_value *v);

#endif
