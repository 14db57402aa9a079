/* The cgroup v2 backend (cgroup-v2.c): its table of operations, and what
 * only v2 has, which the interface calls by name for the cgroup2 side.
 * Internal to lib/cgroup. */
#ifndef CELL_CGROUP_V2_H
#define CELL_CGROUP_V2_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "cgroup/cgroup-ops.h"
#include "oci/spec.h"

extern const struct cgroup_ops cgroup_ops_v2;

/* mkdir -p of path under mount, enabling in each ancestor's
 * cgroup.subtree_control every controller of its cgroup.controllers
 * (enable_all) or none.  Returns the leaf's fd; *made tells whether the
 * leaf was created. */
int cgv2_make(const char *mount, const char *path, bool enable_all, bool *made,
              cell_error **err);
/* Enable one controller from the root down to path's parent; fails when
 * the hierarchy does not have it. */
int cgv2_enable(const char *mount, const char *path, const char *controller,
                cell_error **err);
/* linux.resources.unified: the files as given. */
int cgv2_set_unified(int fd, const struct spec_kv *kv, size_t n,
                     cell_error **err);

#endif
