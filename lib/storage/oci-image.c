/* OCI image layout reader: oci-layout, index.json -> (image index ->)
 * manifest -> config + layers, every blob verified.  See oci-image.h. */
#include "storage/oci-image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/resolve.h"
#include "base/util.h"
#include "storage/digest.h"

#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"

#if defined(__x86_64__)
#define HOST_OCI_ARCH "amd64"
#elif defined(__aarch64__)
#define HOST_OCI_ARCH "arm64"
#else
#define HOST_OCI_ARCH "unknown"
#endif

/* ---- sha256 (TODO at merge: move to lib/storage/digest.c) ------------- */

/* ---- descriptors -------------------------------------------------------- */

struct descriptor {
  const char *media_type; /* may be NULL (a docker-style index entry) */
  const char *digest;     /* "sha256:<64 lowercase hex>", checked */
  uint64_t size;
};

static const char *get_string(const struct json_value *obj, const char *key) {
  const struct json_value *v = json_object_get(obj, key);
  return v && v->type == JSON_STRING ? v->u.string : NULL;
}

static int parse_descriptor(const struct json_value *v, const char *what,
                            struct descriptor *d, cell_error **err) {
  if (!v || v->type != JSON_OBJECT)
    return cell_fail(err, EINVAL, "%s: not a JSON object", what);
  d->media_type = get_string(v, "mediaType");
  d->digest = get_string(v, "digest");
  if (!d->digest)
    return cell_fail(err, EINVAL, "%s: no \"digest\"", what);
  if (!digest_is_valid(d->digest))
    return cell_fail(err, EINVAL,
                     "%s: digest `%.80s` is not sha256:<64 lowercase hex> "
                     "(only sha256 digests are supported)",
                     what, d->digest);
  if (!json_get_uint64(json_object_get(v, "size"), &d->size))
    return cell_fail(err, EINVAL, "%s: no valid \"size\"", what);
  return 0;
}

/* ---- blobs -------------------------------------------------------------- */

/* Open blobs/sha256/<hex> of d, beneath the layout and through no symlink,
 * and check that it is a regular file of d's size whose sha256 is d's
 * digest.  Returns the fd at offset 0. */
static int open_verified_blob(int layout_fd, const struct descriptor *d,
                              const char *what, cell_error **err) {
  char path[32 + DIGEST_STR_LEN];
  snprintf(path, sizeof(path), "blobs/sha256/%s", d->digest + 7);
  cleanup_close int fd = resolve_open_no_symlinks(layout_fd, path,
                                                  O_RDONLY | O_NOFOLLOW, err);
  if (fd < 0)
    return cell_error_wrap(err, "%s blob %s", what, d->digest);
  struct stat st;
  if (fstat(fd, &st) < 0)
    return cell_fail_errno(err, "%s blob %s: stat", what, d->digest);
  if (!S_ISREG(st.st_mode))
    return cell_fail(err, EINVAL, "%s blob %s: not a regular file", what,
                     d->digest);
  if ((uint64_t)st.st_size != d->size)
    return cell_fail(err, EINVAL,
                     "%s blob %s: %lld bytes where the manifest says %llu; "
                     "the image is damaged: export it again",
                     what, d->digest, (long long)st.st_size,
                     (unsigned long long)d->size);
  char got[DIGEST_STR_LEN];
  if (digest_fd(fd, got, err) < 0)
    return cell_error_wrap(err, "%s blob %s", what, d->digest);
  if (strcmp(got, d->digest) != 0)
    return cell_fail(err, EINVAL,
                     "%s blob %s: its content has digest %s; the image is "
                     "damaged or tampered with: export it again",
                     what, d->digest, got);
  if (lseek(fd, 0, SEEK_SET) < 0)
    return cell_fail_errno(err, "%s blob %s: seek", what, d->digest);
  return steal_fd(&fd);
}

/* Read and parse a JSON blob, verified, of at most OCI_IMAGE_MAX_JSON. */
static int read_json_blob(int layout_fd, const struct descriptor *d,
                          const char *what, struct json_value **out,
                          cell_error **err) {
  if (d->size > OCI_IMAGE_MAX_JSON)
    return cell_fail(err, EFBIG, "%s blob %s: %llu bytes, more than the %u "
                     "allowed", what, d->digest, (unsigned long long)d->size,
                     OCI_IMAGE_MAX_JSON);
  cleanup_close int fd = open_verified_blob(layout_fd, d, what, err);
  if (fd < 0)
    return -1;
  cleanup_free char *buf = xmalloc(d->size + 1);
  ssize_t n = cell_read_all(fd, buf, d->size);
  if (n < 0 || (uint64_t)n != d->size)
    return cell_fail_errno(err, "%s blob %s: read", what, d->digest);
  buf[n] = '\0';
  if (json_parse(buf, (size_t)n, out, err) < 0)
    return cell_error_wrap(err, "%s blob %s", what, d->digest);
  if ((*out)->type != JSON_OBJECT) {
    json_free(*out);
    *out = NULL;
    return cell_fail(err, EINVAL, "%s blob %s: not a JSON object", what,
                     d->digest);
  }
  return 0;
}

/* ---- index -------------------------------------------------------------- */

static const char *const INDEX_TYPES[] = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    NULL,
};
static const char *const MANIFEST_TYPES[] = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    NULL,
};

static bool in_list(const char *s, const char *const *list) {
  for (; s && *list; list++)
    if (strcmp(s, *list) == 0)
      return true;
  return false;
}

static const char *ref_name(const struct json_value *entry) {
  return get_string(json_object_get(entry, "annotations"), REF_NAME_ANNOTATION);
}

static bool is_host_platform(const struct json_value *entry) {
  const struct json_value *p = json_object_get(entry, "platform");
  const char *os = get_string(p, "os"), *arch = get_string(p, "architecture");
  return os && arch && strcmp(os, "linux") == 0 &&
         strcmp(arch, HOST_OCI_ARCH) == 0;
}

static const struct json_value *index_manifests(const struct json_value *index,
                                                const char *what,
                                                cell_error **err) {
  const struct json_value *m = json_object_get(index, "manifests");
  if (!m || m->type != JSON_ARRAY || m->u.array.len == 0) {
    cell_fail(err, EINVAL, "%s: no \"manifests\" list", what);
    return NULL;
  }
  return m;
}

/* Pick the entry of an index: the one named ref, else the only one, else
 * the only one for linux/<this architecture>. */
static const struct json_value *pick_entry(const struct json_value *index,
                                           const char *what, const char *ref,
                                           cell_error **err) {
  const struct json_value *list = index_manifests(index, what, err);
  if (!list)
    return NULL;
  const struct json_value *found = NULL;
  size_t matches = 0;
  for (size_t i = 0; i < list->u.array.len; i++) {
    const struct json_value *e = list->u.array.items[i];
    const char *name = ref_name(e);
    bool match = ref ? (name && strcmp(name, ref) == 0)
                     : list->u.array.len == 1 || is_host_platform(e);
    if (match && matches++ == 0)
      found = e;
  }
  if (ref && !found)
    cell_fail(err, ENOENT, "%s: no image named `%s` (annotation %s)", what,
              ref, REF_NAME_ANNOTATION);
  else if (!found)
    cell_fail(err, ENOENT, "%s: %zu images and none for linux/%s; name one "
              "with a ref", what, list->u.array.len, HOST_OCI_ARCH);
  else if (matches > 1)
    cell_fail(err, EINVAL, "%s: %zu images match%s%s; name one with a ref",
              what, matches, ref ? " ref " : " linux/", ref ? ref : HOST_OCI_ARCH);
  else
    return found;
  return NULL;
}

static int check_layout_version(int layout_fd, cell_error **err) {
  cleanup_close int fd = resolve_open_no_symlinks(layout_fd, "oci-layout",
                                                  O_RDONLY, err);
  if (fd < 0)
    return cell_error_wrap(err, "not an OCI image layout (no oci-layout file)");
  char buf[4096];
  ssize_t n = cell_read_all(fd, buf, sizeof(buf) - 1);
  if (n < 0)
    return cell_fail_errno(err, "read oci-layout");
  buf[n] = '\0';
  cleanup_json struct json_value *v = NULL;
  if (json_parse(buf, (size_t)n, &v, err) < 0)
    return cell_error_wrap(err, "oci-layout");
  const char *version = get_string(v, "imageLayoutVersion");
  if (!version || strncmp(version, "1.", 2) != 0)
    return cell_fail(err, EINVAL, "oci-layout: imageLayoutVersion `%s` is not "
                     "1.x, which is the only one understood",
                     version ? version : "(none)");
  return 0;
}

static int read_index_json(int layout_fd, struct json_value **out,
                           cell_error **err) {
  cleanup_close int fd = resolve_open_no_symlinks(layout_fd, "index.json",
                                                  O_RDONLY, err);
  if (fd < 0)
    return cell_error_wrap(err, "OCI image layout");
  struct stat st;
  if (fstat(fd, &st) < 0)
    return cell_fail_errno(err, "stat index.json");
  if (!S_ISREG(st.st_mode) || st.st_size > (off_t)OCI_IMAGE_MAX_JSON)
    return cell_fail(err, EFBIG, "index.json: not a regular file of at most "
                     "%u bytes", OCI_IMAGE_MAX_JSON);
  cleanup_free char *buf = xmalloc((size_t)st.st_size + 1);
  ssize_t n = cell_read_all(fd, buf, (size_t)st.st_size);
  if (n < 0)
    return cell_fail_errno(err, "read index.json");
  buf[n] = '\0';
  if (json_parse(buf, (size_t)n, out, err) < 0)
    return cell_error_wrap(err, "index.json");
  return 0;
}

/* Find the manifest descriptor: index.json's entry, or, when that is an
 * image index, its entry for this machine.  Deeper nesting is refused. */
static int find_manifest(int layout_fd, const struct json_value *index,
                         const char *ref, struct json_value **nested,
                         struct descriptor *d, cell_error **err) {
  const struct json_value *e = pick_entry(index, "index.json", ref, err);
  if (!e || parse_descriptor(e, "index.json entry", d, err) < 0)
    return -1;
  if (!in_list(d->media_type, INDEX_TYPES))
    return 0;
  if (read_json_blob(layout_fd, d, "image index", nested, err) < 0)
    return -1;
  e = pick_entry(*nested, "image index", NULL, err);
  if (!e || parse_descriptor(e, "image index entry", d, err) < 0)
    return -1;
  if (in_list(d->media_type, INDEX_TYPES))
    return cell_fail(err, EINVAL, "image index %s: an index inside an index "
                     "inside index.json is not supported", d->digest);
  return 0;
}

/* ---- layers ------------------------------------------------------------- */

struct layer_type {
  const char *media_type;
  enum oci_compression compression;
};

static const struct layer_type LAYER_TYPES[] = {
    {"application/vnd.oci.image.layer.v1.tar", OCI_COMPRESSION_NONE},
    {"application/vnd.oci.image.layer.v1.tar+gzip", OCI_COMPRESSION_GZIP},
    {"application/vnd.oci.image.layer.v1.tar+zstd", OCI_COMPRESSION_ZSTD},
    {"application/vnd.docker.image.rootfs.diff.tar", OCI_COMPRESSION_NONE},
    {"application/vnd.docker.image.rootfs.diff.tar.gzip", OCI_COMPRESSION_GZIP},
};

static int layer_compression(const char *media_type, size_t i,
                             enum oci_compression *out, cell_error **err) {
  if (!media_type)
    return cell_fail(err, EINVAL, "layer %zu: no mediaType", i);
  for (size_t k = 0; k < sizeof(LAYER_TYPES) / sizeof(LAYER_TYPES[0]); k++)
    if (strcmp(media_type, LAYER_TYPES[k].media_type) == 0) {
      *out = LAYER_TYPES[k].compression;
      return 0;
    }
  if (strstr(media_type, "nondistributable") || strstr(media_type, "foreign"))
    return cell_fail(err, EINVAL, "layer %zu: foreign (non-distributable) "
                     "layer `%.100s`: its content is not in the image and is "
                     "never downloaded; use an image without foreign layers",
                     i, media_type);
  return cell_fail(err, EINVAL, "layer %zu: media type `%.100s` is not a tar "
                   "layer (plain, gzip or zstd)", i, media_type);
}

static int read_layers(int layout_fd, const struct json_value *manifest,
                       struct oci_image *img, cell_error **err) {
  const struct json_value *list = json_object_get(manifest, "layers");
  if (!list || list->type != JSON_ARRAY)
    return cell_fail(err, EINVAL, "manifest: no \"layers\" list");
  if (list->u.array.len > OCI_IMAGE_MAX_LAYERS)
    return cell_fail(err, E2BIG, "manifest: %zu layers, more than the %d "
                     "allowed", list->u.array.len, OCI_IMAGE_MAX_LAYERS);
  img->layers = xcalloc(list->u.array.len ? list->u.array.len : 1,
                        sizeof(*img->layers));
  for (size_t i = 0; i < list->u.array.len; i++) {
    struct descriptor d;
    char what[32];
    snprintf(what, sizeof(what), "layer %zu", i);
    enum oci_compression c = OCI_COMPRESSION_NONE;
    if (parse_descriptor(list->u.array.items[i], what, &d, err) < 0 ||
        layer_compression(d.media_type, i, &c, err) < 0)
      return -1;
    int fd = open_verified_blob(layout_fd, &d, what, err);
    if (fd < 0)
      return -1;
    struct oci_layer *l = &img->layers[img->n_layers++];
    *l = (struct oci_layer){.digest = xstrdup(d.digest),
                            .media_type = xstrdup(d.media_type),
                            .compression = c,
                            .size = d.size,
                            .fd = fd};
  }
  return 0;
}

/* ---- config ------------------------------------------------------------- */

static const char *const CONFIG_TYPES[] = {
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
    NULL,
};

static char *dup_string(const struct json_value *obj, const char *key) {
  const char *s = get_string(obj, key);
  return s ? xstrdup(s) : NULL;
}

static int dup_strv(const struct json_value *obj, const char *key,
                    char ***out, cell_error **err) {
  const struct json_value *v = json_object_get(obj, key);
  if (!v || v->type == JSON_NULL)
    return 0;
  if (v->type != JSON_ARRAY)
    return cell_fail(err, EINVAL, "config: \"%s\" is not a list", key);
  *out = xcalloc(v->u.array.len + 1, sizeof(char *));
  for (size_t i = 0; i < v->u.array.len; i++) {
    if (v->u.array.items[i]->type != JSON_STRING)
      return cell_fail(err, EINVAL, "config: \"%s\" holds a non-string", key);
    (*out)[i] = xstrdup(v->u.array.items[i]->u.string);
  }
  return 0;
}

static int dup_labels(const struct json_value *obj, char ***out,
                      cell_error **err) {
  const struct json_value *v = json_object_get(obj, "Labels");
  if (!v || v->type == JSON_NULL)
    return 0;
  if (v->type != JSON_OBJECT)
    return cell_fail(err, EINVAL, "config: \"Labels\" is not an object");
  *out = xcalloc(v->u.object.len + 1, sizeof(char *));
  for (size_t i = 0; i < v->u.object.len; i++) {
    if (v->u.object.values[i]->type != JSON_STRING)
      return cell_fail(err, EINVAL, "config: label `%.100s` is not a string",
                       v->u.object.keys[i]);
    (*out)[i] = xasprintf("%s=%s", v->u.object.keys[i],
                          v->u.object.values[i]->u.string);
  }
  return 0;
}

int oci_image_set_config(struct oci_image *img, const char *config_digest,
                         const struct json_value *cfg, cell_error **err) {
  if (!cfg || cfg->type != JSON_OBJECT)
    return cell_fail(err, EINVAL, "config %s: not a JSON object", config_digest);
  img->config_digest = xstrdup(config_digest);
  struct oci_image_config *c = &img->config;
  c->architecture = dup_string(cfg, "architecture");
  c->os = dup_string(cfg, "os");
  c->created = dup_string(cfg, "created");
  const struct json_value *run = json_object_get(cfg, "config");
  c->working_dir = dup_string(run, "WorkingDir");
  c->user = dup_string(run, "User");
  if (dup_strv(run, "Entrypoint", &c->entrypoint, err) < 0 ||
      dup_strv(run, "Cmd", &c->cmd, err) < 0 ||
      dup_strv(run, "Env", &c->env, err) < 0 ||
      dup_labels(run, &c->labels, err) < 0 ||
      dup_strv(json_object_get(cfg, "rootfs"), "diff_ids", &c->diff_ids, err) < 0)
    return -1;
  size_t n_diff = cell_strv_len(c->diff_ids);
  if (c->diff_ids && n_diff != img->n_layers)
    return cell_fail(err, EINVAL, "config %s: %zu diff_ids for %zu layers",
                     config_digest, n_diff, img->n_layers);
  for (size_t i = 0; i < n_diff; i++)
    if (!digest_is_valid(c->diff_ids[i]))
      return cell_fail(err, EINVAL, "config %s: diff_id %zu is not a sha256 "
                       "digest", config_digest, i);
  return 0;
}

static int read_config(int layout_fd, const struct json_value *manifest,
                       struct oci_image *img, cell_error **err) {
  struct descriptor d;
  if (parse_descriptor(json_object_get(manifest, "config"), "manifest config",
                       &d, err) < 0)
    return -1;
  if (!in_list(d.media_type, CONFIG_TYPES))
    return cell_fail(err, EINVAL, "manifest config: media type `%.100s` is not "
                     "an image config", d.media_type ? d.media_type : "(none)");
  cleanup_json struct json_value *cfg = NULL;
  if (read_json_blob(layout_fd, &d, "config", &cfg, err) < 0)
    return -1;
  return oci_image_set_config(img, d.digest, cfg, err);
}

/* ---- the whole ---------------------------------------------------------- */

int oci_image_read_layout(int layout_fd, const char *ref,
                          struct oci_image **out, cell_error **err) {
  cleanup_json struct json_value *index = NULL;
  cleanup_json struct json_value *nested = NULL;
  cleanup_json struct json_value *manifest = NULL;
  struct descriptor md;
  if (check_layout_version(layout_fd, err) < 0 ||
      read_index_json(layout_fd, &index, err) < 0 ||
      find_manifest(layout_fd, index, ref, &nested, &md, err) < 0)
    return -1;
  if (md.media_type && !in_list(md.media_type, MANIFEST_TYPES))
    return cell_fail(err, EINVAL, "manifest %s: media type `%.100s` is not an "
                     "image manifest", md.digest, md.media_type);
  if (read_json_blob(layout_fd, &md, "manifest", &manifest, err) < 0)
    return -1;
  cleanup_oci_image struct oci_image *img = xcalloc(1, sizeof(*img));
  img->manifest_digest = xstrdup(md.digest);
  if (read_layers(layout_fd, manifest, img, err) < 0 ||
      read_config(layout_fd, manifest, img, err) < 0)
    return -1;
  *out = steal_pointer(&img);
  return 0;
}

void oci_image_free(struct oci_image *img) {
  if (!img)
    return;
  for (size_t i = 0; i < img->n_layers; i++) {
    free(img->layers[i].digest);
    free(img->layers[i].media_type);
    if (img->layers[i].fd >= 0)
      close(img->layers[i].fd);
  }
  free(img->layers);
  free(img->manifest_digest);
  free(img->config_digest);
  struct oci_image_config *c = &img->config;
  cell_strv_free(c->entrypoint);
  cell_strv_free(c->cmd);
  cell_strv_free(c->env);
  cell_strv_free(c->labels);
  cell_strv_free(c->diff_ids);
  free(c->working_dir);
  free(c->user);
  free(c->architecture);
  free(c->os);
  free(c->created);
  free(img);
}

const char *oci_compression_name(enum oci_compression c) {
  switch (c) {
  case OCI_COMPRESSION_GZIP:
    return "gzip";
  case OCI_COMPRESSION_ZSTD:
    return "zstd";
  case OCI_COMPRESSION_NONE:
    break;
  }
  return "none";
}
