/* A celld request line, checked as the daemon checks it before it looks
 * up the instance: ops_check_request (JSON object, version, op, rights,
 * fields and their types, the instance's name), then the limits that
 * create and set read with daemon-request.c.  Each line is checked for
 * root and for a group member with an exec running, the two peers whose
 * paths differ most. */
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/json.h"
#include "daemon/daemon-ops.h"
#include "daemon/daemon-request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_limits(const struct json_value *v) {
  cleanup_error cell_error *err = NULL;
  int64_t n;
  bool given;
  static const char *const keys[] = {"memory", "pids", "timeout", "signal"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (request_limit(v, keys[i], &n, &given, &err) < 0)
      cell_error_free(&err);
  if (request_cpus(v, &n, &given, &err) < 0)
    cell_error_free(&err);
}

static void check(const char *line, size_t len, const struct request_peer *peer) {
  cleanup_error cell_error *err = NULL;
  cleanup_json struct json_value *v = NULL;
  const struct op *op = NULL;
  enum api_code code;
  if (ops_check_request(line, len, peer, &v, &op, &code, &err) < 0)
    return;
  read_limits(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const struct request_peer root = {.root = true};
  static const struct request_peer member_in_exec = {.member = true,
                                                     .exec_running = true};
  check((const char *)data, size, &root);
  check((const char *)data, size, &member_in_exec);
  return 0;
}
