/* A directory tree written as a tar stream: what the layer store makes a
 * layer of (an instance's changes, a built tree), and hashes to name it.
 *
 * The walk goes through fds only: each directory is opened from its
 * parent's fd (O_NOFOLLOW | O_DIRECTORY), each name is looked at with
 * fstatat(AT_SYMLINK_NOFOLLOW); no path is ever resolved from the root,
 * no symlink is followed (a symlink is archived as one, whatever it
 * points to).  A file or directory replaced between its fstatat and its
 * open is an error, not a silent mix of two inodes.
 *
 * The output is DETERMINISTIC, the same tree gives the same bytes and so
 * the same sha256 (the store's identity of the layer):
 * - pax (ustar, with pax extended headers only where ustar cannot say
 *   it: long names, xattrs), no padding after the end-of-archive blocks;
 * - the directory itself as "./", then its contents depth first, names
 *   sorted by strcmp in each directory ("./etc", "./etc/passwd");
 * - numeric uid/gid only (no user or group names), the mode with
 *   setuid/setgid/sticky, mtime in whole seconds, no atime or ctime;
 * - xattrs "security.capability" and "user.*" on files and directories,
 *   sorted by name ("user.overlay.*", overlayfs's own, is left out, as
 *   layer_extract ignores it).
 * Directories, regular files, symlinks, char and block devices and FIFOs
 * are written; a second name of an inode (st_nlink > 1) is a hardlink to
 * the first name written; sockets are skipped.  Paths deeper than
 * LAYER_MAX_DEPTH components are refused.  layer_extract with
 * LAYER_WHITEOUTS_NONE reads the stream back into the same tree (its
 * limits apply: ids up to LAYER_MAX_ID, the default char devices). */
#ifndef CELL_TREE_ARCHIVE_H
#define CELL_TREE_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

/* Write the tree beneath dirfd (a directory, O_PATH will do) as a tar
 * stream to out_fd (a file or a pipe).  bytes_out,
 * when not NULL, gets the total of the regular files' contents written.
 * A write error on out_fd is an error (EPIPE too, when the reader went
 * away: the caller ignores SIGPIPE); what was written of the stream is
 * then incomplete. */
int tree_archive_write(int dirfd, int out_fd, uint64_t *bytes_out,
                       cell_error **err);

/* The same for a tree in overlayfs's form (a store layer, an instance's
 * upper), written in the OCI form that travels between hosts: a whiteout
 * NAME (a 0:0 char device, whatever its owner) becomes an empty regular
 * file ".wh.NAME" owned by 0:0, and a directory with
 * trusted.overlay.opaque=y is followed by a ".wh..wh..opq" entry in it.
 * Any other entry owned by an id above LAYER_MAX_ID is an error (the tree
 * is not container-relative), and so is a redirect or metacopy xattr of
 * overlayfs (what they point to is not in the tree).  layer_extract with
 * LAYER_WHITEOUTS_OVERLAY reads the stream back into the same tree.  Must
 * run as root (trusted.* xattrs are read). */
int tree_archive_write_oci(int dirfd, int out_fd, uint64_t *bytes_out,
                           cell_error **err);

/* What tree_archive_write_with may do differently from tree_archive_write
 * (a tree copied out of an instance, rather than a layer). */
struct tree_archive_opts {
  /* Only directories, regular files and symlinks: devices, FIFOs and
   * sockets are left out, each reported to skipped. */
  bool plain_only;
  /* Every name of a file written whole, never as a hardlink to the first:
   * for a reader that takes no hardlinks. */
  bool no_hardlinks;
  /* Files written without their setuid and setgid bits (directories keep
   * theirs, which only pass a group on): a tree whose owners are mapped
   * into another user namespace's view must not carry a set-id file that
   * would be root's where it lands. */
  bool drop_setid;
  /* When id_count > 0: owners written as id - id_base (the instance's
   * view of its range); an id outside [id_base, id_base + id_count) is
   * written as 65534 (nobody, as the kernel shows an unmapped id). */
  uint32_t id_base, id_count;
  /* May be NULL.  Called for each directory below the root once opened
   * (fd, O_RDONLY): a reason to leave it out (and all it holds), reported
   * to skipped, or NULL to take it (a kernel filesystem mounted there:
   * /proc, /sys). */
  const char *(*skip_dir)(void *ctx, int fd);
  /* May be NULL.  Told each entry left out: its path in the stream
   * ("./dev/null") and why ("a device"). */
  void (*skipped)(void *ctx, const char *path, const char *why);
  void *ctx;
};

/* tree_archive_write with opts (NULL: none, as tree_archive_write).  The
 * stream is still deterministic for a given tree and opts. */
int tree_archive_write_with(int dirfd, int out_fd,
                            const struct tree_archive_opts *opts,
                            uint64_t *bytes_out, cell_error **err);

#endif
