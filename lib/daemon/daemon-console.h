/* celld's side of the instance consoles: the console keeper (console.h)
 * that holds the pty master of every running instance, fed at each start
 * and told at each destroy; pty listeners for the runtime's
 * console_socket.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_CONSOLE_H
#define CELL_DAEMON_CONSOLE_H

#include <stdbool.h>

#include "base/error.h"
#include "daemon/daemon-types.h"

/* A listening socket at path for a pty master (the runtime's
 * console_socket): an instance's console, an exec's terminal. */
int daemon_pty_listener(const char *path, cell_error **err);
/* Connect to the console keeper of our state dir, or start one. */
void daemon_console_init(struct daemon *d);
void daemon_console_close(struct daemon *d);
/* Around container_create: a socket for the init's pty master (*path is
 * its console_socket), then the master handed to the keeper (or, when the
 * create failed, only the socket removed).  A failure after the create
 * costs the instance its console, not its start. */
int daemon_console_listen(struct daemon *d, struct instance *in, char **path,
                          cell_error **err);
void daemon_console_take(struct daemon *d, struct instance *in, int listener,
                         const char *path, bool created);
/* A pty master made by celld itself (a restored instance's console) to
 * the keeper, which keeps its own copy. */
int daemon_console_give(struct daemon *d, struct instance *in, int master,
                        cell_error **err);
/* The instance is destroyed: its console and buffer go. */
/* The instance stopped: the keeper closes its pty (its buffer stays). */
void daemon_console_hangup(struct daemon *d, const char *name);
void daemon_console_remove(struct daemon *d, const char *name);
/* The instance stopped: the keeper writes its console's buffer (what the
 * pty still held included) to <instance dir>/console.saved (console.log
 * is the runtime's own stderr), so that it is
 * there after celld and the keeper are gone. */
void daemon_console_save(struct daemon *d, const char *name);
/* For a stopped instance: the keeper gets its console back from
 * console.saved when it has none (a new keeper); -1 with ENOENT in *err
 * when there is no such file (it never ran, or ran before files were
 * kept). */
int daemon_console_load(struct daemon *d, const char *name, cell_error **err);
/* The keeper attaches fd (one end of a socketpair) to the console of the
 * instance name: the buffer, then live output; input to the pty. */
int daemon_console_attach(struct daemon *d, const char *name, int fd,
                          cell_error **err);

#endif
