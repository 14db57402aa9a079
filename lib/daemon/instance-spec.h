/* The OCI config that celld gives the runtime for an instance. */
#ifndef CELL_INSTANCE_SPEC_H
#define CELL_INSTANCE_SPEC_H

#include "base/error.h"
#include "daemon/instance.h"

/* The OCI config.json text for the instance: the instance profile
 * (config/instance.json) with its range, hostname, init, limits and root;
 * with lxcfs's files bound over /proc's when lxcfs_dir, the lxcfs mount,
 * is not NULL. */
char *instance_spec_json(const struct instance_record *r, const char *rootfs,
                         const char *lxcfs_dir, cell_error **err);

/* The device rules its config gives r (the profile's, then one allowing
 * each device.NAME), as a linux.resources object for an update of the
 * running instance's cgroup: {"devices":[...]}. */
char *instance_spec_devices_json(const struct instance_record *r,
                                 cell_error **err);

#endif
