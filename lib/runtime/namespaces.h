/* Linux namespaces of a container: which to create at clone time, which to
 * join by path, the uid/gid maps of a new user namespace, time offsets. */
#ifndef CELL_NAMESPACES_H
#define CELL_NAMESPACES_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"
#include "oci/spec.h"

struct ns_plan {
  int clone_flags;    /* CLONE_NEW* passed to clone() by the runtime */
  int unshare_flags;  /* CLONE_NEW* the container process unshares itself */
  bool fork_after_unshare; /* a new pid or time namespace made by unshare:
                              its first member is a child of the caller */
  bool new_userns;    /* the maps must be written by the runtime */
  int join_fds[SPEC_NS_COUNT]; /* open fds of namespaces given by path, -1 if none */
};

/* Work out the plan and open every namespace path (O_CLOEXEC); errors
 * name the path: "linux.namespaces: open `/proc/1/ns/net`: ...". */
int ns_plan_make(const struct spec *s, struct ns_plan *plan, cell_error **err);
void ns_plan_close(struct ns_plan *plan);

/* In the runtime, before clone: a pid namespace given by path must be
 * entered for the children of the runtime (setns affects only those). */
int ns_join_pid_for_children(const struct ns_plan *plan, cell_error **err);

/* In the runtime: write /proc/PID/{uid_map,gid_map} from the spec,
 * beneath the verified procfs root procfs (base/procfs.h). */
int ns_write_id_maps(int procfs, pid_t pid, const struct spec *s,
                     cell_error **err);

/* In the container process: join the user namespace given by path (first,
 * so that the others are joined with its privileges). */
int ns_join_user(const struct ns_plan *plan, cell_error **err);
/* In the container process: join the other namespaces given by path. */
int ns_join_others(const struct ns_plan *plan, cell_error **err);
/* In the container process: unshare plan->unshare_flags and write the time
 * namespace offsets before any process lives in it, through procfs, a
 * procfs root verified before any namespace was joined. */
int ns_unshare(const struct ns_plan *plan, const struct spec *s, int procfs,
               cell_error **err);

/* id mapping text "0 100000 65536\n..." for uid_map/gid_map. */
char *ns_format_id_map(const struct spec_id_mapping *m, size_t n);

#endif
