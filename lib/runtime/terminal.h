/* process.terminal: a pty from the container's own devpts instance, its
 * master handed to the caller over --console-socket (SCM_RIGHTS, as runc
 * does: what conmon and containerd's shim expect), its slave the
 * container process's controlling terminal, stdio and /dev/console. */
#ifndef CELL_TERMINAL_H
#define CELL_TERMINAL_H

#include <stdbool.h>

#include "base/error.h"
#include "oci/spec.h"

/* In the runtime: connect to the console socket (a unix stream socket). */
int terminal_connect(const char *socket_path, int *fd, cell_error **err);

/* In the container process, after pivot_root and before the uid change:
 * open /dev/ptmx, size it (process.consoleSize), send the master over
 * console_fd, and make the slave our controlling terminal and fds 0-2;
 * with bind_dev_console, /dev/console too (the container's init, not exec). */
int terminal_setup(int console_fd, const struct spec_process *p,
                   bool bind_dev_console, cell_error **err);

/* Send fd over a unix socket with SCM_RIGHTS, with `name` as the data. */
int terminal_send_fd(int sock, int fd, const char *name, cell_error **err);

/* Receive an fd sent with terminal_send_fd. */
int terminal_recv_fd(int sock, int *fd, cell_error **err);

/* A socketpair standing in for --console-socket when the runtime itself
 * proxies the terminal (run/exec -t in the foreground). */
int terminal_pair(int *ours, int *theirs, cell_error **err);

#endif
