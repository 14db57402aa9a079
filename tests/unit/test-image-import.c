/* image_import into a temp store: rootfs directories, tarballs, pipes and
 * OCI layouts built here, and what a failed import leaves (nothing). */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "storage/image-import.h"
#include "storage/image-store.h"
#include "storage/tree-archive.h"
#include "unit.h"

static char base[PATH_MAX]; /* <tmp>/cell-image-import-XXXXXX */
static int count;

static void must(int r, const char *what) {
  if (r < 0) {
    perror(what);
    exit(2);
  }
}

static struct image_store *new_store(void) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/store%d", base, count++);
  struct image_store *s = NULL;
  cleanup_error cell_error *err = NULL;
  if (image_store_open(path, &s, &err) < 0) {
    fprintf(stderr, "image_store_open: %s\n", err->msg);
    exit(2);
  }
  return s;
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

/* The store holds nothing: no image, no layer, nothing in tmp/. */
static bool store_is_empty(struct image_store *s) {
  return count_dir(s->dirfd, "images") == 0 &&
         count_dir(s->dirfd, "layers") == 0 && count_dir(s->dirfd, "tmp") == 0;
}

static void write_file_at(int dirfd, const char *name, const char *data,
                          mode_t mode, uid_t uid) {
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  must(fd, name);
  must((int)cell_write_all(fd, data, strlen(data)), name);
  must(fchown(fd, uid, uid), name);
  must(fchmod(fd, mode), name);
  close(fd);
}

/* A root filesystem: etc/ (0), etc/hostname, home/user/ (1000) with
 * notes (1000, 0600), bin/sh -> busybox symlink, bin/busybox (0755). */
static int make_rootfs(const char *name) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/%s", base, name);
  must(mkdir(path, 0755), path);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fd, path);
  must(mkdirat(fd, "etc", 0755), "etc");
  write_file_at(fd, "etc/hostname", "cell\n", 0644, 0);
  must(mkdirat(fd, "home", 0755), "home");
  must(mkdirat(fd, "home/user", 0700), "home/user");
  must(fchownat(fd, "home/user", 1000, 1000, 0), "chown home/user");
  write_file_at(fd, "home/user/notes", "mine\n", 0600, 1000);
  must(mkdirat(fd, "bin", 0755), "bin");
  write_file_at(fd, "bin/busybox", "#!busybox\n", 0755, 0);
  must(symlinkat("busybox", fd, "bin/sh"), "bin/sh");
  return fd;
}

static const char *const rootfs_paths[] = {
    "etc", "etc/hostname", "home", "home/user", "home/user/notes",
    "bin", "bin/busybox", "bin/sh", NULL};

static char *read_at(int dirfd, const char *rel) {
  char *text = NULL;
  size_t len = 0;
  cleanup_error cell_error *err = NULL;
  if (cell_read_file_at(dirfd, rel, 0, &text, &len, &err) < 0)
    return NULL;
  return text;
}

/* The tree beneath b has what a's rootfs_paths are: types, modes, owners,
 * contents, link targets.  owners: compare uid/gid too. */
static bool same_tree(int a, int b, bool owners) {
  bool same = true;
  for (size_t i = 0; rootfs_paths[i]; i++) {
    const char *p = rootfs_paths[i];
    struct stat sa, sb;
    if (fstatat(a, p, &sa, AT_SYMLINK_NOFOLLOW) < 0 ||
        fstatat(b, p, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
      fprintf(stderr, "%s: missing\n", p);
      same = false;
      continue;
    }
    if (sa.st_mode != sb.st_mode ||
        (owners && (sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid))) {
      fprintf(stderr, "%s: %o %u:%u != %o %u:%u\n", p, sa.st_mode, sa.st_uid,
              sa.st_gid, sb.st_mode, sb.st_uid, sb.st_gid);
      same = false;
    }
    if (S_ISREG(sa.st_mode)) {
      cleanup_free char *ta = read_at(a, p), *tb = read_at(b, p);
      if (!ta || !tb || strcmp(ta, tb) != 0) {
        fprintf(stderr, "%s: contents differ\n", p);
        same = false;
      }
    }
    if (S_ISLNK(sa.st_mode)) {
      char la[64] = "", lb[64] = "";
      if (readlinkat(a, p, la, sizeof(la) - 1) < 0 ||
          readlinkat(b, p, lb, sizeof(lb) - 1) < 0 || strcmp(la, lb) != 0) {
        fprintf(stderr, "%s: link targets differ\n", p);
        same = false;
      }
    }
  }
  return same;
}

/* The import of fd into s with opts o; returns its id, or NULL with the
 * message in msg. */
static char *import(struct image_store *s, int fd,
                    const struct image_import_opts *o, char *msg,
                    size_t msglen) {
  char *id = NULL;
  cleanup_error cell_error *err = NULL;
  int r = image_import(s, fd, o, &id, &err);
  snprintf(msg, msglen, "%s", err ? err->msg : "");
  if (r < 0) {
    free(id);
    return NULL;
  }
  return id;
}

static const struct image *load(struct image_store *s, const char *id) {
  cleanup_error cell_error *err = NULL;
  const struct image *img = id ? image_store_load(s, id, &err) : NULL;
  if (err)
    fprintf(stderr, "image_store_load: %s\n", err->msg);
  return img;
}

static int open_layer(struct image_store *s, const char *digest) {
  const char *hex = image_id_hex(digest);
  return hex ? openat(s->layersfd, hex, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
             : -1;
}

static size_t n_layers(const struct image *img) {
  size_t n = 0;
  while (img && img->layers && img->layers[n])
    n++;
  return n;
}

/* ---- root filesystems ---------------------------------------------------- */

TEST(a_directory_is_one_layer_equal_to_it_and_imports_once) {
  cleanup_image_store struct image_store *s = new_store();
  cleanup_close int src = make_rootfs("rootfs-dir");
  struct image_import_opts o = {.source = "rootfs-dir"};
  char msg[1024];
  cleanup_free char *id = import(s, src, &o, msg, sizeof(msg));
  CHECK(id != NULL);
  CHECK_STR(msg, "");
  const struct image *img = load(s, id);
  CHECK(n_layers(img) == 1);
  if (n_layers(img) == 1) {
    CHECK_STR(img->source, "rootfs-dir");
    CHECK(img->imported != NULL);
    CHECK(img->architecture != NULL);
    CHECK(img->size == strlen("cell\n") + strlen("mine\n") +
                           strlen("#!busybox\n"));
    cleanup_close int layer = open_layer(s, img->layers[0]);
    CHECK(layer >= 0);
    CHECK(same_tree(src, layer, true));
  }
  CHECK(count_dir(s->dirfd, "layers") == 1);
  CHECK(count_dir(s->dirfd, "tmp") == 0);

  o.source = "again";
  cleanup_free char *again = import(s, src, &o, msg, sizeof(msg));
  CHECK_STR(again, id);
  CHECK(count_dir(s->dirfd, "layers") == 1);
  CHECK(count_dir(s->dirfd, "images") == 1);
  CHECK(count_dir(s->dirfd, "tmp") == 0);
}

/* A tar of the rootfs (written by libarchive from the tree, as `tar`
 * would) to path; filter "gzip" or NULL. */
static void tar_rootfs(int src, const char *path, const char *filter) {
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (filter)
    archive_write_add_filter_gzip(a);
  must(archive_write_open_filename(a, path) == ARCHIVE_OK ? 0 : -1, path);
  for (size_t i = 0; rootfs_paths[i]; i++) {
    const char *p = rootfs_paths[i];
    struct stat st;
    must(fstatat(src, p, &st, AT_SYMLINK_NOFOLLOW), p);
    struct archive_entry *e = archive_entry_new();
    cleanup_free char *name = xasprintf("./%s", p);
    archive_entry_set_pathname(e, name);
    archive_entry_copy_stat(e, &st);
    cleanup_free char *data = NULL;
    if (S_ISLNK(st.st_mode)) {
      char target[64] = "";
      must((int)readlinkat(src, p, target, sizeof(target) - 1), p);
      archive_entry_set_symlink(e, target);
      archive_entry_set_size(e, 0);
    } else if (S_ISREG(st.st_mode)) {
      data = read_at(src, p);
    } else {
      archive_entry_set_size(e, 0);
    }
    must(archive_write_header(a, e) == ARCHIVE_OK ? 0 : -1, p);
    if (data)
      archive_write_data(a, data, strlen(data));
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

static void import_tarball(const char *filter) {
  cleanup_image_store struct image_store *s = new_store();
  cleanup_close int src = make_rootfs(filter ? "rootfs-gz" : "rootfs-tar");
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/rootfs%d.tar%s", base, count++,
           filter ? ".gz" : "");
  tar_rootfs(src, path, filter);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  must(fd, path);
  struct image_import_opts o = {.source = path};
  char msg[1024];
  cleanup_free char *id = import(s, fd, &o, msg, sizeof(msg));
  CHECK(id != NULL);
  CHECK_STR(msg, "");
  const struct image *img = load(s, id);
  CHECK(n_layers(img) == 1);
  if (n_layers(img) == 1) {
    cleanup_close int layer = open_layer(s, img->layers[0]);
    CHECK(layer >= 0);
    CHECK(same_tree(src, layer, true));
  }
  CHECK(count_dir(s->dirfd, "tmp") == 0);
}

TEST(a_tarball_is_one_layer_with_its_files) { import_tarball(NULL); }
TEST(a_gzip_tarball_is_one_layer_with_its_files) { import_tarball("gzip"); }

TEST(a_tar_stream_through_a_pipe_is_spooled_and_imported) {
  cleanup_image_store struct image_store *s = new_store();
  cleanup_close int src = make_rootfs("rootfs-pipe");
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/pipe%d.tar", base, count++);
  tar_rootfs(src, path, NULL);
  int p[2];
  must(pipe2(p, O_CLOEXEC), "pipe");
  pid_t pid = fork();
  must(pid, "fork");
  if (pid == 0) {
    close(p[0]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char buf[4096];
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
      if (cell_write_all(p[1], buf, (size_t)n) < 0)
        _exit(1);
    _exit(fd < 0 ? 1 : 0);
  }
  close(p[1]);
  struct image_import_opts o = {.source = "-"};
  char msg[1024];
  cleanup_free char *id = import(s, p[0], &o, msg, sizeof(msg));
  close(p[0]);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(id != NULL);
  CHECK_STR(msg, "");
  const struct image *img = load(s, id);
  CHECK(n_layers(img) == 1);
  if (n_layers(img) == 1) {
    cleanup_close int layer = open_layer(s, img->layers[0]);
    CHECK(same_tree(src, layer, true));
  }
  CHECK(count_dir(s->dirfd, "tmp") == 0);
}

TEST(a_directory_the_importer_cannot_read_is_refused_and_leaves_nothing) {
  cleanup_image_store struct image_store *s = new_store();
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/unreadable", base);
  must(mkdir(path, 0755), path);
  cleanup_close int src = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(src, path);
  write_file_at(src, "a-public", "public\n", 0644, 0);
  write_file_at(src, "b-shadow", "secret\n", 0600, 0);
  struct image_import_opts o = {.read_uid = 65534, .read_gid = 65534};
  char msg[1024];
  cleanup_free char *id = import(s, src, &o, msg, sizeof(msg));
  CHECK(id == NULL);
  CHECK_CONTAINS(msg, "read the directory");
  CHECK_CONTAINS(msg, "b-shadow");
  CHECK_CONTAINS(msg, "Permission denied");
  CHECK(store_is_empty(s));

  /* Root reads it. */
  o.read_uid = o.read_gid = 0;
  cleanup_free char *ok = import(s, src, &o, msg, sizeof(msg));
  CHECK(ok != NULL);
}

TEST(an_image_past_the_size_limit_is_refused_and_leaves_nothing) {
  cleanup_image_store struct image_store *s = new_store();
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/big", base);
  must(mkdir(path, 0755), path);
  cleanup_close int src = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(src, path);
  size_t big = 1 << 20;
  char *data = xcalloc(big + 1, 1);
  memset(data, 'x', big);
  write_file_at(src, "big", data, 0644, 0);
  free(data);
  struct image_import_opts o = {.lim = {.max_bytes = 4096}};
  char msg[1024];
  /* A directory. */
  cleanup_free char *id = import(s, src, &o, msg, sizeof(msg));
  CHECK(id == NULL);
  CHECK_CONTAINS(msg, "past its limit of 4096 bytes");
  CHECK(strstr(msg, "Broken pipe") == NULL);
  CHECK(store_is_empty(s));
  /* A tarball of it. */
  snprintf(path, sizeof(path), "%s/big.tar", base);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  must(archive_write_open_filename(a, path) == ARCHIVE_OK ? 0 : -1, path);
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, "big");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)big);
  archive_write_header(a, e);
  char chunk[4096];
  memset(chunk, 'x', sizeof(chunk));
  for (size_t i = 0; i < big / sizeof(chunk); i++)
    archive_write_data(a, chunk, sizeof(chunk));
  archive_entry_free(e);
  archive_write_free(a);
  cleanup_close int tfd = open(path, O_RDONLY | O_CLOEXEC);
  must(tfd, path);
  cleanup_free char *id2 = import(s, tfd, &o, msg, sizeof(msg));
  CHECK(id2 == NULL);
  CHECK_CONTAINS(msg, "past its limit of 4096 bytes");
  CHECK(store_is_empty(s));
}

/* ---- OCI layouts ----------------------------------------------------------- */

#define LAYER_TYPE "application/vnd.oci.image.layer.v1.tar"
#define MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define CONFIG_TYPE "application/vnd.oci.image.config.v1+json"

static void sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  for (unsigned i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", md[i]);
}

static void write_at(int dirfd, const char *name, const void *data,
                     size_t len) {
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  must(fd, name);
  must((int)cell_write_all(fd, data, len), name);
  close(fd);
}

/* Store data as a blob of the layout; returns "sha256:<hex>". */
static char *add_blob(int fd, const void *data, size_t len) {
  char hex[65], path[96];
  sha256_hex(data, len, hex);
  snprintf(path, sizeof(path), "blobs/sha256/%s", hex);
  write_at(fd, path, data, len);
  return xasprintf("sha256:%s", hex);
}

struct ent {
  const char *path;
  bool dir;
  const char *data;
};

/* An uncompressed tar of ents in memory; *len its size. */
static void *tar_of(const struct ent *ents, size_t n, size_t *len) {
  size_t cap = 1 << 20;
  void *buf = xcalloc(cap, 1);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  must(archive_write_open_memory(a, buf, cap, len) == ARCHIVE_OK ? 0 : -1,
       "tar");
  for (size_t i = 0; i < n; i++) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, ents[i].path);
    archive_entry_set_filetype(e, ents[i].dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, ents[i].dir ? 0755 : 0644);
    archive_entry_set_mtime(e, 1000000000, 0);
    size_t dlen = ents[i].data ? strlen(ents[i].data) : 0;
    archive_entry_set_size(e, (la_int64_t)dlen);
    must(archive_write_header(a, e) == ARCHIVE_OK ? 0 : -1, ents[i].path);
    if (dlen)
      archive_write_data(a, ents[i].data, dlen);
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return buf;
}

static const struct ent lower[] = {
    {"etc/", true, NULL},
    {"etc/a", false, "a\n"},
    {"etc/b", false, "b\n"},
    {"opq/", true, NULL},
    {"opq/x", false, "x\n"},
};
static const struct ent upper[] = {
    {"etc/", true, NULL},
    {"etc/.wh.a", false, NULL},
    {"opq/", true, NULL},
    {"opq/.wh..wh..opq", false, NULL},
    {"opq/y", false, "y\n"},
};

enum layout_kind {
  LAYOUT_GOOD,
  LAYOUT_BAD_DIFF_ID, /* the config's second diff_id is not upper's */
  LAYOUT_NO_DIFF_IDS, /* the config has no rootfs.diff_ids */
  LAYOUT_NO_LAYERS,   /* the manifest lists no layer, the config none */
};

/* A layout of lower and upper with a config, damaged as kind says.
 * *diff_ids gets the two layers' true digests. */
static int oci_layout(enum layout_kind kind, char *diff_ids[2]) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/layout%d", base, count++);
  must(mkdir(path, 0755), path);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fd, path);
  must(mkdirat(fd, "blobs", 0755), "blobs");
  must(mkdirat(fd, "blobs/sha256", 0755), "blobs/sha256");
  const char *v = "{\"imageLayoutVersion\":\"1.0.0\"}";
  write_at(fd, "oci-layout", v, strlen(v));
  size_t l0len, l1len;
  cleanup_free void *l0 = tar_of(lower, sizeof(lower) / sizeof(lower[0]), &l0len);
  cleanup_free void *l1 = tar_of(upper, sizeof(upper) / sizeof(upper[0]), &l1len);
  diff_ids[0] = add_blob(fd, l0, l0len);
  diff_ids[1] = add_blob(fd, l1, l1len);
  cleanup_free char *wrong = xasprintf("sha256:%064d", 0);
  cleanup_free char *rootfs =
      kind == LAYOUT_NO_DIFF_IDS ? xstrdup("")
      : kind == LAYOUT_NO_LAYERS ? xstrdup(",\"diff_ids\":[]")
                                 : xasprintf(",\"diff_ids\":[\"%s\",\"%s\"]",
                                             diff_ids[0],
                                             kind == LAYOUT_BAD_DIFF_ID
                                                 ? wrong
                                                 : diff_ids[1]);
  cleanup_free char *config = xasprintf(
      "{\"architecture\":\"arm64\",\"os\":\"linux\","
      "\"created\":\"2026-12-06T12:00:00Z\",\"config\":{"
      "\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"
      "\"Env\":[\"PATH=/bin\",\"LANG=C.UTF-8\"],\"WorkingDir\":\"/srv\"},"
      "\"rootfs\":{\"type\":\"layers\"%s}}", rootfs);
  cleanup_free char *cd = add_blob(fd, config, strlen(config));
  cleanup_free char *layers =
      kind == LAYOUT_NO_LAYERS
          ? xstrdup("")
          : xasprintf(
                "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},"
                "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}",
                LAYER_TYPE, diff_ids[0], l0len, LAYER_TYPE, diff_ids[1],
                l1len);
  cleanup_free char *manifest = xasprintf(
      "{\"schemaVersion\":2,\"mediaType\":\"%s\","
      "\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},"
      "\"layers\":[%s]}",
      MANIFEST_TYPE, CONFIG_TYPE, cd, strlen(config), layers);
  cleanup_free char *md = add_blob(fd, manifest, strlen(manifest));
  cleanup_free char *index = xasprintf(
      "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\","
      "\"digest\":\"%s\",\"size\":%zu}]}",
      MANIFEST_TYPE, md, strlen(manifest));
  write_at(fd, "index.json", index, strlen(index));
  return fd;
}

static bool is_overlay_whiteout(int dirfd, const char *rel) {
  struct stat st;
  return fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0) &&
         st.st_uid == 0 && st.st_gid == 0;
}

static bool is_opaque(int dirfd, const char *rel) {
  char v[8] = "";
  cleanup_close int fd =
      openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return fd >= 0 && fgetxattr(fd, "trusted.overlay.opaque", v, 1) == 1 &&
         v[0] == 'y';
}

static bool exists_at(int dirfd, const char *rel) {
  struct stat st;
  return fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool strv_is(char *const *v, const char *a, const char *b) {
  return v && v[0] && strcmp(v[0], a) == 0 &&
         (b ? v[1] && strcmp(v[1], b) == 0 && !v[2] : !v[1]);
}

struct progress_log {
  char steps[64][8];
  unsigned layer[64], layers[64];
  uint64_t bytes[64], total[64];
  size_t n;
};

static void log_progress(void *ctx, const struct image_import_progress *p) {
  struct progress_log *l = ctx;
  if (l->n < 64) {
    snprintf(l->steps[l->n], sizeof(l->steps[0]), "%s", p->step);
    l->layer[l->n] = p->layer;
    l->layers[l->n] = p->layers;
    l->bytes[l->n] = p->bytes;
    l->total[l->n] = p->total;
    l->n++;
  }
}

TEST(an_oci_layout_imports_its_layers_in_overlay_form_and_its_config) {
  cleanup_image_store struct image_store *s = new_store();
  char *diff_ids[2];
  cleanup_close int src = oci_layout(LAYOUT_GOOD, diff_ids);
  struct progress_log log = {0};
  struct image_import_opts o = {.source = "layout", .progress = log_progress,
                                .progress_ctx = &log};
  char msg[1024];
  cleanup_free char *id = import(s, src, &o, msg, sizeof(msg));
  CHECK(id != NULL);
  CHECK_STR(msg, "");
  const struct image *img = load(s, id);
  CHECK(n_layers(img) == 2);
  if (n_layers(img) == 2) {
    CHECK_STR(img->layers[0], diff_ids[0]);
    CHECK_STR(img->layers[1], diff_ids[1]);
    cleanup_close int l0 = open_layer(s, img->layers[0]);
    cleanup_close int l1 = open_layer(s, img->layers[1]);
    CHECK(l0 >= 0 && l1 >= 0);
    cleanup_free char *a = read_at(l0, "etc/a");
    CHECK_STR(a, "a\n");
    CHECK(exists_at(l0, "opq/x"));
    CHECK(is_overlay_whiteout(l1, "etc/a"));
    CHECK(!exists_at(l1, "etc/.wh.a"));
    CHECK(is_opaque(l1, "opq"));
    CHECK(!is_opaque(l0, "opq"));
    CHECK(!exists_at(l1, "opq/.wh..wh..opq"));
    cleanup_free char *y = read_at(l1, "opq/y");
    CHECK_STR(y, "y\n");
    CHECK(strv_is(img->entrypoint, "/bin/sh", "-c"));
    CHECK(strv_is(img->cmd, "echo hi", NULL));
    CHECK(strv_is(img->env, "PATH=/bin", "LANG=C.UTF-8"));
    CHECK_STR(img->working_dir, "/srv");
    CHECK(img->user == NULL);
    CHECK_STR(img->architecture, "arm64");
    CHECK_STR(img->created, "2026-12-06T12:00:00Z");
    CHECK_STR(img->source, "layout");
    CHECK(img->size == 8);
  }
  CHECK(count_dir(s->dirfd, "layers") == 2);
  CHECK(count_dir(s->dirfd, "tmp") == 0);

  /* Progress: each layer, 1 of 2 and 2 of 2, then done, last. */
  bool saw1 = false, saw2 = false;
  for (size_t i = 0; i < log.n; i++) {
    if (strcmp(log.steps[i], "layer") == 0 && log.layers[i] == 2) {
      saw1 |= log.layer[i] == 1;
      saw2 |= log.layer[i] == 2;
    }
  }
  CHECK(saw1 && saw2);
  CHECK(log.n > 0 && strcmp(log.steps[log.n - 1], "done") == 0);
  size_t dones = 0;
  for (size_t i = 0; i < log.n; i++)
    dones += strcmp(log.steps[i], "done") == 0;
  CHECK(dones == 1);

  /* The layout read as a member's (tarred with the member's ids, then
   * read as an oci-archive): the same image. */
  o.read_uid = o.read_gid = 65534;
  o.progress = NULL;
  cleanup_free char *as_member = import(s, src, &o, msg, sizeof(msg));
  CHECK_STR(msg, "");
  CHECK_STR(as_member, id);
  CHECK(count_dir(s->dirfd, "layers") == 2);
  free(diff_ids[0]);
  free(diff_ids[1]);
}

TEST(a_layout_whose_config_names_another_layer_is_refused) {
  cleanup_image_store struct image_store *s = new_store();
  char *diff_ids[2];
  cleanup_close int src = oci_layout(LAYOUT_BAD_DIFF_ID, diff_ids);
  struct progress_log log = {0};
  struct image_import_opts o = {.progress = log_progress,
                                .progress_ctx = &log};
  char msg[1024];
  cleanup_free char *id = import(s, src, &o, msg, sizeof(msg));
  CHECK(id == NULL);
  CHECK_CONTAINS(msg, "layer 2 of 2");
  CHECK_CONTAINS(msg, "the image is corrupt or forged");
  CHECK(store_is_empty(s));
  for (size_t i = 0; i < log.n; i++)
    CHECK(strcmp(log.steps[i], "done") != 0);
  free(diff_ids[0]);
  free(diff_ids[1]);
}

TEST(a_layout_whose_config_has_no_diff_ids_is_refused) {
  cleanup_image_store struct image_store *s = new_store();
  char *diff_ids[2];
  cleanup_close int src = oci_layout(LAYOUT_NO_DIFF_IDS, diff_ids);
  struct image_import_opts o = {0};
  char msg[1024];
  cleanup_free char *id = import(s, src, &o, msg, sizeof(msg));
  CHECK(id == NULL);
  CHECK_CONTAINS(msg, "no rootfs.diff_ids");
  CHECK(store_is_empty(s));
  free(diff_ids[0]);
  free(diff_ids[1]);
}

TEST(a_layout_of_no_layers_is_refused) {
  cleanup_image_store struct image_store *s = new_store();
  char *diff_ids[2];
  cleanup_close int src = oci_layout(LAYOUT_NO_LAYERS, diff_ids);
  struct image_import_opts o = {0};
  char msg[1024];
  cleanup_free char *id = import(s, src, &o, msg, sizeof(msg));
  CHECK(id == NULL);
  CHECK_CONTAINS(msg, "no layers");
  CHECK(store_is_empty(s));
  /* The store still opens. */
  struct image_store *again = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(image_store_open(s->dir, &again, &err) == 0);
  image_store_free(again);
  free(diff_ids[0]);
  free(diff_ids[1]);
}

/* The layout at fd tarred (an oci-archive) into a new file of base;
 * returns it open for reading. */
static int tar_of_layout(int fd) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/oci-archive%d.tar", base, count++);
  int out = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  must(out, path);
  cleanup_error cell_error *err = NULL;
  if (tree_archive_write(fd, out, NULL, &err) < 0) {
    fprintf(stderr, "tree_archive_write: %s\n", err->msg);
    exit(2);
  }
  must((int)lseek(out, 0, SEEK_SET), path);
  return out;
}

TEST(an_oci_archive_is_told_from_a_rootfs_and_is_the_layouts_image) {
  cleanup_image_store struct image_store *s = new_store();
  char *diff_ids[2];
  cleanup_close int layout = oci_layout(LAYOUT_GOOD, diff_ids);
  struct image_import_opts o = {.source = "layout"};
  char msg[1024];
  cleanup_free char *from_layout = import(s, layout, &o, msg, sizeof(msg));
  CHECK(from_layout != NULL);
  cleanup_close int tfd = tar_of_layout(layout);
  o.source = "oci-archive";
  cleanup_free char *from_archive = import(s, tfd, &o, msg, sizeof(msg));
  CHECK_STR(msg, "");
  /* Not one layer holding oci-layout and blobs/: the same two layers. */
  CHECK_STR(from_archive, from_layout);
  CHECK(count_dir(s->dirfd, "images") == 1);
  CHECK(count_dir(s->dirfd, "layers") == 2);
  CHECK(count_dir(s->dirfd, "tmp") == 0);
  free(diff_ids[0]);
  free(diff_ids[1]);
}

TEST(a_pipe_past_the_size_limit_is_refused_while_spooling) {
  cleanup_image_store struct image_store *s = new_store();
  int p[2];
  must(pipe2(p, O_CLOEXEC), "pipe");
  pid_t pid = fork();
  must(pid, "fork");
  if (pid == 0) {
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    char buf[4096];
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < 256; i++)
      if (cell_write_all(p[1], buf, sizeof(buf)) < 0)
        _exit(0);
    _exit(0);
  }
  close(p[1]);
  struct image_import_opts o = {.lim = {.max_bytes = 65536}};
  char msg[1024];
  cleanup_free char *id = import(s, p[0], &o, msg, sizeof(msg));
  close(p[0]);
  waitpid(pid, NULL, 0);
  CHECK(id == NULL);
  CHECK_CONTAINS(msg, "larger than the image size limit (65536 bytes");
  CHECK(store_is_empty(s));
}

TEST(a_directory_past_the_entry_limit_is_refused_and_leaves_nothing) {
  cleanup_image_store struct image_store *s = new_store();
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/many", base);
  must(mkdir(path, 0755), path);
  cleanup_close int src = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(src, path);
  for (int i = 0; i < 2000; i++) {
    char name[32];
    snprintf(name, sizeof(name), "f%04d", i);
    write_file_at(src, name, "", 0644, 0);
  }
  struct image_import_opts o = {.lim = {.max_entries = 100}};
  char msg[1024];
  cleanup_free char *id = import(s, src, &o, msg, sizeof(msg));
  CHECK(id == NULL);
  CHECK_CONTAINS(msg, "more than 100 entries");
  CHECK(strstr(msg, "Broken pipe") == NULL);
  CHECK(store_is_empty(s));
}

TEST(a_file_that_is_no_archive_is_refused_and_leaves_nothing) {
  cleanup_image_store struct image_store *s = new_store();
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/junk", base);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  must(fd, path);
  char junk[4096];
  for (size_t i = 0; i < sizeof(junk); i++)
    junk[i] = (char)(i * 7 + 1);
  must((int)cell_write_all(fd, junk, sizeof(junk)), path);
  must((int)lseek(fd, 0, SEEK_SET), path);
  struct image_import_opts o = {0};
  char msg[1024];
  cleanup_free char *id = import(s, fd, &o, msg, sizeof(msg));
  close(fd);
  CHECK(id == NULL);
  CHECK_CONTAINS(msg, "not an archive libarchive can read");
  CHECK(store_is_empty(s));
}

TEST(progress_of_a_rootfs_is_one_layer_then_done) {
  cleanup_image_store struct image_store *s = new_store();
  cleanup_close int src = make_rootfs("rootfs-progress");
  struct progress_log log = {0};
  struct image_import_opts o = {.progress = log_progress,
                                .progress_ctx = &log};
  char msg[1024];
  cleanup_free char *id = import(s, src, &o, msg, sizeof(msg));
  CHECK(id != NULL);
  /* The layer as it begins (and as it goes, on a slow machine), then done
   * with all of it. */
  CHECK(log.n >= 2 && log.n < 64);
  for (size_t i = 0; i + 1 < log.n; i++) {
    CHECK_STR(log.steps[i], "layer");
    CHECK(log.layer[i] == 1 && log.layers[i] == 1);
    CHECK(i == 0 || log.bytes[i] >= log.bytes[i - 1]);
  }
  CHECK_STR(log.steps[log.n - 1], "done");
  CHECK(log.bytes[log.n - 1] == log.total[log.n - 1]);
}

int main(void) {
  if (geteuid() != 0) {
    fprintf(stderr, "test-image-import: runs as root only (owners, "
                    "trusted.* xattrs, setuid readers)\n");
    return 77;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(base, sizeof(base), "%s/cell-image-import-XXXXXX",
           tmp ? tmp : "/tmp");
  if (!mkdtemp(base)) {
    perror("mkdtemp");
    return 2;
  }
  /* The unprivileged reader must reach the sources. */
  must(chmod(base, 0755), base);
  RUN(a_directory_is_one_layer_equal_to_it_and_imports_once);
  RUN(a_tarball_is_one_layer_with_its_files);
  RUN(a_gzip_tarball_is_one_layer_with_its_files);
  RUN(a_tar_stream_through_a_pipe_is_spooled_and_imported);
  RUN(a_directory_the_importer_cannot_read_is_refused_and_leaves_nothing);
  RUN(an_image_past_the_size_limit_is_refused_and_leaves_nothing);
  RUN(an_oci_layout_imports_its_layers_in_overlay_form_and_its_config);
  RUN(a_layout_whose_config_names_another_layer_is_refused);
  RUN(a_layout_whose_config_has_no_diff_ids_is_refused);
  RUN(a_layout_of_no_layers_is_refused);
  RUN(an_oci_archive_is_told_from_a_rootfs_and_is_the_layouts_image);
  RUN(a_pipe_past_the_size_limit_is_refused_while_spooling);
  RUN(a_directory_past_the_entry_limit_is_refused_and_leaves_nothing);
  RUN(a_file_that_is_no_archive_is_refused_and_leaves_nothing);
  RUN(progress_of_a_rootfs_is_one_layer_then_done);
  cleanup_error cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, base, &err) < 0)
    fprintf(stderr, "cleanup: %s\n", err->msg);
  UNIT_DONE();
}
