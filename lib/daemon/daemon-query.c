/* The ops that only read: list, show, networks, pools, log (an
 * instance's own log) and events (a subscription to the instances'
 * events). */
#include "daemon/daemon-query.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-lxcfs.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-usage.h"
#include "daemon/instance-log.h"
#include "net/network.h"
#include "storage/pool.h"

/* What holds it (a snapshot's copy, criu, a migration), null for nothing:
 * while it does, the instance takes only the ops that look. */
static void gen_busy(struct json_gen *g, const struct instance *in) {
  const char *busy = instance_hold_name(in->hold);
  json_gen_key(g, "busy");
  busy ? json_gen_string(g, busy) : json_gen_null(g);
}

void op_list(struct daemon *d, struct conn *c, struct instance *unused,
             const struct json_value *req) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "instances");
  json_gen_array_open(g);
  for (size_t i = 0; i < d->n_inst; i++) {
    struct instance *in = d->inst[i];
    if (!conn_may_see(c, in))
      continue;
    cleanup_free char *rec = instance_record_to_json(in->rec, false);
    cleanup_json struct json_value *v = NULL;
    cell_error *err = NULL;
    if (json_parse(rec, strlen(rec), &v, &err) < 0) {
      cell_error_free(&err);
      continue;
    }
    json_gen_object_open(g);
    for (size_t k = 0; k < v->u.object.len; k++) {
      json_gen_key(g, v->u.object.keys[k]);
      json_gen_value(g, v->u.object.values[k]);
    }
    json_gen_kv_int(g, "pid", in->pidfd >= 0 ? in->pid : 0);
    gen_busy(g, in);
    usage_gen_json(d, in, g, false);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

void op_show(struct daemon *d, struct conn *c, struct instance *in,
             const struct json_value *req) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  cleanup_free char *rec = instance_record_to_json(in->rec, false);
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(rec, strlen(rec), &v, &err) == 0) {
    json_gen_key(g, "instance");
    json_gen_object_open(g);
    for (size_t k = 0; k < v->u.object.len; k++) {
      json_gen_key(g, v->u.object.keys[k]);
      json_gen_value(g, v->u.object.values[k]);
    }
    json_gen_kv_int(g, "pid", in->pidfd >= 0 ? in->pid : 0);
    gen_busy(g, in);
    json_gen_kv_bool(g, "exit_status_known", in->pidfd < 0 || in->child);
    /* Running: what it got at its start; else what a start gets now. */
    cleanup_free char *view = in->pidfd >= 0 && in->proc_view
                                  ? xstrdup(in->proc_view)
                                  : lxcfs_proc_view(d);
    json_gen_kv_string(g, "proc_view", view);
    /* Fresh: whoever asks about one instance may have just written. */
    usage_gen_json(d, in, g, true);
    json_gen_kv_int(g, "disk_used", in->usage.disk_known
                                        ? (int64_t)in->usage.disk_used : -1);
    json_gen_object_close(g);
  }
  cell_error_free(&err);
  /* What a stop without a timeout waits before SIGKILL (cellctl stop says it). */
  json_gen_kv_int(g, "stop_timeout", d->cfg->stop_timeout);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

/* How many instances the peer may see are on the network. */
static size_t instances_on(struct daemon *d, struct conn *c, const char *network) {
  size_t n = 0;
  for (size_t i = 0; i < d->n_inst; i++) {
    const struct instance_record *r = d->inst[i]->rec;
    if (!conn_may_see(c, d->inst[i]))
      continue;
    for (size_t j = 0; j < r->n_nets; j++)
      n += strcmp(r->nets[j].network, network) == 0;
  }
  return n;
}

void op_networks(struct daemon *d, struct conn *c, struct instance *unused,
                 const struct json_value *req) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "networks");
  json_gen_array_open(g);
  for (size_t i = 0; i < d->cfg->n_networks; i++) {
    const struct daemon_network *net = &d->cfg->networks[i];
    char buf[64];
    json_gen_object_open(g);
    json_gen_kv_string(g, "name", net->name);
    json_gen_kv_string(g, "bridge", net->bridge);
    json_gen_key(g, "subnet4");
    net->has4 ? json_gen_string(g, net_subnet_to_string(&net->subnet4, buf, sizeof(buf)))
              : json_gen_null(g);
    json_gen_key(g, "subnet6");
    net->has6 ? json_gen_string(g, net_subnet_to_string(&net->subnet6, buf, sizeof(buf)))
              : json_gen_null(g);
    json_gen_kv_int(g, "mtu", net->mtu);
    json_gen_kv_bool(g, "keep_bridge", net->keep_bridge);
    json_gen_kv_int(g, "instances", (int64_t)instances_on(d, c, net->name));
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

static const char *quota_word(enum pool_quota q) {
  switch (q) {
  case POOL_QUOTA_BTRFS: return "btrfs-qgroups";
  case POOL_QUOTA_PROJECT: return "project";
  default: return "none";
  }
}

/* One pool: where, on what, how full, and the instances of it the peer
 * may see (with their limits). */
static void gen_pool(struct daemon *d, struct conn *c, struct json_gen *g,
                     const char *name, const char *path) {
  json_gen_object_open(g);
  json_gen_kv_string(g, "name", name);
  json_gen_kv_string(g, "path", path);
  struct pool_fs fs;
  cleanup_error cell_error *err = NULL;
  if (pool_probe(path, &fs, &err) < 0) {
    json_gen_kv_string(g, "error", err->msg);
  } else {
    json_gen_kv_string(g, "filesystem", fs.fs);
    json_gen_kv_string(g, "quota", quota_word(fs.quota));
    json_gen_kv_int(g, "size", (int64_t)fs.size);
    json_gen_kv_int(g, "used", (int64_t)(fs.size - fs.avail));
    json_gen_kv_int(g, "available", (int64_t)fs.avail);
  }
  json_gen_key(g, "instances");
  json_gen_array_open(g);
  for (size_t i = 0; i < d->n_inst; i++) {
    const struct instance_record *r = d->inst[i]->rec;
    if (!conn_may_see(c, d->inst[i]) ||
        strcmp(r->pool ? r->pool : DAEMON_DEFAULT_POOL, name) != 0)
      continue;
    json_gen_object_open(g);
    json_gen_kv_string(g, "name", r->name);
    json_gen_kv_int(g, "disk", r->disk);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  json_gen_object_close(g);
}

void op_pools(struct daemon *d, struct conn *c, struct instance *unused,
              const struct json_value *req) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "pools");
  json_gen_array_open(g);
  gen_pool(d, c, g, DAEMON_DEFAULT_POOL, d->cfg->state_dir);
  for (size_t i = 0; i < d->cfg->n_pools; i++)
    gen_pool(d, c, g, d->cfg->pools[i].name, d->cfg->pools[i].path);
  json_gen_array_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

static bool conn_sees(const void *ctx, const struct instance *in) {
  return conn_may_see(ctx, in);
}

void op_metrics(struct daemon *d, struct conn *c, struct instance *unused,
                const struct json_value *req) {
  cleanup_free char *text = usage_prometheus(d, conn_sees, c);
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_kv_string(g, "metrics", text);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

void op_events(struct daemon *d, struct conn *c, struct instance *unused,
               const struct json_value *req) {
  c->subscriber = true;
  conn_send(d, c, "{\"ok\":true}");
}

/* What one answer of `log` may carry: well under a connection's output
 * buffer (MAX_OUTBUF), which a bigger answer would close. */
#define LOG_ANSWER_MAX (MAX_OUTBUF / 2)

void op_log(struct daemon *d, struct conn *c, struct instance *in,
            const struct json_value *req) {
  int64_t n = 0;
  const struct json_value *lines = json_object_get(req, "lines");
  if (lines && (!json_get_int64(lines, &n) || n < 0 || n > 1000000)) {
    conn_error(d, c, API_INVALID_REQUEST,
               "field `lines`: an integer in [0, 1000000] (0: all)");
    return;
  }
  cell_error *err = NULL;
  cleanup_close int dirfd =
      openat(d->instdirfd, in->rec->name,
             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_strv char **text = NULL;
  if (dirfd < 0)
    cell_fail_errno(&err, "open the directory of `%s`", in->rec->name);
  if (err || instance_log_tail(dirfd, (size_t)n, LOG_ANSWER_MAX, &text, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "lines");
  json_gen_array_open(g);
  for (char **l = text; *l; l++)
    json_gen_string(g, *l);
  json_gen_array_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}
