/* The service manager's readiness protocol (sd_notify(3)), without
 * libsystemd: one datagram to the socket $NOTIFY_SOCKET names. */
#ifndef CELL_SD_NOTIFY_H
#define CELL_SD_NOTIFY_H

#include "base/error.h"

/* Send state ("READY=1\nMAINPID=42") to $NOTIFY_SOCKET: a path, or an
 * abstract name when it starts with '@'.  0 when sent or when there is no
 * such variable (not started by a service manager). */
int sd_notify_send(const char *state, cell_error **err);

#endif
