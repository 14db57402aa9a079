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
 * to own_layers, the record saved once the layer is on disk); a running
 * one's is copied while its cgroup is frozen, and the instance keeps its
 * own (the copy not yet synced: snapshot_record does it).  *layer_out is
 * NULL when a stopped instance's layer is empty (nothing to freeze). */
int snapshot_freeze(struct daemon *d, struct instance *in, bool move,
                    char **layer_out, cell_error **err);

/* What becomes of a copied layer (layer: its name in the store,
 * "sha256:<hex>"; NULL when a stopped instance's record names it already,
 * frozen among its own layers): c answered (c may be NULL: its client
 * went), and 0 when a record names the layer now; else the layer goes. */
typedef int snapshot_copied_fn(struct daemon *d, struct conn *c,
                               struct instance *in, const char *layer,
                               void *ctx);
/* Whether the instance's writable layer would have to be copied into the
 * store, not renamed (the copy takes as long as the layer is large): its
 * disk is on another filesystem or btrfs subvolume than the store, or
 * has a project id. */
bool snapshot_layer_crosses(struct daemon *d, const struct instance *in);
/* Whether a stopped instance's freeze must copy: its writable layer holds
 * something, and crosses. */
bool snapshot_stopped_copies(struct daemon *d, const struct instance *in);
/* The instance's writable layer copied into the store by a child, the
 * instance held meanwhile (hold: a snapshot's or a clone's), taking only
 * the ops that look: a running one frozen for the copy, after which it
 * keeps its own writable layer; a stopped one (snapshot_stopped_copies)
 * goes on above the copy, frozen in the loop in O(1) once it is made, and
 * what it moved aside is removed by another child.  Then copied(..., ctx)
 * in the loop.  On any failure c gets one line naming `what`, and nothing
 * of the copy stays.  ctx_free(ctx) at the end. */
void snapshot_copy_in_child(struct daemon *d, struct conn *c,
                            struct instance *in, enum instance_hold hold,
                            const char *what, snapshot_copied_fn *copied,
                            void *ctx, void (*ctx_free)(void *));

/* For a child that holds a running instance frozen itself (a checkpoint's
 * dump): in the loop, a new layer's name and the instance's writable
 * layer opened (*upper); then in the child, the instance frozen, the copy
 * into the store, synced (nothing of it left on failure). */
int snapshot_copy_prepare(struct daemon *d, const struct instance *in,
                          char layer[65], int *upper, cell_error **err);
int snapshot_copy_frozen(struct daemon *d, int upper, const char *layer,
                         cell_error **err);

/* A stateful snapshot (daemon-checkpoint.c) has criu's images of the
 * instance's processes in <instance dir>/checkpoints/<snap>, renamed there
 * whole: the directory's existence says the snapshot is stateful.  It goes
 * with the snapshot (snapshot.rm), the instance (destroy) and follows a
 * rename. */
char *snapshot_images_dir(struct daemon *d, const char *name, const char *snap);
bool snapshot_is_stateful(struct daemon *d, const char *name, const char *snap);

/* The name of a new snapshot: given, or snap-<date>; *code says why not. */
int snapshot_new_name(const struct instance_record *r, const char *given,
                      char **name, enum api_code *code, cell_error **err);
/* Take the snapshot `name` (snapshot_freeze) and record it, saved. */
int snapshot_add(struct daemon *d, struct instance *in, const char *name,
                 cell_error **err);
/* Record the snapshot `name` of what snapshot_freeze made (layer: its
 * *layer_out), once that is on disk: after the thaw, so that the sync is
 * not part of the freeze.  copied: the layer is a copy the instance does
 * not go on above (a running one's), the snapshot's alone.  On failure
 * nothing names the layer (the caller collects it). */
int snapshot_record(struct daemon *d, struct instance *in, const char *name,
                    const char *layer, bool copied, cell_error **err);
/* Forget the snapshot `name` (an undo), saved; its layers collected. */
void snapshot_drop(struct daemon *d, struct instance *in, const char *name);
/* The snapshot a restore request names, or the newest when it names
 * none; NULL: c was answered. */
struct instance_snapshot *snapshot_to_restore(struct daemon *d, struct conn *c,
                                              struct instance *in,
                                              const struct json_value *v);
/* The refusal of an op that needs the instance stopped. */
void snapshot_refuse_running(struct daemon *d, struct conn *c,
                             const struct instance *in);
/* The instance's disk back to s (an intent makes it whole after a crash). */
int snapshot_restore_disk(struct daemon *d, struct instance *in,
                          struct instance_snapshot *s, cell_error **err);
/* A stopped instance's disk back to s, and the answer to c. */
void snapshot_restore_plain(struct daemon *d, struct conn *c,
                            struct instance *in, struct instance_snapshot *s);

void op_snapshot(struct daemon *d, struct conn *c, struct instance *in,
                 const struct json_value *v);
void op_snapshots(struct daemon *d, struct conn *c, struct instance *in,
                  const struct json_value *v);
void op_snapshot_rm(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v);
void op_rename(struct daemon *d, struct conn *c, struct instance *in,
               const struct json_value *v);

#endif
