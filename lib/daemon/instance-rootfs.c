/* An instance's root: the shared template under an overlay, idmapped so
 * that the template's uid 0 is the instance's first host id. */
#include "daemon/instance-rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/util.h"

bool instance_is_mountpoint(const char *path) {
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

/* The child of userns_fd_for_map: in a new user namespace, it tells the
 * parent so and waits until the parent is done with it. */
_Noreturn static void userns_holder(int ready, int done) {
  char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
  if (write(ready, &c, 1) != 1)
    _exit(1);
  while (read(done, &c, 1) < 0 && errno == EINTR)
    ;
  _exit(0);
}

/* A user namespace fd whose uid_map and gid_map are map: a child made in a
 * new user namespace holds it while we write its maps and open it.
 * fork + unshare rather than clone3: it also runs under valgrind. */
static int userns_fd_for_map(const char *map, cell_error **err) {
  /* ready: the child is in its namespace; done: we have what we need (its
   * write end closing lets the child go). */
  int ready[2], done[2];
  if (pipe2(ready, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe");
  cleanup_close int ready_r = ready[0], ready_w = ready[1];
  if (pipe2(done, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe");
  cleanup_close int done_r = done[0], done_w = done[1];
  pid_t pid = fork();
  if (pid < 0)
    return cell_fail_errno(err, "fork");
  if (pid == 0) {
    close(ready_r);
    close(done_w);
    userns_holder(ready_w, done_r);
  }
  cell_closep(&ready_w);
  cell_closep(&done_r);
  char c = 'n';
  int fd = -1;
  if (read(ready_r, &c, 1) != 1 || c != 'y') {
    cell_fail(err, 0, "make a user namespace for the idmap: the child failed");
  } else if (write_maps(pid, map, err) == 0) {
    cleanup_free char *ns = xasprintf("/proc/%d/ns/user", (int)pid);
    fd = open(ns, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      cell_fail_errno(err, "open `%s`", ns);
  }
  cell_closep(&done_w);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  return fd;
}

/* 1: srcfd's tree mounted on target, idmapped by map, with the
 * MOUNT_ATTR_* flags attrs; 0: the kernel or filesystem cannot idmap it
 * (the caller copies instead); -1: another error. */
static int mount_idmapped(int srcfd, const char *shown, const char *target,
                          const char *map, uint64_t attrs, cell_error **err) {
  cleanup_close int userns = userns_fd_for_map(map, err);
  if (userns < 0)
    return -1;
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

/* ---- the fallback: a copy of the template with every owner shifted ---- */

static int copy_tree(int srcdir, int dstdir, uint32_t shift, cell_error **err);

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
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return cell_fail_errno(err, "copy: read `%s`", name);
    if (n == 0)
      return 0;
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
    if (copy_tree(s, d, shift, err) < 0)
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

static int umount_all(const char *path, cell_error **err) {
  /* Stacked mounts (a mount made twice) come off one by one. */
  for (int i = 0; i < 16 && instance_is_mountpoint(path); i++)
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
      return cell_fail_errno(err, "unmount `%s`", path);
  return 0;
}

int instance_rootfs_umount(const char *inst_dir, cell_error **err) {
  cleanup_free char *lower = xasprintf("%s/lower", inst_dir);
  cleanup_free char *rootfs = xasprintf("%s/rootfs", inst_dir);
  if (umount_all(rootfs, err) < 0 || umount_all(lower, err) < 0)
    return -1;
  return 0;
}
