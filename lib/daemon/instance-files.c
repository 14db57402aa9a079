/* Files into and out of an instance's root, through fds (instance-files.h). */
#include "daemon/instance-files.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "base/resolve.h"
#include "base/util.h"

/* Kernel filesystems whose files are views of the kernel, not data of the
 * instance. */
bool instance_kernel_fs(int fd) {
  struct statfs sf;
  if (fstatfs(fd, &sf) < 0)
    return true;
  switch ((unsigned long)sf.f_type) {
  case PROC_SUPER_MAGIC:
  case SYSFS_MAGIC:
  case DEBUGFS_MAGIC:
  case SECURITYFS_MAGIC:
  case CGROUP_SUPER_MAGIC:
  case CGROUP2_SUPER_MAGIC:
  case BPF_FS_MAGIC:
  case TRACEFS_MAGIC:
    return true;
  }
  return false;
}

int instance_check_not_kernel_fs(int fd, const char *path, cell_error **err) {
  if (instance_kernel_fs(fd))
    return cell_fail(err, 0, "`%s` is on a kernel filesystem (/proc, "
                     "/sys, ...): not a file of the instance", path);
  return 0;
}

/* An absolute path, split into its directory and its last name (neither
 * "." nor ".."). */
static int split_path(const char *path, char **dir, char **base,
                      cell_error **err) {
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/')
    len--;
  if (path[0] != '/' || len < 2)
    return cell_fail(err, EINVAL, "path `%s`: give the absolute path of a "
                     "file inside the instance", path);
  const char *slash = path + len - 1;
  while (*slash != '/')
    slash--;
  *base = xstrndup(slash + 1, (size_t)(path + len - slash - 1));
  if (strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0)
    return cell_fail(err, EINVAL, "path `%s`: name a file, not `.` or `..`",
                     path);
  *dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
  return 0;
}

static int copy_fd(int in, int out, uint64_t *size, cell_error **err) {
  char buf[65536];
  *size = 0;
  for (;;) {
    ssize_t n = read(in, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return cell_fail_errno(err, "read");
    if (n == 0)
      return 0;
    if (cell_write_all(out, buf, (size_t)n) < 0)
      return cell_fail_errno(err, "write");
    *size += (uint64_t)n;
  }
}

/* A temporary name beside the target, made new (never an existing file). */
int instance_make_temp(int dirfd, char **name, cell_error **err) {
  for (int tries = 0; tries < 100; tries++) {
    free(*name);
    *name = xasprintf(".cell-push.%d.%d", (int)getpid(), rand());
    int fd = openat(dirfd, *name,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST)
      return fd >= 0 ? fd : cell_fail_errno(err, "create a file in the target "
                                            "directory");
  }
  return cell_fail(err, EEXIST, "no free temporary name in the target "
                   "directory");
}

static int fill_temp(int fd, int srcfd, uid_t uid, gid_t gid, mode_t mode,
                     uint64_t *size, cell_error **err) {
  if (copy_fd(srcfd, fd, size, err) < 0)
    return -1;
  if (fchown(fd, uid, gid) < 0)
    return cell_fail_errno(err, "chown to %u:%u", (unsigned)uid, (unsigned)gid);
  /* After the chown, which clears set-id bits. */
  if (fchmod(fd, mode & 07777) < 0)
    return cell_fail_errno(err, "chmod %o", (unsigned)mode);
  return 0;
}

/* The directory path is in, resolved inside the root, and its last name. */
int instance_open_parent(int rootfd, const char *path, char **base,
                       cell_error **err) {
  cleanup_free char *dir = NULL;
  if (split_path(path, &dir, base, err) < 0)
    return -1;
  cleanup_close int dirfd = resolve_open(rootfd, dir, O_RDONLY | O_DIRECTORY, err);
  if (dirfd < 0)
    return cell_error_wrap(err, "directory `%s` in the instance", dir);
  if (instance_check_not_kernel_fs(dirfd, path, err) < 0)
    return -1;
  return steal_fd(&dirfd);
}

int instance_dir_push(int rootfd, const char *path, uid_t uid, gid_t gid,
                      mode_t mode, cell_error **err) {
  cleanup_free char *base = NULL;
  cleanup_close int dirfd = instance_open_parent(rootfd, path, &base, err);
  if (dirfd < 0)
    return -1;
  if (mkdirat(dirfd, base, 0700) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", path);
  /* An existing one is used if it is a directory, never through a link. */
  cleanup_close int fd =
      openat(dirfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "`%s` in the instance: not a directory", path);
  if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode & 07777) < 0)
    return cell_fail_errno(err, "chown or chmod `%s`", path);
  return 0;
}

int instance_symlink_push(int rootfd, const char *path, const char *target,
                          uid_t uid, gid_t gid, cell_error **err) {
  cleanup_free char *base = NULL, *tmp = NULL;
  cleanup_close int dirfd = instance_open_parent(rootfd, path, &base, err);
  if (dirfd < 0)
    return -1;
  /* Made beside it and renamed over: what was there is replaced, never
   * followed.  The link is only text: it resolves inside the instance. */
  for (int tries = 0; tries < 100; tries++) {
    free(tmp);
    tmp = xasprintf(".cell-push.%d.%d", (int)getpid(), rand());
    if (symlinkat(target, dirfd, tmp) == 0)
      break;
    if (errno != EEXIST)
      return cell_fail_errno(err, "symlink `%s`", path);
  }
  if (fchownat(dirfd, tmp, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
      renameat(dirfd, tmp, dirfd, base) < 0) {
    cell_fail_errno(err, "symlink `%s`", path);
    unlinkat(dirfd, tmp, 0);
    return -1;
  }
  return 0;
}

int instance_file_push(int rootfd, const char *path, int srcfd, uid_t uid,
                       gid_t gid, mode_t mode, uint64_t *size,
                       cell_error **err) {
  cleanup_free char *base = NULL, *tmp = NULL;
  cleanup_close int dirfd = instance_open_parent(rootfd, path, &base, err);
  if (dirfd < 0)
    return -1;
  struct stat st;
  if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
    return cell_fail(err, 0, "`%s` is a directory in the instance: give "
                     "the path of the file", path);
  cleanup_close int fd = instance_make_temp(dirfd, &tmp, err);
  if (fd < 0)
    return -1;
  if (fill_temp(fd, srcfd, uid, gid, mode, size, err) < 0 ||
      renameat(dirfd, tmp, dirfd, base) < 0) {
    if (!*err)
      cell_fail_errno(err, "rename into `%s`", path);
    unlinkat(dirfd, tmp, 0);
    return -1;
  }
  return 0;
}

int instance_file_pull(int rootfd, const char *path, int dstfd, mode_t *mode,
                       uint64_t *size, cell_error **err) {
  if (path[0] != '/')
    return cell_fail(err, EINVAL, "path `%s`: give the absolute path of a "
                     "file inside the instance", path);
  /* O_PATH first: opening a device or a FIFO could act or wait. */
  cleanup_close int pathfd = resolve_open(rootfd, path, O_PATH, err);
  if (pathfd < 0)
    return cell_error_wrap(err, "`%s` in the instance", path);
  struct stat st;
  if (fstat(pathfd, &st) < 0)
    return cell_fail_errno(err, "stat `%s`", path);
  if (!S_ISREG(st.st_mode))
    return cell_fail(err, 0, "`%s` is not a regular file: only regular "
                     "files are copied", path);
  if (instance_check_not_kernel_fs(pathfd, path, err) < 0)
    return -1;
  char buf[32];
  cleanup_close int fd = open(resolve_fd_path(pathfd, buf), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  *mode = st.st_mode & 07777;
  return copy_fd(fd, dstfd, size, err);
}
