/* Instance consoles of celld: the console keeper and its protocol.
 *
 * Each running instance's init has a pty (process.terminal); its master
 * lives in the console keeper: one process per celld state dir, forked by
 * celld, in its own session, that outlives celld.  The keeper reads every
 * master all the time (an instance never blocks on its console, whether
 * or not anyone is attached and whether or not celld runs), keeps the last
 * output of each in a ring buffer (console-ring.h), and relays attached
 * clients (console-client.h is cellctl's end).
 *
 * celld talks to the keeper over <state_dir>/console.sock (SOCK_SEQPACKET,
 * mode 0600, uid 0 only).  Every message is one packet: a type byte, then
 * the payload; some carry an fd (SCM_RIGHTS):
 *   'a' NAME + master fd   add (or replace: the buffer stays) a console
 *   'r' NAME               remove it, buffer and all
 *   'c' NAME + socket      attach a client: one end of a SEQPACKET
 *                          socketpair whose other end celld gives the client
 * On an attached socket:
 *   'd' bytes              console data: output to the client, input from it
 *   'w' struct winsize     from the client: its terminal's size
 *   'e' text               from the keeper: why it cannot attach; then EOF
 * EOF from the keeper: the console went away (the instance stopped). */
#ifndef CELL_CONSOLE_KEEPER_H
#define CELL_CONSOLE_KEEPER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

/* ---- messages ----------------------------------------------------------- */

#define CONSOLE_RING_MAX (64 * 1024) /* bytes of output kept per console */
#define CONSOLE_MSG_MAX 16384 /* payload bytes of one packet */
#define CONSOLE_DETACH_KEY 0x1d /* Ctrl-] */
#define CONSOLE_SOCKET "console.sock"

enum {
  CONSOLE_MSG_DATA = 'd',
  CONSOLE_MSG_WINSIZE = 'w',
  CONSOLE_MSG_ERROR = 'e',
  CONSOLE_CTL_ADD = 'a',
  CONSOLE_CTL_REMOVE = 'r',
  CONSOLE_CTL_HANGUP = 'h', /* the instance stopped: close its pty */
  CONSOLE_CTL_ATTACH = 'c',
  /* The console's buffer into the file that comes along (after what its
   * pty still holds), for when the instance stopped. */
  CONSOLE_CTL_SAVE = 's',
  /* A stopped instance's console made again from the file that comes
   * along (a save of an earlier keeper); nothing when the keeper has it. */
  CONSOLE_CTL_LOAD = 'l',
};

/* One packet: type, payload, and fd when >= 0.  flags for sendmsg
 * (MSG_NOSIGNAL is always added).  -1 with errno on failure. */
int console_send(int sock, char type, const void *data, size_t len, int fd,
                 int flags);
/* One packet into buf (type first); returns its length, 0 at EOF, -1 with
 * errno (EMSGSIZE when it did not fit).  *fd: an fd that came along, or -1
 * (more than one: the others are closed).  fd may be NULL: any is closed. */
ssize_t console_recv(int sock, void *buf, size_t size, int *fd, int flags);

/* ---- the keeper --------------------------------------------------------- */

/* Connect to the keeper of state_dir; when none answers, start one (a
 * forked child that calls console_keeper_run) and connect to it.
 * *spawned: a new keeper was started. */
int console_keeper_connect(const char *state_dir, bool *spawned, pid_t *pid,
                           cell_error **err);
/* The keeper's loop on an already listening socket bound at path (removed
 * when it exits).  Exits the process when it holds no live console, no
 * console of a stopped instance that celld has not saved yet, and no
 * celld is connected. */
void console_keeper_run(int listenfd, const char *path)
    __attribute__((noreturn));

#endif
