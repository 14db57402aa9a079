/* cellctl snapshot|snapshots|restore|clone|rename: an instance's layers
 * (docs/api.md, "Snapshots and clones"). */
#include "snapshot.h"

#include <stdio.h>
#include <string.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "output.h"

/* op on instance name, with "snapshot" or "as" (key) when value is set. */
static int call(const struct invocation *inv, const char *op, const char *name,
                const char *key, const char *value, struct json_value **answer,
                cell_error **err) {
  cleanup_json_gen struct json_gen *g = request_new(op, name);
  if (value)
    json_gen_kv_string(g, key, value);
  cleanup_free char *req = request_finish(g);
  return client_request(inv->socket, req, answer, err);
}

static void print_snapshots(const struct json_value *list) {
  printf("%-32s %-30s %-6s %s\n", "SNAPSHOT", "CREATED", "LAYERS", "PROCESSES");
  for (size_t i = 0; list && list->type == JSON_ARRAY && i < list->u.array.len; i++) {
    const struct json_value *s = list->u.array.items[i];
    const struct json_value *st = json_object_get(s, "stateful");
    bool stateful = st && st->type == JSON_BOOL && st->u.boolean;
    printf("%-32s %-30s %-6lld %s\n", field_string(s, "name"),
           field_string(s, "created"), field_int(s, "layers", 0),
           stateful ? "yes" : "-");
  }
}

int cmd_snapshot(const struct invocation *inv, cell_error **err) {
  cleanup_json struct json_value *answer = NULL;
  if (inv->argc == 4 && strcmp(inv->argv[1], "rm") == 0)
    return call(inv, "snapshot.rm", inv->argv[2], "snapshot", inv->argv[3],
                &answer, err);
  if (inv->argc < 2 || inv->argc > 3)
    return usage_error(err, "snapshot: NAME [SNAP], or rm NAME SNAP");
  int rc = call(inv, "snapshot", inv->argv[1], "snapshot",
                inv->argc == 3 ? inv->argv[2] : NULL, &answer, err);
  if (rc == EXIT_OK) {
    const struct json_value *list = json_object_get(answer, "snapshots");
    size_t n = list && list->type == JSON_ARRAY ? list->u.array.len : 0;
    /* The newest is the one just taken: its name, for scripts. */
    for (size_t i = 0; i < n; i++)
      if (inv->argc == 3 ? strcmp(field_string(list->u.array.items[i], "name"), inv->argv[2]) == 0
                         : i + 1 == n)
        printf("%s\n", field_string(list->u.array.items[i], "name"));
  }
  return rc;
}

int cmd_snapshots(const struct invocation *inv, cell_error **err) {
  bool json = inv->argc == 3 && strcmp(inv->argv[2], "--json") == 0;
  if (inv->argc != 2 && !json)
    return usage_error(err, "snapshots: NAME [--json]");
  cleanup_json struct json_value *answer = NULL;
  int rc = call(inv, "snapshots", inv->argv[1], NULL, NULL, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  const struct json_value *list = json_object_get(answer, "snapshots");
  if (json)
    print_json(list);
  else
    print_snapshots(list);
  return EXIT_OK;
}

int cmd_restore(const struct invocation *inv, cell_error **err) {
  if (inv->argc != 2 && inv->argc != 3)
    return usage_error(err, "restore: NAME [SNAP]");
  cleanup_json struct json_value *answer = NULL;
  return call(inv, "restore", inv->argv[1], "snapshot",
              inv->argc == 3 ? inv->argv[2] : NULL, &answer, err);
}

int cmd_clone(const struct invocation *inv, cell_error **err) {
  bool start = inv->argc == 4 && strcmp(inv->argv[3], "--start") == 0;
  if (inv->argc != 3 && !start)
    return usage_error(err, "clone: SRC DST [--start]");
  cleanup_json struct json_value *answer = NULL;
  int rc = call(inv, "clone", inv->argv[1], "as", inv->argv[2], &answer, err);
  if (rc != EXIT_OK || !start)
    return rc;
  cleanup_json struct json_value *started = NULL;
  return call(inv, "start", inv->argv[2], NULL, NULL, &started, err);
}

int cmd_rename(const struct invocation *inv, cell_error **err) {
  if (inv->argc != 3)
    return usage_error(err, "rename: OLD NEW");
  cleanup_json struct json_value *answer = NULL;
  return call(inv, "rename", inv->argv[1], "as", inv->argv[2], &answer, err);
}
