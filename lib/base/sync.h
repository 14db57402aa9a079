/* Messages between the runtime and the container process during create
 * (and an exec'd process's seccomp listener fd),
 * over a SOCK_SEQPACKET socketpair: one message per send, boundaries kept,
 * and EOF when the peer dies, so neither side can hang on a dead peer. */
#ifndef CELL_SYNC_H
#define CELL_SYNC_H

#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

enum sync_type {
  SYNC_HELLO = 1,       /* child -> parent: I am the container process (pid via SCM_CREDENTIALS) */
  SYNC_IDMAP_DONE,      /* parent -> child: uid/gid maps written, cgroup joined */
  SYNC_STATE,           /* parent -> child: the state JSON, for the in-container hooks */
  SYNC_RUNTIME_HOOKS,   /* child -> parent: namespaces ready, run prestart + createRuntime */
  SYNC_RUNTIME_HOOKS_DONE, /* parent -> child */
  SYNC_CREATED,         /* child -> parent: all set up, about to wait for start */
  SYNC_START,           /* parent -> child: `run` releases the process (no exec.fifo) */
  SYNC_SECCOMP_FD,      /* child -> parent: the seccomp listener fd (SCM_RIGHTS) */
  SYNC_ERROR,           /* child -> parent: errnum + message, then the child exits */
  SYNC_SECCOMP_DONE,    /* parent -> exec'd child: its listener fd reached listenerPath */
};

struct sync_msg {
  int type;
  int errnum;
  pid_t sender_pid; /* filled on receive from SCM_CREDENTIALS, 0 if unknown */
  int fd;           /* received with SCM_RIGHTS, -1 if none (caller owns it) */
  size_t len;
  char *payload; /* NUL-terminated, NULL when len == 0 */
};

int sync_send(int fd, int type, const char *payload, cell_error **err);
/* Send a message carrying an fd (SCM_RIGHTS). */
int sync_send_fd(int fd, int type, int passed_fd, cell_error **err);
/* Send an error as a SYNC_ERROR message (best effort, never fails). */
void sync_send_error(int fd, const cell_error *e);
/* Receive one message; "container process exited before ..." on EOF. */
int sync_recv(int fd, struct sync_msg *msg, cell_error **err);
/* Receive and check the type; a SYNC_ERROR becomes *err. */
int sync_expect(int fd, int type, struct sync_msg *msg, cell_error **err);
void sync_msg_clear(struct sync_msg *msg);

#endif
