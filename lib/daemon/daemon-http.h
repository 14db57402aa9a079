/* celld's metrics over HTTP (celld.conf `metrics_listen`): GET /metrics
 * answers usage_prometheus of every instance.  libmicrohttpd runs in
 * celld's own loop (its epoll fd among celld's), never in a thread.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_HTTP_H
#define CELL_DAEMON_HTTP_H

#include "base/error.h"
#include "daemon/daemon-types.h"

/* Listen on metrics_listen when it is on; an error names the address. */
int http_start(struct daemon *d, cell_error **err);
/* Its epoll fd (TAG_HTTP) or its timer (TAG_HTTP_TIMER) fired. */
void http_on_event(struct daemon *d);
void http_stop(struct daemon *d);

#endif
