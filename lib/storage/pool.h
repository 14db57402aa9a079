/* A pool: a directory where instances' disks live, and what its
 * filesystem lets celld do with them.  On btrfs each disk is a subvolume
 * whose qgroup carries the disk limit; on XFS, or ext4 with project
 * quotas, each disk is a directory with a project id of its own and the
 * limit is that project's; anything else has no quota. */
#ifndef CELL_STORAGE_POOL_H
#define CELL_STORAGE_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

enum pool_quota {
  POOL_QUOTA_NONE,      /* the filesystem has none celld can set */
  POOL_QUOTA_BTRFS,     /* subvolumes with qgroup limits */
  POOL_QUOTA_PROJECT,   /* XFS or ext4 mounted with prjquota */
};

struct pool_fs {
  const char *fs;       /* "btrfs", "xfs", "ext4", "tmpfs", ... (static) */
  enum pool_quota quota;
  uint64_t size, avail; /* bytes (statvfs) */
  bool could_project;   /* XFS or ext4 without project quotas on */
};

/* What the filesystem of path is and offers. */
int pool_probe(const char *path, struct pool_fs *out, cell_error **err);
/* 0 when the pool name at path can limit a disk; otherwise -1 and an
 * error naming the pool, its filesystem, and the way out. */
int pool_require_quota(const char *name, const char *path, cell_error **err);
/* Make the empty disk directory path (its parent exists): a subvolume on
 * btrfs; a directory tagged with project (unique to the disk, not 0)
 * where project quotas are on; a plain directory elsewhere; 0700, root's. */
int pool_disk_create(const char *path, uint32_t project, cell_error **err);
/* Limit what the disk at path (a subvolume, or a project's directory) may
 * hold to bytes, 0: no limit; btrfs quotas are enabled on its filesystem
 * first when they are not. */
int pool_disk_set_limit(const char *path, uint64_t bytes, cell_error **err);
/* The project id of the disk directory fd where its filesystem enforces
 * project quotas, else 0. */
uint32_t pool_disk_project(int fd);
/* Bytes the disk at path takes: its project's usage where it has one,
 * else what the files beneath take (st_blocks, each inode once), as du
 * counts them. */
int pool_disk_usage(const char *path, uint64_t *bytes, cell_error **err);
/* Remove the disk at path and all it holds: the subvolume (and its
 * qgroup) on btrfs, the tree elsewhere, its project's limit first.  No
 * error when it is not there. */
int pool_disk_remove(const char *path, cell_error **err);
/* Lift the limit of each project id in [first, first + count) on the
 * filesystem of path that claimed(ctx, id) does not claim: what a celld
 * killed between a limit and its disk's removal leaves.  Returns how many
 * it lifted, -1 on error; 0 where the filesystem has no project quotas. */
int pool_lift_stray_limits(const char *path, uint32_t first, uint32_t count,
                           bool (*claimed)(void *ctx, uint32_t id), void *ctx,
                           cell_error **err);

#endif
