/* celld's API: the ops[] table (for each op its fields, who may call it,
 * whether it names an instance, its handler) and the dispatch of one
 * request line through it. */
#include "daemon/daemon-ops.h"

#include <stdbool.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-control.h"
#include "daemon/daemon-create.h"
#include "daemon/daemon-exec.h"
#include "daemon/daemon-files.h"
#include "daemon/daemon-image.h"
#include "daemon/daemon-query.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/daemon-settings.h"
#include "daemon/daemon-profiles.h"
#include "daemon/daemon-checkpoint.h"
#include "daemon/daemon-snapshot.h"
#include "daemon/daemon-transfer.h"
#include "daemon/daemon-migrate.h"

/* Who may call an op (docs/api.md, "Who may do what"). */
enum access {
  ACCESS_ROOT,   /* uid 0 only */
  ACCESS_MEMBER, /* uid 0, or a member of the `group` of celld.conf */
};

typedef void op_handler(struct daemon *d, struct conn *c, struct instance *in,
                        const struct json_value *v);

struct op {
  const char *name;
  const struct request_field *fields; /* besides `version` and `op` */
  enum access access;
  const char *denied;  /* the refusal; NULL: the one of every op */
  /* `name` is an instance the peer may see (root: all; a member: its own),
   * handed to the handler; without it the handler gets NULL. */
  bool needs_instance;
  bool during_exec;    /* allowed while an exec runs on the connection */
  op_handler *run;
};

#define S JSON_STRING
#define N JSON_NUMBER
#define B JSON_BOOL
#define A JSON_ARRAY
static const struct request_field create_fields[] = {
    {"name", S}, {"template", S}, {"image", S}, {"memory", N}, {"cpus", N},
    {"pids", N},
    {"init", A}, {"autostart", B}, {"restart", S}, {"hostname", S},
    {"networks", A}, {"halt_signal", S}, {"pool", S}, {"disk", N},
    {"profiles", A}, {NULL, 0}};
static const struct request_field no_fields[] = {{NULL, 0}};
static const struct request_field name_only[] = {{"name", S}, {NULL, 0}};
static const struct request_field with_timeout[] = {
    {"name", S}, {"timeout", N}, {NULL, 0}};
static const struct request_field with_force[] = {
    {"name", S}, {"force", B}, {NULL, 0}};
static const struct request_field set_fields[] = {
    {"name", S}, {"settings", A}, {"memory", N}, {"cpus", N}, {"pids", N},
    {"disk", N}, {NULL, 0}};
static const struct request_field get_fields[] = {
    {"name", S}, {"key", S}, {NULL, 0}};
static const struct request_field profile_only[] = {{"profile", S}, {NULL, 0}};
static const struct request_field profile_fields[] = {
    {"profile", S}, {"settings", A}, {NULL, 0}};
static const struct request_field exec_fields[] = {
    {"name", S}, {"args", A}, {"tty", B}, {"env", A}, {"cwd", S}, {NULL, 0}};
static const struct request_field signal_fields[] = {{"signal", N}, {NULL, 0}};
static const struct request_field snapshot_fields[] = {
    {"name", S}, {"snapshot", S}, {NULL, 0}};
static const struct request_field migrate_fields[] = {
    {"name", S}, {"check", B}, {NULL, 0}};
static const struct request_field checkpoint_fields[] = {
    {"name", S}, {"snapshot", S}, {"stop", B}, {NULL, 0}};
static const struct request_field log_fields[] = {
    {"name", S}, {"lines", N}, {NULL, 0}};
static const struct request_field push_fields[] = {
    {"name", S}, {"path", S}, {"uid", N}, {"gid", N}, {"mode", N},
    {"type", S}, {"target", S}, {NULL, 0}};
static const struct request_field pull_fields[] = {
    {"name", S}, {"path", S}, {"recursive", B}, {NULL, 0}};
static const struct request_field name_as[] = {{"name", S}, {"as", S}, {NULL, 0}};
static const struct request_field import_fields[] = {
    {"as", S}, {"source", S}, {NULL, 0}};
static const struct request_field transfer_import_fields[] = {
    {"as", S}, {NULL, 0}};
static const struct request_field image_only[] = {{"image", S}, {NULL, 0}};
static const struct request_field image_tag_fields[] = {
    {"image", S}, {"as", S}, {NULL, 0}};
#undef S
#undef N
#undef B
#undef A

static const struct op ops[] = {
    {"create", create_fields, ACCESS_MEMBER,
     "permission denied: only root and members of the celld group may create "
     "instances", false, true, op_create},
    {"list", no_fields, ACCESS_MEMBER, NULL, false, true, op_list},
    {"events", no_fields, ACCESS_MEMBER, NULL, false, true, op_events},
    {"networks", no_fields, ACCESS_MEMBER, NULL, false, true, op_networks},
    {"pools", no_fields, ACCESS_MEMBER, NULL, false, true, op_pools},
    {"metrics", no_fields, ACCESS_MEMBER, NULL, false, true, op_metrics},
    {"show", name_only, ACCESS_MEMBER, NULL, true, false, op_show},
    {"log", log_fields, ACCESS_MEMBER, NULL, true, false, op_log},
    {"start", name_only, ACCESS_MEMBER, NULL, true, false, op_start},
    {"stop", with_timeout, ACCESS_MEMBER, NULL, true, false, op_stop},
    {"restart", with_timeout, ACCESS_MEMBER, NULL, true, false, op_restart},
    {"destroy", with_force, ACCESS_MEMBER, NULL, true, false, op_destroy},
    {"set", set_fields, ACCESS_MEMBER, NULL, true, false, op_set},
    {"get", get_fields, ACCESS_MEMBER, NULL, true, false, op_get},
    {"file.push", push_fields, ACCESS_MEMBER, NULL, true, false, op_file_push},
    {"file.pull", pull_fields, ACCESS_MEMBER, NULL, true, false, op_file_pull},
    {"pause", name_only, ACCESS_MEMBER, NULL, true, false, op_pause},
    {"resume", name_only, ACCESS_MEMBER, NULL, true, false, op_resume},
    {"exec", exec_fields, ACCESS_MEMBER, NULL, true, false, exec_op},
    {"signal", signal_fields, ACCESS_MEMBER, NULL, false, true, exec_op_signal},
    {"console", name_only, ACCESS_MEMBER, NULL, true, false, console_op},
    {"snapshot", snapshot_fields, ACCESS_MEMBER, NULL, true, false, op_snapshot},
    {"snapshots", name_only, ACCESS_MEMBER, NULL, true, false, op_snapshots},
    {"restore", snapshot_fields, ACCESS_MEMBER, NULL, true, false, op_restore},
    {"checkpoint", checkpoint_fields, ACCESS_MEMBER, NULL, true, false,
     op_checkpoint},
    {"snapshot.rm", snapshot_fields, ACCESS_MEMBER, NULL, true, false,
     op_snapshot_rm},
    {"clone", name_as, ACCESS_MEMBER, NULL, true, false, op_clone},
    {"rename", name_as, ACCESS_MEMBER, NULL, true, false, op_rename},
    {"image.import", import_fields, ACCESS_MEMBER, NULL, false, false,
     op_image_import},
    {"image.list", no_fields, ACCESS_MEMBER, NULL, false, true, op_image_list},
    {"image.show", image_only, ACCESS_MEMBER, NULL, false, true, op_image_show},
    {"image.tag", image_tag_fields, ACCESS_MEMBER, NULL, false, false,
     op_image_tag},
    {"image.rm", image_only, ACCESS_MEMBER, NULL, false, false, op_image_rm},
    {"profile.list", no_fields, ACCESS_MEMBER, NULL, false, false,
     op_profile_list},
    {"profile.show", profile_only, ACCESS_MEMBER, NULL, false, false,
     op_profile_show},
    /* Root's: a profile may give its instances host directories and
     * devices. */
    {"profile.create", profile_fields, ACCESS_ROOT,
     "permission denied: only root may make or change profiles", false, false,
     op_profile_create},
    {"profile.set", profile_fields, ACCESS_ROOT,
     "permission denied: only root may make or change profiles", false, false,
     op_profile_set},
    {"profile.rm", profile_only, ACCESS_ROOT,
     "permission denied: only root may make or change profiles", false, false,
     op_profile_rm},
    /* Root's: an import makes layers the store trusts by name, and an
     * export hands out a whole instance. */
    {"export", name_only, ACCESS_ROOT,
     "permission denied: only root may export an instance", true, false,
     op_export},
    {"import", transfer_import_fields, ACCESS_ROOT,
     "permission denied: only root may import an instance", false, false,
     op_import},
    /* Root's: a migration hands out a whole instance, or makes one of a
     * stream whose layers the store trusts by name. */
    {"migrate", migrate_fields, ACCESS_ROOT,
     "permission denied: only root may migrate an instance", true, false,
     op_migrate},
    {"receive", no_fields, ACCESS_ROOT,
     "permission denied: only root may receive an instance", false, false,
     op_receive},
};

static const struct op *find_op(const char *name) {
  for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
    if (strcmp(ops[i].name, name) == 0)
      return &ops[i];
  return NULL;
}

/* An unknown op is refused as any op would be, before it is called
 * unknown: a stranger learns nothing of the API. */
static bool may_call(const struct request_peer *peer, const struct op *op) {
  if (op && op->access == ACCESS_ROOT)
    return peer->root;
  return peer->root || peer->member;
}

static int check_version(const struct json_value *v, cell_error **err) {
  int64_t version = 0;
  const struct json_value *ver = json_object_get(v, "version");
  if (!ver || !json_get_int64(ver, &version))
    return cell_fail(err, 0, "field `version`: required, an integer");
  if (version != DAEMON_API_VERSION)
    return cell_fail(err, 0,
                     "version %lld: not supported (this celld speaks version %d)",
                     (long long)version, DAEMON_API_VERSION);
  return 0;
}

/* A refusal: its code, and the message in *err. */
static int refuse(enum api_code *code, enum api_code c, cell_error **err,
                  const char *msg) {
  *code = c;
  return cell_fail(err, 0, "%s", msg);
}

/* The checks of a parsed request, in the order the API promises: the
 * version, the op's name, the peer's rights (before the op is known to
 * exist), a running exec, the op, its fields, the instance's name. */
static int check_request(const struct json_value *v,
                         const struct request_peer *peer, const struct op **out,
                         enum api_code *code, cell_error **err) {
  *code = API_INVALID_REQUEST;
  if (check_version(v, err) < 0)
    return -1;
  const char *name = request_str(v, "op");
  if (!name)
    return cell_fail(err, 0, "field `op`: required, a string");
  const struct op *op = find_op(name);
  if (!may_call(peer, op))
    return refuse(code, API_PERMISSION_DENIED, err,
                  op && op->denied ? op->denied
                                   : "permission denied: not root and not a "
                                     "member of the celld group");
  if (peer->exec_running && !(op && op->during_exec))
    return refuse(code, API_WRONG_STATE, err,
                  "an exec runs on this connection: only `signal` until it "
                  "exits");
  if (!op) {
    *code = API_UNKNOWN_OP;
    return cell_fail(err, 0, "op `%s`: unknown", name);
  }
  if (request_check_fields(v, op->fields, err) < 0)
    return -1;
  if (op->needs_instance) {
    const char *iname = request_str(v, "name");
    if (!iname)
      return cell_fail(err, 0, "field `name`: required");
    if (instance_check_name(iname, err) < 0)
      return -1;
  }
  *out = op;
  return 0;
}

int ops_check_request(const char *line, size_t len,
                      const struct request_peer *peer, struct json_value **req,
                      const struct op **op, enum api_code *code,
                      cell_error **err) {
  *code = API_INVALID_REQUEST;
  cleanup_json struct json_value *v = NULL;
  if (json_parse(line, len, &v, err) < 0)
    return cell_error_wrap(err, "malformed request");
  if (v->type != JSON_OBJECT)
    return cell_fail(err, 0, "malformed request: not a JSON object");
  if (check_request(v, peer, op, code, err) < 0)
    return -1;
  *req = steal_pointer(&v);
  return 0;
}

/* The instance the checked request names, when the peer may see it. */
static int lookup(struct daemon *d, struct conn *c, const char *name,
                  struct instance **out, cell_error **err) {
  struct instance *in = daemon_find_instance(d, name);
  if (!in || !conn_may_see(c, in))
    return cell_fail(err, 0, "instance `%s` does not exist", name);
  *out = in;
  return 0;
}

/* A request refused before it was understood is logged with the op and
 * name it gave, if it is JSON enough to give them. */
static void begin_refused_op(struct conn *c, const char *line, size_t len) {
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(line, len, &v, &err) < 0 || v->type != JSON_OBJECT) {
    cell_error_free(&err);
    conn_begin_op(c, NULL, NULL);
    return;
  }
  conn_begin_op(c, request_str(v, "op"), request_str(v, "name"));
}

/* Ops that only look: they leave no line in the instance's own log, and
 * they are all an instance takes while something holds it (a copy of its
 * layer, criu, a migration: enum instance_hold). */
static bool only_looks(const struct op *op) {
  static const char *const looks[] = {"show", "snapshots", "console", "log",
                                      "get"};
  for (size_t i = 0; i < sizeof(looks) / sizeof(*looks); i++)
    if (strcmp(op->name, looks[i]) == 0)
      return true;
  return false;
}

void ops_handle_line(struct daemon *d, struct conn *c, const char *line,
                     size_t len) {
  const struct request_peer peer = {
      .root = c->root, .member = c->member, .exec_running = c->exec_pidfd >= 0};
  cleanup_json struct json_value *v = NULL;
  const struct op *op = NULL;
  enum api_code code;
  cell_error *err = NULL;
  if (ops_check_request(line, len, &peer, &v, &op, &code, &err) < 0) {
    begin_refused_op(c, line, len);
    conn_fail(d, c, code, &err);
    return;
  }
  conn_begin_op(c, op->name, request_str(v, "name"));
  struct instance *in = NULL;
  if (op->needs_instance &&
      lookup(d, c, request_str(v, "name"), &in, &err) < 0) {
    conn_fail(d, c, API_NOT_FOUND, &err);
    return;
  }
  if (in && in->hold != HOLD_NONE && !only_looks(op)) {
    cell_fail(&err, 0, "instance `%s`: %s", in->rec->name,
              instance_hold_why(in->hold));
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  c->op_changes_instance = op->needs_instance && !only_looks(op);
  op->run(d, c, in, v);
}
