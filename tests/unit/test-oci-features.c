/* `cell features` says only what cell really takes: every capability,
 * seccomp action, operator, architecture and flag it lists is accepted
 * by the code that reads config.json (capabilities.c, seccomp.c). */
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>

#include "base/json.h"
#include "base/util.h"
#include "oci/oci-features.h"
#include "runtime/capabilities.h"
#include "runtime/seccomp.h"
#include "unit.h"

static struct json_value *features(void) {
  cleanup_free char *text = features_json();
  struct json_value *v = NULL;
  cell_error *err = NULL;
  CHECK(json_parse(text, strlen(text), &v, &err) == 0);
  cell_error_free(&err);
  return v;
}

static const struct json_value *member(const struct json_value *v,
                                       const char *path) {
  cleanup_free char *copy = xstrdup(path);
  char *save = NULL;
  for (char *k = strtok_r(copy, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
    v = json_object_get(v, k);
  return v;
}

/* The strings of an array member, NULL-terminated (pointers into f). */
static const char **strings(const struct json_value *f, const char *path,
                            size_t *n) {
  const struct json_value *a = member(f, path);
  *n = 0;
  CHECK(a && a->type == JSON_ARRAY);
  if (a == NULL || a->type != JSON_ARRAY)
    return xcalloc(1, sizeof(char *));
  const char **out = xcalloc(a->u.array.len + 1, sizeof(char *));
  for (size_t i = 0; i < a->u.array.len; i++) {
    CHECK(a->u.array.items[i]->type == JSON_STRING);
    if (a->u.array.items[i]->type == JSON_STRING)
      out[(*n)++] = a->u.array.items[i]->u.string;
  }
  return out;
}

static bool is_true(const struct json_value *f, const char *path) {
  const struct json_value *v = member(f, path);
  return v && v->type == JSON_BOOL && v->u.boolean;
}

static bool is_false(const struct json_value *f, const char *path) {
  const struct json_value *v = member(f, path);
  return v && v->type == JSON_BOOL && !v->u.boolean;
}

static bool compiles(const struct spec_seccomp *s) {
  struct seccomp_program *p = NULL;
  cell_error *err = NULL;
  int r = seccomp_compile(s, &p, &err);
  if (err)
    fprintf(stderr, "  %s\n", err->msg);
  cell_error_free(&err);
  seccomp_program_free(p);
  return r == 0;
}

static bool action_compiles(const char *action) {
  char *names[] = {"getppid", NULL};
  struct spec_seccomp_syscall sc = {.names = names, .action = (char *)action};
  struct spec_seccomp s = {.default_action = "SCMP_ACT_ALLOW",
                           .syscalls = &sc,
                           .n_syscalls = 1};
  if (strcmp(action, "SCMP_ACT_NOTIFY") == 0)
    s.listener_path = "/run/agent.sock";
  return compiles(&s);
}

TEST(seccomp_actions_are_accepted) {
  cleanup_json struct json_value *f = features();
  CHECK(is_true(f, "linux.seccomp.enabled"));
  size_t n;
  cleanup_free const char **v = strings(f, "linux.seccomp.actions", &n);
  CHECK(n >= 9);
  for (size_t i = 0; i < n; i++) {
    bool ok = action_compiles(v[i]);
    CHECK(ok);
    if (!ok)
      fprintf(stderr, "  action %s\n", v[i]);
  }
  /* The check itself can fail. */
  CHECK(!action_compiles("SCMP_ACT_NOPE"));
}

TEST(seccomp_operators_are_accepted) {
  cleanup_json struct json_value *f = features();
  size_t n;
  cleanup_free const char **v = strings(f, "linux.seccomp.operators", &n);
  CHECK(n == 7);
  for (size_t i = 0; i < n; i++) {
    char *names[] = {"getppid", NULL};
    struct spec_seccomp_arg arg = {.index = 0, .value = 1, .op = (char *)v[i]};
    struct spec_seccomp_syscall sc = {
        .names = names, .action = "SCMP_ACT_ERRNO", .args = &arg, .n_args = 1};
    struct spec_seccomp s = {
        .default_action = "SCMP_ACT_ALLOW", .syscalls = &sc, .n_syscalls = 1};
    CHECK(compiles(&s));
  }
}

TEST(seccomp_archs_and_flags_are_accepted) {
  cleanup_json struct json_value *f = features();
  size_t n;
  cleanup_free const char **archs = strings(f, "linux.seccomp.archs", &n);
  bool native = false;
  for (size_t i = 0; i < n; i++) {
    char *one[] = {(char *)archs[i], NULL};
    struct spec_seccomp s = {.default_action = "SCMP_ACT_ALLOW",
                             .architectures = one};
    CHECK(compiles(&s));
    native = native || strcmp(archs[i], "SCMP_ARCH_X86_64") == 0 ||
             strcmp(archs[i], "SCMP_ARCH_AARCH64") == 0;
  }
  CHECK(native);

  size_t nknown, nsupported;
  cleanup_free const char **known =
      strings(f, "linux.seccomp.knownFlags", &nknown);
  cleanup_free const char **supported =
      strings(f, "linux.seccomp.supportedFlags", &nsupported);
  CHECK(nknown >= 3);
  for (size_t i = 0; i < nknown; i++) {
    char *one[] = {(char *)known[i], NULL};
    struct spec_seccomp s = {.default_action = "SCMP_ACT_ALLOW", .flags = one};
    CHECK(compiles(&s));
  }
  /* supportedFlags is a subset of knownFlags. */
  for (size_t i = 0; i < nsupported; i++) {
    bool found = false;
    for (size_t k = 0; k < nknown; k++)
      found = found || strcmp(supported[i], known[k]) == 0;
    CHECK(found);
  }
}

TEST(capabilities_are_the_kernels) {
  cleanup_json struct json_value *f = features();
  size_t n;
  cleanup_free const char **v = strings(f, "linux.capabilities", &n);
  /* Up to the kernel's last (libcap may not name a newer one). */
  CHECK(n >= 38 && n <= (size_t)cap_max_bits());
  for (size_t i = 0; i < n; i++) {
    char *one[] = {(char *)v[i], NULL};
    struct spec_capabilities c = {.bounding = one};
    struct spec_process p = {.capabilities = &c};
    struct caps_plan *plan = NULL;
    cell_error *err = NULL;
    CHECK(caps_plan_make(&p, &plan, &err) == 0);
    /* Listed in the kernel's order: CAP_CHOWN is bit 0, ... */
    CHECK(caps_plan_mask(plan, CAPS_BOUNDING) == UINT64_C(1) << i);
    caps_plan_free(plan);
    cell_error_free(&err);
  }
  CHECK(n > 0 && strcmp(v[0], "CAP_CHOWN") == 0);
}

TEST(other_linux_features) {
  cleanup_json struct json_value *f = features();
  CHECK(is_true(f, "linux.cgroup.v1"));
  CHECK(is_true(f, "linux.cgroup.v2"));
  CHECK(is_false(f, "linux.cgroup.systemd"));
  CHECK(is_false(f, "linux.cgroup.systemdUser"));
  CHECK(is_true(f, "linux.cgroup.rdma"));
  CHECK(is_true(f, "linux.apparmor.enabled"));
  CHECK(is_false(f, "linux.selinux.enabled"));
  CHECK(is_false(f, "linux.mountExtensions.idmap.enabled"));
  size_t n;
  cleanup_free const char **ns = strings(f, "linux.namespaces", &n);
  CHECK(n == 8);
}

int main(void) {
  RUN(seccomp_actions_are_accepted);
  RUN(seccomp_operators_are_accepted);
  RUN(seccomp_archs_and_flags_are_accepted);
  RUN(capabilities_are_the_kernels);
  RUN(other_linux_features);
  UNIT_DONE();
}
