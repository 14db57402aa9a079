/* Whole trees copied into and out of an instance's root as one tar stream
 * (push -r, pull -r), through fds as single files are (instance-files.h).
 *
 * Into: the stream (read with libarchive, tar formats only) is extracted
 * beneath the target directory.  An entry with an absolute path or a ".."
 * component is refused, and every entry's parent is opened from the
 * target's fd with RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS: no symlink of
 * the instance (nor one the stream made) is followed, so nothing lands
 * outside the target, even if the instance swaps a directory for a link
 * during the copy.  Only directories, regular files and symlinks are
 * taken (a hardlink, device, FIFO is an error); every entry is owned by
 * uid:gid, files and symlinks are made beside their name and renamed over
 * it; modes and mtimes are the stream's.  An entry refused stops the copy:
 * what came before it stays.
 *
 * Out of: the directory is written by tree-archive.h, never following a
 * symlink (a link goes as a link), owners in the instance's view of its
 * ids, files without their setuid and setgid bits (the instance's
 * setuid-root file must not become the host's, where root extracts the
 * tree with its owners).  Devices, FIFOs, sockets and directories on kernel filesystems
 * (/proc, /sys, ...) are left out, each reported.
 * Internal to lib/daemon. */
#ifndef CELL_INSTANCE_TREE_FILES_H
#define CELL_INSTANCE_TREE_FILES_H

#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"

struct tree_push_stats {
  uint64_t entries, bytes;
};

/* The tar stream read from srcfd, extracted into the directory at path
 * inside rootfd (made when missing, mode 0755; its parent must exist).
 * file_mode >= 0: the mode of every regular file, else the stream's. */
int instance_tree_push(int rootfd, const char *path, int srcfd, uid_t uid,
                       gid_t gid, int file_mode, struct tree_push_stats *stats,
                       cell_error **err);

/* Told each entry left out of a pull: its path inside the instance, why. */
typedef void (*tree_skipped_fn)(void *ctx, const char *path, const char *why);

/* The directory at path inside rootfd written to dstfd as a tar stream;
 * owners as id - id_base (ids outside the range of id_count: 65534).
 * *bytes: the files' contents written. */
int instance_tree_pull(int rootfd, const char *path, int dstfd,
                       uint32_t id_base, uint32_t id_count,
                       tree_skipped_fn skipped, void *ctx, uint64_t *bytes,
                       cell_error **err);

#endif
