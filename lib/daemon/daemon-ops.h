/* celld's API: one request line, checked against the ops[] table (fields,
 * rights, instance) and handed to its op; every refusal answered with its
 * code (docs/api.md).
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_OPS_H
#define CELL_DAEMON_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "base/json.h"
#include "daemon/daemon-types.h"

/* What the checks of a request need to know of its peer: its rights
 * (SO_PEERCRED, the celld group) and whether an exec runs on its
 * connection. */
struct request_peer {
  bool root, member;
  bool exec_running;
};

/* An entry of the ops[] table. */
struct op;

/* The line parsed and checked as celld checks every request, without a
 * daemon or a connection: JSON object, version, op, the peer's rights, the
 * op's fields and their types, the instance's name.  Whether that instance
 * exists and the peer may see it is the dispatcher's to check.  On success
 * *req is the request (the caller frees it) and *op its entry; on a refusal
 * *code is its API code. */
int ops_check_request(const char *line, size_t len,
                      const struct request_peer *peer, struct json_value **req,
                      const struct op **op, enum api_code *code,
                      cell_error **err);
/* One request line of a client, answered. */
void ops_handle_line(struct daemon *d, struct conn *c, const char *line,
                     size_t len);

#endif
