/* Pools (lib/storage/pool.c) on whatever filesystem the tests run on:
 * what it is called and offers, a disk made, measured and removed as a
 * plain directory where it is not btrfs (celld-pools.bats covers btrfs
 * on a loop device). */
#include "storage/pool.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "unit.h"

static char tmpdir[] = "/tmp/cell-test-pool-XXXXXX";

TEST(probe_names_the_filesystem) {
  struct pool_fs fs;
  cell_error *err = NULL;
  CHECK(pool_probe(tmpdir, &fs, &err) == 0);
  CHECK(fs.fs && fs.fs[0]);
  CHECK(fs.size > 0 && fs.avail <= fs.size);
  CHECK(pool_probe("/nonexistent/pool", &fs, &err) < 0);
  CHECK_CONTAINS(err->msg, "/nonexistent/pool");
  cell_error_free(&err);
}

TEST(quota_refused_naming_pool_and_filesystem) {
  struct pool_fs fs;
  cell_error *err = NULL;
  CHECK(pool_probe(tmpdir, &fs, &err) == 0);
  if (fs.quota != POOL_QUOTA_NONE) {
    CHECK(pool_require_quota("p", tmpdir, &err) == 0);
    return;
  }
  CHECK(pool_require_quota("p", tmpdir, &err) < 0);
  cleanup_free char *want = xasprintf("pool `p` is on %s, which has no quotas "
                                      "celld can set", fs.fs);
  CHECK_CONTAINS(err->msg, want);
  CHECK_CONTAINS(err->msg, "pool.NAME.path");
  cell_error_free(&err);
}

TEST(disk_made_measured_and_removed) {
  cell_error *err = NULL;
  cleanup_free char *disk = xasprintf("%s/disk", tmpdir);
  CHECK(pool_disk_create(disk, 0, &err) == 0);
  struct stat st;
  CHECK(stat(disk, &st) == 0 && S_ISDIR(st.st_mode) &&
        (st.st_mode & 07777) == 0700);
  /* A second create of the same disk is an error, not a reuse. */
  CHECK(pool_disk_create(disk, 0, &err) < 0);
  cell_error_free(&err);
  cleanup_free char *sub = xasprintf("%s/upper", disk);
  CHECK(mkdir(sub, 0755) == 0);
  cleanup_free char *file = xasprintf("%s/f", sub);
  char block[65536];
  memset(block, 'x', sizeof(block));
  int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  CHECK(fd >= 0 && write(fd, block, sizeof(block)) == (ssize_t)sizeof(block));
  fsync(fd);
  close(fd);
  uint64_t used = 0;
  CHECK(pool_disk_usage(disk, &used, &err) == 0);
  CHECK(used >= sizeof(block));
  CHECK(pool_disk_remove(disk, &err) == 0);
  CHECK(access(disk, F_OK) < 0);
  /* Gone already: no error. */
  CHECK(pool_disk_remove(disk, &err) == 0);
}

static bool claims_none(void *ctx, uint32_t id) { return false; }

/* Without project quotas (this kernel or filesystem), a project id asked
 * for is not set and nothing is lifted: no error either way. */
TEST(project_asked_where_there_are_no_project_quotas) {
  struct pool_fs fs;
  cell_error *err = NULL;
  CHECK(pool_probe(tmpdir, &fs, &err) == 0);
  if (fs.quota == POOL_QUOTA_PROJECT)
    return;
  cleanup_free char *disk = xasprintf("%s/pdisk", tmpdir);
  CHECK(pool_disk_create(disk, 70000000, &err) == 0);
  CHECK(pool_lift_stray_limits(tmpdir, 70000000, 65536, claims_none, NULL,
                               &err) == 0);
  CHECK(pool_disk_remove(disk, &err) == 0);
  CHECK(access(disk, F_OK) < 0);
}

int main(void) {
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  RUN(probe_names_the_filesystem);
  RUN(quota_refused_naming_pool_and_filesystem);
  RUN(disk_made_measured_and_removed);
  RUN(project_asked_where_there_are_no_project_quotas);
  rmdir(tmpdir);
  UNIT_DONE();
}
