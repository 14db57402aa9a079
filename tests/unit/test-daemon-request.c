/* celld's request checks (lib/daemon/daemon-request.c, the whole line in
 * daemon-ops.c) and the names of its error codes (daemon-conn.c): what
 * clients rely on. */
#include <sched.h>
#include <stdlib.h>

#include "base/json.h"
#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-ops.h"
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

/* A quota of more CPUs than celld can run on is refused, naming the count;
 * all of them is fine. */
TEST(cpus_beyond_the_host) {
  cpu_set_t set;
  CHECK(sched_getaffinity(0, sizeof(set), &set) == 0);
  int host = CPU_COUNT(&set);
  cell_error *err = NULL;
  int64_t milli = 0;
  bool given = false;
  cleanup_free char *all = xasprintf("{\"cpus\":%d}", host);
  cleanup_free char *more = xasprintf("{\"cpus\":%d.5}", host);
  cleanup_json struct json_value *v = NULL, *w = NULL;
  CHECK(json_parse(all, strlen(all), &v, &err) == 0);
  CHECK(json_parse(more, strlen(more), &w, &err) == 0);
  CHECK(request_cpus(v, &milli, &given, &err) == 0 && milli == host * 1000);
  CHECK(request_cpus(w, &milli, &given, &err) < 0);
  cleanup_free char *want = xasprintf("more than the %d CPU", host);
  CHECK_CONTAINS(err ? err->msg : NULL, want);
  cell_error_free(&err);
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

static const struct request_peer root = {.root = true};
static const struct request_peer member = {.member = true};
static const struct request_peer stranger = {0};
static const struct request_peer member_in_exec = {.member = true,
                                                   .exec_running = true};

/* "code: message" of ops_check_request on text; "ok" when it passes. */
static char *check_line(const char *text, const struct request_peer *peer) {
  static char msg[512];
  cell_error *err = NULL;
  cleanup_json struct json_value *v = NULL;
  const struct op *op = NULL;
  enum api_code code = API_FAILED;
  if (ops_check_request(text, strlen(text), peer, &v, &op, &code, &err) < 0)
    snprintf(msg, sizeof(msg), "%s: %s", api_code_name(code), err->msg);
  else
    snprintf(msg, sizeof(msg), "%s", v && op ? "ok" : "no request");
  cell_error_free(&err);
  return msg;
}

TEST(line_passes) {
  CHECK_STR(check_line("{\"version\":1,\"op\":\"list\"}", &member), "ok");
  CHECK_STR(check_line("{\"version\":1,\"op\":\"start\",\"name\":\"web-1\"}",
                       &root), "ok");
  CHECK_STR(check_line("{\"version\":1,\"op\":\"signal\",\"signal\":2}",
                       &member_in_exec), "ok");
}

TEST(line_malformed) {
  CHECK_CONTAINS(check_line("{\"version\":1,", &root),
                 "invalid-request: malformed request: line 1");
  CHECK_STR(check_line("[1]", &root),
            "invalid-request: malformed request: not a JSON object");
  CHECK_STR(check_line("{\"op\":\"list\"}", &root),
            "invalid-request: field `version`: required, an integer");
  CHECK_CONTAINS(check_line("{\"version\":2,\"op\":\"list\"}", &root),
                 "invalid-request: version 2: not supported");
  CHECK_STR(check_line("{\"version\":1,\"op\":7}", &root),
            "invalid-request: field `op`: required, a string");
}

/* A stranger is refused before the op is known to exist or its fields are
 * read: the refusal tells nothing of the API. */
TEST(line_refusal_order) {
  CHECK_CONTAINS(check_line("{\"version\":1,\"op\":\"nope\",\"x\":1}",
                            &stranger),
                 "permission-denied: permission denied");
  CHECK_CONTAINS(check_line("{\"version\":1,\"op\":\"create\"}", &stranger),
                 "permission-denied: permission denied: only root");
  CHECK_CONTAINS(check_line("{\"version\":1,\"op\":\"show\"}",
                            &member_in_exec),
                 "wrong-state: an exec runs");
  CHECK_STR(check_line("{\"version\":1,\"op\":\"nope\"}", &member),
            "unknown-op: op `nope`: unknown");
  CHECK_STR(check_line("{\"version\":1,\"op\":\"list\",\"name\":\"a\"}", &root),
            "invalid-request: unknown field `name`");
  CHECK_STR(check_line("{\"version\":1,\"op\":\"show\"}", &root),
            "invalid-request: field `name`: required");
  CHECK_CONTAINS(check_line("{\"version\":1,\"op\":\"show\",\"name\":\"../x\"}",
                            &root),
                 "invalid-request: name `../x`: must start with");
}

int main(void) {
  RUN(known_fields_pass);
  RUN(unknown_field_is_named);
  RUN(wrong_type_is_named);
  RUN(limits);
  RUN(cpus_beyond_the_host);
  RUN(code_names);
  RUN(line_passes);
  RUN(line_malformed);
  RUN(line_refusal_order);
  UNIT_DONE();
}
