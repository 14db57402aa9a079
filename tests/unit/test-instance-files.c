/* Files into and out of an instance's root through fds
 * (lib/daemon/instance-files.c): a root in a temporary directory, and the
 * symlinks a hostile instance would plant there. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/instance-files.h"
#include "unit.h"

static char base[] = "/tmp/cell-test-files-XXXXXX";
static int rootfd = -1;

static void write_at(int dirfd, const char *name, const char *text) {
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CHECK(fd >= 0);
  if (fd >= 0) {
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
  }
}

static int source(const char *text) {
  char path[] = "/tmp/cell-test-files-src-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  lseek(fd, 0, SEEK_SET);
  return fd;
}

static char *pull(const char *path, cell_error **err) {
  char tmpl[] = "/tmp/cell-test-files-dst-XXXXXX";
  cleanup_close int fd = mkstemp(tmpl);
  unlink(tmpl);
  mode_t mode;
  uint64_t size;
  if (instance_file_pull(rootfd, path, fd, &mode, &size, err) < 0)
    return NULL;
  char *buf = xcalloc(1, size + 1);
  CHECK(pread(fd, buf, size, 0) == (ssize_t)size);
  return buf;
}

static void setup(void) {
  CHECK(mkdtemp(base) != NULL);
  cleanup_free char *root = xasprintf("%s/root", base);
  CHECK(mkdir(root, 0755) == 0);
  rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(mkdirat(rootfd, "etc", 0755) == 0);
  write_at(rootfd, "etc/shadow", "inside\n");
  /* The host's secret, beside the root. */
  cleanup_free char *secret = xasprintf("%s/secret", base);
  write_at(AT_FDCWD, secret, "host\n");
}

TEST(a_push_writes_the_file_with_its_owner_and_mode) {
  cleanup_close int src = source("hello\n");
  uint64_t size = 0;
  cell_error *err = NULL;
  CHECK(instance_file_push(rootfd, "/etc/hello", src, getuid(), getgid(), 0600,
                           &size, &err) == 0);
  CHECK(size == 6);
  struct stat st;
  CHECK(fstatat(rootfd, "etc/hello", &st, 0) == 0 && (st.st_mode & 07777) == 0600);
  cleanup_free char *back = pull("/etc/hello", &err);
  CHECK_STR(back, "hello\n");
  cell_error_free(&err);
}

TEST(attack_absolute_and_dotdot_symlinks_to_the_host_resolve_inside) {
  cleanup_free char *secret = xasprintf("%s/secret", base);
  CHECK(symlinkat(secret, rootfd, "abs") == 0);
  CHECK(symlinkat("../../../../../../../../etc/shadow", rootfd, "rel") == 0);
  CHECK(symlinkat("../secret", rootfd, "up") == 0);
  cell_error *err = NULL;
  cleanup_free char *rel = pull("/rel", &err);
  CHECK_STR(rel, "inside\n");
  cleanup_free char *abs = pull("/abs", &err);
  CHECK(abs == NULL); /* <root><base>/secret does not exist */
  cell_error_free(&err);
  cleanup_free char *up = pull("/up", &err);
  CHECK(up == NULL);
  cell_error_free(&err);
}

TEST(attack_a_push_onto_a_symlink_replaces_it_and_never_follows_it) {
  cleanup_free char *secret = xasprintf("%s/secret", base);
  CHECK(symlinkat(secret, rootfd, "link") == 0);
  cleanup_close int src = source("pwned\n");
  uint64_t size;
  cell_error *err = NULL;
  CHECK(instance_file_push(rootfd, "/link", src, getuid(), getgid(), 0644,
                           &size, &err) == 0);
  cleanup_free char *host = NULL;
  CHECK(cell_read_file_at(AT_FDCWD, secret, 0, &host, NULL, &err) == 0);
  CHECK_STR(host, "host\n");
  struct stat st;
  CHECK(fstatat(rootfd, "link", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode));
  cell_error_free(&err);
}

TEST(attack_a_symlinked_parent_directory_stays_inside) {
  CHECK(symlinkat(base, rootfd, "hostdir") == 0);
  CHECK(symlinkat("../../../..", rootfd, "updir") == 0);
  cleanup_close int src = source("x\n");
  uint64_t size;
  cell_error *err = NULL;
  CHECK(instance_file_push(rootfd, "/hostdir/planted", src, getuid(), getgid(),
                           0644, &size, &err) < 0);
  cell_error_free(&err);
  CHECK(instance_file_push(rootfd, "/updir/planted", src, getuid(), getgid(),
                           0644, &size, &err) == 0);
  cleanup_free char *out = xasprintf("%s/planted", base);
  CHECK(access(out, F_OK) < 0);
  CHECK(faccessat(rootfd, "planted", F_OK, 0) == 0);
  cell_error_free(&err);
}

TEST(special_files_and_bad_paths_are_refused) {
  CHECK(mkfifoat(rootfd, "fifo", 0600) == 0);
  cell_error *err = NULL;
  cleanup_free char *f = pull("/fifo", &err);
  CHECK(f == NULL && err);
  if (err)
    CHECK_CONTAINS(err->msg, "not a regular file");
  cell_error_free(&err);
  cleanup_free char *dir = pull("/etc", &err);
  CHECK(dir == NULL);
  cell_error_free(&err);
  cleanup_close int src = source("x\n");
  uint64_t size;
  CHECK(instance_file_push(rootfd, "relative", src, 0, 0, 0644, &size, &err) < 0);
  cell_error_free(&err);
  CHECK(instance_file_push(rootfd, "/etc/..", src, 0, 0, 0644, &size, &err) < 0);
  cell_error_free(&err);
  CHECK(instance_file_push(rootfd, "/etc", src, 0, 0, 0644, &size, &err) < 0);
  if (err)
    CHECK_CONTAINS(err->msg, "is a directory");
  cell_error_free(&err);
}

TEST(attack_proc_files_are_refused) {
  cleanup_close int slash = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  int saved = rootfd;
  rootfd = slash;
  cell_error *err = NULL;
  cleanup_free char *f = pull("/proc/self/status", &err);
  CHECK(f == NULL && err);
  if (err)
    CHECK_CONTAINS(err->msg, "kernel filesystem");
  cell_error_free(&err);
  rootfd = saved;
}

TEST(attack_a_directory_pushed_onto_a_symlink_to_the_host_is_refused) {
  CHECK(symlinkat(base, rootfd, "dirlink") == 0);
  cell_error *err = NULL;
  CHECK(instance_dir_push(rootfd, "/dirlink", getuid(), getgid(), 0700, &err) < 0);
  cell_error_free(&err);
  struct stat st;
  CHECK(stat(base, &st) == 0 && (st.st_mode & 0777) == 0700); /* mkdtemp's */
  CHECK(instance_dir_push(rootfd, "/newdir", getuid(), getgid(), 0750, &err) == 0);
  CHECK(fstatat(rootfd, "newdir", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0750);
  CHECK(instance_symlink_push(rootfd, "/dirlink", "/etc", getuid(), getgid(),
                              &err) == 0);
  char target[64] = "";
  CHECK(readlinkat(rootfd, "dirlink", target, sizeof(target) - 1) == 4);
  CHECK_STR(target, "/etc");
  cell_error_free(&err);
}

int main(void) {
  setup();
  RUN(a_push_writes_the_file_with_its_owner_and_mode);
  RUN(attack_absolute_and_dotdot_symlinks_to_the_host_resolve_inside);
  RUN(attack_a_push_onto_a_symlink_replaces_it_and_never_follows_it);
  RUN(attack_a_symlinked_parent_directory_stays_inside);
  RUN(special_files_and_bad_paths_are_refused);
  RUN(attack_proc_files_are_refused);
  RUN(attack_a_directory_pushed_onto_a_symlink_to_the_host_is_refused);
  close(rootfd);
  cell_error *err = NULL;
  cell_rm_rf_at(AT_FDCWD, base, &err);
  cell_error_free(&err);
  UNIT_DONE();
}
