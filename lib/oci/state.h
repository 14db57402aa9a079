/* Per-container state under --root (default /run/cell):
 *   <root>/<id>/state.json   replaced atomically (temp + rename), not
 *                            fsynced: it dies with the host
 *   <root>/<id>/config.json  the config as it was at create time (likewise)
 *   <root>/<id>/exec.fifo    present between create and start
 * A container directory is locked (flock on its directory fd) by every
 * command that reads or changes it, so commands on one ID serialize. */
#ifndef CELL_STATE_H
#define CELL_STATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"
#include "oci/spec.h"

#define CELL_DEFAULT_ROOT "/run/cell"
#define CELL_EXEC_FIFO "exec.fifo"
#define CELL_STATE_FILE "state.json"
#define CELL_CONFIG_FILE "config.json"

enum cell_status {
  CELL_STATUS_CREATING,
  CELL_STATUS_CREATED,
  CELL_STATUS_RUNNING,
  CELL_STATUS_PAUSED,
  CELL_STATUS_STOPPED,
};

struct cell_state {
  char *id;
  pid_t pid;                     /* init, in the host pid namespace */
  unsigned long long start_time; /* of pid, to tell a reused pid */
  char *bundle;                  /* absolute */
  char *rootfs;                  /* absolute */
  char *created;                 /* RFC 3339 */
  char *owner;                   /* "" like runc when not rootless */
  char *cgroup_path;             /* NULL until the cgroup work lands */
  bool started;                  /* start has released the process */
  struct spec_kv *annotations;
  size_t n_annotations;
};

void cell_state_free(struct cell_state *st);
static inline void cell_state_freep(struct cell_state **st) {
  cell_state_free(*st);
}
#define cleanup_state __attribute__((cleanup(cell_state_freep)))

/* IDs: [A-Za-z0-9_.+-]+, no leading dot, at most 1024 bytes. */
int state_check_id(const char *id, cell_error **err);

/* <root>/.seccomp-cache (made 0700 when missing), -1 when it cannot be
 * had: the cache is an optimisation, never a reason to fail. */
int state_open_seccomp_cache(int rootfd);

/* Open (creating it 0700 if needed) the root directory. */
int state_root_open(const char *root, int *rootfd, cell_error **err);

/* Make <root>/<id> (0700) and lock it exclusively; "container `ID` already
 * exists" when it is there. Returns the directory fd (O_CLOEXEC) in *dirfd. */
int state_dir_create(int rootfd, const char *id, int *dirfd, cell_error **err);
/* Open and lock <root>/<id>; "container `ID` does not exist" when it is not
 * there or was removed while we waited for the lock. */
int state_dir_open(int rootfd, const char *id, int *dirfd, cell_error **err);
/* Remove <root>/<id> and everything in it (the caller holds the lock). */
int state_dir_remove(int rootfd, const char *id, cell_error **err);
/* The directory of id when it holds no state.json: what a create killed
 * before it wrote one leaves behind.  *removed says whether it was such a
 * directory (waiting for a create still at work to finish). */
int state_dir_remove_stateless(int rootfd, const char *id, bool *removed,
                               cell_error **err);

int state_write(int dirfd, const struct cell_state *st, cell_error **err);
int state_read(int dirfd, struct cell_state **out, cell_error **err);

/* created / running / stopped from the pid, its start time and `started`
 * (paused is for the cgroup code to report later). */
enum cell_status state_status(const struct cell_state *st);
const char *state_status_name(enum cell_status s);

/* The OCI state document (what `cell state` prints, what hooks read on
 * stdin): ociVersion, id, status, pid, bundle, rootfs, created, owner,
 * annotations. pid is 0 when stopped. */
char *state_to_json(const struct cell_state *st, enum cell_status status,
                    bool pretty);

/* The same document into a generator (for `list -f json`'s array). */
struct json_gen;
void state_gen_json(struct json_gen *g, const struct cell_state *st,
                    enum cell_status status);

/* IDs of every container under the root, sorted. */
int state_list_ids(int rootfd, char ***ids, cell_error **err);

#endif
