/* The members of a celld API request: their names and types, and the
 * values that several ops read the same way.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_REQUEST_H
#define CELL_DAEMON_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "base/json.h"

/* A member an op takes; a list of them ends with {NULL}. */
struct request_field {
  const char *name;
  enum json_type type; /* JSON_STRING, JSON_BOOL, JSON_NUMBER, JSON_ARRAY */
};

/* The string member key, NULL when absent or not a string. */
const char *request_str(const struct json_value *v, const char *key);
/* Every member must be `version`, `op` or one of allowed, of its type. */
int request_check_fields(const struct json_value *v,
                         const struct request_field *allowed, cell_error **err);
/* An integer >= 0 (memory, pids); *given: the member is there. */
int request_limit(const struct json_value *v, const char *key, int64_t *out,
                  bool *given, cell_error **err);
/* `cpus`, a number of CPUs, in thousandths. */
int request_cpus(const struct json_value *v, int64_t *milli, bool *given,
                 cell_error **err);

#endif
