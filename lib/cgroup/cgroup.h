/* Control groups of a container: one interface (cgroup.c) in front of a
 * v1 backend (cgroup-v1.c) and a v2 backend (cgroup-v2.c), each a table of
 * operations, chosen per controller by the host's layout: unified (v2
 * only), hybrid (v1 controllers + a cgroup2 mount with few or no
 * controllers, like these build machines) or legacy (v1 only).
 *
 * This is libcell's cgroup API: it includes the headers of the layout
 * (cgroup_detect), the resources (cgroup_update) and the statistics
 * (cgroup_stats_json, the OOM watch), whose functions live in their own
 * files. */
#ifndef CELL_CGROUP_H
#define CELL_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"
#include "cgroup/cgroup-layout.h"
#include "cgroup/cgroup-resources.h"
#include "cgroup/cgroup-stats.h"
#include "oci/spec.h"

struct cgroup; /* a container's cgroup(s), opaque */

/* In the runtime at create, before the container process runs anything of
 * its own: make the cgroup from linux.cgroupsPath (absolute, or relative to
 * the runtime's own cgroup; default "/cell/<id>"), parents included,
 * enabling controllers down the v2 tree, and apply linux.resources
 * (including the device rules: v1 devices.allow/deny, v2 an eBPF
 * BPF_PROG_TYPE_CGROUP_DEVICE program). */
int cgroup_create(const struct spec *s, const char *id, struct cgroup **out,
                  cell_error **err);
/* The v2 cgroup directory fd for clone3(CLONE_INTO_CGROUP) (also the
 * cgroup2 twin on a hybrid host), -1 when there is none. */
int cgroup_clone_fd(const struct cgroup *cg);
/* For a process to add to a running container on cgroup v2.  A cgroup
 * with controllers enabled below it takes no process (the kernel's "no
 * internal processes" rule), which is how an init that manages its own
 * subtree (systemd) leaves the container's cgroup.  Then the v2 side of cg
 * becomes the cgroup of the container's init, which must be beneath it, as
 * runc does.  Nothing changes while the cgroup can take processes. */
int cgroup_v2_follow_init(struct cgroup *cg, int procfs, pid_t init,
                          cell_error **err);
/* Move pid into the container's cgroup(s) (every v1 hierarchy). */
int cgroup_enter(const struct cgroup *cg, pid_t pid, cell_error **err);

/* The cheap way in, for a process the runtime has just cloned.  The
 * runtime opens the cgroup files (the kernel checks the opener's
 * credentials, so this works for a process already in a user namespace);
 * the new process writes "0" to them itself.  Into a v1 `tasks` file that
 * moves just the writer and skips the global lock that every cgroup.procs
 * write takes, which costs a whole RCU grace period (~10 ms here).  With
 * skip_v2 (the process was cloned into the v2 cgroup), the v2 side is left
 * alone. */
struct cgroup_join {
  int fds[16];
  size_t n;
};
int cgroup_join_open(const struct cgroup *cg, bool skip_v2,
                     struct cgroup_join *j, cell_error **err);
/* The same into existing sub-cgroups (`exec --cgroup`, runc's format):
 * each entry is "PATH" (every hierarchy) or "CONTROLLER:PATH" (the v1
 * hierarchy of that controller), PATH relative to the container's cgroup;
 * hierarchies no entry names are joined at the container's cgroup. */
int cgroup_join_open_sub(const struct cgroup *cg, char *const *subs,
                         struct cgroup_join *j, cell_error **err);
/* In the new process: join, closing the fds. */
int cgroup_join_self(struct cgroup_join *j, cell_error **err);
void cgroup_join_close(struct cgroup_join *j);
/* What to store in the state so that later commands find it again, and
 * how they do. */
const char *cgroup_path(const struct cgroup *cg);
int cgroup_open(const char *path, struct cgroup **out, cell_error **err);
void cgroup_free(struct cgroup *cg);

/* Kill whatever is left (SIGKILL, cgroup.kill where there is one), then
 * remove the cgroup(s), retrying while the kernel says EBUSY. */
int cgroup_destroy(struct cgroup *cg, cell_error **err);

/* Close the directories of every hierarchy but the one that serves the
 * controller: a long-lived watcher (celld, per instance) then holds one fd,
 * not one per hierarchy, and an O_PATH one (the cgroup's files are read
 * through it with openat; it cannot list the directory). */
void cgroup_keep_only(struct cgroup *cg, const char *controller);
/* The same for a NULL-terminated list of controllers. */
void cgroup_keep_controllers(struct cgroup *cg, const char *const *controllers);
int cgroup_kill_all(const struct cgroup *cg, int signo, cell_error **err);
/* The names of the cgroups right below the cgroup at path, in any
 * hierarchy (a NULL-terminated list, empty when there is none). */
int cgroup_children(const char *path, char ***names, cell_error **err);
int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n,
                cell_error **err);
/* The processes in every hierarchy, not only the one cgroup_pids reads
 * (which is enough for a cgroup made whole by cgroup_create): for one of
 * unknown origin.  A pid may appear more than once. */
int cgroup_pids_everywhere(const struct cgroup *cg, pid_t **pids, size_t *n,
                           cell_error **err);
int cgroup_freeze(const struct cgroup *cg, bool frozen, cell_error **err);
bool cgroup_is_frozen(const struct cgroup *cg);
/* The directory of the cgroup whose freezer serves the container (v1
 * freezer hierarchy, else cgroup2), for a tool that freezes by path
 * (criu --freeze-cgroup); NULL when there is no freezer.  Caller frees. */
char *cgroup_freezer_dir(const struct cgroup *cg);

#endif
