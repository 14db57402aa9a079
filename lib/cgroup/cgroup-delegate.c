/* Delegation: chown the container's cgroup directory and the files that
 * act on what is below it.  Limits (memory.max, memory.limit_in_bytes,
 * pids.max, ...) keep their owner: a delegated root cannot lift its own
 * limits, only divide them. */
#include "cgroup/cgroup-delegate.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "cgroup/cgroup-dirs.h"

/* cgroup v2: the list of the kernel's Delegation section. */
static const char *const v2_files[] = {"cgroup.procs", "cgroup.threads",
                                       "cgroup.subtree_control", NULL};
/* cgroup v1: what LXC gives an unprivileged container's root. */
static const char *const v1_files[] = {"cgroup.procs", "tasks",
                                       "cgroup.clone_children", NULL};

static int delegate_dir(int dirfd, const char *where,
                        const char *const *files, uid_t uid, gid_t gid,
                        cell_error **err) {
  if (fchownat(dirfd, "", uid, gid, AT_EMPTY_PATH) < 0)
    return cell_fail_errno(err, "delegate cgroup `%s` to %u:%u", where,
                           (unsigned)uid, (unsigned)gid);
  for (const char *const *f = files; *f; f++) {
    if (fchownat(dirfd, *f, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 &&
        errno != ENOENT)
      return cell_fail_errno(err, "delegate `%s/%s` to %u:%u", where, *f,
                             (unsigned)uid, (unsigned)gid);
  }
  return 0;
}

int cgroup_delegate(const struct cgroup *cg, uid_t uid, gid_t gid,
                    cell_error **err) {
  for (size_t i = 0; i < cg->n_v1; i++) {
    const struct cgroup_hier *h = &cg->v1[i];
    if (h->fd >= 0 &&
        delegate_dir(h->fd, h->path, v1_files, uid, gid, err) < 0)
      return -1;
  }
  if (cg->v2_fd >= 0 &&
      delegate_dir(cg->v2_fd, cg->v2_path, v2_files, uid, gid, err) < 0)
    return -1;
  return 0;
}
