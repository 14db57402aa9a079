/* celld's request checks (lib/daemon/daemon-request.c) and the names of
 * its error codes (daemon-conn.c): what clients rely on. */
#include <stdlib.h>

#include "base/json.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-request.h"
#include "unit.h"

static const struct request_field fields[] = {
    {"name", JSON_STRING}, {"force", JSON_BOOL}, {"timeout", JSON_NUMBER},
    {"args", JSON_ARRAY}, {NULL, 0}};

/* The error of request_check_fields on text; "" when it passes. */
static char *check(const char *text) {
  static char msg[256];
  cell_error *err = NULL;
  cleanup_json struct json_value *v = NULL;
  if (json_parse(text, strlen(text), &v, &err) < 0) {
    fprintf(stderr, "parse %s: %s\n", text, err->msg);
    abort();
  }
  msg[0] = '\0';
  if (request_check_fields(v, fields, &err) < 0)
    snprintf(msg, sizeof(msg), "%s", err->msg);
  cell_error_free(&err);
  return msg;
}

TEST(known_fields_pass) {
  CHECK_STR(check("{\"version\":1,\"op\":\"x\"}"), "");
  CHECK_STR(check("{\"version\":1,\"op\":\"x\",\"name\":\"a\",\"force\":true,"
                  "\"timeout\":3,\"args\":[]}"), "");
}

TEST(unknown_field_is_named) {
  CHECK_STR(check("{\"version\":1,\"op\":\"x\",\"bogus\":1}"),
            "unknown field `bogus`");
}

TEST(wrong_type_is_named) {
  CHECK_STR(check("{\"name\":5}"), "field `name`: must be a string");
  CHECK_STR(check("{\"force\":\"yes\"}"), "field `force`: must be a boolean");
  CHECK_STR(check("{\"timeout\":\"3\"}"), "field `timeout`: must be a number");
  CHECK_CONTAINS(check("{\"args\":{}}"), "field `args`: must be a");
  CHECK_CONTAINS(check("{\"args\":{}}"), "array");
}

TEST(limits) {
  cell_error *err = NULL;
  cleanup_json struct json_value *v = NULL;
  const char *text = "{\"memory\":1024,\"pids\":-1,\"cpus\":0.5}";
  CHECK(json_parse(text, strlen(text), &v, &err) == 0);
  int64_t n = 0, milli = 0;
  bool given = false;
  CHECK(request_limit(v, "memory", &n, &given, &err) == 0 && given && n == 1024);
  CHECK(request_limit(v, "absent", &n, &given, &err) == 0 && !given);
  CHECK(request_limit(v, "pids", &n, &given, &err) < 0);
  CHECK_STR(err ? err->msg : NULL, "field `pids`: must be an integer >= 0");
  cell_error_free(&err);
  CHECK(request_cpus(v, &milli, &given, &err) == 0 && given && milli == 500);
}

TEST(code_names) {
  CHECK_STR(api_code_name(API_INVALID_REQUEST), "invalid-request");
  CHECK_STR(api_code_name(API_UNKNOWN_OP), "unknown-op");
  CHECK_STR(api_code_name(API_PERMISSION_DENIED), "permission-denied");
  CHECK_STR(api_code_name(API_NOT_FOUND), "not-found");
  CHECK_STR(api_code_name(API_EXISTS), "exists");
  CHECK_STR(api_code_name(API_WRONG_STATE), "wrong-state");
  CHECK_STR(api_code_name(API_FAILED), "failed");
  CHECK_STR(api_code_name((enum api_code)99), "failed");
}

int main(void) {
  RUN(known_fields_pass);
  RUN(unknown_field_is_named);
  RUN(wrong_type_is_named);
  RUN(limits);
  RUN(code_names);
  UNIT_DONE();
}
