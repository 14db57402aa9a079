/* set and get (daemon-settings.h).  A set is checked whole on a copy of
 * the record before anything changes: a bad key or value, or a host
 * source that is not there, leaves the instance as it was. */
#include "daemon/daemon-settings.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-net.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/instance-attach.h"
#include "daemon/instance-cpuset.h"
#include "daemon/instance-settings.h"
#include "daemon/instance-spec.h"
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

/* A mount.NAME from one value to another (NULL: none): the old directory
 * out, the new one in; when the new one fails the old one comes back. */
static int swap_mount(pid_t pid, const char *key, const char *from,
                      const char *to, cell_error **err) {
  cleanup_free char *old_target = from ? attach_target(key, from) : NULL;
  if (old_target && attach_umount(pid, old_target, err) < 0)
    return cell_error_wrap(err, "%s", key);
  if (!to || attach_setting(pid, key, to, err) == 0)
    return 0;
  cell_error *again = NULL;
  if (from && attach_setting(pid, key, from, &again) < 0) {
    log_warn("%s", again->msg);
    cell_error_free(&again);
  }
  return -1;
}

/* ---- devices and NICs, live ---------------------------------------------- */

/* What a live set changed so far: undone, newest first, when a later step
 * fails, so that the instance is left as it was. */
struct live_undo {
  bool nics;          /* next's new NICs attached */
  bool device_rules;  /* the device cgroup holds next's rules */
  char **devices;     /* device.* keys swapped to next's value */
  char **mounts;      /* mount.* keys swapped to next's value */
  bool hostname;      /* its UTS namespace has next's name */
  bool limits;        /* its cgroup was given next's limits */
};

static bool sets_key(char *const *pairs, const char *key) {
  size_t n = strlen(key);
  for (size_t i = 0; pairs[i]; i++)
    if (strncmp(pairs[i], key, n) == 0 && pairs[i][n] == '=')
      return true;
  return false;
}

/* The instance's device cgroup given the rules r's config has. */
static int update_device_rules(struct daemon *d, const struct instance_record *r,
                               cell_error **err) {
  cleanup_free char *json = instance_spec_devices_json(r, err);
  cleanup_resources struct spec_resources *res = NULL;
  if (!json || spec_parse_resources(json, strlen(json), &res, err) < 0 ||
      container_update(d->runroot, r->name, res, err) < 0)
    return cell_error_wrap(err, "the device cgroup of `%s`", r->name);
  return 0;
}

static char *devdir_of(struct daemon *d, const char *name) {
  cleanup_free char *dir = daemon_inst_dir(d, name);
  return xasprintf("%s/devices", dir);
}

/* A device key from one value to another (NULL: none): the old bind out,
 * the new one in; when the new one fails the old one comes back. */
static int swap_device(struct daemon *d, struct instance *in, const char *key,
                       const char *from, const char *to, cell_error **err) {
  cleanup_free char *devdir = devdir_of(d, in->rec->name);
  if (from && attach_detach_device(in->pid, key, from, devdir, err) < 0)
    return -1;
  if (!to || attach_device(in->pid, key, to, devdir, in->rec->id_start, err) == 0)
    return 0;
  cell_error *again = NULL;
  if (from &&
      attach_device(in->pid, key, from, devdir, in->rec->id_start, &again) < 0) {
    log_warn("%s: %s", in->rec->name, again->msg);
    cell_error_free(&again);
  }
  return -1;
}

static bool same_value(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

/* The keys of a family (device., mount.) whose value next changes, each
 * once. */
static char **changed_keys(const struct instance_record *now,
                           const struct instance_record *next,
                           char *const *pairs, const char *family) {
  char **keys = NULL;
  for (size_t i = 0; pairs[i]; i++) {
    if (strncmp(pairs[i], family, strlen(family)) != 0)
      continue;
    cleanup_free char *key = key_of(pairs[i]);
    if (!same_value(instance_setting(now, key), instance_setting(next, key)))
      settings_list_add(&keys, key);
  }
  return keys;
}

/* The device cgroup first (a device taken away is denied before its node
 * goes, one given is allowed before its node comes), then the nodes. */
static int live_devices(struct daemon *d, struct instance *in,
                        struct instance_record *next, char *const *pairs,
                        struct live_undo *undo, cell_error **err) {
  cleanup_strv char **keys = changed_keys(in->rec, next, pairs, "device.");
  if (!keys)
    return 0;
  if (update_device_rules(d, next, err) < 0)
    return -1;
  undo->device_rules = true;
  for (size_t i = 0; keys[i]; i++) {
    if (swap_device(d, in, keys[i], instance_setting(in->rec, keys[i]),
                    instance_setting(next, keys[i]), err) < 0)
      return -1;
    cell_strv_push(&undo->devices, keys[i]);
    settings_list_remove(next->pending, keys[i]);
  }
  return 0;
}

/* networks= on a running instance: planned before anything changes (a
 * network or an address not to be had is refused with its code).  A NIC
 * that stays but changes its address waits for the next start. */
static int plan_running(struct daemon *d, struct instance_record *next,
                        bool *live, enum api_code *code, cell_error **err) {
  int rc = daemon_net_plan_live(d, instance_setting(next, "networks"), next,
                                code, err);
  if (rc < 0)
    return cell_error_wrap(err, "networks");
  *live = rc == 1;
  if (*live) {
    instance_setting_drop(next, "networks");
    settings_list_remove(next->pending, "networks");
  } else {
    settings_list_add(&next->pending, "networks");
  }
  return 0;
}

static void undo_live(struct daemon *d, struct instance *in,
                      struct instance_record *next, struct live_undo *undo) {
  cell_error *err = NULL;
  const char *name = in->rec->name;
  if (undo->limits && update_limits(d, in->rec, &err) < 0) {
    log_warn("%s: undo: %s", name, err->msg);
    cell_error_free(&err);
  }
  if (undo->hostname && attach_hostname(in->pid, in->rec->hostname, &err) < 0) {
    log_warn("%s: undo: %s", name, err->msg);
    cell_error_free(&err);
  }
  for (size_t i = cell_strv_len(undo->mounts); i-- > 0;) {
    const char *key = undo->mounts[i];
    if (swap_mount(in->pid, key, instance_setting(next, key),
                   instance_setting(in->rec, key), &err) < 0) {
      log_warn("%s: undo %s: %s", name, key, err->msg);
      cell_error_free(&err);
    }
  }
  for (size_t i = cell_strv_len(undo->devices); i-- > 0;) {
    const char *key = undo->devices[i];
    if (swap_device(d, in, key, instance_setting(next, key),
                    instance_setting(in->rec, key), &err) < 0) {
      log_warn("%s: undo %s: %s", name, key, err->msg);
      cell_error_free(&err);
    }
  }
  if (undo->device_rules && update_device_rules(d, in->rec, &err) < 0) {
    log_warn("%s: undo: %s", name, err->msg);
    cell_error_free(&err);
  }
  if (undo->nics)
    daemon_net_detach_gone(d, next, in->rec, in->pid);
}

static int live_mounts(struct instance *in, struct instance_record *next,
                       char *const *pairs, struct live_undo *undo,
                       cell_error **err) {
  cleanup_strv char **keys = changed_keys(in->rec, next, pairs, "mount.");
  for (size_t i = 0; keys && keys[i]; i++) {
    if (swap_mount(in->pid, keys[i], instance_setting(in->rec, keys[i]),
                   instance_setting(next, keys[i]), err) < 0)
      return -1;
    cell_strv_push(&undo->mounts, keys[i]);
  }
  return 0;
}

/* What the kernel lets change in the running instance, changed; the rest
 * marked pending in next.  NICs and devices first: they are the steps
 * most likely to fail.  When one fails, what the steps before it changed
 * is changed back: the instance is left as it was. */
static int apply_live(struct daemon *d, struct instance *in,
                      struct instance_record *next, char *const *pairs,
                      bool nics, cell_error **err) {
  struct live_undo undo = {0};
  int rc = 0;
  if (nics && daemon_net_attach_new(d, in->rec, next, in->pid, err) < 0)
    rc = -1;
  undo.nics = nics && rc == 0;
  if (rc == 0)
    rc = live_devices(d, in, next, pairs, &undo, err);
  if (rc == 0)
    rc = live_mounts(in, next, pairs, &undo, err);
  bool limits = false, hostname = false;
  for (size_t i = 0; pairs[i]; i++) {
    cleanup_free char *key = key_of(pairs[i]);
    const struct setting *s = setting_find(key, err);
    switch (setting_effect(s)) {
    case EFFECT_LIMITS: limits = true; break;
    case EFFECT_HOSTNAME: hostname = true; break;
    case EFFECT_NEXT_START: settings_list_add(&next->pending, key); break;
    case EFFECT_AT_ONCE: case EFFECT_DISK: case EFFECT_ENV: case EFFECT_MOUNT:
    case EFFECT_DEVICE: case EFFECT_NETWORKS: break;
    }
  }
  if (rc == 0 && hostname && strcmp(in->rec->hostname, next->hostname) != 0) {
    rc = attach_hostname(in->pid, next->hostname, err);
    undo.hostname = true;
  }
  if (rc == 0 && limits) {
    undo.limits = true;
    rc = update_limits(d, next, err);
  }
  if (rc < 0)
    undo_live(d, in, next, &undo);
  cell_strv_free(undo.devices);
  cell_strv_free(undo.mounts);
  return rc;
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
      (sets_key(pairs, "disk") &&
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
  bool nics = false;
  if (in->pidfd >= 0 && sets_key(pairs, "networks") &&
      plan_running(d, next, &nics, &code, &err) < 0) {
    conn_fail(d, c, code, &err);
    return;
  }
  if (in->pidfd >= 0 && apply_live(d, in, next, pairs, nics, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  /* The instance takes the new record whole; the NICs it no longer has
   * go, and the networks' dnsmasq learn its leases. */
  struct instance_record *old = in->rec;
  in->rec = steal_pointer(&next);
  next = old;
  if (nics)
    daemon_net_detach_gone(d, old, in->rec, in->pid);
  if (sets_key(pairs, "networks"))
    d->names_changed = true;
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
