/* celld's intents: an op on an instance's disk that takes more than one
 * step (a freeze of its writable layer, a restore, a rename) first writes
 * what it is about to do to <state>/instances/<name>.intent, and removes
 * it when the record says it is done.  A celld killed in between leaves
 * the file; the next one finishes the op or undoes it from there
 * (docs/architecture.md, "Crash consistency").
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_INTENT_H
#define CELL_DAEMON_INTENT_H

#include "base/error.h"
#include "daemon/daemon-types.h"

enum intent_op {
  INTENT_FREEZE,  /* disk/upper into the store's layers/<arg> */
  INTENT_RESTORE, /* the snapshot <arg> put back */
  INTENT_RENAME,  /* the instance renamed <arg> */
  /* A migration received, from before its record lands to the source's
   * commit: what a killed celld left of it (its record, disk, cgroup,
   * veths, images, its restored processes held frozen) goes. */
  INTENT_RECEIVE,
};

struct intent {
  enum intent_op op;
  const char *name; /* the instance (a rename's old name) */
  const char *arg;  /* the layer's hex, the snapshot, the new name */
  /* A freeze by copy (disk/upper copied into the store, then moved aside
   * to disk/upper.frozen) rather than by a rename of disk/upper. */
  bool by_copy;
  /* A rename: the directory of the pool its disk is in, outside the
   * default pool (<pool>/instances); NULL when none. */
  const char *pool_dir;
};

/* Written and synced before the op's first step; replaces the instance's
 * earlier intent. */
int intent_begin(struct daemon *d, const struct intent *it, cell_error **err);
/* The op is done (its record saved) or undone: the file goes. */
void intent_end(struct daemon *d, const char *name);

/* Undo a freeze that did not reach the record: the layer goes back to be
 * the writable layer (by rename), or the layer copied goes and the
 * writable layer moved aside comes back (by copy).  diskfd: the disk. */
int intent_undo_freeze(struct daemon *d, int diskfd, const char *hex,
                       bool by_copy, cell_error **err);
/* A restore's steps, from any point: a new empty writable layer under the
 * snapshot's layers, saved.  Done again from the start, it ends the same. */
int intent_apply_restore(struct daemon *d, struct instance *in,
                         const struct instance_snapshot *s, cell_error **err);

/* At startup, before the records are loaded: renames finished (the new
 * record was written) or undone. */
void intent_replay_renames(struct daemon *d);
/* An instance removed with all it has, what still runs of it killed. */
typedef int (*intent_drop_fn)(struct daemon *d, struct instance *in,
                              cell_error **err);
/* At startup, the records loaded: freezes finished or undone, restores
 * finished, migrations received and not committed dropped (by
 * drop_received: the lifecycle's, above this file). */
void intent_replay(struct daemon *d, intent_drop_fn drop_received);

#endif
