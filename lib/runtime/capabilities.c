/* process.capabilities: names resolved once in the runtime into bit masks,
 * applied in the container process around the change of uid.
 *
 * The kernel's rules that shape the order:
 *  - dropping from the bounding set needs CAP_SETPCAP in the effective set,
 *    so it happens while we are still root with every capability;
 *  - setresuid from uid 0 to another uid clears the permitted and effective
 *    sets unless PR_SET_KEEPCAPS is on, and always clears the ambient set;
 *  - an ambient capability must be in both the permitted and the
 *    inheritable set, so ambient comes last.  One that is not, the kernel
 *    refuses to raise: runc ignores that refusal (its own `runc spec`
 *    lists ambient capabilities without an inheritable set), and so do we,
 *    with a debug line, rather than refuse the config. */
#include "runtime/capabilities.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "base/log.h"
#include "base/util.h"

struct caps_plan {
  uint64_t sets[CAPS_SET_COUNT];
};

/* Capability numbers fit in 64 bits on every kernel so far (40 is the
 * highest in 6.x); a number beyond that is treated as unsupported. */
#define CAPS_MASK_BITS 64

static const char *const set_names[CAPS_SET_COUNT] = {
    [CAPS_BOUNDING] = "bounding",       [CAPS_EFFECTIVE] = "effective",
    [CAPS_INHERITABLE] = "inheritable", [CAPS_PERMITTED] = "permitted",
    [CAPS_AMBIENT] = "ambient",
};

static uint64_t cap_bit(unsigned cap) { return UINT64_C(1) << cap; }

/* How many capabilities the running kernel has (libcap probes it once). */
static unsigned kernel_cap_count(void) {
  unsigned n = cap_max_bits();
  return n > CAPS_MASK_BITS ? CAPS_MASK_BITS : n;
}

/* "CAP_NET_ADMIN" for messages; libcap's own names are lower case. */
static void cap_display_name(unsigned cap, char *buf, size_t size) {
  char *name = cap_to_name((cap_value_t)cap);
  if (name == NULL) {
    snprintf(buf, size, "capability %u", cap);
    return;
  }
  size_t i = 0;
  for (; name[i] && i + 1 < size; i++)
    buf[i] = (char)toupper((unsigned char)name[i]);
  buf[i] = '\0';
  cap_free(name);
}

/* Only the OCI spelling: "CAP_" and upper-case letters, digits and '_'.
 * libcap would also take "12", "cap_kill" or "CAP_CHOWN,CAP_KILL" (which
 * it reads as CAP_CHOWN alone). */
static bool is_cap_spelling(const char *name) {
  if (strncmp(name, "CAP_", 4) != 0 || name[4] == '\0')
    return false;
  for (const char *c = name + 4; *c; c++)
    if (!(isupper((unsigned char)*c) || isdigit((unsigned char)*c) ||
          *c == '_'))
      return false;
  return true;
}

static int resolve_set(char *const *names, const char *set_name, uint64_t *mask,
                       cell_error **err) {
  unsigned supported = kernel_cap_count();
  *mask = 0;
  for (size_t i = 0; names && names[i]; i++) {
    cap_value_t cap;
    if (!is_cap_spelling(names[i]) || cap_from_name(names[i], &cap) < 0)
      return cell_fail(err, 0,
                       "process.capabilities.%s[%zu]: unknown capability `%s`",
                       set_name, i, names[i]);
    if (cap < 0 || (unsigned)cap >= supported) {
      log_warn("process.capabilities.%s[%zu]: `%s` is not supported by this "
               "kernel, skipped",
               set_name, i, names[i]);
      continue;
    }
    *mask |= cap_bit((unsigned)cap);
  }
  return 0;
}

/* The first capability of `extra` not in `within`, named in an error. */
static int fail_not_subset(cell_error **err, enum caps_set set, uint64_t extra,
                           const char *what) {
  unsigned cap = (unsigned)__builtin_ctzll(extra);
  char name[64];
  cap_display_name(cap, name, sizeof(name));
  return cell_fail(err, 0, "process.capabilities.%s: `%s` is not in %s",
                   set_names[set], name, what);
}

/* Combinations the kernel refuses whatever our privileges: better said at
 * create, with the name, than as EPERM from capset in the container. */
static int check_plan(const struct caps_plan *plan, cell_error **err) {
  const uint64_t *s = plan->sets;
  uint64_t extra = s[CAPS_EFFECTIVE] & ~s[CAPS_PERMITTED];
  if (extra)
    return fail_not_subset(err, CAPS_EFFECTIVE, extra, "the permitted set");
  return 0;
}

/* The ambient capabilities the kernel would refuse to raise are left out,
 * as runc leaves them (it ignores PR_CAP_AMBIENT_RAISE's EPERM). */
static void drop_unraisable_ambient(struct caps_plan *plan) {
  uint64_t *s = plan->sets;
  uint64_t extra = s[CAPS_AMBIENT] & ~(s[CAPS_PERMITTED] & s[CAPS_INHERITABLE]);
  for (unsigned cap = 0; cap < CAPS_MASK_BITS; cap++) {
    if (!(extra & cap_bit(cap)))
      continue;
    char name[64];
    cap_display_name(cap, name, sizeof(name));
    log_debug("process.capabilities.ambient: `%s` is not in both the permitted "
              "and the inheritable set, the kernel would not raise it: skipped",
              name);
  }
  s[CAPS_AMBIENT] &= ~extra;
}

int caps_plan_make(const struct spec_process *p, struct caps_plan **out,
                   cell_error **err) {
  *out = NULL;
  struct caps_plan *plan = xcalloc(1, sizeof(*plan));
  const struct spec_capabilities *c = p ? p->capabilities : NULL;
  if (c) {
    char **lists[CAPS_SET_COUNT] = {
        [CAPS_BOUNDING] = c->bounding,       [CAPS_EFFECTIVE] = c->effective,
        [CAPS_INHERITABLE] = c->inheritable, [CAPS_PERMITTED] = c->permitted,
        [CAPS_AMBIENT] = c->ambient,
    };
    for (int set = 0; set < CAPS_SET_COUNT; set++) {
      if (resolve_set(lists[set], set_names[set], &plan->sets[set], err) < 0) {
        free(plan);
        return -1;
      }
    }
  }
  if (check_plan(plan, err) < 0) {
    free(plan);
    return -1;
  }
  drop_unraisable_ambient(plan);
  *out = plan;
  return 0;
}

void caps_plan_free(struct caps_plan *plan) { free(plan); }

uint64_t caps_plan_mask(const struct caps_plan *plan, enum caps_set set) {
  if (plan == NULL || (unsigned)set >= CAPS_SET_COUNT)
    return 0;
  return plan->sets[set];
}

/* Dropped without asking first whether it is there (one syscall per
 * capability, not two): a drop of one already gone succeeds.  Only a
 * runtime without CAP_SETPCAP is refused even then, which is no failure
 * when the capability is gone already. */
static int drop_bounding(uint64_t keep, cell_error **err) {
  unsigned n = kernel_cap_count();
  for (unsigned cap = 0; cap < n; cap++) {
    if (keep & cap_bit(cap))
      continue;
    if (cap_drop_bound((cap_value_t)cap) < 0 &&
        !(errno == EPERM && cap_get_bound((cap_value_t)cap) == 0)) {
      char name[64];
      cap_display_name(cap, name, sizeof(name));
      return cell_fail_errno(err, "process.capabilities.bounding: drop `%s`",
                             name);
    }
  }
  return 0;
}

int caps_before_setuid(const struct caps_plan *plan, cell_error **err) {
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return cell_fail_errno(err, "process.capabilities: prctl(PR_SET_KEEPCAPS)");
  return drop_bounding(plan->sets[CAPS_BOUNDING], err);
}

static int add_flags(cap_t c, cap_flag_t flag, uint64_t mask) {
  cap_value_t list[CAPS_MASK_BITS];
  int n = 0;
  for (unsigned cap = 0; cap < CAPS_MASK_BITS; cap++)
    if (mask & cap_bit(cap))
      list[n++] = (cap_value_t)cap;
  return n ? cap_set_flag(c, flag, n, list, CAP_SET) : 0;
}

static uint64_t proc_mask(cap_t c, cap_flag_t flag) {
  uint64_t mask = 0;
  for (unsigned cap = 0; cap < kernel_cap_count(); cap++) {
    cap_flag_value_t v = CAP_CLEAR;
    if (cap_get_flag(c, (cap_value_t)cap, flag, &v) == 0 && v == CAP_SET)
      mask |= cap_bit(cap);
  }
  return mask;
}

/* capset said EPERM: find which rule the plan broke, to say so. */
static int explain_capset_failure(const struct caps_plan *plan, int errnum,
                                  cell_error **err) {
  cap_t cur = cap_get_proc();
  if (cur == NULL)
    return cell_fail(err, errnum, "process.capabilities: capset");
  uint64_t permitted = proc_mask(cur, CAP_PERMITTED);
  uint64_t inheritable = proc_mask(cur, CAP_INHERITABLE);
  cap_free(cur);
  uint64_t bounding = 0;
  for (unsigned cap = 0; cap < kernel_cap_count(); cap++)
    if (cap_get_bound((cap_value_t)cap) == 1)
      bounding |= cap_bit(cap);

  uint64_t extra = plan->sets[CAPS_PERMITTED] & ~permitted;
  if (extra)
    return fail_not_subset(err, CAPS_PERMITTED, extra,
                           "the runtime's permitted set");
  extra = plan->sets[CAPS_INHERITABLE] & ~(inheritable | bounding);
  if (extra)
    return fail_not_subset(err, CAPS_INHERITABLE, extra, "the bounding set");
  return cell_fail(err, errnum, "process.capabilities: capset");
}

/* Cleared with the one prctl: libcap's cap_reset_ambient first asks the
 * kernel about each capability in turn, one syscall each. */
static int set_ambient(uint64_t mask, cell_error **err) {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
      !(errno == EINVAL && mask == 0))
    return cell_fail_errno(err, "process.capabilities.ambient: clear");
  for (unsigned cap = 0; cap < CAPS_MASK_BITS; cap++) {
    if (!(mask & cap_bit(cap)))
      continue;
    if (cap_set_ambient((cap_value_t)cap, CAP_SET) < 0) {
      char name[64];
      cap_display_name(cap, name, sizeof(name));
      /* Refused by the kernel for a reason the plan could not see
       * (SECBIT_NO_CAP_AMBIENT_RAISE): ignored, as runc does. */
      if (errno == EPERM) {
        log_debug("process.capabilities.ambient: raise `%s`: %s, skipped", name,
                  strerror(errno));
        continue;
      }
      return cell_fail_errno(err, "process.capabilities.ambient: raise `%s`",
                             name);
    }
  }
  return 0;
}

int caps_after_setuid(const struct caps_plan *plan, cell_error **err) {
  cap_t c = cap_init();
  if (c == NULL)
    return cell_fail_errno(err, "process.capabilities: cap_init");
  int r = 0;
  if (add_flags(c, CAP_EFFECTIVE, plan->sets[CAPS_EFFECTIVE]) < 0 ||
      add_flags(c, CAP_PERMITTED, plan->sets[CAPS_PERMITTED]) < 0 ||
      add_flags(c, CAP_INHERITABLE, plan->sets[CAPS_INHERITABLE]) < 0)
    r = cell_fail_errno(err, "process.capabilities: cap_set_flag");
  else if (cap_set_proc(c) < 0)
    r = errno == EPERM ? explain_capset_failure(plan, errno, err)
                       : cell_fail_errno(err, "process.capabilities: capset");
  cap_free(c);
  if (r < 0)
    return r;
  if (set_ambient(plan->sets[CAPS_AMBIENT], err) < 0)
    return -1;
  /* Cleared by execve anyway; off now so nothing later relies on it. */
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return cell_fail_errno(err, "process.capabilities: prctl(PR_SET_KEEPCAPS)");
  return 0;
}
