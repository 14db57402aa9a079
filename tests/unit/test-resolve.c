/* resolve_open / resolve_create against a tree full of escaping symlinks.
 * The whole suite runs twice: with openat2, then again in a child started
 * with CELL_RESOLVE_NO_OPENAT2=1 to exercise the manual walk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/resolve.h"
#include "base/util.h"
#include "unit.h"

static char base[PATH_MAX]; /* <tmp>/cell-resolve-XXXXXX */
static char rootdir[PATH_MAX + 8];
static char outside[PATH_MAX + 16];
static int rootfd = -1;

static void must(int r, const char *what) {
  if (r < 0) {
    perror(what);
    exit(2);
  }
}

static void write_file(const char *path, const char *content) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  must(fd, path);
  must((int)cell_write_all(fd, content, strlen(content)), path);
  close(fd);
}

static void in_root(char *buf, size_t n, const char *rel) {
  snprintf(buf, n, "%s/%s", rootdir, rel);
}

static void mkdir_in_root(const char *rel) {
  char p[PATH_MAX * 2];
  in_root(p, sizeof(p), rel);
  must(mkdir(p, 0755), p);
}

static void symlink_in_root(const char *target, const char *rel) {
  char p[PATH_MAX * 2];
  in_root(p, sizeof(p), rel);
  must(symlink(target, p), p);
}

/* The tree:
 *   outside/secret           host file the container must never reach
 *   root/etc/passwd          "inside"
 *   root/abs      -> /etc                 absolute link
 *   root/up       -> ../../..             climbs past the root
 *   root/deep/a/b/up2 -> ../../../../outside
 *   root/hostabs  -> <base>/outside       absolute host path (CVE-2021-30465)
 *   root/deep/a/etclink -> /etc, root/deep/a/hostlink -> <base>/outside
 *   root/loop1 <-> root/loop2, root/self -> self
 *   root/chain1 -> chain2 -> dir/sub, with dir/sub/f and dir/marker
 *   root/file                regular file */
static void build_tree(void) {
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(base, sizeof(base), "%s/cell-resolve-XXXXXX", tmp);
  if (mkdtemp(base) == NULL)
    must(-1, "mkdtemp");
  snprintf(rootdir, sizeof(rootdir), "%s/root", base);
  snprintf(outside, sizeof(outside), "%s/outside", base);
  must(mkdir(rootdir, 0755), rootdir);
  must(mkdir(outside, 0755), outside);
  char p[PATH_MAX * 2];
  snprintf(p, sizeof(p), "%s/secret", outside);
  write_file(p, "host");

  mkdir_in_root("etc");
  in_root(p, sizeof(p), "etc/passwd");
  write_file(p, "inside");
  symlink_in_root("/etc", "abs");
  symlink_in_root("../../..", "up");
  mkdir_in_root("deep");
  mkdir_in_root("deep/a");
  mkdir_in_root("deep/a/b");
  symlink_in_root("../../../../outside", "deep/a/b/up2");
  symlink_in_root(outside, "hostabs");
  symlink_in_root("/etc", "deep/a/etclink");
  symlink_in_root(outside, "deep/a/hostlink");
  symlink_in_root("loop2", "loop1");
  symlink_in_root("loop1", "loop2");
  symlink_in_root("self", "self");
  mkdir_in_root("dir");
  mkdir_in_root("dir/sub");
  in_root(p, sizeof(p), "dir/sub/f");
  write_file(p, "f");
  in_root(p, sizeof(p), "dir/marker");
  write_file(p, "marker");
  symlink_in_root("chain2", "chain1");
  symlink_in_root("dir/sub", "chain2");
  in_root(p, sizeof(p), "file");
  write_file(p, "file");

  rootfd = open(rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  must(rootfd, rootdir);
}

/* fd is the very file rel names inside the root (no symlinks followed). */
static bool is_in_root(int fd, const char *rel) {
  struct stat a, b;
  if (fd < 0 || fstat(fd, &a) < 0 || fstatat(rootfd, rel, &b, AT_SYMLINK_NOFOLLOW) < 0)
    return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static bool exists_in_root(const char *rel, mode_t type) {
  struct stat st;
  return fstatat(rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         (st.st_mode & S_IFMT) == type;
}

/* Open path with resolve_open and check it is rel inside the root. */
static void check_resolves_to(const char *path, int flags, const char *rel) {
  cell_error *err = NULL;
  int fd = resolve_open(rootfd, path, flags, &err);
  CHECK(fd >= 0);
  CHECK(err == NULL);
  if (!is_in_root(fd, rel))
    fprintf(stderr, "  `%s` did not resolve to `%s`\n", path, rel);
  CHECK(is_in_root(fd, rel));
  if (fd >= 0)
    close(fd);
  cell_error_free(&err);
}

static void check_open_fails(const char *path, int flags, int errnum) {
  cell_error *err = NULL;
  int fd = resolve_open(rootfd, path, flags, &err);
  CHECK(fd == -1);
  CHECK(err != NULL);
  if (err) {
    if (err->errnum != errnum)
      fprintf(stderr, "  `%s`: %s\n", path, err->msg);
    CHECK(err->errnum == errnum);
    CHECK_CONTAINS(err->msg, path);
  }
  if (fd >= 0)
    close(fd);
  cell_error_free(&err);
}

TEST(plain_paths) {
  check_resolves_to("etc/passwd", O_PATH, "etc/passwd");
  check_resolves_to("/etc/passwd", O_PATH, "etc/passwd");
  check_resolves_to("//etc/./passwd", O_PATH, "etc/passwd");
  check_resolves_to("/", O_PATH, ".");
  check_resolves_to("/", O_RDONLY | O_DIRECTORY, ".");
}

TEST(dotdot_stays_in_root) {
  check_resolves_to("..", O_PATH, ".");
  check_resolves_to("../../../etc/passwd", O_PATH, "etc/passwd");
  check_resolves_to("/deep/a/../../../../etc/passwd", O_PATH, "etc/passwd");
  check_resolves_to("deep/a/b/../..", O_PATH | O_DIRECTORY, "deep");
}

TEST(absolute_symlink_is_relative_to_root) {
  check_resolves_to("abs/passwd", O_PATH, "etc/passwd");
  check_resolves_to("/abs", O_PATH, "etc");
  check_resolves_to("deep/a/etclink/passwd", O_PATH, "etc/passwd");
  check_resolves_to("deep/a/etclink/../etc/passwd", O_PATH, "etc/passwd");
  /* A host path written into a link means the same path in the root. */
  check_open_fails("hostabs/secret", O_PATH, ENOENT);
}

TEST(climbing_symlinks_stop_at_root) {
  check_resolves_to("up", O_PATH, ".");
  check_resolves_to("up/etc/passwd", O_PATH, "etc/passwd");
  /* ".." right after a link that leads nowhere is not a path either. */
  check_open_fails("deep/a/b/up2/../etc/passwd", O_PATH, ENOENT);
  /* ../../../../outside from deep/a/b is /outside of the root: absent. */
  check_open_fails("deep/a/b/up2/secret", O_PATH, ENOENT);
}

TEST(symlink_chain_and_physical_dotdot) {
  check_resolves_to("chain1/f", O_PATH, "dir/sub/f");
  check_resolves_to("chain1", O_PATH | O_DIRECTORY, "dir/sub");
  /* ".." after a link is the parent of where the link led. */
  check_resolves_to("chain1/../marker", O_PATH, "dir/marker");
}

TEST(loops) {
  check_open_fails("loop1", O_PATH, ELOOP);
  check_open_fails("self/x", O_PATH, ELOOP);
  check_open_fails("/loop2/etc", O_RDONLY, ELOOP);
}

TEST(empty_path) { check_open_fails("", O_PATH, ENOENT); }

TEST(not_a_directory) {
  check_open_fails("file/x", O_PATH, ENOTDIR);
  check_open_fails("file", O_RDONLY | O_DIRECTORY, ENOTDIR);
}

TEST(nofollow_last_component) {
  cell_error *err = NULL;
  int fd = resolve_open(rootfd, "abs", O_PATH | O_NOFOLLOW, &err);
  CHECK(fd >= 0);
  CHECK(is_in_root(fd, "abs"));
  struct stat st;
  CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode));
  if (fd >= 0)
    close(fd);
  cell_error_free(&err);
  check_open_fails("abs", O_RDONLY | O_NOFOLLOW, ELOOP);
}

TEST(real_open_reads_the_inside_file) {
  cell_error *err = NULL;
  int fd = resolve_open(rootfd, "/up/abs/passwd", O_RDONLY, &err);
  CHECK(fd >= 0);
  char buf[16] = {0};
  CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == 6);
  CHECK_STR(buf, "inside");
  CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
  if (fd >= 0)
    close(fd);
  cell_error_free(&err);
}

static int create(const char *path, bool as_file) {
  cell_error *err = NULL;
  int fd = resolve_create(rootfd, path, as_file, &err);
  if (fd < 0)
    fprintf(stderr, "  resolve_create `%s`: %s\n", path, err ? err->msg : "?");
  cell_error_free(&err);
  return fd;
}

TEST(create_plain) {
  int fd = create("/new/dir/leaf", false);
  CHECK(is_in_root(fd, "new/dir/leaf"));
  CHECK(exists_in_root("new/dir/leaf", S_IFDIR));
  if (fd >= 0)
    close(fd);
  fd = create("new/dir/file", true);
  CHECK(is_in_root(fd, "new/dir/file"));
  CHECK(exists_in_root("new/dir/file", S_IFREG));
  if (fd >= 0)
    close(fd);
  /* Existing: returned as is. */
  fd = create("etc/passwd", true);
  CHECK(is_in_root(fd, "etc/passwd"));
  if (fd >= 0)
    close(fd);
}

TEST(create_through_absolute_link) {
  int fd = create("abs/created", true);
  CHECK(is_in_root(fd, "etc/created"));
  CHECK(exists_in_root("etc/created", S_IFREG));
  if (fd >= 0)
    close(fd);
}

TEST(create_through_host_path_link) {
  /* hostabs -> <base>/outside: the directories are made inside the root. */
  char rel[PATH_MAX + 32];
  snprintf(rel, sizeof(rel), "%s/mnt", outside + 1);
  int fd = create("hostabs/mnt", false);
  CHECK(is_in_root(fd, rel));
  CHECK(exists_in_root(rel, S_IFDIR));
  if (fd >= 0)
    close(fd);
  snprintf(rel, sizeof(rel), "%s/sub/file", outside + 1);
  fd = create("/deep/a/hostlink/sub/file", true);
  CHECK(is_in_root(fd, rel));
  CHECK(exists_in_root(rel, S_IFREG));
  if (fd >= 0)
    close(fd);
}

TEST(create_through_climbing_link) {
  int fd = create("deep/a/b/up2/secret", true);
  CHECK(is_in_root(fd, "outside/secret"));
  CHECK(exists_in_root("outside/secret", S_IFREG));
  if (fd >= 0)
    close(fd);
  fd = create("up/../../made-by-dotdot", false);
  CHECK(is_in_root(fd, "made-by-dotdot"));
  if (fd >= 0)
    close(fd);
}

TEST(create_dangling_link_target) {
  char target[PATH_MAX + 32], rel[PATH_MAX + 32];
  snprintf(target, sizeof(target), "%s/new/target", outside);
  snprintf(rel, sizeof(rel), "%s", target + 1);
  symlink_in_root(target, "dangling");
  int fd = create("dangling", true);
  CHECK(is_in_root(fd, rel));
  CHECK(exists_in_root(rel, S_IFREG));
  CHECK(exists_in_root("dangling", S_IFLNK));
  if (fd >= 0)
    close(fd);
}

TEST(create_failures) {
  cell_error *err = NULL;
  CHECK(resolve_create(rootfd, "loop1/x", false, &err) < 0);
  CHECK(err && err->errnum == ELOOP);
  if (err)
    CHECK_CONTAINS(err->msg, "loop1/x");
  cell_error_free(&err);
  CHECK(resolve_create(rootfd, "file/x", false, &err) < 0);
  CHECK(err && err->errnum == ENOTDIR);
  cell_error_free(&err);
}

TEST(fd_path) {
  char buf[32];
  CHECK_STR(resolve_fd_path(7, buf), "/proc/self/fd/7");
  CHECK_STR(resolve_fd_path(2147483647, buf), "/proc/self/fd/2147483647");
}

/* Runs last: nothing may have appeared next to the root or in outside/. */
TEST(nothing_created_outside) {
  size_t n = 0;
  DIR *d = opendir(base);
  CHECK(d != NULL);
  for (struct dirent *de; d && (de = readdir(d));)
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      n++;
  if (d)
    closedir(d);
  CHECK(n == 2);
  n = 0;
  d = opendir(outside);
  CHECK(d != NULL);
  for (struct dirent *de; d && (de = readdir(d));)
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      n++;
  if (d)
    closedir(d);
  CHECK(n == 1);
  char p[PATH_MAX * 2], buf[8] = {0};
  snprintf(p, sizeof(p), "%s/secret", outside);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == 4);
  CHECK_STR(buf, "host");
  if (fd >= 0)
    close(fd);
  struct stat st;
  CHECK(stat("/etc/created", &st) < 0 && errno == ENOENT);
}

/* resolve_open_no_symlinks: plain paths open; any symlink on the way, or
 * "..", is ELOOP with a message naming the path. */
static void check_no_symlinks_fails(const char *path) {
  cell_error *err = NULL;
  int fd = resolve_open_no_symlinks(rootfd, path, O_PATH, &err);
  CHECK(fd == -1);
  CHECK(err != NULL);
  if (err) {
    CHECK(err->errnum == ELOOP);
    CHECK_CONTAINS(err->msg, path);
    CHECK_CONTAINS(err->msg, "symlink");
  }
  cell_error_free(&err);
}

TEST(no_symlinks) {
  cell_error *err = NULL;
  int fd = resolve_open_no_symlinks(rootfd, "/dir/sub/f", O_PATH, &err);
  CHECK(is_in_root(fd, "dir/sub/f"));
  if (fd >= 0)
    close(fd);
  fd = resolve_open_no_symlinks(rootfd, "dir/sub", O_PATH | O_DIRECTORY, &err);
  CHECK(is_in_root(fd, "dir/sub"));
  if (fd >= 0)
    close(fd);
  check_no_symlinks_fails("/abs/passwd");     /* a link in the middle */
  check_no_symlinks_fails("/chain1");         /* a link at the end */
  check_no_symlinks_fails("/deep/a/etclink"); /* deeper */
  check_no_symlinks_fails("/hostabs/secret"); /* one that leads out */
  fd = resolve_open_no_symlinks(rootfd, "/dir/nothing", O_PATH, &err);
  CHECK(fd == -1 && err && err->errnum == ENOENT);
  cell_error_free(&err);
}

static int run_manual_walk_suite(const char *self) {
  pid_t pid = fork();
  must(pid, "fork");
  if (pid == 0) {
    setenv("CELL_RESOLVE_NO_OPENAT2", "1", 1);
    execl(self, self, (char *)NULL);
    _exit(127);
  }
  int status;
  must(waitpid(pid, &status, 0), "waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
  (void)argc;
  bool manual = getenv("CELL_RESOLVE_NO_OPENAT2") != NULL;
  printf("# resolve with %s\n", manual ? "the manual walk" : "openat2");
  build_tree();
  RUN(plain_paths);
  RUN(dotdot_stays_in_root);
  RUN(absolute_symlink_is_relative_to_root);
  RUN(climbing_symlinks_stop_at_root);
  RUN(symlink_chain_and_physical_dotdot);
  RUN(loops);
  RUN(empty_path);
  RUN(not_a_directory);
  RUN(nofollow_last_component);
  RUN(real_open_reads_the_inside_file);
  RUN(create_plain);
  RUN(create_through_absolute_link);
  RUN(create_through_host_path_link);
  RUN(create_through_climbing_link);
  RUN(create_dangling_link_target);
  RUN(create_failures);
  RUN(fd_path);
  RUN(nothing_created_outside);
  RUN(no_symlinks);
  close(rootfd);
  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, base, &err) < 0) {
    fprintf(stderr, "cleanup: %s\n", err->msg);
    cell_error_free(&err);
  }
  if (!manual) {
    fflush(stdout);
    /* The resolved name, not /proc/self/exe, which under valgrind would
     * be valgrind's own tool. */
    char self[PATH_MAX] = {0};
    must((int)readlink("/proc/self/exe", self, sizeof(self) - 1), "readlink");
    if (run_manual_walk_suite(self) != 0)
      unit_failures++;
  }
  UNIT_DONE();
}
