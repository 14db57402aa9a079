/* XFS and ext4 project quotas: a directory tagged with a project id that
 * everything made beneath it inherits, and a block limit on that id.
 * Every call takes an fd on the filesystem (quotactl_fd, Linux 5.14), so
 * no device path is looked up. */
#ifndef CELL_STORAGE_PROJECT_QUOTA_H
#define CELL_STORAGE_PROJECT_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

/* Whether fd's filesystem accounts and enforces project quotas: XFS
 * mounted with prjquota, ext4 with the project and quota features and
 * mounted with prjquota. */
bool project_quota_enforced(int fd);
/* The project id of the directory dirfd, and whether it is inherited
 * (FS_XFLAG_PROJINHERIT); 0 is no project. */
int project_quota_id_of(int dirfd, uint32_t *id, bool *inherit,
                        cell_error **err);
/* Tag the directory dirfd with project id, inherited by all made in it. */
int project_quota_assign(int dirfd, uint32_t id, cell_error **err);
/* The block limit of project id on fd's filesystem, in bytes (rounded up
 * to 512); 0 lifts it. */
int project_quota_set_limit(int fd, uint32_t id, uint64_t bytes,
                            cell_error **err);
/* Bytes project id uses on fd's filesystem, and its limit (0: none). */
int project_quota_get(int fd, uint32_t id, uint64_t *used, uint64_t *limit,
                      cell_error **err);
/* The first project id >= from that has a quota record on fd's
 * filesystem: 1 and *id, 0 when there is none, -1 on error. */
int project_quota_next(int fd, uint32_t from, uint32_t *id, uint64_t *limit,
                       cell_error **err);

#endif
