/* Telling whoever started celld that it serves, or why it does not: the
 * parent of a daemonized celld (a pipe), the service manager (sd_notify
 * over $NOTIFY_SOCKET, for Type=notify), and scripts (--pidfile). */
#ifndef CELL_DAEMON_READY_H
#define CELL_DAEMON_READY_H

#include "base/error.h"
#include "daemon/daemon-types.h"

/* Its socket accepts: write the pid file, notify READY=1, and send
 * "READY\n" down the ready fd, then close it. */
int daemon_announce_ready(struct daemon *d, cell_error **err);
/* On the way out: STOPPING=1, and the pid file goes if it is still ours. */
void daemon_announce_stopping(struct daemon *d);
/* celld could not start: the reason down the ready fd (the waiting parent
 * prints it), then close it. */
void daemon_announce_failure(int ready_fd, const char *why);

#endif
