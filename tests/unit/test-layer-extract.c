/* layer_extract against ordinary layers, OCI whiteouts, compressed
 * streams, and hostile archives built here with libarchive's writer.
 * Each attack test also checks that nothing appeared outside the
 * extraction directory: <base>/outside holds one file, "secret", and
 * <base> holds only root/ and outside/. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "storage/digest.h"
#include "storage/layer-extract.h"
#include "unit.h"

#define EMPTY_SHA256                                                           \
  "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char base[PATH_MAX]; /* <tmp>/cell-layer-XXXXXX */
static int basefd = -1;
static int rootfd = -1; /* <base>/root, fresh for each test */

static void must(int r, const char *what) {
  if (r < 0) {
    perror(what);
    exit(2);
  }
}

/* ---- archives ----------------------------------------------------------- */

enum kind { REG, DIR_, SYMLINK, HARDLINK, FIFO, CHR, BLK };

struct ent {
  const char *path;
  enum kind kind;
  unsigned int mode;
  long long uid, gid;
  const char *data;  /* REG: contents; SYMLINK/HARDLINK: target */
  unsigned int maj, min;
  long long size;    /* REG: declared size when the data is not all there */
  const char *xattr; /* "name=value" */
};

static void write_entry(struct archive *a, const struct ent *e) {
  struct archive_entry *ae = archive_entry_new();
  archive_entry_set_pathname(ae, e->path);
  archive_entry_set_uid(ae, e->uid);
  archive_entry_set_gid(ae, e->gid);
  archive_entry_set_mtime(ae, 1000000000, 0);
  archive_entry_set_perm(ae, e->mode ? e->mode : 0644);
  static const unsigned int types[] = {AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFREG,
                                       AE_IFIFO, AE_IFCHR, AE_IFBLK};
  archive_entry_set_filetype(ae, types[e->kind]);
  if (e->kind == SYMLINK)
    archive_entry_set_symlink(ae, e->data);
  if (e->kind == HARDLINK)
    archive_entry_set_hardlink(ae, e->data);
  if (e->kind == CHR || e->kind == BLK) {
    archive_entry_set_rdevmajor(ae, e->maj);
    archive_entry_set_rdevminor(ae, e->min);
  }
  size_t len = e->kind == REG && e->data ? strlen(e->data) : 0;
  archive_entry_set_size(ae, e->size ? e->size : (la_int64_t)len);
  if (e->xattr) {
    const char *eq = strchr(e->xattr, '=');
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)(eq - e->xattr), e->xattr);
    archive_entry_xattr_add_entry(ae, name, eq + 1, strlen(eq + 1));
  }
  if (archive_write_header(a, ae) != ARCHIVE_OK) {
    fprintf(stderr, "archive_write_header %s: %s\n", e->path,
            archive_error_string(a));
    exit(2);
  }
  if (len)
    archive_write_data(a, e->data, len);
  archive_entry_free(ae);
}

/* Where the writer's output goes: the memfd, or nowhere once the entries
 * of a truncated archive are out (closing would pad the lie out). */
struct sink {
  int fd;
  bool discard;
};

static la_ssize_t sink_write(struct archive *a, void *data, const void *buf,
                             size_t len) {
  struct sink *s = data;
  if (!s->discard && cell_write_all(s->fd, buf, len) < 0)
    return -1;
  return (la_ssize_t)len;
}

/* A tar (pax) of ents in a memfd, rewound.  filter: "gzip", "zstd" or
 * NULL.  truncated: stop after the last entry's header and data without
 * the padding and end blocks (for a header whose size is a lie). */
static int make_archive(const char *filter, const struct ent *ents, size_t n,
                        bool truncated) {
  int fd = memfd_create("layer", MFD_CLOEXEC);
  must(fd, "memfd_create");
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (filter && strcmp(filter, "gzip") == 0)
    archive_write_add_filter_gzip(a);
  else if (filter && strcmp(filter, "zstd") == 0)
    archive_write_add_filter_zstd(a);
  else if (filter && strcmp(filter, "xz") == 0)
    archive_write_add_filter_xz(a);
  /* No padding after the compressed stream (zstd readers refuse it). */
  archive_write_set_bytes_in_last_block(a, 1);
  if (truncated)
    archive_write_set_bytes_per_block(a, 0);
  struct sink sink = {fd, false};
  if (archive_write_open2(a, &sink, NULL, sink_write, NULL, NULL) !=
      ARCHIVE_OK) {
    fprintf(stderr, "archive_write_open2: %s\n", archive_error_string(a));
    exit(2);
  }
  for (size_t i = 0; i < n; i++)
    write_entry(a, &ents[i]);
  sink.discard = truncated;
  archive_write_close(a);
  archive_write_free(a);
  must((int)lseek(fd, 0, SEEK_SET), "lseek");
  return fd;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Extract ents (no filter) into dirfd; returns layer_extract's result and
 * leaves its error message in msg (or ""). */
static int extract_into(int dirfd, const struct ent *ents, size_t n,
                        enum layer_whiteouts whiteouts, uint64_t max_bytes,
                        char *msg, size_t msglen) {
  cleanup_close int fd = make_archive(NULL, ents, n, false);
  struct layer_limits lim = {.max_bytes = max_bytes};
  cleanup_error cell_error *err = NULL;
  int r = layer_extract(fd, dirfd, &lim, whiteouts, NULL, &err);
  snprintf(msg, msglen, "%s", err ? err->msg : "");
  return r;
}

/* The same into root. */
static int extract(const struct ent *ents, size_t n,
                   enum layer_whiteouts whiteouts, uint64_t max_bytes,
                   char *msg, size_t msglen) {
  return extract_into(rootfd, ents, n, whiteouts, max_bytes, msg, msglen);
}

/* ---- the tree ----------------------------------------------------------- */

static void fresh_root(void) {
  cell_error *err = NULL;
  if (rootfd >= 0)
    close(rootfd);
  if (layer_remove_tree(basefd, "root", &err) < 0) {
    fprintf(stderr, "%s\n", err->msg);
    exit(2);
  }
  must(mkdirat(basefd, "root", 0755), "mkdir root");
  rootfd = openat(basefd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(rootfd, "open root");
}

static bool exists(const char *rel) {
  struct stat st;
  return fstatat(rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static struct stat stat_in_root(const char *rel) {
  struct stat st;
  memset(&st, 0, sizeof(st));
  if (fstatat(rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
    st.st_mode = 0;
  return st;
}

static char *read_in_root(const char *rel) {
  static char buf[256];
  buf[0] = '\0';
  int fd = openat(rootfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

static size_t count_dir(int dirfd, const char *rel) {
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

/* <base> holds root/ and outside/ only; outside/ holds secret, intact and
 * with a single link. */
static bool outside_untouched(void) {
  struct stat st;
  if (count_dir(basefd, ".") != 2 || count_dir(basefd, "outside") != 1 ||
      fstatat(basefd, "outside/secret", &st, AT_SYMLINK_NOFOLLOW) < 0)
    return false;
  char buf[16] = "";
  int fd = openat(basefd, "outside/secret", O_RDONLY | O_CLOEXEC);
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n == 6 && memcmp(buf, "secret", 6) == 0 && st.st_nlink == 1 &&
         st.st_uid == 0 && (st.st_mode & 07777) == 0600;
}

/* ---- ordinary layers ---------------------------------------------------- */

static const struct ent basic[] = {
    {"./", DIR_, 0755, 0, 0, NULL, 0, 0, 0, NULL},
    {"./etc/", DIR_, 0750, 0, 42, NULL, 0, 0, 0, NULL},
    {"./etc/hosts", REG, 0640, 1000, 1001, "127.0.0.1 localhost\n", 0, 0, 0,
     "user.origin=layer"},
    {"etc/link", SYMLINK, 0777, 7, 8, "hosts", 0, 0, 0, NULL},
    {"etc/hard", HARDLINK, 0, 0, 0, "./etc/hosts", 0, 0, 0, NULL},
    {"run/fifo", FIFO, 0620, 0, 5, NULL, 0, 0, 0, NULL},
    {"dev/null", CHR, 0666, 0, 0, NULL, 1, 3, 0, NULL},
    {"usr/bin/su", REG, 04755, 0, 0, "#!/bin/true\n", 0, 0, 0, NULL},
};

static void check_basic_tree(void) {
  CHECK_STR(read_in_root("etc/hosts"), "127.0.0.1 localhost\n");
  struct stat st = stat_in_root("etc/hosts");
  CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0640);
  CHECK(st.st_uid == 1000 && st.st_gid == 1001);
  CHECK(st.st_mtim.tv_sec == 1000000000);
  CHECK(st.st_nlink == 2); /* etc/hard */
  struct stat hard = stat_in_root("etc/hard");
  CHECK(hard.st_ino == st.st_ino);
  char v[32] = "";
  int fd = openat(rootfd, "etc/hosts", O_RDONLY | O_CLOEXEC);
  CHECK(fgetxattr(fd, "user.origin", v, sizeof(v) - 1) == 5);
  CHECK_STR(v, "layer");
  close(fd);

  st = stat_in_root("etc");
  CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750 && st.st_gid == 42);
  CHECK(st.st_mtim.tv_sec == 1000000000); /* set after its children */

  char target[16] = "";
  CHECK(readlinkat(rootfd, "etc/link", target, sizeof(target) - 1) == 5);
  CHECK_STR(target, "hosts");
  st = stat_in_root("etc/link");
  CHECK(S_ISLNK(st.st_mode) && st.st_uid == 7 && st.st_gid == 8);

  st = stat_in_root("run/fifo");
  CHECK(S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0620 && st.st_gid == 5);
  st = stat_in_root("run"); /* made for run/fifo, as tar does */
  CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755);
  st = stat_in_root("dev/null");
  CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
  st = stat_in_root("usr/bin/su");
  CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 04755);
}

TEST(an_ordinary_layer_keeps_types_modes_owners_times_and_links) {
  fresh_root();
  cleanup_close int fd = make_archive(NULL, basic, N(basic), false);
  char want[DIGEST_STR_LEN];
  cell_error *err = NULL;
  must(digest_fd(fd, want, &err), "digest");
  must((int)lseek(fd, 0, SEEK_SET), "lseek");
  struct layer_stats stats;
  int r = layer_extract(fd, rootfd, NULL, LAYER_WHITEOUTS_APPLY, &stats, &err);
  CHECK(r == 0);
  if (err)
    fprintf(stderr, "%s\n", err->msg), cell_error_free(&err);
  CHECK(stats.entries == N(basic));
  CHECK(stats.bytes == strlen("127.0.0.1 localhost\n") + strlen("#!/bin/true\n"));
  CHECK_STR(stats.digest, want); /* the stream's digest, in the same pass */
  check_basic_tree();
  CHECK(outside_untouched());
}

static void extract_with_filter(const char *filter) {
  fresh_root();
  cleanup_close int fd = make_archive(filter, basic, N(basic), false);
  unsigned char magic[4] = {0};
  CHECK(pread(fd, magic, 4, 0) == 4);
  if (strcmp(filter, "gzip") == 0)
    CHECK(magic[0] == 0x1f && magic[1] == 0x8b);
  else if (strcmp(filter, "xz") == 0)
    CHECK(magic[0] == 0xfd && magic[1] == '7' && magic[2] == 'z');
  else
    CHECK(magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f);
  cleanup_error cell_error *err = NULL;
  CHECK(layer_extract(fd, rootfd, NULL, LAYER_WHITEOUTS_APPLY, NULL, &err) ==
        0);
  if (err)
    fprintf(stderr, "%s: %s\n", filter, err->msg);
  check_basic_tree();
}

TEST(a_gzip_layer_is_extracted) { extract_with_filter("gzip"); }
TEST(a_zstd_layer_is_extracted) { extract_with_filter("zstd"); }
TEST(an_xz_layer_is_extracted) { extract_with_filter("xz"); }

/* Extract the archive in fd into a fresh root; its stats. */
static struct layer_stats stats_of(int fd) {
  fresh_root();
  struct layer_stats stats;
  memset(&stats, 0, sizeof(stats));
  cleanup_error cell_error *err = NULL;
  CHECK(layer_extract(fd, rootfd, NULL, LAYER_WHITEOUTS_APPLY, &stats, &err) ==
        0);
  if (err)
    fprintf(stderr, "%s\n", err->msg);
  return stats;
}

TEST(diff_id_is_the_sha256_of_the_uncompressed_tar) {
  cleanup_close int plain = make_archive(NULL, basic, N(basic), false);
  char plain_sha[DIGEST_STR_LEN];
  cell_error *err = NULL;
  must(digest_fd(plain, plain_sha, &err), "digest");
  must((int)lseek(plain, 0, SEEK_SET), "lseek");
  struct layer_stats st = stats_of(plain);
  CHECK_STR(st.diff_id, plain_sha);
  CHECK_STR(st.digest, plain_sha);
  check_basic_tree();

  static const char *const filters[] = {"gzip", "zstd", "xz"};
  for (size_t i = 0; i < N(filters); i++) {
    cleanup_close int packed = make_archive(filters[i], basic, N(basic), false);
    char packed_sha[DIGEST_STR_LEN];
    must(digest_fd(packed, packed_sha, &err), "digest");
    must((int)lseek(packed, 0, SEEK_SET), "lseek");
    st = stats_of(packed);
    CHECK_STR(st.diff_id, plain_sha); /* the same tar inside */
    CHECK_STR(st.digest, packed_sha); /* the bytes as they came */
    CHECK(strcmp(st.digest, plain_sha) != 0);
    check_basic_tree();
  }
}

TEST(what_is_there_is_replaced_and_a_directory_stays) {
  fresh_root();
  static const struct ent lower[] = {
      {"x/inner", REG, 0644, 0, 0, "lower", 0, 0, 0, NULL},
      {"d/kept", REG, 0644, 0, 0, "lower", 0, 0, 0, NULL},
      {"f", REG, 0644, 0, 0, "lower", 0, 0, 0, NULL},
  };
  static const struct ent upper[] = {
      {"x", REG, 0600, 0, 0, "now a file", 0, 0, 0, NULL},
      {"d", DIR_, 0711, 3, 3, NULL, 0, 0, 0, NULL},
      {"f", SYMLINK, 0777, 0, 0, "x", 0, 0, 0, NULL},
  };
  char msg[512];
  CHECK(extract(lower, N(lower), LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) ==
        0);
  CHECK(extract(upper, N(upper), LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) ==
        0);
  CHECK_STR(read_in_root("x"), "now a file");
  CHECK_STR(read_in_root("d/kept"), "lower");
  struct stat st = stat_in_root("d");
  CHECK((st.st_mode & 07777) == 0711 && st.st_uid == 3);
  CHECK(S_ISLNK(stat_in_root("f").st_mode));
}

/* ---- whiteouts ---------------------------------------------------------- */

static const struct ent lower_layer[] = {
    {"a/keep", REG, 0644, 0, 0, "keep", 0, 0, 0, NULL},
    {"a/gone", REG, 0644, 0, 0, "gone", 0, 0, 0, NULL},
    {"a/gonedir/deep", REG, 0644, 0, 0, "deep", 0, 0, 0, NULL},
    {"b/x", REG, 0644, 0, 0, "x", 0, 0, 0, NULL},
    {"b/sub/y", REG, 0644, 0, 0, "y", 0, 0, 0, NULL},
    {"c/sub/old", REG, 0644, 0, 0, "old", 0, 0, 0, NULL},
};

static const struct ent upper_layer[] = {
    {"a/.wh.gone", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
    {"a/.wh.gonedir", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
    {"b/new", REG, 0644, 0, 0, "new", 0, 0, 0, NULL},
    {"b/.wh..wh..opq", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
    /* Into the lower c/sub, without an entry for it, then c opaque. */
    {"c/sub/new", REG, 0644, 0, 0, "new", 0, 0, 0, NULL},
    {"c/.wh..wh..opq", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
};

TEST(oci_whiteouts_remove_lower_files_and_opaque_empties_a_directory) {
  fresh_root();
  char msg[512];
  CHECK(extract(lower_layer, N(lower_layer), LAYER_WHITEOUTS_APPLY, 0, msg,
                sizeof(msg)) == 0);
  CHECK(extract(upper_layer, N(upper_layer), LAYER_WHITEOUTS_APPLY, 0, msg,
                sizeof(msg)) == 0);
  CHECK_STR(msg, "");
  CHECK(exists("a/keep"));
  CHECK(!exists("a/gone"));
  CHECK(!exists("a/gonedir"));
  CHECK(!exists("a/.wh.gone"));
  CHECK(!exists("b/x") && !exists("b/sub"));
  CHECK_STR(read_in_root("b/new"), "new"); /* this layer's, before the marker */
  CHECK(!exists("b/.wh..wh..opq"));
  CHECK_STR(read_in_root("c/sub/new"), "new");
  CHECK(!exists("c/sub/old"));
  CHECK(outside_untouched());
}

TEST(without_oci_whiteouts_the_names_are_kept_literally) {
  fresh_root();
  char msg[512];
  CHECK(extract(lower_layer, N(lower_layer), LAYER_WHITEOUTS_NONE, 0, msg,
                sizeof(msg)) == 0);
  CHECK(extract(upper_layer, N(upper_layer), LAYER_WHITEOUTS_NONE, 0, msg,
                sizeof(msg)) == 0);
  CHECK(exists("a/gone") && exists("a/.wh.gone"));
  CHECK(exists("b/x") && exists("b/.wh..wh..opq"));
}

/* ---- overlayfs whiteouts ------------------------------------------------ */

static bool is_overlay_whiteout(const char *rel) {
  struct stat st = stat_in_root(rel);
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0) &&
         (st.st_mode & 07777) == 0 && st.st_uid == 0 && st.st_gid == 0;
}

/* The value of xattr name on root/rel, "" when it has none. */
static const char *xattr_in_root(const char *rel, const char *name) {
  static char v[64];
  v[0] = '\0';
  int fd = openat(rootfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  ssize_t n = fgetxattr(fd, name, v, sizeof(v) - 1);
  close(fd);
  v[n > 0 ? n : 0] = '\0';
  return v;
}

TEST(overlay_whiteouts_become_char_devices_and_opaque_xattrs) {
  fresh_root();
  static const struct ent layer[] = {
      {"x", REG, 0644, 0, 0, "this layer's x", 0, 0, 0, NULL},
      {".wh.x", REG, 0644, 1000, 1000, "", 0, 0, 0, NULL}, /* replaces x */
      {"gonedir/inner", REG, 0644, 0, 0, "inner", 0, 0, 0, NULL},
      {".wh.gonedir", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
      {"d/new", REG, 0644, 0, 0, "new", 0, 0, 0, NULL},
      {"d/.wh..wh..opq", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
      {"e/.wh..wh..opq", REG, 0644, 0, 0, "", 0, 0, 0, NULL}, /* e made */
      {"e/.wh.y", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
  };
  char msg[512];
  CHECK(extract(layer, N(layer), LAYER_WHITEOUTS_OVERLAY, 0, msg,
                sizeof(msg)) == 0);
  CHECK_STR(msg, "");
  CHECK(is_overlay_whiteout("x"));
  CHECK(is_overlay_whiteout("gonedir"));
  CHECK(is_overlay_whiteout("e/y"));
  CHECK(stat_in_root("x").st_mtim.tv_sec == 1000000000); /* its entry's */
  CHECK(!exists(".wh.x") && !exists(".wh.gonedir") && !exists("e/.wh.y"));
  CHECK(!exists("d/.wh..wh..opq") && !exists("e/.wh..wh..opq"));
  CHECK_STR(xattr_in_root("d", "trusted.overlay.opaque"), "y");
  CHECK_STR(xattr_in_root("e", "trusted.overlay.opaque"), "y");
  CHECK_STR(xattr_in_root(".", "trusted.overlay.opaque"), "");
  CHECK_STR(read_in_root("d/new"), "new");
  struct stat st = stat_in_root("e"); /* made as any missing parent */
  CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755);
  CHECK(outside_untouched());
}

TEST(an_overlay_whiteout_through_a_symlink_is_refused) {
  fresh_root();
  static const struct ent evil[] = {
      {"up", SYMLINK, 0777, 0, 0, "../outside", 0, 0, 0, NULL},
      {"up/.wh.secret", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
  };
  char msg[512];
  CHECK(extract(evil, N(evil), LAYER_WHITEOUTS_OVERLAY, 0, msg, sizeof(msg)) <
        0);
  CHECK_CONTAINS(msg, "symlink");
  static const struct ent evil_opq[] = {
      {"up", SYMLINK, 0777, 0, 0, "../outside", 0, 0, 0, NULL},
      {"up/.wh..wh..opq", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
  };
  fresh_root();
  CHECK(extract(evil_opq, N(evil_opq), LAYER_WHITEOUTS_OVERLAY, 0, msg,
                sizeof(msg)) < 0);
  CHECK_CONTAINS(msg, "symlink");
  CHECK(outside_untouched());
  char v[8];
  int fd = openat(basefd, "outside", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) < 0);
  close(fd);
}

/* The number of xattrs entry path carries in the archive in fd (rewound
 * after), to show that the writer did put them there. */
static int archived_xattrs(int fd, const char *path) {
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  int count = -1;
  if (archive_read_open_fd(a, fd, 4096) == ARCHIVE_OK) {
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK)
      if (strcmp(archive_entry_pathname(e), path) == 0)
        count = archive_entry_xattr_count(e);
  }
  archive_read_free(a);
  must((int)lseek(fd, 0, SEEK_SET), "lseek");
  return count;
}

TEST(an_archive_cannot_make_a_directory_opaque_with_its_own_xattrs) {
  fresh_root();
  static const struct ent evil[] = {
      {"d/", DIR_, 0755, 0, 0, NULL, 0, 0, 0, "trusted.overlay.opaque=y"},
      /* What overlayfs reads when mounted with userxattr. */
      {"u/", DIR_, 0755, 0, 0, NULL, 0, 0, 0, "user.overlay.opaque=y"},
      {"r/", DIR_, 0755, 0, 0, NULL, 0, 0, 0, "trusted.overlay.redirect=/x"},
  };
  cleanup_close int fd = make_archive(NULL, evil, N(evil), false);
  CHECK(archived_xattrs(fd, "d/") > 0);
  CHECK(archived_xattrs(fd, "u/") > 0);
  CHECK(archived_xattrs(fd, "r/") > 0);
  cleanup_error cell_error *err = NULL;
  CHECK(layer_extract(fd, rootfd, NULL, LAYER_WHITEOUTS_OVERLAY, NULL, &err) ==
        0);
  CHECK(S_ISDIR(stat_in_root("d").st_mode) &&
        S_ISDIR(stat_in_root("u").st_mode));
  CHECK_STR(xattr_in_root("d", "trusted.overlay.opaque"), "");
  CHECK_STR(xattr_in_root("u", "user.overlay.opaque"), "");
  CHECK_STR(xattr_in_root("r", "trusted.overlay.redirect"), "");
}

/* Two layers extracted in OVERLAY mode under <base>/ovl, stacked by a
 * read-only overlay mount on <base>/ovl/merged: what a container sees. */
static void overlay_of_layers(void) {
  static const struct ent lower[] = {
      {"x", REG, 0644, 0, 0, "lower x", 0, 0, 0, NULL},
      {"d/old", REG, 0644, 0, 0, "old", 0, 0, 0, NULL},
      {"kept", REG, 0644, 0, 0, "kept", 0, 0, 0, NULL},
  };
  static const struct ent upper[] = {
      {".wh.x", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
      {"d/.wh..wh..opq", REG, 0644, 0, 0, "", 0, 0, 0, NULL},
      {"d/new", REG, 0644, 0, 0, "new", 0, 0, 0, NULL},
  };
  must(mkdirat(basefd, "ovl", 0755), "mkdir ovl");
  must(mkdirat(basefd, "ovl/lower", 0755), "mkdir lower");
  must(mkdirat(basefd, "ovl/upper", 0755), "mkdir upper");
  must(mkdirat(basefd, "ovl/merged", 0755), "mkdir merged");
  cleanup_close int lowerfd =
      openat(basefd, "ovl/lower", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int upperfd =
      openat(basefd, "ovl/upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char msg[512];
  CHECK(extract_into(lowerfd, lower, N(lower), LAYER_WHITEOUTS_OVERLAY, 0, msg,
                     sizeof(msg)) == 0);
  CHECK(extract_into(upperfd, upper, N(upper), LAYER_WHITEOUTS_OVERLAY, 0, msg,
                     sizeof(msg)) == 0);

  char merged[PATH_MAX + 16], opts[3 * PATH_MAX];
  snprintf(merged, sizeof(merged), "%s/ovl/merged", base);
  snprintf(opts, sizeof(opts), "lowerdir=%s/ovl/upper:%s/ovl/lower", base,
           base);
  int r = mount("overlay", merged, "overlay", MS_RDONLY, opts);
  CHECK(r == 0);
  if (r < 0) {
    perror("mount overlay");
    return;
  }
  cleanup_close int mfd = open(merged, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  CHECK(fstatat(mfd, "x", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
  CHECK(count_dir(mfd, "d") == 1);
  CHECK(fstatat(mfd, "d/new", &st, AT_SYMLINK_NOFOLLOW) == 0);
  CHECK(fstatat(mfd, "d/old", &st, AT_SYMLINK_NOFOLLOW) < 0);
  CHECK(fstatat(mfd, "kept", &st, AT_SYMLINK_NOFOLLOW) == 0);
  CHECK(count_dir(mfd, ".") == 2); /* d and kept */
  close(mfd);
  mfd = -1;
  if (umount2(merged, 0) < 0) {
    perror("umount overlay");
    must(umount2(merged, MNT_DETACH), "umount2 MNT_DETACH");
  }
}

TEST(an_overlay_mount_of_overlay_layers_hides_what_the_upper_whites_out) {
  overlay_of_layers(); /* unmounts before returning, whatever happened */
  cell_error *err = NULL;
  if (layer_remove_tree(basefd, "ovl", &err) < 0) {
    fprintf(stderr, "%s\n", err->msg);
    exit(2);
  }
}

/* ---- attacks ------------------------------------------------------------ */

TEST(path_traversal_with_dotdot_lands_nothing_outside) {
  static const char *const paths[] = {"../outside/evil", "a/../../outside/evil",
                                      "./../evil", ".."};
  for (size_t i = 0; i < N(paths); i++) {
    fresh_root();
    const struct ent evil[] = {{paths[i], REG, 0644, 0, 0, "pwned", 0, 0, 0, NULL}};
    char msg[512];
    CHECK(extract(evil, 1, LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) < 0);
    CHECK_CONTAINS(msg, "\"..\" component");
    CHECK_CONTAINS(msg, paths[i]); /* names the entry */
    CHECK(count_dir(rootfd, ".") == 0);
    CHECK(outside_untouched());
  }
}

TEST(an_absolute_path_stays_inside) {
  fresh_root();
  /* The host path of outside/: followed literally it would land there. */
  char abs[PATH_MAX + 32];
  snprintf(abs, sizeof(abs), "%s/outside/evil", base);
  const struct ent evil[] = {{abs, REG, 0644, 0, 0, "inside", 0, 0, 0, NULL}};
  char msg[512];
  CHECK(extract(evil, 1, LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) == 0);
  CHECK_STR(read_in_root(abs + 1), "inside");
  CHECK(outside_untouched());
}

TEST(a_symlink_to_root_then_a_write_through_it_is_refused) {
  char through_abs[PATH_MAX + 32];
  snprintf(through_abs, sizeof(through_abs), "escape%s/outside/evil", base);
  const struct ent evil[][2] = {
      {{"escape", SYMLINK, 0777, 0, 0, "/", 0, 0, 0, NULL},
       {through_abs, REG, 0644, 0, 0, "pwned", 0, 0, 0, NULL}},
      {{"up", SYMLINK, 0777, 0, 0, "../outside", 0, 0, 0, NULL},
       {"up/evil", REG, 0644, 0, 0, "pwned", 0, 0, 0, NULL}},
      {{"up", SYMLINK, 0777, 0, 0, "../outside", 0, 0, 0, NULL},
       {"up/evildir", DIR_, 0755, 0, 0, NULL, 0, 0, 0, NULL}},
      {{"up", SYMLINK, 0777, 0, 0, "../outside", 0, 0, 0, NULL},
       {"up/secret", SYMLINK, 0777, 0, 0, "/etc/shadow", 0, 0, 0, NULL}},
  };
  for (size_t i = 0; i < N(evil); i++) {
    fresh_root();
    char msg[512];
    CHECK(extract(evil[i], 2, LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) < 0);
    CHECK_CONTAINS(msg, "symlink");
    CHECK(outside_untouched());
  }
}

TEST(a_file_over_a_symlink_planted_below_replaces_the_link_not_its_target) {
  char abs[PATH_MAX + 32];
  snprintf(abs, sizeof(abs), "%s/outside/secret", base);
  const struct ent lower[] = {
      {"rel", SYMLINK, 0777, 0, 0, "../outside/secret", 0, 0, 0, NULL},
      {"abs", SYMLINK, 0777, 0, 0, abs, 0, 0, 0, NULL},
      {"dir", SYMLINK, 0777, 0, 0, "../outside", 0, 0, 0, NULL},
      {"node", SYMLINK, 0777, 0, 0, abs, 0, 0, 0, NULL},
      {"data", REG, 0644, 0, 0, "data", 0, 0, 0, NULL},
      {"hard", SYMLINK, 0777, 0, 0, abs, 0, 0, 0, NULL},
  };
  const struct ent upper[] = {
      {"rel", REG, 0644, 0, 0, "pwned", 0, 0, 0, NULL},
      {"abs", REG, 04755, 0, 0, "pwned", 0, 0, 0, NULL},
      {"dir", DIR_, 0777, 0, 0, NULL, 0, 0, 0, NULL},
      {"node", FIFO, 0666, 0, 0, NULL, 0, 0, 0, NULL},
      {"hard", HARDLINK, 0, 0, 0, "data", 0, 0, 0, NULL},
  };
  fresh_root();
  char msg[512];
  CHECK(extract(lower, N(lower), LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) ==
        0);
  CHECK(extract(upper, N(upper), LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) ==
        0);
  CHECK_STR(read_in_root("rel"), "pwned");
  CHECK_STR(read_in_root("abs"), "pwned");
  CHECK(S_ISDIR(stat_in_root("dir").st_mode));
  CHECK(S_ISFIFO(stat_in_root("node").st_mode));
  CHECK(stat_in_root("hard").st_ino == stat_in_root("data").st_ino);
  CHECK(outside_untouched());
}

TEST(a_hardlink_to_a_file_outside_the_layer_is_refused) {
  char abs[PATH_MAX + 32];
  snprintf(abs, sizeof(abs), "%s/outside/secret", base);
  const struct ent evil[][2] = {
      {{"h", HARDLINK, 0, 0, 0, "../outside/secret", 0, 0, 0, NULL}},
      {{"h", HARDLINK, 0, 0, 0, abs, 0, 0, 0, NULL}},
      {{"up", SYMLINK, 0777, 0, 0, "../outside", 0, 0, 0, NULL},
       {"h", HARDLINK, 0, 0, 0, "up/secret", 0, 0, 0, NULL}},
  };
  static const size_t counts[] = {1, 1, 2};
  for (size_t i = 0; i < N(evil); i++) {
    fresh_root();
    char msg[512];
    CHECK(extract(evil[i], counts[i], LAYER_WHITEOUTS_APPLY, 0, msg,
                  sizeof(msg)) < 0);
    CHECK_CONTAINS(msg, "hardlink");
    CHECK(!exists("h"));
    CHECK(outside_untouched()); /* secret still has one link */
  }
}

TEST(a_block_device_node_8_0_is_refused) {
  fresh_root();
  const struct ent evil[] = {{"dev/sda", BLK, 0660, 0, 0, NULL, 8, 0, 0, NULL}};
  char msg[512];
  CHECK(extract(evil, 1, LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) < 0);
  CHECK_CONTAINS(msg, "block device 8:0");
  CHECK_CONTAINS(msg, "dev/sda");
  CHECK(!exists("dev/sda"));
  CHECK(outside_untouched());
}

TEST(a_char_device_outside_the_default_set_is_refused) {
  fresh_root();
  /* /dev/mem: the host's physical memory. */
  const struct ent evil[] = {{"dev/mem", CHR, 0660, 0, 0, NULL, 1, 1, 0, NULL}};
  char msg[512];
  CHECK(extract(evil, 1, LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) < 0);
  CHECK_CONTAINS(msg, "char device 1:1");
  CHECK(!exists("dev/mem"));
  CHECK(outside_untouched());
}

TEST(a_huge_expansion_past_the_limit_is_stopped) {
  /* A header claiming 10 GiB, followed by a few bytes: refused on the
   * header, before a byte is written. */
  fresh_root();
  const struct ent huge[] = {{"big", REG, 0644, 0, 0, "AAAA", 0, 0,
                              10LL << 30, NULL}};
  cleanup_close int fd = make_archive(NULL, huge, 1, true);
  struct layer_limits lim = {.max_bytes = 1 << 30};
  cleanup_error cell_error *err = NULL;
  CHECK(layer_extract(fd, rootfd, &lim, LAYER_WHITEOUTS_APPLY, NULL, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "past its limit");
  CHECK_CONTAINS(err ? err->msg : "", "\"big\"");
  CHECK(!exists("big"));
  CHECK(outside_untouched());

  /* Many small files adding up past the limit. */
  fresh_root();
  static char chunk[64 * 1024 + 1];
  memset(chunk, 'x', sizeof(chunk) - 1);
  struct ent many[40];
  char names[40][16];
  for (size_t i = 0; i < N(many); i++) {
    snprintf(names[i], sizeof(names[i]), "f%02zu", i);
    many[i] = (struct ent){names[i], REG, 0644, 0, 0, chunk, 0, 0, 0, NULL};
  }
  char msg[512];
  CHECK(extract(many, N(many), LAYER_WHITEOUTS_APPLY, 1 << 20, msg,
                sizeof(msg)) < 0);
  CHECK_CONTAINS(msg, "past its limit");
  CHECK(count_dir(rootfd, ".") == 16); /* 16 x 64 KiB = the limit */
  CHECK(outside_untouched());
}

TEST(a_flood_of_empty_files_past_the_entry_limit_is_stopped) {
  fresh_root();
  struct ent many[100];
  char names[100][16];
  for (size_t i = 0; i < N(many); i++) {
    snprintf(names[i], sizeof(names[i]), "e%03zu", i);
    many[i] = (struct ent){names[i], REG, 0644, 0, 0, "", 0, 0, 0, NULL};
  }
  cleanup_close int fd = make_archive("gzip", many, N(many), false);
  struct layer_limits lim = {.max_bytes = 1 << 20, .max_entries = 50};
  cleanup_error cell_error *err = NULL;
  CHECK(layer_extract(fd, rootfd, &lim, LAYER_WHITEOUTS_APPLY, NULL, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "more than 50 entries");
  CHECK(count_dir(rootfd, ".") == 50);
  CHECK(outside_untouched());
}

#define SPARSE_SIZE (64LL << 20)

/* A 64 MiB sparse file holding 4 KiB of 't' at its end, as pax writes it
 * (GNU.sparse 1.0: the data regions only): raw memfd, rewound.  The
 * writer takes the whole contents and skips the holes itself. */
static int sparse_archive(void) {
  int fd = memfd_create("sparse", MFD_CLOEXEC);
  must(fd, "memfd_create");
  struct archive *a = archive_write_new();
  archive_write_set_format_pax(a);
  struct sink sink = {fd, false};
  archive_write_open2(a, &sink, NULL, sink_write, NULL, NULL);
  struct archive_entry *ae = archive_entry_new();
  archive_entry_set_pathname(ae, "sparse");
  archive_entry_set_filetype(ae, AE_IFREG);
  archive_entry_set_perm(ae, 0644);
  archive_entry_set_size(ae, SPARSE_SIZE);
  archive_entry_sparse_add_entry(ae, SPARSE_SIZE - 4096, 4096);
  if (archive_write_header(a, ae) != ARCHIVE_OK) {
    fprintf(stderr, "sparse header: %s\n", archive_error_string(a));
    exit(2);
  }
  static char chunk[1 << 20];
  for (long long off = 0; off < SPARSE_SIZE; off += sizeof(chunk)) {
    if (off + (long long)sizeof(chunk) == SPARSE_SIZE)
      memset(chunk + sizeof(chunk) - 4096, 't', 4096);
    archive_write_data(a, chunk, sizeof(chunk));
  }
  archive_entry_free(ae);
  archive_write_close(a);
  archive_write_free(a);
  struct stat st;
  must(fstat(fd, &st), "fstat");
  if (st.st_size > 1 << 20) {
    fprintf(stderr, "the sparse archive is not sparse (%lld bytes)\n",
            (long long)st.st_size);
    exit(2);
  }
  must((int)lseek(fd, 0, SEEK_SET), "lseek");
  return fd;
}

TEST(a_sparse_file_keeps_its_holes_and_counts_its_full_size) {
  fresh_root();
  cleanup_close int fd = sparse_archive();
  struct layer_limits lim = {.max_bytes = 2 * SPARSE_SIZE};
  struct layer_stats stats;
  cleanup_error cell_error *err = NULL;
  CHECK(layer_extract(fd, rootfd, &lim, LAYER_WHITEOUTS_APPLY, &stats, &err) ==
        0);
  struct stat st = stat_in_root("sparse");
  CHECK(st.st_size == SPARSE_SIZE);
  CHECK(st.st_blocks * 512 < 1 << 20); /* the hole was not written */
  CHECK(stats.bytes == SPARSE_SIZE);
  char c = 0;
  int rfd = openat(rootfd, "sparse", O_RDONLY | O_CLOEXEC);
  CHECK(pread(rfd, &c, 1, SPARSE_SIZE - 1) == 1 && c == 't');
  CHECK(pread(rfd, &c, 1, SPARSE_SIZE - 4097) == 1 && c == 0);
  close(rfd);

  /* Its apparent size is what the limit sees. */
  fresh_root();
  cleanup_close int fd2 = sparse_archive();
  lim.max_bytes = SPARSE_SIZE / 2;
  cell_error_free(&err);
  CHECK(layer_extract(fd2, rootfd, &lim, LAYER_WHITEOUTS_APPLY, NULL, &err) <
        0);
  CHECK_CONTAINS(err ? err->msg : "", "past its limit");
  CHECK(!exists("sparse"));
}

TEST(a_setuid_file_keeps_its_bit_with_its_owner) {
  fresh_root();
  /* chown after chmod would clear the bits: the order matters. */
  const struct ent suid[] = {
      {"bin/tool", REG, 06755, 1000, 1000, "#!/bin/true\n", 0, 0, 0, NULL}};
  char msg[512];
  CHECK(extract(suid, 1, LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) == 0);
  struct stat st = stat_in_root("bin/tool");
  CHECK((st.st_mode & 07777) == 06755);
  CHECK(st.st_uid == 1000 && st.st_gid == 1000);
}

TEST(an_id_beyond_65535_is_refused) {
  const struct ent evil[][1] = {
      {{"f", REG, 0644, 65536, 0, "x", 0, 0, 0, NULL}},
      {{"f", REG, 0644, 0, 100000, "x", 0, 0, 0, NULL}},
  };
  for (size_t i = 0; i < N(evil); i++) {
    fresh_root();
    char msg[512];
    CHECK(extract(evil[i], 1, LAYER_WHITEOUTS_APPLY, 0, msg, sizeof(msg)) < 0);
    CHECK_CONTAINS(msg, "beyond 65535");
    CHECK(!exists("f"));
    CHECK(outside_untouched());
  }
}

TEST(garbage_is_not_a_layer) {
  fresh_root();
  int fd = memfd_create("garbage", MFD_CLOEXEC);
  char junk[4096];
  memset(junk, 'Z', sizeof(junk));
  must((int)cell_write_all(fd, junk, sizeof(junk)), "write");
  must((int)lseek(fd, 0, SEEK_SET), "lseek");
  cleanup_error cell_error *err = NULL;
  CHECK(layer_extract(fd, rootfd, NULL, LAYER_WHITEOUTS_APPLY, NULL, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "not a tar archive");
  close(fd);
}

TEST(an_empty_stream_is_an_empty_layer) {
  fresh_root();
  cleanup_close int fd = memfd_create("empty", MFD_CLOEXEC);
  struct layer_stats stats;
  cleanup_error cell_error *err = NULL;
  CHECK(layer_extract(fd, rootfd, NULL, LAYER_WHITEOUTS_APPLY, &stats, &err) ==
        0);
  CHECK(stats.entries == 0 && count_dir(rootfd, ".") == 0);
  CHECK_STR(stats.digest, EMPTY_SHA256);
  CHECK_STR(stats.diff_id, EMPTY_SHA256);
}

TEST(remove_tree_does_not_follow_symlinks) {
  fresh_root();
  char outside[PATH_MAX + 16];
  snprintf(outside, sizeof(outside), "%s/outside", base);
  must(mkdirat(rootfd, "t", 0755), "mkdir t");
  must(symlinkat(outside, rootfd, "t/link"), "symlink");
  must(symlinkat("../../outside/secret", rootfd, "t/rel"), "symlink");
  cleanup_error cell_error *err = NULL;
  CHECK(layer_remove_tree(rootfd, "t", &err) == 0);
  CHECK(!exists("t"));
  CHECK(outside_untouched());
  CHECK(layer_remove_tree(rootfd, "absent", &err) == 0);
}

/* ---- digest ------------------------------------------------------------- */

static int memfd_with(const char *s) {
  int fd = memfd_create("blob", MFD_CLOEXEC);
  must(fd, "memfd_create");
  must((int)cell_write_all(fd, s, strlen(s)), "write");
  must((int)lseek(fd, 0, SEEK_SET), "lseek");
  return fd;
}

#define ABC_SHA256                                                             \
  "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

TEST(digest_of_abc_is_the_known_sha256) {
  cleanup_close int fd = memfd_with("abc");
  char out[DIGEST_STR_LEN];
  cleanup_error cell_error *err = NULL;
  CHECK(digest_fd(fd, out, &err) == 0);
  CHECK_STR(out, ABC_SHA256);
  cleanup_close int empty = memfd_with("");
  CHECK(digest_fd(empty, out, &err) == 0);
  CHECK_STR(out, EMPTY_SHA256);
}

TEST(digest_verify_accepts_the_right_digest_and_names_a_wrong_one) {
  cleanup_close int fd = memfd_with("abc");
  cleanup_error cell_error *err = NULL;
  CHECK(digest_verify(fd, ABC_SHA256, &err) == 0);
  cleanup_close int other = memfd_with("abd");
  CHECK(digest_verify(other, ABC_SHA256, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "digest mismatch");
  CHECK_CONTAINS(err ? err->msg : "", ABC_SHA256);
  cell_error_free(&err);
  must((int)lseek(fd, 0, SEEK_SET), "lseek");
  CHECK(digest_verify(fd, "sha512:abc", &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "sha512:abc");
  CHECK(!digest_is_valid("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
}

int main(void) {
  umask(077); /* modes come from the archive, not from the umask */
  const char *tmp = getenv("TMPDIR");
  snprintf(base, sizeof(base), "%s/cell-layer-XXXXXX", tmp ? tmp : "/tmp");
  if (mkdtemp(base) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(basefd, base);
  must(mkdirat(basefd, "outside", 0755), "mkdir outside");
  int fd = openat(basefd, "outside/secret", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  must(fd, "secret");
  must((int)cell_write_all(fd, "secret", 6), "write secret");
  close(fd);

  RUN(an_ordinary_layer_keeps_types_modes_owners_times_and_links);
  RUN(a_gzip_layer_is_extracted);
  RUN(a_zstd_layer_is_extracted);
  RUN(an_xz_layer_is_extracted);
  RUN(diff_id_is_the_sha256_of_the_uncompressed_tar);
  RUN(what_is_there_is_replaced_and_a_directory_stays);
  RUN(oci_whiteouts_remove_lower_files_and_opaque_empties_a_directory);
  RUN(without_oci_whiteouts_the_names_are_kept_literally);
  RUN(overlay_whiteouts_become_char_devices_and_opaque_xattrs);
  RUN(an_overlay_whiteout_through_a_symlink_is_refused);
  RUN(an_archive_cannot_make_a_directory_opaque_with_its_own_xattrs);
  RUN(an_overlay_mount_of_overlay_layers_hides_what_the_upper_whites_out);
  RUN(path_traversal_with_dotdot_lands_nothing_outside);
  RUN(an_absolute_path_stays_inside);
  RUN(a_symlink_to_root_then_a_write_through_it_is_refused);
  RUN(a_file_over_a_symlink_planted_below_replaces_the_link_not_its_target);
  RUN(a_hardlink_to_a_file_outside_the_layer_is_refused);
  RUN(a_block_device_node_8_0_is_refused);
  RUN(a_char_device_outside_the_default_set_is_refused);
  RUN(a_huge_expansion_past_the_limit_is_stopped);
  RUN(a_flood_of_empty_files_past_the_entry_limit_is_stopped);
  RUN(a_sparse_file_keeps_its_holes_and_counts_its_full_size);
  RUN(a_setuid_file_keeps_its_bit_with_its_owner);
  RUN(an_id_beyond_65535_is_refused);
  RUN(garbage_is_not_a_layer);
  RUN(an_empty_stream_is_an_empty_layer);
  RUN(remove_tree_does_not_follow_symlinks);
  RUN(digest_of_abc_is_the_known_sha256);
  RUN(digest_verify_accepts_the_right_digest_and_names_a_wrong_one);

  close(rootfd);
  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, base, &err) < 0)
    cell_error_free(&err);
  UNIT_DONE();
}
