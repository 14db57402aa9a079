/* What a container's cgroup reports (cgroup-stats.c): the stats JSON of
 * `cell events` and the OOM kills.  Part of libcell's API through
 * cgroup.h, which includes this header. */
#ifndef CELL_CGROUP_STATS_H
#define CELL_CGROUP_STATS_H

#include <stdbool.h>
#include <stdint.h>

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

/* What the container uses now (celld's show, top and metrics).  A field
 * whose has_ flag is false could not be read (no such controller). */
struct cgroup_usage {
  uint64_t memory, memory_peak; /* bytes */
  uint64_t cpu_ns;              /* CPU time so far */
  uint64_t pids;
  bool has_memory, has_cpu, has_pids;
};
void cgroup_usage(const struct cgroup *cg, struct cgroup_usage *u);

#endif
