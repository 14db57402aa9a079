/* The ops that connect a client to a running instance: exec, signal (to
 * the exec of the connection) and console.  Handlers of the ops[] table
 * (daemon-ops.c): in is the instance named by the request, NULL for
 * signal.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_EXEC_H
#define CELL_DAEMON_EXEC_H

#include "base/json.h"
#include "daemon/daemon-types.h"

void exec_op(struct daemon *d, struct conn *c, struct instance *in,
             const struct json_value *v);
/* No answer: the exit line is what the client waits for. */
void exec_op_signal(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v);
void console_op(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v);
/* The socket of an exec's helper (TAG_EXEC_HELPER) is readable: the
 * command exists, has started (the answer to the client) or failed. */
void exec_on_helper(struct daemon *d, int sock);
/* The helper of c's exec missed its deadline: it and the command are
 * killed, the client told. */
void exec_on_timeout(struct daemon *d, struct conn *c);
/* The exec's pidfd (TAG_EXEC) is readable: its exit line to the client. */
void exec_on_exit(struct daemon *d, int pidfd);

#endif
