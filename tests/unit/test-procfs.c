/* The verified procfs handle: what it accepts as a procfs root, and that
 * nothing beneath it is reached through a symlink, "..", or another mount. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/procfs.h"
#include "base/util.h"
#include "unit.h"

TEST(the_root_is_a_procfs_root) {
  cell_error *err = NULL;
  cleanup_close int procfs = procfs_open_root(&err);
  CHECK(procfs >= 0);
  CHECK(procfs_is_root(procfs));
  cell_error_free(&err);
}

TEST(the_root_is_the_hosts_proc_when_it_serves) {
  /* A private instance would be a superblock of its own: a device
   * number of its own. */
  cell_error *err = NULL;
  cleanup_close int procfs = procfs_open_root(&err);
  struct stat mine, host;
  CHECK(fstat(procfs, &mine) == 0);
  CHECK(stat("/proc", &host) == 0);
  CHECK(mine.st_dev == host.st_dev);
  cell_error_free(&err);
}

TEST(other_directories_are_no_procfs_root) {
  cleanup_close int tmp = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int sys = open("/proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
  CHECK(!procfs_is_root(tmp));
  CHECK(!procfs_is_root(sys)); /* procfs, but not its root */
}

TEST(self_is_opened_by_number) {
  cell_error *err = NULL;
  cleanup_close int procfs = procfs_open_root(&err);
  cleanup_close int fd =
      procfs_open_pid_file(procfs, PROCFS_SELF, "status", O_RDONLY, &err);
  CHECK(fd >= 0);
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  CHECK(n > 0);
  buf[n > 0 ? n : 0] = '\0';
  char want[64];
  snprintf(want, sizeof(want), "\nPid:\t%d\n", (int)getpid());
  CHECK_CONTAINS(buf, want);
  cleanup_close int th =
      procfs_open_thread_file(procfs, "comm", O_RDONLY, &err);
  CHECK(th >= 0);
  cell_error_free(&err);
}

TEST(links_and_dotdot_are_refused) {
  cell_error *err = NULL;
  cleanup_close int procfs = procfs_open_root(&err);
  /* "self" is a symlink: followed, it could lead anywhere. */
  CHECK(procfs_open_beneath(procfs, "self/status", O_RDONLY, &err) < 0);
  CHECK(err && err->errnum == ELOOP);
  cell_error_free(&err);
  CHECK(procfs_open_beneath(procfs, "sys/../self/status", O_RDONLY, &err) < 0);
  CHECK_STR(err ? err->msg : NULL,
            "open `/proc/sys/../self/status`: Invalid argument");
  cell_error_free(&err);
  CHECK(procfs_open_beneath(procfs, "/etc/passwd", O_RDONLY, &err) < 0);
  cell_error_free(&err);
  /* A magic link of the process (its root, its fds) is no way out either. */
  char path[64];
  snprintf(path, sizeof(path), "%d/root/etc/passwd", (int)getpid());
  CHECK(procfs_open_beneath(procfs, path, O_RDONLY, &err) < 0);
  cell_error_free(&err);
}

TEST(our_mountinfo_is_read_through_the_handle) {
  cell_error *err = NULL;
  cleanup_close int procfs = procfs_open_root(&err);
  cleanup_free char *info = NULL;
  CHECK(procfs_read_pid_file(procfs, PROCFS_SELF, "mountinfo", &info, &err) ==
        0);
  CHECK_CONTAINS(info ? info : "", " / / ");
  cell_error_free(&err);
}

int main(void) {
  RUN(the_root_is_a_procfs_root);
  RUN(the_root_is_the_hosts_proc_when_it_serves);
  RUN(other_directories_are_no_procfs_root);
  RUN(self_is_opened_by_number);
  RUN(links_and_dotdot_are_refused);
  RUN(our_mountinfo_is_read_through_the_handle);
  UNIT_DONE();
}
