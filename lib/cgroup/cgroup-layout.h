/* The host's cgroup layout (cgroup-layout.c): which mounts there are,
 * found before anything else about a container's cgroup.  Part of
 * libcell's API through cgroup.h, which includes it. */
#ifndef CELL_CGROUP_LAYOUT_H
#define CELL_CGROUP_LAYOUT_H

#include "base/error.h"

#define CGROUP_MOUNT "/sys/fs/cgroup"
#define CGROUP_UNIFIED_MOUNT "/sys/fs/cgroup/unified"

enum cgroup_layout { CGROUP_UNIFIED, CGROUP_HYBRID, CGROUP_LEGACY };

int cgroup_detect(enum cgroup_layout *layout, cell_error **err);

/* Where a v1 hierarchy is mounted: /sys/fs/cgroup/<its controllers>
 * ("cpu,cpuacct", "systemd" for name=systemd), or one of its controllers'
 * names (the usual symlinks); NULL when not found there. */
char *cgroup_v1_mount_dir(const char *controllers);

#endif
