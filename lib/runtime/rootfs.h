/* The container's filesystem view, built in its mount namespace by the
 * container process before exec, in three steps around the
 * createContainer hooks (which must see the host's filesystem):
 *   rootfs_prepare   propagation of /, rootfs bind, every spec mount, /dev
 *   rootfs_pivot     pivot_root (or chroot with --no-pivot), chdir /
 *   rootfs_finalize  root.readonly, maskedPaths, readonlyPaths */
#ifndef CELL_ROOTFS_H
#define CELL_ROOTFS_H

#include <stdbool.h>

#include "base/error.h"
#include "oci/spec.h"

/* The procfs and sysfs mounts rootfs_prepare made, each with an O_PATH fd
 * of its root: maskedPaths and readonlyPaths under them are looked up from
 * these fds, never by name again (a symlink in the rootfs could make the
 * name mean another place by then). */
struct rootfs_kernel_mount {
  char *destination;
  int fd;
};
struct rootfs_kernel_mounts {
  struct rootfs_kernel_mount *list;
  size_t n;
};
void rootfs_kernel_mounts_clear(struct rootfs_kernel_mounts *k);

struct rootfs_config {
  const struct spec *spec;
  const char *rootfs;  /* absolute, symlink-free host path of root.path */
  bool no_pivot;       /* --no-pivot: MS_MOVE + chroot */
  bool writable_net_sysctls; /* /proc/sys/net out of readonlyPaths' reach */
  bool in_userns;      /* in a user namespace: bind devices instead of mknod */
  const int *bind_fds; /* per spec mount: a detached copy of a bind source,
                          or -1; NULL when there are none */
  struct rootfs_kernel_mounts *kernel_mounts; /* filled by rootfs_prepare */
  int procfs;          /* verified procfs root (base/procfs.h): the /proc of
                          a joined mount namespace is its owner's */
};

/* A bind mount's relative source names a path in the bundle, as in runc:
 * make it absolute there, so that it never depends on the caller's working
 * directory. */
int rootfs_bind_sources_in_bundle(struct spec *s, const char *bundle,
                                  cell_error **err);

/* In the runtime, before the container process enters its user namespace:
 * open every bind mount source as a detached mount (open_tree), because
 * the container's root may not be allowed to even look the source up
 * (a 0700 directory of the host).  *fds gets one entry per spec mount. */
int rootfs_open_bind_sources(const struct spec *s, int **fds, cell_error **err);
void rootfs_close_bind_sources(int *fds, size_t n);

int rootfs_prepare(const struct rootfs_config *cfg, cell_error **err);
int rootfs_pivot(const struct rootfs_config *cfg, cell_error **err);
int rootfs_finalize(const struct rootfs_config *cfg, cell_error **err);
/* Without a mount namespace of the container's own (the runtime's is
 * shared, and nothing may be mounted in it: oci/spec refuses what would
 * be), in place of the three above: chroot into the rootfs, chdir /. */
int rootfs_chroot(const struct rootfs_config *cfg, cell_error **err);

/* mounts[].options -> mount(2) arguments.  Unknown options that look like
 * fs data ("size=65536k", "mode=755", "lowerdir=...") go to data,
 * comma-joined (a bind mount, which has no filesystem data, refuses
 * them when it is mounted). Exposed for unit tests. */
struct mount_options {
  unsigned long flags;       /* MS_RDONLY, MS_NOSUID, MS_BIND|MS_REC, ... */
  unsigned long clear_flags; /* set by "rw", "suid", "dev", "exec", ... */
  unsigned long propagation; /* MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE (+MS_REC) */
  /* "rro", "rnosuid", "rnoatime", ...: MOUNT_ATTR_* for mount_setattr
   * with AT_RECURSIVE, on the mount and every mount below it. */
  unsigned long long rec_attr_set;
  unsigned long long rec_attr_clr;
  char *data;                /* NULL when none */
  bool idmap;                /* "idmap" / "ridmap" */
  bool tmpcopyup;            /* tmpfs starts with what it covers (podman) */
};
int mount_options_parse(char *const *options, struct mount_options *out,
                        cell_error **err);
void mount_options_free(struct mount_options *o);

/* rootfsPropagation name -> MS_* flags (0 for NULL). */
int rootfs_propagation_flags(const char *name, unsigned long *flags,
                             cell_error **err);

#endif
