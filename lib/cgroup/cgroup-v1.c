/* The cgroup v1 backend: one directory per controller hierarchy, each
 * operation given the container's directory in its controller's
 * hierarchy.  The operations both versions have are reached through
 * cgroup_ops_v1 (the table is at the end); what only v1 has (making a
 * cgroup with its cpuset, net_cls, net_prio) is declared in cgroup-v1.h.
 * It builds on cgroup-common.c alone, never on the interface above it. */
#include "cgroup/cgroup-v1.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cgroup/cgroup-common.h"

static int write_i64(int fd, const char *file, int64_t v, const char *field,
                     cell_error **err) {
  return cg_writef(fd, file, field, err, "%lld", (long long)v);
}

static int write_u64(int fd, const char *file, uint64_t v, const char *field,
                     cell_error **err) {
  return cg_writef(fd, file, field, err, "%" PRIu64, v);
}

/* Write a then b; when the kernel refuses a (EINVAL: it would break an
 * ordering between the two files, like memory <= memory+swap or
 * rt_runtime <= rt_period), write b first. */
struct knob {
  const char *file;
  int64_t value;
  const char *field;
};

static int write_pair(int fd, const struct knob *a, const struct knob *b,
                      cell_error **err) {
  cell_error *first = NULL;
  if (write_i64(fd, a->file, a->value, a->field, &first) == 0)
    return write_i64(fd, b->file, b->value, b->field, err);
  if (first->errnum != EINVAL) {
    *err = first;
    return -1;
  }
  cell_error_free(&first);
  if (write_i64(fd, b->file, b->value, b->field, err) < 0)
    return -1;
  return write_i64(fd, a->file, a->value, a->field, err);
}

/* ---- memory -------------------------------------------------------------- */

static int check_usage(int fd, int64_t limit, const char *usage_file,
                       cell_error **err) {
  uint64_t usage;
  if (limit <= 0 || !cg_read_u64(fd, usage_file, &usage))
    return 0;
  if ((uint64_t)limit < usage)
    return cell_fail(
        err, EBUSY,
        "linux.resources.memory.limit: %lld is below the current usage %" PRIu64
        " (checkBeforeUpdate)",
        (long long)limit, usage);
  return 0;
}

/* linux.resources.memory.swap is the limit of memory+swap, which is what
 * memory.memsw.limit_in_bytes is.  As in runc, 0 means "not set" for the
 * byte limits. */
static int set_limit_and_swap(int fd, const struct spec_memory *m,
                              cell_error **err) {
  int64_t limit = m->limit ? *m->limit : 0;
  int64_t swap = m->swap ? *m->swap : 0;
  if (swap != 0 && !cg_exists(fd, "memory.memsw.limit_in_bytes")) {
    if (swap != -1)
      return cell_fail(
          err, ENOTSUP,
          "linux.resources.memory.swap: memory.memsw.limit_in_bytes: no swap "
          "accounting in this kernel");
    swap = 0; /* unlimited: nothing to enforce */
  }
  struct knob mem = {"memory.limit_in_bytes", limit,
                     "linux.resources.memory.limit"};
  struct knob memsw = {"memory.memsw.limit_in_bytes", swap,
                       "linux.resources.memory.swap"};
  if (limit != 0 && swap != 0)
    return write_pair(fd, &mem, &memsw, err);
  if (limit != 0)
    return write_i64(fd, mem.file, limit, mem.field, err);
  if (swap != 0)
    return write_i64(fd, memsw.file, swap, memsw.field, err);
  return 0;
}

static int set_memory(int fd, const struct spec_memory *m, bool update,
                      cell_error **err) {
  if (update && m->check_before_update && *m->check_before_update && m->limit &&
      check_usage(fd, *m->limit, "memory.usage_in_bytes", err) < 0)
    return -1;
  if (set_limit_and_swap(fd, m, err) < 0)
    return -1;
  if (m->reservation && *m->reservation != 0 &&
      write_i64(fd, "memory.soft_limit_in_bytes", *m->reservation,
                "linux.resources.memory.reservation", err) < 0)
    return -1;
  if (m->kernel)
    log_debug("cgroup: linux.resources.memory.kernel is deprecated, ignored");
  if (m->kernel_tcp && *m->kernel_tcp != 0 &&
      write_i64(fd, "memory.kmem.tcp.limit_in_bytes", *m->kernel_tcp,
                "linux.resources.memory.kernelTCP", err) < 0)
    return -1;
  if (m->swappiness) {
    if (*m->swappiness > 100)
      return cell_fail(err, EINVAL,
                       "linux.resources.memory.swappiness: %" PRIu64
                       " is not in 0..100",
                       *m->swappiness);
    if (write_u64(fd, "memory.swappiness", *m->swappiness,
                  "linux.resources.memory.swappiness", err) < 0)
      return -1;
  }
  if (m->disable_oom_killer && (*m->disable_oom_killer || update) &&
      cg_write(fd, "memory.oom_control", *m->disable_oom_killer ? "1" : "0",
               "linux.resources.memory.disableOOMKiller", err) < 0)
    return -1;
  if (m->use_hierarchy)
    log_debug(
        "cgroup: linux.resources.memory.useHierarchy ignored (always on)");
  return 0;
}

/* ---- cpu, cpuset --------------------------------------------------------- */

static int set_cpu(int fd, const struct spec_cpu *c, bool update,
                   cell_error **err) {
  if (c->shares && *c->shares != 0 &&
      write_u64(fd, "cpu.shares", *c->shares, "linux.resources.cpu.shares",
                err) < 0)
    return -1;
  struct knob period = {"cpu.cfs_period_us",
                        c->period ? (int64_t)*c->period : 0,
                        "linux.resources.cpu.period"};
  struct knob quota = {"cpu.cfs_quota_us", c->quota ? *c->quota : 0,
                       "linux.resources.cpu.quota"};
  int r = 0;
  if (period.value != 0 && quota.value != 0)
    r = write_pair(fd, &period, &quota, err);
  else if (period.value != 0)
    r = write_i64(fd, period.file, period.value, period.field, err);
  else if (quota.value != 0)
    r = write_i64(fd, quota.file, quota.value, quota.field, err);
  if (r < 0)
    return -1;
  if (c->burst && write_u64(fd, "cpu.cfs_burst_us", *c->burst,
                            "linux.resources.cpu.burst", err) < 0)
    return -1;
  struct knob rt_period = {
      "cpu.rt_period_us", c->realtime_period ? (int64_t)*c->realtime_period : 0,
      "linux.resources.cpu.realtimePeriod"};
  struct knob rt_runtime = {"cpu.rt_runtime_us",
                            c->realtime_runtime ? *c->realtime_runtime : 0,
                            "linux.resources.cpu.realtimeRuntime"};
  if (rt_period.value != 0 && rt_runtime.value != 0)
    r = write_pair(fd, &rt_period, &rt_runtime, err);
  else if (rt_period.value != 0)
    r = write_i64(fd, rt_period.file, rt_period.value, rt_period.field, err);
  else if (rt_runtime.value != 0)
    r = write_i64(fd, rt_runtime.file, rt_runtime.value, rt_runtime.field, err);
  if (r < 0)
    return -1;
  if (c->idle &&
      write_i64(fd, "cpu.idle", *c->idle, "linux.resources.cpu.idle", err) < 0)
    return -1;
  return 0;
}

static int read_cpuset_file(int fd, const char *file, char **out,
                            cell_error **err) {
  if (cg_read(fd, file, out, err) < 0)
    return cell_error_wrap(err, "cpuset");
  return 0;
}

/* A parent whose cpus and mems a child had to copy passes them on to each
 * child at its mkdir (cgroup.clone_children): the next container's cgroup
 * beside this one needs no copy.  Each copy is a write the kernel checks
 * against every sibling (validate_change), which a host of a thousand
 * containers makes a thousand times slower.  Not the hierarchy's root,
 * whose children are the whole host's.  Best effort: without it a child
 * is filled as before. */
static void pass_on_cpus(int fd) {
  cleanup_error cell_error *ignored = NULL;
  cg_write(fd, "cgroup.clone_children", "1", NULL, &ignored);
}

/* Copy cpuset.cpus / cpuset.mems from the parent while they are empty,
 * going up as far as needed (a parent made concurrently by another
 * runtime may be empty still). */
static int inherit_at(const char *mount, const char *path, int depth,
                      cell_error **err) {
  if (strcmp(path, "/") == 0 || depth > 64)
    return 0;
  cleanup_free char *full = xasprintf("%s%s", mount, path);
  cleanup_close int fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open cgroup `%s`", full);
  static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
  for (size_t i = 0; i < 2; i++) {
    cleanup_free char *mine = NULL;
    if (read_cpuset_file(fd, files[i], &mine, err) < 0)
      return -1;
    if (mine[0] != '\0')
      continue;
    cleanup_free char *parent = xstrdup(path);
    char *slash = strrchr(parent, '/');
    if (slash == parent)
      slash[1] = '\0';
    else
      *slash = '\0';
    if (inherit_at(mount, parent, depth + 1, err) < 0)
      return -1;
    cleanup_free char *parent_full = xasprintf("%s%s", mount, parent);
    cleanup_close int pfd =
        open(parent_full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cleanup_free char *value = NULL;
    if (pfd < 0)
      return cell_fail_errno(err, "open cgroup `%s`", parent_full);
    if (read_cpuset_file(pfd, files[i], &value, err) < 0 ||
        cg_write(fd, files[i], value, "cpuset", err) < 0)
      return cell_error_wrap(err, "cgroup `%s`", full);
    if (strcmp(parent, "/") != 0)
      pass_on_cpus(pfd);
  }
  return 0;
}

/* Give a new cpuset cgroup (and its parents, while they are empty) the
 * cpus and mems of its parent: an empty cpuset cannot take tasks. */
static int cpuset_inherit(const char *mount, const char *path,
                          cell_error **err) {
  return inherit_at(mount, path, 0, err);
}

static int set_cpuset(int fd, const struct spec_cpu *c, cell_error **err) {
  if (c->cpus && *c->cpus &&
      cg_write(fd, "cpuset.cpus", c->cpus, "linux.resources.cpu.cpus", err) < 0)
    return -1;
  if (c->mems && *c->mems &&
      cg_write(fd, "cpuset.mems", c->mems, "linux.resources.cpu.mems", err) < 0)
    return -1;
  return 0;
}

/* ---- making a cgroup ----------------------------------------------------- */

/* mkdir -p, trying the leaf first: its parents exist nearly always. */
static int make_dirs(const char *full, bool *made, cell_error **err) {
  if (mkdir(full, 0755) == 0) {
    *made = true;
    return 0;
  }
  if (errno == EEXIST) {
    *made = false;
    return 0;
  }
  if (errno != ENOENT)
    return cell_fail_errno(err, "create cgroup `%s`", full);
  cleanup_free char *parent = xstrdup(full);
  char *slash = strrchr(parent, '/');
  if (slash == NULL || slash == parent)
    return cell_fail(err, ENOENT, "create cgroup `%s`", full);
  *slash = '\0';
  bool parent_made;
  if (make_dirs(parent, &parent_made, err) < 0)
    return -1;
  return make_dirs(full, made, err);
}

int cgv1_make(const char *mount, const char *path, const char *controllers,
              bool *made, cell_error **err) {
  cleanup_free char *full = xasprintf("%s%s", mount, path);
  if (make_dirs(full, made, err) < 0)
    return -1;
  if (cg_list_has(controllers, "cpuset") &&
      cpuset_inherit(mount, path, err) < 0)
    return -1;
  int fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open cgroup `%s`", full);
  return fd;
}

/* ---- blkio --------------------------------------------------------------- */

/* Without CFQ (gone since 5.0) the proportional weights are BFQ's. */
static const char *weight_file(int fd, const char *cfq, const char *bfq) {
  return cg_exists(fd, cfq) || !cg_exists(fd, bfq) ? cfq : bfq;
}

static int set_throttle(int fd, const char *file, const char *name,
                        const struct spec_throttle_device *t, size_t n,
                        cell_error **err) {
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *field =
        xasprintf("linux.resources.blockIO.%s[%zu]", name, i);
    if (cg_writef(fd, file, field, err, "%lld:%lld %" PRIu64,
                  (long long)t[i].major, (long long)t[i].minor, t[i].rate) < 0)
      return -1;
  }
  return 0;
}

static int set_blkio(int fd, const struct spec_block_io *b, cell_error **err) {
  if (b->weight &&
      write_u64(fd, weight_file(fd, "blkio.weight", "blkio.bfq.weight"),
                *b->weight, "linux.resources.blockIO.weight", err) < 0)
    return -1;
  if (b->leaf_weight &&
      write_u64(fd, "blkio.leaf_weight", *b->leaf_weight,
                "linux.resources.blockIO.leafWeight", err) < 0)
    return -1;
  for (size_t i = 0; i < b->n_weight_device; i++) {
    const struct spec_weight_device *w = &b->weight_device[i];
    cleanup_free char *field =
        xasprintf("linux.resources.blockIO.weightDevice[%zu]", i);
    if (w->weight && cg_writef(fd,
                               weight_file(fd, "blkio.weight_device",
                                           "blkio.bfq.weight_device"),
                               field, err, "%lld:%lld %u", (long long)w->major,
                               (long long)w->minor, (unsigned)*w->weight) < 0)
      return -1;
    if (w->leaf_weight &&
        cg_writef(fd, "blkio.leaf_weight_device", field, err, "%lld:%lld %u",
                  (long long)w->major, (long long)w->minor,
                  (unsigned)*w->leaf_weight) < 0)
      return -1;
  }
  return set_throttle(fd, "blkio.throttle.read_bps_device",
                      "throttleReadBpsDevice", b->throttle_read_bps_device,
                      b->n_throttle_read_bps_device, err) < 0 ||
                 set_throttle(fd, "blkio.throttle.write_bps_device",
                              "throttleWriteBpsDevice",
                              b->throttle_write_bps_device,
                              b->n_throttle_write_bps_device, err) < 0 ||
                 set_throttle(fd, "blkio.throttle.read_iops_device",
                              "throttleReadIOPSDevice",
                              b->throttle_read_iops_device,
                              b->n_throttle_read_iops_device, err) < 0 ||
                 set_throttle(fd, "blkio.throttle.write_iops_device",
                              "throttleWriteIOPSDevice",
                              b->throttle_write_iops_device,
                              b->n_throttle_write_iops_device, err) < 0
             ? -1
             : 0;
}

/* ---- hugetlb, network ---------------------------------------------------- */

static int set_hugetlb(int fd, const struct spec_hugepage_limit *h, size_t n,
                       cell_error **err) {
  for (size_t i = 0; i < n; i++) {
    char file[64];
    snprintf(file, sizeof(file), "hugetlb.%s.limit_in_bytes", h[i].page_size);
    cleanup_free char *field =
        xasprintf("linux.resources.hugepageLimits[%zu].limit", i);
    if (write_u64(fd, file, h[i].limit, field, err) < 0)
      return -1;
  }
  return 0;
}

int cgv1_set_net_cls(int fd, uint32_t class_id, cell_error **err) {
  return write_u64(fd, "net_cls.classid", class_id,
                   "linux.resources.network.classID", err);
}

int cgv1_set_net_prio(int fd, const struct spec_net_priority *p, size_t n,
                      cell_error **err) {
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *field =
        xasprintf("linux.resources.network.priorities[%zu]", i);
    if (cg_writef(fd, "net_prio.ifpriomap", field, err, "%s %u", p[i].name,
                  p[i].priority) < 0)
      return -1;
  }
  return 0;
}

/* ---- devices ------------------------------------------------------------- */

/* One write per rule (the kernel takes one a write) into devices.allow
 * or devices.deny, each opened once: not an open and a close per rule. */
static int write_device_rules(int dirfd, const struct dev_rule *rules,
                              size_t n, cell_error **err) {
  cleanup_close int allow = -1, deny = -1;
  for (size_t i = 0; i < n; i++) {
    char line[64];
    dev_rule_format(&rules[i], line, sizeof(line));
    const char *file = rules[i].allow ? "devices.allow" : "devices.deny";
    int *fd = rules[i].allow ? &allow : &deny;
    if (*fd < 0)
      *fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
    cleanup_free char *field = NULL;
    if (*fd < 0 || cg_write_open(*fd, file, line, NULL, err) < 0) {
      field = xasprintf("linux.resources.devices: rule `%s`", line);
      if (*fd < 0)
        return cell_fail_errno(err, "%s: write %s", field, file);
      return cell_error_wrap(err, "%s", field);
    }
  }
  return 0;
}

/* A cgroup that denies by default already (an update of a running
 * container) goes to the new rules one device at a time: the kernel
 * refuses a reset ("a") once the cgroup has children (a guest's systemd
 * makes them), and a reset would leave a moment with no device at all.
 * A new cgroup (allowing everything) takes the rules as they are. */
static int set_devices(int fd, const struct dev_rule *rules, size_t n,
                       cell_error **err) {
  cleanup_free char *list = NULL;
  struct dev_policy now, want;
  cell_error *unread = NULL;
  if (cg_read(fd, "devices.list", &list, &unread) < 0 ||
      dev_policy_parse_list(list, &now, &unread) < 0) {
    cell_error_free(&unread);
    return write_device_rules(fd, rules, n, err);
  }
  dev_policy_from_rules(rules, n, &want);
  cleanup_free struct dev_rule *steps = NULL;
  size_t n_steps = 0;
  bool stepwise = dev_policy_transition(&now, &want, &steps, &n_steps);
  dev_policy_clear(&now);
  dev_policy_clear(&want);
  if (!stepwise)
    return write_device_rules(fd, rules, n, err);
  return write_device_rules(fd, steps, n_steps, err);
}

/* ---- freezer ------------------------------------------------------------- */

enum { FREEZE_TIMEOUT_MS = 5000 };

static bool state_is(int fd, const char *want, char *seen, size_t size) {
  cleanup_free char *state = NULL;
  cell_error *e = NULL;
  if (cg_read(fd, "freezer.state", &state, &e) < 0) {
    cell_error_free(&e);
    snprintf(seen, size, "unreadable");
    return false;
  }
  snprintf(seen, size, "%s", state);
  return strcmp(state, want) == 0;
}

/* FROZEN is reached through FREEZING, which can stall on a task that is
 * busy in the kernel; writing FROZEN again retries the stragglers. */
static int freeze(int fd, bool frozen, cell_error **err) {
  if (!frozen)
    return cg_write(fd, "freezer.state", "THAWED", NULL, err);
  long long deadline = cg_now_ms() + FREEZE_TIMEOUT_MS;
  unsigned delay = 0;
  char seen[32];
  for (;;) {
    if (cg_write(fd, "freezer.state", "FROZEN", NULL, err) < 0)
      return -1;
    if (state_is(fd, "FROZEN", seen, sizeof(seen)))
      return 0;
    if (cg_now_ms() > deadline)
      break;
    cg_backoff(&delay);
  }
  cell_error *ignored = NULL;
  cg_write(fd, "freezer.state", "THAWED", NULL, &ignored);
  cell_error_free(&ignored);
  return cell_fail(err, EBUSY, "freezer.state still %s after %d ms", seen,
                   FREEZE_TIMEOUT_MS);
}

static bool is_frozen(int fd) {
  char seen[32];
  return state_is(fd, "FROZEN", seen, sizeof(seen));
}

/* v1 has no cgroup.kill: the interface signals each process instead. */
static int kill_at_once(int fd, cell_error **err) { return 0; }

static int oom_count(int fd, unsigned long long *n, cell_error **err) {
  cleanup_free char *text = NULL;
  if (cg_read(fd, "memory.oom_control", &text, err) < 0)
    return -1;
  uint64_t v = 0;
  cg_keyed_u64(text, "oom_kill", &v); /* absent before Linux 4.13 */
  *n = v;
  return 0;
}

/* The memory controller's OOM notification: an eventfd registered through
 * cgroup.event_control on memory.oom_control (cgroup v1 only). */
static int oom_watch(int fd, cell_error **err) {
  cleanup_close int oc = openat(fd, "memory.oom_control", O_RDONLY | O_CLOEXEC);
  cleanup_close int ec =
      openat(fd, "cgroup.event_control", O_WRONLY | O_CLOEXEC);
  if (oc < 0 || ec < 0)
    return cell_fail_errno(err,
                           "open memory.oom_control, cgroup.event_control");
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0)
    return cell_fail_errno(err, "eventfd");
  char line[32];
  int n = snprintf(line, sizeof(line), "%d %d", efd, oc);
  if (write(ec, line, (size_t)n) != n) {
    cell_fail_errno(err, "register an OOM eventfd");
    close(efd);
    return -1;
  }
  return efd;
}

/* ---- stats --------------------------------------------------------------- */

static uint64_t read_u64_or_0(int fd, const char *file) {
  uint64_t v = 0;
  if (fd < 0 || !cg_read_u64(fd, file, &v))
    return 0;
  return v;
}

/* A space-separated list of numbers as an array, left out when absent. */
static void gen_number_list(struct json_gen *g, int fd, const char *file,
                            const char *key) {
  cleanup_free char *text = NULL;
  cell_error *e = NULL;
  if (fd < 0 || cg_read(fd, file, &text, &e) < 0 || text[0] == '\0') {
    cell_error_free(&e);
    return;
  }
  json_gen_key(g, key);
  json_gen_array_open(g);
  for (char *p = text, *end; *p; p = end) {
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p)
      break;
    json_gen_uint(g, v);
  }
  json_gen_array_close(g);
}

static void stats_cpu(int cpu_fd, int cpuacct_fd, struct json_gen *g) {
  json_gen_object_open(g);
  json_gen_key(g, "usage");
  json_gen_object_open(g);
  cg_gen_uint_nz(g, "total", read_u64_or_0(cpuacct_fd, "cpuacct.usage"));
  gen_number_list(g, cpuacct_fd, "cpuacct.usage_percpu", "percpu");
  gen_number_list(g, cpuacct_fd, "cpuacct.usage_percpu_sys", "percpu_kernel");
  gen_number_list(g, cpuacct_fd, "cpuacct.usage_percpu_user", "percpu_user");
  /* cpuacct.stat counts USER_HZ ticks; runc reports nanoseconds. */
  uint64_t user = 0, system = 0;
  long hz = sysconf(_SC_CLK_TCK);
  if (cpuacct_fd >= 0 && hz > 0) {
    cg_read_keyed_u64(cpuacct_fd, "cpuacct.stat", "user", &user);
    cg_read_keyed_u64(cpuacct_fd, "cpuacct.stat", "system", &system);
    user = user * 1000000000ull / (uint64_t)hz;
    system = system * 1000000000ull / (uint64_t)hz;
  }
  json_gen_key(g, "kernel");
  json_gen_uint(g, system);
  json_gen_key(g, "user");
  json_gen_uint(g, user);
  json_gen_object_close(g);

  json_gen_key(g, "throttling");
  json_gen_object_open(g);
  uint64_t v = 0;
  if (cpu_fd >= 0 && cg_read_keyed_u64(cpu_fd, "cpu.stat", "nr_periods", &v))
    cg_gen_uint_nz(g, "periods", v);
  if (cpu_fd >= 0 && cg_read_keyed_u64(cpu_fd, "cpu.stat", "nr_throttled", &v))
    cg_gen_uint_nz(g, "throttled_periods", v);
  if (cpu_fd >= 0 &&
      cg_read_keyed_u64(cpu_fd, "cpu.stat", "throttled_time", &v))
    cg_gen_uint_nz(g, "throttled_time", v);
  json_gen_object_close(g);
  json_gen_object_close(g);
}

static void gen_v1_memory_entry(struct json_gen *g, int fd, const char *key,
                                const char *prefix) {
  char limit[80], usage[80], max[80], failcnt[80];
  snprintf(limit, sizeof(limit), "%s.limit_in_bytes", prefix);
  snprintf(usage, sizeof(usage), "%s.usage_in_bytes", prefix);
  snprintf(max, sizeof(max), "%s.max_usage_in_bytes", prefix);
  snprintf(failcnt, sizeof(failcnt), "%s.failcnt", prefix);
  cg_gen_memory_entry(g, key, read_u64_or_0(fd, limit),
                      read_u64_or_0(fd, usage), read_u64_or_0(fd, max),
                      read_u64_or_0(fd, failcnt));
}

static void stats_memory(int fd, struct json_gen *g) {
  json_gen_object_open(g);
  if (fd >= 0) {
    uint64_t cache = 0;
    cg_read_keyed_u64(fd, "memory.stat", "cache", &cache);
    cg_gen_uint_nz(g, "cache", cache);
    gen_v1_memory_entry(g, fd, "usage", "memory");
    gen_v1_memory_entry(g, fd, "swap", "memory.memsw");
    gen_v1_memory_entry(g, fd, "kernel", "memory.kmem");
    gen_v1_memory_entry(g, fd, "kernelTCP", "memory.kmem.tcp");
    json_gen_key(g, "raw");
    cg_gen_keyed_file(g, fd, "memory.stat");
  }
  json_gen_object_close(g);
}

/* "8:0 Read 4096" lines (and a "Total N" one, skipped). */
static void gen_blkio_entries(struct json_gen *g, int fd, const char *file,
                              const char *key) {
  cleanup_free char *text = NULL;
  cell_error *e = NULL;
  if (cg_read(fd, file, &text, &e) < 0) {
    cell_error_free(&e);
    return;
  }
  bool open = false;
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    unsigned long long major, minor, value;
    char op[16];
    if (sscanf(line, "%llu:%llu %15s %llu", &major, &minor, op, &value) != 4)
      continue;
    if (!open) {
      json_gen_key(g, key);
      json_gen_array_open(g);
      open = true;
    }
    json_gen_object_open(g);
    cg_gen_uint_nz(g, "major", major);
    cg_gen_uint_nz(g, "minor", minor);
    json_gen_kv_string(g, "op", op);
    cg_gen_uint_nz(g, "value", value);
    json_gen_object_close(g);
  }
  if (open)
    json_gen_array_close(g);
}

static void stats_blkio(int fd, struct json_gen *g) {
  json_gen_object_open(g);
  if (fd >= 0) {
    /* CFQ's files, else BFQ's, else the throttling layer's. */
    const char *prefix = "blkio.throttle.";
    if (cg_exists(fd, "blkio.io_service_bytes_recursive"))
      prefix = "blkio.";
    else if (cg_exists(fd, "blkio.bfq.io_service_bytes_recursive"))
      prefix = "blkio.bfq.";
    char bytes[96], ios[96];
    snprintf(bytes, sizeof(bytes), "%sio_service_bytes_recursive", prefix);
    snprintf(ios, sizeof(ios), "%sio_serviced_recursive", prefix);
    gen_blkio_entries(g, fd, bytes, "ioServiceBytesRecursive");
    gen_blkio_entries(g, fd, ios, "ioServicedRecursive");
  }
  json_gen_object_close(g);
}

static void stats_hugetlb(int fd, char *const *sizes, struct json_gen *g) {
  json_gen_object_open(g);
  for (size_t i = 0; fd >= 0 && sizes && sizes[i]; i++) {
    char file[96];
    json_gen_key(g, sizes[i]);
    json_gen_object_open(g);
    snprintf(file, sizeof(file), "hugetlb.%s.usage_in_bytes", sizes[i]);
    cg_gen_uint_nz(g, "usage", read_u64_or_0(fd, file));
    snprintf(file, sizeof(file), "hugetlb.%s.max_usage_in_bytes", sizes[i]);
    cg_gen_uint_nz(g, "max", read_u64_or_0(fd, file));
    snprintf(file, sizeof(file), "hugetlb.%s.failcnt", sizes[i]);
    json_gen_key(g, "failcnt");
    json_gen_uint(g, read_u64_or_0(fd, file));
    json_gen_object_close(g);
  }
  json_gen_object_close(g);
}

/* ---- usage --------------------------------------------------------------- */

static bool usage_memory(int fd, uint64_t *current, uint64_t *peak) {
  return fd >= 0 && cg_read_u64(fd, "memory.usage_in_bytes", current) &&
         cg_read_u64(fd, "memory.max_usage_in_bytes", peak);
}

static bool usage_cpu(int cpuacct_fd, uint64_t *ns) {
  return cpuacct_fd >= 0 && cg_read_u64(cpuacct_fd, "cpuacct.usage", ns);
}

/* ---- the table ----------------------------------------------------------- */

const struct cgroup_ops cgroup_ops_v1 = {
    .set_memory = set_memory,
    .set_cpu = set_cpu,
    .set_cpuset = set_cpuset,
    .set_pids = cg_set_pids,
    .set_blkio = set_blkio,
    .set_hugetlb = set_hugetlb,
    .set_rdma = cg_set_rdma,
    .set_devices = set_devices,
    .freeze = freeze,
    .is_frozen = is_frozen,
    .kill = kill_at_once,
    .oom_count = oom_count,
    .oom_watch = oom_watch,
    .stats_cpu = stats_cpu,
    .stats_memory = stats_memory,
    .stats_blkio = stats_blkio,
    .stats_hugetlb = stats_hugetlb,
    .usage_memory = usage_memory,
    .usage_cpu = usage_cpu,
};
