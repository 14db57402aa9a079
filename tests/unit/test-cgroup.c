/* The cgroup layer (cgroup.c and the files behind it: the v1 and v2
 * backends, bpf-devices.c) against the real
 * kernel: run as root, on a hybrid host (v1 controllers) or a cgroup v2
 * one.  Everything is made under /cell-test-cg-<pid> and removed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "cgroup/bpf-devices.h"
#include "cgroup/cgroup-v1.h"
#include "cgroup/cgroup-v2.h"
#include "cgroup/cgroup.h"
#include "unit.h"

static enum cgroup_layout layout;
static char parent[64]; /* "/cell-test-cg-<pid>" */

/* ---- helpers ------------------------------------------------------------- */

static char last_msg[2048];
static const char *msg_of(int r, cell_error **err) {
  last_msg[0] = '\0';
  if (r < 0 && *err)
    snprintf(last_msg, sizeof(last_msg), "%s", (*err)->msg);
  cell_error_free(err);
  return last_msg;
}

static bool unified(void) { return layout == CGROUP_UNIFIED; }

/* Where a controller's file of cgroup path lives on this host. */
static char *file_of(const char *controller, const char *path,
                     const char *file) {
  if (unified())
    return xasprintf("/sys/fs/cgroup%s/%s", path, file);
  return xasprintf("/sys/fs/cgroup/%s%s/%s", controller, path, file);
}

static char *read_text(const char *path) {
  char *text = NULL;
  cell_error *err = NULL;
  if (cell_read_file_at(AT_FDCWD, path, 0, &text, NULL, &err) < 0) {
    cell_error_free(&err);
    return NULL;
  }
  size_t n = strlen(text);
  while (n > 0 && text[n - 1] == '\n')
    text[--n] = '\0';
  return text;
}

static char *read_cg(const char *controller, const char *path,
                     const char *file) {
  cleanup_free char *p = file_of(controller, path, file);
  return read_text(p);
}

static bool dir_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Every hierarchy root the test may have touched. */
static const char *const v1_roots[] = {"/sys/fs/cgroup/cpu",
                                       "/sys/fs/cgroup/cpuacct",
                                       "/sys/fs/cgroup/cpuset",
                                       "/sys/fs/cgroup/memory",
                                       "/sys/fs/cgroup/devices",
                                       "/sys/fs/cgroup/freezer",
                                       "/sys/fs/cgroup/blkio",
                                       "/sys/fs/cgroup/pids",
                                       "/sys/fs/cgroup/systemd",
                                       "/sys/fs/cgroup/unified",
                                       "/sys/fs/cgroup/net_cls",
                                       "/sys/fs/cgroup/net_prio",
                                       "/sys/fs/cgroup/hugetlb",
                                       "/sys/fs/cgroup/perf_event",
                                       "/sys/fs/cgroup/rdma",
                                       "/sys/fs/cgroup/misc",
                                       NULL};

/* Is there a directory for cgroup path in any hierarchy? */
static bool exists_anywhere(const char *path) {
  if (unified()) {
    cleanup_free char *p = xasprintf("/sys/fs/cgroup%s", path);
    return dir_exists(p);
  }
  for (size_t i = 0; v1_roots[i]; i++) {
    cleanup_free char *p = xasprintf("%s%s", v1_roots[i], path);
    if (dir_exists(p))
      return true;
  }
  return false;
}

static void rmdir_tree(const char *path) {
  DIR *d = opendir(path);
  if (d == NULL)
    return;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.')
      continue;
    cleanup_free char *child = xasprintf("%s/%s", path, e->d_name);
    rmdir_tree(child);
  }
  closedir(d);
  rmdir(path);
}

static void remove_everywhere(const char *path) {
  if (unified()) {
    cleanup_free char *p = xasprintf("/sys/fs/cgroup%s", path);
    rmdir_tree(p);
    return;
  }
  for (size_t i = 0; v1_roots[i]; i++) {
    cleanup_free char *p = xasprintf("%s%s", v1_roots[i], path);
    rmdir_tree(p);
  }
}

static void rmdir_everywhere(const char *path) {
  if (unified()) {
    cleanup_free char *p = xasprintf("/sys/fs/cgroup%s", path);
    rmdir(p);
    return;
  }
  for (size_t i = 0; v1_roots[i]; i++) {
    cleanup_free char *p = xasprintf("%s%s", v1_roots[i], path);
    rmdir(p);
  }
}

/* A spec with only what the cgroup code reads. */
struct fixture {
  struct spec spec;
  struct spec_linux linux_;
  struct spec_resources res;
  struct spec_memory mem;
  struct spec_cpu cpu;
  struct spec_device_rule dev[4];
  struct spec_block_io blkio;
  struct spec_throttle_device throttle;
  int64_t limit, pids, quota, minor_null, minor_zero, major_mem;
  uint64_t shares, period;
  char path[128];
};

static void fixture_init(struct fixture *f, const char *name) {
  memset(f, 0, sizeof(*f));
  f->spec.linux_ = &f->linux_;
  f->linux_.resources = &f->res;
  snprintf(f->path, sizeof(f->path), "%s/%s", parent, name);
  f->linux_.cgroups_path = f->path;
}

/* memory 64 MiB, pids 32, shares 512, quota 50ms/100ms, deny /dev/null. */
static void fixture_full(struct fixture *f, const char *name) {
  fixture_init(f, name);
  f->limit = 64 << 20;
  f->pids = 32;
  f->shares = 512;
  f->quota = 50000;
  f->period = 100000;
  f->mem.limit = &f->limit;
  f->cpu.shares = &f->shares;
  f->cpu.quota = &f->quota;
  f->cpu.period = &f->period;
  f->res.memory = &f->mem;
  f->res.cpu = &f->cpu;
  f->res.pids_limit = &f->pids;
  f->major_mem = 1;
  f->minor_null = 3;
  f->dev[0] = (struct spec_device_rule){.allow = false, .access = "rwm"};
  f->dev[1] = (struct spec_device_rule){.allow = false,
                                        .type = "c",
                                        .major = &f->major_mem,
                                        .minor = &f->minor_null,
                                        .access = "rwm"};
  f->res.devices = f->dev;
  f->res.n_devices = 2;
  f->cpu.cpus = "0";
  /* loop0 (7:0) is there on the build machines and in the VM. */
  f->throttle =
      (struct spec_throttle_device){.major = 7, .minor = 0, .rate = 1 << 20};
  f->blkio.throttle_read_bps_device = &f->throttle;
  f->blkio.n_throttle_read_bps_device = 1;
  f->res.block_io = &f->blkio;
}

static struct cgroup *create(struct fixture *f) {
  struct cgroup *cg = NULL;
  cell_error *err = NULL;
  if (cgroup_create(&f->spec, "unused", &cg, &err) < 0) {
    fprintf(stderr, "cgroup_create %s: %s\n", f->path, err->msg);
    cell_error_free(&err);
    return NULL;
  }
  return cg;
}

static int destroy(struct cgroup *cg) {
  cell_error *err = NULL;
  int r = cgroup_destroy(cg, &err);
  if (r < 0)
    fprintf(stderr, "cgroup_destroy: %s\n", err->msg);
  cell_error_free(&err);
  cgroup_free(cg);
  return r;
}

/* A child that waits for one byte on a pipe, then runs fn; the parent
 * moves it into the cgroup in between. */
struct child {
  pid_t pid;
  int go; /* write end */
};

static struct child spawn(int (*fn)(void *), void *arg) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    abort();
  fflush(stdout); /* valgrind's libc cleanup in the child would repeat it */
  pid_t pid = fork();
  if (pid == 0) {
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1)
      _exit(100);
    _exit(fn(arg));
  }
  close(p[0]);
  return (struct child){pid, p[1]};
}

static void release(struct child *c) {
  if (write(c->go, "x", 1) != 1)
    abort();
  close(c->go);
  c->go = -1;
}

static int wait_status(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return st;
}

static int enter(struct cgroup *cg, pid_t pid) {
  cell_error *err = NULL;
  int r = cgroup_enter(cg, pid, &err);
  if (r < 0)
    fprintf(stderr, "cgroup_enter: %s\n", err->msg);
  cell_error_free(&err);
  return r;
}

static bool has_pid(struct cgroup *cg, pid_t pid) {
  pid_t *pids = NULL;
  size_t n = 0;
  cell_error *err = NULL;
  bool found = false;
  if (cgroup_pids(cg, &pids, &n, &err) < 0) {
    fprintf(stderr, "cgroup_pids: %s\n", err->msg);
    cell_error_free(&err);
    return false;
  }
  for (size_t i = 0; i < n; i++)
    found |= pids[i] == pid;
  free(pids);
  return found;
}

/* ---- device policy (no kernel) ------------------------------------------- */

/* ---- the backends' tables ------------------------------------------------ */

typedef void (*any_fn)(void);
_Static_assert(sizeof(struct cgroup_ops) % sizeof(any_fn) == 0,
               "struct cgroup_ops holds function pointers only");
enum { N_OPS = sizeof(struct cgroup_ops) / sizeof(any_fn) };

/* The entries of a table left NULL, whatever fields it has now. */
static size_t null_entries(const struct cgroup_ops *ops) {
  any_fn slots[N_OPS];
  memcpy(slots, ops, sizeof(slots));
  size_t n = 0;
  for (size_t i = 0; i < N_OPS; i++)
    n += slots[i] == NULL;
  return n;
}

/* The interface calls through either table without checking for NULL. */
TEST(ops_tables_are_complete) {
  CHECK(null_entries(&cgroup_ops_v1) == 0);
  CHECK(null_entries(&cgroup_ops_v2) == 0);
  struct cgroup_ops partial = {0};
  CHECK(null_entries(&partial) == N_OPS);
  partial.freeze = cgroup_ops_v1.freeze;
  CHECK(null_entries(&partial) == N_OPS - 1);
}

TEST(device_policy_replays_v1_semantics) {
  struct dev_policy p;
  const struct dev_rule deny_all_allow_null[] = {
      {false, 'a', DEV_ANY, DEV_ANY, DEV_ACCESS_ALL},
      {true, 'c', 1, 3, DEV_ACCESS_ALL},
      {false, 'c', 1, 3, DEV_ACCESS_WRITE},
  };
  dev_policy_from_rules(deny_all_allow_null, 3, &p);
  CHECK(!p.default_allow);
  CHECK(p.n_exceptions == 1);
  CHECK(dev_policy_allows(&p, 'c', 1, 3, DEV_ACCESS_READ));
  CHECK(!dev_policy_allows(&p, 'c', 1, 3, DEV_ACCESS_WRITE));
  CHECK(!dev_policy_allows(&p, 'c', 1, 3, DEV_ACCESS_READ | DEV_ACCESS_WRITE));
  CHECK(!dev_policy_allows(&p, 'c', 1, 5, DEV_ACCESS_READ));
  CHECK(!dev_policy_allows(&p, 'b', 1, 3, DEV_ACCESS_READ));
  /* prologue 6 + (3 checks + 5) + epilogue 2 */
  CHECK(bpf_devices_program_len(&p) == 16);
  dev_policy_clear(&p);

  /* Default allow with a wildcard exception: v1 matches it partially. */
  const struct dev_rule allow_all_deny_block[] = {
      {true, 'a', DEV_ANY, DEV_ANY, DEV_ACCESS_ALL},
      {false, 'b', 8, DEV_ANY, DEV_ACCESS_WRITE},
  };
  dev_policy_from_rules(allow_all_deny_block, 2, &p);
  CHECK(p.default_allow);
  CHECK(dev_policy_allows(&p, 'b', 8, 1, DEV_ACCESS_READ));
  CHECK(!dev_policy_allows(&p, 'b', 8, 1, DEV_ACCESS_READ | DEV_ACCESS_WRITE));
  CHECK(dev_policy_allows(&p, 'c', 8, 1, DEV_ACCESS_WRITE));
  dev_policy_clear(&p);

  /* "a" resets what came before. */
  const struct dev_rule reset[] = {
      {true, 'c', 1, 3, DEV_ACCESS_ALL},
      {false, 'a', DEV_ANY, DEV_ANY, DEV_ACCESS_ALL},
  };
  dev_policy_from_rules(reset, 2, &p);
  CHECK(!p.default_allow && p.n_exceptions == 0);
  CHECK(!dev_policy_allows(&p, 'c', 1, 3, DEV_ACCESS_READ));
  dev_policy_clear(&p);

  char line[64];
  dev_rule_format(&deny_all_allow_null[1], line, sizeof(line));
  CHECK_STR(line, "c 1:3 rwm");
  dev_rule_format(&allow_all_deny_block[1], line, sizeof(line));
  CHECK_STR(line, "b 8:* w");
  dev_rule_format(&reset[1], line, sizeof(line));
  CHECK_STR(line, "a");
}

/* A v1 cgroup that denies by default moves to new rules one device at a
 * time: its children make the kernel refuse a reset. */
TEST(device_policy_transition_without_a_reset) {
  cell_error *err = NULL;
  struct dev_policy now, want;
  CHECK(dev_policy_parse_list("c 1:3 rwm\nc 10:200 rwm\nc 136:* rwm\n",
                              &now, &err) == 0);
  CHECK(!now.default_allow && now.n_exceptions == 3);
  CHECK(dev_policy_allows(&now, 'c', 136, 4, DEV_ACCESS_READ));
  /* tun taken away, fuse given, null narrowed to rw. */
  const struct dev_rule rules[] = {
      {false, 'a', DEV_ANY, DEV_ANY, DEV_ACCESS_ALL},
      {true, 'c', 1, 3, DEV_ACCESS_READ | DEV_ACCESS_WRITE},
      {true, 'c', 136, DEV_ANY, DEV_ACCESS_ALL},
      {true, 'c', 10, 229, DEV_ACCESS_ALL},
  };
  dev_policy_from_rules(rules, 4, &want);
  struct dev_rule *steps = NULL;
  size_t n = 0;
  CHECK(dev_policy_transition(&now, &want, &steps, &n));
  CHECK(n == 3);
  char line[64];
  /* What goes, first. */
  CHECK(!steps[0].allow);
  dev_rule_format(&steps[0], line, sizeof(line));
  CHECK_STR(line, "c 1:3 m");
  CHECK(!steps[1].allow);
  dev_rule_format(&steps[1], line, sizeof(line));
  CHECK_STR(line, "c 10:200 rwm");
  CHECK(steps[2].allow);
  dev_rule_format(&steps[2], line, sizeof(line));
  CHECK_STR(line, "c 10:229 rwm");
  /* Replayed on what the cgroup had, the steps give what was wanted. */
  struct dev_policy after;
  struct dev_rule replay[8] = {{false, 'a', DEV_ANY, DEV_ANY, DEV_ACCESS_ALL}};
  size_t len = 1;
  for (size_t i = 0; i < now.n_exceptions; i++)
    replay[len++] = now.exceptions[i];
  for (size_t i = 0; i < n; i++)
    replay[len++] = steps[i];
  dev_policy_from_rules(replay, len, &after);
  CHECK(!dev_policy_allows(&after, 'c', 10, 200, DEV_ACCESS_READ));
  CHECK(dev_policy_allows(&after, 'c', 10, 229, DEV_ACCESS_ALL));
  CHECK(dev_policy_allows(&after, 'c', 1, 3, DEV_ACCESS_READ | DEV_ACCESS_WRITE));
  CHECK(!dev_policy_allows(&after, 'c', 1, 3, DEV_ACCESS_MKNOD));
  free(steps);
  dev_policy_clear(&after);

  /* Nothing changes: no step. */
  CHECK(dev_policy_transition(&want, &want, &steps, &n) && n == 0);
  free(steps);
  dev_policy_clear(&now);

  /* A new cgroup (the kernel shows its default allow alone) needs the
   * reset: no steps. */
  CHECK(dev_policy_parse_list("a *:* rwm\n", &now, &err) == 0);
  CHECK(now.default_allow);
  CHECK(!dev_policy_transition(&now, &want, &steps, &n) && n == 0);
  dev_policy_clear(&now);
  dev_policy_clear(&want);

  CHECK(dev_policy_parse_list("c 1:3 rwx\n", &now, &err) < 0);
  CHECK(strstr(err->msg, "c 1:3 rwx") != NULL);
  cell_error_free(&err);
  CHECK(dev_policy_parse_list("", &now, &err) == 0);
  CHECK(!now.default_allow && now.n_exceptions == 0);
}

/* ---- layout, paths ------------------------------------------------------- */

TEST(detect_layout) {
  cell_error *err = NULL;
  enum cgroup_layout l;
  CHECK(cgroup_detect(&l, &err) == 0);
  cell_error_free(&err);
  bool v2_root = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
  bool v2_unified =
      access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) == 0;
  if (v2_root)
    CHECK(l == CGROUP_UNIFIED);
  else if (v2_unified)
    CHECK(l == CGROUP_HYBRID);
  else
    CHECK(l == CGROUP_LEGACY);
}

TEST(path_rules) {
  struct fixture f;
  fixture_init(&f, "x");
  cell_error *err = NULL;
  struct cgroup *cg = NULL;

  snprintf(f.path, sizeof(f.path), "%s/a/../../etc", parent);
  CHECK_CONTAINS(msg_of(cgroup_create(&f.spec, "id", &cg, &err), &err),
                 "linux.cgroupsPath: `");
  CHECK_CONTAINS(last_msg, "`..` is not allowed");
  CHECK(cg == NULL);

  snprintf(f.path, sizeof(f.path), "//./");
  CHECK_CONTAINS(msg_of(cgroup_create(&f.spec, "id", &cg, &err), &err),
                 "is the root cgroup");

  /* Absolute, with the slashes tidied. */
  snprintf(f.path, sizeof(f.path), "%s//./tidy/", parent);
  f.linux_.resources = NULL;
  cg = create(&f);
  CHECK(cg != NULL);
  if (cg) {
    cleanup_free char *want = xasprintf("%s/tidy", parent);
    CHECK_STR(cgroup_path(cg), want);
    CHECK(exists_anywhere(want));
    CHECK(destroy(cg) == 0);
    CHECK(!exists_anywhere(want));
  }
}

/* The own cgroup of this process in the hierarchy of controller ("" for
 * the cgroup2 line). */
static char *own_cgroup(const char *controller) {
  cleanup_free char *text = read_text("/proc/self/cgroup");
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL)
      continue;
    *c2 = '\0';
    if (strcmp(c1 + 1, controller) == 0)
      return xstrdup(c2 + 1);
  }
  return NULL;
}

static char *under(const char *base, const char *rel) {
  return strcmp(base, "/") == 0 ? xasprintf("/%s", rel)
                                : xasprintf("%s/%s", base, rel);
}

static int sleep_forever(void *arg) {
  (void)arg;
  for (;;)
    pause();
  return 0;
}

/* A relative cgroupsPath lands under the runtime's own cgroup, in each
 * hierarchy; cgroup_open finds all of them again from cgroup_path. */
TEST(relative_path) {
  struct fixture f;
  fixture_init(&f, "x");
  f.linux_.resources = NULL;
  snprintf(f.path, sizeof(f.path), "%s-rel", parent + 1);
  struct cgroup *cg = create(&f);
  CHECK(cg != NULL);
  if (cg == NULL)
    return;
  const char *ctl = unified() ? "" : "memory";
  cleanup_free char *own = own_cgroup(ctl);
  cleanup_free char *want = under(own ? own : "/", f.path);
  cleanup_free char *dir = unified()
                               ? xasprintf("/sys/fs/cgroup%s", want)
                               : xasprintf("/sys/fs/cgroup/memory%s", want);
  CHECK(dir_exists(dir));
  CHECK_CONTAINS(cgroup_path(cg), f.path);

  struct cgroup *again = NULL;
  cell_error *err = NULL;
  CHECK(cgroup_open(cgroup_path(cg), &again, &err) == 0);
  cell_error_free(&err);
  if (again) {
    CHECK_STR(cgroup_path(again), cgroup_path(cg));
    struct child c = spawn(sleep_forever, NULL);
    CHECK(enter(again, c.pid) == 0);
    cleanup_free char *procs = xasprintf("%s/cgroup.procs", dir);
    cleanup_free char *text = read_text(procs);
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)c.pid);
    CHECK(text && strstr(text, pid));
    CHECK(destroy(again) == 0);
    CHECK(WIFSIGNALED(wait_status(c.pid)));
    close(c.go);
  }
  CHECK(!dir_exists(dir));
  cgroup_free(cg);
  /* Whatever a failure above left. */
  cleanup_free char *rel = xasprintf("/%s", f.path);
  remove_everywhere(rel);
  rmdir_tree(dir);
}

/* The default path is /cell/<id>. */
TEST(default_path) {
  struct fixture f;
  fixture_init(&f, "x");
  f.linux_.cgroups_path = NULL;
  f.linux_.resources = NULL;
  bool had_cell = exists_anywhere("/cell");
  char id[96];
  snprintf(id, sizeof(id), "%s-default", parent + 1);
  struct cgroup *cg = NULL;
  cell_error *err = NULL;
  CHECK(cgroup_create(&f.spec, id, &cg, &err) == 0);
  cell_error_free(&err);
  if (cg == NULL)
    return;
  cleanup_free char *want = xasprintf("/cell/%s", id);
  CHECK_STR(cgroup_path(cg), want);
  CHECK(exists_anywhere(want));
  CHECK(destroy(cg) == 0);
  CHECK(!exists_anywhere(want));
  /* Not recursive: /cell may hold a real container's cgroup meanwhile. */
  if (!had_cell)
    rmdir_everywhere("/cell");
}

/* ---- the life of a container's cgroup ------------------------------------ */

static void check_files(const char *path) {
  cleanup_free char *mem = read_cg(
      "memory", path, unified() ? "memory.max" : "memory.limit_in_bytes");
  CHECK_STR(mem, "67108864");
  cleanup_free char *pids = read_cg("pids", path, "pids.max");
  CHECK_STR(pids, "32");
  if (unified()) {
    cleanup_free char *weight = read_cg("cpu", path, "cpu.weight");
    CHECK_STR(weight, "20"); /* 1 + (512 - 2) * 9999 / 262142 */
    cleanup_free char *max = read_cg("cpu", path, "cpu.max");
    CHECK_STR(max, "50000 100000");
    cleanup_free char *dir = xasprintf("/sys/fs/cgroup%s", path);
    cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cell_error *err = NULL;
    CHECK(bpf_devices_count(fd, &err) == 1);
    cell_error_free(&err);
  } else {
    cleanup_free char *shares = read_cg("cpu", path, "cpu.shares");
    CHECK_STR(shares, "512");
    cleanup_free char *quota = read_cg("cpu", path, "cpu.cfs_quota_us");
    CHECK_STR(quota, "50000");
    cleanup_free char *period = read_cg("cpu", path, "cpu.cfs_period_us");
    CHECK_STR(period, "100000");
    cleanup_free char *list = read_cg("devices", path, "devices.list");
    CHECK(list && strstr(list, "c 1:3 ") == NULL);
    CHECK_CONTAINS(list, "c 1:5 rwm");
    CHECK_CONTAINS(list, "c *:* m");
    CHECK(list && strstr(list, "a *:*") == NULL);
    /* cpuset got its parent's cpus, else nothing could join it. */
    cleanup_free char *mems = read_cg("cpuset", path, "cpuset.mems");
    CHECK(mems && mems[0] != '\0');
    cleanup_free char *bps =
        read_cg("blkio", path, "blkio.throttle.read_bps_device");
    CHECK_STR(bps, "7:0 1048576");
  }
  cleanup_free char *cpus = read_cg("cpuset", path, "cpuset.cpus");
  CHECK_STR(cpus, "0");
  if (unified()) {
    cleanup_free char *io = read_cg("io", path, "io.max");
    CHECK_CONTAINS(io, "7:0 rbps=1048576 wbps=max");
  }
}

/* A child that counts in shared memory and dirties a megabyte. */
static volatile unsigned long *counter;

static int count_forever(void *arg) {
  (void)arg;
  volatile char *mem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (size_t i = 0; mem != MAP_FAILED && i < (1 << 20); i += 4096)
    mem[i] = 1;
  for (;;) {
    (*counter)++;
    usleep(1000);
  }
  return 0;
}

static bool counter_moves(void) {
  unsigned long before = *counter;
  usleep(150 * 1000);
  return *counter != before;
}

static void check_freeze(struct cgroup *cg, const char *path) {
  cell_error *err = NULL;
  CHECK(!cgroup_is_frozen(cg));
  CHECK(cgroup_freeze(cg, true, &err) == 0);
  cell_error_free(&err);
  CHECK(cgroup_is_frozen(cg));
  if (unified()) {
    cleanup_free char *events = read_cg("", path, "cgroup.events");
    CHECK_CONTAINS(events, "frozen 1");
  } else {
    cleanup_free char *state = read_cg("freezer", path, "freezer.state");
    CHECK_STR(state, "FROZEN");
  }
  CHECK(!counter_moves());
  CHECK(cgroup_freeze(cg, false, &err) == 0);
  cell_error_free(&err);
  CHECK(!cgroup_is_frozen(cg));
  CHECK(counter_moves());
}

static void check_update(struct cgroup *cg, const char *path) {
  struct spec_resources r = {0};
  struct spec_memory m = {0};
  int64_t limit = 128 << 20;
  m.limit = &limit;
  r.memory = &m;
  cell_error *err = NULL;
  CHECK(cgroup_update(cg, &r, &err) == 0);
  cell_error_free(&err);
  cleanup_free char *mem = read_cg(
      "memory", path, unified() ? "memory.max" : "memory.limit_in_bytes");
  CHECK_STR(mem, "134217728");

  /* checkBeforeUpdate refuses a limit below what the child already uses. */
  bool check = true;
  int64_t tiny = 1 << 16;
  m.limit = &tiny;
  m.check_before_update = &check;
  CHECK_CONTAINS(
      msg_of(cgroup_update(cg, &r, &err), &err),
      "linux.resources.memory.limit: 65536 is below the current usage");
  cleanup_free char *still = read_cg(
      "memory", path, unified() ? "memory.max" : "memory.limit_in_bytes");
  CHECK_STR(still, "134217728");

  /* Period alone keeps the quota. */
  struct spec_resources rc = {0};
  struct spec_cpu c = {0};
  uint64_t period = 200000;
  c.period = &period;
  rc.cpu = &c;
  CHECK(cgroup_update(cg, &rc, &err) == 0);
  cell_error_free(&err);
  if (unified()) {
    cleanup_free char *max = read_cg("cpu", path, "cpu.max");
    CHECK_STR(max, "50000 200000");
  } else {
    cleanup_free char *p = read_cg("cpu", path, "cpu.cfs_period_us");
    CHECK_STR(p, "200000");
    cleanup_free char *q = read_cg("cpu", path, "cpu.cfs_quota_us");
    CHECK_STR(q, "50000");
  }
}

static void check_stats(struct cgroup *cg) {
  char *json = NULL;
  cell_error *err = NULL;
  CHECK(cgroup_stats_json(cg, &json, &err) == 0);
  cell_error_free(&err);
  CHECK_CONTAINS(json, "\"pids\":{\"current\":1,\"limit\":32}");
  CHECK_CONTAINS(json, "\"memory\":{");
  CHECK_CONTAINS(json, "\"usage\":{\"limit\":134217728,\"usage\":");
  CHECK_CONTAINS(json, "\"cpu\":{\"usage\":{\"total\":");
  CHECK_CONTAINS(json, "\"blkio\":{");
  CHECK_CONTAINS(json, "\"hugetlb\":{");
  free(json);
  unsigned long long ooms = 99;
  CHECK(cgroup_oom_count(cg, &ooms, &err) == 0);
  cell_error_free(&err);
  CHECK(ooms == 0);
}

TEST(lifecycle) {
  struct fixture f;
  fixture_full(&f, "main");
  struct cgroup *cg = create(&f);
  CHECK(cg != NULL);
  if (cg == NULL)
    return;
  CHECK_STR(cgroup_path(cg), f.path);
  check_files(f.path);
  /* v2 only, or the cgroup2 twin of a hybrid host: either way a directory
   * of the default hierarchy that clone3 can start a process in. */
  if (unified())
    CHECK(cgroup_clone_fd(cg) >= 0);

  counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  struct child c = spawn(count_forever, NULL);
  CHECK(enter(cg, c.pid) == 0);
  release(&c);
  CHECK(has_pid(cg, c.pid));
  /* Every hierarchy, the cgroup2 one (the twin on a hybrid host) too. */
  cleanup_free char *proc_cg = xasprintf("/proc/%d/cgroup", (int)c.pid);
  cleanup_free char *where = read_text(proc_cg);
  cleanup_free char *v2_line = xasprintf("0::%s\n", f.path);
  cleanup_free char *where_nl = xasprintf("%s\n", where ? where : "");
  if (layout != CGROUP_LEGACY)
    CHECK_CONTAINS(where_nl, v2_line);
  if (!unified()) {
    cleanup_free char *mem_line = xasprintf(":memory:%s\n", f.path);
    cleanup_free char *dev_line = xasprintf(":devices:%s\n", f.path);
    CHECK_CONTAINS(where_nl, mem_line);
    CHECK_CONTAINS(where_nl, dev_line);
  }
  while (*counter < 5) /* the megabyte is charged before counting starts */
    usleep(1000);

  check_freeze(cg, f.path);
  check_update(cg, f.path);
  check_stats(cg);

  /* A second create of the same, populated, cgroup goes on (with a
   * warning, as runc's); frozen, it is refused and left as it was. */
  struct cgroup *dup = NULL;
  cell_error *err = NULL;
  f.linux_.resources = NULL;
  CHECK(cgroup_create(&f.spec, "x", &dup, &err) == 0);
  cell_error_free(&err);
  cgroup_free(dup);
  dup = NULL;
  CHECK(cgroup_freeze(cg, true, &err) == 0);
  cell_error_free(&err);
  CHECK_CONTAINS(msg_of(cgroup_create(&f.spec, "x", &dup, &err), &err),
                 "cgroup unexpectedly frozen");
  CHECK(cgroup_is_frozen(cg));
  CHECK(cgroup_freeze(cg, false, &err) == 0);
  cell_error_free(&err);
  CHECK(has_pid(cg, c.pid));

  /* A cgroup the container made below its own goes with it. */
  cleanup_free char *nested_path = xasprintf("%s/nested", f.path);
  cleanup_free char *nested =
      unified() ? xasprintf("/sys/fs/cgroup%s", nested_path)
                : xasprintf("/sys/fs/cgroup/pids%s", nested_path);
  CHECK(mkdir(nested, 0755) == 0);

  CHECK(destroy(cg) == 0);
  int st = wait_status(c.pid);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  CHECK(!exists_anywhere(f.path));
  munmap((void *)counter, 4096);
}

/* ---- devices ------------------------------------------------------------- */

/* Exit status: 1 = /dev/null refused with EPERM, 2 = /dev/zero opened. */
static int try_devices(void *arg) {
  (void)arg;
  int r = 0;
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == EPERM)
    r |= 1;
  if (fd >= 0)
    close(fd);
  fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    r |= 2;
    close(fd);
  }
  return r;
}

static int run_in(struct cgroup *cg, int (*fn)(void *)) {
  struct child c = spawn(fn, NULL);
  if (enter(cg, c.pid) < 0) {
    kill(c.pid, SIGKILL);
    close(c.go);
    wait_status(c.pid);
    return -1;
  }
  release(&c);
  int st = wait_status(c.pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(device_rules_are_enforced) {
  struct fixture f;
  fixture_full(&f, "devices");
  struct cgroup *cg = create(&f);
  CHECK(cg != NULL);
  if (cg == NULL)
    return;
  CHECK(run_in(cg, try_devices) == 3);

  /* An update with rules replaces the filter (one program on v2). */
  struct spec_resources r = {0};
  struct spec_device_rule rules[2];
  int64_t one = 1, three = 3;
  rules[0] = (struct spec_device_rule){.allow = false, .type = "a"};
  rules[1] = (struct spec_device_rule){.allow = true,
                                       .type = "c",
                                       .major = &one,
                                       .minor = &three,
                                       .access = "rw"};
  r.devices = rules;
  r.n_devices = 2;
  cell_error *err = NULL;
  CHECK(cgroup_update(cg, &r, &err) == 0);
  cell_error_free(&err);
  CHECK(run_in(cg, try_devices) == 2);
  if (unified()) {
    cleanup_free char *dir = xasprintf("/sys/fs/cgroup%s", f.path);
    cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(bpf_devices_count(fd, &err) == 1);
    cell_error_free(&err);
  }
  CHECK(destroy(cg) == 0);
}

/* On a hybrid host the eBPF filter can be tried on the cgroup2 mount too
 * (the kernel runs it besides the v1 devices controller). */
TEST(bpf_filter_on_hybrid_cgroup2) {
  if (layout != CGROUP_HYBRID)
    return;
  cleanup_free char *dir = xasprintf("/sys/fs/cgroup/unified%s-bpf", parent);
  CHECK(mkdir(dir, 0755) == 0);
  cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const struct dev_rule rules[] = {
      {false, 'a', DEV_ANY, DEV_ANY, DEV_ACCESS_ALL},
      {true, 'c', 1, 5, DEV_ACCESS_READ},
  };
  cell_error *err = NULL;
  CHECK(bpf_devices_apply(fd, rules, 2, &err) == 0);
  cell_error_free(&err);
  CHECK(bpf_devices_apply(fd, rules, 2, &err) == 0); /* replaces */
  cell_error_free(&err);
  CHECK(bpf_devices_count(fd, &err) == 1);
  cell_error_free(&err);

  struct child c = spawn(try_devices, NULL);
  char pid[16];
  snprintf(pid, sizeof(pid), "%d", (int)c.pid);
  cleanup_free char *procs = xasprintf("%s/cgroup.procs", dir);
  CHECK(cell_write_knob(procs, pid, strlen(pid), &err) == 0);
  cell_error_free(&err);
  release(&c);
  int st = wait_status(c.pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
  CHECK(rmdir(dir) == 0);
}

/* ---- errors -------------------------------------------------------------- */

TEST(errors_name_field_and_file) {
  struct fixture f;
  fixture_init(&f, "bad");
  int64_t quota = 10; /* below the kernel's 1 ms minimum */
  uint64_t period = 100000;
  f.cpu.quota = &quota;
  f.cpu.period = &period;
  f.res.cpu = &f.cpu;
  struct cgroup *cg = NULL;
  cell_error *err = NULL;
  CHECK_CONTAINS(msg_of(cgroup_create(&f.spec, "x", &cg, &err), &err),
                 "linux.resources.cpu.quota: write cpu.");
  CHECK_CONTAINS(last_msg, "Invalid argument");
  CHECK(cg == NULL);
  CHECK(!exists_anywhere(f.path)); /* a failed create leaves nothing */

  fixture_init(&f, "unified");
  struct spec_kv kv = {.key = "pids.max", .value = "7"};
  f.res.unified = &kv;
  f.res.n_unified = 1;
  if (unified()) {
    cg = create(&f);
    CHECK(cg != NULL);
    cleanup_free char *v = read_cg("pids", f.path, "pids.max");
    CHECK_STR(v, "7");
    if (cg)
      CHECK(destroy(cg) == 0);
    kv.key = "../cgroup.procs";
    CHECK_CONTAINS(
        msg_of(cgroup_create(&f.spec, "x", &cg, &err), &err),
        "linux.resources.unified.../cgroup.procs: not a cgroup file");
  } else {
    CHECK_CONTAINS(msg_of(cgroup_create(&f.spec, "x", &cg, &err), &err),
                   "linux.resources.unified: needs a cgroup v2 host");
  }
  CHECK(!exists_anywhere(f.path));

  fixture_init(&f, "huge");
  struct spec_hugepage_limit h = {.page_size = "2MB/../x", .limit = 0};
  f.res.hugepage_limits = &h;
  f.res.n_hugepage_limits = 1;
  CHECK_CONTAINS(msg_of(cgroup_create(&f.spec, "x", &cg, &err), &err),
                 "linux.resources.hugepageLimits[0].pageSize: `2MB/../x`");
}

TEST(hugetlb_on_unified) {
  if (!unified() ||
      access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) != 0)
    return;
  struct fixture f;
  fixture_init(&f, "hugetlb");
  struct spec_hugepage_limit h = {.page_size = "2MB", .limit = 4 << 21};
  f.res.hugepage_limits = &h;
  f.res.n_hugepage_limits = 1;
  struct cgroup *cg = create(&f);
  CHECK(cg != NULL);
  cleanup_free char *v = read_cg("hugetlb", f.path, "hugetlb.2MB.max");
  CHECK_STR(v, "8388608");
  if (cg)
    CHECK(destroy(cg) == 0);
}

/* kill_all delivers any signal to every process, and a paused container
 * stays paused. */
static int wait_for_term(void *arg) {
  (void)arg;
  for (;;)
    pause();
  return 0;
}

static void ignore_signal(int signo) { (void)signo; }

TEST(kill_all) {
  struct fixture f;
  fixture_init(&f, "kill");
  f.linux_.resources = NULL;
  struct cgroup *cg = create(&f);
  CHECK(cg != NULL);
  if (cg == NULL)
    return;
  struct child a = spawn(wait_for_term, NULL), b = spawn(wait_for_term, NULL);
  CHECK(enter(cg, a.pid) == 0 && enter(cg, b.pid) == 0);
  release(&a);
  release(&b);
  cell_error *err = NULL;
  CHECK(cgroup_kill_all(cg, SIGTERM, &err) == 0);
  cell_error_free(&err);
  int sa = wait_status(a.pid), sb = wait_status(b.pid);
  CHECK(WIFSIGNALED(sa) && WTERMSIG(sa) == SIGTERM);
  CHECK(WIFSIGNALED(sb) && WTERMSIG(sb) == SIGTERM);
  CHECK(!cgroup_is_frozen(cg));

  /* A paused container stays paused through kill_all, and is killed by
   * destroy all the same (v1 needs a thaw for that).  The child handles
   * the signal: a fatal one would end a frozen task at once on v2. */
  struct sigaction sa_usr1 = {.sa_handler = ignore_signal};
  sigaction(SIGUSR1, &sa_usr1, NULL);
  struct child p = spawn(wait_for_term, NULL);
  CHECK(enter(cg, p.pid) == 0);
  release(&p);
  CHECK(cgroup_freeze(cg, true, &err) == 0);
  cell_error_free(&err);
  CHECK(cgroup_kill_all(cg, SIGUSR1, &err) == 0);
  cell_error_free(&err);
  CHECK(cgroup_is_frozen(cg)); /* stays paused; the signal waits */
  CHECK(has_pid(cg, p.pid));

  struct cgroup *opened = NULL;
  CHECK(cgroup_open(cgroup_path(cg), &opened, &err) == 0);
  cell_error_free(&err);
  CHECK(destroy(cg) == 0);
  int sp = wait_status(p.pid);
  CHECK(WIFSIGNALED(sp) && WTERMSIG(sp) == SIGKILL);
  signal(SIGUSR1, SIG_DFL);
  /* Destroying what is gone already is fine. */
  if (opened)
    CHECK(destroy(opened) == 0);
}

/* ---- OOM notices ---------------------------------------------------------- */

/* Touch 64 MiB: more than the 16 MiB the test cgroup allows. */
static int hog(void *arg) {
  (void)arg;
  size_t n = 64 << 20;
  volatile char *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return 1;
  for (size_t i = 0; i < n; i += 4096)
    p[i] = 1;
  return 0;
}

TEST(oom_watch_fd_wakes_on_a_kill) {
  struct fixture f;
  fixture_init(&f, "oom");
  int64_t limit = 16 << 20;
  f.mem.limit = &limit;
  f.res.memory = &f.mem;
  struct cgroup *cg = create(&f);
  CHECK(cg != NULL);
  if (cg == NULL)
    return;
  cell_error *err = NULL;
  /* As celld keeps it: a handle of its own, the memory hierarchy alone. */
  struct cgroup *w = NULL;
  CHECK_STR(msg_of(cgroup_open(f.path, &w, &err), &err), "");
  if (w == NULL) {
    destroy(cg);
    return;
  }
  cgroup_keep_only(w, "memory");
  int fd = cgroup_oom_watch(w, &err);
  CHECK_STR(msg_of(fd < 0 ? -1 : 0, &err), "");
  struct pollfd p = {.fd = fd, .events = POLLIN};
  CHECK(poll(&p, 1, 0) == 0); /* quiet before */
  struct child c = spawn(hog, NULL);
  CHECK(enter(cg, c.pid) == 0);
  release(&c);
  int st = wait_status(c.pid);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  CHECK(poll(&p, 1, 2000) == 1 && (p.revents & POLLIN));
  unsigned long long n = 0;
  CHECK(cgroup_oom_count(w, &n, &err) == 0);
  CHECK(n == 1);
  cgroup_oom_watch_ack(fd);
  CHECK(poll(&p, 1, 0) == 0); /* drained */
  close(fd);
  cgroup_free(w);
  CHECK(destroy(cg) == 0);
}

/* 8 MiB touched, then a spin of 300 ms of CPU time. */
static int touch_and_spin(void *arg) {
  (void)arg;
  volatile char *mem = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (size_t i = 0; mem != MAP_FAILED && i < (8 << 20); i += 4096)
    mem[i] = 1;
  struct timespec t0, t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  do
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec) <
         300000000LL);
  return 0;
}

TEST(usage_through_the_directories_celld_keeps) {
  struct fixture f;
  fixture_init(&f, "usage");
  struct cgroup *cg = create(&f);
  CHECK(cg != NULL);
  if (cg == NULL)
    return;
  cell_error *err = NULL;
  struct cgroup *w = NULL;
  CHECK_STR(msg_of(cgroup_open(f.path, &w, &err), &err), "");
  if (w == NULL) {
    destroy(cg);
    return;
  }
  cgroup_keep_controllers(w, (const char *const[]){"memory", "cpuacct", "pids", NULL});
  struct cgroup_usage u;
  cgroup_usage(w, &u);
  CHECK(u.has_memory && u.has_cpu && u.has_pids);
  CHECK(u.pids == 0 && u.cpu_ns == 0);
  struct child c = spawn(touch_and_spin, NULL);
  CHECK(enter(cg, c.pid) == 0);
  cgroup_usage(w, &u);
  CHECK(u.pids == 1);
  release(&c);
  int st = wait_status(c.pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  cgroup_usage(w, &u);
  CHECK(u.pids == 0);
  CHECK(u.cpu_ns >= 300000000ULL); /* what it spent stays counted */
  CHECK(u.memory_peak >= 8ULL << 20 && u.memory_peak >= u.memory);
  cgroup_free(w);
  CHECK(destroy(cg) == 0);
}

int main(void) {
  if (geteuid() != 0) {
    printf("skipped: needs root\n");
    return 0;
  }
  cell_error *err = NULL;
  if (cgroup_detect(&layout, &err) < 0) {
    fprintf(stderr, "cgroup_detect: %s\n", err->msg);
    return 1;
  }
  snprintf(parent, sizeof(parent), "/cell-test-cg-%d", (int)getpid());
  printf("# layout: %s\n", layout == CGROUP_UNIFIED  ? "unified"
                           : layout == CGROUP_HYBRID ? "hybrid"
                                                     : "legacy");
  RUN(ops_tables_are_complete);
  RUN(device_policy_replays_v1_semantics);
  RUN(device_policy_transition_without_a_reset);
  RUN(detect_layout);
  RUN(path_rules);
  RUN(relative_path);
  RUN(default_path);
  RUN(lifecycle);
  RUN(device_rules_are_enforced);
  RUN(bpf_filter_on_hybrid_cgroup2);
  RUN(errors_name_field_and_file);
  RUN(hugetlb_on_unified);
  RUN(kill_all);
  RUN(oom_watch_fd_wakes_on_a_kill);
  RUN(usage_through_the_directories_celld_keeps);
  /* Only the leaves go with cgroup_destroy; the test's parent is ours. */
  remove_everywhere(parent);
  CHECK(!exists_anywhere(parent));
  UNIT_DONE();
}
