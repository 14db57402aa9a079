/* celld's API: one request line, checked against the ops[] table (fields,
 * rights, instance) and handed to its op; every refusal answered with its
 * code (docs/api.md).
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_OPS_H
#define CELL_DAEMON_OPS_H

#include <stddef.h>

#include "daemon/daemon-types.h"

void ops_handle_line(struct daemon *d, struct conn *c, const char *line,
                     size_t len);

#endif
