/* Snapshots (snapshot, snapshots, restore, snapshot.rm), rename, and the
 * freezing of an instance's writable layer that snapshots and clones share.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_SNAPSHOT_H
#define CELL_DAEMON_SNAPSHOT_H

#include <stdbool.h>

#include "base/error.h"
#include "base/json.h"
#include "daemon/daemon-types.h"

/* Freeze the instance's writable layer into a layer of the store; its
 * name ("sha256:<random hex>") in *layer_out.  A stopped instance's, with
 * move, is moved there (O(1)) and the instance goes on above it (appended
 * to own_layers, the record not yet saved); a running one's is copied
 * while its cgroup is frozen, and the instance keeps its own.  *layer_out
 * is NULL when a stopped instance's layer is empty (nothing to freeze). */
int snapshot_freeze(struct daemon *d, struct instance *in, bool move,
                    char **layer_out, cell_error **err);

void op_snapshot(struct daemon *d, struct conn *c, struct instance *in,
                 const struct json_value *v);
void op_snapshots(struct daemon *d, struct conn *c, struct instance *in,
                  const struct json_value *v);
void op_restore(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v);
void op_snapshot_rm(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v);
void op_rename(struct daemon *d, struct conn *c, struct instance *in,
               const struct json_value *v);

#endif
