/* The members of a celld API request: unknown ones and wrong types are
 * refused, limits read the same way by create and set. */
#include "daemon/daemon-request.h"

#include <string.h>

#include "daemon/instance-settings.h"

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
  if (instance_cpus_fit_host(*milli, err) < 0)
    return -1;
  return 0;
}
