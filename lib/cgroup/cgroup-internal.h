/* Shared by cgroup.c (the interface, layout, paths, dispatch) and the two
 * backends, cgroup-v1.c and cgroup-v2.c.  Not part of libcell's API.
 *
 * Each backend function works on one controller's cgroup directory, given
 * as an fd, so that a hybrid host can take a controller from whichever
 * hierarchy has it. */
#ifndef CELL_CGROUP_INTERNAL_H
#define CELL_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/bpf-devices.h"
#include "cgroup/cgroup.h"
#include "base/error.h"
#include "base/json.h"
#include "oci/spec.h"

#define CGROUP_MOUNT "/sys/fs/cgroup"
#define CGROUP_UNIFIED_MOUNT "/sys/fs/cgroup/unified"

/* A v1 hierarchy and the container's cgroup in it. */
struct cgroup_hier {
  char *controllers; /* as /proc/self/cgroup names it: "memory",
                        "cpu,cpuacct", "name=systemd" */
  char *mount;       /* "/sys/fs/cgroup/memory" */
  char *path;        /* the cgroup in the hierarchy: "/cell/<id>" */
  int fd;            /* its directory; -1 when it does not exist */
  bool made;         /* cgroup_create made the directory */
};

struct cgroup {
  enum cgroup_layout layout;
  char *path;    /* the main path (v2's, or the one of most v1 hierarchies) */
  char *encoded; /* cgroup_path(): main path + v1 paths that differ */
  struct cgroup_hier *v1;
  size_t n_v1;
  /* The cgroup2 side: the whole cgroup on a unified host, an optional twin
   * on a hybrid one.  v2_fd is -1 when there is none. */
  char *v2_mount;
  char *v2_path;
  int v2_fd;
  bool v2_made;
};

/* ---- file helpers (cgroup.c) --------------------------------------------- */

/* Write value to file in the cgroup directory dirfd in one write(2).  The
 * error names the field it came from: "FIELD: write FILE: strerror" (or
 * "write FILE: strerror" when field is NULL). */
int cg_write(int dirfd, const char *file, const char *value, const char *field,
             cell_error **err);
int cg_writef(int dirfd, const char *file, const char *field, cell_error **err,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Whole file, trailing newlines removed; "read FILE: strerror". */
int cg_read(int dirfd, const char *file, char **out, cell_error **err);
bool cg_exists(int dirfd, const char *file);
/* One number ("max" reads as UINT64_MAX); false when unreadable. */
bool cg_read_u64(int dirfd, const char *file, uint64_t *out);
/* The value of `key` in a "key value" per line text (memory.stat,
 * cgroup.events, cpu.stat); false when absent. */
bool cg_keyed_u64(const char *text, const char *key, uint64_t *out);
bool cg_read_keyed_u64(int dirfd, const char *file, const char *key,
                       uint64_t *out);
/* Append the pids of cgroup.procs of dirfd (and of every cgroup below it
 * when recursive) to *pids. */
int cg_read_pids(int dirfd, bool recursive, pid_t **pids, size_t *n,
                 cell_error **err);
/* A controller name in a space- or comma-separated list. */
bool cg_list_has(const char *list, const char *name);
/* "-1" and "max" handling: v < 0 gives "max" on v2. */
void cg_fmt_limit_v2(int64_t v, char *buf, size_t size);
/* Sleep a little longer each time (1 ms doubling up to 20 ms). */
void cg_backoff(unsigned *delay_us);
/* Monotonic milliseconds. */
long long cg_now_ms(void);

/* The stats JSON: runc's Go structs, whose "omitempty" numbers are left
 * out when 0. */
void cg_gen_uint_nz(struct json_gen *g, const char *key, uint64_t v);
void cg_gen_memory_entry(struct json_gen *g, const char *key, uint64_t limit,
                         uint64_t usage, uint64_t max, uint64_t failcnt);
void cg_gen_keyed_file(struct json_gen *g, int fd, const char *file);

/* Files that read the same on v1 and v2 (cgroup.c). */
int cg_set_pids(int fd, int64_t limit, cell_error **err);
int cg_set_rdma(int fd, const struct spec_rdma *r, size_t n, cell_error **err);
/* Page sizes as the hugetlb files name them ("2MB", "1GB"). */
int cg_hugepage_sizes(char ***sizes, cell_error **err);
bool cg_valid_page_size(const char *size);

/* ---- v1 (cgroup-v1.c) ---------------------------------------------------- */

int cgv1_set_memory(int fd, const struct spec_memory *m, bool update,
                    cell_error **err);
int cgv1_set_cpu(int fd, const struct spec_cpu *c, cell_error **err);
/* Give a new cpuset cgroup (and its parents, while they are empty) the
 * cpus and mems of its parent: an empty cpuset cannot take tasks. */
int cgv1_cpuset_inherit(const char *mount, const char *path, cell_error **err);
int cgv1_set_cpuset(int fd, const struct spec_cpu *c, cell_error **err);
int cgv1_set_blkio(int fd, const struct spec_block_io *b, cell_error **err);
int cgv1_set_hugetlb(int fd, const struct spec_hugepage_limit *h, size_t n,
                     cell_error **err);
int cgv1_set_net_cls(int fd, uint32_t class_id, cell_error **err);
int cgv1_set_net_prio(int fd, const struct spec_net_priority *p, size_t n,
                      cell_error **err);
/* devices.deny "a", then each rule to devices.allow / devices.deny. */
int cgv1_set_devices(int fd, const struct dev_rule *rules, size_t n,
                     cell_error **err);
int cgv1_freeze(int fd, bool frozen, cell_error **err);
bool cgv1_is_frozen(int fd);
int cgv1_oom_count(int fd, unsigned long long *n, cell_error **err);
int cgv1_oom_eventfd(int fd, cell_error **err);
void cgv1_stats_cpu(int cpu_fd, int cpuacct_fd, struct json_gen *g);
void cgv1_stats_memory(int fd, struct json_gen *g);
void cgv1_stats_blkio(int fd, struct json_gen *g);
void cgv1_stats_hugetlb(int fd, char *const *sizes, struct json_gen *g);

/* ---- v2 (cgroup-v2.c) ---------------------------------------------------- */

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
int cgv2_set_memory(int fd, const struct spec_memory *m, bool update,
                    cell_error **err);
int cgv2_set_cpu(int fd, const struct spec_cpu *c, bool update,
                 cell_error **err);
int cgv2_set_cpuset(int fd, const struct spec_cpu *c, cell_error **err);
int cgv2_set_io(int fd, const struct spec_block_io *b, cell_error **err);
int cgv2_set_hugetlb(int fd, const struct spec_hugepage_limit *h, size_t n,
                     cell_error **err);
int cgv2_set_unified(int fd, const struct spec_kv *kv, size_t n,
                     cell_error **err);
int cgv2_set_devices(int fd, const struct dev_rule *rules, size_t n,
                     cell_error **err);
int cgv2_freeze(int fd, bool frozen, cell_error **err);
bool cgv2_is_frozen(int fd);
/* cgroup.kill: 1 when written, 0 when the kernel has no such file. */
int cgv2_kill(int fd, cell_error **err);
int cgv2_oom_count(int fd, unsigned long long *n, cell_error **err);
int cgv2_oom_inotify(int fd, cell_error **err);
void cgv2_stats_cpu(int fd, struct json_gen *g);
void cgv2_stats_memory(int fd, struct json_gen *g);
void cgv2_stats_io(int fd, struct json_gen *g);
void cgv2_stats_hugetlb(int fd, char *const *sizes, struct json_gen *g);

#endif
