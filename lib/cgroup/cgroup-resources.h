/* linux.resources applied to a container's cgroup (cgroup-resources.c).
 * cgroup_update is part of libcell's API through cgroup.h, which includes
 * this header; cgroup_apply_resources is for cgroup_create. */
#ifndef CELL_CGROUP_RESOURCES_H
#define CELL_CGROUP_RESOURCES_H

#include "base/error.h"
#include "oci/spec.h"

struct cgroup;

/* At create: every resource r sets (r may be NULL), and the device rules
 * (v1 devices.allow/deny, v2 an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program)
 * always: deny all but the defaults and what r allows. */
int cgroup_apply_resources(const struct cgroup *cg,
                           const struct spec_resources *r, cell_error **err);
/* `cell update`: apply a new linux.resources to a live container. */
int cgroup_update(const struct cgroup *cg, const struct spec_resources *r,
                  cell_error **err);

#endif
