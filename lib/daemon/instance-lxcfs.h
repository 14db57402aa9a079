/* The mounts that give an instance lxcfs's view of /proc (and of the
 * online cpus): its own memory, cpus, uptime and load instead of the
 * host's, as LXC's and LXD's lxcfs hooks bind them. */
#ifndef CELL_INSTANCE_LXCFS_H
#define CELL_INSTANCE_LXCFS_H

#include "base/json.h"

/* The files lxcfs serves that an instance gets, relative to the lxcfs
 * mount and to the instance's root alike; NULL-terminated. */
extern const char *const instance_lxcfs_files[];

/* The spec's "mounts" array: the mounts of defaults (a JSON array; NULL:
 * none) and, when lxcfs_dir is not NULL, a bind of each lxcfs file from
 * under lxcfs_dir over the instance's own.  They come last: the runtime
 * mounts in order, and procfs and sysfs must be there first. */
void instance_lxcfs_gen_mounts(struct json_gen *g,
                               const struct json_value *defaults,
                               const char *lxcfs_dir);

#endif
