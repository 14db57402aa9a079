/* The cgroup v1 backend (cgroup-v1.c): its table of operations, and what
 * only v1 has, which the interface calls by name for v1 hierarchies.
 * Internal to lib/cgroup. */
#ifndef CELL_CGROUP_V1_H
#define CELL_CGROUP_V1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "cgroup/cgroup-ops.h"
#include "oci/spec.h"

extern const struct cgroup_ops cgroup_ops_v1;

/* mkdir -p of path in the hierarchy mounted at mount; in a cpuset
 * hierarchy (controllers names it) the new cgroups get their parent's cpus
 * and mems, without which they take no task.  Returns the leaf's fd;
 * *made tells whether the leaf was created. */
int cgv1_make(const char *mount, const char *path, const char *controllers,
              bool *made, cell_error **err);
/* net_cls and net_prio exist only as v1 hierarchies. */
int cgv1_set_net_cls(int fd, uint32_t class_id, cell_error **err);
int cgv1_set_net_prio(int fd, const struct spec_net_priority *p, size_t n,
                      cell_error **err);

#endif
