#include "oci/oci-features.h"

#include <ctype.h>
#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/capability.h>
#include <unistd.h>

#include "base/json.h"
#include "base/syscalls.h"
#include "base/util.h"
#include "base/version.h"
#include "oci/spec.h"

static const char *const hook_kinds[] = {
    "prestart", "createRuntime", "createContainer", "startContainer",
    "poststart", "poststop", NULL};

static const char *const mount_options[] = {
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync",
    "exec", "lazytime", "loud", "mand", "noatime", "nodev",
    "nodiratime", "noexec", "nolazytime", "nomand",
    "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private",
    "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec",
    "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime",
    "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate",
    "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid",
    "rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
    "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
    NULL};

/* What lib/seccomp.c accepts in syscalls[].action and defaultAction. */
static const char *const seccomp_actions[] = {
    "SCMP_ACT_ALLOW",        "SCMP_ACT_ERRNO",        "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",  "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",       "SCMP_ACT_TRACE",        "SCMP_ACT_TRAP",
    NULL};

static const char *const seccomp_operators[] = {
    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",        "SCMP_CMP_LE",
    "SCMP_CMP_LT", "SCMP_CMP_NE", "SCMP_CMP_MASKED_EQ", NULL};

/* The architectures of config-linux.md; only those lib/seccomp.c can put
 * in a filter here are reported. */
static const char *const seccomp_arch_candidates[] = {
    "SCMP_ARCH_AARCH64",     "SCMP_ARCH_ARM",       "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",        "SCMP_ARCH_MIPS",      "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",   "SCMP_ARCH_MIPSEL",    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC",    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",         "SCMP_ARCH_PPC64",     "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",     "SCMP_ARCH_S390",      "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",          "SCMP_ARCH_SHEB",      "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",         "SCMP_ARCH_X86_64",    NULL};

/* The flags lib/seccomp.c knows, and what the kernel needs besides the flag
 * itself for seccomp(2) to accept it. */
static const struct {
  const char *name;
  unsigned long flag;
  unsigned long companions;
} seccomp_flags[] = {
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG, 0},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW, 0},
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC, 0},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
     SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, SECCOMP_FILTER_FLAG_NEW_LISTENER},
};

static void gen_strings(struct json_gen *g, const char *key,
                        const char *const *v) {
  json_gen_key(g, key);
  json_gen_array_open(g);
  for (; *v; v++)
    json_gen_string(g, *v);
  json_gen_array_close(g);
}

static void gen_enabled(struct json_gen *g, const char *key, bool enabled) {
  json_gen_key(g, key);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "enabled", enabled);
  json_gen_object_close(g);
}

/* Every capability the running kernel has and libcap can name, spelled
 * the OCI way ("CAP_NET_ADMIN"). */
static void gen_capabilities(struct json_gen *g) {
  json_gen_key(g, "capabilities");
  json_gen_array_open(g);
  unsigned n = cap_max_bits();
  for (unsigned cap = 0; cap < n; cap++) {
    char *name = cap_to_name((cap_value_t)cap);
    /* libcap prints a capability it has no name for as its number. */
    if (name && strncmp(name, "cap_", 4) == 0) {
      for (char *c = name; *c; c++)
        *c = (char)toupper((unsigned char)*c);
      json_gen_string(g, name);
    }
    cap_free(name);
  }
  json_gen_array_close(g);
}

static void gen_cgroup(struct json_gen *g) {
  json_gen_key(g, "cgroup");
  json_gen_object_open(g);
  json_gen_kv_bool(g, "v1", true);
  json_gen_kv_bool(g, "v2", true);
  json_gen_kv_bool(g, "systemd", false);
  json_gen_kv_bool(g, "systemdUser", false);
  json_gen_kv_bool(g, "rdma", true);
  json_gen_object_close(g);
}

/* Known to libseccomp and usable next to the native architecture: it
 * refuses to mix byte orders in one filter, so on x86 the big-endian
 * architectures are names lib/seccomp.c cannot use. */
static bool arch_usable(const char *name) {
  cleanup_free char *lower = xstrdup(name + strlen("SCMP_ARCH_"));
  for (char *c = lower; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  uint32_t arch = seccomp_arch_resolve_name(lower);
  if (arch == 0)
    return false;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL)
    return false;
  int rc = seccomp_arch_add(ctx, arch);
  seccomp_release(ctx);
  return rc == 0 || rc == -EEXIST;
}

/* A flag the kernel knows makes seccomp(2) go on to read the (here
 * missing) program, EFAULT; an unknown one is EINVAL.  Nothing is
 * installed either way. */
static bool kernel_takes_flag(unsigned long flags) {
  return sys_seccomp(SECCOMP_SET_MODE_FILTER, flags, NULL) < 0 &&
         errno == EFAULT;
}

static void gen_seccomp(struct json_gen *g) {
  json_gen_key(g, "seccomp");
  json_gen_object_open(g);
  json_gen_kv_bool(g, "enabled", true);
  gen_strings(g, "actions", seccomp_actions);
  gen_strings(g, "operators", seccomp_operators);
  json_gen_key(g, "archs");
  json_gen_array_open(g);
  for (size_t i = 0; seccomp_arch_candidates[i]; i++)
    if (arch_usable(seccomp_arch_candidates[i]))
      json_gen_string(g, seccomp_arch_candidates[i]);
  json_gen_array_close(g);
  size_t nflags = sizeof(seccomp_flags) / sizeof(seccomp_flags[0]);
  json_gen_key(g, "knownFlags");
  json_gen_array_open(g);
  for (size_t i = 0; i < nflags; i++)
    json_gen_string(g, seccomp_flags[i].name);
  json_gen_array_close(g);
  json_gen_key(g, "supportedFlags");
  json_gen_array_open(g);
  for (size_t i = 0; i < nflags; i++)
    if (kernel_takes_flag(seccomp_flags[i].flag | seccomp_flags[i].companions))
      json_gen_string(g, seccomp_flags[i].name);
  json_gen_array_close(g);
  json_gen_object_close(g);
}

static void gen_mount_extensions(struct json_gen *g) {
  json_gen_key(g, "mountExtensions");
  json_gen_object_open(g);
  gen_enabled(g, "idmap", false);
  json_gen_object_close(g);
}

static void gen_linux(struct json_gen *g) {
  json_gen_key(g, "linux");
  json_gen_object_open(g);
  json_gen_key(g, "namespaces");
  json_gen_array_open(g);
  for (int t = 0; t < SPEC_NS_COUNT; t++)
    json_gen_string(g, spec_ns_type_name((enum spec_ns_type)t));
  json_gen_array_close(g);
  gen_capabilities(g);
  gen_cgroup(g);
  gen_seccomp(g);
  gen_enabled(g, "apparmor", true); /* process.apparmorProfile: runtime/lsm */
  gen_enabled(g, "selinux", false);
  gen_enabled(g, "intelRdt", false);
  gen_mount_extensions(g);
  json_gen_object_close(g);
}

char *features_json(void) {
  struct json_gen *g = json_gen_new(true);
  json_gen_object_open(g);
  json_gen_kv_string(g, "ociVersionMin", "1.0.0");
  json_gen_kv_string(g, "ociVersionMax", CELL_OCI_VERSION);
  gen_strings(g, "hooks", hook_kinds);
  gen_strings(g, "mountOptions", mount_options);
  gen_linux(g);
  json_gen_key(g, "annotations");
  json_gen_object_open(g);
  json_gen_kv_string(g, "org.cell.version", CELL_VERSION);
  json_gen_object_close(g);
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}
