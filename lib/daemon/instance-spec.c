/* The OCI config of an instance: the default spec, with a user namespace
 * mapping the instance's range, its root, hostname, init and limits. */
#include "daemon/instance-spec.h"

#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "daemon/instance-lxcfs.h"
#include "oci/spec-default.h"
#include "oci/spec.h"

/* Namespaced to the instance's user namespace, so they give its root power
 * over its own files and processes only.  CAP_SYS_BOOT lets an init halt
 * (in a pid namespace reboot(2) ends the namespace's init). */
static const char *const instance_caps[] = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FOWNER",     "CAP_FSETID",
    "CAP_KILL",   "CAP_SETGID",       "CAP_SETUID",     "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD",
    "CAP_AUDIT_WRITE", "CAP_SETFCAP", "CAP_SYS_BOOT",
};

static void gen_caps(struct json_gen *g) {
  json_gen_object_open(g);
  const char *sets[] = {"bounding", "effective", "permitted"};
  for (size_t s = 0; s < 3; s++) {
    json_gen_key(g, sets[s]);
    json_gen_array_open(g);
    for (size_t i = 0; i < sizeof(instance_caps) / sizeof(*instance_caps); i++)
      json_gen_string(g, instance_caps[i]);
    json_gen_array_close(g);
  }
  json_gen_object_close(g);
}

static void gen_process(struct json_gen *g, const struct json_value *p,
                        const struct instance_record *r) {
  json_gen_object_open(g);
  for (size_t i = 0; p && p->type == JSON_OBJECT && i < p->u.object.len; i++) {
    const char *k = p->u.object.keys[i];
    if (strcmp(k, "terminal") == 0 || strcmp(k, "args") == 0 ||
        strcmp(k, "capabilities") == 0 || strcmp(k, "noNewPrivileges") == 0)
      continue;
    json_gen_key(g, k);
    json_gen_value(g, p->u.object.values[i]);
  }
  /* A pty for the init: its console, held by celld's console keeper. */
  json_gen_kv_bool(g, "terminal", true);
  /* A server's root must be able to run su, ping and the like. */
  json_gen_kv_bool(g, "noNewPrivileges", false);
  json_gen_key(g, "args");
  json_gen_array_open(g);
  for (char **a = r->init; *a; a++)
    json_gen_string(g, *a);
  json_gen_array_close(g);
  json_gen_key(g, "capabilities");
  gen_caps(g);
  json_gen_object_close(g);
}

static void gen_mapping(struct json_gen *g, const char *key,
                        const struct instance_record *r) {
  json_gen_key(g, key);
  json_gen_array_open(g);
  json_gen_object_open(g);
  json_gen_kv_int(g, "containerID", 0);
  json_gen_kv_int(g, "hostID", r->id_start);
  json_gen_kv_int(g, "size", r->id_count);
  json_gen_object_close(g);
  json_gen_array_close(g);
}

static void gen_resources(struct json_gen *g, const struct json_value *res,
                          const struct instance_record *r) {
  json_gen_object_open(g);
  for (size_t i = 0; res && res->type == JSON_OBJECT && i < res->u.object.len; i++) {
    const char *k = res->u.object.keys[i];
    if (strcmp(k, "memory") == 0 || strcmp(k, "cpu") == 0 || strcmp(k, "pids") == 0)
      continue;
    json_gen_key(g, k);
    json_gen_value(g, res->u.object.values[i]);
  }
  if (r->memory > 0) {
    json_gen_key(g, "memory");
    json_gen_object_open(g);
    json_gen_kv_int(g, "limit", r->memory);
    json_gen_object_close(g);
  }
  if (r->cpu_milli > 0) {
    json_gen_key(g, "cpu");
    json_gen_object_open(g);
    json_gen_kv_int(g, "period", 100000);
    json_gen_kv_int(g, "quota", r->cpu_milli * 100);
    json_gen_object_close(g);
  }
  if (r->pids > 0) {
    json_gen_key(g, "pids");
    json_gen_object_open(g);
    json_gen_kv_int(g, "limit", r->pids);
    json_gen_object_close(g);
  }
  json_gen_object_close(g);
}

static void gen_linux(struct json_gen *g, const struct json_value *l,
                      const struct instance_record *r) {
  json_gen_object_open(g);
  bool has_resources = false;
  for (size_t i = 0; l && l->type == JSON_OBJECT && i < l->u.object.len; i++) {
    const char *k = l->u.object.keys[i];
    const struct json_value *v = l->u.object.values[i];
    if (strcmp(k, "uidMappings") == 0 || strcmp(k, "gidMappings") == 0 ||
        strcmp(k, "cgroupsPath") == 0)
      continue;
    json_gen_key(g, k);
    if (strcmp(k, "namespaces") == 0 && v->type == JSON_ARRAY) {
      json_gen_array_open(g);
      for (size_t j = 0; j < v->u.array.len; j++) {
        const struct json_value *type = json_object_get(v->u.array.items[j], "type");
        if (type && type->type == JSON_STRING && strcmp(type->u.string, "user") == 0)
          continue;
        json_gen_value(g, v->u.array.items[j]);
      }
      json_gen_object_open(g);
      json_gen_kv_string(g, "type", "user");
      json_gen_object_close(g);
      json_gen_array_close(g);
    } else if (strcmp(k, "resources") == 0) {
      gen_resources(g, v, r);
      has_resources = true;
    } else {
      json_gen_value(g, v);
    }
  }
  if (!has_resources) {
    json_gen_key(g, "resources");
    gen_resources(g, NULL, r);
  }
  gen_mapping(g, "uidMappings", r);
  gen_mapping(g, "gidMappings", r);
  json_gen_kv_string(g, "cgroupsPath", r->cgroup);
  json_gen_object_close(g);
}

char *instance_spec_json(const struct instance_record *r, const char *rootfs,
                         const char *lxcfs_dir, cell_error **err) {
  cleanup_free char *base = spec_default_json(false, 0, 0);
  cleanup_json struct json_value *spec = NULL;
  if (json_parse(base, strlen(base), &spec, err) < 0)
    return NULL;
  struct json_gen *g = json_gen_new(true);
  json_gen_object_open(g);
  for (size_t i = 0; i < spec->u.object.len; i++) {
    const char *k = spec->u.object.keys[i];
    const struct json_value *v = spec->u.object.values[i];
    if (strcmp(k, "process") == 0 || strcmp(k, "root") == 0 ||
        strcmp(k, "hostname") == 0 || strcmp(k, "linux") == 0)
      continue;
    json_gen_key(g, k);
    if (strcmp(k, "mounts") == 0)
      instance_lxcfs_gen_mounts(g, v, lxcfs_dir);
    else
      json_gen_value(g, v);
  }
  json_gen_key(g, "process");
  gen_process(g, json_object_get(spec, "process"), r);
  json_gen_key(g, "root");
  json_gen_object_open(g);
  json_gen_kv_string(g, "path", rootfs);
  json_gen_kv_bool(g, "readonly", false);
  json_gen_object_close(g);
  json_gen_kv_string(g, "hostname", r->hostname);
  json_gen_key(g, "linux");
  gen_linux(g, json_object_get(spec, "linux"), r);
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}
