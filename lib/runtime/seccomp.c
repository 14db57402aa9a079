/* linux.seccomp: compiled with libseccomp in the runtime, where an error
 * can still be reported before any process exists, into a plain BPF
 * program; the container process only hands that program to seccomp(2).
 *
 * libseccomp 2.5 cannot export into memory, so the program goes through a
 * memfd. */

#include "runtime/seccomp.h" /* ours, found through -iquote */
#include <seccomp.h> /* libseccomp's */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/syscalls.h"
#include "base/util.h"

/* The kernel refuses longer programs (BPF_MAXINSNS). */
#define SECCOMP_MAX_INSNS 4096
/* Arguments a syscall has, at most. */
#define SECCOMP_MAX_ARGS 6

struct seccomp_program {
  struct sock_filter *insns;
  unsigned short len;
  unsigned int flags; /* SECCOMP_FILTER_FLAG_* for seccomp(2) */
  bool notify;
};

/* ---- names --------------------------------------------------------------- */
struct action_name {
  const char *name;
  uint32_t action;  /* without the errno/trace data */
  bool takes_errno; /* errnoRet is meaningful */
};

static const struct action_name actions[] = {
    {"SCMP_ACT_KILL", SCMP_ACT_KILL, false},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP, false},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), true},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), true},
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG, false},
    {"SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY, false},
};

static const struct {
  const char *name;
  enum scmp_compare op;
} operators[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

static const struct {
  const char *name;
  unsigned int flag;
} filter_flags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
     SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
};

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* Syscalls the container process uses to hand the listener fd over (and
 * to report a failure): a notify rule on them would wait for an agent
 * that cannot have the fd yet. */
static const char *const notify_forbidden[] = {"sendmsg", "write", NULL};

/* Errors name "<path>.<action_field>" or "<path>.<errno_field>"
 * ("linux.seccomp.syscalls[3].errnoRet").  For SCMP_ACT_TRACE the errno
 * value is the one the tracer sees. */
static int resolve_action(const char *name, const uint32_t *errno_ret,
                          const char *path, const char *action_field,
                          const char *errno_field, uint32_t *out,
                          cell_error **err) {
  const struct action_name *a = NULL;
  for (size_t i = 0; i < N_ELEMENTS(actions); i++)
    if (strcmp(name, actions[i].name) == 0)
      a = &actions[i];
  if (a == NULL)
    return cell_fail(err, 0, "%s.%s: unknown action `%s`", path, action_field,
                     name);
  if (!a->takes_errno) {
    if (errno_ret)
      return cell_fail(err, 0, "%s.%s: `%s` takes no errno value", path,
                       errno_field, name);
    *out = a->action;
    return 0;
  }
  uint32_t e = errno_ret ? *errno_ret : EPERM;
  if (e > 0xffff)
    return cell_fail(err, 0, "%s.%s: %u is out of range (0..65535)", path,
                     errno_field, e);
  *out = a->action | e;
  return 0;
}

static bool is_notify(uint32_t action) { return action == SCMP_ACT_NOTIFY; }

static int resolve_arch(const char *name, size_t i, uint32_t *out,
                        cell_error **err) {
  /* libseccomp's names are the constants' suffixes in lower case. */
  const char *suffix = strncmp(name, "SCMP_ARCH_", 10) == 0 ? name + 10 : "";
  cleanup_free char *lower = xstrdup(suffix);
  for (char *c = lower; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  *out = lower[0] ? seccomp_arch_resolve_name(lower) : 0;
  if (*out == 0)
    return cell_fail(err, 0,
                     "linux.seccomp.architectures[%zu]: unknown architecture "
                     "`%s`",
                     i, name);
  return 0;
}

static int resolve_flags(char *const *names, unsigned int *out,
                         cell_error **err) {
  *out = 0;
  for (size_t i = 0; names && names[i]; i++) {
    size_t k = 0;
    while (k < N_ELEMENTS(filter_flags) &&
           strcmp(names[i], filter_flags[k].name) != 0)
      k++;
    if (k == N_ELEMENTS(filter_flags))
      return cell_fail(err, 0, "linux.seccomp.flags[%zu]: unknown flag `%s`", i,
                       names[i]);
    *out |= filter_flags[k].flag;
  }
  return 0;
}

/* ---- rules --------------------------------------------------------------- */
struct rule {
  uint32_t action;
  struct scmp_arg_cmp conds[SECCOMP_MAX_ARGS * 4];
  unsigned n_conds;
  /* Several conditions on one argument cannot be ANDed by libseccomp;
   * like runc, each condition then becomes a rule of its own (an OR). */
  bool one_rule_per_cond;
};

static int resolve_args(const struct spec_seccomp_syscall *sc, const char *path,
                        struct rule *r, cell_error **err) {
  unsigned per_index[SECCOMP_MAX_ARGS] = {0};
  if (sc->n_args > N_ELEMENTS(r->conds))
    return cell_fail(err, 0, "%s.args: more than %zu conditions", path,
                     N_ELEMENTS(r->conds));
  for (size_t j = 0; j < sc->n_args; j++) {
    const struct spec_seccomp_arg *a = &sc->args[j];
    if (a->index >= SECCOMP_MAX_ARGS)
      return cell_fail(err, 0,
                       "%s.args[%zu].index: %u is not an argument "
                       "(0..5)",
                       path, j, a->index);
    size_t k = 0;
    while (k < N_ELEMENTS(operators) &&
           (a->op == NULL || strcmp(a->op, operators[k].name) != 0))
      k++;
    if (k == N_ELEMENTS(operators))
      return cell_fail(err, 0, "%s.args[%zu].op: unknown operator `%s`", path,
                       j, a->op ? a->op : "");
    /* For MASKED_EQ, value is the mask and valueTwo the datum. */
    r->conds[j] = (struct scmp_arg_cmp){
        .arg = a->index,
        .op = operators[k].op,
        .datum_a = a->value,
        .datum_b = a->value_two,
    };
    if (++per_index[a->index] > 1)
      r->one_rule_per_cond = true;
  }
  r->n_conds = (unsigned)sc->n_args;
  return 0;
}

static int check_notify_target(const char *name, const char *path,
                               cell_error **err) {
  for (size_t k = 0; notify_forbidden[k]; k++)
    if (strcmp(name, notify_forbidden[k]) == 0)
      return cell_fail(err, 0,
                       "%s: SCMP_ACT_NOTIFY cannot be used for `%s` (the "
                       "runtime needs it to pass the listener fd on)",
                       path, name);
  return 0;
}

static int add_rule(scmp_filter_ctx ctx, const struct rule *r, int nr,
                    const char *name, const char *path, cell_error **err) {
  int rc = 0;
  if (r->one_rule_per_cond) {
    for (unsigned k = 0; k < r->n_conds && rc == 0; k++)
      rc = seccomp_rule_add_array(ctx, r->action, nr, 1, &r->conds[k]);
  } else {
    rc = seccomp_rule_add_array(ctx, r->action, nr, r->n_conds, r->conds);
  }
  if (rc < 0)
    return cell_fail(err, -rc, "%s: add a rule for `%s`", path, name);
  return 0;
}

/* Actions newer than seccomp itself: libseccomp would only say EINVAL. */
static int check_kernel_support(uint32_t action, const char *path,
                                const char *field, const char *name,
                                cell_error **err) {
  unsigned need = 0;
  if (action == SCMP_ACT_LOG || action == SCMP_ACT_KILL_PROCESS)
    need = 3;
  else if (is_notify(action))
    need = 5;
  if (need && seccomp_api_get() < need)
    return cell_fail(err, 0, "%s.%s: `%s` is not supported by this kernel",
                     path, field, name);
  return 0;
}

static int add_syscall_entry(scmp_filter_ctx ctx, uint32_t default_action,
                             const struct spec_seccomp_syscall *sc, size_t i,
                             cell_error **err) {
  char path[64];
  snprintf(path, sizeof(path), "linux.seccomp.syscalls[%zu]", i);
  const char *action_name = sc->action ? sc->action : "";
  struct rule r = {0};
  if (resolve_action(action_name, sc->errno_ret, path, "action", "errnoRet",
                     &r.action, err) < 0 ||
      resolve_args(sc, path, &r, err) < 0)
    return -1;
  for (size_t j = 0; is_notify(r.action) && sc->names && sc->names[j]; j++)
    if (check_notify_target(sc->names[j], path, err) < 0)
      return -1;
  /* libseccomp refuses a rule that repeats the default; it changes
   * nothing anyway. */
  if (r.action == default_action)
    return 0;
  if (check_kernel_support(r.action, path, "action", action_name, err) < 0)
    return -1;
  for (size_t j = 0; sc->names && sc->names[j]; j++) {
    const char *name = sc->names[j];
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
      log_debug("%s.names[%zu]: unknown syscall `%s`, skipped", path, j, name);
      continue;
    }
    if (add_rule(ctx, &r, nr, name, path, err) < 0)
      return -1;
  }
  return 0;
}

/* ---- syscalls the profile does not know ------------------------------------
 *
 * A profile names the syscalls its author knew.  A newer one, unnamed, gets
 * the default action; when that is an errno (EPERM mostly), a program that
 * probes a new syscall and falls back on ENOSYS (clone3 -> clone,
 * faccessat2 -> faccessat, close_range -> close ...) takes the EPERM as a
 * real refusal and fails.  runc answers ENOSYS for them instead, and so do
 * we, in the same two cases:
 *
 *  - a syscall number above the largest one the profile names for the
 *    syscall's architecture: newer than the profile, whether or not this
 *    libseccomp knows it.  libseccomp cannot say "nr > N", so a stub of
 *    our own goes in front of its program (runc's patchbpf does the
 *    same);
 *  - clone3 when the profile does not name it.  Here we go further than
 *    runc 1.1: glibc >= 2.34 tries clone3 first for every thread and
 *    falls back to clone only on ENOSYS, and clone3's flags sit behind a
 *    pointer no filter can inspect, so no profile can mean anything by
 *    leaving it to an EPERM default (docker's and podman's profiles say
 *    ENOSYS for it explicitly).  A profile that names clone3 keeps its
 *    choice.
 *
 * Only when the default refuses: an allowing default lets the kernel
 * answer (ENOSYS for what it lacks), and a default of ENOSYS already is. */

#define X32_SYSCALL_BIT 0x40000000u
/* Architectures one stub can cover (libseccomp has 20 or so). */
#define STUB_MAX_ARCHES 32

static bool default_refuses(uint32_t default_action) {
  if (default_action == SCMP_ACT_ALLOW || default_action == SCMP_ACT_LOG)
    return false;
  return default_action != SCMP_ACT_ERRNO(ENOSYS);
}

static bool profile_names(const struct spec_seccomp *s, const char *syscall) {
  for (size_t i = 0; i < s->n_syscalls; i++)
    for (size_t j = 0; s->syscalls[i].names && s->syscalls[i].names[j]; j++)
      if (strcmp(s->syscalls[i].names[j], syscall) == 0)
        return true;
  return false;
}

static int add_clone3_enosys(scmp_filter_ctx ctx, const struct spec_seccomp *s,
                             cell_error **err) {
  if (profile_names(s, "clone3"))
    return 0;
  int nr = seccomp_syscall_resolve_name("clone3");
  if (nr == __NR_SCMP_ERROR)
    return 0; /* too new for this libseccomp: the stub covers it */
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
  if (rc < 0)
    return cell_fail(err, -rc, "linux.seccomp: add ENOSYS for `clone3`");
  return 0;
}

struct stub_arch {
  uint32_t arch; /* AUDIT_ARCH_*, as the kernel reports it */
  int max_nr;    /* the largest syscall the profile names, -1 for none */
};

/* The largest number the profile names for arch, by libseccomp's table. */
static int largest_named(const struct spec_seccomp *s, uint32_t arch) {
  int max = -1;
  for (size_t i = 0; i < s->n_syscalls; i++)
    for (size_t j = 0; s->syscalls[i].names && s->syscalls[i].names[j]; j++) {
      /* Negative: a multiplexed pseudo-syscall (socketcall on x86). */
      int nr = seccomp_syscall_resolve_name_arch(arch, s->syscalls[i].names[j]);
      if (nr > max)
        max = nr;
    }
  return max;
}

static void add_stub_arch(struct stub_arch *a, size_t *n, uint32_t arch,
                          const struct spec_seccomp *s) {
  /* x32's syscalls reach the filter as x86_64's with X32_SYSCALL_BIT set;
   * the x86_64 entry leaves them to libseccomp's program. */
  if (arch == SCMP_ARCH_X32 || *n == STUB_MAX_ARCHES)
    return;
  for (size_t i = 0; i < *n; i++)
    if (a[i].arch == arch)
      return;
  int max = largest_named(s, arch);
  if (max >= 0) /* naming nothing, the profile says nothing of "newer" */
    a[(*n)++] = (struct stub_arch){.arch = arch, .max_nr = max};
}

static size_t stub_arches(const struct spec_seccomp *s, struct stub_arch *a) {
  size_t n = 0;
  add_stub_arch(a, &n, seccomp_arch_native(), s);
  for (size_t i = 0; s->architectures && s->architectures[i]; i++) {
    uint32_t arch;
    cell_error *e = NULL; /* resolved once already by add_architectures */
    if (resolve_arch(s->architectures[i], i, &arch, &e) == 0)
      add_stub_arch(a, &n, arch, s);
    cell_error_free(&e);
  }
  return n;
}

/* Per architecture: "arch matches and nr > max: ENOSYS", else on to
 * libseccomp's program, which follows the stub (and loads the arch again
 * itself).  Jumps only go forward, to the ENOSYS return or past it. */
static size_t build_enosys_stub(const struct stub_arch *a, size_t n,
                                struct sock_filter *out) {
  size_t len = 2; /* the jump over the return, the return */
  for (size_t i = 0; i < n; i++)
    len += a[i].arch == SCMP_ARCH_X86_64 ? 5 : 4;
  const size_t enosys = len - 1, program = len;
  size_t k = 0;
#define JUMP_TO(target) ((unsigned char)((target) - k - 1))
  for (size_t i = 0; i < n; i++) {
    bool x86_64 = a[i].arch == SCMP_ARCH_X86_64;
    out[k] = (struct sock_filter)BPF_STMT(
        BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    k++;
    out[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, a[i].arch,
                                          0, x86_64 ? 3 : 2);
    k++;
    out[k] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    k++;
    if (x86_64) {
      out[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K,
                                            X32_SYSCALL_BIT, JUMP_TO(program), 0);
      k++;
    }
    out[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K,
                                          (uint32_t)a[i].max_nr,
                                          JUMP_TO(enosys), JUMP_TO(program));
    k++;
  }
#undef JUMP_TO
  out[k++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA | BPF_K, 1);
  out[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                                          SECCOMP_RET_ERRNO | ENOSYS);
  return k;
}

static int prepend_enosys_stub(const struct spec_seccomp *s,
                               struct seccomp_program *p, cell_error **err) {
  struct stub_arch arches[STUB_MAX_ARCHES];
  size_t n = stub_arches(s, arches);
  if (n == 0)
    return 0;
  struct sock_filter stub[STUB_MAX_ARCHES * 5 + 2];
  size_t len = build_enosys_stub(arches, n, stub);
  if (p->len + len > SECCOMP_MAX_INSNS)
    return cell_fail(err, 0,
                     "linux.seccomp: the filter has %zu instructions, "
                     "more than the kernel's %d",
                     p->len + len, SECCOMP_MAX_INSNS);
  struct sock_filter *insns = xmalloc((p->len + len) * sizeof(*insns));
  memcpy(insns, stub, len * sizeof(*insns));
  memcpy(insns + len, p->insns, p->len * sizeof(*insns));
  free(p->insns);
  p->insns = insns;
  p->len = (unsigned short)(p->len + len);
  for (size_t i = 0; i < n; i++)
    log_debug("linux.seccomp: ENOSYS for syscalls above %d on arch %#x "
              "(newer than the profile)",
              arches[i].max_nr, arches[i].arch);
  return 0;
}

/* ---- compile ------------------------------------------------------------- */
static bool uses_notify(const struct spec_seccomp *s) {
  for (size_t i = 0; i < s->n_syscalls; i++)
    if (s->syscalls[i].action &&
        strcmp(s->syscalls[i].action, "SCMP_ACT_NOTIFY") == 0)
      return true;
  return false;
}

static int check_listener(const struct spec_seccomp *s, bool notify,
                          cell_error **err) {
  if (s->listener_metadata && s->listener_path == NULL)
    return cell_fail(
        err, 0, "linux.seccomp.listenerMetadata: set without listenerPath");
  if (notify && (s->listener_path == NULL || s->listener_path[0] == '\0'))
    return cell_fail(err, 0,
                     "linux.seccomp.listenerPath: required when a rule uses "
                     "SCMP_ACT_NOTIFY");
  return 0;
}

static int add_architectures(scmp_filter_ctx ctx, char *const *archs,
                             cell_error **err) {
  for (size_t i = 0; archs && archs[i]; i++) {
    uint32_t arch;
    if (resolve_arch(archs[i], i, &arch, err) < 0)
      return -1;
    int rc = seccomp_arch_add(ctx, arch);
    if (rc < 0 && rc != -EEXIST) /* the native one is there already */
      return cell_fail(err, -rc, "linux.seccomp.architectures[%zu]: add `%s`",
                       i, archs[i]);
  }
  return 0;
}

static int export_program(scmp_filter_ctx ctx, struct seccomp_program *p,
                          cell_error **err) {
  cleanup_close int fd = memfd_create("cell-seccomp", MFD_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "linux.seccomp: memfd_create");
  int rc = seccomp_export_bpf(ctx, fd);
  if (rc < 0)
    return cell_fail(err, -rc, "linux.seccomp: export the filter");
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0)
    return cell_fail_errno(err, "linux.seccomp: export the filter");
  size_t n = (size_t)size / sizeof(struct sock_filter);
  if (n == 0 || (size_t)size % sizeof(struct sock_filter) != 0)
    return cell_fail(err, 0,
                     "linux.seccomp: libseccomp exported %lld bytes, "
                     "not a BPF program",
                     (long long)size);
  if (n > SECCOMP_MAX_INSNS)
    return cell_fail(err, 0,
                     "linux.seccomp: the filter has %zu instructions, "
                     "more than the kernel's %d",
                     n, SECCOMP_MAX_INSNS);
  p->insns = xmalloc((size_t)size);
  ssize_t got = pread(fd, p->insns, (size_t)size, 0);
  if (got != size)
    return cell_fail(err, got < 0 ? errno : EIO,
                     "linux.seccomp: read the exported filter");
  p->len = (unsigned short)n;
  return 0;
}

/* What can be refused before libseccomp sees anything. */
static int check_top_level(const struct spec_seccomp *s,
                           uint32_t *default_action, struct seccomp_program *p,
                           cell_error **err) {
  if (resolve_action(s->default_action ? s->default_action : "",
                     s->default_errno_ret, "linux.seccomp", "defaultAction",
                     "defaultErrnoRet", default_action, err) < 0)
    return -1;
  /* Every syscall would wait for an agent, including the ones that hand
   * the agent its fd. */
  if (is_notify(*default_action))
    return cell_fail(err, 0,
                     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY "
                     "cannot be the default action");
  if (check_kernel_support(*default_action, "linux.seccomp", "defaultAction",
                           s->default_action, err) < 0 ||
      resolve_flags(s->flags, &p->flags, err) < 0)
    return -1;
  p->notify = uses_notify(s);
  return check_listener(s, p->notify, err);
}

static int build(const struct spec_seccomp *s, scmp_filter_ctx *ctxp,
                 struct seccomp_program *p, cell_error **err) {
  uint32_t default_action;
  if (check_top_level(s, &default_action, p, err) < 0)
    return -1;
  scmp_filter_ctx ctx = *ctxp = seccomp_init(default_action);
  if (ctx == NULL)
    return cell_fail(err, EINVAL, "linux.seccomp: seccomp_init");
  /* no_new_privs is the lifecycle code's business (process.noNewPrivileges),
   * and we load the program ourselves anyway. */
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0)
    return cell_fail(err, -rc, "linux.seccomp: seccomp_attr_set");
  /* A binary tree of syscall numbers instead of a linear list: every
   * syscall of the container runs fewer instructions, and so does the
   * kernel when it loads the filter (it runs it for every syscall number
   * to build its cache of always-allowed ones). */
  rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if (rc < 0)
    log_debug("linux.seccomp: no binary-tree optimisation: %s", strerror(-rc));
  if (add_architectures(ctx, s->architectures, err) < 0)
    return -1;
  for (size_t i = 0; i < s->n_syscalls; i++)
    if (add_syscall_entry(ctx, default_action, &s->syscalls[i], i, err) < 0)
      return -1;
  bool refuses = default_refuses(default_action);
  if (refuses && add_clone3_enosys(ctx, s, err) < 0)
    return -1;
  if (p->notify) {
    p->flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    /* The kernel accepts TSYNC with a listener only in this form. */
    if (p->flags & SECCOMP_FILTER_FLAG_TSYNC)
      p->flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  }
  if (export_program(ctx, p, err) < 0)
    return -1;
  return refuses ? prepend_enosys_stub(s, p, err) : 0;
}

int seccomp_compile(const struct spec_seccomp *s, struct seccomp_program **out,
                    cell_error **err) {
  *out = NULL;
  if (s == NULL)
    return 0;
  struct seccomp_program *p = xcalloc(1, sizeof(*p));
  scmp_filter_ctx ctx = NULL;
  int r = build(s, &ctx, p, err);
  if (ctx)
    seccomp_release(ctx);
  if (r < 0) {
    seccomp_program_free(p);
    return -1;
  }
  *out = p;
  return 0;
}

void seccomp_program_free(struct seccomp_program *p) {
  if (p == NULL)
    return;
  free(p->insns);
  free(p);
}

bool seccomp_program_notifies(const struct seccomp_program *p) {
  return p && p->notify;
}

/* ---- cache ---------------------------------------------------------------- */

#define CACHE_MAGIC "cell-seccomp-cache 3\n"

static void key_add(char **key, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void key_add(char **key, size_t *len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *part = NULL;
  int n = vasprintf(&part, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  *key = xrealloc(*key, *len + (size_t)n + 1);
  memcpy(*key + *len, part, (size_t)n + 1);
  *len += (size_t)n;
  free(part);
}

static void key_add_strv(char **key, size_t *len, const char *what,
                         char *const *v) {
  key_add(key, len, "%s:", what);
  for (size_t i = 0; v && v[i]; i++)
    key_add(key, len, "%zu:%s,", strlen(v[i]), v[i]);
  key_add(key, len, "\n");
}

/* Everything the compiled program depends on, unambiguously (strings are
 * length-prefixed). */
static char *cache_key(const struct spec_seccomp *s, size_t *len) {
  char *key = NULL;
  *len = 0;
  struct utsname u;
  uname(&u);
  const struct scmp_version *v = seccomp_version();
  key_add(&key, len, "libseccomp %u.%u.%u kernel %s %s\n", v->major, v->minor,
          v->micro, u.release, u.machine);
  key_add(&key, len, "default %s errno %lld\n",
          s->default_action ? s->default_action : "",
          s->default_errno_ret ? (long long)*s->default_errno_ret : -1LL);
  key_add_strv(&key, len, "arch", s->architectures);
  key_add_strv(&key, len, "flags", s->flags);
  key_add(&key, len, "listener %d\n", s->listener_path != NULL);
  for (size_t i = 0; i < s->n_syscalls; i++) {
    const struct spec_seccomp_syscall *c = &s->syscalls[i];
    key_add_strv(&key, len, "names", c->names);
    key_add(&key, len, "action %s errno %lld\n", c->action ? c->action : "",
            c->errno_ret ? (long long)*c->errno_ret : -1LL);
    for (size_t k = 0; k < c->n_args; k++)
      key_add(&key, len, "arg %u %llu %llu %s\n", c->args[k].index,
              (unsigned long long)c->args[k].value,
              (unsigned long long)c->args[k].value_two,
              c->args[k].op ? c->args[k].op : "");
  }
  return key;
}

static uint64_t fnv1a(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

struct cache_header {
  uint32_t key_len;
  uint32_t flags;
  uint32_t notify;
  uint32_t len;
};

/* The cached program for key, or NULL. */
static struct seccomp_program *cache_read(int dirfd, const char *name,
                                          const char *key, size_t key_len) {
  cleanup_free char *data = NULL;
  size_t n = 0;
  cell_error *e = NULL;
  if (cell_read_file_at(dirfd, name, 1 << 20, &data, &n, &e) < 0) {
    cell_error_free(&e);
    return NULL;
  }
  size_t magic = strlen(CACHE_MAGIC);
  struct cache_header h;
  if (n < magic + sizeof(h) || memcmp(data, CACHE_MAGIC, magic) != 0)
    return NULL;
  memcpy(&h, data + magic, sizeof(h));
  size_t insns = (size_t)h.len * sizeof(struct sock_filter);
  const char *k = data + magic + sizeof(h);
  if (h.key_len != key_len || h.len == 0 || h.len > SECCOMP_MAX_INSNS ||
      n != magic + sizeof(h) + key_len + insns || memcmp(k, key, key_len) != 0)
    return NULL;
  struct seccomp_program *p = xcalloc(1, sizeof(*p));
  p->insns = xmalloc(insns);
  memcpy(p->insns, k + key_len, insns);
  p->len = (unsigned short)h.len;
  p->flags = h.flags;
  p->notify = h.notify != 0;
  return p;
}

static void cache_write(int dirfd, const char *name, const char *key,
                        size_t key_len, const struct seccomp_program *p) {
  size_t magic = strlen(CACHE_MAGIC);
  size_t insns = (size_t)p->len * sizeof(struct sock_filter);
  struct cache_header h = {.key_len = (uint32_t)key_len,
                           .flags = p->flags,
                           .notify = p->notify,
                           .len = p->len};
  size_t n = magic + sizeof(h) + key_len + insns;
  cleanup_free char *data = xmalloc(n);
  memcpy(data, CACHE_MAGIC, magic);
  memcpy(data + magic, &h, sizeof(h));
  memcpy(data + magic + sizeof(h), key, key_len);
  memcpy(data + magic + sizeof(h) + key_len, p->insns, insns);
  cell_error *e = NULL;
  if (cell_write_file_atomic_at(dirfd, name, data, n, 0600, &e) < 0) {
    log_debug("seccomp cache: %s", e->msg);
    cell_error_free(&e);
  }
}

int seccomp_compile_cached(const struct spec_seccomp *s, int cache_dirfd,
                           struct seccomp_program **out, cell_error **err) {
  *out = NULL;
  if (s == NULL)
    return 0;
  if (cache_dirfd < 0)
    return seccomp_compile(s, out, err);
  size_t key_len = 0;
  cleanup_free char *key = cache_key(s, &key_len);
  char name[32];
  snprintf(name, sizeof(name), "%016llx.bpf",
           (unsigned long long)fnv1a(key, key_len));
  *out = cache_read(cache_dirfd, name, key, key_len);
  if (*out)
    return 0;
  if (seccomp_compile(s, out, err) < 0)
    return -1;
  cache_write(cache_dirfd, name, key, key_len, *out);
  return 0;
}

/* ---- load ---------------------------------------------------------------- */
int seccomp_program_load(const struct seccomp_program *p, int *notify_fd,
                         cell_error **err) {
  if (notify_fd)
    *notify_fd = -1;
  if (p == NULL)
    return 0;
  struct sock_fprog prog = {.len = p->len, .filter = p->insns};
  long rc = sys_seccomp(SECCOMP_SET_MODE_FILTER, p->flags, &prog);
  if (rc < 0) {
    if (errno == EACCES)
      return cell_fail_errno(err, "linux.seccomp: load the filter (without "
                                  "no_new_privs this needs CAP_SYS_ADMIN)");
    return cell_fail_errno(err, "linux.seccomp: load the filter (flags %#x)",
                           p->flags);
  }
  if (p->notify) {
    if (notify_fd)
      *notify_fd = (int)rc; /* the kernel made it close-on-exec */
    else
      close((int)rc);
  }
  return 0;
}

/* ---- notify -------------------------------------------------------------- */
/* The container process state of runtime-spec's config-linux.md: the
 * state, the pid of the process the filter confines (the container's
 * own, or an exec'd one), the fd names and listenerMetadata. */
static int process_state_json(const struct spec_seccomp *s,
                              const char *state_json, pid_t process_pid,
                              char **out, size_t *len, cell_error **err) {
  cleanup_json struct json_value *state = NULL;
  if (json_parse(state_json, strlen(state_json), &state, err) < 0)
    return cell_error_wrap(err, "seccomp notify: container state");
  int64_t pid = process_pid;
  if (process_pid <= 0 && !json_get_int64(json_object_get(state, "pid"), &pid))
    return cell_fail(err, 0, "seccomp notify: container state has no pid");
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_string(g, "ociVersion", CELL_OCI_VERSION);
  json_gen_key(g, "fds");
  json_gen_array_open(g);
  json_gen_string(g, "seccompFd");
  json_gen_array_close(g);
  json_gen_kv_int(g, "pid", pid);
  if (s->listener_metadata)
    json_gen_kv_string(g, "metadata", s->listener_metadata);
  json_gen_key(g, "state");
  json_gen_value(g, state);
  json_gen_object_close(g);
  *out = json_gen_finish(g, len);
  json_gen_free(g);
  return 0;
}

static int connect_listener(const char *path, cell_error **err) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(addr.sun_path))
    return cell_fail(err, ENAMETOOLONG, "linux.seccomp.listenerPath: `%s`",
                     path);
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cell_fail_errno(err, "linux.seccomp.listenerPath: socket");
  int rc;
  do
    rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    cell_fail_errno(err, "linux.seccomp.listenerPath: connect `%s`", path);
    close(fd);
    return -1;
  }
  return fd;
}

int seccomp_send_notify_fd(const struct spec_seccomp *s, int notify_fd,
                           pid_t process_pid, const char *state_json,
                           cell_error **err) {
  if (s == NULL || s->listener_path == NULL)
    return cell_fail(err, 0, "linux.seccomp.listenerPath: not set");
  cleanup_free char *msg = NULL;
  size_t len;
  if (process_state_json(s, state_json, process_pid, &msg, &len, err) < 0)
    return -1;
  cleanup_close int sock = connect_listener(s->listener_path, err);
  if (sock < 0)
    return -1;
  if (cell_send_with_fd(sock, msg, len, notify_fd) < 0)
    return cell_fail_errno(err, "linux.seccomp.listenerPath: send to `%s`",
                           s->listener_path);
  return 0;
}
