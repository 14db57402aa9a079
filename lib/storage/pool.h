/* A pool: a directory where instances' disks live, and what its
 * filesystem lets celld do with them.  On btrfs each disk is a subvolume
 * whose qgroup carries the disk limit; XFS and ext4 project quotas are
 * recognised but not used yet; anything else has no quota. */
#ifndef CELL_STORAGE_POOL_H
#define CELL_STORAGE_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

enum pool_quota {
  POOL_QUOTA_NONE,      /* the filesystem has none celld can set */
  POOL_QUOTA_BTRFS,     /* subvolumes with qgroup limits */
  POOL_QUOTA_NOT_YET,   /* XFS or ext4: project quotas, not used yet */
};

struct pool_fs {
  const char *fs;       /* "btrfs", "xfs", "ext4", "tmpfs", ... (static) */
  enum pool_quota quota;
  uint64_t size, avail; /* bytes (statvfs) */
};

/* What the filesystem of path is and offers. */
int pool_probe(const char *path, struct pool_fs *out, cell_error **err);
/* 0 when the pool name at path can limit a disk; otherwise -1 and an
 * error naming the pool, its filesystem, and the way out. */
int pool_require_quota(const char *name, const char *path, cell_error **err);
/* Make the empty disk directory path (its parent exists): a subvolume on
 * btrfs, a plain directory elsewhere; 0700, root's. */
int pool_disk_create(const char *path, cell_error **err);
/* Limit what the disk at path (a subvolume) may hold to bytes, 0: no
 * limit; quotas are enabled on its filesystem first when they are not. */
int pool_disk_set_limit(const char *path, uint64_t bytes, cell_error **err);
/* Bytes the files beneath path take on disk (st_blocks, each inode
 * once), as du counts them. */
int pool_disk_usage(const char *path, uint64_t *bytes, cell_error **err);
/* Remove the disk at path and all it holds: the subvolume (and its
 * qgroup) on btrfs, the tree elsewhere.  No error when it is not there. */
int pool_disk_remove(const char *path, cell_error **err);

#endif
