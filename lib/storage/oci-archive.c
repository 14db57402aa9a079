/* oci-archive: unpack the few names an OCI layout has, nothing else, then
 * read the layout.  See oci-archive.h. */
#include "storage/oci-archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"
#include "base/resolve.h"
#include "base/util.h"
#include "storage/digest.h"

/* oci-layout is a one-line JSON; index.json is bounded like every JSON. */
#define OCI_LAYOUT_FILE_MAX 4096

static void archive_freep(struct archive **a) {
  if (*a)
    archive_read_free(*a);
}

/* name starts with 64 lowercase hex followed by suffix (exactly). */
static bool is_hex_then(const char *name, const char *suffix) {
  for (int i = 0; i < 64; i++)
    if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
      return false;
  return strcmp(name + 64, suffix) == 0;
}

static bool is_blob_name(const char *name) {
  static const char prefix[] = "blobs/sha256/";
  return strncmp(name, prefix, sizeof(prefix) - 1) == 0 &&
         is_hex_then(name + sizeof(prefix) - 1, "");
}

/* Which entries of a tarball to unpack: the most bytes an entry of this
 * name may have, 0 when it is not wanted (the entry is skipped). */
typedef int64_t (*entry_filter)(const char *name);

static int64_t oci_layout_entry_max(const char *name) {
  if (strcmp(name, "oci-layout") == 0)
    return OCI_LAYOUT_FILE_MAX;
  if (strcmp(name, "index.json") == 0)
    return OCI_IMAGE_MAX_JSON;
  if (is_blob_name(name))
    return INT64_MAX;
  return 0;
}

/* docker save: manifest.json, configs "<hex>.json", layers "<hex>.tar" or
 * "<hex>/layer.tar", and (docker 25 on) "blobs/sha256/<hex>". */
static bool is_docker_file_name(const char *name) {
  return is_blob_name(name) || is_hex_then(name, ".json") ||
         is_hex_then(name, ".tar") || is_hex_then(name, "/layer.tar");
}

static int64_t docker_archive_entry_max(const char *name) {
  if (strcmp(name, "manifest.json") == 0)
    return OCI_IMAGE_MAX_JSON;
  return is_docker_file_name(name) ? INT64_MAX : 0;
}

/* Where an accepted entry is stored beneath the private directory: flat,
 * '/' made '_' (the accepted names leave nothing else to interpret). */
static void stored_name(const char *name, char out[128]) {
  snprintf(out, 128, "%s", name);
  if (strncmp(out, "blobs/sha256/", 13) == 0)
    return; /* the layout's own place */
  for (char *p = out; *p; p++)
    if (*p == '/')
      *p = '_';
}

/* Copy the current entry's data into a new file name beneath dirfd.
 * O_EXCL: a second entry of the same name is an error, not a replacement. */
static int unpack_entry(struct archive *a, int dirfd, const char *name,
                        cell_error **err) {
  cleanup_close int fd = openat(dirfd, name,
                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                    O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST)
    return cell_fail(err, EEXIST, "`%s` is in the archive twice", name);
  if (fd < 0)
    return cell_fail_errno(err, "create `%s`", name);
  const void *buf;
  size_t len;
  int64_t offset;
  int r;
  while ((r = archive_read_data_block(a, &buf, &len, &offset)) == ARCHIVE_OK) {
    if (pwrite(fd, buf, len, offset) != (ssize_t)len)
      return cell_fail_errno(err, "write `%s`", name);
  }
  if (r != ARCHIVE_EOF)
    return cell_fail(err, EIO, "`%s`: %s", name, archive_error_string(a));
  return 0;
}

static const char *entry_name(struct archive_entry *e) {
  const char *name = archive_entry_pathname(e);
  while (name && strncmp(name, "./", 2) == 0)
    name += 2;
  return name;
}

static int unpack_tar(int archive_fd, int dirfd, entry_filter wanted_max,
                      cell_error **err) {
  __attribute__((cleanup(archive_freep))) struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  archive_read_support_filter_gzip(a);
  if (archive_read_open_fd(a, archive_fd, 1 << 16) != ARCHIVE_OK)
    return cell_fail(err, EINVAL, "not a tar archive: %s",
                     archive_error_string(a));
  struct archive_entry *e;
  int r;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *name = entry_name(e);
    int64_t max = name ? wanted_max(name) : 0;
    if (max == 0 || archive_entry_filetype(e) != AE_IFREG)
      continue; /* directories, links, anything else: not needed */
    if (archive_entry_size(e) > max)
      return cell_fail(err, EFBIG, "`%s` in the archive: %lld bytes, more "
                       "than the %lld allowed", name,
                       (long long)archive_entry_size(e), (long long)max);
    char stored[128];
    stored_name(name, stored);
    if (unpack_entry(a, dirfd, stored, err) < 0)
      return -1;
  }
  if (r != ARCHIVE_EOF)
    return cell_fail(err, EINVAL, "%s", archive_error_string(a));
  return 0;
}

/* mkdir a fresh 0700 directory beneath dirfd; its name goes to name. */
static int make_private_dir(int dirfd, char name[64], cell_error **err) {
  static unsigned counter;
  for (int tries = 0; tries < 100; tries++) {
    snprintf(name, 64, ".oci-archive-%d-%lx-%u", (int)getpid(),
             (unsigned long)time(NULL), counter++);
    if (mkdirat(dirfd, name, 0700) == 0)
      return 0;
    if (errno != EEXIST)
      return cell_fail_errno(err, "make a directory to unpack the archive");
  }
  return cell_fail(err, EEXIST, "make a directory to unpack the archive: "
                   "every name taken");
}

static int read_unpacked(int archive_fd, int dirfd, const char *ref,
                         struct oci_image **out, cell_error **err) {
  if (mkdirat(dirfd, "blobs", 0700) < 0 ||
      mkdirat(dirfd, "blobs/sha256", 0700) < 0)
    return cell_fail_errno(err, "make blobs/sha256 to unpack the archive");
  if (unpack_tar(archive_fd, dirfd, oci_layout_entry_max, err) < 0)
    return cell_error_wrap(err, "oci-archive");
  return oci_image_read_layout(dirfd, ref, out, err);
}

typedef int (*unpacked_reader)(int archive_fd, int dirfd, const char *ref,
                               struct oci_image **out, cell_error **err);

/* Unpack into a private directory beneath work_dirfd, read, remove. */
static int read_in_private_dir(int archive_fd, int work_dirfd, const char *ref,
                               unpacked_reader read_unpacked,
                               struct oci_image **out, cell_error **err) {
  char name[64];
  if (make_private_dir(work_dirfd, name, err) < 0)
    return -1;
  int dirfd = openat(work_dirfd, name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int r = dirfd < 0 ? cell_fail_errno(err, "open `%s`", name)
                    : read_unpacked(archive_fd, dirfd, ref, out, err);
  if (dirfd >= 0)
    close(dirfd);
  /* The layer fds hold their blobs; the names are no longer needed. */
  cleanup_error cell_error *rm_err = NULL;
  if (cell_rm_rf_at(work_dirfd, name, &rm_err) < 0 && r == 0) {
    oci_image_free(*out);
    *out = NULL;
    *err = steal_pointer(&rm_err);
    return cell_error_wrap(err, "remove the unpacked archive");
  }
  return r;
}

int oci_image_read_oci_archive(int archive_fd, int work_dirfd, const char *ref,
                               struct oci_image **out, cell_error **err) {
  return read_in_private_dir(archive_fd, work_dirfd, ref, read_unpacked, out,
                             err);
}

/* ---- docker-archive ------------------------------------------------------ */

/* Open a file that manifest.json names, by its stored name, refusing any
 * name that is not one docker writes. */
static int open_docker_file(int dirfd, const char *name, cell_error **err) {
  if (!name || !is_docker_file_name(name))
    return cell_fail(err, EINVAL, "manifest.json names `%.100s`, not a file "
                     "of a docker archive (<hex>.json, <hex>.tar, "
                     "<hex>/layer.tar, blobs/sha256/<hex>)",
                     name ? name : "(nothing)");
  char stored[128];
  stored_name(name, stored);
  int fd = resolve_open_no_symlinks(dirfd, stored, O_RDONLY, err);
  if (fd < 0)
    return cell_error_wrap(err, "docker-archive: `%s`", name);
  return fd;
}

/* The hex a docker file name carries (its sha256 when docker made it). */
static const char *name_hex(const char *name) {
  return strncmp(name, "blobs/sha256/", 13) == 0 ? name + 13 : name;
}

static int read_docker_config(int dirfd, const char *name,
                              struct oci_image *img, cell_error **err) {
  cleanup_close int fd = open_docker_file(dirfd, name, err);
  if (fd < 0)
    return -1;
  char digest[DIGEST_STR_LEN];
  if (digest_fd(fd, digest, err) < 0)
    return cell_error_wrap(err, "docker-archive config `%s`", name);
  if (strncmp(name_hex(name), digest + strlen("sha256:"), 64) != 0)
    return cell_fail(err, EINVAL, "docker-archive config `%s`: its content "
                     "has digest %s; the archive is damaged or tampered "
                     "with: save it again", name, digest);
  cleanup_free char *buf = NULL;
  size_t len = 0;
  char stored[128];
  stored_name(name, stored);
  if (cell_read_file_at(dirfd, stored, OCI_IMAGE_MAX_JSON, &buf, &len, err) < 0)
    return cell_error_wrap(err, "docker-archive config `%s`", name);
  cleanup_json struct json_value *cfg = NULL;
  if (json_parse(buf, len, &cfg, err) < 0)
    return cell_error_wrap(err, "docker-archive config `%s`", name);
  return oci_image_set_config(img, digest, cfg, err);
}

/* A layer.tar is uncompressed: its sha256 is its diff_id. */
static int read_docker_layer(int dirfd, const char *name,
                             struct oci_image *img, cell_error **err) {
  cleanup_close int fd = open_docker_file(dirfd, name, err);
  if (fd < 0)
    return -1;
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
    return cell_fail(err, EINVAL, "docker-archive layer `%s`: not a regular "
                     "file", name);
  char digest[DIGEST_STR_LEN];
  if (digest_fd(fd, digest, err) < 0 || lseek(fd, 0, SEEK_SET) < 0)
    return cell_error_wrap(err, "docker-archive layer `%s`", name);
  struct oci_layer *l = &img->layers[img->n_layers++];
  *l = (struct oci_layer){
      .digest = xstrdup(digest),
      .media_type = xstrdup("application/vnd.docker.image.rootfs.diff.tar"),
      .compression = OCI_COMPRESSION_NONE,
      .size = (uint64_t)st.st_size,
      .fd = steal_fd(&fd)};
  return 0;
}

static int check_diff_ids(const struct oci_image *img, cell_error **err) {
  if (!img->config.diff_ids)
    return cell_fail(err, EINVAL, "docker-archive config %s: no rootfs.diff_ids "
                     "to verify the layers with", img->config_digest);
  for (size_t i = 0; i < img->n_layers; i++)
    if (strcmp(img->layers[i].digest, img->config.diff_ids[i]) != 0)
      return cell_fail(err, EINVAL, "docker-archive layer %zu: its content has "
                       "digest %s where the config's diff_id is %s; the archive "
                       "is damaged or tampered with: save it again",
                       i, img->layers[i].digest, img->config.diff_ids[i]);
  return 0;
}

static const struct json_value *pick_docker_image(const struct json_value *m,
                                                  const char *ref,
                                                  cell_error **err) {
  if (!m || m->type != JSON_ARRAY || m->u.array.len == 0) {
    cell_fail(err, EINVAL, "docker-archive manifest.json: not a list of images");
    return NULL;
  }
  if (!ref && m->u.array.len == 1)
    return m->u.array.items[0];
  if (!ref) {
    cell_fail(err, EINVAL, "docker-archive: %zu images; name one with a ref "
              "(one of its RepoTags)", m->u.array.len);
    return NULL;
  }
  for (size_t i = 0; i < m->u.array.len; i++) {
    const struct json_value *tags = json_object_get(m->u.array.items[i], "RepoTags");
    for (size_t k = 0; tags && tags->type == JSON_ARRAY && k < tags->u.array.len; k++)
      if (tags->u.array.items[k]->type == JSON_STRING &&
          strcmp(tags->u.array.items[k]->u.string, ref) == 0)
        return m->u.array.items[i];
  }
  cell_fail(err, ENOENT, "docker-archive: no image tagged `%s`", ref);
  return NULL;
}

static int read_docker_unpacked(int archive_fd, int dirfd, const char *ref,
                                struct oci_image **out, cell_error **err) {
  if (mkdirat(dirfd, "blobs", 0700) < 0 ||
      mkdirat(dirfd, "blobs/sha256", 0700) < 0)
    return cell_fail_errno(err, "make blobs/sha256 to unpack the archive");
  if (unpack_tar(archive_fd, dirfd, docker_archive_entry_max, err) < 0)
    return cell_error_wrap(err, "docker-archive");
  cleanup_free char *buf = NULL;
  size_t len = 0;
  cleanup_json struct json_value *manifest = NULL;
  if (cell_read_file_at(dirfd, "manifest.json", OCI_IMAGE_MAX_JSON, &buf, &len,
                        err) < 0 ||
      json_parse(buf, len, &manifest, err) < 0)
    return cell_error_wrap(err, "docker-archive manifest.json");
  const struct json_value *image = pick_docker_image(manifest, ref, err);
  if (!image)
    return -1;
  const struct json_value *layers = json_object_get(image, "Layers");
  if (!layers || layers->type != JSON_ARRAY)
    return cell_fail(err, EINVAL, "docker-archive manifest.json: no Layers list");
  if (layers->u.array.len > OCI_IMAGE_MAX_LAYERS)
    return cell_fail(err, E2BIG, "docker-archive: %zu layers, more than the %d "
                     "allowed", layers->u.array.len, OCI_IMAGE_MAX_LAYERS);
  cleanup_oci_image struct oci_image *img = xcalloc(1, sizeof(*img));
  img->layers = xcalloc(layers->u.array.len + 1, sizeof(*img->layers));
  for (size_t i = 0; i < layers->u.array.len; i++) {
    const struct json_value *l = layers->u.array.items[i];
    if (read_docker_layer(dirfd, l->type == JSON_STRING ? l->u.string : NULL,
                          img, err) < 0)
      return -1;
  }
  const struct json_value *config = json_object_get(image, "Config");
  if (read_docker_config(dirfd, config && config->type == JSON_STRING
                                    ? config->u.string : NULL, img, err) < 0 ||
      check_diff_ids(img, err) < 0)
    return -1;
  *out = steal_pointer(&img);
  return 0;
}

int oci_image_read_docker_archive(int archive_fd, int work_dirfd,
                                  const char *ref, struct oci_image **out,
                                  cell_error **err) {
  return read_in_private_dir(archive_fd, work_dirfd, ref, read_docker_unpacked,
                             out, err);
}
