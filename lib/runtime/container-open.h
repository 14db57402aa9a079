/* Opening an existing container: its state directory, locked, with its
 * state, its cgroup and the config it was created with.  Shared by the
 * commands on a container (container.c, container-cgroup.c, exec.c); the
 * CLI goes through container.h.
 * Internal to lib/runtime. */
#ifndef CELL_CONTAINER_OPEN_H
#define CELL_CONTAINER_OPEN_H

#include "cgroup/cgroup.h"
#include "oci/spec.h"
#include "oci/state.h"

/* Check the id, open the root, open and lock the container's directory and
 * read its state.  The caller closes *rootfd and *dirfd (which holds the
 * lock) and frees *st. */
int container_open(const char *root, const char *id, int *rootfd, int *dirfd,
                   struct cell_state **st, cell_error **err);
/* The status, with "paused" when the cgroup is frozen. */
enum cell_status container_status(const struct cell_state *st);
/* The container's cgroup, NULL when it has none (or it is gone). */
struct cgroup *container_cgroup(const struct cell_state *st);

/* The config as it was at create (for hooks, exec); NULL with *err set
 * when it cannot be read. */
struct spec *container_stored_spec(int dirfd, cell_error **err);
/* The same, with a warning logged instead of an error: for the hooks that
 * run after the fact (poststart, poststop), whose failures are warnings. */
struct spec *container_stored_spec_or_warn(int dirfd);

#endif
