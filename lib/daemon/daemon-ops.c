/* celld's API ops: validation of each request and what it does. */
#include "daemon/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "cgroup/cgroup.h"
#include "runtime/container-cgroup.h"
#include "runtime/container.h"
#include "runtime/exec.h"
#include "daemon/instance.h"
#include "base/json.h"
#include "base/log.h"
#include "oci/spec.h"
#include "runtime/terminal.h"
#include "base/util.h"

#include "daemon/daemon-internal.h"

/* ---- requests --------------------------------------------------------------- */

struct request {
  const struct json_value *v;
  const char *op;
  const char *name;
};

const char *request_str(const struct json_value *v, const char *key) {
  const struct json_value *f = json_object_get(v, key);
  return f && f->type == JSON_STRING ? f->u.string : NULL;
}

/* Every member of the request must be one the op knows, of the right type. */
static int check_fields(const struct json_value *v, const char *const *allowed,
                        cell_error **err) {
  for (size_t i = 0; i < v->u.object.len; i++) {
    const char *k = v->u.object.keys[i];
    bool ok = strcmp(k, "version") == 0 || strcmp(k, "op") == 0;
    for (const char *const *a = allowed; !ok && *a; a++)
      ok = strcmp(*a + 1, k) == 0;
    if (!ok)
      return cell_fail(err, 0, "unknown field `%s`", k);
  }
  for (const char *const *a = allowed; *a; a++) {
    const struct json_value *f = json_object_get(v, *a + 1);
    if (!f)
      continue;
    char t = **a;
    bool good = (t == 's' && f->type == JSON_STRING) ||
                (t == 'b' && f->type == JSON_BOOL) ||
                (t == 'n' && f->type == JSON_NUMBER) ||
                (t == 'a' && f->type == JSON_ARRAY);
    if (!good)
      return cell_fail(err, 0, "field `%s`: must be a %s", *a + 1,
                       t == 's' ? "string" : t == 'b' ? "boolean"
                       : t == 'n' ? "number" : "array");
  }
  return 0;
}

static int get_limit(const struct json_value *v, const char *key, int64_t *out,
                     bool *given, cell_error **err) {
  const struct json_value *f = json_object_get(v, key);
  *given = f != NULL;
  if (!f)
    return 0;
  if (!json_get_int64(f, out) || *out < 0)
    return cell_fail(err, 0, "field `%s`: must be an integer >= 0", key);
  return 0;
}

static int get_cpus(const struct json_value *v, int64_t *milli, bool *given,
                    cell_error **err) {
  const struct json_value *f = json_object_get(v, "cpus");
  *given = f != NULL;
  if (!f)
    return 0;
  double cpus;
  if (!json_get_double(f, &cpus) || cpus < 0 || cpus > 4096)
    return cell_fail(err, 0, "field `cpus`: must be a number in [0, 4096]");
  *milli = (int64_t)(cpus * 1000 + 0.5);
  if (cpus > 0 && *milli < 10)
    return cell_fail(err, 0, "field `cpus`: at least 0.01");
  return 0;
}

static int lookup(struct daemon *d, struct conn *c, const char *name,
                  struct instance **out, cell_error **err) {
  if (!name)
    return cell_fail(err, 0, "field `name`: required");
  if (instance_check_name(name, err) < 0)
    return -1;
  struct instance *in = daemon_find_instance(d, name);
  if (!in || !conn_may_see(c, in))
    return cell_fail(err, 0, "instance `%s` does not exist", name);
  *out = in;
  return 0;
}

static int used_ranges(struct daemon *d, uint32_t **out) {
  uint32_t *used = xcalloc(d->n_inst ? d->n_inst : 1, sizeof(*used));
  for (size_t i = 0; i < d->n_inst; i++)
    used[i] = d->inst[i]->rec->id_start;
  *out = used;
  return 0;
}

static bool template_lacks_inittab(const char *template_dir) {
  cleanup_free char *p = xasprintf("%s/etc/inittab", template_dir);
  return access(p, F_OK) != 0;
}

/* busybox init without /etc/inittab wants ttys that an instance does not
 * have: give it one that runs rcS (when there is one) and a login shell on
 * the console (the init's pty, `cellctl console`), respawned when it exits.
 * The init holds that pty as its controlling terminal (the runtime makes it
 * so), so Ctrl-C and Ctrl-Z would signal the init, not the shell's command
 * (Ctrl-Z would stop busybox init until SIGCONT): the shell turns them into
 * plain characters (stty -isig). */
static int write_default_inittab(const char *dir, uint32_t owner,
                                 cell_error **err) {
  static const char text[] =
      "# written by celld: the template has no inittab\n"
      "::sysinit:/bin/sh -c '[ -x /etc/init.d/rcS ] && exec /etc/init.d/rcS; exit 0'\n"
      "::respawn:/bin/sh -c 'stty -isig 2>/dev/null; exec /bin/sh -l'\n"
      "::shutdown:/bin/sh -c 'kill -TERM -1 2>/dev/null; exit 0'\n";
  cleanup_free char *etc = xasprintf("%s/rootfs/etc", dir);
  cleanup_close int etcfd = open(etc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (etcfd < 0)
    return cell_fail_errno(err, "open `%s`", etc);
  if (cell_write_file_atomic_at(etcfd, "inittab", text, sizeof(text) - 1, 0644,
                                err) < 0)
    return -1;
  if (fchownat(etcfd, "inittab", owner, owner, 0) < 0)
    return cell_fail_errno(err, "chown `%s/inittab`", etc);
  return 0;
}

static int fill_record(struct daemon *d, struct conn *c,
                       const struct json_value *v, struct instance_record *r,
                       cell_error **err) {
  const char *name = request_str(v, "name");
  const char *tmpl = request_str(v, "template");
  if (!name)
    return cell_fail(err, 0, "field `name`: required");
  if (instance_check_name(name, err) < 0)
    return -1;
  if (daemon_find_instance(d, name))
    return cell_fail(err, 0, "instance `%s` already exists", name);
  if (!tmpl)
    return cell_fail(err, 0, "field `template`: required");
  if (instance_check_template(tmpl, err) < 0)
    return -1;
  r->name = xstrdup(name);
  r->template_dir = realpath(tmpl, NULL);
  if (!r->template_dir)
    return cell_fail_errno(err, "template `%s`", tmpl);
  bool given;
  int64_t milli = 0;
  if (get_limit(v, "memory", &r->memory, &given, err) < 0 ||
      get_limit(v, "pids", &r->pids, &given, err) < 0 ||
      get_cpus(v, &milli, &given, err) < 0)
    return -1;
  r->cpu_milli = milli;
  if (r->memory > 0 && r->memory < (4 << 20))
    return cell_fail(err, 0, "field `memory`: at least 4 MiB");
  const char *restart = request_str(v, "restart");
  if (instance_parse_restart(restart ? restart : "no", &r->restart,
                             &r->restart_max, err) < 0)
    return -1;
  const struct json_value *autostart = json_object_get(v, "autostart");
  r->autostart = autostart && autostart->u.boolean;
  const char *hostname = request_str(v, "hostname");
  if (hostname && (strlen(hostname) == 0 || strlen(hostname) > 64 ||
                   strspn(hostname, "abcdefghijklmnopqrstuvwxyz"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
                       strlen(hostname)))
    return cell_fail(err, 0, "field `hostname`: `%s` is not a host name",
                     hostname);
  r->hostname = xstrdup(hostname ? hostname : name);
  const struct json_value *init = json_object_get(v, "init");
  if (init) {
    if (init->u.array.len == 0 || init->u.array.len > 256)
      return cell_fail(err, 0, "field `init`: 1 to 256 strings");
    for (size_t i = 0; i < init->u.array.len; i++) {
      const struct json_value *a = init->u.array.items[i];
      if (a->type != JSON_STRING)
        return cell_fail(err, 0, "field `init[%zu]`: must be a string", i);
      cell_strv_push(&r->init, a->u.string);
    }
    if (r->init[0][0] != '/')
      return cell_fail(err, 0, "field `init[0]`: must be an absolute path");
  } else {
    cell_strv_push(&r->init, DEFAULT_INIT);
  }
  r->owner = c->cred.uid;
  r->id_count = d->cfg->pool.size;
  r->state = xstrdup("created");
  r->exit_code = -1;
  r->created = cell_rfc3339_now();
  r->cgroup = xasprintf("%s/%s", d->cfg->cgroup_parent, name);
  cleanup_free uint32_t *used = NULL;
  used_ranges(d, &used);
  if (idrange_alloc(&d->cfg->pool, used, d->n_inst, &r->id_start, err) < 0)
    return -1;
  return daemon_net_plan(d, json_object_get(v, "networks"), r, err);
}

static int prepare_instance_dir(struct daemon *d, struct instance *in,
                                cell_error **err) {
  const struct instance_record *r = in->rec;
  if (mkdirat(d->instdirfd, r->name, 0711) < 0)
    return cell_fail_errno(err, "mkdir `%s/%s`", d->instances_dir, r->name);
  if (inst_mount_root(d, in, err) < 0)
    return -1;
  daemon_test_pause("create");
  cleanup_free char *dir = daemon_inst_dir(d, r->name);
  int rc = 0;
  if (strcmp(r->init[0], DEFAULT_INIT) == 0 &&
      template_lacks_inittab(r->template_dir))
    rc = write_default_inittab(dir, r->id_start, err);
  /* Mounted only while running. */
  cell_error *uerr = NULL;
  if (instance_rootfs_umount(dir, &uerr) < 0) {
    if (rc == 0) {
      *err = uerr;
      return -1;
    }
    cell_error_free(&uerr);
  }
  return rc;
}

static void op_create(struct daemon *d, struct conn *c,
                      const struct json_value *v) {
  static const char *const allowed[] = {
      "sname", "stemplate", "nmemory", "ncpus", "npids", "ainit",
      "bautostart", "srestart", "shostname", "anetworks", NULL};
  cell_error *err = NULL;
  if (!c->root && !c->member) {
    conn_error(d, c, "permission denied: only root and members of the celld group may create instances");
    return;
  }
  struct instance_record *r = xcalloc(1, sizeof(*r));
  if (check_fields(v, allowed, &err) < 0 || fill_record(d, c, v, r, &err) < 0) {
    instance_record_free(r);
    conn_error(d, c, err->msg);
    cell_error_free(&err);
    return;
  }
  struct instance *in = daemon_add_instance(d, r);
  if (prepare_instance_dir(d, in, &err) < 0 || inst_save(d, in, &err) < 0) {
    /* No half-made instance: mounts, directory, record all go. */
    cell_error *e2 = NULL;
    inst_destroy_now(d, in, &e2);
    if (e2)
      log_error("%s", e2->msg);
    cell_error_free(&e2);
    daemon_remove_instance(d, in);
    conn_error(d, c, err->msg);
    cell_error_free(&err);
    return;
  }
  daemon_emit_event(d, in, "created");
  conn_reply_instance(d, c, in);
}

static void op_start(struct daemon *d, struct conn *c, struct instance *in) {
  cell_error *err = NULL;
  if (in->timerfd >= 0 && in->timer_restart)
    inst_disarm_timer(d, in);
  if (inst_start(d, in, &err) < 0) {
    inst_save_or_log(d, in);
    conn_error(d, c, err->msg);
    cell_error_free(&err);
    return;
  }
  in->rec->restarts = 0;
  inst_save_or_log(d, in);
  daemon_emit_event(d, in, "started");
  conn_reply_instance(d, c, in);
}

static int timeout_of(struct daemon *d, const struct json_value *v,
                      cell_error **err) {
  const struct json_value *t = json_object_get(v, "timeout");
  int64_t n = d->cfg->stop_timeout;
  if (t && (!json_get_int64(t, &n) || n < 0 || n > 3600))
    return cell_fail(err, 0, "field `timeout`: must be an integer in [0, 3600]");
  return (int)n;
}

static void op_stop(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v, enum after_exit after) {
  cell_error *err = NULL;
  int timeout = timeout_of(d, v, &err);
  if (timeout < 0) {
    conn_error(d, c, err->msg);
    cell_error_free(&err);
    return;
  }
  if (in->pidfd < 0) {
    if (in->timerfd >= 0 && in->timer_restart) {
      /* A pending policy restart: stopping cancels it. */
      inst_disarm_timer(d, in);
      inst_set_state(in, "stopped");
      inst_save_or_log(d, in);
    }
    if (after == AFTER_START) {
      op_start(d, c, in);
      return;
    }
    conn_error(d, c, "instance is not running");
    return;
  }
  in->after = after;
  inst_add_waiter(in, c);
  inst_stop(d, in, timeout);
}

static void op_destroy(struct daemon *d, struct conn *c, struct instance *in,
                       const struct json_value *v) {
  const struct json_value *force = json_object_get(v, "force");
  if (in->pidfd >= 0) {
    if (!force || !force->u.boolean) {
      conn_error(d, c, "instance is running: stop it first, or force");
      return;
    }
    in->after = AFTER_DESTROY;
    in->stopping = true;
    inst_add_waiter(in, c);
    daemon_pidfd_signal(in->pidfd, SIGKILL);
    return;
  }
  inst_add_waiter(in, c);
  inst_finish_destroy(d, in);
}

static char *resources_json(const struct instance_record *r) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_key(g, "memory");
  json_gen_object_open(g);
  json_gen_kv_int(g, "limit", r->memory > 0 ? r->memory : -1);
  json_gen_object_close(g);
  json_gen_key(g, "cpu");
  json_gen_object_open(g);
  json_gen_kv_int(g, "period", 100000);
  json_gen_kv_int(g, "quota", r->cpu_milli > 0 ? r->cpu_milli * 100 : -1);
  json_gen_object_close(g);
  json_gen_key(g, "pids");
  json_gen_object_open(g);
  json_gen_kv_int(g, "limit", r->pids > 0 ? r->pids : -1);
  json_gen_object_close(g);
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}

static void op_set(struct daemon *d, struct conn *c, struct instance *in,
                   const struct json_value *v) {
  cell_error *err = NULL;
  bool gm, gc, gp;
  int64_t memory = in->rec->memory, milli = in->rec->cpu_milli, pids = in->rec->pids;
  if (get_limit(v, "memory", &memory, &gm, &err) < 0 ||
      get_cpus(v, &milli, &gc, &err) < 0 ||
      get_limit(v, "pids", &pids, &gp, &err) < 0)
    goto fail;
  if (!gm && !gc && !gp) {
    conn_error(d, c, "set: nothing to set (memory, cpus, pids)");
    return;
  }
  if (memory > 0 && memory < (4 << 20)) {
    cell_fail(&err, 0, "field `memory`: at least 4 MiB");
    goto fail;
  }
  struct instance_record next = *in->rec;
  next.memory = memory;
  next.cpu_milli = milli;
  next.pids = pids;
  if (in->pidfd >= 0) {
    cleanup_free char *json = resources_json(&next);
    cleanup_resources struct spec_resources *res = NULL;
    if (spec_parse_resources(json, strlen(json), &res, &err) < 0 ||
        container_update(d->runroot, in->rec->name, res, &err) < 0)
      goto fail;
  }
  in->rec->memory = memory;
  in->rec->cpu_milli = milli;
  in->rec->pids = pids;
  if (inst_save(d, in, &err) < 0)
    goto fail;
  daemon_emit_event(d, in, "updated");
  conn_reply_instance(d, c, in);
  return;
fail:
  conn_error(d, c, err->msg);
  cell_error_free(&err);
}

static void op_list(struct daemon *d, struct conn *c) {
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
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

static void op_show(struct daemon *d, struct conn *c, struct instance *in) {
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
    json_gen_kv_bool(g, "exit_status_known", in->pidfd < 0 || in->child);
    json_gen_object_close(g);
  }
  cell_error_free(&err);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

static void dispatch(struct daemon *d, struct conn *c, const struct json_value *v) {
  cell_error *err = NULL;
  int64_t version = 0;
  const struct json_value *ver = json_object_get(v, "version");
  if (!ver || !json_get_int64(ver, &version)) {
    conn_error(d, c, "field `version`: required, an integer");
    return;
  }
  if (version != DAEMON_API_VERSION) {
    cleanup_free char *msg = xasprintf(
        "version %lld: not supported (this celld speaks version %d)",
        (long long)version, DAEMON_API_VERSION);
    conn_error(d, c, msg);
    return;
  }
  const char *op = request_str(v, "op");
  if (!op) {
    conn_error(d, c, "field `op`: required, a string");
    return;
  }
  if (strcmp(op, "create") == 0) {
    op_create(d, c, v);
    return;
  }
  if (!c->root && !c->member) {
    conn_error(d, c, "permission denied: not root and not a member of the celld group");
    return;
  }
  if (strcmp(op, "list") == 0 || strcmp(op, "events") == 0 ||
      strcmp(op, "networks") == 0) {
    static const char *const none[] = {NULL};
    if (check_fields(v, none, &err) < 0)
      goto fail;
    if (op[0] == 'l') {
      op_list(d, c);
    } else if (op[0] == 'n') {
      daemon_net_op_list(d, c);
    } else {
      c->subscriber = true;
      conn_send(d, c, "{\"ok\":true}");
    }
    return;
  }
  if (c->exec_pidfd >= 0 && strcmp(op, "signal") != 0) {
    conn_error(d, c, "an exec runs on this connection: only `signal` until it exits");
    return;
  }
  if (strcmp(op, "exec") == 0 || strcmp(op, "signal") == 0) {
    static const char *const exec_fields[] = {"sname", "aargs", "btty", "aenv",
                                              "scwd", NULL};
    static const char *const signal_fields[] = {"nsignal", NULL};
    if (check_fields(v, op[0] == 'e' ? exec_fields : signal_fields, &err) < 0)
      goto fail;
    if (op[0] == 's') {
      exec_op_signal(d, c, v);
      return;
    }
    struct instance *in = NULL;
    if (lookup(d, c, request_str(v, "name"), &in, &err) < 0)
      goto fail;
    exec_op(d, c, in, v);
    return;
  }
  if (strcmp(op, "console") == 0) {
    static const char *const console_fields[] = {"sname", NULL};
    struct instance *in = NULL;
    if (check_fields(v, console_fields, &err) < 0 ||
        lookup(d, c, request_str(v, "name"), &in, &err) < 0)
      goto fail;
    console_op(d, c, in);
    return;
  }
  static const char *const name_only[] = {"sname", NULL};
  static const char *const with_timeout[] = {"sname", "ntimeout", NULL};
  static const char *const with_force[] = {"sname", "bforce", NULL};
  static const char *const limits[] = {"sname", "nmemory", "ncpus", "npids", NULL};
  const char *const *allowed;
  if (strcmp(op, "start") == 0 || strcmp(op, "show") == 0)
    allowed = name_only;
  else if (strcmp(op, "stop") == 0 || strcmp(op, "restart") == 0)
    allowed = with_timeout;
  else if (strcmp(op, "destroy") == 0)
    allowed = with_force;
  else if (strcmp(op, "set") == 0)
    allowed = limits;
  else {
    cleanup_free char *msg = xasprintf("op `%s`: unknown", op);
    conn_error(d, c, msg);
    return;
  }
  struct instance *in = NULL;
  if (check_fields(v, allowed, &err) < 0 ||
      lookup(d, c, request_str(v, "name"), &in, &err) < 0)
    goto fail;
  if (strcmp(op, "start") == 0)
    op_start(d, c, in);
  else if (strcmp(op, "show") == 0)
    op_show(d, c, in);
  else if (strcmp(op, "stop") == 0)
    op_stop(d, c, in, v, AFTER_NOTHING);
  else if (strcmp(op, "restart") == 0)
    op_stop(d, c, in, v, AFTER_START);
  else if (strcmp(op, "destroy") == 0)
    op_destroy(d, c, in, v);
  else
    op_set(d, c, in, v);
  return;
fail:
  conn_error(d, c, err->msg);
  cell_error_free(&err);
}

void ops_handle_line(struct daemon *d, struct conn *c, const char *line,
                     size_t len) {
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(line, len, &v, &err) < 0) {
    cleanup_free char *msg = xasprintf("malformed request: %s", err->msg);
    cell_error_free(&err);
    conn_error(d, c, msg);
    return;
  }
  if (v->type != JSON_OBJECT) {
    conn_error(d, c, "malformed request: not a JSON object");
    return;
  }
  dispatch(d, c, v);
}

/* recv, keeping up to 3 fds sent along (exec's stdio); more are closed. */
