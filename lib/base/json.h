/* The only module that knows the JSON library (yajl).  A small DOM for
 * reading, a generator for writing. */
#ifndef CELL_JSON_H
#define CELL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"

enum json_type {
  JSON_NULL,
  JSON_BOOL,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
};

struct json_value {
  enum json_type type;
  union {
    bool boolean;
    char *number; /* the literal as written, e.g. "-1", "18446744073709551615", "0.5" */
    char *string; /* NUL-terminated; JSON strings with embedded NULs are refused */
    struct {
      struct json_value **items;
      size_t len;
    } array;
    struct {
      char **keys; /* in document order; a duplicate key keeps the last value */
      struct json_value **values;
      size_t len;
    } object;
  } u;
};

/* Parse a whole document.  On malformed input the error reads
 * "line L, column C: <what is wrong>". */
int json_parse(const char *buf, size_t len, struct json_value **out,
               cell_error **err);
void json_free(struct json_value *v);
static inline void json_freep(struct json_value **v) { json_free(*v); }
#define cleanup_json __attribute__((cleanup(json_freep)))

/* Member of an object, NULL when absent or when obj is not an object. */
const struct json_value *json_object_get(const struct json_value *obj,
                                         const char *key);
/* "string", "number", "object", ... for error messages. */
const char *json_type_name(enum json_type t);

/* Number conversions: false when v is not a number or not representable
 * (fractional, out of range). */
bool json_get_int64(const struct json_value *v, int64_t *out);
bool json_get_uint64(const struct json_value *v, uint64_t *out);
bool json_get_double(const struct json_value *v, double *out);

/* ---- generator ---------------------------------------------------------- */
struct json_gen;
struct json_gen *json_gen_new(bool pretty);
void json_gen_free(struct json_gen *g);
void json_gen_object_open(struct json_gen *g);
void json_gen_object_close(struct json_gen *g);
void json_gen_array_open(struct json_gen *g);
void json_gen_array_close(struct json_gen *g);
void json_gen_key(struct json_gen *g, const char *key);
void json_gen_string(struct json_gen *g, const char *s);
void json_gen_int(struct json_gen *g, int64_t v);
void json_gen_uint(struct json_gen *g, uint64_t v);
void json_gen_double(struct json_gen *g, double v);
void json_gen_bool(struct json_gen *g, bool v);
void json_gen_null(struct json_gen *g);
/* Emit a parsed value (deep copy into the output). */
void json_gen_value(struct json_gen *g, const struct json_value *v);
/* Shorthands for "key": value pairs inside an object. */
void json_gen_kv_string(struct json_gen *g, const char *key, const char *s);
void json_gen_kv_int(struct json_gen *g, const char *key, int64_t v);
void json_gen_kv_bool(struct json_gen *g, const char *key, bool v);
/* Take the finished document (NUL-terminated, newline-terminated when
 * pretty).  The generator may be freed afterwards. */
char *json_gen_finish(struct json_gen *g, size_t *len);
/* The finished document of a compact generator as one line, newline-
 * terminated, in a single write (readers on a pipe take whole lines);
 * frees g.  What cell_write_all returns. */
ssize_t json_gen_write_line(struct json_gen *g, int fd);

#endif
