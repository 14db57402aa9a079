/* The host's cgroup layout: unified (one cgroup2 mount), hybrid (v1
 * hierarchies plus a cgroup2 mount at /sys/fs/cgroup/unified) or legacy
 * (v1 only), and where each v1 hierarchy is mounted.  A file of its own
 * because every other part of the cgroup layer starts from it, and the
 * public cgroup.h hands its enum and cgroup_detect to callers. */
#include "cgroup/cgroup-layout.h"

#include <errno.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

#include "base/util.h"

static bool is_fs(const char *path, long magic) {
  struct statfs st;
  return statfs(path, &st) == 0 && (long)st.f_type == magic;
}

int cgroup_detect(enum cgroup_layout *layout, cell_error **err) {
  struct statfs st;
  if (statfs(CGROUP_MOUNT, &st) < 0)
    return cell_fail_errno(err, "statfs `%s`", CGROUP_MOUNT);
  if ((long)st.f_type == CGROUP2_SUPER_MAGIC)
    *layout = CGROUP_UNIFIED;
  else if (is_fs(CGROUP_UNIFIED_MOUNT, CGROUP2_SUPER_MAGIC))
    *layout = CGROUP_HYBRID;
  else
    *layout = CGROUP_LEGACY;
  return 0;
}

char *cgroup_v1_mount_dir(const char *controllers) {
  const char *name = controllers;
  if (strncmp(name, "name=", 5) == 0)
    name += 5;
  char *dir = xasprintf("%s/%s", CGROUP_MOUNT, name);
  if (is_fs(dir, CGROUP_SUPER_MAGIC))
    return dir;
  free(dir);
  for (const char *p = controllers; *p;) {
    size_t w = strcspn(p, ",");
    dir = xasprintf("%s/%.*s", CGROUP_MOUNT, (int)w, p);
    if (is_fs(dir, CGROUP_SUPER_MAGIC))
      return dir;
    free(dir);
    p += w;
    p += *p == ',';
  }
  return NULL;
}
