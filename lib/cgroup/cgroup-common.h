/* Helpers both cgroup backends (cgroup-v1.c, cgroup-v2.c) and the
 * interface above them share: files of a cgroup directory given as an fd,
 * runc's stats JSON pieces, the resources v1 and v2 write alike.  Not part
 * of libcell's API.  Nothing here knows about struct cgroup: this is the
 * bottom of the cgroup layer.
 * Internal to lib/cgroup. */
#ifndef CELL_CGROUP_COMMON_H
#define CELL_CGROUP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "base/json.h"
#include "oci/spec.h"

/* ---- files --------------------------------------------------------------- */

/* Write value to file in the cgroup directory dirfd in one write(2).  The
 * error names the field it came from: "FIELD: write FILE: strerror" (or
 * "write FILE: strerror" when field is NULL). */
int cg_write(int dirfd, const char *file, const char *value, const char *field,
             cell_error **err);
/* The same write to fd, file opened already: for files that take many
 * writes, each parsed on its own (devices.allow). */
int cg_write_open(int fd, const char *file, const char *value,
                  const char *field, cell_error **err);
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

/* ---- the stats JSON ------------------------------------------------------ */

/* runc's Go structs, whose "omitempty" numbers are left out when 0. */
void cg_gen_uint_nz(struct json_gen *g, const char *key, uint64_t v);
void cg_gen_memory_entry(struct json_gen *g, const char *key, uint64_t limit,
                         uint64_t usage, uint64_t max, uint64_t failcnt);
void cg_gen_keyed_file(struct json_gen *g, int fd, const char *file);

/* ---- resources with the same files on v1 and v2 -------------------------- */

int cg_set_pids(int fd, int64_t limit, cell_error **err);
int cg_set_rdma(int fd, const struct spec_rdma *r, size_t n, cell_error **err);
/* Page sizes as the hugetlb files name them ("2MB", "1GB"). */
int cg_hugepage_sizes(char ***sizes, cell_error **err);
bool cg_valid_page_size(const char *size);

#endif
