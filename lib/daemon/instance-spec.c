/* The OCI config of an instance: config/instance.json (the instance
 * profile, compiled in) with the instance's own init, root, hostname, id
 * range, cgroup and limits put in.
 *
 * The profile is a server's, not an application's: the full capability set
 * inside the instance's user namespace (which is the boundary), a seccomp
 * deny-list for what that namespace does not cover, tmpfs on /run and
 * /run/lock and a writable, delegated cgroup tree for systemd, and
 * container=lxc in the environment, the value guests' software already
 * knows how to behave under (docs/security.md, "Instances"). */
#include "daemon/instance-spec.h"

#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "daemon/instance-cpuset.h"
#include "daemon/instance-lxcfs.h"
#include "daemon/instance-settings.h"

/* config/instance.json, from lib/oci/config-data.S. */
extern const char cell_config_instance_json[];

static bool key_is(const char *k, const char *const *names) {
  for (; *names; names++)
    if (strcmp(k, *names) == 0)
      return true;
  return false;
}

/* Every member of obj but those named in skip. */
static void gen_members_except(struct json_gen *g, const struct json_value *obj,
                               const char *const *skip) {
  for (size_t i = 0; obj && obj->type == JSON_OBJECT && i < obj->u.object.len;
       i++) {
    if (key_is(obj->u.object.keys[i], skip))
      continue;
    json_gen_key(g, obj->u.object.keys[i]);
    json_gen_value(g, obj->u.object.values[i]);
  }
}

static bool env_has_key(char *const *env, const char *kv) {
  size_t n = strcspn(kv, "=");
  for (size_t i = 0; env && env[i]; i++)
    if (strncmp(env[i], kv, n) == 0 && env[i][n] == '=')
      return true;
  return false;
}

/* Set with env.KEY=VALUE: it wins over the image and the profile. */
static bool set_by_user(const struct instance_record *r, const char *kv) {
  cleanup_free char *key = xasprintf("env.%.*s", (int)strcspn(kv, "="), kv);
  return instance_setting(r, key) != NULL;
}

/* The profile's environment under the image's (an image's PATH wins), but
 * container=lxc is the profile's: guests go by it.  Over both, what was
 * set with env.KEY. */
static void gen_env(struct json_gen *g, const struct json_value *profile,
                    const struct instance_record *r) {
  char *const *image_env = r->env;
  json_gen_key(g, "env");
  json_gen_array_open(g);
  for (size_t i = 0; image_env && image_env[i]; i++)
    if (strncmp(image_env[i], "container=", 10) != 0 &&
        !set_by_user(r, image_env[i]))
      json_gen_string(g, image_env[i]);
  for (size_t i = 0; profile && profile->type == JSON_ARRAY &&
                     i < profile->u.array.len; i++) {
    const struct json_value *e = profile->u.array.items[i];
    if (e->type == JSON_STRING &&
        (strncmp(e->u.string, "container=", 10) == 0 ||
         !env_has_key(image_env, e->u.string)) &&
        !set_by_user(r, e->u.string))
      json_gen_string(g, e->u.string);
  }
  cleanup_strv char **user = instance_settings_env(r);
  for (size_t i = 0; user && user[i]; i++)
    json_gen_string(g, user[i]);
  json_gen_array_close(g);
}

/* An application image's User, "UID:GID" (instance-identity.h). */
static void gen_init_user(struct json_gen *g, const char *user) {
  unsigned uid = 0, gid = 0;
  sscanf(user, "%u:%u", &uid, &gid);
  json_gen_key(g, "user");
  json_gen_object_open(g);
  json_gen_kv_int(g, "uid", uid);
  json_gen_kv_int(g, "gid", gid);
  json_gen_object_close(g);
}

static void gen_process(struct json_gen *g, const struct json_value *p,
                        const struct instance_record *r) {
  json_gen_object_open(g);
  gen_members_except(g, p, (const char *const[]){"args", "env", "cwd",
                                                 r->init_user ? "user" : NULL,
                                                 NULL});
  if (r->init_user)
    gen_init_user(g, r->init_user);
  gen_env(g, json_object_get(p, "env"), r);
  const struct json_value *cwd = json_object_get(p, "cwd");
  json_gen_kv_string(g, "cwd", r->workdir && r->workdir[0] == '/' ? r->workdir
                               : cwd && cwd->type == JSON_STRING ? cwd->u.string
                                                                 : "/");
  json_gen_key(g, "args");
  json_gen_array_open(g);
  for (char **a = r->init; *a; a++)
    json_gen_string(g, *a);
  json_gen_array_close(g);
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

static void gen_limit(struct json_gen *g, const char *controller,
                      const char *key, int64_t value) {
  json_gen_key(g, controller);
  json_gen_object_open(g);
  json_gen_kv_int(g, key, value);
  json_gen_object_close(g);
}

/* The profile's device rules, then one allowing each device.NAME. */
static void gen_devices(struct json_gen *g, const struct json_value *profile,
                        const struct instance_record *r) {
  json_gen_key(g, "devices");
  json_gen_array_open(g);
  for (size_t i = 0; profile && profile->type == JSON_ARRAY &&
                     i < profile->u.array.len; i++)
    json_gen_value(g, profile->u.array.items[i]);
  for (size_t i = 0; r->settings && r->settings[i]; i++) {
    unsigned major, minor;
    cleanup_error cell_error *ignored = NULL;
    if (strncmp(r->settings[i], "device.", 7) != 0 ||
        setting_device_numbers(strchr(r->settings[i], '=') + 1, &major, &minor,
                               &ignored) < 0)
      continue;
    json_gen_object_open(g);
    json_gen_kv_bool(g, "allow", true);
    json_gen_kv_string(g, "type", "c");
    json_gen_kv_int(g, "major", major);
    json_gen_kv_int(g, "minor", minor);
    json_gen_kv_string(g, "access", "rwm");
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
}

static void gen_resources(struct json_gen *g, const struct json_value *res,
                          const struct instance_record *r) {
  json_gen_object_open(g);
  gen_members_except(g, res, (const char *const[]){"memory", "cpu", "pids",
                                                   "devices", "blockIO", NULL});
  gen_devices(g, json_object_get(res, "devices"), r);
  settings_gen_block_io(g, r);
  if (r->memory > 0) {
    json_gen_key(g, "memory");
    json_gen_object_open(g);
    json_gen_kv_int(g, "limit", r->memory);
    /* OCI's swap is memory and swap together. */
    const char *swap = instance_setting(r, "swap");
    if (swap)
      json_gen_kv_int(g, "swap", r->memory + strtoll(swap, NULL, 10));
    json_gen_object_close(g);
  }
  cleanup_free char *cpus = instance_cpuset(r);
  if (r->cpu_milli > 0 || cpus) {
    json_gen_key(g, "cpu");
    json_gen_object_open(g);
    if (r->cpu_milli > 0) {
      json_gen_kv_int(g, "period", 100000);
      json_gen_kv_int(g, "quota", r->cpu_milli * 100);
    }
    if (cpus)
      json_gen_kv_string(g, "cpus", cpus);
    json_gen_object_close(g);
  }
  if (r->pids > 0)
    gen_limit(g, "pids", "limit", r->pids);
  json_gen_object_close(g);
}

static void gen_linux(struct json_gen *g, const struct json_value *l,
                      const struct instance_record *r) {
  json_gen_object_open(g);
  gen_members_except(g, l,
                     (const char *const[]){"uidMappings", "gidMappings",
                                           "cgroupsPath", "resources", NULL});
  json_gen_key(g, "resources");
  gen_resources(g, json_object_get(l, "resources"), r);
  gen_mapping(g, "uidMappings", r);
  gen_mapping(g, "gidMappings", r);
  json_gen_kv_string(g, "cgroupsPath", r->cgroup);
  json_gen_object_close(g);
}

char *instance_spec_json(const struct instance_record *r, const char *rootfs,
                         const char *lxcfs_dir, cell_error **err) {
  cleanup_json struct json_value *profile = NULL;
  if (json_parse(cell_config_instance_json, strlen(cell_config_instance_json),
                 &profile, err) < 0) {
    cell_error_wrap(err, "config/instance.json");
    return NULL;
  }
  struct json_gen *g = json_gen_new(true);
  json_gen_object_open(g);
  gen_members_except(g, profile,
                     (const char *const[]){"process", "root", "hostname",
                                           "linux", "mounts", NULL});
  json_gen_key(g, "mounts");
  instance_lxcfs_gen_mounts(g, json_object_get(profile, "mounts"), lxcfs_dir);
  json_gen_key(g, "process");
  gen_process(g, json_object_get(profile, "process"), r);
  json_gen_key(g, "root");
  json_gen_object_open(g);
  json_gen_kv_string(g, "path", rootfs);
  json_gen_kv_bool(g, "readonly", false);
  json_gen_object_close(g);
  json_gen_kv_string(g, "hostname", r->hostname);
  json_gen_key(g, "linux");
  gen_linux(g, json_object_get(profile, "linux"), r);
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}

char *instance_spec_devices_json(const struct instance_record *r,
                                 cell_error **err) {
  cleanup_json struct json_value *profile = NULL;
  if (json_parse(cell_config_instance_json, strlen(cell_config_instance_json),
                 &profile, err) < 0) {
    cell_error_wrap(err, "config/instance.json");
    return NULL;
  }
  const struct json_value *l = json_object_get(profile, "linux");
  const struct json_value *res = l ? json_object_get(l, "resources") : NULL;
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  gen_devices(g, res ? json_object_get(res, "devices") : NULL, r);
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}
