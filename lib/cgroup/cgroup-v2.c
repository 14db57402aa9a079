/* The cgroup v2 backend: one tree, controllers enabled per level through
 * cgroup.subtree_control, devices filtered by an eBPF program.  The
 * operations both versions have are reached through cgroup_ops_v2 (the
 * table is at the end); what only v2 has (the tree itself, enabling a
 * controller, linux.resources.unified) is declared in cgroup-v2.h.  It
 * builds on cgroup-common.c and bpf-devices.c, never on the interface
 * above it. */
#include "cgroup/cgroup-v2.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cgroup/bpf-devices.h"
#include "cgroup/cgroup-common.h"

/* ---- writing, with the usual reason for a missing file spelled out ------- */

static bool controller_available(int fd, const char *file) {
  const char *dot = strchr(file, '.');
  if (dot == NULL)
    return true;
  cleanup_free char *name = xstrndup(file, (size_t)(dot - file));
  if (strcmp(name, "cgroup") == 0)
    return true;
  cleanup_free char *list = NULL;
  cell_error *e = NULL;
  if (cg_read(fd, "cgroup.controllers", &list, &e) < 0) {
    cell_error_free(&e);
    return true;
  }
  return cg_list_has(list, name);
}

static int v2_write(int fd, const char *file, const char *value,
                    const char *field, cell_error **err) {
  if (cg_write(fd, file, value, field, err) == 0)
    return 0;
  if ((*err)->errnum == ENOENT && !controller_available(fd, file)) {
    const char *dot = strchr(file, '.');
    cell_fail(
        err, 0,
        "%s: write %s: the %.*s controller is not available in this cgroup",
        field, file, (int)(dot - file), file);
    (*err)->errnum = ENOENT;
  }
  return -1;
}

static int v2_writef(int fd, const char *file, const char *field,
                     cell_error **err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int v2_writef(int fd, const char *file, const char *field,
                     cell_error **err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *value = NULL;
  int n = vasprintf(&value, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  int r = v2_write(fd, file, value, field, err);
  free(value);
  return r;
}

/* ---- the tree: directories and subtree_control --------------------------- */

/* Enable in the cgroup at fd (shown as `shown` in errors) the controllers
 * its children need: `only` or, when NULL, every one it has. */
static int enable_at(int fd, const char *shown, const char *only,
                     cell_error **err) {
  cleanup_free char *avail = NULL, *enabled = NULL;
  if (cg_read(fd, "cgroup.controllers", &avail, err) < 0 ||
      cg_read(fd, "cgroup.subtree_control", &enabled, err) < 0)
    return cell_error_wrap(err, "cgroup `%s`", shown);
  if (only && !cg_list_has(avail, only))
    return cell_fail(err, ENODEV, "cgroup `%s`: no %s controller", shown, only);
  char *missing = NULL;
  size_t len = 0;
  for (const char *p = avail; *p;) {
    p += strspn(p, " ");
    size_t w = strcspn(p, " ");
    if (w == 0)
      break;
    cleanup_free char *name = xstrndup(p, w);
    p += w;
    if ((only && strcmp(name, only) != 0) || cg_list_has(enabled, name))
      continue;
    missing = xrealloc(missing, len + w + 3);
    len += (size_t)sprintf(missing + len, "%s+%s", len ? " " : "", name);
  }
  if (missing == NULL)
    return 0;
  cleanup_free char *all = missing;
  cell_error *e = NULL;
  if (cg_write(fd, "cgroup.subtree_control", all, NULL, &e) == 0)
    return 0;
  if (only) {
    *err = e;
    return cell_error_wrap(err, "cgroup `%s`: enable %s", shown, only);
  }
  /* One controller the kernel refuses (cpu with a realtime task, say)
   * should not cost the others; whoever needs it reports its absence. */
  log_debug("cgroup: `%s`: enable %s: %s; one by one", shown, all, e->msg);
  cell_error_free(&e);
  char *save = NULL;
  for (char *tok = strtok_r(all, " ", &save); tok;
       tok = strtok_r(NULL, " ", &save)) {
    if (cg_write(fd, "cgroup.subtree_control", tok, NULL, &e) < 0) {
      log_debug("cgroup: `%s`: enable %s: %s", shown, tok, e->msg);
      cell_error_free(&e);
    }
  }
  return 0;
}

/* Walk from the mount down path, calling at each ancestor (not the leaf)
 * enable_at when enabling, and making the missing directories. */
static int walk(const char *mount, const char *path, bool make, bool enable,
                const char *only, bool *made, cell_error **err) {
  cleanup_close int fd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", mount);
  cleanup_free char *copy = xstrdup(path);
  cleanup_free char *shown = xstrdup(mount);
  char *save = NULL;
  for (char *comp = strtok_r(copy, "/", &save); comp;) {
    char *next = strtok_r(NULL, "/", &save);
    if (enable && enable_at(fd, shown, only, err) < 0)
      return -1;
    char *child_shown = xasprintf("%s/%s", shown, comp);
    free(shown);
    shown = child_shown;
    if (make) {
      bool created = mkdirat(fd, comp, 0755) == 0;
      if (!created && errno != EEXIST)
        return cell_fail_errno(err, "create cgroup `%s`", shown);
      if (next == NULL && made)
        *made = created;
    }
    int child = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (child < 0)
      return cell_fail_errno(err, "open cgroup `%s`", shown);
    close(fd);
    fd = child;
    comp = next;
  }
  return steal_fd(&fd);
}

int cgv2_make(const char *mount, const char *path, bool enable_all, bool *made,
              cell_error **err) {
  *made = false;
  return walk(mount, path, true, enable_all, NULL, made, err);
}

int cgv2_enable(const char *mount, const char *path, const char *controller,
                cell_error **err) {
  int fd = walk(mount, path, false, true, controller, NULL, err);
  if (fd < 0)
    return -1;
  close(fd);
  return 0;
}

/* ---- memory -------------------------------------------------------------- */

/* The spec's swap is memory+swap (v1's memsw); memory.swap.max is swap
 * alone.  runc's conversion, including its reading of 0 as "not set" and
 * of an unlimited memory with no swap as "swap unlimited too". */
static int swap_max_value(int64_t limit, int64_t swap, char *buf, size_t size,
                          cell_error **err) {
  buf[0] = '\0';
  if ((limit == -1 && swap == 0) || swap == -1) {
    snprintf(buf, size, "max");
    return 0;
  }
  if (swap == 0)
    return 0;
  if (swap < 0)
    return cell_fail(err, EINVAL,
                     "linux.resources.memory.swap: invalid value %lld",
                     (long long)swap);
  if (limit <= 0)
    return cell_fail(
        err, EINVAL,
        "linux.resources.memory.swap: a swap limit needs a memory limit");
  if (swap < limit)
    return cell_fail(err, EINVAL,
                     "linux.resources.memory.swap: %lld is below memory.limit "
                     "%lld (swap counts memory+swap)",
                     (long long)swap, (long long)limit);
  snprintf(buf, size, "%lld", (long long)(swap - limit));
  return 0;
}

static int set_memory(int fd, const struct spec_memory *m, bool update,
                      cell_error **err) {
  int64_t limit = m->limit ? *m->limit : 0;
  int64_t swap = m->swap ? *m->swap : 0;
  if (update && m->check_before_update && *m->check_before_update &&
      limit > 0) {
    uint64_t usage;
    if (cg_read_u64(fd, "memory.current", &usage) && (uint64_t)limit < usage)
      return cell_fail(err, EBUSY,
                       "linux.resources.memory.limit: %lld is below the "
                       "current usage %" PRIu64 " (checkBeforeUpdate)",
                       (long long)limit, usage);
  }
  char value[32];
  if (swap_max_value(limit, swap, value, sizeof(value), err) < 0)
    return -1;
  if (value[0]) {
    cell_error *e = NULL;
    if (cg_write(fd, "memory.swap.max", value, "linux.resources.memory.swap",
                 &e) < 0) {
      /* Without swap accounting there is nothing to limit, which is fine
       * for "unlimited" and "none". */
      bool trivial = strcmp(value, "max") == 0 || strcmp(value, "0") == 0;
      if (e->errnum != ENOENT || !trivial) {
        *err = e;
        return -1;
      }
      cell_error_free(&e);
    }
  }
  if (limit != 0) {
    cg_fmt_limit_v2(limit, value, sizeof(value));
    if (v2_write(fd, "memory.max", value, "linux.resources.memory.limit", err) <
        0)
      return -1;
  }
  if (m->reservation && *m->reservation != 0) {
    cg_fmt_limit_v2(*m->reservation, value, sizeof(value));
    if (v2_write(fd, "memory.low", value, "linux.resources.memory.reservation",
                 err) < 0)
      return -1;
  }
  if (m->kernel || m->kernel_tcp)
    log_debug("cgroup: linux.resources.memory.kernel/kernelTCP: no such limit "
              "in cgroup v2, ignored");
  if (m->swappiness)
    log_debug("cgroup: linux.resources.memory.swappiness: no such knob in "
              "cgroup v2, ignored");
  if (m->disable_oom_killer && *m->disable_oom_killer)
    log_debug("cgroup: linux.resources.memory.disableOOMKiller: no such knob "
              "in cgroup v2, ignored");
  return 0;
}

/* ---- cpu, cpuset --------------------------------------------------------- */

/* cpu.shares (2..262144, default 1024) to cpu.weight (1..10000, default
 * 100): the linear map runc and crun use. */
static uint64_t shares_to_weight(uint64_t shares) {
  if (shares < 2)
    shares = 2;
  if (shares > 262144)
    shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

/* cpu.max is "QUOTA PERIOD"; an update that gives only the period keeps
 * the current quota. */
static int set_cpu_max(int fd, const struct spec_cpu *c, bool update,
                       cell_error **err) {
  bool has_quota = c->quota && *c->quota != 0;
  bool has_period = c->period && *c->period != 0;
  if (!has_quota && !has_period)
    return 0;
  char quota[32] = "max";
  if (has_quota) {
    cg_fmt_limit_v2(*c->quota, quota, sizeof(quota));
  } else if (update) {
    cleanup_free char *cur = NULL;
    cell_error *e = NULL;
    if (cg_read(fd, "cpu.max", &cur, &e) == 0)
      snprintf(quota, sizeof(quota), "%.*s", (int)strcspn(cur, " "), cur);
    cell_error_free(&e);
  }
  const char *field =
      has_quota ? "linux.resources.cpu.quota" : "linux.resources.cpu.period";
  if (has_period)
    return v2_writef(fd, "cpu.max", field, err, "%s %" PRIu64, quota,
                     *c->period);
  return v2_write(fd, "cpu.max", quota, field, err);
}

static int set_cpu(int fd, const struct spec_cpu *c, bool update,
                   cell_error **err) {
  if ((c->realtime_runtime && *c->realtime_runtime != 0) ||
      (c->realtime_period && *c->realtime_period != 0))
    return cell_fail(err, ENOTSUP,
                     "linux.resources.cpu.%s: realtime scheduling limits do "
                     "not exist in cgroup v2",
                     c->realtime_runtime ? "realtimeRuntime"
                                         : "realtimePeriod");
  if (c->shares && *c->shares != 0 &&
      v2_writef(fd, "cpu.weight", "linux.resources.cpu.shares", err, "%" PRIu64,
                shares_to_weight(*c->shares)) < 0)
    return -1;
  if (set_cpu_max(fd, c, update, err) < 0)
    return -1;
  if (c->burst && v2_writef(fd, "cpu.max.burst", "linux.resources.cpu.burst",
                            err, "%" PRIu64, *c->burst) < 0)
    return -1;
  if (c->idle && v2_writef(fd, "cpu.idle", "linux.resources.cpu.idle", err,
                           "%lld", (long long)*c->idle) < 0)
    return -1;
  return 0;
}

static int set_cpuset(int fd, const struct spec_cpu *c, cell_error **err) {
  if (c->cpus && *c->cpus &&
      v2_write(fd, "cpuset.cpus", c->cpus, "linux.resources.cpu.cpus", err) < 0)
    return -1;
  if (c->mems && *c->mems &&
      v2_write(fd, "cpuset.mems", c->mems, "linux.resources.cpu.mems", err) < 0)
    return -1;
  return 0;
}

/* ---- io ------------------------------------------------------------------ */

/* blkio.weight (10..1000) to io.weight (1..10000). */
static uint64_t blkio_to_io_weight(uint64_t w) {
  if (w < 10)
    w = 10;
  if (w > 1000)
    w = 1000;
  return 1 + (w - 10) * 9999 / 990;
}

static int set_io_max(int fd, const char *key, const char *name,
                      const struct spec_throttle_device *t, size_t n,
                      cell_error **err) {
  for (size_t i = 0; i < n; i++) {
    cleanup_free char *field =
        xasprintf("linux.resources.blockIO.%s[%zu]", name, i);
    if (v2_writef(fd, "io.max", field, err, "%lld:%lld %s=%" PRIu64,
                  (long long)t[i].major, (long long)t[i].minor, key,
                  t[i].rate) < 0)
      return -1;
  }
  return 0;
}

/* BFQ takes blkio's 1..1000 weights as they are; the io.weight of the
 * io.cost controller wants them scaled. */
static int set_io(int fd, const struct spec_block_io *b, cell_error **err) {
  bool bfq = cg_exists(fd, "io.bfq.weight");
  if (b->weight) {
    int r =
        bfq ? v2_writef(fd, "io.bfq.weight", "linux.resources.blockIO.weight",
                        err, "%u", (unsigned)*b->weight)
            : v2_writef(fd, "io.weight", "linux.resources.blockIO.weight", err,
                        "default %" PRIu64, blkio_to_io_weight(*b->weight));
    if (r < 0)
      return -1;
  }
  if (b->leaf_weight)
    log_debug("cgroup: linux.resources.blockIO.leafWeight: no such knob in "
              "cgroup v2, ignored");
  for (size_t i = 0; i < b->n_weight_device; i++) {
    const struct spec_weight_device *w = &b->weight_device[i];
    if (w->weight == NULL)
      continue;
    cleanup_free char *field =
        xasprintf("linux.resources.blockIO.weightDevice[%zu]", i);
    uint64_t weight = bfq ? *w->weight : blkio_to_io_weight(*w->weight);
    if (v2_writef(fd, bfq ? "io.bfq.weight" : "io.weight", field, err,
                  "%lld:%lld %" PRIu64, (long long)w->major,
                  (long long)w->minor, weight) < 0)
      return -1;
  }
  return set_io_max(fd, "rbps", "throttleReadBpsDevice",
                    b->throttle_read_bps_device, b->n_throttle_read_bps_device,
                    err) < 0 ||
                 set_io_max(fd, "wbps", "throttleWriteBpsDevice",
                            b->throttle_write_bps_device,
                            b->n_throttle_write_bps_device, err) < 0 ||
                 set_io_max(fd, "riops", "throttleReadIOPSDevice",
                            b->throttle_read_iops_device,
                            b->n_throttle_read_iops_device, err) < 0 ||
                 set_io_max(fd, "wiops", "throttleWriteIOPSDevice",
                            b->throttle_write_iops_device,
                            b->n_throttle_write_iops_device, err) < 0
             ? -1
             : 0;
}

/* ---- hugetlb, unified, devices ------------------------------------------- */

static int set_hugetlb(int fd, const struct spec_hugepage_limit *h, size_t n,
                       cell_error **err) {
  for (size_t i = 0; i < n; i++) {
    char file[64];
    snprintf(file, sizeof(file), "hugetlb.%s.max", h[i].page_size);
    cleanup_free char *field =
        xasprintf("linux.resources.hugepageLimits[%zu].limit", i);
    if (v2_writef(fd, file, field, err, "%" PRIu64, h[i].limit) < 0)
      return -1;
  }
  return 0;
}

int cgv2_set_unified(int fd, const struct spec_kv *kv, size_t n,
                     cell_error **err) {
  for (size_t i = 0; i < n; i++) {
    const char *key = kv[i].key;
    cleanup_free char *field = xasprintf("linux.resources.unified.%s", key);
    if (key[0] == '\0' || key[0] == '.' || strchr(key, '/') != NULL)
      return cell_fail(err, EINVAL, "%s: not a cgroup file name", field);
    if (v2_write(fd, key, kv[i].value ? kv[i].value : "", field, err) < 0)
      return -1;
  }
  return 0;
}

static int set_devices(int fd, const struct dev_rule *rules, size_t n,
                       cell_error **err) {
  if (bpf_devices_apply(fd, rules, n, err) < 0)
    return cell_error_wrap(err, "linux.resources.devices");
  return 0;
}

/* ---- freezer, kill ------------------------------------------------------- */

enum { FREEZE_TIMEOUT_MS = 5000 };

static int read_frozen(int events_fd, uint64_t *frozen) {
  char buf[512];
  ssize_t n = pread(events_fd, buf, sizeof(buf) - 1, 0);
  if (n < 0)
    return -1;
  buf[n] = '\0';
  return cg_keyed_u64(buf, "frozen", frozen) ? 0 : -1;
}

/* cgroup.events says "frozen 1" once every task has stopped; the kernel
 * signals its changes as POLLPRI. */
static int freeze(int fd, bool frozen, cell_error **err) {
  if (cg_write(fd, "cgroup.freeze", frozen ? "1" : "0", NULL, err) < 0)
    return -1;
  cleanup_close int events = openat(fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
  if (events < 0)
    return cell_fail_errno(err, "open cgroup.events");
  long long deadline = cg_now_ms() + FREEZE_TIMEOUT_MS;
  for (;;) {
    uint64_t state = 0;
    if (read_frozen(events, &state) < 0)
      return cell_fail(err, EIO, "read cgroup.events: no `frozen` line");
    if ((state == 1) == frozen)
      return 0;
    long long left = deadline - cg_now_ms();
    if (left <= 0)
      break;
    struct pollfd p = {.fd = events, .events = POLLPRI};
    /* Wake up now and then anyway: a notification may come between the
     * read and the poll. */
    if (poll(&p, 1, left < 50 ? (int)left : 50) < 0 && errno != EINTR)
      return cell_fail_errno(err, "poll cgroup.events");
  }
  if (frozen) {
    cell_error *ignored = NULL;
    cg_write(fd, "cgroup.freeze", "0", NULL, &ignored);
    cell_error_free(&ignored);
  }
  return cell_fail(err, EBUSY, "cgroup.events: not %s after %d ms",
                   frozen ? "frozen" : "thawed", FREEZE_TIMEOUT_MS);
}

/* What was asked (cgroup.freeze), as runc reports it: cgroup.events
 * flickers to "frozen 0" while a frozen task handles a signal. */
static bool is_frozen(int fd) {
  uint64_t v = 0;
  return cg_read_u64(fd, "cgroup.freeze", &v) && v == 1;
}

/* cgroup.kill: 1 when written, 0 when the kernel has no such file. */
static int kill_at_once(int fd, cell_error **err) {
  if (!cg_exists(fd, "cgroup.kill"))
    return 0; /* before Linux 5.14 */
  if (cg_write(fd, "cgroup.kill", "1", NULL, err) < 0)
    return -1;
  return 1;
}

static int oom_count(int fd, unsigned long long *n, cell_error **err) {
  cleanup_free char *text = NULL;
  if (cg_read(fd, "memory.events", &text, err) < 0)
    return -1;
  uint64_t v = 0;
  cg_keyed_u64(text, "oom_kill", &v);
  *n = v;
  return 0;
}

/* cgroup v2 notifies changes of memory.events as file modifications. */
static int oom_watch(int fd, cell_error **err) {
  int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ifd < 0)
    return cell_fail_errno(err, "inotify_init1");
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d/memory.events", fd);
  if (inotify_add_watch(ifd, path, IN_MODIFY) < 0) {
    cell_fail_errno(err, "watch memory.events");
    close(ifd);
    return -1;
  }
  return ifd;
}

/* ---- stats --------------------------------------------------------------- */

static uint64_t keyed_or_0(const char *text, const char *key) {
  uint64_t v = 0;
  if (text)
    cg_keyed_u64(text, key, &v);
  return v;
}

static char *read_or_null(int fd, const char *file) {
  char *text = NULL;
  cell_error *e = NULL;
  if (fd < 0 || cg_read(fd, file, &text, &e) < 0) {
    cell_error_free(&e);
    return NULL;
  }
  return text;
}

/* cpu.stat has what v1 splits between cpu and cpuacct: cpuacct_fd is the
 * same directory, unused. */
static void stats_cpu(int fd, int cpuacct_fd, struct json_gen *g) {
  cleanup_free char *stat = read_or_null(fd, "cpu.stat");
  json_gen_object_open(g);
  json_gen_key(g, "usage");
  json_gen_object_open(g);
  cg_gen_uint_nz(g, "total", keyed_or_0(stat, "usage_usec") * 1000);
  json_gen_key(g, "kernel");
  json_gen_uint(g, keyed_or_0(stat, "system_usec") * 1000);
  json_gen_key(g, "user");
  json_gen_uint(g, keyed_or_0(stat, "user_usec") * 1000);
  json_gen_object_close(g);
  json_gen_key(g, "throttling");
  json_gen_object_open(g);
  cg_gen_uint_nz(g, "periods", keyed_or_0(stat, "nr_periods"));
  cg_gen_uint_nz(g, "throttled_periods", keyed_or_0(stat, "nr_throttled"));
  cg_gen_uint_nz(g, "throttled_time",
                 keyed_or_0(stat, "throttled_usec") * 1000);
  json_gen_object_close(g);
  json_gen_object_close(g);
}

static uint64_t u64_or(int fd, const char *file, uint64_t dflt) {
  uint64_t v;
  return cg_read_u64(fd, file, &v) ? v : dflt;
}

static void stats_memory(int fd, struct json_gen *g) {
  json_gen_object_open(g);
  if (fd >= 0) {
    cleanup_free char *stat = read_or_null(fd, "memory.stat");
    cleanup_free char *events = read_or_null(fd, "memory.events");
    cleanup_free char *swap_events = read_or_null(fd, "memory.swap.events");
    cg_gen_uint_nz(g, "cache", keyed_or_0(stat, "file"));
    uint64_t usage = u64_or(fd, "memory.current", 0);
    uint64_t limit = u64_or(fd, "memory.max", UINT64_MAX);
    cg_gen_memory_entry(g, "usage", limit, usage, u64_or(fd, "memory.peak", 0),
                        keyed_or_0(events, "max"));
    /* v1 reported swap as memory+swap; runc keeps that on v2. */
    uint64_t swap_limit = u64_or(fd, "memory.swap.max", UINT64_MAX);
    if (swap_limit != UINT64_MAX && limit != UINT64_MAX)
      swap_limit += limit;
    cg_gen_memory_entry(
        g, "swap", swap_limit, u64_or(fd, "memory.swap.current", 0) + usage,
        u64_or(fd, "memory.swap.peak", 0), keyed_or_0(swap_events, "max"));
    json_gen_key(g, "raw");
    cg_gen_keyed_file(g, fd, "memory.stat");
  }
  json_gen_object_close(g);
}

static void gen_io_entries(struct json_gen *g, const char *stat,
                           const char *key, const char *read_key,
                           const char *write_key) {
  bool open = false;
  for (const char *line = stat; line && *line;) {
    unsigned long long major, minor;
    int used = 0;
    if (sscanf(line, "%llu:%llu %n", &major, &minor, &used) == 2 && used > 0) {
      size_t len = strcspn(line, "\n");
      cleanup_free char *copy = xstrndup(line + used, len - (size_t)used);
      static const char *const ops[] = {"Read", "Write"};
      const char *keys[] = {read_key, write_key};
      for (size_t i = 0; i < 2; i++) {
        char want[16];
        snprintf(want, sizeof(want), "%s=", keys[i]);
        char *at = strstr(copy, want);
        if (at == NULL)
          continue;
        if (!open) {
          json_gen_key(g, key);
          json_gen_array_open(g);
          open = true;
        }
        json_gen_object_open(g);
        cg_gen_uint_nz(g, "major", major);
        cg_gen_uint_nz(g, "minor", minor);
        json_gen_kv_string(g, "op", ops[i]);
        cg_gen_uint_nz(g, "value", strtoull(at + strlen(want), NULL, 10));
        json_gen_object_close(g);
      }
    }
    line = strchr(line, '\n');
    if (line)
      line++;
  }
  if (open)
    json_gen_array_close(g);
}

static void stats_io(int fd, struct json_gen *g) {
  cleanup_free char *stat = read_or_null(fd, "io.stat");
  json_gen_object_open(g);
  gen_io_entries(g, stat, "ioServiceBytesRecursive", "rbytes", "wbytes");
  gen_io_entries(g, stat, "ioServicedRecursive", "rios", "wios");
  json_gen_object_close(g);
}

static void stats_hugetlb(int fd, char *const *sizes, struct json_gen *g) {
  json_gen_object_open(g);
  for (size_t i = 0; fd >= 0 && sizes && sizes[i]; i++) {
    char file[96];
    snprintf(file, sizeof(file), "hugetlb.%s.current", sizes[i]);
    if (!cg_exists(fd, file))
      continue;
    json_gen_key(g, sizes[i]);
    json_gen_object_open(g);
    cg_gen_uint_nz(g, "usage", u64_or(fd, file, 0));
    snprintf(file, sizeof(file), "hugetlb.%s.events", sizes[i]);
    uint64_t failcnt = 0;
    cg_read_keyed_u64(fd, file, "max", &failcnt);
    json_gen_key(g, "failcnt");
    json_gen_uint(g, failcnt);
    json_gen_object_close(g);
  }
  json_gen_object_close(g);
}

/* ---- the table ----------------------------------------------------------- */

/* memory.peak came in Linux 5.19: without it the peak is unknown, and
 * the current value stands in for it (never below what is in use). */
static bool usage_memory(int fd, uint64_t *current, uint64_t *peak) {
  if (fd < 0 || !cg_read_u64(fd, "memory.current", current))
    return false;
  if (!cg_read_u64(fd, "memory.peak", peak))
    *peak = *current;
  return true;
}

/* cpu.stat's usage_usec, in ns; fd is the cgroup2 directory. */
static bool usage_cpu(int fd, uint64_t *ns) {
  uint64_t usec;
  if (fd < 0 || !cg_read_keyed_u64(fd, "cpu.stat", "usage_usec", &usec))
    return false;
  *ns = usec * 1000;
  return true;
}

const struct cgroup_ops cgroup_ops_v2 = {
    .set_memory = set_memory,
    .set_cpu = set_cpu,
    .set_cpuset = set_cpuset,
    .set_pids = cg_set_pids,
    .set_blkio = set_io,
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
    .stats_blkio = stats_io,
    .stats_hugetlb = stats_hugetlb,
    .usage_memory = usage_memory,
    .usage_cpu = usage_cpu,
};
