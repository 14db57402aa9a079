/* Instance records: validation, JSON, durable storage. */
#include "daemon/instance.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/json.h"
#include "base/resolve.h"
#include "base/util.h"
#include "net/network.h"
#include "storage/digest.h"

void instance_record_drop_layers(struct instance_record *r) {
  cell_strv_free(steal_pointer(&r->layers));
  cell_strv_free(steal_pointer(&r->own_layers));
  for (size_t i = 0; i < r->n_snaps; i++) {
    free(r->snaps[i].name);
    free(r->snaps[i].created);
    cell_strv_free(r->snaps[i].own_layers);
  }
  free(steal_pointer(&r->snaps));
  r->n_snaps = 0;
}

void instance_net_mac(const struct instance_net *n, uint8_t mac[6]) {
  if (!n->ipv4 && !n->ipv6) {
    network_stable_mac(n->host_veth, mac);
    return;
  }
  cleanup_free char *seed =
      xasprintf("%s %s", n->ipv4 ? n->ipv4 : "-", n->ipv6 ? n->ipv6 : "-");
  network_stable_mac(seed, mac);
}

void instance_record_free(struct instance_record *r) {
  if (!r)
    return;
  free(r->name);
  free(r->template_dir);
  free(r->image);
  free(r->image_name);
  free(r->pool);
  instance_record_drop_layers(r);
  cell_strv_free(r->env);
  free(r->workdir);
  free(r->init_user);
  free(r->init_groups);
  free(r->hostname);
  free(r->cgroup);
  for (size_t i = 0; i < r->n_nets; i++) {
    free(r->nets[i].network);
    free(r->nets[i].ifname);
    free(r->nets[i].host_veth);
    free(r->nets[i].ipv4);
    free(r->nets[i].ipv6);
  }
  cell_strv_free(r->init);
  cell_strv_free(r->settings);
  cell_strv_free(r->pending);
  cell_strv_free(r->profiles);
  cell_strv_free(r->own_keys);
  free(r->state);
  free(r->exit_time);
  free(r->created);
  free(r->rootfs_mode);
  free(r);
}

int instance_check_name(const char *name, cell_error **err) {
  size_t len = strlen(name);
  if (len == 0)
    return cell_fail(err, 0, "name: must not be empty");
  if (len > INSTANCE_NAME_MAX)
    return cell_fail(err, 0, "name `%.20s...`: longer than %d bytes",
                     name, INSTANCE_NAME_MAX);
  if (!isalnum((unsigned char)name[0]))
    return cell_fail(err, 0,
                     "name `%s`: must start with a letter or digit", name);
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
      return cell_fail(err, 0,
                       "name `%s`: `%c` is not allowed (letters, digits, `_.-`)",
                       name, *p);
  return 0;
}

int instance_parse_restart(const char *s, enum restart_policy *p, int *max,
                           cell_error **err) {
  *max = 0;
  if (strcmp(s, "no") == 0) {
    *p = RESTART_NO;
    return 0;
  }
  if (strcmp(s, "always") == 0) {
    *p = RESTART_ALWAYS;
    return 0;
  }
  if (strncmp(s, "on-failure", 10) == 0) {
    *p = RESTART_ON_FAILURE;
    if (s[10] == '\0')
      return 0;
    long long n;
    if (s[10] == ':' && cell_parse_ll(s + 11, 1, 1000000, &n)) {
      *max = (int)n;
      return 0;
    }
  }
  return cell_fail(err, 0,
                   "restart policy `%s`: expected no, on-failure[:N] or always",
                   s);
}

char *instance_restart_string(enum restart_policy p, int max) {
  if (p == RESTART_ALWAYS)
    return xstrdup("always");
  if (p == RESTART_ON_FAILURE)
    return max ? xasprintf("on-failure:%d", max) : xstrdup("on-failure");
  return xstrdup("no");
}

static void gen_strv(struct json_gen *g, const char *key, char *const *v) {
  json_gen_key(g, key);
  json_gen_array_open(g);
  for (size_t i = 0; v && v[i]; i++)
    json_gen_string(g, v[i]);
  json_gen_array_close(g);
}

char *instance_record_to_json(const struct instance_record *r, bool pretty) {
  struct json_gen *g = json_gen_new(pretty);
  json_gen_object_open(g);
  json_gen_kv_string(g, "name", r->name);
  if (r->template_dir)
    json_gen_kv_string(g, "template", r->template_dir);
  if (r->image) {
    json_gen_kv_string(g, "image", r->image);
    json_gen_kv_string(g, "image_name", r->image_name ? r->image_name : "");
    gen_strv(g, "layers", r->layers);
    gen_strv(g, "own_layers", r->own_layers);
    json_gen_key(g, "snapshots");
    json_gen_array_open(g);
    for (size_t i = 0; i < r->n_snaps; i++) {
      json_gen_object_open(g);
      json_gen_kv_string(g, "name", r->snaps[i].name);
      json_gen_kv_string(g, "created", r->snaps[i].created);
      gen_strv(g, "own_layers", r->snaps[i].own_layers);
      json_gen_object_close(g);
    }
    json_gen_array_close(g);
    gen_strv(g, "env", r->env);
    if (r->workdir)
      json_gen_kv_string(g, "workdir", r->workdir);
  }
  json_gen_kv_int(g, "owner", r->owner);
  json_gen_kv_int(g, "id_start", r->id_start);
  json_gen_kv_int(g, "id_count", r->id_count);
  json_gen_kv_int(g, "memory", r->memory);
  json_gen_kv_int(g, "cpu_milli", r->cpu_milli);
  json_gen_kv_int(g, "pids", r->pids);
  json_gen_kv_string(g, "pool", r->pool ? r->pool : "default");
  json_gen_kv_int(g, "disk", r->disk);
  cleanup_free char *restart = instance_restart_string(r->restart, r->restart_max);
  json_gen_kv_string(g, "restart", restart);
  json_gen_kv_int(g, "restarts", r->restarts);
  json_gen_kv_bool(g, "autostart", r->autostart);
  json_gen_kv_string(g, "hostname", r->hostname);
  json_gen_key(g, "init");
  json_gen_array_open(g);
  for (char **a = r->init; a && *a; a++)
    json_gen_string(g, *a);
  json_gen_array_close(g);
  if (r->init_user)
    json_gen_kv_string(g, "init_user", r->init_user);
  if (r->n_init_groups) {
    json_gen_key(g, "init_groups");
    json_gen_array_open(g);
    for (size_t i = 0; i < r->n_init_groups; i++)
      json_gen_int(g, r->init_groups[i]);
    json_gen_array_close(g);
  }
  if (r->halt_signal > 0)
    json_gen_kv_int(g, "halt_signal", r->halt_signal);
  json_gen_kv_string(g, "state", r->state);
  json_gen_key(g, "exit_code");
  if (r->exit_code >= 0)
    json_gen_int(g, r->exit_code);
  else
    json_gen_null(g);
  json_gen_key(g, "exit_time");
  if (r->exit_time)
    json_gen_string(g, r->exit_time);
  else
    json_gen_null(g);
  json_gen_kv_string(g, "created", r->created);
  json_gen_kv_string(g, "rootfs_mode", r->rootfs_mode ? r->rootfs_mode : "");
  json_gen_kv_string(g, "cgroup", r->cgroup);
  json_gen_key(g, "networks");
  json_gen_array_open(g);
  for (size_t i = 0; i < r->n_nets; i++) {
    const struct instance_net *n = &r->nets[i];
    json_gen_object_open(g);
    json_gen_kv_string(g, "network", n->network);
    json_gen_kv_string(g, "interface", n->ifname);
    json_gen_kv_string(g, "host_veth", n->host_veth);
    json_gen_key(g, "ipv4");
    n->ipv4 ? json_gen_string(g, n->ipv4) : json_gen_null(g);
    json_gen_key(g, "ipv6");
    n->ipv6 ? json_gen_string(g, n->ipv6) : json_gen_null(g);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  gen_strv(g, "settings", r->settings);
  gen_strv(g, "pending", r->pending);
  gen_strv(g, "profiles", r->profiles);
  gen_strv(g, "own_keys", r->own_keys);
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}

static int get_string(const struct json_value *o, const char *key,
                      bool nullable, char **out, cell_error **err) {
  const struct json_value *v = json_object_get(o, key);
  if (nullable && (v == NULL || v->type == JSON_NULL)) {
    *out = NULL;
    return 0;
  }
  if (v == NULL || v->type != JSON_STRING)
    return cell_fail(err, 0, "%s: must be a string", key);
  *out = xstrdup(v->u.string);
  return 0;
}

/* An optional array of strings; absent: NULL. */
static int get_strings(const struct json_value *o, const char *key,
                       char ***out, cell_error **err) {
  const struct json_value *a = json_object_get(o, key);
  if (a == NULL)
    return 0;
  if (a->type != JSON_ARRAY)
    return cell_fail(err, 0, "%s: must be an array of strings", key);
  for (size_t i = 0; i < a->u.array.len; i++) {
    if (a->u.array.items[i]->type != JSON_STRING)
      return cell_fail(err, 0, "%s[%zu]: must be a string", key, i);
    cell_strv_push(out, a->u.array.items[i]->u.string);
  }
  return 0;
}

/* An optional array of ids (init_groups); absent: none. */
static int get_gids(const struct json_value *o, const char *key,
                    struct instance_record *r, cell_error **err) {
  const struct json_value *a = json_object_get(o, key);
  if (a == NULL)
    return 0;
  if (a->type != JSON_ARRAY)
    return cell_fail(err, 0, "%s: must be an array of ids", key);
  r->init_groups = xcalloc(a->u.array.len + 1, sizeof(*r->init_groups));
  for (size_t i = 0; i < a->u.array.len; i++) {
    int64_t v;
    if (!json_get_int64(a->u.array.items[i], &v) || v < 0 || v > UINT32_MAX)
      return cell_fail(err, 0, "%s[%zu]: must be an id", key, i);
    r->init_groups[r->n_init_groups++] = (uint32_t)v;
  }
  return 0;
}

/* Layer names become paths under the store: only digests. */
static int check_digests(const char *key, char *const *v, cell_error **err) {
  for (size_t i = 0; v && v[i]; i++)
    if (!digest_is_valid(v[i]))
      return cell_fail(err, 0, "%s[%zu]: not a sha256 digest", key, i);
  return 0;
}

static int read_snapshots(const struct json_value *o, struct instance_record *r,
                          cell_error **err) {
  const struct json_value *a = json_object_get(o, "snapshots");
  if (a == NULL)
    return 0;
  if (a->type != JSON_ARRAY)
    return cell_fail(err, 0, "snapshots: must be an array");
  r->snaps = xcalloc(a->u.array.len + 1, sizeof(*r->snaps));
  for (size_t i = 0; i < a->u.array.len; i++) {
    const struct json_value *e = a->u.array.items[i];
    struct instance_snapshot *s = &r->snaps[r->n_snaps++];
    if (get_string(e, "name", false, &s->name, err) < 0 ||
        get_string(e, "created", false, &s->created, err) < 0 ||
        get_strings(e, "own_layers", &s->own_layers, err) < 0)
      return cell_error_wrap(err, "snapshots[%zu]", i);
  }
  return 0;
}

static int get_int(const struct json_value *o, const char *key, int64_t min,
                   int64_t max, int64_t *out, cell_error **err) {
  const struct json_value *v = json_object_get(o, key);
  if (v == NULL || !json_get_int64(v, out) || *out < min || *out > max)
    return cell_fail(err, 0, "%s: must be an integer in [%lld, %lld]",
                     key, (long long)min, (long long)max);
  return 0;
}

static int read_nets(const struct json_value *o, struct instance_record *r,
                     cell_error **err) {
  const struct json_value *a = json_object_get(o, "networks");
  if (!a)
    return 0; /* written before networks existed */
  if (a->type != JSON_ARRAY || a->u.array.len > INSTANCE_MAX_NETS)
    return cell_fail(err, 0, "networks: must be an array of at most %d",
                     INSTANCE_MAX_NETS);
  for (size_t i = 0; i < a->u.array.len; i++) {
    const struct json_value *e = a->u.array.items[i];
    struct instance_net *n = &r->nets[r->n_nets++];
    if (e->type != JSON_OBJECT)
      return cell_fail(err, 0, "networks[%zu]: must be an object", i);
    if (get_string(e, "network", false, &n->network, err) < 0 ||
        get_string(e, "interface", false, &n->ifname, err) < 0 ||
        get_string(e, "host_veth", false, &n->host_veth, err) < 0 ||
        get_string(e, "ipv4", true, &n->ipv4, err) < 0 ||
        get_string(e, "ipv6", true, &n->ipv6, err) < 0)
      return cell_error_wrap(err, "networks[%zu]", i);
  }
  return 0;
}

static int read_settings(const struct json_value *o, struct instance_record *r,
                         cell_error **err) {
  /* Records from before settings existed have none of these lists. */
  if (get_strings(o, "settings", &r->settings, err) < 0 ||
      get_strings(o, "pending", &r->pending, err) < 0 ||
      get_strings(o, "profiles", &r->profiles, err) < 0 ||
      get_strings(o, "own_keys", &r->own_keys, err) < 0)
    return -1;
  for (size_t i = 0; r->settings && r->settings[i]; i++)
    if (!strchr(r->settings[i], '='))
      return cell_fail(err, 0, "settings[%zu]: not KEY=VALUE", i);
  return 0;
}

static int read_record(const struct json_value *o, struct instance_record *r,
                       cell_error **err) {
  int64_t owner, start, count, restarts, code = -1, halt = 0;
  cleanup_free char *restart = NULL;
  if (get_string(o, "name", false, &r->name, err) < 0 ||
      get_string(o, "template", true, &r->template_dir, err) < 0 ||
      get_string(o, "image", true, &r->image, err) < 0 ||
      get_string(o, "image_name", true, &r->image_name, err) < 0 ||
      get_string(o, "workdir", true, &r->workdir, err) < 0 ||
      get_string(o, "init_user", true, &r->init_user, err) < 0 ||
      get_gids(o, "init_groups", r, err) < 0 ||
      get_strings(o, "layers", &r->layers, err) < 0 ||
      get_strings(o, "own_layers", &r->own_layers, err) < 0 ||
      read_snapshots(o, r, err) < 0 ||
      get_strings(o, "env", &r->env, err) < 0 ||
      get_int(o, "owner", 0, UINT32_MAX, &owner, err) < 0 ||
      get_int(o, "id_start", 0, UINT32_MAX, &start, err) < 0 ||
      get_int(o, "id_count", 1, UINT32_MAX, &count, err) < 0 ||
      get_int(o, "memory", 0, INT64_MAX, &r->memory, err) < 0 ||
      get_int(o, "cpu_milli", 0, INT64_MAX, &r->cpu_milli, err) < 0 ||
      get_int(o, "pids", 0, INT64_MAX, &r->pids, err) < 0 ||
      get_string(o, "pool", true, &r->pool, err) < 0 ||
      (json_object_get(o, "disk") && /* written before pools existed */
       get_int(o, "disk", 0, INT64_MAX, &r->disk, err) < 0) ||
      get_string(o, "restart", false, &restart, err) < 0 ||
      get_int(o, "restarts", 0, INT32_MAX, &restarts, err) < 0 ||
      get_string(o, "hostname", false, &r->hostname, err) < 0 ||
      get_string(o, "state", false, &r->state, err) < 0 ||
      get_string(o, "exit_time", true, &r->exit_time, err) < 0 ||
      get_string(o, "created", false, &r->created, err) < 0 ||
      get_string(o, "rootfs_mode", true, &r->rootfs_mode, err) < 0 ||
      get_string(o, "cgroup", true, &r->cgroup, err) < 0)
    return -1;
  if (read_nets(o, r, err) < 0 || read_settings(o, r, err) < 0)
    return -1;
  if (!r->pool)
    r->pool = xstrdup("default");
  if (instance_check_name(r->pool, err) < 0)
    return cell_error_wrap(err, "pool");
  if (r->cgroup && r->cgroup[0] != '/')
    return cell_fail(err, 0, "cgroup: must be an absolute path");
  if (!r->template_dir && !r->image)
    return cell_fail(err, 0, "template or image: one is required");
  if (r->image && (!r->layers || !r->layers[0]))
    return cell_fail(err, 0, "layers: an image's instance needs them");
  if (check_digests("layers", r->layers, err) < 0 ||
      check_digests("own_layers", r->own_layers, err) < 0)
    return -1;
  for (size_t i = 0; i < r->n_snaps; i++)
    if (check_digests("snapshots[].own_layers", r->snaps[i].own_layers, err) < 0 ||
        instance_check_name(r->snaps[i].name, err) < 0)
      return -1;
  if (instance_check_name(r->name, err) < 0 ||
      instance_parse_restart(restart, &r->restart, &r->restart_max, err) < 0)
    return -1;
  const struct json_value *ec = json_object_get(o, "exit_code");
  if (ec && ec->type != JSON_NULL &&
      get_int(o, "exit_code", 0, 255, &code, err) < 0)
    return -1;
  /* Records from before halt_signal existed have none. */
  if (json_object_get(o, "halt_signal") &&
      get_int(o, "halt_signal", 1, 64, &halt, err) < 0)
    return -1;
  r->halt_signal = (int)halt;
  const struct json_value *autostart = json_object_get(o, "autostart");
  if (autostart == NULL || autostart->type != JSON_BOOL)
    return cell_fail(err, 0, "autostart: must be a boolean");
  const struct json_value *init = json_object_get(o, "init");
  if (init == NULL || init->type != JSON_ARRAY || init->u.array.len == 0)
    return cell_fail(err, 0, "init: must be a non-empty array of strings");
  for (size_t i = 0; i < init->u.array.len; i++) {
    if (init->u.array.items[i]->type != JSON_STRING)
      return cell_fail(err, 0, "init[%zu]: must be a string", i);
    cell_strv_push(&r->init, init->u.array.items[i]->u.string);
  }
  r->owner = (uid_t)owner;
  r->id_start = (uint32_t)start;
  r->id_count = (uint32_t)count;
  r->restarts = (int)restarts;
  r->exit_code = (int)code;
  r->autostart = autostart->u.boolean;
  /* Records written before the field existed used the fixed parent. */
  if (!r->cgroup)
    r->cgroup = xasprintf("/cell-instances/%s", r->name);
  return 0;
}

int instance_record_from_json(const char *text, size_t len,
                              struct instance_record **out, cell_error **err) {
  cleanup_json struct json_value *v = NULL;
  if (json_parse(text, len, &v, err) < 0)
    return -1;
  if (v->type != JSON_OBJECT)
    return cell_fail(err, 0, "not a JSON object");
  struct instance_record *r = xcalloc(1, sizeof(*r));
  if (read_record(v, r, err) < 0) {
    instance_record_free(r);
    return -1;
  }
  *out = r;
  return 0;
}

int instance_record_save(int dirfd, const struct instance_record *r,
                         cell_error **err) {
  cleanup_free char *json = instance_record_to_json(r, true);
  cleanup_free char *file = xasprintf("%s.json", r->name);
  if (cell_write_file_atomic_at(dirfd, file, json, strlen(json), 0600, err) < 0)
    return cell_error_wrap(err, "record of `%s`", r->name);
  /* The rename is durable only once the directory is on disk too. */
  if (fsync(dirfd) < 0)
    return cell_fail_errno(err, "record of `%s`: fsync the directory", r->name);
  return 0;
}

int instance_record_remove(int dirfd, const char *name, cell_error **err) {
  cleanup_free char *file = xasprintf("%s.json", name);
  if (unlinkat(dirfd, file, 0) < 0 && errno != ENOENT)
    return cell_fail_errno(err, "remove the record of `%s`", name);
  if (fsync(dirfd) < 0)
    return cell_fail_errno(err, "record of `%s`: fsync the directory", name);
  return 0;
}

static bool is_record_file(const char *name) {
  size_t len = strlen(name);
  return len > 5 && name[0] != '.' && strcmp(name + len - 5, ".json") == 0;
}

int instance_record_load_all(int dirfd, struct instance_record ***out,
                             size_t *n,
                             void (*warn)(const char *file, const char *msg),
                             cell_error **err) {
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open the instances directory");
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return cell_fail_errno(err, "read the instances directory");
  }
  struct instance_record **list = NULL;
  size_t count = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (!is_record_file(e->d_name))
      continue;
    cleanup_free char *text = NULL;
    size_t len = 0;
    cell_error *e2 = NULL;
    struct instance_record *r = NULL;
    if (cell_read_file_at(dirfd, e->d_name, 1 << 20, &text, &len, &e2) < 0 ||
        instance_record_from_json(text, len, &r, &e2) < 0) {
      if (warn)
        warn(e->d_name, e2->msg);
      cell_error_free(&e2);
      continue;
    }
    /* A record is found by its file name: one that names another instance
     * would give two instances one name. */
    size_t stem = strlen(e->d_name) - strlen(".json");
    if (strlen(r->name) != stem || strncmp(r->name, e->d_name, stem) != 0) {
      if (warn)
        warn(e->d_name, "the record names another instance");
      instance_record_free(r);
      continue;
    }
    list = xrealloc(list, (count + 1) * sizeof(*list));
    list[count++] = r;
  }
  closedir(d);
  *out = list;
  *n = count;
  return 0;
}

/* A refusal: EACCES, without ": Permission denied" in the message, which
 * says what to do instead. */
__attribute__((format(printf, 2, 3))) static int refuse(cell_error **err,
                                                       const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cell_vfail(err, 0, fmt, ap);
  va_end(ap);
  (*err)->errnum = EACCES;
  return -1;
}

/* What path holds below dir ("a/b" for dir /t and path /t/a/b); NULL when
 * it is not strictly beneath dir. */
static const char *below(const char *path, const char *dir) {
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/')
    n--;
  if (strncmp(path, dir, n) != 0 || path[n] != '/')
    return NULL;
  const char *rest = path + n;
  rest += strspn(rest, "/");
  return *rest ? rest : NULL;
}

static bool has_dot_component(const char *path) {
  for (const char *p = path; *p;) {
    p += strspn(p, "/");
    size_t n = strcspn(p, "/");
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
      return true;
    p += n;
  }
  return false;
}

/* The part of path below one of the allowed directories, with that
 * directory opened in *dirfd; NULL when path is below none. */
static const char *find_allowed(const char *path, char *const *allowed,
                                int *dirfd) {
  for (size_t i = 0; allowed[i]; i++) {
    cleanup_free char *real = realpath(allowed[i], NULL);
    /* One that is / after all (a symlink to it) would hand out the host. */
    if (!real || strcmp(real, "/") == 0)
      continue;
    const char *rest = below(path, allowed[i]);
    if (!rest)
      rest = below(path, real);
    if (!rest)
      continue;
    /* The list is root's: its own symlinks may be followed. */
    *dirfd = open(allowed[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd >= 0)
      return rest;
  }
  return NULL;
}

/* "a:b:c", for the errors. */
static char *joined(char *const *v) {
  char *s = xstrdup(v[0]);
  for (size_t i = 1; v[i]; i++) {
    char *t = xasprintf("%s:%s", s, v[i]);
    free(s);
    s = t;
  }
  return s;
}

static int open_allowed_template(const char *path, char *const *allowed,
                                 cell_error **err) {
  if (!allowed || !allowed[0])
    return refuse(err, "template `%s`: no template directories are set "
                       "(template_dirs in celld.conf): only root may create "
                       "instances", path);
  cleanup_free char *list = joined(allowed);
  if (has_dot_component(path))
    return refuse(err, "template `%s`: `.` and `..` are not allowed; name it "
                       "by its path in a template directory (%s)", path, list);
  cleanup_close int dirfd = -1;
  const char *rest = find_allowed(path, allowed, &dirfd);
  if (!rest)
    return refuse(err, "template `%s`: not in a template directory (%s); "
                       "ask root to put it there", path, list);
  cleanup_error cell_error *e = NULL;
  int fd = resolve_open_no_symlinks(dirfd, rest, O_RDONLY | O_DIRECTORY, &e);
  if (fd < 0 && e->errnum == ELOOP)
    return refuse(err, "template `%s`: reached through a symlink, which "
                       "templates may not be; name the directory itself",
                  path);
  if (fd < 0)
    return cell_fail(err, e->errnum, "template `%s`", path);
  return fd;
}

int instance_template_open(const char *path, char *const *allowed,
                           char **canonical, cell_error **err) {
  if (path[0] != '/')
    return cell_fail(err, 0, "template `%s`: must be an absolute path", path);
  cleanup_close int fd = -1;
  if (allowed) {
    fd = open_allowed_template(path, allowed, err);
    if (fd < 0)
      return -1;
  } else {
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
      return cell_fail_errno(err, "template `%s`", path);
  }
  if (canonical) {
    char buf[32];
    *canonical = realpath(resolve_fd_path(fd, buf), NULL);
    if (!*canonical)
      return cell_fail_errno(err, "template `%s`: find its path", path);
  }
  return steal_fd(&fd);
}

/* Whether name (symlinks resolved inside the template) is there, and a
 * directory when dir is true. */
static bool template_has(int templatefd, const char *name, bool dir) {
  cleanup_error cell_error *ignored = NULL;
  cleanup_close int fd = resolve_open(templatefd, name, O_PATH, &ignored);
  struct stat st;
  return fd >= 0 && fstat(fd, &st) == 0 && (!dir || S_ISDIR(st.st_mode));
}

int instance_check_template(int templatefd, const char *shown,
                            cell_error **err) {
  bool has_program = template_has(templatefd, "bin/sh", false) ||
                     template_has(templatefd, "sbin/init", false);
  if (!has_program || !template_has(templatefd, "etc", true))
    return cell_fail(err, 0,
                     "template `%s`: not a root filesystem (no bin/sh or "
                     "sbin/init, or no etc/)",
                     shown);
  return 0;
}
