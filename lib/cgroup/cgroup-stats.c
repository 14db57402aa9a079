/* What a container's cgroup reports: runc's stats JSON for `cell events`,
 * the count of OOM kills and an fd to watch for them.  Each controller's
 * numbers come through the table of the version whose directory has them;
 * on a hybrid host a controller missing from v1 may be on the cgroup2
 * side, which one of its files tells.  Apart from the interface (cgroup.c)
 * because only readers (`cell events`, celld's watchers) need it. */
#include "cgroup/cgroup-stats.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "cgroup/cgroup-common.h"
#include "cgroup/cgroup-dirs.h"
#include "cgroup/cgroup-v1.h"
#include "cgroup/cgroup-v2.h"

/* The directory for a controller's statistics (fd -1 when there is none:
 * the operations then give an empty object).  probe is one of the
 * controller's files on the cgroup2 side. */
static struct cgroup_target
stats_target(const struct cgroup *cg, const char *v1_name, const char *probe) {
  if (cg->layout != CGROUP_UNIFIED) {
    struct cgroup_hier *h = cgroup_dirs_find_v1(cg, v1_name);
    if (h)
      return (struct cgroup_target){&cgroup_ops_v1, h->fd};
  }
  if (cg->v2_fd >= 0 &&
      (cg->layout == CGROUP_UNIFIED || cg_exists(cg->v2_fd, probe)))
    return (struct cgroup_target){&cgroup_ops_v2, cg->v2_fd};
  return (struct cgroup_target){&cgroup_ops_v1, -1};
}

/* pids.current and pids.max read the same on v1 and v2. */
static void stats_pids(const struct cgroup *cg, struct json_gen *g) {
  int fd = stats_target(cg, "pids", "pids.current").fd;
  uint64_t current = 0, limit = 0;
  json_gen_object_open(g);
  if (fd >= 0 && cg_read_u64(fd, "pids.current", &current) && current)
    json_gen_kv_int(g, "current", (int64_t)current);
  if (fd >= 0 && cg_read_u64(fd, "pids.max", &limit) && limit &&
      limit != UINT64_MAX) {
    json_gen_key(g, "limit");
    json_gen_uint(g, limit);
  }
  json_gen_object_close(g);
}

/* v1 keeps cpu and cpuacct in two hierarchies; v2 has both in cpu.stat. */
static void stats_cpu(const struct cgroup *cg, struct json_gen *g) {
  if (cg->layout == CGROUP_UNIFIED) {
    cgroup_ops_v2.stats_cpu(cg->v2_fd, cg->v2_fd, g);
    return;
  }
  struct cgroup_hier *cpu = cgroup_dirs_find_v1(cg, "cpu"),
                     *acct = cgroup_dirs_find_v1(cg, "cpuacct");
  cgroup_ops_v1.stats_cpu(cpu ? cpu->fd : -1, acct ? acct->fd : -1, g);
}

static void stats_hugetlb(const struct cgroup *cg, struct json_gen *g) {
  cleanup_strv char **sizes = NULL;
  cell_error *e = NULL;
  if (cg_hugepage_sizes(&sizes, &e) < 0)
    cell_error_free(&e);
  char probe[64] = "";
  if (sizes)
    snprintf(probe, sizeof(probe), "hugetlb.%s.current", sizes[0]);
  struct cgroup_target t = stats_target(cg, "hugetlb", probe);
  t.ops->stats_hugetlb(t.fd, sizes, g);
}

int cgroup_stats_json(const struct cgroup *cg, char **json, cell_error **err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);

  json_gen_key(g, "cpu");
  stats_cpu(cg, g);

  json_gen_key(g, "memory");
  struct cgroup_target t = stats_target(cg, "memory", "memory.current");
  t.ops->stats_memory(t.fd, g);

  json_gen_key(g, "pids");
  stats_pids(cg, g);

  json_gen_key(g, "blkio");
  t = stats_target(cg, "blkio", "io.stat");
  t.ops->stats_blkio(t.fd, g);

  json_gen_key(g, "hugetlb");
  stats_hugetlb(cg, g);

  json_gen_object_close(g);
  *json = json_gen_finish(g, NULL);
  json_gen_free(g);
  (void)err;
  return 0;
}

void cgroup_usage(const struct cgroup *cg, struct cgroup_usage *u) {
  *u = (struct cgroup_usage){0};
  struct cgroup_target t = stats_target(cg, "memory", "memory.current");
  u->has_memory = t.ops->usage_memory(t.fd, &u->memory, &u->memory_peak);
  if (cg->layout == CGROUP_UNIFIED) {
    u->has_cpu = cgroup_ops_v2.usage_cpu(cg->v2_fd, &u->cpu_ns);
  } else {
    struct cgroup_hier *acct = cgroup_dirs_find_v1(cg, "cpuacct");
    u->has_cpu = cgroup_ops_v1.usage_cpu(acct ? acct->fd : -1, &u->cpu_ns);
  }
  int fd = stats_target(cg, "pids", "pids.current").fd;
  u->has_pids = fd >= 0 && cg_read_u64(fd, "pids.current", &u->pids);
}

/* ---- OOM events
 * -------------------------------------------------------------- */

static int memory_target(const struct cgroup *cg, struct cgroup_target *t,
                         cell_error **err) {
  *t = stats_target(cg, "memory", "memory.events");
  if (t->fd < 0)
    return cell_fail(err, ENODEV, "cgroup `%s`: no memory controller",
                     cg->path);
  return 0;
}

int cgroup_oom_watch(const struct cgroup *cg, cell_error **err) {
  struct cgroup_target t;
  if (memory_target(cg, &t, err) < 0)
    return -1;
  return t.ops->oom_watch(t.fd, err);
}

void cgroup_oom_watch_ack(int fd) {
  char buf[4096] __attribute__((aligned(8)));
  while (read(fd, buf, sizeof(buf)) > 0)
    ;
}

int cgroup_oom_count(const struct cgroup *cg, unsigned long long *n,
                     cell_error **err) {
  struct cgroup_target t;
  if (memory_target(cg, &t, err) < 0)
    return -1;
  return t.ops->oom_count(t.fd, n, err);
}
