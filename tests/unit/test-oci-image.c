/* oci_image_read_layout against small layouts written here: JSON and
 * blobs whose digests the test computes, then damaged one way at a time. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "storage/oci-archive.h"
#include "storage/oci-image.h"
#include "unit.h"

#define LAYER_TYPE "application/vnd.oci.image.layer.v1.tar"
#define GZIP_TYPE "application/vnd.oci.image.layer.v1.tar+gzip"
#define MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define INDEX_TYPE "application/vnd.oci.image.index.v1+json"
#define CONFIG_TYPE "application/vnd.oci.image.config.v1+json"

static char base[PATH_MAX];
static int layout_count;

static void must(int r, const char *what) {
  if (r < 0) {
    perror(what);
    exit(2);
  }
}

static void sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  for (unsigned i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", md[i]);
}

static void write_at(int dirfd, const char *name, const char *data, size_t len) {
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  must(fd, name);
  must((int)cell_write_all(fd, data, len), name);
  close(fd);
}

/* A fresh layout directory with oci-layout and blobs/sha256/. */
static int new_layout(void) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/layout%d", base, layout_count++);
  must(mkdir(path, 0755), path);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fd, path);
  must(mkdirat(fd, "blobs", 0755), "blobs");
  must(mkdirat(fd, "blobs/sha256", 0755), "blobs/sha256");
  const char *v = "{\"imageLayoutVersion\":\"1.0.0\"}";
  write_at(fd, "oci-layout", v, strlen(v));
  return fd;
}

/* Store data as a blob; *digest gets "sha256:<hex>" (caller frees). */
static char *add_blob(int fd, const char *data, size_t len) {
  char hex[65], path[96];
  sha256_hex(data, len, hex);
  snprintf(path, sizeof(path), "blobs/sha256/%s", hex);
  write_at(fd, path, data, len);
  return xasprintf("sha256:%s", hex);
}

static char *descriptor(const char *type, const char *digest, size_t size) {
  return xasprintf("{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}",
                   type, digest, size);
}

/* A manifest of n layers "layer <i>" of type layer_type, with a config;
 * returns the manifest's descriptor JSON. */
static char *add_image(int fd, size_t n, const char *layer_type) {
  cleanup_free char *layers = xstrdup("");
  cleanup_free char *diff_ids = xstrdup("");
  for (size_t i = 0; i < n; i++) {
    char content[32];
    snprintf(content, sizeof(content), "layer %zu", i);
    cleanup_free char *d = add_blob(fd, content, strlen(content));
    cleanup_free char *desc = descriptor(layer_type, d, strlen(content));
    char *l = xasprintf("%s%s%s", layers, i ? "," : "", desc);
    free(layers);
    layers = l;
    char *ids = xasprintf("%s%s\"%s\"", diff_ids, i ? "," : "", d);
    free(diff_ids);
    diff_ids = ids;
  }
  cleanup_free char *config = xasprintf(
      "{\"architecture\":\"amd64\",\"os\":\"linux\","
      "\"created\":\"2026-12-06T12:00:00Z\",\"config\":{"
      "\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"
      "\"Env\":[\"PATH=/bin\"],\"WorkingDir\":\"/srv\",\"User\":\"1000\","
      "\"Labels\":{\"a\":\"b\"}},"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
      diff_ids);
  cleanup_free char *cd = add_blob(fd, config, strlen(config));
  cleanup_free char *cdesc = descriptor(CONFIG_TYPE, cd, strlen(config));
  cleanup_free char *manifest = xasprintf(
      "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":%s,"
      "\"layers\":[%s]}",
      MANIFEST_TYPE, cdesc, layers);
  cleanup_free char *md = add_blob(fd, manifest, strlen(manifest));
  return descriptor(MANIFEST_TYPE, md, strlen(manifest));
}

static void write_index(int fd, const char *entries) {
  cleanup_free char *index =
      xasprintf("{\"schemaVersion\":2,\"manifests\":[%s]}", entries);
  write_at(fd, "index.json", index, strlen(index));
}

/* A layout holding one image of n layers; returns its fd. */
static int simple_layout(size_t n, const char *layer_type) {
  int fd = new_layout();
  cleanup_free char *m = add_image(fd, n, layer_type);
  write_index(fd, m);
  return fd;
}

/* Read the layout expecting failure; returns the message (caller frees). */
static char *read_fails(int fd, const char *ref) {
  struct oci_image *img = NULL;
  cell_error *err = NULL;
  int r = oci_image_read_layout(fd, ref, &img, &err);
  CHECK(r < 0);
  CHECK(img == NULL);
  oci_image_free(img);
  char *msg = err ? xstrdup(err->msg) : xstrdup("(no error)");
  cell_error_free(&err);
  return msg;
}

static char *nth_layer_digest(size_t i) {
  char content[32], hex[65];
  snprintf(content, sizeof(content), "layer %zu", i);
  sha256_hex(content, strlen(content), hex);
  return xasprintf("sha256:%s", hex);
}

TEST(good_layout) {
  cleanup_close int fd = simple_layout(3, LAYER_TYPE);
  cleanup_oci_image struct oci_image *img = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(oci_image_read_layout(fd, NULL, &img, &err) == 0);
  if (!img) {
    fprintf(stderr, "%s\n", err ? err->msg : "?");
    return;
  }
  CHECK(img->n_layers == 3);
  for (size_t i = 0; i < img->n_layers; i++) {
    cleanup_free char *want = nth_layer_digest(i);
    CHECK_STR(img->layers[i].digest, want);
    CHECK(img->layers[i].compression == OCI_COMPRESSION_NONE);
    char buf[32] = {0};
    CHECK(read(img->layers[i].fd, buf, sizeof(buf) - 1) == 7);
    char content[32];
    snprintf(content, sizeof(content), "layer %zu", i);
    CHECK_STR(buf, content);
    CHECK_STR(img->config.diff_ids[i], want);
  }
  CHECK(img->config_digest != NULL);
  CHECK_STR(img->config.architecture, "amd64");
  CHECK_STR(img->config.os, "linux");
  CHECK_STR(img->config.entrypoint[0], "/bin/sh");
  CHECK_STR(img->config.cmd[0], "echo hi");
  CHECK_STR(img->config.env[0], "PATH=/bin");
  CHECK_STR(img->config.working_dir, "/srv");
  CHECK_STR(img->config.user, "1000");
  CHECK_STR(img->config.labels[0], "a=b");
  CHECK_STR(img->config.created, "2026-12-06T12:00:00Z");
}

TEST(gzip_layer_type) {
  cleanup_close int fd = simple_layout(1, GZIP_TYPE);
  cleanup_oci_image struct oci_image *img = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(oci_image_read_layout(fd, NULL, &img, &err) == 0);
  CHECK(img && img->layers[0].compression == OCI_COMPRESSION_GZIP);
}

TEST(nested_image_index) {
  cleanup_close int fd = new_layout();
  cleanup_free char *m = add_image(fd, 2, LAYER_TYPE);
  /* An arm64 entry that points nowhere: it must not be chosen. */
  cleanup_free char *entries = xasprintf(
      "{\"mediaType\":\"%s\",\"digest\":\"sha256:%064d\",\"size\":1,"
      "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
      "%.*s,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}",
      MANIFEST_TYPE, 0, (int)strlen(m) - 1, m);
  cleanup_free char *nested =
      xasprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[%s]}",
                INDEX_TYPE, entries);
  cleanup_free char *nd = add_blob(fd, nested, strlen(nested));
  cleanup_free char *top = xasprintf(
      "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
      "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}",
      INDEX_TYPE, nd, strlen(nested));
  write_index(fd, top);
  cleanup_oci_image struct oci_image *img = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(oci_image_read_layout(fd, "v1", &img, &err) == 0);
  if (err)
    fprintf(stderr, "%s\n", err->msg);
  CHECK(img && img->n_layers == 2);
  cleanup_free char *msg = read_fails(fd, "v2");
  CHECK_CONTAINS(msg, "no image named `v2`");
}

TEST(several_images_need_a_ref) {
  cleanup_close int fd = new_layout();
  cleanup_free char *a = add_image(fd, 1, LAYER_TYPE);
  cleanup_free char *b = add_image(fd, 2, GZIP_TYPE);
  cleanup_free char *entries = xasprintf(
      "%.*s,\"annotations\":{\"org.opencontainers.image.ref.name\":\"a\"}},"
      "%.*s,\"annotations\":{\"org.opencontainers.image.ref.name\":\"b\"}}",
      (int)strlen(a) - 1, a, (int)strlen(b) - 1, b);
  write_index(fd, entries);
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "name one with a ref");
  cleanup_oci_image struct oci_image *img = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(oci_image_read_layout(fd, "b", &img, &err) == 0);
  CHECK(img && img->n_layers == 2);
}

/* Replace the content of layer i's blob (same name, so same claimed
 * digest) with data. */
static void damage_layer(int fd, size_t i, const char *data) {
  cleanup_free char *d = nth_layer_digest(i);
  char path[96];
  snprintf(path, sizeof(path), "blobs/sha256/%s", d + 7);
  write_at(fd, path, data, strlen(data));
}

TEST(wrong_digest_is_refused) {
  cleanup_close int fd = simple_layout(3, LAYER_TYPE);
  damage_layer(fd, 1, "LAYER 1"); /* same size, other bytes */
  cleanup_free char *d = nth_layer_digest(1);
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "layer 1 blob");
  CHECK_CONTAINS(msg, d);
  CHECK_CONTAINS(msg, "its content has digest");
}

TEST(wrong_size_is_refused) {
  cleanup_close int fd = simple_layout(2, LAYER_TYPE);
  damage_layer(fd, 0, "layer 0 and more");
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "layer 0 blob");
  CHECK_CONTAINS(msg, "16 bytes where the manifest says 7");
}

TEST(symlinked_blob_is_refused) {
  cleanup_close int fd = simple_layout(2, LAYER_TYPE);
  cleanup_free char *d = nth_layer_digest(1);
  char path[96], outside[PATH_MAX + 16];
  snprintf(path, sizeof(path), "blobs/sha256/%s", d + 7);
  snprintf(outside, sizeof(outside), "%s/outside", base);
  write_at(AT_FDCWD, outside, "layer 1", 7); /* even the right content */
  must(unlinkat(fd, path, 0), path);
  must(symlinkat(outside, fd, path), path);
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "layer 1 blob");
  CHECK_CONTAINS(msg, "symlink");
}

TEST(symlinked_blobs_dir_is_refused) {
  cleanup_close int fd = simple_layout(1, LAYER_TYPE);
  must(renameat(fd, "blobs", fd, "real-blobs"), "rename");
  must(symlinkat("real-blobs", fd, "blobs"), "symlink");
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "symlink");
}

TEST(too_many_layers) {
  cleanup_close int fd = simple_layout(200, LAYER_TYPE);
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "200 layers, more than the 128 allowed");
}

TEST(missing_blob) {
  cleanup_close int fd = simple_layout(2, LAYER_TYPE);
  cleanup_free char *d = nth_layer_digest(0);
  char path[96];
  snprintf(path, sizeof(path), "blobs/sha256/%s", d + 7);
  must(unlinkat(fd, path, 0), path);
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "layer 0 blob");
  CHECK_CONTAINS(msg, d);
}

TEST(foreign_layer) {
  cleanup_close int fd = simple_layout(
      1, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip");
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "foreign (non-distributable) layer");
  cleanup_close int fd2 = simple_layout(1, "text/plain");
  cleanup_free char *msg2 = read_fails(fd2, NULL);
  CHECK_CONTAINS(msg2, "is not a tar layer");
}

TEST(bad_digest_syntax) {
  cleanup_close int fd = new_layout();
  write_index(fd, "{\"mediaType\":\"" MANIFEST_TYPE "\",\"digest\":"
                  "\"sha256:../../../etc/passwd\",\"size\":1}");
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "is not sha256:<64 lowercase hex>");
}

TEST(not_a_layout) {
  cleanup_close int fd = new_layout();
  must(unlinkat(fd, "oci-layout", 0), "oci-layout");
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "not an OCI image layout");
}

TEST(oversized_manifest) {
  cleanup_close int fd = new_layout();
  cleanup_free char *idx = xasprintf(
      "{\"mediaType\":\"%s\",\"digest\":\"sha256:%064d\",\"size\":%u}",
      MANIFEST_TYPE, 0, OCI_IMAGE_MAX_JSON + 1);
  write_index(fd, idx);
  cleanup_free char *msg = read_fails(fd, NULL);
  CHECK_CONTAINS(msg, "more than the 4194304 allowed");
}

/* ---- oci-archive --------------------------------------------------------- */

static void tar_add(struct archive *a, const char *name, mode_t type,
                    const char *data, size_t len) {
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, 0644);
  if (type == AE_IFLNK)
    archive_entry_set_symlink(e, data);
  archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)len : 0);
  must(archive_write_header(a, e) == ARCHIVE_OK ? 0 : -1, name);
  if (type == AE_IFREG)
    must(archive_write_data(a, data, len) == (la_ssize_t)len ? 0 : -1, name);
  archive_entry_free(e);
}

static void tar_add_file(struct archive *a, int dirfd, const char *path,
                         const char *as) {
  char *data = NULL;
  size_t len = 0;
  cleanup_error cell_error *err = NULL;
  must(cell_read_file_at(dirfd, path, 0, &data, &len, &err), path);
  tar_add(a, as, AE_IFREG, data, len);
  free(data);
}

/* Tar the layout fd into a file of base; extra adds hostile entries.
 * Returns the tarball's fd, open for reading. */
static int tar_layout(int fd, bool extra, bool duplicate) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/archive%d.tar", base, layout_count++);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  must(archive_write_open_filename(a, path) == ARCHIVE_OK ? 0 : -1, path);
  tar_add_file(a, fd, "oci-layout", "./oci-layout");
  tar_add_file(a, fd, "index.json", "index.json");
  tar_add(a, "blobs/", AE_IFDIR, NULL, 0);
  if (extra) {
    tar_add(a, "../escape", AE_IFREG, "x", 1);
    tar_add(a, "/tmp/escape", AE_IFREG, "x", 1);
    tar_add(a, "blobs/sha256/link", AE_IFLNK, "/etc/passwd", 0);
    tar_add(a, "blobs/sha256/../../escape", AE_IFREG, "x", 1);
  }
  DIR *d = fdopendir(openat(fd, "blobs/sha256", O_RDONLY | O_DIRECTORY));
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    char name[300];
    snprintf(name, sizeof(name), "blobs/sha256/%s", de->d_name);
    tar_add_file(a, fd, name, name);
    if (duplicate)
      tar_add_file(a, fd, name, name);
  }
  closedir(d);
  archive_write_free(a);
  int tfd = open(path, O_RDONLY | O_CLOEXEC);
  must(tfd, path);
  return tfd;
}

static int open_workdir(void) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/work%d", base, layout_count++);
  must(mkdir(path, 0700), path);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fd, path);
  return fd;
}

static bool dir_is_empty(int dirfd) {
  DIR *d = fdopendir(fcntl(dirfd, F_DUPFD_CLOEXEC, 3));
  struct dirent *de;
  bool empty = true;
  rewinddir(d);
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      empty = false;
  closedir(d);
  return empty;
}

TEST(oci_archive) {
  cleanup_close int fd = simple_layout(3, GZIP_TYPE);
  cleanup_close int tfd = tar_layout(fd, true, false);
  cleanup_close int work = open_workdir();
  cleanup_oci_image struct oci_image *img = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(oci_image_read_oci_archive(tfd, work, NULL, &img, &err) == 0);
  if (err)
    fprintf(stderr, "%s\n", err->msg);
  CHECK(img && img->n_layers == 3);
  if (img) {
    char buf[16] = {0};
    CHECK(read(img->layers[2].fd, buf, sizeof(buf) - 1) == 7);
    CHECK_STR(buf, "layer 2"); /* still readable, its name removed */
  }
  CHECK(dir_is_empty(work));
  char escape[PATH_MAX + 16];
  snprintf(escape, sizeof(escape), "%s/escape", base);
  CHECK(access(escape, F_OK) < 0);
}

TEST(oci_archive_duplicate_entry) {
  cleanup_close int fd = simple_layout(1, LAYER_TYPE);
  cleanup_close int tfd = tar_layout(fd, false, true);
  cleanup_close int work = open_workdir();
  struct oci_image *img = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(oci_image_read_oci_archive(tfd, work, NULL, &img, &err) < 0);
  CHECK(err && strstr(err->msg, "is in the archive twice"));
  CHECK(dir_is_empty(work));
}

TEST(oci_archive_not_a_tar) {
  cleanup_close int work = open_workdir();
  char path[PATH_MAX + 16];
  snprintf(path, sizeof(path), "%s/junk", base);
  write_at(AT_FDCWD, path, "this is no tar archive at all", 29);
  cleanup_close int tfd = open(path, O_RDONLY | O_CLOEXEC);
  struct oci_image *img = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(oci_image_read_oci_archive(tfd, work, NULL, &img, &err) < 0);
  CHECK(err != NULL);
  CHECK(dir_is_empty(work));
}

/* ---- docker-archive ------------------------------------------------------ */

/* A docker-archive of one layer: "<hex>.tar" (content), "<hex>.json"
 * config whose diff_id is diff_id (or the layer's true digest when NULL),
 * and manifest.json naming layer_name (or the true one when NULL). */
static int docker_tar(const char *content, const char *diff_id,
                      const char *layer_name) {
  char hex[65], path[PATH_MAX + 32];
  sha256_hex(content, strlen(content), hex);
  cleanup_free char *true_name = xasprintf("%s.tar", hex);
  cleanup_free char *config = xasprintf(
      "{\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]},"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s%s\"]}}",
      diff_id ? "" : "sha256:", diff_id ? diff_id : hex);
  char chex[65];
  sha256_hex(config, strlen(config), chex);
  cleanup_free char *config_name = xasprintf("%s.json", chex);
  cleanup_free char *manifest = xasprintf(
      "[{\"Config\":\"%s\",\"RepoTags\":[\"t:1\"],\"Layers\":[\"%s\"]}]",
      config_name, layer_name ? layer_name : true_name);
  snprintf(path, sizeof(path), "%s/docker%d.tar", base, layout_count++);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  must(archive_write_open_filename(a, path) == ARCHIVE_OK ? 0 : -1, path);
  tar_add(a, true_name, AE_IFREG, content, strlen(content));
  tar_add(a, config_name, AE_IFREG, config, strlen(config));
  tar_add(a, "manifest.json", AE_IFREG, manifest, strlen(manifest));
  archive_write_free(a);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  must(fd, path);
  return fd;
}

static char *docker_read(int tfd, const char *ref, struct oci_image **img) {
  cleanup_close int work = open_workdir();
  cell_error *err = NULL;
  int r = oci_image_read_docker_archive(tfd, work, ref, img, &err);
  CHECK(dir_is_empty(work));
  char *msg = r < 0 ? xstrdup(err ? err->msg : "?") : NULL;
  cell_error_free(&err);
  return msg;
}

TEST(docker_archive) {
  cleanup_close int tfd = docker_tar("layer zero", NULL, NULL);
  cleanup_oci_image struct oci_image *img = NULL;
  cleanup_free char *msg = docker_read(tfd, "t:1", &img);
  CHECK(msg == NULL);
  if (msg)
    fprintf(stderr, "%s\n", msg);
  CHECK(img && img->n_layers == 1);
  if (img) {
    CHECK_STR(img->layers[0].digest, img->config.diff_ids[0]);
    CHECK_STR(img->config.cmd[0], "sh");
  }
}

TEST(docker_archive_bad_diff_id) {
  char other[65];
  sha256_hex("other", 5, other);
  cleanup_free char *id = xasprintf("sha256:%s", other);
  cleanup_close int tfd = docker_tar("layer zero", id, NULL);
  struct oci_image *img = NULL;
  cleanup_free char *msg = docker_read(tfd, NULL, &img);
  CHECK_CONTAINS(msg, "docker-archive layer 0: its content has digest");
  CHECK(img == NULL);
}

TEST(docker_archive_path_in_manifest) {
  cleanup_close int tfd = docker_tar("layer zero", NULL, "../../etc/passwd");
  struct oci_image *img = NULL;
  cleanup_free char *msg = docker_read(tfd, NULL, &img);
  CHECK_CONTAINS(msg, "names `../../etc/passwd`, not a file of a docker archive");
  cleanup_close int tfd2 = docker_tar("layer zero", NULL, NULL);
  cleanup_free char *msg2 = docker_read(tfd2, "t:2", &img);
  CHECK_CONTAINS(msg2, "no image tagged `t:2`");
}

int main(void) {
  snprintf(base, sizeof(base), "%s/cell-oci-image-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(base)) {
    perror("mkdtemp");
    return 2;
  }
  RUN(good_layout);
  RUN(gzip_layer_type);
  RUN(nested_image_index);
  RUN(several_images_need_a_ref);
  RUN(wrong_digest_is_refused);
  RUN(wrong_size_is_refused);
  RUN(symlinked_blob_is_refused);
  RUN(symlinked_blobs_dir_is_refused);
  RUN(too_many_layers);
  RUN(missing_blob);
  RUN(foreign_layer);
  RUN(bad_digest_syntax);
  RUN(not_a_layout);
  RUN(oversized_manifest);
  RUN(oci_archive);
  RUN(oci_archive_duplicate_entry);
  RUN(oci_archive_not_a_tar);
  RUN(docker_archive);
  RUN(docker_archive_bad_diff_id);
  RUN(docker_archive_path_in_manifest);
  cleanup_error cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, base, &err) < 0)
    fprintf(stderr, "cleanup: %s\n", err->msg);
  UNIT_DONE();
}
