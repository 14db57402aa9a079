/* tree_archive_write: a tree written as a tar stream and read back by
 * layer_extract is the same tree; the same tree gives the same bytes; a
 * symlink is archived, never followed; a reader gone away is an error. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "storage/layer-extract.h"
#include "storage/tree-archive.h"
#include "unit.h"

static char base[PATH_MAX]; /* <tmp>/cell-tree-XXXXXX: src/ and dst/ */
static int basefd = -1;

static void must(int r, const char *what) {
  if (r < 0) {
    perror(what);
    exit(2);
  }
}

/* base/name, removed and made again, opened. */
static int fresh_dir(const char *name) {
  cell_error *err = NULL;
  if (layer_remove_tree(basefd, name, &err) < 0) {
    fprintf(stderr, "%s\n", err->msg);
    exit(2);
  }
  must(mkdirat(basefd, name, 0755), name);
  int fd = openat(basefd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fd, name);
  return fd;
}

static void put_file(int dirfd, const char *rel, const char *data, mode_t mode,
                     uid_t uid, gid_t gid) {
  int fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  must(fd, rel);
  must((int)cell_write_all(fd, data, strlen(data)), rel);
  must(fchown(fd, uid, gid), rel);
  must(fchmod(fd, mode), rel); /* after chown, which clears setuid */
  close(fd);
}

static void set_mtime(int dirfd, const char *rel, time_t sec) {
  struct timespec ts[2] = {{sec, 0}, {sec, 0}};
  must(utimensat(dirfd, rel, ts, AT_SYMLINK_NOFOLLOW), rel);
}

/* The tree of the round trip: each kind of node, owners, modes, an xattr,
 * a hardlink pair, a symlink to / and a socket (which is left out). */
static void build_tree(int src) {
  must(mkdirat(src, "etc", 0755), "etc");
  put_file(src, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644, 1000, 1000);
  int fd = openat(src, "etc/passwd", O_RDONLY | O_CLOEXEC);
  must(fd, "open passwd");
  must(fsetxattr(fd, "user.x", "hello", 5, 0), "setxattr user.x");
  /* overlayfs's own, with userxattr: not a layer's to carry. */
  must(fsetxattr(fd, "user.overlay.opaque", "y", 1, 0), "setxattr");
  close(fd);
  must(linkat(src, "etc/passwd", src, "etc/hard", 0), "link");
  must(mkdirat(src, "bin", 0755), "bin");
  put_file(src, "bin/su", "#!/bin/true\n", 04755, 0, 0);
  must(symlinkat("etc/passwd", src, "link"), "symlink");
  must(symlinkat("/", src, "rootlink"), "symlink /");
  must(mkdirat(src, "run", 0755), "run");
  must(mknodat(src, "run/fifo", S_IFIFO | 0620, 0), "fifo");
  must(fchmodat(src, "run/fifo", 0620, 0), "chmod fifo");
  must(mkdirat(src, "dev", 0755), "dev");
  must(mknodat(src, "dev/null", S_IFCHR | 0666, makedev(1, 3)), "mknod");
  must(fchmodat(src, "dev/null", 0666, 0), "chmod null");
  must(mkdirat(src, "a", 0750), "a");
  must(fchownat(src, "a", 1000, 1000, 0), "chown a");
  must(mkdirat(src, "a/b", 0700), "a/b");
  put_file(src, "a/b/deep", "deep\n", 0600, 1000, 1000);
  must(fchmodat(src, "a", 01777, 0), "chmod a"); /* sticky */

  /* A socket: bound by its path, closed; the node stays. */
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  cleanup_free char *sock = xasprintf("%s/src/run/sock", base);
  if (strlen(sock) >= sizeof(sa.sun_path)) {
    fprintf(stderr, "%s: too long for a socket\n", sock);
    exit(2);
  }
  memcpy(sa.sun_path, sock, strlen(sock) + 1);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  must(s, "socket");
  must(bind(s, (struct sockaddr *)&sa, sizeof(sa)), "bind");
  close(s);

  static const char *const all[] = {
      "etc/passwd", "etc/hard", "bin/su",   "link", "rootlink",
      "run/fifo",   "dev/null", "a/b/deep", "a/b",  "a",
      "etc",        "bin",      "run",      "dev",  "."};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    set_mtime(src, all[i], 1000000000 + (time_t)i);
}

static int write_to_memfd(int src, uint64_t *bytes) {
  int out = memfd_create("tree", MFD_CLOEXEC);
  must(out, "memfd_create");
  cleanup_error cell_error *err = NULL;
  int r = tree_archive_write(src, out, bytes, &err);
  CHECK(r == 0);
  if (err)
    fprintf(stderr, "tree_archive_write: %s\n", err->msg);
  must((int)lseek(out, 0, SEEK_SET), "lseek");
  return out;
}

/* ---- comparing two trees ------------------------------------------------ */

static bool same_contents(int a, int b, const char *rel) {
  char x[256] = "", y[256] = "";
  int fa = openat(a, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  int fb = openat(b, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  ssize_t na = read(fa, x, sizeof(x)), nb = read(fb, y, sizeof(y));
  close(fa);
  close(fb);
  return na >= 0 && na == nb && memcmp(x, y, (size_t)na) == 0;
}

static bool same_link(int a, int b, const char *rel) {
  char x[PATH_MAX] = "", y[PATH_MAX] = "";
  ssize_t na = readlinkat(a, rel, x, sizeof(x) - 1);
  ssize_t nb = readlinkat(b, rel, y, sizeof(y) - 1);
  return na > 0 && na == nb && memcmp(x, y, (size_t)na) == 0;
}

static int compared; /* nodes compared, to show the walk saw them all */

static void check_same_tree(int a, int b, const char *rel);

/* One node, in both trees: type, owner, mode, mtime, and what it holds. */
static void check_same_node(int a, int b, const char *rel) {
  struct stat sa, sb;
  must(fstatat(a, rel, &sa, AT_SYMLINK_NOFOLLOW), rel);
  if (S_ISSOCK(sa.st_mode)) {
    CHECK(fstatat(b, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
    return;
  }
  compared++;
  CHECK(fstatat(b, rel, &sb, AT_SYMLINK_NOFOLLOW) == 0);
  if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT) ||
      sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid ||
      (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777)) ||
      sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_rdev != sb.st_rdev ||
      sa.st_nlink != sb.st_nlink) {
    fprintf(stderr, "%s differs: 0%o %u:%u %ld n%lu vs 0%o %u:%u %ld n%lu\n",
            rel, sa.st_mode, sa.st_uid, sa.st_gid, (long)sa.st_mtim.tv_sec,
            (unsigned long)sa.st_nlink, sb.st_mode, sb.st_uid, sb.st_gid,
            (long)sb.st_mtim.tv_sec, (unsigned long)sb.st_nlink);
    CHECK(!"the same node");
  }
  if (S_ISREG(sa.st_mode))
    CHECK(same_contents(a, b, rel));
  if (S_ISLNK(sa.st_mode))
    CHECK(same_link(a, b, rel));
  if (S_ISDIR(sa.st_mode) && strcmp(rel, ".") != 0)
    check_same_tree(a, b, rel);
}

static void check_same_tree(int a, int b, const char *rel) {
  int fd = openat(a, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fd, rel);
  DIR *d = fdopendir(fd);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    char child[PATH_MAX];
    snprintf(child, sizeof(child), "%s/%s", rel, de->d_name);
    check_same_node(a, b, child);
  }
  closedir(d);
}

static size_t count_entries(int dirfd, const char *rel) {
  int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  DIR *d = fdopendir(fd);
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

/* ---- the archive itself ------------------------------------------------- */

/* The entries of the archive in fd, "path" or "path -> target" for
 * symlinks, one a line (fd rewound after). */
static char *list_archive(int fd) {
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  char *out = xstrdup("");
  if (archive_read_open_fd(a, fd, 4096) == ARCHIVE_OK) {
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      const char *link = archive_entry_symlink(e);
      const char *uname = archive_entry_uname(e);
      char *more = xasprintf("%s%s%s%s%s\n", out, archive_entry_pathname(e),
                             link ? " -> " : "", link ? link : "",
                             uname && uname[0] ? " (a user name)" : "");
      free(out);
      out = more;
    }
  }
  archive_read_free(a);
  must((int)lseek(fd, 0, SEEK_SET), "lseek");
  return out;
}

/* ---- tests -------------------------------------------------------------- */

TEST(a_tree_read_back_by_layer_extract_is_the_same_tree) {
  cleanup_close int src = fresh_dir("src");
  build_tree(src);
  uint64_t bytes = 0;
  cleanup_close int tar = write_to_memfd(src, &bytes);
  CHECK(bytes == strlen("root:x:0:0::/root:/bin/sh\n") +
                     strlen("#!/bin/true\n") + strlen("deep\n"));

  cleanup_close int dst = fresh_dir("dst");
  cleanup_error cell_error *err = NULL;
  CHECK(layer_extract(tar, dst, NULL, LAYER_WHITEOUTS_NONE, NULL, &err) == 0);
  if (err)
    fprintf(stderr, "layer_extract: %s\n", err->msg);

  compared = 0;
  check_same_node(src, dst, ".");
  check_same_tree(src, dst, ".");
  CHECK(compared == 15);                 /* every node but the socket */
  CHECK(count_entries(dst, "run") == 1); /* no socket */

  struct stat p, h;
  CHECK(fstatat(dst, "etc/passwd", &p, 0) == 0 &&
        fstatat(dst, "etc/hard", &h, 0) == 0);
  CHECK(p.st_ino == h.st_ino && p.st_nlink == 2);
  CHECK((p.st_mode & 07777) == 0644 && p.st_uid == 1000 && p.st_gid == 1000);
  CHECK(fstatat(dst, "bin/su", &p, 0) == 0 && (p.st_mode & 07777) == 04755);
  CHECK(fstatat(dst, "dev/null", &p, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISCHR(p.st_mode) && p.st_rdev == makedev(1, 3));
  CHECK(fstatat(dst, "a", &p, AT_SYMLINK_NOFOLLOW) == 0 &&
        (p.st_mode & 07777) == 01777 && p.st_uid == 1000);

  int fd = openat(dst, "etc/passwd", O_RDONLY | O_CLOEXEC);
  char v[16] = "";
  CHECK(fgetxattr(fd, "user.x", v, sizeof(v) - 1) == 5);
  CHECK_STR(v, "hello");
  CHECK(fgetxattr(fd, "user.overlay.opaque", v, sizeof(v)) < 0);
  close(fd);
}

TEST(the_same_tree_gives_the_same_bytes) {
  cleanup_close int src = fresh_dir("src");
  build_tree(src);
  cleanup_close int one = write_to_memfd(src, NULL);
  /* Reading the files and new atimes (and ctimes) change nothing. */
  struct timespec ts[2] = {{123, 0}, {0, UTIME_OMIT}};
  must(utimensat(src, "etc/passwd", ts, 0), "atime");
  must(utimensat(src, "a/b", ts, 0), "atime");
  cleanup_close int two = write_to_memfd(src, NULL);
  struct stat s1, s2;
  must(fstat(one, &s1), "fstat");
  must(fstat(two, &s2), "fstat");
  CHECK(s1.st_size == s2.st_size && s1.st_size > 0);
  void *m1 = mmap(NULL, (size_t)s1.st_size, PROT_READ, MAP_PRIVATE, one, 0);
  void *m2 = mmap(NULL, (size_t)s2.st_size, PROT_READ, MAP_PRIVATE, two, 0);
  CHECK(m1 != MAP_FAILED && m2 != MAP_FAILED &&
        memcmp(m1, m2, (size_t)s1.st_size) == 0);
  /* No process id in the pax headers' names (older libarchive put one). */
  char pid[32];
  snprintf(pid, sizeof(pid), "%d", (int)getpid());
  CHECK(memmem(m1, (size_t)s1.st_size, pid, strlen(pid)) == NULL);
  munmap(m1, (size_t)s1.st_size);
  munmap(m2, (size_t)s2.st_size);

  /* Sorted names, depth first, no user names. */
  cleanup_free char *list = list_archive(one);
  CHECK_STR(list, "./\n"
                  "./a/\n"
                  "./a/b/\n"
                  "./a/b/deep\n"
                  "./bin/\n"
                  "./bin/su\n"
                  "./dev/\n"
                  "./dev/null\n"
                  "./etc/\n"
                  "./etc/hard\n"
                  "./etc/passwd\n"
                  "./link -> etc/passwd\n"
                  "./rootlink -> /\n"
                  "./run/\n"
                  "./run/fifo\n");
}

TEST(a_symlink_to_the_root_is_archived_not_followed) {
  cleanup_close int src = fresh_dir("src");
  must(symlinkat("/", src, "up"), "symlink");
  must(symlinkat("/etc", src, "etc"), "symlink");
  cleanup_close int tar = write_to_memfd(src, NULL);
  cleanup_free char *list = list_archive(tar);
  CHECK_STR(list, "./\n./etc -> /etc\n./up -> /\n");
}

TEST(a_tree_deeper_than_the_limit_is_refused) {
  cleanup_close int src = fresh_dir("src");
  int cur = fcntl(src, F_DUPFD_CLOEXEC, 3);
  for (int i = 0; i <= LAYER_MAX_DEPTH; i++) {
    must(mkdirat(cur, "d", 0755), "mkdir d");
    int next = openat(cur, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    must(next, "open d");
    close(cur);
    cur = next;
  }
  close(cur);
  int out = memfd_create("tree", MFD_CLOEXEC);
  cleanup_error cell_error *err = NULL;
  CHECK(tree_archive_write(src, out, NULL, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "deeper than 256");
  /* Nothing that looks like a whole archive: no end-of-archive blocks
   * after the entries written before the refusal. */
  struct stat st;
  must(fstat(out, &st), "fstat");
  CHECK(st.st_size % 512 == 0);
  must((int)lseek(out, 0, SEEK_SET), "lseek");
  cleanup_close int dst = fresh_dir("dst");
  cell_error_free(&err);
  CHECK(layer_extract(out, dst, NULL, LAYER_WHITEOUTS_NONE, NULL, &err) < 0);
  close(out);
  /* One level less is fine. */
  cell_error_free(&err);
  must(layer_remove_tree(src, "d", &err), "rm");
  cur = fcntl(src, F_DUPFD_CLOEXEC, 3);
  for (int i = 0; i < LAYER_MAX_DEPTH; i++) {
    must(mkdirat(cur, "d", 0755), "mkdir d");
    int next = openat(cur, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(cur);
    cur = next;
  }
  close(cur);
  cleanup_close int ok = write_to_memfd(src, NULL);
}

TEST(a_reader_gone_away_is_an_error_not_a_crash) {
  cleanup_close int src = fresh_dir("src");
  static char big[1 << 20];
  memset(big, 'b', sizeof(big) - 1);
  put_file(src, "big", big, 0644, 0, 0);
  int p[2];
  must(pipe2(p, O_CLOEXEC), "pipe");
  close(p[0]);
  struct sigaction ign = {.sa_handler = SIG_IGN}, old;
  must(sigaction(SIGPIPE, &ign, &old), "sigaction");
  cleanup_error cell_error *err = NULL;
  CHECK(tree_archive_write(src, p[1], NULL, &err) < 0);
  CHECK(err != NULL && err->errnum == EPIPE);
  CHECK_CONTAINS(err ? err->msg : "", "write the archive");
  sigaction(SIGPIPE, &old, NULL);
  close(p[1]);
}

/* An overlayfs layer: a whiteout, an opaque directory, a file. */
static void build_overlay_tree(int src) {
  must(mkdirat(src, "etc", 0755), "etc");
  put_file(src, "etc/motd", "hi\n", 0644, 0, 0);
  must(mknodat(src, "etc/gone", S_IFCHR, makedev(0, 0)), "whiteout");
  must(fchmodat(src, "etc/gone", 0, 0), "chmod whiteout");
  must(mkdirat(src, "opaque", 0700), "opaque");
  int fd = openat(src, "opaque", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fd, "open opaque");
  must(fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0), "set opaque");
  close(fd);
  put_file(src, "opaque/new", "new\n", 0600, 1000, 1000);
  static const char *const all[] = {"etc/motd", "etc/gone", "opaque/new",
                                    "opaque", "etc", "."};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    set_mtime(src, all[i], 1100000000 + (time_t)i);
}

static int write_oci_to_memfd(int src, cell_error **err) {
  int out = memfd_create("tree", MFD_CLOEXEC);
  must(out, "memfd_create");
  if (tree_archive_write_oci(src, out, NULL, err) < 0) {
    close(out);
    return -1;
  }
  must((int)lseek(out, 0, SEEK_SET), "lseek");
  return out;
}

TEST(an_overlay_tree_travels_in_the_oci_form_and_comes_back) {
  cleanup_close int src = fresh_dir("src");
  build_overlay_tree(src);
  cleanup_error cell_error *err = NULL;
  cleanup_close int tar = write_oci_to_memfd(src, &err);
  CHECK(tar >= 0);
  if (err)
    fprintf(stderr, "tree_archive_write_oci: %s\n", err->msg);
  cleanup_free char *list = list_archive(tar);
  CHECK_STR(list, "./\n"
                  "./etc/\n"
                  "./etc/.wh.gone\n"
                  "./etc/motd\n"
                  "./opaque/\n"
                  "./opaque/.wh..wh..opq\n"
                  "./opaque/new\n");
  cleanup_close int dst = fresh_dir("dst");
  CHECK(layer_extract(tar, dst, NULL, LAYER_WHITEOUTS_OVERLAY, NULL, &err) == 0);
  if (err)
    fprintf(stderr, "layer_extract: %s\n", err->msg);
  compared = 0;
  check_same_node(src, dst, ".");
  check_same_tree(src, dst, ".");
  CHECK(compared == 6);
  CHECK(count_entries(dst, "opaque") == 1); /* no .wh. file left */
  int fd = openat(dst, "opaque", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char v[4] = "";
  CHECK(fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) == 1 &&
        v[0] == 'y');
  close(fd);
  /* The plain form keeps the device as it is and no xattr. */
  cleanup_close int plain = write_to_memfd(src, NULL);
  cleanup_free char *plain_list = list_archive(plain);
  CHECK_CONTAINS(plain_list, "./etc/gone\n");
  CHECK(strstr(plain_list, ".wh.") == NULL);
}

/* overlayfs's own whiteouts, in an upper layer: links of one inode,
 * owned by an id beyond the range; they still travel, as whiteouts. */
TEST(overlayfs_whiteouts_of_any_owner_and_links_are_whiteouts) {
  cleanup_close int src = fresh_dir("src");
  must(mknodat(src, "a", S_IFCHR, makedev(0, 0)), "whiteout");
  must(fchownat(src, "a", 65536, 65536, AT_SYMLINK_NOFOLLOW), "chown");
  must(linkat(src, "a", src, "b", 0), "link");
  cleanup_error cell_error *err = NULL;
  cleanup_close int tar = write_oci_to_memfd(src, &err);
  CHECK(tar >= 0);
  cleanup_free char *list = list_archive(tar);
  CHECK_STR(list, "./\n./.wh.a\n./.wh.b\n");
  cleanup_close int dst = fresh_dir("dst");
  CHECK(layer_extract(tar, dst, NULL, LAYER_WHITEOUTS_OVERLAY, NULL, &err) == 0);
  struct stat st;
  CHECK(fstatat(dst, "b", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISCHR(st.st_mode) && st.st_rdev == 0 && st.st_uid == 0);
}

TEST(an_owner_beyond_the_container_ids_is_refused_in_the_oci_form) {
  cleanup_close int src = fresh_dir("src");
  put_file(src, "f", "x", 0644, 70000, 0);
  cleanup_error cell_error *err = NULL;
  CHECK(write_oci_to_memfd(src, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "owned by 70000:0");
  CHECK_CONTAINS(err ? err->msg : "", "\"./f\"");
}

TEST(an_overlay_redirect_is_refused_in_the_oci_form) {
  cleanup_close int src = fresh_dir("src");
  must(mkdirat(src, "moved", 0755), "moved");
  int fd = openat(src, "moved", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fsetxattr(fd, "trusted.overlay.redirect", "/old", 4, 0), "redirect");
  close(fd);
  cleanup_error cell_error *err = NULL;
  CHECK(write_oci_to_memfd(src, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "trusted.overlay.redirect");
}

int main(void) {
  umask(022);
  const char *tmp = getenv("TMPDIR");
  snprintf(base, sizeof(base), "%s/cell-tree-XXXXXX", tmp ? tmp : "/tmp");
  if (mkdtemp(base) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(basefd, base);

  RUN(a_tree_read_back_by_layer_extract_is_the_same_tree);
  RUN(the_same_tree_gives_the_same_bytes);
  RUN(a_symlink_to_the_root_is_archived_not_followed);
  RUN(a_tree_deeper_than_the_limit_is_refused);
  RUN(a_reader_gone_away_is_an_error_not_a_crash);
  RUN(an_overlay_tree_travels_in_the_oci_form_and_comes_back);
  RUN(overlayfs_whiteouts_of_any_owner_and_links_are_whiteouts);
  RUN(an_owner_beyond_the_container_ids_is_refused_in_the_oci_form);
  RUN(an_overlay_redirect_is_refused_in_the_oci_form);

  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, base, &err) < 0)
    cell_error_free(&err);
  UNIT_DONE();
}
