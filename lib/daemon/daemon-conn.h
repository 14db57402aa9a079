/* celld's client connections: output buffering, replies (errors carry a
 * stable code beside the message), events for the subscribers, and the
 * peer's rights (SO_PEERCRED).
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_CONN_H
#define CELL_DAEMON_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "daemon/daemon-types.h"

struct conn *daemon_find_conn(struct daemon *d, uint64_t id);
struct conn *daemon_conn_by_fd(struct daemon *d, int fd);
/* Close the fds that came with the request. */
void conn_drop_fds(struct conn *c);
/* Forget the helper starting an exec for c (with kill_all: SIGKILL it
 * and the command it made first); nothing when there is none. */
void conn_end_exec_helper(struct daemon *d, struct conn *c, bool kill_all);
/* A request is being handled: op (NULL: none given) on the instance name
 * (NULL: none); its answer, when it goes, is logged (daemon-log.h). */
void conn_begin_op(struct conn *c, const char *op, const char *name);
/* An answer sent other than by conn_send (with an fd): logged as ok. */
void conn_note_answer(struct daemon *d, struct conn *c);
/* Close and free it (its exec gets SIGHUP, its exec helper SIGKILL). */
void conn_close(struct daemon *d, struct conn *c);
/* Write what the socket takes now; the rest waits for EPOLLOUT.  False
 * when the connection was closed. */
bool conn_flush(struct daemon *d, struct conn *c);
/* One line; false when the connection was closed (e.g. its buffer full). */
bool conn_send(struct daemon *d, struct conn *c, const char *json);
/* The API's name of the code ("not-found", ...). */
const char *api_code_name(enum api_code code);
/* {"ok":false,"error":msg,"code":...}. */
void conn_error(struct daemon *d, struct conn *c, enum api_code code,
                const char *msg);
/* The same with (*err)->msg; *err is freed. */
void conn_fail(struct daemon *d, struct conn *c, enum api_code code,
               cell_error **err);
/* {"ok":true,"instance":...}; {"ok":true} when in is NULL. */
void conn_reply_instance(struct daemon *d, struct conn *c, struct instance *in);
bool conn_may_see(const struct conn *c, const struct instance *in);
/* The hooks of struct daemon: an event to every subscriber that may see
 * the instance; the answer to a client waiting for the instance. */
void conn_emit_event(struct daemon *d, struct instance *in, const char *event);
void conn_answer_waiter(struct daemon *d, uint64_t conn_id,
                        struct instance *in, const char *error);

#endif
