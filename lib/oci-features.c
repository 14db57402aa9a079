#include "oci-features.h"

#include "json.h"
#include "spec.h"
#include "version.h"

static const char *const hook_kinds[] = {
    "prestart", "createRuntime", "createContainer", "startContainer",
    "poststart", "poststop", NULL};

static const char *const mount_options[] = {
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync",
    "exec", "iversion", "lazytime", "loud", "mand", "noatime", "nodev",
    "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
    "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime",
    "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
    "shared", "silent", "slave", "strictatime", "suid", "sync", "unbindable",
    NULL};

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

static void gen_linux(struct json_gen *g) {
  json_gen_key(g, "linux");
  json_gen_object_open(g);
  json_gen_key(g, "namespaces");
  json_gen_array_open(g);
  for (int t = 0; t < SPEC_NS_COUNT; t++)
    json_gen_string(g, spec_ns_type_name((enum spec_ns_type)t));
  json_gen_array_close(g);
  gen_enabled(g, "apparmor", false);
  gen_enabled(g, "selinux", false);
  gen_enabled(g, "intelRdt", false);
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
