/* A container's cgroup as directories (cgroup-dirs.c): its path in each
 * hierarchy, and which directory, with which version's table of
 * operations, serves a controller.  Shared by the interface (cgroup.c),
 * cgroup-resources.c and cgroup-stats.c; not part of libcell's API, where
 * struct cgroup stays opaque.
 * Internal to lib/cgroup. */
#ifndef CELL_CGROUP_DIRS_H
#define CELL_CGROUP_DIRS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "cgroup/cgroup-layout.h"
#include "cgroup/cgroup-ops.h"

/* A v1 hierarchy and the container's cgroup in it. */
struct cgroup_hier {
  char *controllers; /* as /proc/self/cgroup names it: "memory",
                        "cpu,cpuacct", "name=systemd" */
  char *mount;       /* "/sys/fs/cgroup/memory" */
  char *path;        /* the cgroup in the hierarchy: "/cell/<id>" */
  int fd;            /* its directory; -1 when it does not exist */
  bool made;         /* cgroup_create made the directory */
};

struct cgroup {
  enum cgroup_layout layout;
  char *path;    /* the main path (v2's, or the one of most v1 hierarchies) */
  char *encoded; /* cgroup_path(): main path + v1 paths that differ */
  struct cgroup_hier *v1;
  size_t n_v1;
  /* The cgroup2 side: the whole cgroup on a unified host, an optional twin
   * on a hybrid one.  v2_fd is -1 when there is none. */
  char *v2_mount;
  char *v2_path;
  int v2_fd;
  bool v2_made;
};

/* An empty struct cgroup (no hierarchy, no fd); cgroup_free frees it. */
struct cgroup *cgroup_dirs_new(enum cgroup_layout layout);

/* ---- paths --------------------------------------------------------------- */

/* "/a//b/./c/" -> "/a/b/c"; ".." is refused so a config cannot climb out
 * of the cgroup its runtime was given. */
int cgroup_dirs_clean_path(const char *in, char **out, cell_error **err);
/* Fill in the container's path in every hierarchy of the host: abs when
 * the config gave an absolute one, else rel under the runtime's own
 * cgroup there; and the main path and its encoding.  No directory is
 * opened. */
int cgroup_dirs_resolve(struct cgroup *cg, const char *abs, const char *rel,
                        cell_error **err);
/* cgroup_path(): the main path followed by ";CONTROLLERS:PATH" for each
 * v1 hierarchy whose path differs, ';' and '\' escaped with '\'. */
char *cgroup_dirs_encode(const struct cgroup *cg);
/* Split an encoded path at the unescaped ';', unescaping (a strv). */
char **cgroup_dirs_decode(const char *encoded);

/* ---- which directory serves a controller --------------------------------- */

/* A controller's directory and the operations that know its files. */
struct cgroup_target {
  const struct cgroup_ops *ops;
  int fd;
};

/* The open v1 hierarchy that has the controller, NULL when none has. */
struct cgroup_hier *cgroup_dirs_find_v1(const struct cgroup *cg,
                                        const char *controller);
/* Where to write a controller's resources: the v1 hierarchy that has
 * v1_name, else the cgroup2 side, enabling v2_name down to it (NULL:
 * nothing to enable).  field names the setting in the errors. */
int cgroup_dirs_target(const struct cgroup *cg, const char *v1_name,
                       const char *v2_name, const char *field,
                       struct cgroup_target *t, cell_error **err);

#endif
