/* The members of a celld API request: unknown ones and wrong types are
 * refused, limits read the same way by create and set. */
#include "daemon/daemon-request.h"

#include <sched.h>
#include <string.h>

const char *request_str(const struct json_value *v, const char *key) {
  const struct json_value *f = json_object_get(v, key);
  return f && f->type == JSON_STRING ? f->u.string : NULL;
}

static bool field_allowed(const char *key, const struct request_field *allowed) {
  if (strcmp(key, "version") == 0 || strcmp(key, "op") == 0)
    return true;
  for (const struct request_field *a = allowed; a->name; a++)
    if (strcmp(a->name, key) == 0)
      return true;
  return false;
}

static const char *type_word(enum json_type t) {
  switch (t) {
  case JSON_STRING: return "string";
  case JSON_BOOL: return "boolean";
  case JSON_NUMBER: return "number";
  default: return "array";
  }
}

int request_check_fields(const struct json_value *v,
                         const struct request_field *allowed, cell_error **err) {
  for (size_t i = 0; i < v->u.object.len; i++)
    if (!field_allowed(v->u.object.keys[i], allowed))
      return cell_fail(err, 0, "unknown field `%s`", v->u.object.keys[i]);
  for (const struct request_field *a = allowed; a->name; a++) {
    const struct json_value *f = json_object_get(v, a->name);
    if (f && f->type != a->type)
      return cell_fail(err, 0, "field `%s`: must be a %s", a->name,
                       type_word(a->type));
  }
  return 0;
}

int request_limit(const struct json_value *v, const char *key, int64_t *out,
                  bool *given, cell_error **err) {
  const struct json_value *f = json_object_get(v, key);
  *given = f != NULL;
  if (!f)
    return 0;
  if (!json_get_int64(f, out) || *out < 0)
    return cell_fail(err, 0, "field `%s`: must be an integer >= 0", key);
  return 0;
}

/* The CPUs celld itself may run on (its affinity), 0 when unknown. */
static int usable_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) < 0)
    return 0;
  return CPU_COUNT(&set);
}

int request_cpus(const struct json_value *v, int64_t *milli, bool *given,
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
  /* More than celld may run on is a quota no process can reach: a typo,
   * most likely.  cpuset, not cpus, picks which CPUs. */
  int host = usable_cpus();
  if (host > 0 && *milli > (int64_t)host * 1000)
    return cell_fail(err, 0, "cpus %g: more than the %d CPU%s this host runs "
                     "instances on (at most %d)", cpus, host,
                     host == 1 ? "" : "s", host);
  return 0;
}
