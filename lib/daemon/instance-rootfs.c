/* An instance's root: read-only lowers idmapped so that their uid 0 is the
 * instance's first host id, under an overlay with the instance's own
 * writable layer.
 *
 * On an image (instance_rootfs_mount_layers), in <inst_dir>:
 *   layers/         the store's layers directory, idmapped read-only
 *                   (0..count-1 -> id_start..), nodev, nosuid
 *   disk/           the writable layer, owners container-relative on disk:
 *     upper/        0:0 0755 (the container's root)
 *     work/         0:0 0700
 *   disk.idmapped/  disk/ idmapped (the same map, plus on-disk id `count`
 *                   <-> host root for overlayfs's own files: disk_map)
 *   rootfs/         overlay: lowerdir = the image's layers top first, named
 *                   relative to layers/; upperdir, workdir in disk.idmapped
 * In copy mode (no idmapped mounts): lower.copy/<id> each layer copied with
 * owners shifted by id_start (<id>.copied once whole), disk/ in host ids,
 * the overlay's lowers relative to lower.copy/; nothing else mounted.
 *
 * On a template (the older way, instance_rootfs_mount_at): lower/ the
 * template idmapped (or a shifted copy, lower.copied once whole), upper/
 * and work/ in host ids, the overlay on rootfs/. */
#include "daemon/instance-rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "base/log.h"
#include "base/util.h"

bool instance_is_mountpoint(const char *path) {
  /* (No path: none.  Also what tells gcc's -fsanitize builds that the
   * xasprintf below never gets NULL.) */
  if (path == NULL)
    return false;
  /* statx knows (Linux 5.8): no walk through a mount table that grows
   * with every instance (it made each start O(instances)). */
  struct statx stx;
  if (statx(AT_FDCWD, path, AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW,
            STATX_BASIC_STATS, &stx) == 0 &&
      (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  struct stat self, parent;
  cleanup_free char *up = xasprintf("%s/..", path);
  if (stat(path, &self) < 0 || stat(up, &parent) < 0)
    return false;
  if (self.st_dev != parent.st_dev)
    return true;
  /* A bind of a directory of the same filesystem: same device; look at the
   * mount table for it. */
  cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f)
    return false;
  char line[4096];
  while (fgets(line, sizeof(line), f)) {
    char mnt[4096];
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 &&
        strcmp(mnt, path) == 0)
      return true;
  }
  return false;
}

/* "0 <start> <count>\n": container ids 0..count-1 to the host's start.. */
static char *map_of_range(uint32_t start, uint32_t count) {
  return xasprintf("0 %u %u\n", start, count);
}

static int write_maps(pid_t pid, const char *map, cell_error **err) {
  cleanup_free char *uid_map = xasprintf("/proc/%d/uid_map", (int)pid);
  cleanup_free char *gid_map = xasprintf("/proc/%d/gid_map", (int)pid);
  if (cell_write_knob(uid_map, map, strlen(map), err) < 0 ||
      cell_write_knob(gid_map, map, strlen(map), err) < 0)
    return -1;
  return 0;
}

/* The child of userns_fd_for_map: made in a new user namespace, it exits
 * at once.  It shares our memory (CLONE_VM) and we are suspended until it
 * is gone (CLONE_VFORK), so it must touch nothing: no libc, no errno. */
__attribute__((no_sanitize_address)) static int userns_child(void *unused) {
  (void)unused;
  return 0;
}

/* The child's pid, reaped when it goes out of scope. */
static void reap_child(pid_t *pid) {
  while (*pid > 0 && waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
    ;
  *pid = -1;
}
#define cleanup_reap __attribute__((cleanup(reap_child)))

/* A user namespace fd whose uid_map and gid_map are map.  A user namespace
 * needs a process to be made in and its maps written through, but not a
 * live one: a child cloned into a new namespace that exits at once stays
 * a zombie until we reap it, and a zombie keeps its credentials, so its
 * /proc/PID/uid_map, gid_map and ns/user (which the kernel reaches through
 * them) still lead to the namespace.  Cloned with CLONE_VM | CLONE_VFORK,
 * the child costs no copy of our memory and no wait for the scheduler to
 * run it (a forked child that held the namespace until told to go cost
 * about 1 ms, twice at each mount of a root).  Signals stay blocked
 * around the clone, so that no handler ever runs on the child's stack. */
static int userns_fd_for_map(const char *map, cell_error **err) {
  const size_t stack_size = 16384;
  cleanup_free char *stack = xmalloc(stack_size);
  sigset_t all, saved;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &saved);
  cleanup_reap pid_t pid =
      clone(userns_child, stack + stack_size,
            CLONE_VM | CLONE_VFORK | CLONE_NEWUSER | SIGCHLD, NULL);
  int clone_errno = errno;
  sigprocmask(SIG_SETMASK, &saved, NULL);
  if (pid < 0)
    return cell_fail(err, clone_errno,
                     "make a user namespace for the idmap: clone");
  if (write_maps(pid, map, err) < 0)
    return -1;
  cleanup_free char *ns = xasprintf("/proc/%d/ns/user", (int)pid);
  int fd = open(ns, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", ns);
  return fd;
}

/* 1: srcfd's tree mounted on target, idmapped by map, with the
 * MOUNT_ATTR_* flags attrs; 0: the kernel or filesystem cannot idmap it
 * (the caller copies instead); -1: another error. */
static int mount_idmapped_by(int srcfd, const char *shown, const char *target,
                             int userns, uint64_t attrs, cell_error **err) {
  /* The very directory that was checked: no lookup by name again. */
  cleanup_close int tree = open_tree(srcfd, "",
                                     AT_EMPTY_PATH | OPEN_TREE_CLONE |
                                         OPEN_TREE_CLOEXEC);
  if (tree < 0 && errno == ENOSYS) {
    log_warn("open_tree: no new mount API: falling back to a chowned copy");
    return 0;
  }
  if (tree < 0)
    return cell_fail_errno(err, "open_tree `%s`", shown);
  struct mount_attr attr = {
      .attr_set = MOUNT_ATTR_IDMAP | attrs,
      .userns_fd = (uint64_t)userns,
  };
  if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
    if (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP ||
        errno == ENOSYS || errno == EPERM) {
      log_warn("idmapped mount of `%s`: %s: falling back to a chowned copy",
               shown, strerror(errno));
      return 0;
    }
    return cell_fail_errno(err, "idmap `%s`", shown);
  }
  if (move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return cell_fail_errno(err, "attach the idmapped `%s` on `%s`", shown,
                           target);
  return 1;
}

static int mount_idmapped(int srcfd, const char *shown, const char *target,
                          const char *map, uint64_t attrs, cell_error **err) {
  cleanup_close int userns = userns_fd_for_map(map, err);
  if (userns < 0)
    return -1;
  return mount_idmapped_by(srcfd, shown, target, userns, attrs, err);
}

/* ---- the fallback: a copy of the template with every owner shifted ---- */

static int copy_tree(int srcdir, int dstdir, uint32_t shift, cell_error **err);

/* The extended attributes a copy carries: overlayfs's own (an image layer's
 * opaque directories, trusted.overlay.opaque) and the user's.  Not
 * security.capability: a namespaced one names a root uid that would need
 * shifting too, so a copy has no file capabilities. */
static bool xattr_copied(const char *name) {
  return strncmp(name, "trusted.overlay.", 16) == 0 ||
         strncmp(name, "user.", 5) == 0;
}

static int copy_xattrs(int in, int out, const char *name, cell_error **err) {
  char names[65536];
  ssize_t len = flistxattr(in, names, sizeof(names));
  if (len < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP))
    return 0;
  if (len < 0)
    return cell_fail_errno(err, "copy: list the xattrs of `%s`", name);
  for (const char *x = names; x < names + len; x += strlen(x) + 1) {
    if (!xattr_copied(x))
      continue;
    char value[65536];
    ssize_t n = fgetxattr(in, x, value, sizeof(value));
    if (n < 0)
      return cell_fail_errno(err, "copy: read xattr %s of `%s`", x, name);
    if (fsetxattr(out, x, value, (size_t)n, 0) < 0)
      return cell_fail_errno(err, "copy: set xattr %s on `%s`", x, name);
  }
  return 0;
}

static int copy_file(int srcdir, int dstdir, const char *name,
                     const struct stat *st, cell_error **err) {
  cleanup_close int in = openat(srcdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0)
    return cell_fail_errno(err, "copy: open `%s`", name);
  cleanup_close int out = openat(dstdir, name,
                                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                 st->st_mode & 07777);
  if (out < 0)
    return cell_fail_errno(err, "copy: create `%s`", name);
  /* A reflink where the filesystem has them (btrfs, XFS): no data moves. */
  if (ioctl(out, FICLONE, in) == 0)
    return copy_xattrs(in, out, name, err);
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return cell_fail_errno(err, "copy: read `%s`", name);
    if (n == 0)
      return copy_xattrs(in, out, name, err);
    if (cell_write_all(out, buf, (size_t)n) < 0)
      return cell_fail_errno(err, "copy: write `%s`", name);
  }
}

static int copy_entry(int srcdir, int dstdir, const char *name, uint32_t shift,
                      cell_error **err) {
  struct stat st;
  if (fstatat(srcdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "copy: stat `%s`", name);
  if (S_ISDIR(st.st_mode)) {
    if (mkdirat(dstdir, name, 0700) < 0)
      return cell_fail_errno(err, "copy: mkdir `%s`", name);
    cleanup_close int s = openat(srcdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    cleanup_close int d = openat(dstdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s < 0 || d < 0)
      return cell_fail_errno(err, "copy: open `%s`", name);
    if (copy_xattrs(s, d, name, err) < 0 || copy_tree(s, d, shift, err) < 0)
      return -1;
  } else if (S_ISREG(st.st_mode)) {
    if (copy_file(srcdir, dstdir, name, &st, err) < 0)
      return -1;
  } else if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlinkat(srcdir, name, target, sizeof(target) - 1);
    if (n < 0)
      return cell_fail_errno(err, "copy: readlink `%s`", name);
    target[n] = '\0';
    if (symlinkat(target, dstdir, name) < 0)
      return cell_fail_errno(err, "copy: symlink `%s`", name);
  } else if (mknodat(dstdir, name, st.st_mode, st.st_rdev) < 0) {
    return cell_fail_errno(err, "copy: mknod `%s`", name);
  }
  if (fchownat(dstdir, name, st.st_uid + shift, st.st_gid + shift,
               AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "copy: chown `%s`", name);
  /* After the chown, which clears set-id bits. */
  if (!S_ISLNK(st.st_mode) &&
      fchmodat(dstdir, name, st.st_mode & 07777, 0) < 0)
    return cell_fail_errno(err, "copy: chmod `%s`", name);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  utimensat(dstdir, name, times, AT_SYMLINK_NOFOLLOW);
  return 0;
}

static int copy_tree(int srcdir, int dstdir, uint32_t shift, cell_error **err) {
  int fd = openat(srcdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "copy: open a directory");
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return cell_fail_errno(err, "copy: read a directory");
  }
  int r = 0;
  for (struct dirent *e; r == 0 && (e = readdir(d));) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    r = copy_entry(srcdir, dstdir, e->d_name, shift, err);
  }
  closedir(d);
  return r;
}

/* ---- merging layers ------------------------------------------------------ */

static bool is_whiteout(const struct stat *st) {
  return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

static bool is_opaque(int dirfd) {
  char v[2];
  ssize_t n = fgetxattr(dirfd, "trusted.overlay.opaque", v, sizeof(v));
  return n == 1 && v[0] == 'y';
}

static int merge_tree(int srcdir, int dstdir, cell_error **err);

/* The directory name of srcdir onto dstdir's: merged into the one there,
 * or (over a file, a whiteout, or when it is opaque) in its place.  Over
 * a whiteout it hides what the layers below the merged one have there,
 * as overlayfs's lookup stops at the whiteout: it is made opaque. */
static int merge_dir(int srcdir, int dstdir, const char *name,
                     const struct stat *have, cell_error **err) {
  cleanup_close int s = openat(srcdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (s < 0)
    return cell_fail_errno(err, "merge: open `%s`", name);
  bool replace = !have || !S_ISDIR(have->st_mode) || is_opaque(s);
  if (replace) {
    if (have && cell_rm_rf_at(dstdir, name, err) < 0)
      return -1;
    if (mkdirat(dstdir, name, 0700) < 0)
      return cell_fail_errno(err, "merge: mkdir `%s`", name);
  }
  cleanup_close int d = openat(dstdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (d < 0)
    return cell_fail_errno(err, "merge: open `%s`", name);
  if (have && is_whiteout(have) &&
      fsetxattr(d, "trusted.overlay.opaque", "y", 1, 0) < 0)
    return cell_fail_errno(err, "merge: make `%s` opaque", name);
  struct stat st;
  if (fstat(s, &st) < 0 || fchown(d, st.st_uid, st.st_gid) < 0 ||
      fchmod(d, st.st_mode & 07777) < 0)
    return cell_fail_errno(err, "merge: owner and mode of `%s`", name);
  if (copy_xattrs(s, d, name, err) < 0 || merge_tree(s, d, err) < 0)
    return -1;
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  futimens(d, times);
  return 0;
}

static int merge_entry(int srcdir, int dstdir, const char *name,
                       cell_error **err) {
  struct stat st, have;
  if (fstatat(srcdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "merge: stat `%s`", name);
  bool exists = fstatat(dstdir, name, &have, AT_SYMLINK_NOFOLLOW) == 0;
  if (S_ISDIR(st.st_mode))
    return merge_dir(srcdir, dstdir, name, exists ? &have : NULL, err);
  /* A file, a link, a whiteout: it replaces whatever is there. */
  if (exists && cell_rm_rf_at(dstdir, name, err) < 0)
    return -1;
  return copy_entry(srcdir, dstdir, name, 0, err);
}

static int merge_tree(int srcdir, int dstdir, cell_error **err) {
  int fd = openat(srcdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    if (fd >= 0)
      close(fd);
    return cell_fail_errno(err, "merge: read a directory");
  }
  int r = 0;
  for (struct dirent *e; r == 0 && (e = readdir(d));)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      r = merge_entry(srcdir, dstdir, e->d_name, err);
  closedir(d);
  return r;
}

int instance_layer_merge(int srcdir, int dstdir, cell_error **err) {
  struct stat st;
  if (fstat(srcdir, &st) < 0 || fchown(dstdir, st.st_uid, st.st_gid) < 0 ||
      fchmod(dstdir, st.st_mode & 07777) < 0)
    return cell_fail_errno(err, "merge: the root of a layer");
  return merge_tree(srcdir, dstdir, err);
}

int instance_new_writable_layer(int diskfd, cell_error **err) {
  if (cell_rm_rf_at(diskfd, "work", err) < 0)
    return -1;
  if (mkdirat(diskfd, "upper", 0755) < 0 || mkdirat(diskfd, "work", 0700) < 0)
    return cell_fail_errno(err, "make a new writable layer");
  if (fchownat(diskfd, "upper", 0, 0, AT_SYMLINK_NOFOLLOW) < 0 ||
      fchownat(diskfd, "work", 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "chown the new writable layer");
  return 0;
}

int instance_layer_copy(int srcdir, int dstdir, cell_error **err) {
  struct stat st;
  if (fstat(srcdir, &st) < 0)
    return cell_fail_errno(err, "copy: stat a layer");
  if (fchown(dstdir, st.st_uid, st.st_gid) < 0 ||
      fchmod(dstdir, st.st_mode & 07777) < 0)
    return cell_fail_errno(err, "copy: the root of a layer");
  return copy_tree(srcdir, dstdir, 0, err);
}

static int copy_shifted(const char *inst_dir, int templatefd,
                        const char *template_dir, const char *lower,
                        uint32_t shift, cell_error **err) {
  cleanup_free char *done = xasprintf("%s/lower.copied", inst_dir);
  if (access(done, F_OK) == 0)
    return 0;
  /* A copy cut short by a crash: start over. */
  cleanup_close int inst = open(inst_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (inst < 0)
    return cell_fail_errno(err, "open `%s`", inst_dir);
  if (cell_rm_rf_at(inst, "lower", err) < 0 || mkdirat(inst, "lower", 0755) < 0)
    return *err ? -1 : cell_fail_errno(err, "mkdir `%s`", lower);
  cleanup_close int src = openat(templatefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int dst = open(lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (src < 0 || dst < 0)
    return cell_fail_errno(err, "copy `%s` to `%s`", template_dir, lower);
  struct stat st;
  if (fstat(src, &st) < 0 || fchown(dst, st.st_uid + shift, st.st_gid + shift) < 0)
    return cell_fail_errno(err, "copy: chown `%s`", lower);
  if (copy_tree(src, dst, shift, err) < 0)
    return cell_error_wrap(err, "copy `%s`", template_dir);
  return cell_write_file_atomic_at(inst, "lower.copied", "", 0, 0600, err);
}

static int mkdir_owned(const char *path, uid_t uid, cell_error **err) {
  if (mkdir(path, 0755) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", path);
  if (chown(path, uid, uid) < 0)
    return cell_fail_errno(err, "chown `%s`", path);
  return 0;
}

static int mount_overlay(const char *inst_dir, cell_error **err) {
  cleanup_free char *opts = xasprintf(
      "lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", inst_dir,
      inst_dir, inst_dir);
  cleanup_free char *target = xasprintf("%s/rootfs", inst_dir);
  if (mount("overlay", target, "overlay", MS_NODEV, opts) < 0)
    return cell_fail_errno(err, "mount overlay on `%s`", target);
  return 0;
}

int instance_rootfs_mount_at(const char *inst_dir,
                             const struct instance_record *r, int templatefd,
                             bool force_copy, const char **mode,
                             cell_error **err) {
  cleanup_free char *lower = xasprintf("%s/lower", inst_dir);
  cleanup_free char *upper = xasprintf("%s/upper", inst_dir);
  cleanup_free char *work = xasprintf("%s/work", inst_dir);
  cleanup_free char *rootfs = xasprintf("%s/rootfs", inst_dir);
  if (mkdir_owned(upper, r->id_start, err) < 0 ||
      mkdir_owned(work, 0, err) < 0 || mkdir_owned(rootfs, 0, err) < 0 ||
      (mkdir(lower, 0755) < 0 && errno != EEXIST))
    return *err ? -1 : cell_fail_errno(err, "mkdir `%s`", lower);
  bool copy = force_copy || (r->rootfs_mode && strcmp(r->rootfs_mode, "copy") == 0);
  bool lower_mounted = false;
  if (!copy && !instance_is_mountpoint(lower)) {
    cleanup_free char *map = map_of_range(r->id_start, r->id_count);
    int m = mount_idmapped(templatefd, r->template_dir, lower, map,
                           MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV |
                               MOUNT_ATTR_NOSUID,
                           err);
    if (m < 0)
      return -1;
    copy = m == 0;
    lower_mounted = m == 1;
  }
  if (copy && copy_shifted(inst_dir, templatefd, r->template_dir, lower,
                           r->id_start, err) < 0)
    return -1;
  if (!instance_is_mountpoint(rootfs) && mount_overlay(inst_dir, err) < 0) {
    if (lower_mounted)
      umount2(lower, MNT_DETACH);
    return -1;
  }
  *mode = copy ? "copy" : "idmap";
  return 0;
}

int instance_rootfs_mount(const char *inst_dir, const struct instance_record *r,
                          const struct daemon_config *cfg, const char **mode,
                          cell_error **err) {
  /* Root's instances: root named the template and is trusted.  Members':
   * checked again at every mount, so that a template directory root has
   * since taken out of template_dirs is no longer used. */
  cleanup_strv char **allowed =
      r->owner == 0 ? NULL : daemon_config_template_dirs(cfg);
  cleanup_close int templatefd =
      instance_template_open(r->template_dir, allowed, NULL, err);
  if (templatefd < 0)
    return cell_error_wrap(err, "instance `%s`", r->name);
  return instance_rootfs_mount_at(inst_dir, r, templatefd, cfg->force_copy,
                                  mode, err);
}

/* ---- an image's layers under the instance's own disk ---- */

#define LAYER_ID_LEN 64

static int check_layer_ids(char *const *ids, cell_error **err) {
  if (!ids || !ids[0])
    return cell_fail(err, EINVAL, "an image without layers");
  for (char *const *id = ids; *id; id++)
    if (strlen(*id) != LAYER_ID_LEN ||
        strspn(*id, "0123456789abcdef") != LAYER_ID_LEN)
      return cell_fail(err, EINVAL, "`%s` is not a layer id (64 hex digits)",
                       *id);
  return 0;
}

/* overlayfs's options, the lowers named relative to the directory the
 * mount is made from (mount_overlay_from): lowerdir lists them top first,
 * the layers come bottom first.  NULL and an error naming how many layers
 * fit when the options do not fit the page mount(2) copies. */
static char *overlay_options(char *const *ids, const char *upper,
                             const char *work, cell_error **err) {
  cleanup_free char *tail = xasprintf(",upperdir=%s,workdir=%s", upper, work);
  size_t n = cell_strv_len(ids);
  /* "lowerdir=" + n names and n-1 colons + tail, then the NUL. */
  long page = sysconf(_SC_PAGESIZE);
  size_t room = (size_t)(page > 0 ? page : 4096);
  size_t fixed = strlen("lowerdir=") + strlen(tail) + 1;
  size_t max = fixed + LAYER_ID_LEN <= room
                   ? (room - fixed + 1) / (LAYER_ID_LEN + 1)
                   : 0;
  if (n > max) {
    cell_fail(err, E2BIG, "image has %zu layers, an overlay takes at most %zu: "
                          "flatten it", n, max);
    return NULL;
  }
  char *opts = xmalloc(fixed + n * (LAYER_ID_LEN + 1));
  char *p = stpcpy(opts, "lowerdir=");
  for (size_t i = n; i-- > 0;) {
    p = stpcpy(p, ids[i]);
    if (i > 0)
      *p++ = ':';
  }
  stpcpy(p, tail);
  return opts;
}

/* Each layer is a directory of the store, before anything is mounted on
 * it: a missing one is named here, not by overlayfs's ENOENT. */
static int check_layers_present(int layersfd, const char *layers_dir,
                                char *const *ids, cell_error **err) {
  for (char *const *id = ids; *id; id++) {
    struct stat st;
    if (fstatat(layersfd, *id, &st, AT_SYMLINK_NOFOLLOW) < 0)
      return cell_fail_errno(err, "layer `%s` in `%s`", *id, layers_dir);
    if (!S_ISDIR(st.st_mode))
      return cell_fail(err, ENOTDIR, "layer `%s` in `%s` is not a directory",
                       *id, layers_dir);
  }
  return 0;
}

/* mkdir at path owned uid:uid with mode, when missing; one that exists is
 * left as it is (the instance may have changed the owner of its root). */
static int mkdir_new_owned(const char *path, uid_t uid, mode_t mode,
                           cell_error **err) {
  if (mkdir(path, mode) < 0)
    return errno == EEXIST ? 0 : cell_fail_errno(err, "mkdir `%s`", path);
  if (chown(path, uid, uid) < 0 || chmod(path, mode) < 0)
    return cell_fail_errno(err, "set the owner of `%s`", path);
  return 0;
}

static int mkdir_present(const char *path, cell_error **err) {
  if (mkdir(path, 0755) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", path);
  return 0;
}

/* The mounts this call made, taken off again (last first) unless keep. */
struct new_mounts {
  char *paths[3];
  size_t n;
  bool keep;
};

static void new_mounts_release(struct new_mounts *m) {
  while (m->n > 0) {
    char *path = m->paths[--m->n];
    if (!m->keep)
      umount2(path, MNT_DETACH);
    free(path);
  }
}
#define cleanup_new_mounts __attribute__((cleanup(new_mounts_release)))

/* The disk's map.  Container ids 0..count-1 are on-disk ids 0..count-1
 * (host start..), so that the writable layer is a plain layer like the
 * image's.  And one more extent, on-disk id `count` <-> host root:
 * overlayfs creates its own files in the upper layer (work/work, whiteouts,
 * copy-up temporaries) with the credentials of who mounted it, celld as
 * host root; with host root outside the map that creation fails
 * (EOVERFLOW) and the kernel silently mounts the overlay read-only.  It is
 * safe: no id of the container reaches on-disk id `count` (its namespace
 * maps only 0..count-1), overlayfs's files with that owner are whiteouts
 * (hidden) or transient work files, and in the container it shows as
 * nobody. */
static char *disk_map(uint32_t start, uint32_t count) {
  return xasprintf("0 %u %u\n%u 0 1\n", start, count, count);
}

/* Mount the image's layers and the disk idmapped.  1: both are there;
 * 0: the kernel or a filesystem refuses the idmap, nothing stays mounted
 * (the caller copies); -1: an error. */
static int mount_layers_and_disk(const char *inst_dir, const char *disk,
                                 const struct instance_record *r, int layersfd,
                                 const char *layers_dir,
                                 struct new_mounts *mounted, cell_error **err) {
  cleanup_free char *layers = xasprintf("%s/layers", inst_dir);
  cleanup_free char *disk_idmapped = xasprintf("%s/disk.idmapped", inst_dir);
  bool layers_needed = !instance_is_mountpoint(layers);
  bool disk_needed = !instance_is_mountpoint(disk_idmapped);
  if (layers_needed) {
    cleanup_free char *map = map_of_range(r->id_start, r->id_count);
    cleanup_close int userns = userns_fd_for_map(map, err);
    if (userns < 0)
      return -1;
    int m = mount_idmapped_by(layersfd, layers_dir, layers, userns,
                              MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV |
                                  MOUNT_ATTR_NOSUID,
                              err);
    if (m <= 0)
      return m;
    mounted->paths[mounted->n++] = xstrdup(layers);
  }
  if (disk_needed) {
    cleanup_close int diskfd = open(disk, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                              O_CLOEXEC);
    if (diskfd < 0)
      return cell_fail_errno(err, "open `%s`", disk);
    cleanup_free char *map = disk_map(r->id_start, r->id_count);
    cleanup_close int userns = userns_fd_for_map(map, err);
    if (userns < 0)
      return -1;
    int m = mount_idmapped_by(diskfd, disk, disk_idmapped, userns,
                              MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID, err);
    if (m <= 0)
      return m;
    mounted->paths[mounted->n++] = xstrdup(disk_idmapped);
  }
  return 1;
}

/* The copy fallback: layer id copied to <copydir>/<id> with every owner
 * shifted by shift; <id>.copied marks it whole, so that a restart does not
 * copy it again, and a copy cut short by a crash starts over. */
static int copy_layer_shifted(int layersfd, int copydirfd, const char *id,
                              uint32_t shift, cell_error **err) {
  cleanup_free char *stamp = xasprintf("%s.copied", id);
  if (faccessat(copydirfd, stamp, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  if (cell_rm_rf_at(copydirfd, id, err) < 0)
    return -1;
  if (mkdirat(copydirfd, id, 0700) < 0)
    return cell_fail_errno(err, "copy: mkdir `%s`", id);
  cleanup_close int src = openat(layersfd, id, O_RDONLY | O_DIRECTORY |
                                                   O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int dst = openat(copydirfd, id, O_RDONLY | O_DIRECTORY |
                                                    O_NOFOLLOW | O_CLOEXEC);
  if (src < 0 || dst < 0)
    return cell_fail_errno(err, "copy layer `%s`", id);
  struct stat st;
  if (fstat(src, &st) < 0 ||
      fchown(dst, st.st_uid + shift, st.st_gid + shift) < 0 ||
      fchmod(dst, st.st_mode & 07777) < 0)
    return cell_fail_errno(err, "copy: the owner of layer `%s`", id);
  if (copy_xattrs(src, dst, id, err) < 0 || copy_tree(src, dst, shift, err) < 0)
    return cell_error_wrap(err, "copy layer `%s`", id);
  return cell_write_file_atomic_at(copydirfd, stamp, id, strlen(id), 0600, err);
}

static int copy_layers_shifted(const char *inst_dir, int layersfd,
                               char *const *ids, uint32_t shift,
                               cell_error **err) {
  cleanup_free char *copydir = xasprintf("%s/lower.copy", inst_dir);
  if (mkdir_present(copydir, err) < 0)
    return -1;
  cleanup_close int copydirfd = open(copydir, O_RDONLY | O_DIRECTORY |
                                                  O_NOFOLLOW | O_CLOEXEC);
  if (copydirfd < 0)
    return cell_fail_errno(err, "open `%s`", copydir);
  for (char *const *id = ids; *id; id++)
    if (copy_layer_shifted(layersfd, copydirfd, *id, shift, err) < 0)
      return -1;
  return 0;
}

/* The overlay on target, its lowers named relative to lowers_dir: an
 * absolute <inst_dir>/layers/<id> is ~110 bytes and the options must fit
 * one page; a bare id is 65.  mount(2) resolves them against the cwd, so
 * the cwd is lowers_dir for the call and what it was afterwards (celld's
 * is "/": systemd starts it there, and it never changes it; celld is
 * single-threaded, so no other thread resolves a path meanwhile). */
static int mount_overlay_from(const char *lowers_dir, const char *opts,
                              const char *target, cell_error **err) {
  cleanup_close int lowersfd = open(lowers_dir, O_RDONLY | O_DIRECTORY |
                                                    O_NOFOLLOW | O_CLOEXEC);
  if (lowersfd < 0)
    return cell_fail_errno(err, "open `%s`", lowers_dir);
  cleanup_close int saved_cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fchdir(lowersfd) < 0)
    return cell_fail_errno(err, "chdir `%s`", lowers_dir);
  int r = mount("overlay", target, "overlay", MS_NODEV, opts);
  int mount_errno = errno;
  if ((saved_cwd < 0 || fchdir(saved_cwd) < 0) && chdir("/") < 0)
    log_warn("chdir back from `%s`: %s", lowers_dir, strerror(errno));
  if (r < 0)
    return cell_fail(err, mount_errno, "mount overlay on `%s`", target);
  return 0;
}

/* overlayfs mounts read-only, with only a line in the kernel log, when it
 * cannot create its work directory in the upper layer: refuse that root. */
static int check_writable(const char *rootfs, const char *upper,
                          cell_error **err) {
  struct statvfs sv;
  if (statvfs(rootfs, &sv) < 0)
    return cell_fail_errno(err, "statvfs `%s`", rootfs);
  if (sv.f_flag & ST_RDONLY)
    return cell_fail(err, EROFS,
                     "the overlay on `%s` came up read-only: overlayfs could "
                     "not write in `%s` (the kernel log says why)",
                     rootfs, upper);
  return 0;
}

static bool recorded_mode_is(const struct instance_record *r, const char *m) {
  return r->rootfs_mode && strcmp(r->rootfs_mode, m) == 0;
}

int instance_rootfs_mount_layers(const char *inst_dir, const char *disk_dir,
                                 const struct instance_record *r,
                                 const char *layers_dir,
                                 char *const *layer_ids, bool force_copy,
                                 const char **mode, cell_error **err) {
  if (check_layer_ids(layer_ids, err) < 0)
    return -1;
  cleanup_free char *disk =
      disk_dir ? xstrdup(disk_dir) : xasprintf("%s/disk", inst_dir);
  if (strpbrk(inst_dir, ",:\\") || strpbrk(disk, ",:\\"))
    return cell_fail(err, EINVAL,
                     "`%s`: an overlay option cannot name a path with , : or \\",
                     strpbrk(inst_dir, ",:\\") ? inst_dir : disk);
  if (r->id_start == 0 || r->id_count == 0)
    return cell_fail(err, EINVAL, "instance `%s`: no id range", r->name);
  cleanup_free char *rootfs = xasprintf("%s/rootfs", inst_dir);
  cleanup_free char *layers = xasprintf("%s/layers", inst_dir);
  cleanup_free char *disk_idmapped = xasprintf("%s/disk.idmapped", inst_dir);
  /* The options of both modes, made (and their length checked) before
   * anything is mounted or copied: the mode is known only later. */
  cleanup_free char *idmap_opts = NULL, *copy_opts = NULL;
  {
    cleanup_free char *upper = xasprintf("%s/upper", disk_idmapped);
    cleanup_free char *work = xasprintf("%s/work", disk_idmapped);
    idmap_opts = overlay_options(layer_ids, upper, work, err);
    if (!idmap_opts)
      return -1;
  }
  {
    cleanup_free char *upper = xasprintf("%s/upper", disk);
    cleanup_free char *work = xasprintf("%s/work", disk);
    copy_opts = overlay_options(layer_ids, upper, work, err);
    if (!copy_opts)
      return -1;
  }
  cleanup_close int layersfd = open(layers_dir, O_RDONLY | O_DIRECTORY |
                                                     O_CLOEXEC);
  if (layersfd < 0)
    return cell_fail_errno(err, "open `%s`", layers_dir);
  if (check_layers_present(layersfd, layers_dir, layer_ids, err) < 0 ||
      mkdir_present(rootfs, err) < 0 || mkdir_present(layers, err) < 0 ||
      mkdir_present(disk, err) < 0 || mkdir_present(disk_idmapped, err) < 0)
    return -1;

  /* The disk's owners follow the mode (container ids in idmap mode, host
   * ids in copy mode): an instance keeps the mode its disk was made in.
   * A new one is copied when asked, or when the idmap is refused. */
  bool copy = force_copy || recorded_mode_is(r, "copy");
  if (copy && recorded_mode_is(r, "idmap"))
    return cell_fail(err, EINVAL,
                     "instance `%s`: its disk holds container ids, it cannot "
                     "be mounted as a copy",
                     r->name);
  cleanup_new_mounts struct new_mounts mounted = {0};
  if (!copy) {
    int m = mount_layers_and_disk(inst_dir, disk, r, layersfd, layers_dir,
                                  &mounted, err);
    if (m < 0)
      return -1;
    if (m == 0 && recorded_mode_is(r, "idmap"))
      return cell_fail(err, ENOTSUP,
                       "instance `%s`: its disk holds container ids and the "
                       "idmapped mount it needs is refused here",
                       r->name);
    if (m == 0)
      new_mounts_release(&mounted);
    copy = m == 0;
  }
  cleanup_free char *upper = xasprintf("%s/upper", disk);
  cleanup_free char *work = xasprintf("%s/work", disk);
  /* On disk: container root (0) in idmap mode, its host id in copy mode. */
  uid_t root = copy ? r->id_start : 0;
  if (mkdir_new_owned(upper, root, 0755, err) < 0 ||
      mkdir_new_owned(work, root, 0700, err) < 0)
    return -1;
  if (copy && copy_layers_shifted(inst_dir, layersfd, layer_ids, r->id_start,
                                  err) < 0)
    return -1;
  if (!instance_is_mountpoint(rootfs)) {
    cleanup_free char *lowers =
        copy ? xasprintf("%s/lower.copy", inst_dir) : xstrdup(layers);
    if (mount_overlay_from(lowers, copy ? copy_opts : idmap_opts, rootfs,
                           err) < 0)
      return -1;
    mounted.paths[mounted.n++] = xstrdup(rootfs);
  }
  cleanup_free char *upper_seen =
      copy ? xstrdup(upper) : xasprintf("%s/upper", disk_idmapped);
  if (check_writable(rootfs, upper_seen, err) < 0)
    return -1;
  mounted.keep = true;
  *mode = copy ? "copy" : "idmap";
  return 0;
}

static int umount_all(const char *path, cell_error **err) {
  /* Stacked mounts (a mount made twice) come off one by one. */
  for (int i = 0; i < 16 && instance_is_mountpoint(path); i++)
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
      return cell_fail_errno(err, "unmount `%s`", path);
  return 0;
}

int instance_rootfs_keep_root_only(const char *inst_dir, cell_error **err) {
  static const char *const below[] = {"disk.idmapped", "layers", "lower"};
  for (size_t i = 0; i < sizeof(below) / sizeof(below[0]); i++) {
    cleanup_free char *path = xasprintf("%s/%s", inst_dir, below[i]);
    if (umount_all(path, err) < 0)
      return -1;
  }
  return 0;
}

int instance_rootfs_umount(const char *inst_dir, cell_error **err) {
  /* The overlay first: it holds the others. */
  static const char *const mounts[] = {"rootfs", "disk.idmapped", "layers",
                                       "lower"};
  for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
    cleanup_free char *path = xasprintf("%s/%s", inst_dir, mounts[i]);
    if (umount_all(path, err) < 0)
      return -1;
  }
  return 0;
}
