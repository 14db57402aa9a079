/* What a container's cgroup reports (cgroup-stats.c): the stats JSON of
 * `cell events` and the OOM kills.  Part of libcell's API through
 * cgroup.h, which includes this header. */
#ifndef CELL_CGROUP_STATS_H
#define CELL_CGROUP_STATS_H

#include "base/error.h"

struct cgroup;

/* An fd that becomes readable when the cgroup may have had an OOM event:
 * an eventfd registered on memory.oom_control (v1), an inotify watch of
 * memory.events (v2).  Read the count with cgroup_oom_count; on v1 the
 * notice can come before the kill is counted.  cgroup_oom_watch_ack
 * drains the fd. */
int cgroup_oom_watch(const struct cgroup *cg, cell_error **err);
void cgroup_oom_watch_ack(int fd);
/* `cell events`: runc's stats JSON object ("cpu", "memory", "pids",
 * "blkio", "hugetlb" ...) and the count of OOM kills so far. */
int cgroup_stats_json(const struct cgroup *cg, char **json, cell_error **err);
int cgroup_oom_count(const struct cgroup *cg, unsigned long long *n,
                     cell_error **err);

#endif
