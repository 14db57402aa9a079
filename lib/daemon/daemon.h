/* celld: one event-driven process (epoll, no threads) that owns every
 * instance: it starts them through libcell, is their parent and child
 * subreaper, watches them with pidfds, applies their restart policies and
 * serves the JSON-lines API of docs/api.md on a unix socket.  This is what
 * cmd/celld calls; daemon-types.h lists the files that do the work. */
#ifndef CELL_DAEMON_H
#define CELL_DAEMON_H

#include "base/error.h"
#include "daemon/daemon-config.h"

/* Serve until SIGTERM or SIGINT; instances keep running after it returns. */
int daemon_run(const struct daemon_config *c, cell_error **err);

#endif
