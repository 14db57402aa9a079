/* set and get (daemon-settings.h).  A set is checked whole on a copy of
 * the record before anything changes: a bad key or value, or a host
 * source that is not there, leaves the instance as it was. */
#include "daemon/daemon-settings.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/instance-attach.h"
#include "daemon/instance-cpuset.h"
#include "daemon/instance-settings.h"
#include "oci/spec.h"
#include "runtime/container-cgroup.h"
#include "storage/pool.h"

static void record_freep(struct instance_record **r) {
  instance_record_free(*r);
}
#define cleanup_record __attribute__((cleanup(record_freep)))

/* A deep copy, through the record's own JSON. */
static struct instance_record *record_copy(const struct instance_record *r,
                                           cell_error **err) {
  cleanup_free char *json = instance_record_to_json(r, false);
  struct instance_record *copy = NULL;
  if (instance_record_from_json(json, strlen(json), &copy, err) < 0)
    return NULL;
  return copy;
}

/* The KEY=VALUE pairs of the request: `settings`, and the numbers older
 * clients send as memory, cpus, pids and disk. */
static int request_pairs(const struct json_value *v, char ***out,
                         cell_error **err) {
  static const char *const limits[] = {"memory", "pids", "disk"};
  for (size_t i = 0; i < sizeof(limits) / sizeof(*limits); i++) {
    int64_t n;
    bool given;
    if (request_limit(v, limits[i], &n, &given, err) < 0)
      return -1;
    if (given) {
      cleanup_free char *pair = xasprintf("%s=%lld", limits[i], (long long)n);
      cell_strv_push(out, pair);
    }
  }
  int64_t milli;
  bool given;
  if (request_cpus(v, &milli, &given, err) < 0)
    return -1;
  if (given) {
    cleanup_free char *pair = xasprintf("cpus=%.3f", (double)milli / 1000);
    cell_strv_push(out, pair);
  }
  const struct json_value *s = json_object_get(v, "settings");
  for (size_t i = 0; s && i < s->u.array.len; i++) {
    if (s->u.array.items[i]->type != JSON_STRING)
      return cell_fail(err, EINVAL, "field `settings[%zu]`: a KEY=VALUE "
                       "string", i);
    cell_strv_push(out, s->u.array.items[i]->u.string);
  }
  if (!*out)
    return cell_fail(err, EINVAL, "set: nothing to set (KEY=VALUE; cellctl "
                     "set --help lists the keys)");
  return 0;
}

static char *key_of(const char *pair) {
  return xstrndup(pair, strcspn(pair, "="));
}

/* Each pair into next, with the caller's rights; a host source is
 * checked on the host now, so that a set that names none fails here. */
static int put_all(const struct conn *c, struct instance_record *next,
                   char *const *pairs, enum api_code *code, cell_error **err) {
  *code = API_INVALID_REQUEST;
  for (size_t i = 0; pairs[i]; i++) {
    cleanup_free char *key = key_of(pairs[i]);
    const struct setting *s = setting_find(key, err);
    if (!s)
      return -1;
    if (setting_root_only(s) && !c->root) {
      *code = API_PERMISSION_DENIED;
      return cell_fail(err, EPERM, "%s: only root may give an instance host "
                       "directories and devices", key);
    }
    if (setting_put_pair(next, pairs[i], err) < 0)
      return -1;
    const char *value = strchr(pairs[i], '=') + 1;
    if (strncmp(key, "mount.", 6) == 0 && *value) {
      cleanup_free char *src = NULL, *dst = NULL;
      bool ro;
      cleanup_close int fd = -1;
      if (setting_parse_mount(value, &src, &dst, &ro, err) < 0 ||
          (fd = attach_open_dir(src, err)) < 0)
        return cell_error_wrap(err, "%s", key);
    }
    settings_list_add(&next->own_keys, key);
  }
  return 0;
}

/* The cgroup's limits as an OCI linux.resources update. */
static char *resources_json(const struct instance_record *r) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_key(g, "memory");
  json_gen_object_open(g);
  json_gen_kv_int(g, "limit", r->memory > 0 ? r->memory : -1);
  const char *swap = instance_setting(r, "swap");
  if (r->memory > 0 && swap)
    json_gen_kv_int(g, "swap", r->memory + strtoll(swap, NULL, 10));
  json_gen_object_close(g);
  json_gen_key(g, "cpu");
  json_gen_object_open(g);
  json_gen_kv_int(g, "period", 100000);
  json_gen_kv_int(g, "quota", r->cpu_milli > 0 ? r->cpu_milli * 100 : -1);
  /* Its CPUs follow the limit (or cpuset=); without either, every CPU. */
  cleanup_free char *cpus = instance_cpuset(r);
  if (!cpus)
    cpus = instance_cpuset_all();
  if (cpus)
    json_gen_kv_string(g, "cpus", cpus);
  json_gen_object_close(g);
  json_gen_key(g, "pids");
  json_gen_object_open(g);
  json_gen_kv_int(g, "limit", r->pids > 0 ? r->pids : -1);
  json_gen_object_close(g);
  settings_gen_block_io(g, r);
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}

static int update_limits(struct daemon *d, const struct instance_record *r,
                         cell_error **err) {
  cleanup_free char *json = resources_json(r);
  cleanup_resources struct spec_resources *res = NULL;
  if (spec_parse_resources(json, strlen(json), &res, err) < 0 ||
      container_update(d->runroot, r->name, res, err) < 0)
    return -1;
  return 0;
}

/* A new disk limit, live: the qgroup of the instance's subvolume, running
 * or not (a write past it fails from then on).  Where the pool cannot
 * limit, refused as at create; an instance made before its pool had
 * quotas has a plain directory, and says so. */
static int set_disk_limit(struct daemon *d, const struct instance_record *r,
                          int64_t old, enum api_code *code, cell_error **err) {
  *code = API_INVALID_REQUEST;
  if (!r->image)
    return cell_fail(err, 0, "disk: an instance of an image only, not of a "
                     "template");
  const char *pool = r->pool ? r->pool : DAEMON_DEFAULT_POOL;
  const char *path = daemon_config_pool_path(d->cfg, pool);
  cleanup_free char *disk = daemon_inst_disk_dir(d, r, err);
  if (!disk || !path)
    return -1;
  if (r->disk == 0 && old == 0)
    return 0; /* no limit, none to lift */
  if (pool_require_quota(pool, path, err) < 0)
    return -1;
  *code = API_FAILED;
  if (pool_disk_set_limit(disk, (uint64_t)r->disk, err) < 0)
    return cell_error_wrap(err, "instance `%s`", r->name);
  return 0;
}

/* A mount.NAME or device.NAME changed on a running instance: the old one
 * out, the new one in. */
static int remount(struct instance *in, const char *key, const char *value,
                   cell_error **err) {
  const char *old = instance_setting(in->rec, key);
  cleanup_free char *old_target = old ? attach_target(key, old) : NULL;
  if (old_target && attach_umount(in->pid, old_target, err) < 0)
    return cell_error_wrap(err, "%s", key);
  return *value ? attach_setting(in->pid, key, value, err) : 0;
}

/* What the kernel lets change in the running instance, changed; the rest
 * marked pending in next. */
static int apply_live(struct daemon *d, struct instance *in,
                      struct instance_record *next, char *const *pairs,
                      cell_error **err) {
  bool limits = false;
  for (size_t i = 0; pairs[i]; i++) {
    cleanup_free char *key = key_of(pairs[i]);
    const char *value = strchr(pairs[i], '=') + 1;
    const struct setting *s = setting_find(key, err);
    switch (setting_effect(s)) {
    case EFFECT_LIMITS: limits = true; break;
    case EFFECT_HOSTNAME:
      if (attach_hostname(in->pid, next->hostname, err) < 0)
        return -1;
      break;
    case EFFECT_MOUNT:
      if (remount(in, key, value, err) < 0)
        return -1;
      break;
    case EFFECT_NEXT_START: settings_list_add(&next->pending, key); break;
    case EFFECT_AT_ONCE: case EFFECT_DISK: case EFFECT_ENV: break;
    }
  }
  return limits ? update_limits(d, next, err) : 0;
}

static bool sets_disk(char *const *pairs) {
  for (size_t i = 0; pairs[i]; i++)
    if (strncmp(pairs[i], "disk=", 5) == 0)
      return true;
  return false;
}

/* The instance's own addresses are free for its new plan: the old record
 * is hidden from the planner's look at the addresses in use meanwhile. */
static int plan_stopped(struct daemon *d, struct instance *in,
                        struct instance_record *next, enum api_code *code,
                        cell_error **err) {
  size_t n_old = in->rec->n_nets;
  in->rec->n_nets = 0;
  int rc = inst_plan_networks(d, next, code, err);
  in->rec->n_nets = n_old;
  return rc;
}

void op_set(struct daemon *d, struct conn *c, struct instance *in,
            const struct json_value *v) {
  cell_error *err = NULL;
  enum api_code code = API_INVALID_REQUEST;
  cleanup_strv char **pairs = NULL;
  cleanup_record struct instance_record *next = NULL;
  if (request_pairs(v, &pairs, &err) < 0 ||
      !(next = record_copy(in->rec, &err)) ||
      put_all(c, next, pairs, &code, &err) < 0 ||
      (sets_disk(pairs) &&
       set_disk_limit(d, next, in->rec->disk, &code, &err) < 0)) {
    conn_fail(d, c, code, &err);
    return;
  }
  /* Stopped, new networks are planned now (a running instance's at its
   * next start): a network or an address that is not to be had fails
   * this set. */
  if (in->pidfd < 0 && plan_stopped(d, in, next, &code, &err) < 0) {
    conn_fail(d, c, code, &err);
    return;
  }
  if (in->pidfd >= 0 && apply_live(d, in, next, pairs, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  /* The instance takes the new record whole. */
  struct instance_record *old = in->rec;
  in->rec = steal_pointer(&next);
  next = old;
  if (inst_save(d, in, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  daemon_emit(d, in, "updated");
  conn_reply_instance(d, c, in);
}

void op_get(struct daemon *d, struct conn *c, struct instance *in,
            const struct json_value *v) {
  cell_error *err = NULL;
  const char *key = request_str(v, "key");
  if (!key) {
    conn_error(d, c, API_INVALID_REQUEST, "field `key`: required");
    return;
  }
  if (!setting_find(key, &err)) {
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  cleanup_free char *value = setting_get(in->rec, key);
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_kv_string(g, "key", key);
  json_gen_key(g, "value");
  value ? json_gen_string(g, value) : json_gen_null(g);
  json_gen_kv_bool(g, "pending", settings_list_has(in->rec->pending, key));
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}
