/* celld: one event-driven process (epoll, no threads) that owns every
 * instance: it starts them through libcell, is their parent and child
 * subreaper, watches them with pidfds, applies their restart policies and
 * serves the JSON-lines API of docs/api.md on a unix socket. */
#ifndef CELL_DAEMON_H
#define CELL_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"
#include "daemon/idrange.h"
#include "net/network.h"

#define DAEMON_API_VERSION 1
#define DAEMON_MAX_REQUEST 65536

#include "daemon/daemon-config.h"

/* Serve until SIGTERM or SIGINT; instances keep running after it returns. */
int daemon_run(const struct daemon_config *c, cell_error **err);

#endif
