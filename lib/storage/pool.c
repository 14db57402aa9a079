/* Pools: what a pool's filesystem offers, and instances' disks in it.
 *
 * btrfs gives each disk a subvolume, and a subvolume its qgroup (0/ID,
 * made by the kernel with the subvolume once quotas are on): the disk
 * limit is that qgroup's limit on referenced bytes, so a write past it
 * fails with EDQUOT, and a subvolume goes in one ioctl whatever it holds.
 * XFS and ext4 project quotas would need a project id per disk and
 * quotactl; they are named as such, and refused for now. */
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
  if ((unsigned long)sf.f_type == BTRFS_SUPER_MAGIC)
    out->quota = POOL_QUOTA_BTRFS;
  else if ((unsigned long)sf.f_type == XFS_SUPER_MAGIC ||
           (unsigned long)sf.f_type == EXT4_SUPER_MAGIC)
    out->quota = POOL_QUOTA_NOT_YET;
  else
    out->quota = POOL_QUOTA_NONE;
  out->size = (uint64_t)sv.f_blocks * sv.f_frsize;
  out->avail = (uint64_t)sv.f_bavail * sv.f_frsize;
  return 0;
}

int pool_require_quota(const char *name, const char *path, cell_error **err) {
  struct pool_fs fs;
  if (pool_probe(path, &fs, err) < 0)
    return cell_error_wrap(err, "pool `%s`", name);
  if (fs.quota == POOL_QUOTA_BTRFS)
    return 0;
  return cell_fail(err, ENOTSUP, "pool `%s` is on %s, which has no quotas "
                   "celld can set%s: put the instance in a btrfs pool "
                   "(pool.NAME.path)", name, fs.fs,
                   fs.quota == POOL_QUOTA_NOT_YET ? " (project quotas: not yet)"
                                                  : "");
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

int pool_disk_create(const char *path, cell_error **err) {
  cleanup_free char *base = NULL;
  cleanup_close int parent = open_parent(path, &base, err);
  if (parent < 0)
    return -1;
  if (!on_btrfs(parent) || strlen(base) > BTRFS_PATH_NAME_MAX) {
    if (mkdirat(parent, base, 0700) < 0)
      return cell_fail_errno(err, "mkdir `%s`", path);
    return 0;
  }
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

int pool_disk_set_limit(const char *path, uint64_t bytes, cell_error **err) {
  cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                        O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  struct stat st;
  if (fstat(fd, &st) < 0 || !on_btrfs(fd) ||
      st.st_ino != BTRFS_SUBVOL_ROOT_INO)
    return cell_fail(err, ENOTSUP, "`%s` is not a btrfs subvolume: no limit "
                     "can be set on it", path);
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
  return usage_at(fd, bytes, err) < 0 ? cell_error_wrap(err, "`%s`", path) : 0;
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
  return cell_rm_rf_at(parent, base, err);
}
