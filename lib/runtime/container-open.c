/* Opening an existing container: see container-open.h. */
#include "runtime/container-open.h"

#include "base/log.h"
#include "base/util.h"

int container_open(const char *root, const char *id, int *rootfd,
                   int *dirfd, struct cell_state **st, cell_error **err) {
  if (state_check_id(id, err) < 0 || state_root_open(root, rootfd, err) < 0)
    return -1;
  if (state_dir_open(*rootfd, id, dirfd, err) < 0)
    return -1;
  return state_read(*dirfd, st, err);
}

struct spec *container_stored_spec(int dirfd, cell_error **err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  struct spec *s = NULL;
  if (cell_read_file_at(dirfd, CELL_CONFIG_FILE, 0, &text, &len, err) < 0 ||
      spec_parse(text, len, &s, err) < 0) {
    cell_error_wrap(err, "the container's stored config");
    return NULL;
  }
  return s;
}

struct spec *container_stored_spec_or_warn(int dirfd) {
  cell_error *e = NULL;
  struct spec *s = container_stored_spec(dirfd, &e);
  if (s == NULL) {
    log_warn("%s", e->msg);
    cell_error_free(&e);
  }
  return s;
}

struct cgroup *container_cgroup(const struct cell_state *st) {
  struct cgroup *cg = NULL;
  cell_error *e = NULL;
  if (st->cgroup_path && cgroup_open(st->cgroup_path, &cg, &e) < 0) {
    log_debug("cgroup of `%s`: %s", st->id, e->msg);
    cell_error_free(&e);
  }
  return cg;
}

enum cell_status container_status(const struct cell_state *st) {
  enum cell_status s = state_status(st);
  if (s == CELL_STATUS_STOPPED || st->cgroup_path == NULL)
    return s;
  struct cgroup *cg = container_cgroup(st);
  if (cg && cgroup_is_frozen(cg))
    s = CELL_STATUS_PAUSED;
  cgroup_free(cg);
  return s;
}
