/* XFS and ext4 project quotas through the XFS quota interface, which
 * both filesystems answer (ext4 through the kernel's generic quota
 * code): one set of calls for both.  Limits are counted in 512-byte
 * "basic blocks". */
#include "storage/project-quota.h"

#include <errno.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <linux/quota.h>
#include <string.h>
#include <sys/ioctl.h>

#include "base/syscalls.h"

#define BASIC_BLOCK 512

bool project_quota_enforced(int fd) {
  struct fs_quota_statv st = {.qs_version = FS_QSTATV_VERSION1};
  if (sys_quotactl_fd(fd, QCMD(Q_XGETQSTATV, PRJQUOTA), 0, &st) < 0)
    return false;
  const unsigned want = FS_QUOTA_PDQ_ACCT | FS_QUOTA_PDQ_ENFD;
  return (st.qs_flags & want) == want;
}

int project_quota_id_of(int dirfd, uint32_t *id, bool *inherit,
                        cell_error **err) {
  struct fsxattr fa;
  if (ioctl(dirfd, FS_IOC_FSGETXATTR, &fa) < 0)
    return cell_fail_errno(err, "read the project id");
  *id = fa.fsx_projid;
  *inherit = fa.fsx_xflags & FS_XFLAG_PROJINHERIT;
  return 0;
}

int project_quota_assign(int dirfd, uint32_t id, cell_error **err) {
  struct fsxattr fa;
  if (ioctl(dirfd, FS_IOC_FSGETXATTR, &fa) < 0)
    return cell_fail_errno(err, "read the project id");
  fa.fsx_projid = id;
  fa.fsx_xflags |= FS_XFLAG_PROJINHERIT;
  if (ioctl(dirfd, FS_IOC_FSSETXATTR, &fa) < 0)
    return cell_fail_errno(err, "set project id %u", id);
  return 0;
}

int project_quota_set_limit(int fd, uint32_t id, uint64_t bytes,
                            cell_error **err) {
  struct fs_disk_quota q = {
      .d_version = FS_DQUOT_VERSION,
      .d_flags = FS_PROJ_QUOTA,
      .d_fieldmask = FS_DQ_BSOFT | FS_DQ_BHARD,
      .d_id = id,
      .d_blk_hardlimit = (bytes + BASIC_BLOCK - 1) / BASIC_BLOCK,
  };
  if (sys_quotactl_fd(fd, QCMD(Q_XSETQLIM, PRJQUOTA), (int)id, &q) < 0)
    return cell_fail_errno(err, "set the limit of project %u", id);
  return 0;
}

int project_quota_get(int fd, uint32_t id, uint64_t *used, uint64_t *limit,
                      cell_error **err) {
  struct fs_disk_quota q = {0};
  if (sys_quotactl_fd(fd, QCMD(Q_XGETQUOTA, PRJQUOTA), (int)id, &q) < 0)
    return cell_fail_errno(err, "read the quota of project %u", id);
  *used = q.d_bcount * BASIC_BLOCK;
  *limit = q.d_blk_hardlimit * BASIC_BLOCK;
  return 0;
}

int project_quota_next(int fd, uint32_t from, uint32_t *id, uint64_t *limit,
                       cell_error **err) {
  struct fs_disk_quota q = {0};
  if (sys_quotactl_fd(fd, QCMD(Q_XGETNEXTQUOTA, PRJQUOTA), (int)from, &q) < 0)
    return errno == ENOENT ? 0
                           : cell_fail_errno(err, "list project quotas");
  *id = q.d_id;
  *limit = q.d_blk_hardlimit * BASIC_BLOCK;
  return 1;
}
