/* cellctl profile (profile.h; docs/api.md, "Profiles"). */
#include "profile.h"

#include <stdio.h>
#include <string.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "output.h"

static const char *const usage =
    "profile create NAME [KEY=VALUE...] | set NAME KEY=VALUE... | show NAME "
    "[--json] | list | rm NAME";

static void print_profile(const struct json_value *p) {
  printf("%-12s %s\n", "name", field_string(p, "name"));
  const char *labels[] = {"settings", "used_by"};
  const char *shown[] = {"setting", "used by"};
  for (size_t l = 0; l < 2; l++) {
    const struct json_value *a = json_object_get(p, labels[l]);
    for (size_t i = 0; a && a->type == JSON_ARRAY && i < a->u.array.len; i++)
      printf("%-12s %s\n", shown[l], a->u.array.items[i]->u.string);
  }
}

/* op with `profile` NAME and, from argv[first] on, KEY=VALUE settings. */
static int call(const struct invocation *inv, const char *op, int first,
                struct json_value **answer, cell_error **err) {
  cleanup_json_gen struct json_gen *g = request_new(op, NULL);
  if (inv->argc > 2)
    json_gen_kv_string(g, "profile", inv->argv[2]);
  if (first > 0) {
    json_gen_key(g, "settings");
    json_gen_array_open(g);
    for (int k = first; k < inv->argc; k++) {
      if (!strchr(inv->argv[k], '=') || inv->argv[k][0] == '=')
        return usage_error(err, "profile: `%s`: expected KEY=VALUE",
                           inv->argv[k]);
      json_gen_string(g, inv->argv[k]);
    }
    json_gen_array_close(g);
  }
  cleanup_free char *req = request_finish(g);
  return client_request(inv->socket, req, answer, err);
}

static int list(const struct invocation *inv, cell_error **err) {
  cleanup_json struct json_value *answer = NULL;
  int rc = call(inv, "profile.list", 0, &answer, err);
  const struct json_value *a = json_object_get(answer, "profiles");
  for (size_t i = 0; rc == EXIT_OK && a && a->type == JSON_ARRAY &&
                     i < a->u.array.len; i++)
    printf("%s\n", a->u.array.items[i]->u.string);
  return rc;
}

static int show(const struct invocation *inv, bool json, cell_error **err) {
  cleanup_json struct json_value *answer = NULL;
  int rc = call(inv, "profile.show", 0, &answer, err);
  const struct json_value *p = json_object_get(answer, "profile");
  if (rc == EXIT_OK && p)
    json ? print_json(p) : print_profile(p);
  return rc;
}

int cmd_profile(const struct invocation *inv, cell_error **err) {
  const char *sub = inv->argc > 1 ? inv->argv[1] : "";
  cleanup_json struct json_value *answer = NULL;
  if (strcmp(sub, "list") == 0 && inv->argc == 2)
    return list(inv, err);
  if (strcmp(sub, "show") == 0 && (inv->argc == 3 || (inv->argc == 4 &&
                                   strcmp(inv->argv[3], "--json") == 0)))
    return show(inv, inv->argc == 4, err);
  if (strcmp(sub, "create") == 0 && inv->argc >= 3)
    return call(inv, "profile.create", 3, &answer, err);
  if (strcmp(sub, "set") == 0 && inv->argc >= 4)
    return call(inv, "profile.set", 3, &answer, err);
  if (strcmp(sub, "rm") == 0 && inv->argc == 3)
    return call(inv, "profile.rm", 0, &answer, err);
  return usage_error(err, "%s", usage);
}
