/* One layer's tar stream (plain, gzip, xz, zstd, bzip2: libarchive detects
 * the filter) applied onto a directory, safely against a hostile archive.
 * libarchive reads the archive; every file is created here, through fds:
 *
 * - nothing lands outside dirfd.  A leading "/" is stripped (as tar does),
 *   "." components and "./" prefixes are dropped, a ".." component is
 *   refused.  Every parent is opened with openat2(RESOLVE_BENEATH |
 *   RESOLVE_NO_SYMLINKS): a symlink in a parent is never followed, so a
 *   layer cannot write through a link it (or a lower layer) planted.  The
 *   entry itself is made with *at() calls on that parent fd.  What was
 *   there is replaced (a whole tree if need be), except that a directory
 *   over a directory stays and takes the new owner, mode and times.
 * - a hardlink's target is resolved beneath dirfd by the same rules.
 * - device nodes: only the char devices a container has by default (1:3
 *   null, 1:5 zero, 1:7 full, 1:8 random, 1:9 urandom, 5:0 tty, 5:1
 *   console, 5:2 ptmx) and 0:0 (overlayfs's whiteout).  FIFOs are kept;
 *   block devices and sockets are refused.
 * - owners are the archive's numbers, container-relative: an id above
 *   65535 cannot be mapped into an instance and is refused.  Modes keep
 *   setuid/setgid/sticky (chmod comes after chown, which clears them).
 *   Times are kept (directories' at the end, once nothing more is created
 *   in them).  xattrs: "security.capability" (file capabilities) and
 *   "user.*" are kept on files and directories, but "user.overlay.*"
 *   (layer_xattr_kept); others (trusted.*, security.selinux, ...) are
 *   ignored, they mean nothing in an instance.
 * - lim->max_bytes bounds the file contents (apparent sizes, so a sparse
 *   entry counts its full size): an entry whose header says it would pass
 *   the limit is refused before anything of it is written; lim->max_entries
 *   bounds the number of entries.
 * - paths deeper than LAYER_MAX_DEPTH components are refused (removing
 *   such a tree through fds would hold one fd per level).
 *
 * On failure the directory is left half made: the CALLER removes it
 * (layer_remove_tree), having extracted into a fresh directory of its own. */
#ifndef CELL_LAYER_EXTRACT_H
#define CELL_LAYER_EXTRACT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "storage/digest.h"

#define LAYER_MAX_DEPTH 256
/* The largest uid/gid a layer may own files with. */
#define LAYER_MAX_ID 65535

struct layer_limits {
  uint64_t max_bytes;   /* total size of file contents; 0 = no limit */
  uint64_t max_entries; /* entries (inodes, whiteouts); 0 = no limit.  A
                           few MB of gzip can hold millions of empty files,
                           which max_bytes does not see. */
};

struct layer_stats {
  uint64_t bytes;   /* file content bytes (apparent sizes) */
  uint64_t entries; /* archive entries applied, whiteouts included */
  /* sha256 of the stream as read from archive_fd (the compressed bytes,
   * to EOF): what an OCI manifest names the layer by. */
  char digest[DIGEST_STR_LEN];
  /* sha256 of the decompressed tar stream (to its EOF, what follows the
   * end-of-archive blocks included): what an OCI image config's
   * rootfs.diff_ids names the layer by, and the store's key.  The same
   * as digest when the stream is not compressed.  Both come from the
   * one pass that extracts. */
  char diff_id[DIGEST_STR_LEN];
};

/* What ".wh." names mean (the OCI image-spec's whiteouts). */
enum layer_whiteouts {
  /* A plain rootfs tarball: ".wh." names are ordinary files, kept as they
   * are. */
  LAYER_WHITEOUTS_NONE,
  /* Layers extracted in order onto one tree: ".wh.NAME" removes NAME
   * (lower content already in dirfd) and ".wh..wh..opq" empties its
   * directory of what lower layers put there (what this layer adds
   * stays).  Neither is created. */
  LAYER_WHITEOUTS_APPLY,
  /* The layer alone in its own fresh directory, to be stacked as an
   * overlayfs lower layer: whiteouts are stored the way overlayfs reads
   * them.  ".wh.NAME" becomes NAME, a char device 0:0 (mode 0, owner
   * 0:0) replacing whatever this layer put there; ".wh..wh..opq" sets
   * "trusted.overlay.opaque" = "y" on its directory. */
  LAYER_WHITEOUTS_OVERLAY,
};

/* Apply the layer read from archive_fd (from its current position to EOF)
 * onto dirfd, the layer or rootfs being built (opened O_RDONLY |
 * O_DIRECTORY, not O_PATH: a "./" entry sets its owner and mode).
 *
 * The archive's own xattrs never say what overlayfs reads: "trusted.*"
 * and "user.overlay.*" (what overlayfs reads with userxattr) are ignored
 * in every mode, so that only a ".wh." entry can hide a lower file.
 *
 * lim may be NULL (no limit), stats may be NULL (then the stream is not
 * hashed: sha256 costs about as much CPU as the extraction itself, twice
 * that for a compressed layer's digest and diff_id). */
int layer_extract(int archive_fd, int dirfd, const struct layer_limits *lim,
                  enum layer_whiteouts whiteouts, struct layer_stats *stats,
                  cell_error **err);

/* What layer_extract_from reads the layer through: up to len bytes into
 * buf; 0 at its end; -1 with errno set on an error. */
typedef ssize_t (*layer_read_fn)(void *ctx, void *buf, size_t len);

/* layer_extract of a stream that is no fd: one entry of an outer archive
 * (instance-archive.c reads each layer of an export this way, hashing it
 * as it goes). */
int layer_extract_from(layer_read_fn read_fn, void *ctx, int dirfd,
                       const struct layer_limits *lim,
                       enum layer_whiteouts whiteouts,
                       struct layer_stats *stats, cell_error **err);

/* The xattrs a layer carries: "security.capability" (file capabilities)
 * and "user.*", but "user.overlay.*", which overlayfs reads instead of
 * "trusted.overlay.*" when mounted with userxattr: an archive setting it
 * could make a directory opaque or redirect it once the tree is an
 * overlay layer.  Others (trusted.*, security.selinux) mean nothing in an
 * instance. */
bool layer_xattr_kept(const char *name);

/* rm -rf of parentfd/name through fds, never following a symlink (a link
 * is removed, not what it points to).  Absent is fine. */
int layer_remove_tree(int parentfd, const char *name, cell_error **err);

#endif
