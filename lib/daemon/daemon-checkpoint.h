/* Stateful snapshots: the checkpoint op (an instance's storage snapshot
 * plus criu's images of its processes, taken at the same frozen instant)
 * and what restore needs to know of them.  criu runs in a child process
 * that the loop watches as it does an import (daemon-image.c): celld goes
 * on answering other clients meanwhile.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_CHECKPOINT_H
#define CELL_DAEMON_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "base/json.h"
#include "daemon/daemon-types.h"

/* In an instance's directory: the lock each criu run that dumps it holds
 * for as long as it runs, which outlives a killed celld (see
 * daemon-startup.c). */
#define CHECKPOINT_CRIU_LOCK "criu.lock"

/* A restore of a stateful snapshot (op_restore found one): in a child,
 * whether criu can work here first; when it cannot, the refusal (one line
 * naming criu's version, the kernel and the reason `criu check` gives),
 * and nothing touched.  Then the storage as a plain restore brings it
 * back, and the processes from criu's images. */
void checkpoint_restore(struct daemon *d, struct conn *c, struct instance *in,
                        const char *snap);

/* An instance whose /proc is lxcfs's (FUSE mounts criu cannot dump):
 * -1 and one line for `action` naming the way out; 0 otherwise. */
int checkpoint_refuse_lxcfs(const struct instance *in, const char *action,
                            cell_error **err);
/* In a child: criu found and usable on this kernel (*criu its path), else
 * the runtime's one line for action. */
int checkpoint_usable_criu(const char *runroot, const char *action,
                           char **criu, cell_error **err);
/* A migration's images directory, made new under inst_dir/checkpoints
 * (what a killed one left there goes). */
int checkpoint_images_new(const char *inst_dir, const char *images,
                          cell_error **err);
/* In a child, for a migration: one round of memory pre-copy while the
 * instance runs (criu pre-dump --track-mem, criu's own short freeze) into
 * images, made new; with parent (the round before, relative to images)
 * only the pages written since.  On failure criu's log is kept as
 * inst_dir/checkpoints/pre-dump-failed.log. */
int checkpoint_pre_dump(const char *runroot, const char *inst_dir,
                        const char *images, const char *parent,
                        const char *cgroup, pid_t pid, cell_error **err);
/* In a child, for a migration: criu usable, then the instance's cgroup
 * frozen (*frozen_at_ms, the loop's clock) and its processes (init pid)
 * dumped into images (made by checkpoint_images_new), left frozen and
 * alive; thawed when the dump fails.  With parent (the last pre-copy
 * round, relative to images), only the pages written since it. */
int checkpoint_dump_frozen(const char *runroot, const char *inst_dir,
                           const char *images, const char *parent,
                           const char *cgroup, pid_t pid,
                           uint64_t *frozen_at_ms, cell_error **err);
/* A migrated instance restored but not yet live: its processes frozen in
 * their cgroup and its host ports down, until the source commits the
 * hand-over (daemon-migrate.c).  restored gets it instead of c's answer;
 * ctx is its, freed by ctx_free whatever becomes of the restore. */
struct restore_hold {
  void (*restored)(struct daemon *d, struct conn *c, struct instance *in,
                   void *ctx);
  void *ctx;
  void (*ctx_free)(void *ctx);
};

/* A migrated instance (made by a receive, its images in its checkpoints/
 * snap) restored in a child and held (hold); when it fails, c is answered
 * and the instance is destroyed: nothing is left of it. */
void checkpoint_restore_migrated(struct daemon *d, struct conn *c,
                                 struct instance *in, const char *snap,
                                 struct restore_hold *hold);

/* restore: a stateful snapshot's processes too (checkpoint_restore), a
 * plain one's disk (daemon-snapshot.c). */
void op_restore(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v);
void op_checkpoint(struct daemon *d, struct conn *c, struct instance *in,
                   const struct json_value *v);

#endif
