/* `cell exec`: a new process in a running container, in all of its
 * namespaces and its cgroup, with the container's (or process.json's)
 * credentials and confinement. */
#ifndef CELL_EXEC_H
#define CELL_EXEC_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"

struct exec_opts {
  const char *root;
  const char *id;
  const char *process_file; /* --process: a process JSON; else args */
  char **args;
  char **env;               /* -e KEY=VALUE, added to (or replacing) process.env */
  const char *cwd;
  bool set_user;            /* -u given */
  uid_t uid;
  gid_t gid;
  bool set_gid;
  gid_t *additional_gids;
  size_t n_additional_gids;
  char **caps;              /* --cap, added to bounding/effective/permitted */
  bool tty;                 /* -t */
  const char *console_socket;
  bool detach;
  const char *pid_file;
  int preserve_fds;
  bool no_new_privs;
  char **cgroups;           /* --cgroup [CONTROLLER:]PATH, sub-cgroups to join */
  /* --ignore-paused: exec into a paused container too.  The process joins
   * the frozen cgroup and freezes with it before it execs, so the exec
   * (even with detach) returns only once the container is resumed. */
  bool ignore_paused;
  /* Called with the new process's pidfd (not kept: dup it) as soon as the
   * process exists, before it has exec'd: a caller that must not wait on
   * the container for long (celld) can kill it. */
  void (*on_spawn)(int pidfd, pid_t pid, void *arg);
  void *on_spawn_arg;
};

/* Runs the process; unless detached waits for it, forwarding signals, and
 * sets *exit_code (128+N when killed by signal N). */
int container_exec(const struct exec_opts *o, int *exit_code, cell_error **err);

#endif
