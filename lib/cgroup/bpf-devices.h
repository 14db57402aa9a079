/* The cgroup v2 device controller: a BPF_PROG_TYPE_CGROUP_DEVICE program
 * assembled here from device rules (no compiler, no libbpf), loaded with
 * bpf(2) and attached to a cgroup directory with BPF_F_ALLOW_MULTI.
 *
 * The rules mean what they mean for the v1 devices controller, where they
 * are written one by one to devices.allow / devices.deny: the kernel keeps
 * a default (allow or deny) and a list of exceptions, and a rule either
 * resets both ("a") or adds to / removes from the exceptions.  We replay
 * the rules the same way (dev_policy_from_rules) and compile the result,
 * so a container sees the same devices on v1 and v2 hosts. */
#ifndef CELL_BPF_DEVICES_H
#define CELL_BPF_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* The values of BPF_DEVCG_ACC_* (and of the v1 "m", "r", "w" letters). */
enum {
  DEV_ACCESS_MKNOD = 1,
  DEV_ACCESS_READ = 2,
  DEV_ACCESS_WRITE = 4,
  DEV_ACCESS_ALL = 7,
};

#define DEV_ANY (-1) /* wildcard major or minor */

struct dev_rule {
  bool allow;
  char type;     /* 'a' (every device: resets the policy), 'c' or 'b' */
  int64_t major; /* DEV_ANY or 0..UINT32_MAX */
  int64_t minor;
  unsigned access; /* DEV_ACCESS_* bits */
};

/* What a sequence of rules leaves behind, as in the v1 kernel code. */
struct dev_policy {
  bool default_allow;
  struct dev_rule *exceptions; /* their `allow` is !default_allow */
  size_t n_exceptions;
};

/* Replay rules on a fresh cgroup (default allow, no exceptions). */
void dev_policy_from_rules(const struct dev_rule *rules, size_t n,
                           struct dev_policy *out);
void dev_policy_clear(struct dev_policy *p);
/* The verdict for one access (type 'c' or 'b'); the program computes the
 * same. */
bool dev_policy_allows(const struct dev_policy *p, char type, uint32_t major,
                       uint32_t minor, unsigned access);

/* "c 1:3 rwm", "b *:* m", "a": the v1 devices.allow/deny syntax. */
void dev_rule_format(const struct dev_rule *r, char *buf, size_t size);

/* The policy a v1 cgroup's devices.list shows: "a *:* rwm" alone is a
 * default allow (whose exceptions the kernel does not show); anything
 * else a default deny with one allowed exception a line. */
int dev_policy_parse_list(const char *text, struct dev_policy *out,
                          cell_error **err);
/* The rules that take a cgroup from `from` to `to` one device at a time,
 * without a reset ("a"), which v1 refuses once a cgroup has children:
 * first what `to` no longer allows, then what it adds.  false (and no
 * rules) when the defaults differ: only a reset gets there. */
bool dev_policy_transition(const struct dev_policy *from,
                           const struct dev_policy *to, struct dev_rule **out,
                           size_t *n);

/* Number of BPF instructions the program for p has (for tests). */
size_t bpf_devices_program_len(const struct dev_policy *p);

/* Load the program for rules and attach it to the cgroup directory
 * cgroup_fd, then detach the device programs that were attached to that
 * directory before (so an update replaces the filter without a moment
 * with none). */
int bpf_devices_apply(int cgroup_fd, const struct dev_rule *rules, size_t n,
                      cell_error **err);

/* Number of device programs attached directly to the cgroup (tests). */
int bpf_devices_count(int cgroup_fd, cell_error **err);

#endif
