/* The container process: what runs between clone() in the runtime and the
 * exec of the container's program.  It never returns. */
#ifndef CELL_CONTAINER_INIT_H
#define CELL_CONTAINER_INIT_H

#include <stdbool.h>

#include "cgroup/cgroup.h"
#include "oci/spec.h"
#include "runtime/capabilities.h"
#include "runtime/namespaces.h"
#include "runtime/seccomp.h"

struct init_args {
  const struct spec *spec;
  const struct ns_plan *ns;
  const char *rootfs;  /* absolute host path */
  int sync_fd;         /* our end of the socketpair with the runtime */
  int state_dirfd;     /* <root>/<id>: holds exec.fifo */
  bool no_pivot;
  bool writable_net_sysctls; /* see container_opts */
  bool wait_for_start; /* false for `run`: exec at once, no fifo */
  int preserve_fds;    /* fds 3 .. 3+N-1 stay open across exec */
  const int *bind_fds; /* see rootfs_config */
  struct cgroup_join *cgroup_join; /* written first thing (see cgroup.h) */
  const struct caps_plan *caps;
  const struct seccomp_program *seccomp; /* NULL: no filter */
  int console_fd;      /* connected --console-socket, -1 without terminal */
  int procfs;          /* verified procfs root (base/procfs.h), opened by
                          the runtime before any namespace was joined: every
                          write to /proc goes beneath it */
};

__attribute__((noreturn)) void container_init(const struct init_args *a);

/* The messages of the setup, sent only when needed (each is a round trip
 * on the path of every container start): the id maps are written by the
 * runtime only for a new user namespace; the state JSON is only read by
 * hooks that run in the container. */
static inline bool container_init_waits_for_maps(const struct ns_plan *ns,
                                                 const struct spec *s) {
  /* ...and for linux.netDevices, moved in by the runtime before the
   * container's sysctls and hooks look for them. */
  return ns->new_userns || (s->linux_ && s->linux_->n_net_devices > 0);
}
static inline bool container_init_wants_state(const struct spec *s) {
  return s->hooks.create_container.len > 0 || s->hooks.start_container.len > 0;
}

#endif
