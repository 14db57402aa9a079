/* Delegation of a container's cgroup to the root of its user namespace
 * (the kernel's cgroup-v2.rst, "Delegation"). */
#ifndef CELL_CGROUP_DELEGATE_H
#define CELL_CGROUP_DELEGATE_H

#include <sys/types.h>

#include "base/error.h"

struct cgroup;

/* Give uid:gid the container's cgroup directory in every hierarchy, and
 * the files that move processes and enable controllers below it: its root
 * can then make and fill cgroups of its own (systemd does, as an init),
 * while the limits of the container's own cgroup stay the host's. */
int cgroup_delegate(const struct cgroup *cg, uid_t uid, gid_t gid,
                    cell_error **err);

#endif
