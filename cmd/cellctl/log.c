/* cellctl log NAME [-n N]: an instance's own log (celld keeps it under the
 * instance's directory: its lifecycle, exits, OOM kills and the ops that
 * changed it, one stamped line each). */
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "args.h"
#include "base/util.h"
#include "client.h"

/* The default of -n: a screenful. */
#define LOG_DEFAULT_LINES 50

static int parse_log_args(const struct invocation *inv, long long *lines,
                          cell_error **err) {
  *lines = LOG_DEFAULT_LINES;
  for (int i = 2; i < inv->argc; i++) {
    const char *arg = inv->argv[i];
    const char *value = NULL;
    if ((strcmp(arg, "-n") == 0 || strcmp(arg, "--lines") == 0) &&
        i + 1 < inv->argc)
      value = inv->argv[++i];
    else if (strncmp(arg, "--lines=", 8) == 0)
      value = arg + 8;
    else
      return usage_error(err, "log: unexpected `%s`", arg);
    if (!cell_parse_ll(value, 0, 1000000, lines))
      return usage_error(err, "-n `%s`: a number of lines (0: all)", value);
  }
  return EXIT_OK;
}

int cmd_log(const struct invocation *inv, cell_error **err) {
  const char *name;
  long long lines;
  int rc = verb_name(inv, &name, err);
  if (rc == EXIT_OK)
    rc = parse_log_args(inv, &lines, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_json_gen struct json_gen *g = request_new("log", name);
  json_gen_kv_int(g, "lines", lines);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  rc = client_request(inv->socket, req, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  const struct json_value *list = json_object_get(answer, "lines");
  for (size_t i = 0; list && list->type == JSON_ARRAY && i < list->u.array.len;
       i++) {
    const struct json_value *l = list->u.array.items[i];
    if (l->type == JSON_STRING)
      printf("%s\n", l->u.string);
  }
  return EXIT_OK;
}
