/* An instance's root filesystem: its image's read-only layers (or, the
 * older way, its template) mounted idmapped (or copied and shifted to the
 * instance's range) under an overlay with the instance's own writable
 * layer. */
#ifndef CELL_INSTANCE_ROOTFS_H
#define CELL_INSTANCE_ROOTFS_H

#include <stdbool.h>

#include "base/error.h"
#include "daemon/daemon-config.h"
#include "daemon/instance.h"

/* Mount the instance's root: lower/ (the template idmapped, or a copy
 * shifted to the range when force_copy or the kernel refuses the idmap),
 * then the overlay on rootfs/.  The template is templatefd (from
 * instance_template_open); r->template_dir only names it in errors.
 * Idempotent: what is mounted already stays.  *mode is set to "idmap" or
 * "copy" (static strings).  On failure nothing this call mounted stays
 * mounted. */
int instance_rootfs_mount_at(const char *inst_dir,
                             const struct instance_record *r, int templatefd,
                             bool force_copy, const char **mode,
                             cell_error **err);
/* The same with the template opened anew from the record: by root's rules
 * (any directory) for root's instances, otherwise only beneath one of the
 * template_dirs of cfg, as at create. */
int instance_rootfs_mount(const char *inst_dir, const struct instance_record *r,
                          const struct daemon_config *cfg, const char **mode,
                          cell_error **err);
/* Mount the instance's root on its image: layers_dir (the store's layers
 * directory, absolute) idmapped read-only at <inst_dir>/layers;
 * disk_dir (upper/ and work/, container-relative ids on disk; NULL:
 * <inst_dir>/disk; elsewhere when the instance is in a pool) idmapped at
 * <inst_dir>/disk.idmapped; the overlay on <inst_dir>/rootfs
 * with lowerdir = the layers top first, upperdir/workdir in
 * disk.idmapped.  layer_ids: 64-hex names, BOTTOM first, NULL-terminated.
 * Idempotent (what is mounted stays); on failure nothing this call mounted
 * stays mounted.  *mode = "idmap", or "copy" (static strings) when
 * force_copy or the kernel/filesystem refuses idmapped mounts: then each
 * layer is copied shifted to the range into <inst_dir>/lower.copy/<id> and
 * disk/ holds host ids.  An instance whose record says one mode is never
 * mounted in the other (its disk's owners depend on it).  Refused: more
 * layers than overlayfs's options can name ("flatten it"), an overlay that
 * would come up read-only. */
int instance_rootfs_mount_layers(const char *inst_dir, const char *disk_dir,
                                 const struct instance_record *r,
                                 const char *layers_dir,
                                 char *const *layer_ids, bool force_copy,
                                 const char **mode, cell_error **err);
/* Unmount rootfs/, disk.idmapped/, layers/ and lower/ (lazily; no error
 * when not mounted). */
int instance_rootfs_umount(const char *inst_dir, cell_error **err);
/* Before the container is made: of the instance's mounts, the overlay on
 * rootfs/ alone stays.  The overlay holds its own copies of its layers,
 * so layers/ and disk.idmapped/ (lower/ for a template) come off our
 * mount namespace, which every new container copies.  The container gets
 * its copy of rootfs/ as it is created, and then ours goes too
 * (instance_rootfs_umount): its copy is locked in its user namespace and
 * made private there, so our unmount does not reach it, and what our
 * mount propagated to peers of our namespace goes with ours. */
int instance_rootfs_keep_root_only(const char *inst_dir, cell_error **err);
/* Copy the layer tree srcdir into the empty directory dstdir as it is:
 * owners, modes, times, xattrs (overlay whiteouts and opaque markers
 * too), reflinked where the filesystem can. */
int instance_layer_copy(int srcdir, int dstdir, cell_error **err);
/* The layer tree srcdir applied onto dstdir as overlayfs shows srcdir
 * stacked above it, so that dstdir becomes the one layer both make,
 * still to go above the same lower layers: an entry replaces what dstdir
 * has there, a directory merges into a directory unless it is opaque, a
 * whiteout (0:0 character device) stays a whiteout (it may hide a lower
 * layer's file), a directory over a whiteout becomes opaque.  Files are
 * copied as instance_layer_copy copies them (reflinks where it can). */
int instance_layer_merge(int srcdir, int dstdir, cell_error **err);
/* A new empty writable layer in the disk diskfd: upper/ (its root the
 * container's root's, as the image's is) and a fresh overlay work/.  An
 * upper/ already there must be gone first. */
int instance_new_writable_layer(int diskfd, cell_error **err);
/* Whether path is a mount point. */
bool instance_is_mountpoint(const char *path);

#endif
