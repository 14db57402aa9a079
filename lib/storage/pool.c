/* Pools: what a pool's filesystem offers, and instances' disks in it.
 *
 * btrfs gives each disk a subvolume, and a subvolume its qgroup (0/ID,
 * made by the kernel with the subvolume once quotas are on): the disk
 * limit is that qgroup's limit on referenced bytes, so a write past it
 * fails with EDQUOT, and a subvolume goes in one ioctl whatever it holds.
 * XFS and ext4 (mounted with prjquota) give each disk a project id, which
 * all made beneath it inherits (upper and work, and each new upper after a
 * snapshot); the limit is that project's block limit.  The project id is
 * the host uid of the instance's root, so no two disks of a celld share
 * one, and the id is read back from the directory, never kept apart. */
#include "storage/pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/btrfs.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/util.h"
#include "storage/project-quota.h"

/* The inode number of every btrfs subvolume's root directory. */
#define BTRFS_SUBVOL_ROOT_INO 256

#ifndef XFS_SUPER_MAGIC
#define XFS_SUPER_MAGIC 0x58465342
#endif

static const char *fs_name(long type) {
  switch ((unsigned long)type) {
  case BTRFS_SUPER_MAGIC: return "btrfs";
  case XFS_SUPER_MAGIC: return "xfs";
  case EXT4_SUPER_MAGIC: return "ext4";
  case TMPFS_MAGIC: return "tmpfs";
  case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
  default: return "an unknown filesystem";
  }
}

int pool_probe(const char *path, struct pool_fs *out, cell_error **err) {
  struct statfs sf;
  struct statvfs sv;
  if (statfs(path, &sf) < 0 || statvfs(path, &sv) < 0)
    return cell_fail_errno(err, "statfs `%s`", path);
  out->fs = fs_name(sf.f_type);
  out->quota = POOL_QUOTA_NONE;
  out->could_project = (unsigned long)sf.f_type == XFS_SUPER_MAGIC ||
                       (unsigned long)sf.f_type == EXT4_SUPER_MAGIC;
  if ((unsigned long)sf.f_type == BTRFS_SUPER_MAGIC) {
    out->quota = POOL_QUOTA_BTRFS;
  } else if (out->could_project) {
    cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 && project_quota_enforced(fd)) {
      out->quota = POOL_QUOTA_PROJECT;
      out->could_project = false;
    }
  }
  out->size = (uint64_t)sv.f_blocks * sv.f_frsize;
  out->avail = (uint64_t)sv.f_bavail * sv.f_frsize;
  return 0;
}

int pool_require_quota(const char *name, const char *path, cell_error **err) {
  struct pool_fs fs;
  if (pool_probe(path, &fs, err) < 0)
    return cell_error_wrap(err, "pool `%s`", name);
  if (fs.quota != POOL_QUOTA_NONE)
    return 0;
  return cell_fail(err, ENOTSUP, "pool `%s` is on %s, which has no quotas "
                   "celld can set%s: put the instance in a pool on btrfs, or "
                   "on XFS or ext4 mounted with prjquota (pool.NAME.path)",
                   name, fs.fs,
                   fs.could_project ? " (it is mounted without prjquota)" : "");
}

/* The directory path is in, opened, and path's last component. */
static int open_parent(const char *path, char **base, cell_error **err) {
  cleanup_free char *dircopy = xstrdup(path);
  cleanup_free char *basecopy = xstrdup(path);
  const char *dir = dirname(dircopy);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", dir);
  *base = xstrdup(basename(basecopy));
  return fd;
}

static bool on_btrfs(int fd) {
  struct statfs sf;
  return fstatfs(fd, &sf) == 0 && (unsigned long)sf.f_type == BTRFS_SUPER_MAGIC;
}

/* A directory, tagged with project where the filesystem counts them. */
static int make_directory(int parent, const char *base, const char *path,
                          uint32_t project, cell_error **err) {
  if (mkdirat(parent, base, 0700) < 0)
    return cell_fail_errno(err, "mkdir `%s`", path);
  if (!project || !project_quota_enforced(parent))
    return 0;
  cleanup_close int fd = openat(parent, base, O_RDONLY | O_DIRECTORY |
                                                  O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  if (project_quota_assign(fd, project, err) < 0)
    return cell_error_wrap(err, "`%s`", path);
  return 0;
}

int pool_disk_create(const char *path, uint32_t project, cell_error **err) {
  cleanup_free char *base = NULL;
  cleanup_close int parent = open_parent(path, &base, err);
  if (parent < 0)
    return -1;
  if (!on_btrfs(parent) || strlen(base) > BTRFS_PATH_NAME_MAX)
    return make_directory(parent, base, path, project, err);
  struct btrfs_ioctl_vol_args args = {0};
  memcpy(args.name, base, strlen(base));
  if (ioctl(parent, BTRFS_IOC_SUBVOL_CREATE, &args) < 0)
    return cell_fail_errno(err, "create the btrfs subvolume `%s`", path);
  if (fchmodat(parent, base, 0700, 0) < 0)
    return cell_fail_errno(err, "chmod `%s`", path);
  return 0;
}

static int qgroup_limit(int fd, uint64_t bytes) {
  struct btrfs_ioctl_qgroup_limit_args args = {
      .qgroupid = 0, /* the subvolume fd is in */
      .lim = {.flags = BTRFS_QGROUP_LIMIT_MAX_RFER,
              /* All ones: no limit, as `btrfs qgroup limit none`. */
              .max_rfer = bytes ? bytes : UINT64_MAX}};
  return ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, &args);
}

/* Only an inherited id is a disk's: what is made beneath has it too. */
uint32_t pool_disk_project(int fd) {
  uint32_t id = 0;
  bool inherit = false;
  cell_error *err = NULL;
  if (!project_quota_enforced(fd) ||
      project_quota_id_of(fd, &id, &inherit, &err) < 0) {
    cell_error_free(&err);
    return 0;
  }
  return inherit ? id : 0;
}

int pool_disk_set_limit(const char *path, uint64_t bytes, cell_error **err) {
  cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                        O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  uint32_t project = pool_disk_project(fd);
  if (project) {
    if (project_quota_set_limit(fd, project, bytes, err) < 0)
      return cell_error_wrap(err, "`%s`", path);
    return 0;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !on_btrfs(fd) ||
      st.st_ino != BTRFS_SUBVOL_ROOT_INO)
    return cell_fail(err, ENOTSUP, "`%s` is neither a btrfs subvolume nor a "
                     "directory with a project id: no limit can be set on it "
                     "(it was made before its pool had quotas)", path);
  if (qgroup_limit(fd, bytes) == 0)
    return 0;
  /* Quotas are off on this filesystem (ENOTCONN) until a limit is first
   * wanted: turning them on costs every write some accounting. */
  if (errno != ENOTCONN)
    return cell_fail_errno(err, "set the qgroup limit of `%s`", path);
  struct btrfs_ioctl_quota_ctl_args ctl = {.cmd = BTRFS_QUOTA_CTL_ENABLE};
  if (ioctl(fd, BTRFS_IOC_QUOTA_CTL, &ctl) < 0)
    return cell_fail_errno(err, "enable btrfs quotas under `%s`", path);
  if (qgroup_limit(fd, bytes) < 0)
    return cell_fail_errno(err, "set the qgroup limit of `%s`", path);
  return 0;
}

/* Each directory opened beneath the one before: no path grows. */
static int usage_at(int dirfd, uint64_t *bytes, cell_error **err) {
  DIR *dir = fdopendir(dirfd);
  if (!dir) {
    close(dirfd);
    return cell_fail_errno(err, "opendir");
  }
  int rc = 0;
  for (struct dirent *e; rc == 0 && (e = readdir(dir));) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    struct stat st;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      continue; /* gone meanwhile: a running instance writes */
    *bytes += (uint64_t)st.st_blocks * 512;
    if (!S_ISDIR(st.st_mode))
      continue;
    int sub = openat(dirfd, e->d_name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub >= 0)
      rc = usage_at(sub, bytes, err);
  }
  closedir(dir);
  return rc;
}

int pool_disk_usage(const char *path, uint64_t *bytes, cell_error **err) {
  *bytes = 0;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  uint32_t project = pool_disk_project(fd);
  if (!project) /* usage_at owns fd */
    return usage_at(fd, bytes, err) < 0 ? cell_error_wrap(err, "`%s`", path)
                                        : 0;
  cleanup_close int owned = fd;
  uint64_t limit;
  if (project_quota_get(owned, project, bytes, &limit, err) < 0)
    return cell_error_wrap(err, "`%s`", path);
  return 0;
}

/* The id of the subvolume whose root fd is (its qgroup is 0/ID). */
static uint64_t subvolume_id(int fd) {
  struct btrfs_ioctl_ino_lookup_args args = {
      .treeid = 0, .objectid = BTRFS_SUBVOL_ROOT_INO};
  return ioctl(fd, BTRFS_IOC_INO_LOOKUP, &args) < 0 ? 0 : args.treeid;
}

/* The subvolume goes in one ioctl, whatever it holds.  Its qgroup: the
 * kernel's cleaner frees the subvolume's blocks later, in the background,
 * and (6.x) removes the qgroup then; removing it here succeeds only for
 * an empty one (older kernels would keep it stale), so a failure is
 * ignored: waiting for the cleaner would stall celld. */
static int destroy_subvolume(int parent, const char *base, const char *path,
                             cell_error **err) {
  uint64_t id = 0;
  {
    cleanup_close int fd = openat(parent, base, O_RDONLY | O_DIRECTORY |
                                                    O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
      id = subvolume_id(fd);
  }
  struct btrfs_ioctl_vol_args args = {0};
  memcpy(args.name, base, strlen(base));
  if (ioctl(parent, BTRFS_IOC_SNAP_DESTROY, &args) < 0)
    return cell_fail_errno(err, "delete the btrfs subvolume `%s`", path);
  struct btrfs_ioctl_qgroup_create_args q = {.create = 0, .qgroupid = id};
  if (id)
    (void)ioctl(parent, BTRFS_IOC_QGROUP_CREATE, &q);
  return 0;
}

/* The limit of the directory's project lifted before it goes: once its
 * files are freed the project leaves no record behind.  The limit first,
 * so that a celld killed in between leaves a directory the next one
 * removes, never a limit without a directory. */
static int lift_project_limit(int parent, const char *base, const char *path,
                              cell_error **err) {
  cleanup_close int fd = openat(parent, base, O_RDONLY | O_DIRECTORY |
                                                  O_NOFOLLOW | O_CLOEXEC);
  uint32_t project = fd < 0 ? 0 : pool_disk_project(fd);
  if (project && project_quota_set_limit(fd, project, 0, err) < 0)
    return cell_error_wrap(err, "`%s`", path);
  return 0;
}

int pool_disk_remove(const char *path, cell_error **err) {
  struct stat st;
  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : cell_fail_errno(err, "stat `%s`", path);
  cleanup_free char *base = NULL;
  cleanup_close int parent = open_parent(path, &base, err);
  if (parent < 0)
    return -1;
  if (S_ISDIR(st.st_mode) && st.st_ino == BTRFS_SUBVOL_ROOT_INO &&
      on_btrfs(parent) && strlen(base) <= BTRFS_PATH_NAME_MAX)
    return destroy_subvolume(parent, base, path, err);
  if (S_ISDIR(st.st_mode) && lift_project_limit(parent, base, path, err) < 0)
    return -1;
  return cell_rm_rf_at(parent, base, err);
}

int pool_lift_stray_limits(const char *path, uint32_t first, uint32_t count,
                           bool (*claimed)(void *ctx, uint32_t id), void *ctx,
                           cell_error **err) {
  cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  if (!project_quota_enforced(fd))
    return 0;
  int lifted = 0;
  uint64_t last = (uint64_t)first + count;
  uint32_t id;
  uint64_t limit;
  for (uint64_t from = first; from < last; from = (uint64_t)id + 1) {
    int found = project_quota_next(fd, (uint32_t)from, &id, &limit, err);
    if (found < 0)
      return cell_error_wrap(err, "`%s`", path);
    if (found == 0 || id >= last)
      break;
    if (limit == 0 || claimed(ctx, id))
      continue;
    if (project_quota_set_limit(fd, id, 0, err) < 0)
      return cell_error_wrap(err, "`%s`", path);
    lifted++;
  }
  return lifted;
}
