/* Files copied into and out of an instance's root through fds: the path
 * is resolved beneath the root's fd with openat2 RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS, so that no symlink (absolute, or with `..`) nor
 * magic link of the instance leads out of it.  Regular files only; files
 * on procfs, sysfs or other kernel filesystems are refused (read as host
 * root, /proc/kcore of an instance's procfs is the host's memory).
 * Internal to lib/daemon. */
#ifndef CELL_INSTANCE_FILES_H
#define CELL_INSTANCE_FILES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"

/* The content of srcfd becomes the regular file at path inside rootfd,
 * owned by uid:gid (host ids) with mode: written beside it under a
 * temporary name, then renamed over it (a symlink there is replaced, never
 * followed).  Its directory must exist.  *size: the bytes written. */
int instance_file_push(int rootfd, const char *path, int srcfd, uid_t uid,
                       gid_t gid, mode_t mode, uint64_t *size,
                       cell_error **err);
/* A directory at path (made when missing; an existing one must be a
 * directory, not a link to one), owned by uid:gid with mode. */
int instance_dir_push(int rootfd, const char *path, uid_t uid, gid_t gid,
                      mode_t mode, cell_error **err);
/* A symlink to target at path, owned by uid:gid, replacing what is there
 * (not a directory). */
int instance_symlink_push(int rootfd, const char *path, const char *target,
                          uid_t uid, gid_t gid, cell_error **err);
/* The regular file at path inside rootfd, copied to dstfd; *mode: its
 * permission bits, *size: its bytes. */
int instance_file_pull(int rootfd, const char *path, int dstfd, mode_t *mode,
                       uint64_t *size, cell_error **err);

/* Whether fd is on a kernel filesystem (procfs, sysfs, cgroupfs, debugfs,
 * tracefs, securityfs, bpffs), or cannot be told; and the error saying
 * so, naming path. */
bool instance_kernel_fs(int fd);
int instance_check_not_kernel_fs(int fd, const char *path, cell_error **err);
/* A file made new beside the target in dirfd (mode 0600, never an
 * existing name), its name in *name (freed and replaced). */
int instance_make_temp(int dirfd, char **name, cell_error **err);
/* The directory the absolute path is in, resolved inside rootfd, not on a
 * kernel filesystem; *base: its last name (neither "." nor ".."). */
int instance_open_parent(int rootfd, const char *path, char **base,
                         cell_error **err);

#endif
