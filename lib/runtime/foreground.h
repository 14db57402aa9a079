/* `run` and `exec` in the foreground: every signal we get goes to the
 * container's process, the caller's terminal is proxied to the container's
 * pty (raw mode, window size, SIGWINCH), and we wait for the process. */
#ifndef CELL_FOREGROUND_H
#define CELL_FOREGROUND_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>
#include <termios.h>

#include "base/error.h"
#include "oci/spec.h"

struct foreground {
  int sfd;            /* signalfd of every signal (all blocked) */
  sigset_t old_mask;
  int master;         /* the container's pty master, -1 without terminal */
  bool raw;           /* our stdin was put in raw mode */
  struct termios saved;
};

/* Block every signal and take them through a signalfd. */
int foreground_begin(struct foreground *f, cell_error **err);
/* Proxy the pty: our stdin/stdout to/from master, whatever they are (a
 * pipe, /dev/null, a file); raw mode and the window size when stdin is a
 * terminal.  Takes ownership of master. */
int foreground_attach_terminal(struct foreground *f, int master,
                               cell_error **err);
/* Forward signals, copy terminal data, reap children until pid exits;
 * *exit_code is its status, or 128+N when killed by signal N. */
int foreground_wait(struct foreground *f, pid_t pid, int *exit_code,
                    cell_error **err);
/* Restore the terminal and the signal mask. */
void foreground_end(struct foreground *f);

/* Whether stdin is a terminal (raw mode, window size to copy). */
bool foreground_has_terminal(void);

/* Before the process is made, when its terminal will be proxied: our
 * terminal's size as its process.consoleSize, so that it has it from the
 * start (foreground_attach_terminal comes too late for a process that asks
 * at once).  A terminal without a size leaves consoleSize as it was. */
void foreground_size_process(struct spec_process *p);

/* Copy what is readable now from `from` to `to`; false on EOF or error. */
bool foreground_pump(int from, int to);

#endif
