/* `cell restore`: a container made again from a checkpoint's image
 * directory (checkpoint.h) and its bundle, runc's way: a state directory
 * and a cgroup as `create` makes them, then criu restores the processes
 * into that cgroup, onto the bundle's rootfs. */
#ifndef CELL_RESTORE_H
#define CELL_RESTORE_H

#include <stdbool.h>

#include "base/error.h"
#include "runtime/criu.h"

struct restore_opts {
  const char *root;
  const char *id;
  const char *bundle;         /* NULL: the current directory */
  const char *pid_file;       /* NULL: none */
  const char *console_socket; /* refused: criu cannot hand out the pty */
  bool detach;
  bool no_subreaper;
  struct criu_opts criu;
  /* For a caller that knows more of the container than its bundle (celld):
   * more of criu's flags (its NICs, its device mounts), fds criu inherits
   * at their numbers (--inherit-fd), and a process.terminal whose pty the
   * caller gives (its slave among inherit_fds) rather than refused. */
  char *const *extra_args;
  const int *inherit_fds;
  size_t n_inherit_fds;
  bool terminal_given;
};

/* Restore, then (unless o->detach) wait for the container's process as
 * `run` does, forwarding signals, and delete the container when it exits;
 * *exit_code is its status.  On failure nothing is left: no state
 * directory, no cgroup, no process. */
int container_restore(const struct restore_opts *o, int *exit_code,
                      cell_error **err);

#endif
