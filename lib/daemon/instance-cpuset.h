/* Which CPUs an instance with a CPU limit runs on. */
#ifndef CELL_INSTANCE_CPUSET_H
#define CELL_INSTANCE_CPUSET_H

#include "daemon/instance.h"

/* A CPU limit of N (cpus=1.5: 2) is a quota of CPU time, and also the
 * ceil(N) CPUs the instance may run on, as LXD's limits.cpu does: programs
 * size their thread pools by their CPU affinity (nproc,
 * sched_getaffinity), which only a cpuset changes.  The CPUs are taken
 * from celld's own, consecutive from an offset that follows the
 * instance's id range, so that instances spread over the host.  The list
 * ("0,1"), or NULL: every CPU (no limit, or one as large as the host). */
char *instance_cpuset(const struct instance_record *r);

/* celld's own CPUs as a list ("0-3" style is not used: "0,1,2,3"). */
char *instance_cpuset_all(void);

#endif
