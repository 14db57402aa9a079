/* The table of operations each cgroup version provides (types only: no
 * cgroup-ops.c).  cgroup-v1.c fills in cgroup_ops_v1, cgroup-v2.c
 * cgroup_ops_v2; the interface above them calls through the table.
 *
 * Every operation works on one controller's cgroup directory, given as an
 * fd, and the interface picks the table for each controller separately:
 * on a hybrid host a controller bound to a v1 hierarchy goes to v1's
 * table with that hierarchy's directory, one that only the cgroup2 mount
 * has (hugetlb on some hosts) to v2's table with the cgroup2 directory.
 *
 * What only one version has stays out of the table and is declared in
 * that version's header: v1's cpuset inheritance and net_cls/net_prio
 * hierarchies, v2's subtree_control and linux.resources.unified.
 * Internal to lib/cgroup. */
#ifndef CELL_CGROUP_OPS_H
#define CELL_CGROUP_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/json.h"
#include "cgroup/bpf-devices.h"
#include "oci/spec.h"

struct cgroup_ops {
  /* linux.resources; update is true for `cell update`. */
  int (*set_memory)(int fd, const struct spec_memory *m, bool update,
                    cell_error **err);
  int (*set_cpu)(int fd, const struct spec_cpu *c, bool update,
                 cell_error **err);
  int (*set_cpuset)(int fd, const struct spec_cpu *c, cell_error **err);
  int (*set_pids)(int fd, int64_t limit, cell_error **err);
  int (*set_blkio)(int fd, const struct spec_block_io *b, cell_error **err);
  int (*set_hugetlb)(int fd, const struct spec_hugepage_limit *h, size_t n,
                     cell_error **err);
  int (*set_rdma)(int fd, const struct spec_rdma *r, size_t n,
                  cell_error **err);
  /* The rules in order, the first one denying everything (v1:
   * devices.allow / devices.deny; v2: an eBPF program). */
  int (*set_devices)(int fd, const struct dev_rule *rules, size_t n,
                     cell_error **err);

  /* Processes. */
  int (*freeze)(int fd, bool frozen, cell_error **err);
  bool (*is_frozen)(int fd);
  /* Kill everything in the cgroup at once (cgroup.kill): 1 when done, 0
   * when the kernel has no way to (v1, Linux before 5.14). */
  int (*kill)(int fd, cell_error **err);

  /* OOM events. */
  int (*oom_count)(int fd, unsigned long long *n, cell_error **err);
  /* An fd that becomes readable on a possible OOM kill. */
  int (*oom_watch)(int fd, cell_error **err);

  /* Statistics (runc's stats JSON); fd -1 gives an empty object. */
  /* v1 keeps cpu and cpuacct apart, v2 has both in cpu.stat. */
  void (*stats_cpu)(int cpu_fd, int cpuacct_fd, struct json_gen *g);
  void (*stats_memory)(int fd, struct json_gen *g);
  void (*stats_blkio)(int fd, struct json_gen *g);
  void (*stats_hugetlb)(int fd, char *const *sizes, struct json_gen *g);

  /* Live usage (celld's show, top and metrics): false when the file is
   * not there.  Memory in bytes now and at its highest; CPU time in ns. */
  bool (*usage_memory)(int fd, uint64_t *current, uint64_t *peak);
  bool (*usage_cpu)(int cpuacct_fd, uint64_t *ns);
};

#endif
