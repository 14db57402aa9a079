/* celld's log of operations: one line per request, with when (RFC 3339,
 * milliseconds, UTC), who (the peer's uid and pid), what (the op and the
 * instance it names) and how it ended (ok, or the error and its code):
 *   2026-12-06T16:52:24.123Z uid=0 pid=4242 op=start name=web1 ok
 *   2026-12-06T16:52:25.007Z uid=1000 pid=4250 op=stop name=web2
 *     error="instance `web2` does not exist" code=not-found
 * (one line).  Values a client chose are quoted when they hold anything
 * but [A-Za-z0-9._:/@+-], so that a request cannot forge a line.
 * Writes never block celld and their failures are dropped: a full disk or
 * a stalled reader of stderr costs lines, never service.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_LOG_H
#define CELL_DAEMON_LOG_H

#include <sys/types.h>

#include "base/error.h"

struct op_log_entry {
  uid_t uid;
  pid_t pid;
  const char *op;    /* NULL: the request had none (malformed) */
  const char *name;  /* NULL: the op names no instance */
  const char *error; /* NULL: ok */
  const char *code;  /* the API's code of the error */
};

/* The destination: path (opened O_APPEND, made 0640 if new), or standard
 * error when path is NULL.  *fd: an fd of celld's (standard error is
 * dup'ed), non-blocking where that matters (a pipe, a socket). */
int daemon_log_open(const char *path, int *fd, cell_error **err);
/* The line of e at the time given (RFC 3339), newline included. */
char *daemon_log_format(const struct op_log_entry *e, const char *time);
/* Now in RFC 3339 with milliseconds, UTC: 2026-12-06T16:52:24.123Z. */
char *daemon_log_time(void);
/* Append the line of e, stamped now, with one write(2); nothing when fd
 * is -1. */
void daemon_log_op(int fd, const struct op_log_entry *e);

#endif
