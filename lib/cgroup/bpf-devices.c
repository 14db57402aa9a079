#include "cgroup/bpf-devices.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/syscalls.h"
#include "base/util.h"

/* ---- the policy: the v1 kernel's default + exceptions -------------------- */

static bool same_device(const struct dev_rule *a, const struct dev_rule *b) {
  return a->type == b->type && a->major == b->major && a->minor == b->minor;
}

/* A rule against the default widens the exceptions (merging the access of
 * an exception for the same device), as devcgroup's dev_exception_add. */
static void exception_add(struct dev_policy *p, const struct dev_rule *r) {
  for (size_t i = 0; i < p->n_exceptions; i++) {
    if (same_device(&p->exceptions[i], r)) {
      p->exceptions[i].access |= r->access;
      return;
    }
  }
  p->exceptions =
      xrealloc(p->exceptions, (p->n_exceptions + 1) * sizeof(*p->exceptions));
  p->exceptions[p->n_exceptions] = *r;
  p->exceptions[p->n_exceptions].allow = !p->default_allow;
  p->n_exceptions++;
}

/* A rule that agrees with the default narrows the exception for exactly
 * that device (dev_exception_rm: no wildcard matching). */
static void exception_remove(struct dev_policy *p, const struct dev_rule *r) {
  size_t kept = 0;
  for (size_t i = 0; i < p->n_exceptions; i++) {
    struct dev_rule ex = p->exceptions[i];
    if (same_device(&ex, r))
      ex.access &= ~r->access;
    if (ex.access != 0)
      p->exceptions[kept++] = ex;
  }
  p->n_exceptions = kept;
}

void dev_policy_from_rules(const struct dev_rule *rules, size_t n,
                           struct dev_policy *out) {
  *out = (struct dev_policy){.default_allow = true};
  for (size_t i = 0; i < n; i++) {
    const struct dev_rule *r = &rules[i];
    if (r->type == 'a') {
      out->n_exceptions = 0;
      out->default_allow = r->allow;
    } else if (r->allow == out->default_allow) {
      exception_remove(out, r);
    } else {
      exception_add(out, r);
    }
  }
}

void dev_policy_clear(struct dev_policy *p) {
  free(p->exceptions);
  p->exceptions = NULL;
  p->n_exceptions = 0;
}

static bool exception_matches(const struct dev_rule *ex, char type,
                              uint32_t major, uint32_t minor) {
  return (ex->type == 'a' || ex->type == type) &&
         (ex->major == DEV_ANY || ex->major == (int64_t)major) &&
         (ex->minor == DEV_ANY || ex->minor == (int64_t)minor);
}

/* Default allow: any exception that touches one of the requested bits
 * denies.  Default deny: one exception must cover every requested bit. */
bool dev_policy_allows(const struct dev_policy *p, char type, uint32_t major,
                       uint32_t minor, unsigned access) {
  for (size_t i = 0; i < p->n_exceptions; i++) {
    const struct dev_rule *ex = &p->exceptions[i];
    if (!exception_matches(ex, type, major, minor))
      continue;
    if (p->default_allow && (access & ex->access) != 0)
      return false;
    if (!p->default_allow && (access & ~ex->access) == 0)
      return true;
  }
  return p->default_allow;
}

static void format_number(int64_t v, char *buf, size_t size) {
  if (v == DEV_ANY)
    snprintf(buf, size, "*");
  else
    snprintf(buf, size, "%lld", (long long)v);
}

void dev_rule_format(const struct dev_rule *r, char *buf, size_t size) {
  if (r->type == 'a') {
    snprintf(buf, size, "a");
    return;
  }
  char major[24], minor[24], access[4];
  size_t n = 0;
  format_number(r->major, major, sizeof(major));
  format_number(r->minor, minor, sizeof(minor));
  if (r->access & DEV_ACCESS_READ)
    access[n++] = 'r';
  if (r->access & DEV_ACCESS_WRITE)
    access[n++] = 'w';
  if (r->access & DEV_ACCESS_MKNOD)
    access[n++] = 'm';
  access[n] = '\0';
  snprintf(buf, size, "%c %s:%s %s", r->type, major, minor, access);
}

/* ---- a v1 cgroup's list, and moving it to new rules ---------------------- */

static bool parse_number(const char *s, int64_t *out) {
  if (strcmp(s, "*") == 0) {
    *out = DEV_ANY;
    return true;
  }
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || v > UINT32_MAX)
    return false;
  *out = (int64_t)v;
  return true;
}

/* One line of devices.list: "c 1:3 rwm", "a *:* rwm". */
static bool parse_list_line(const char *line, struct dev_rule *out) {
  char type, major[16], minor[16], access[8];
  if (sscanf(line, "%c %15[0-9*]:%15[0-9*] %7s", &type, major, minor,
             access) != 4 ||
      (type != 'a' && type != 'c' && type != 'b') ||
      !parse_number(major, &out->major) || !parse_number(minor, &out->minor))
    return false;
  out->type = type;
  out->access = 0;
  for (const char *a = access; *a; a++) {
    if (*a == 'r')
      out->access |= DEV_ACCESS_READ;
    else if (*a == 'w')
      out->access |= DEV_ACCESS_WRITE;
    else if (*a == 'm')
      out->access |= DEV_ACCESS_MKNOD;
    else
      return false;
  }
  return out->access != 0;
}

int dev_policy_parse_list(const char *text, struct dev_policy *out,
                          cell_error **err) {
  *out = (struct dev_policy){.default_allow = false};
  cleanup_free char *copy = xstrdup(text);
  for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    struct dev_rule r = {.allow = true};
    if (!parse_list_line(line, &r)) {
      dev_policy_clear(out);
      return cell_fail(err, EINVAL, "devices.list: cannot read `%s`", line);
    }
    if (r.type == 'a') {
      /* The kernel shows a default allow as this line alone. */
      dev_policy_clear(out);
      out->default_allow = true;
      return 0;
    }
    exception_add(out, &r);
  }
  return 0;
}

static unsigned access_for(const struct dev_policy *p, const struct dev_rule *r) {
  for (size_t i = 0; i < p->n_exceptions; i++)
    if (same_device(&p->exceptions[i], r))
      return p->exceptions[i].access;
  return 0;
}

static void push_rule(struct dev_rule **v, size_t *n, struct dev_rule r) {
  *v = xrealloc(*v, (*n + 1) * sizeof(**v));
  (*v)[(*n)++] = r;
}

/* The rules that give `to` what `from` lacks: exceptions to the default. */
static void push_missing(const struct dev_policy *from,
                         const struct dev_policy *to, bool allow,
                         struct dev_rule **out, size_t *n) {
  for (size_t i = 0; i < to->n_exceptions; i++) {
    struct dev_rule r = to->exceptions[i];
    r.access &= ~access_for(from, &r);
    r.allow = allow;
    if (r.access)
      push_rule(out, n, r);
  }
}

bool dev_policy_transition(const struct dev_policy *from,
                           const struct dev_policy *to, struct dev_rule **out,
                           size_t *n) {
  *out = NULL;
  *n = 0;
  if (from->default_allow != to->default_allow)
    return false;
  bool deny_default = !to->default_allow;
  /* Narrowing first, then widening: never a moment with more than either
   * policy gives.  Under a default deny the exceptions allow, so what
   * `from` has beyond `to` goes first; under a default allow they deny,
   * so what `to` adds goes first. */
  if (deny_default) {
    push_missing(to, from, false, out, n);
    push_missing(from, to, true, out, n);
  } else {
    push_missing(from, to, false, out, n);
    push_missing(to, from, true, out, n);
  }
  return true;
}

/* ---- the program --------------------------------------------------------- */

#define INSN(c, d, s, o, i)                                                    \
  ((struct bpf_insn){                                                          \
      .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(dst, src, off) INSN(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define MOV_REG(dst, src) INSN(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV_IMM(dst, imm) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define AND_IMM(dst, imm) INSN(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm)
#define RSH_IMM(dst, imm) INSN(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, imm)
#define JNE32_IMM(dst, imm, off)                                               \
  INSN(BPF_JMP32 | BPF_JNE | BPF_K, dst, 0, off, imm)
#define JNE_IMM(dst, imm, off) INSN(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define JEQ_IMM(dst, imm, off) INSN(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, off, imm)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Registers while the program runs: r2 the requested access bits, r3 the
 * device type, r4 major, r5 minor, r6 scratch. */
enum {
  R_CTX = 1,
  R_ACCESS = 2,
  R_TYPE = 3,
  R_MAJOR = 4,
  R_MINOR = 5,
  R_TMP = 6
};

enum { PROLOGUE_LEN = 6, BLOCK_TAIL_LEN = 5, EPILOGUE_LEN = 2 };

static size_t block_checks(const struct dev_rule *ex) {
  return (ex->type != 'a') + (ex->major != DEV_ANY) + (ex->minor != DEV_ANY);
}

size_t bpf_devices_program_len(const struct dev_policy *p) {
  size_t n = PROLOGUE_LEN + EPILOGUE_LEN;
  for (size_t i = 0; i < p->n_exceptions; i++)
    n += block_checks(&p->exceptions[i]) + BLOCK_TAIL_LEN;
  return n;
}

struct program {
  struct bpf_insn *insns;
  size_t len;
};

static void emit(struct program *prog, struct bpf_insn insn) {
  prog->insns[prog->len++] = insn;
}

/* One exception: fall through to the next block unless the device matches
 * and the access is (default deny) covered by it / (default allow) touches
 * it, in which case return the exception's verdict. */
static void emit_exception(struct program *prog, const struct dev_rule *ex,
                           bool default_allow) {
  size_t checks = block_checks(ex), done = 0;
  const int32_t type =
      ex->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
  if (ex->type != 'a') {
    done++;
    emit(prog,
         JNE32_IMM(R_TYPE, type, (int16_t)(checks - done + BLOCK_TAIL_LEN)));
  }
  if (ex->major != DEV_ANY) {
    done++;
    emit(prog, JNE32_IMM(R_MAJOR, (int32_t)(uint32_t)ex->major,
                         (int16_t)(checks - done + BLOCK_TAIL_LEN)));
  }
  if (ex->minor != DEV_ANY) {
    done++;
    emit(prog, JNE32_IMM(R_MINOR, (int32_t)(uint32_t)ex->minor,
                         (int16_t)(checks - done + BLOCK_TAIL_LEN)));
  }
  emit(prog, MOV_REG(R_TMP, R_ACCESS));
  if (default_allow) {
    emit(prog, AND_IMM(R_TMP, (int32_t)ex->access));
    emit(prog, JEQ_IMM(R_TMP, 0, 2));
    emit(prog, MOV_IMM(BPF_REG_0, 0));
  } else {
    emit(prog, AND_IMM(R_TMP, (int32_t)(~ex->access & DEV_ACCESS_ALL)));
    emit(prog, JNE_IMM(R_TMP, 0, 2));
    emit(prog, MOV_IMM(BPF_REG_0, 1));
  }
  emit(prog, EXIT());
}

static void build_program(const struct dev_policy *p, struct program *prog) {
  prog->insns = xcalloc(bpf_devices_program_len(p), sizeof(*prog->insns));
  prog->len = 0;
  /* struct bpf_cgroup_dev_ctx: access_type = (access << 16) | type. */
  emit(prog, LDX_W(R_ACCESS, R_CTX,
                   offsetof(struct bpf_cgroup_dev_ctx, access_type)));
  emit(prog, MOV_REG(R_TYPE, R_ACCESS));
  emit(prog, AND_IMM(R_TYPE, 0xffff));
  emit(prog, RSH_IMM(R_ACCESS, 16));
  emit(prog, LDX_W(R_MAJOR, R_CTX, offsetof(struct bpf_cgroup_dev_ctx, major)));
  emit(prog, LDX_W(R_MINOR, R_CTX, offsetof(struct bpf_cgroup_dev_ctx, minor)));
  for (size_t i = 0; i < p->n_exceptions; i++)
    emit_exception(prog, &p->exceptions[i], p->default_allow);
  emit(prog, MOV_IMM(BPF_REG_0, p->default_allow ? 1 : 0));
  emit(prog, EXIT());
}

/* ---- bpf(2) -------------------------------------------------------------- */

static uint64_t ptr_to_u64(const void *p) { return (uint64_t)(uintptr_t)p; }

/* The verifier's last complaint, to make a rejected program explicable. */
static void last_log_line(char *log, char *out, size_t size) {
  size_t n = strlen(log);
  while (n > 0 && log[n - 1] == '\n')
    log[--n] = '\0';
  char *nl = strrchr(log, '\n');
  snprintf(out, size, "%s", nl ? nl + 1 : log);
}

static int load_program(const struct program *prog, cell_error **err) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = ptr_to_u64(prog->insns);
  attr.insn_cnt = (uint32_t)prog->len;
  attr.license = ptr_to_u64("GPL");
  int fd = sys_bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0)
    return fd;
  int saved = errno;
  /* Load again with the verifier log only to explain the failure. */
  const size_t log_size = 1 << 16;
  cleanup_free char *log = xcalloc(1, log_size);
  attr.log_buf = ptr_to_u64(log);
  attr.log_size = (uint32_t)log_size;
  attr.log_level = 1;
  fd = sys_bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0)
    return fd;
  char line[256];
  last_log_line(log, line, sizeof(line));
  if (line[0])
    return cell_fail(err, saved,
                     "load the device filter (%zu instructions, verifier: %s)",
                     prog->len, line);
  return cell_fail(err, saved, "load the device filter (%zu instructions)",
                   prog->len);
}

static int query_programs(int cgroup_fd, uint32_t **ids, uint32_t *n,
                          cell_error **err) {
  uint32_t cap = 8;
  for (;;) {
    *ids = xrealloc(*ids, cap * sizeof(**ids));
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = (uint32_t)cgroup_fd;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = ptr_to_u64(*ids);
    attr.query.prog_cnt = cap;
    if (sys_bpf(BPF_PROG_QUERY, &attr) == 0) {
      *n = attr.query.prog_cnt;
      return 0;
    }
    if (errno != ENOSPC || attr.query.prog_cnt <= cap)
      return cell_fail_errno(err, "query the device filters of the cgroup");
    cap = attr.query.prog_cnt;
  }
}

static int detach_program(int cgroup_fd, uint32_t id, cell_error **err) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_id = id;
  cleanup_close int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
  if (fd < 0) {
    if (errno == ENOENT) /* gone already */
      return 0;
    return cell_fail_errno(err, "open the old device filter (id %u)", id);
  }
  memset(&attr, 0, sizeof(attr));
  attr.target_fd = (uint32_t)cgroup_fd;
  attr.attach_bpf_fd = (uint32_t)fd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
    return cell_fail_errno(err, "detach the old device filter (id %u)", id);
  return 0;
}

static int attach_program(int cgroup_fd, int prog_fd, cell_error **err) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.target_fd = (uint32_t)cgroup_fd;
  attr.attach_bpf_fd = (uint32_t)prog_fd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
    return cell_fail_errno(err, "attach the device filter to the cgroup");
  return 0;
}

int bpf_devices_apply(int cgroup_fd, const struct dev_rule *rules, size_t n,
                      cell_error **err) {
  struct dev_policy policy;
  dev_policy_from_rules(rules, n, &policy);
  struct program prog;
  build_program(&policy, &prog);
  dev_policy_clear(&policy);
  cleanup_close int prog_fd = load_program(&prog, err);
  free(prog.insns);
  cleanup_free uint32_t *old = NULL;
  uint32_t n_old = 0;
  if (prog_fd < 0 || query_programs(cgroup_fd, &old, &n_old, err) < 0 ||
      attach_program(cgroup_fd, prog_fd, err) < 0)
    return -1;
  for (uint32_t i = 0; i < n_old; i++)
    if (detach_program(cgroup_fd, old[i], err) < 0)
      return -1;
  return 0;
}

int bpf_devices_count(int cgroup_fd, cell_error **err) {
  cleanup_free uint32_t *ids = NULL;
  uint32_t n = 0;
  if (query_programs(cgroup_fd, &ids, &n, err) < 0)
    return -1;
  return (int)n;
}
