/* An instance's own log: what happened to it (created, started, stopped,
 * exits with their status or signal, OOM kills, restarts by policy,
 * reboots and power-offs from inside, snapshots, ...) and the ops that
 * changed it, one stamped line each, in <state>/instances/<name>/log,
 * beside its root and out of its reach.  At INSTANCE_LOG_MAX bytes the
 * file becomes log.1 (the one before goes) and a new one starts.
 * Internal to lib/daemon. */
#ifndef CELL_INSTANCE_LOG_H
#define CELL_INSTANCE_LOG_H

#include <stddef.h>

#include "base/error.h"

#define INSTANCE_LOG_MAX (1 << 20)

/* Append "TIME text\n" to the log in the instance's directory dirfd,
 * rotating first when the file has reached cap bytes.  Never blocks, and
 * a failure (a full disk) loses the line only. */
void instance_log_append(int dirfd, const char *text, size_t cap);
/* The last n lines (n 0: all) of log.1 and log together, oldest first,
 * at most max_bytes of them: a NULL-terminated list. */
int instance_log_tail(int dirfd, size_t n, size_t max_bytes, char ***lines,
                      cell_error **err);

#endif
