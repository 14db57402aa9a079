/* An instance's root filesystem: its template mounted idmapped (or copied
 * and shifted to the instance's range) under an overlay with the
 * instance's own writable layer. */
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
/* Unmount rootfs/ and lower/ (lazily; no error when not mounted). */
int instance_rootfs_umount(const char *inst_dir, cell_error **err);
/* Whether path is a mount point. */
bool instance_is_mountpoint(const char *path);

#endif
