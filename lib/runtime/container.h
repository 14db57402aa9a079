/* The OCI lifecycle: create, start, run, kill, delete, state, list.
 * This is the API the `cell` command calls; each function does one
 * command's work and returns an error for the CLI to print. */
#ifndef CELL_CONTAINER_H
#define CELL_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "oci/state.h"

struct container_opts {
  const char *root;           /* state root (--root) */
  const char *id;
  const char *bundle;         /* -b; "." when NULL */
  const char *pid_file;       /* NULL: none */
  const char *console_socket; /* NULL: none */
  bool no_pivot;
  int preserve_fds;
  bool keep; /* run: leave the stopped container for `delete` (--keep) */
  /* celld's instances: /proc/sys/net stays writable when linux.readonlyPaths
   * makes /proc/sys read-only.  Needs a network namespace of the
   * container's own (refused otherwise); not an OCI field. */
  bool writable_net_sysctls;
  /* A procfs root (procfs_open_root) the caller keeps open across many
   * creates, borrowed; NULL: the create opens its own.  Where that root is
   * a private procfs instance (the fallback), its teardown when the last
   * fd goes waits for an RCU grace period (up to 10 ms on a busy host),
   * which a long-lived caller pays once instead of at every create. */
  const int *procfs;
};

int container_create(const struct container_opts *o, cell_error **err);
int container_start(const char *root, const char *id, cell_error **err);
/* create + start + (unless detach) wait, forwarding signals, and delete
 * (unless o->keep: then the stopped container, cgroup included, stays
 * until `delete`, as runc's --keep leaves it).  *exit_code is the
 * container's exit status, or 128+N when killed by N. */
int container_run(const struct container_opts *o, bool detach, int *exit_code,
                  cell_error **err);
int container_kill(const char *root, const char *id, int signo, bool all,
                   cell_error **err);
int container_delete(const char *root, const char *id, bool force,
                     cell_error **err);
/* The OCI state JSON of one container (pretty). */
int container_state_json(const char *root, const char *id, char **json,
                         cell_error **err);

struct container_info {
  struct cell_state *state;
  enum cell_status status;
};
int container_list(const char *root, struct container_info **out, size_t *n,
                   cell_error **err);
void container_list_free(struct container_info *list, size_t n);

#endif
