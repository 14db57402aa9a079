/* cellctl log NAME [-n N] [-f]: an instance's own log (celld keeps it
 * under the instance's directory: its lifecycle, exits, OOM kills and the
 * ops that changed it, one stamped line each).  --follow asks again every
 * half second and prints what is new, until the instance goes or ^C. */
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "base/util.h"
#include "client.h"

/* The default of -n: a screenful. */
#define LOG_DEFAULT_LINES 50
/* What --follow asks for each time: more than come in half a second. */
#define FOLLOW_LINES 1000

static int parse_log_args(const struct invocation *inv, long long *lines,
                          bool *follow, cell_error **err) {
  *lines = LOG_DEFAULT_LINES;
  *follow = false;
  for (int i = 2; i < inv->argc; i++) {
    const char *arg = inv->argv[i];
    const char *value = NULL;
    if (strcmp(arg, "-f") == 0 || strcmp(arg, "--follow") == 0) {
      *follow = true;
      continue;
    }
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

/* The last lines of the log: the answer's array (in *answer). */
static int fetch(const struct invocation *inv, const char *name,
                 long long lines, struct json_value **answer,
                 const struct json_value **list, cell_error **err) {
  cleanup_json_gen struct json_gen *g = request_new("log", name);
  json_gen_kv_int(g, "lines", lines);
  cleanup_free char *req = request_finish(g);
  int rc = client_request(inv->socket, req, answer, err);
  if (rc != EXIT_OK)
    return rc;
  *list = json_object_get(*answer, "lines");
  if (!*list || (*list)->type != JSON_ARRAY)
    return cell_fail(err, 0, "celld's answer has no lines"), EXIT_FAILED;
  return EXIT_OK;
}

/* Print the lines from index first; *last: a copy of the last one. */
static void print_from(const struct json_value *list, size_t first,
                       char **last) {
  for (size_t i = first; i < list->u.array.len; i++) {
    const struct json_value *l = list->u.array.items[i];
    if (l->type != JSON_STRING)
      continue;
    printf("%s\n", l->u.string);
    free(*last);
    *last = xstrdup(l->u.string);
  }
  fflush(stdout);
}

/* Where the new lines start: after the last one printed (all of them when
 * it is gone, by a rotation). */
static size_t new_from(const struct json_value *list, const char *last) {
  for (size_t i = list->u.array.len; last && i > 0; i--) {
    const struct json_value *l = list->u.array.items[i - 1];
    if (l->type == JSON_STRING && strcmp(l->u.string, last) == 0)
      return i;
  }
  return last ? 0 : list->u.array.len;
}

static int follow(const struct invocation *inv, const char *name, char **last,
                  cell_error **err) {
  for (;;) {
    nanosleep(&(struct timespec){0, 500000000}, NULL);
    cleanup_json struct json_value *answer = NULL;
    const struct json_value *list = NULL;
    int rc = fetch(inv, name, FOLLOW_LINES, &answer, &list, err);
    if (rc != EXIT_OK)
      return rc;
    print_from(list, new_from(list, *last), last);
  }
}

int cmd_log(const struct invocation *inv, cell_error **err) {
  const char *name;
  long long lines;
  bool follow_it;
  int rc = verb_name(inv, &name, err);
  if (rc == EXIT_OK)
    rc = parse_log_args(inv, &lines, &follow_it, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_json struct json_value *answer = NULL;
  const struct json_value *list = NULL;
  rc = fetch(inv, name, lines, &answer, &list, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_free char *last = NULL;
  print_from(list, 0, &last);
  return follow_it ? follow(inv, name, &last, err) : EXIT_OK;
}
