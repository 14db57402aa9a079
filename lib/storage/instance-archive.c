/* An instance as one stream: written from the store and the instance's
 * disk, read back into a private directory (see the header for the format
 * and what reading checks). */
#include "storage/instance-archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "storage/digest.h"
#include "storage/tree-archive.h"

#define COPY_BUF_SIZE (256 * 1024)
#define OUT_BLOCK_SIZE (64 * 1024)
#define DISK_ENTRY "disk.tar"

static void archive_freep(struct archive **a) {
  if (*a)
    archive_write_free(*a);
}
#define cleanup_write_archive __attribute__((cleanup(archive_freep)))

static void read_archive_freep(struct archive **a) {
  if (*a)
    archive_read_free(*a);
}
#define cleanup_read_archive __attribute__((cleanup(read_archive_freep)))

static void entry_freep(struct archive_entry **e) {
  if (*e)
    archive_entry_free(*e);
}
#define cleanup_entry __attribute__((cleanup(entry_freep)))

/* ---- one inner tar, spooled --------------------------------------------- */

struct part {
  char *entry;  /* its name in the stream */
  char *name;   /* the layer's store name; NULL for the disk */
  int fd;       /* the spool; -1 when not made yet */
  uint64_t size;
  char sha256[DIGEST_STR_LEN];
};

static void parts_free(struct part *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(p[i].entry);
    free(p[i].name);
    if (p[i].fd >= 0)
      close(p[i].fd);
  }
  free(p);
}

static void progress(const struct instance_export *x, const char *step,
                     unsigned part, unsigned parts, uint64_t bytes) {
  if (!x->progress)
    return;
  struct instance_archive_progress p = {step, part, parts, bytes};
  x->progress(x->progress_ctx, &p);
}

/* The tree at treefd in the OCI form into an anonymous spool, with its
 * sha256 and size. */
static int spool_tree(const struct instance_export *x, int treefd,
                      struct part *p, cell_error **err) {
  p->fd = openat(x->spoolfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (p->fd < 0)
    return cell_fail_errno(err, "make a spool file");
  if (tree_archive_write_oci(treefd, p->fd, NULL, err) < 0)
    return -1;
  off_t end = lseek(p->fd, 0, SEEK_CUR);
  if (end < 0 || lseek(p->fd, 0, SEEK_SET) < 0)
    return cell_fail_errno(err, "rewind the spool");
  p->size = (uint64_t)end;
  if (digest_fd(p->fd, p->sha256, err) < 0)
    return -1;
  if (lseek(p->fd, 0, SEEK_SET) < 0)
    return cell_fail_errno(err, "rewind the spool");
  return 0;
}

static int spool_layer(const struct instance_export *x, const char *name,
                       struct part *p, cell_error **err) {
  const char *hex = image_id_hex(name);
  if (!hex)
    return cell_fail(err, 0, "layer `%s`: not a sha256 name", name);
  p->name = xstrdup(name);
  p->entry = xasprintf("layers/%s.tar", hex);
  cleanup_close int fd =
      openat(x->layersfd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open layer %s", name);
  if (spool_tree(x, fd, p, err) < 0)
    return cell_error_wrap(err, "layer %s", name);
  return 0;
}

/* Every part of the stream, spooled: the layers bottom first (their
 * names alone when they were sent apart), the disk. */
static struct part *spool_all(const struct instance_export *x, size_t *n,
                              cell_error **err) {
  size_t layers = cell_strv_len(x->image->layers);
  struct part *parts = xcalloc(layers + 1, sizeof(*parts));
  for (size_t i = 0; i <= layers; i++)
    parts[i].fd = -1;
  *n = layers + 1;
  for (size_t i = 0; i < layers && x->layers_apart; i++)
    parts[i].name = xstrdup(x->image->layers[i]);
  for (size_t i = 0; i < layers && !x->layers_apart; i++)
    if (spool_layer(x, x->image->layers[i], &parts[i], err) < 0)
      return parts_free(parts, *n), NULL;
  parts[layers].entry = xstrdup(DISK_ENTRY);
  if (spool_tree(x, x->upperfd, &parts[layers], err) < 0) {
    parts_free(parts, *n);
    return cell_error_wrap(err, "the instance's disk"), NULL;
  }
  return parts;
}

/* ---- the JSON ----------------------------------------------------------- */

static int gen_embedded(struct json_gen *g, const char *key, const char *text,
                        cell_error **err) {
  cleanup_json struct json_value *v = NULL;
  if (json_parse(text, strlen(text), &v, err) < 0)
    return cell_error_wrap(err, "%s", key);
  json_gen_key(g, key);
  json_gen_value(g, v);
  return 0;
}

static char *manifest_text(const struct instance_export *x,
                           const struct part *parts, size_t n,
                           cell_error **err) {
  cleanup_free char *image = image_to_json(x->image, false);
  struct json_gen *g = json_gen_new(true);
  json_gen_object_open(g);
  json_gen_kv_int(g, "format", INSTANCE_ARCHIVE_FORMAT);
  if (gen_embedded(g, "instance", x->record_json, err) < 0 ||
      gen_embedded(g, "image", image, err) < 0) {
    json_gen_free(g);
    return NULL;
  }
  json_gen_kv_string(g, "image_id", x->image->id);
  if (x->layers_apart)
    json_gen_kv_bool(g, "layers_apart", true);
  json_gen_key(g, "layers");
  json_gen_array_open(g);
  for (size_t i = 0; i + 1 < n; i++) {
    json_gen_object_open(g);
    json_gen_kv_string(g, "name", parts[i].name);
    if (!x->layers_apart) {
      json_gen_kv_string(g, "sha256", parts[i].sha256);
      json_gen_key(g, "size");
      json_gen_uint(g, parts[i].size);
    }
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  json_gen_key(g, "disk");
  json_gen_object_open(g);
  json_gen_kv_string(g, "sha256", parts[n - 1].sha256);
  json_gen_key(g, "size");
  json_gen_uint(g, parts[n - 1].size);
  json_gen_object_close(g);
  json_gen_object_close(g);
  char *text = json_gen_finish(g, NULL);
  json_gen_free(g);
  return text;
}

/* ---- writing ------------------------------------------------------------ */

struct out {
  int fd;
  int write_errno;
  uint64_t bytes;
};

static la_ssize_t write_out(struct archive *ar, void *data, const void *buf,
                            size_t len) {
  struct out *o = data;
  if (cell_write_all(o->fd, buf, len) < 0) {
    o->write_errno = errno;
    archive_set_error(ar, errno, "write the stream");
    return -1;
  }
  o->bytes += len;
  return (la_ssize_t)len;
}

static int fail_write(struct archive *ar, const struct out *o,
                      const char *what, cell_error **err) {
  const char *why = archive_error_string(ar);
  return cell_fail(err, o->write_errno, "%s: %s", what,
                   why ? why : "libarchive failed");
}

static int open_stream(struct archive *ar, struct out *o, cell_error **err) {
  if (archive_write_set_format_pax_restricted(ar) != ARCHIVE_OK ||
      archive_write_add_filter_zstd(ar) != ARCHIVE_OK)
    return fail_write(ar, o, "start the stream", err);
  archive_write_set_bytes_per_block(ar, OUT_BLOCK_SIZE);
  archive_write_set_bytes_in_last_block(ar, 1);
  if (archive_write_open(ar, o, NULL, write_out, NULL) != ARCHIVE_OK)
    return fail_write(ar, o, "start the stream", err);
  return 0;
}

static int write_entry_header(struct archive *ar, const struct out *o,
                              const char *name, uint64_t size,
                              cell_error **err) {
  cleanup_entry struct archive_entry *e = archive_entry_new();
  if (e == NULL)
    abort(); /* as xmalloc does */
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0600);
  archive_entry_set_size(e, (la_int64_t)size);
  if (archive_write_header(ar, e) < ARCHIVE_WARN)
    return fail_write(ar, o, name, err);
  return 0;
}

static int write_bytes(struct archive *ar, const struct out *o,
                       const char *name, const void *buf, size_t len,
                       cell_error **err) {
  if (archive_write_data(ar, buf, len) != (la_ssize_t)len)
    return fail_write(ar, o, name, err);
  return 0;
}

static int write_part(struct archive *ar, const struct out *o,
                      const struct part *p, char *buf, cell_error **err) {
  if (write_entry_header(ar, o, p->entry, p->size, err) < 0)
    return -1;
  for (uint64_t done = 0; done < p->size;) {
    ssize_t n = read(p->fd, buf, COPY_BUF_SIZE);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return cell_fail_errno(err, "read the spool of %s", p->entry);
    if (write_bytes(ar, o, p->entry, buf, (size_t)n, err) < 0)
      return -1;
    done += (uint64_t)n;
  }
  return 0;
}

static int write_stream(const struct instance_export *x, struct out *o,
                        const struct part *parts, size_t n, const char *json,
                        cell_error **err) {
  cleanup_write_archive struct archive *ar = archive_write_new();
  if (ar == NULL)
    return cell_fail(err, ENOMEM, "libarchive");
  if (open_stream(ar, o, err) < 0 ||
      write_entry_header(ar, o, INSTANCE_ARCHIVE_JSON, strlen(json), err) < 0 ||
      write_bytes(ar, o, INSTANCE_ARCHIVE_JSON, json, strlen(json), err) < 0)
    return -1;
  cleanup_free char *buf = xmalloc(COPY_BUF_SIZE);
  for (size_t i = 0; i < n; i++) {
    if (parts[i].fd < 0)
      continue; /* a layer sent apart */
    progress(x, i + 1 < n ? "layer" : "disk", (unsigned)i + 1, (unsigned)n,
             o->bytes);
    if (write_part(ar, o, &parts[i], buf, err) < 0)
      return -1;
  }
  /* The end of the tar and of the zstd frame only after every part: a
   * stream cut short by a failure is seen as truncated. */
  if (archive_write_close(ar) != ARCHIVE_OK)
    return fail_write(ar, o, "finish the stream", err);
  return 0;
}

int instance_archive_write(const struct instance_export *x, int out_fd,
                           uint64_t *size_out, cell_error **err) {
  size_t n = 0;
  struct part *parts = spool_all(x, &n, err);
  if (!parts)
    return cell_error_wrap(err, "export");
  cleanup_free char *json = manifest_text(x, parts, n, err);
  struct out o = {.fd = out_fd};
  int r = json ? write_stream(x, &o, parts, n, json, err) : -1;
  parts_free(parts, n);
  if (r < 0)
    return cell_error_wrap(err, "export");
  progress(x, "done", (unsigned)n, (unsigned)n, o.bytes);
  if (size_out)
    *size_out = o.bytes;
  return 0;
}

/* ---- the JSON, read back ------------------------------------------------ */

void instance_import_free(struct instance_import *im) {
  if (!im)
    return;
  free(im->record_json);
  image_free(im->image);
  cell_strv_free(im->layers);
  free(im);
}

/* One part as the JSON announces it. */
struct expected {
  char *entry;
  char *name; /* the layer's store name; NULL: the disk */
  bool apart; /* a layer sent apart: no entry in the stream */
  char sha256[DIGEST_STR_LEN];
  uint64_t size;
};

static void expected_free(struct expected *e, size_t n) {
  for (size_t i = 0; e && i < n; i++) {
    free(e[i].entry);
    free(e[i].name);
  }
  free(e);
}

static const char *json_str(const struct json_value *o, const char *key) {
  const struct json_value *v = json_object_get(o, key);
  return v && v->type == JSON_STRING ? v->u.string : NULL;
}

static int parse_part(const struct json_value *v, const char *what,
                      struct expected *e, cell_error **err) {
  const char *sum = v && v->type == JSON_OBJECT ? json_str(v, "sha256") : NULL;
  const struct json_value *size = v ? json_object_get(v, "size") : NULL;
  if (!sum || !digest_is_valid(sum) || !size || !json_get_uint64(size, &e->size))
    return cell_fail(err, 0, "%s: a sha256 and a size are required", what);
  memcpy(e->sha256, sum, DIGEST_STR_LEN);
  return 0;
}

static int parse_layer(const struct json_value *v, size_t i, bool apart,
                       struct expected *e, cell_error **err) {
  cleanup_free char *what = xasprintf("layers[%zu]", i);
  const char *name = v->type == JSON_OBJECT ? json_str(v, "name") : NULL;
  if (!name || !digest_is_valid(name))
    return cell_fail(err, 0, "%s: `name` must be sha256:<hex>", what);
  e->name = xstrdup(name);
  e->entry = xasprintf("layers/%s.tar", image_id_hex(name));
  e->apart = apart;
  return apart ? 0 : parse_part(v, what, e, err);
}

/* The parts the JSON announces, in the order they must come. */
static struct expected *parse_parts(const struct json_value *root, size_t *n,
                                    cell_error **err) {
  const struct json_value *layers = json_object_get(root, "layers");
  if (!layers || layers->type != JSON_ARRAY ||
      layers->u.array.len > INSTANCE_ARCHIVE_MAX_LAYERS)
    return cell_fail(err, 0, "`layers`: an array of at most %d layers",
                     INSTANCE_ARCHIVE_MAX_LAYERS), NULL;
  const struct json_value *a = json_object_get(root, "layers_apart");
  bool apart = a && a->type == JSON_BOOL && a->u.boolean;
  size_t count = layers->u.array.len;
  struct expected *e = xcalloc(count + 1, sizeof(*e));
  *n = count + 1;
  for (size_t i = 0; i < count; i++)
    if (parse_layer(layers->u.array.items[i], i, apart, &e[i], err) < 0)
      return expected_free(e, *n), NULL;
  e[count].entry = xstrdup(DISK_ENTRY);
  if (parse_part(json_object_get(root, "disk"), "disk", &e[count], err) < 0)
    return expected_free(e, *n), NULL;
  return e;
}

static char *value_text(const struct json_value *v) {
  struct json_gen *g = json_gen_new(false);
  json_gen_value(g, v);
  char *text = json_gen_finish(g, NULL);
  json_gen_free(g);
  return text;
}

/* The image's layers must be the ones the stream carries, in order. */
static int check_image_layers(const struct image *img,
                              const struct expected *e, size_t n,
                              cell_error **err) {
  if (cell_strv_len(img->layers) != n - 1)
    return cell_fail(err, 0, "the image has %zu layers, the stream %zu",
                     cell_strv_len(img->layers), n - 1);
  for (size_t i = 0; i + 1 < n; i++)
    if (strcmp(img->layers[i], e[i].name) != 0)
      return cell_fail(err, 0, "layer %zu is %s in the image, %s in the "
                       "stream", i + 1, img->layers[i], e[i].name);
  return 0;
}

static int parse_manifest(const char *text, size_t len,
                          struct instance_import **out, struct expected **parts,
                          size_t *n, cell_error **err) {
  cleanup_json struct json_value *root = NULL;
  if (json_parse(text, len, &root, err) < 0)
    return -1;
  const struct json_value *format = json_object_get(root, "format");
  int64_t version = 0;
  if (root->type != JSON_OBJECT || !format || !json_get_int64(format, &version))
    return cell_fail(err, 0, "not an export: no `format`");
  if (version != INSTANCE_ARCHIVE_FORMAT)
    return cell_fail(err, 0, "format %lld: not supported (this cell reads "
                     "format %d)", (long long)version, INSTANCE_ARCHIVE_FORMAT);
  const struct json_value *record = json_object_get(root, "instance");
  const struct json_value *image = json_object_get(root, "image");
  const char *image_id = json_str(root, "image_id");
  if (!record || record->type != JSON_OBJECT || !image ||
      image->type != JSON_OBJECT || !image_id || !digest_is_valid(image_id))
    return cell_fail(err, 0, "`instance`, `image` and `image_id` are required");
  *parts = parse_parts(root, n, err);
  if (!*parts)
    return -1;
  struct instance_import *im = xcalloc(1, sizeof(*im));
  im->record_json = value_text(record);
  cleanup_free char *image_text = value_text(image);
  if (image_from_json(image_text, strlen(image_text), image_id, &im->image,
                      err) < 0 ||
      check_image_layers(im->image, *parts, *n, err) < 0) {
    instance_import_free(im);
    expected_free(*parts, *n);
    *parts = NULL;
    return cell_error_wrap(err, "`image`");
  }
  im->layers = cell_strv_dup(im->image->layers);
  *out = im;
  return 0;
}

int instance_import_load(int workfd, struct instance_import **out,
                         cell_error **err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (cell_read_file_at(workfd, INSTANCE_ARCHIVE_JSON,
                        INSTANCE_ARCHIVE_MAX_JSON, &text, &len, err) < 0)
    return -1;
  struct expected *parts = NULL;
  size_t n = 0;
  int r = parse_manifest(text, len, out, &parts, &n, err);
  expected_free(parts, n);
  return r;
}

/* ---- reading ------------------------------------------------------------ */

struct reader {
  struct archive *ar;
  const struct instance_import_opts *o;
  int workfd;
  bool failed; /* the outer stream failed: its message is the one to tell */
  unsigned part, parts;
};

static void read_progress(const struct reader *rd, const char *step) {
  if (!rd->o->progress)
    return;
  struct instance_archive_progress p = {
      step, rd->part, rd->parts, (uint64_t)archive_filter_bytes(rd->ar, -1)};
  rd->o->progress(rd->o->progress_ctx, &p);
}

/* The stream's start cannot be read: a short stream is cut before its
 * first entry is whole, which looks the same as a stream of another kind. */
static int fail_unreadable(struct archive *ar, cell_error **err) {
  return cell_fail(err, 0, "not an export of cell (a zstd-compressed tar), "
                   "or truncated or damaged: %s", archive_error_string(ar));
}

static int fail_stream(struct reader *rd, const char *what, cell_error **err) {
  const char *why = archive_error_string(rd->ar);
  return cell_fail(err, 0, "%s: the stream is truncated or damaged (%s)", what,
                   why ? why : "libarchive failed");
}

/* The current entry's data, for layer_extract_from. */
static ssize_t read_entry(void *ctx, void *buf, size_t len) {
  struct reader *rd = ctx;
  la_ssize_t n = archive_read_data(rd->ar, buf, len);
  if (n < 0) {
    rd->failed = true;
    errno = EIO;
    return -1;
  }
  return n;
}

/* The next entry must be `want`, a regular file of `size` bytes. */
static int next_entry(struct reader *rd, const char *want, uint64_t size,
                      cell_error **err) {
  struct archive_entry *e;
  int r = archive_read_next_header(rd->ar, &e);
  if (r == ARCHIVE_EOF)
    return cell_fail(err, 0, "the stream ends before `%s`: it is truncated",
                     want);
  if (r < ARCHIVE_WARN)
    return fail_stream(rd, want, err);
  const char *name = archive_entry_pathname(e);
  if (!name || strcmp(name, want) != 0)
    return cell_fail(err, 0, "entry `%s` where `%s` was due", name ? name : "",
                     want);
  if (archive_entry_filetype(e) != AE_IFREG ||
      (uint64_t)archive_entry_size(e) != size)
    return cell_fail(err, 0, "`%s`: not a file of %llu bytes, as announced",
                     want, (unsigned long long)size);
  return 0;
}

static int read_manifest(struct reader *rd, struct instance_import **im,
                         struct expected **parts, size_t *n,
                         cell_error **err) {
  struct archive_entry *e;
  int r = archive_read_next_header(rd->ar, &e);
  if (r == ARCHIVE_EOF)
    return cell_fail(err, 0, "the stream is empty");
  if (r < ARCHIVE_WARN)
    return fail_unreadable(rd->ar, err);
  const char *name = archive_entry_pathname(e);
  la_int64_t size = archive_entry_size(e);
  if (!name || strcmp(name, INSTANCE_ARCHIVE_JSON) != 0)
    return cell_fail(err, 0, "not an export of cell: its first entry is "
                     "`%s`, not `%s`", name ? name : "", INSTANCE_ARCHIVE_JSON);
  if (size <= 0 || size > INSTANCE_ARCHIVE_MAX_JSON)
    return cell_fail(err, 0, "`%s`: %lld bytes, beyond its limit of %d",
                     INSTANCE_ARCHIVE_JSON, (long long)size,
                     INSTANCE_ARCHIVE_MAX_JSON);
  cleanup_free char *text = xmalloc((size_t)size + 1);
  if (archive_read_data(rd->ar, text, (size_t)size) != size)
    return fail_stream(rd, INSTANCE_ARCHIVE_JSON, err);
  text[size] = '\0';
  if (parse_manifest(text, (size_t)size, im, parts, n, err) < 0)
    return cell_error_wrap(err, "`%s`", INSTANCE_ARCHIVE_JSON);
  /* Kept for the loop, which makes the instance of it. */
  return cell_write_file_atomic_at(rd->workfd, INSTANCE_ARCHIVE_JSON, text,
                                   (size_t)size, 0600, err);
}

static int check_digest(const struct expected *e, const char *got,
                        cell_error **err) {
  if (strcmp(got, e->sha256) == 0)
    return 0;
  return cell_fail(err, 0, "`%s`: its sha256 is %s, the export says %s: the "
                   "stream is damaged", e->entry, got, e->sha256);
}

/* A layer the store has: read through and checked, not kept. */
static int consume_part(struct reader *rd, const struct expected *e,
                        cell_error **err) {
  cleanup_digest digest_ctx *d = digest_new();
  cleanup_free char *buf = xmalloc(COPY_BUF_SIZE);
  ssize_t n;
  while ((n = read_entry(rd, buf, COPY_BUF_SIZE)) > 0)
    digest_update(d, buf, (size_t)n);
  if (n < 0)
    return fail_stream(rd, e->entry, err);
  char got[DIGEST_STR_LEN];
  digest_final(d, got);
  return check_digest(e, got, err);
}

/* parentfd/name, made (or, with existing_ok, already there) and opened. */
static int make_dir(int parentfd, const char *name, bool existing_ok,
                    cell_error **err) {
  if (mkdirat(parentfd, name, 0700) < 0 && !(existing_ok && errno == EEXIST))
    return cell_fail_errno(err, "mkdir %s", name);
  int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                      O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open %s", name);
  return fd;
}

/* The part extracted into dirfd while it is hashed. */
static int extract_part(struct reader *rd, const struct expected *e,
                        int dirfd, cell_error **err) {
  struct layer_stats stats;
  if (layer_extract_from(read_entry, rd, dirfd, &rd->o->lim,
                         LAYER_WHITEOUTS_OVERLAY, &stats, err) < 0) {
    if (rd->failed) {
      cell_error_free(err);
      return fail_stream(rd, e->entry, err);
    }
    return cell_error_wrap(err, "`%s`", e->entry);
  }
  return check_digest(e, stats.digest, err);
}

static bool store_has(const struct reader *rd, const char *hex) {
  struct stat st;
  return fstatat(rd->o->layersfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISDIR(st.st_mode);
}

/* A layer sent apart: the store has it, or it was read apart into the
 * work directory (instance_archive_read_layer). */
static int check_apart(const struct reader *rd, const struct expected *e,
                       cell_error **err) {
  const char *hex = image_id_hex(e->name);
  cleanup_free char *read_apart = xasprintf("layers/%s", hex);
  struct stat st;
  if (store_has(rd, hex) ||
      (fstatat(rd->workfd, read_apart, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
       S_ISDIR(st.st_mode)))
    return 0;
  return cell_fail(err, 0, "layer %s: sent apart from the stream, but "
                   "neither in this store nor received", e->name);
}

static int read_part(struct reader *rd, const struct expected *e,
                     cell_error **err) {
  if (e->apart)
    return check_apart(rd, e, err);
  if (next_entry(rd, e->entry, e->size, err) < 0)
    return -1;
  read_progress(rd, e->name ? "layer" : "disk");
  if (!e->name) {
    cleanup_close int fd = make_dir(rd->workfd, "upper", false, err);
    return fd < 0 ? -1 : extract_part(rd, e, fd, err);
  }
  const char *hex = image_id_hex(e->name);
  if (store_has(rd, hex))
    return consume_part(rd, e, err);
  cleanup_close int layersfd = make_dir(rd->workfd, "layers", true, err);
  if (layersfd < 0)
    return -1;
  /* Not existing_ok: a layer named twice in the JSON is refused here. */
  cleanup_close int fd = make_dir(layersfd, hex, false, err);
  return fd < 0 ? -1 : extract_part(rd, e, fd, err);
}

static int read_end(struct reader *rd, cell_error **err) {
  struct archive_entry *e;
  int r = archive_read_next_header(rd->ar, &e);
  if (r == ARCHIVE_EOF)
    return 0;
  if (r < ARCHIVE_WARN)
    return fail_stream(rd, "its end", err);
  return cell_fail(err, 0, "an entry `%s` after the last one",
                   archive_entry_pathname(e));
}

static int read_all(struct reader *rd, cell_error **err) {
  struct instance_import *im = NULL;
  struct expected *parts = NULL;
  size_t n = 0;
  int r = read_manifest(rd, &im, &parts, &n, err);
  instance_import_free(im);
  rd->parts = (unsigned)n;
  for (size_t i = 0; r == 0 && i < n; i++) {
    rd->part = (unsigned)i + 1;
    r = read_part(rd, &parts[i], err);
  }
  expected_free(parts, n);
  if (r == 0)
    r = read_end(rd, err);
  if (r == 0)
    read_progress(rd, "done");
  return r;
}

/* ---- a migration's layers, apart ---------------------------------------- */

int instance_archive_spool_layer(int layersfd, int spoolfd, const char *name,
                                 int *fd, uint64_t *size,
                                 char sha256[static DIGEST_STR_LEN],
                                 cell_error **err) {
  struct instance_export x = {.layersfd = layersfd, .spoolfd = spoolfd};
  struct part *p = xcalloc(1, sizeof(*p));
  p->fd = -1;
  int r = spool_layer(&x, name, p, err);
  if (r == 0) {
    *fd = p->fd;
    p->fd = -1;
    *size = p->size;
    memcpy(sha256, p->sha256, DIGEST_STR_LEN);
  }
  parts_free(p, 1);
  return r;
}

int instance_archive_read_layer(layer_read_fn read_fn, void *ctx,
                                const char *name, const char *sha256,
                                int workfd,
                                const struct instance_import_opts *o,
                                cell_error **err) {
  if (!name || !digest_is_valid(name) || !sha256 || !digest_is_valid(sha256))
    return cell_fail(err, 0, "a layer sent apart: its name and sha256 must "
                     "be sha256:<hex>");
  const char *hex = image_id_hex(name);
  cleanup_close int layersfd = make_dir(workfd, "layers", true, err);
  if (layersfd < 0)
    return -1;
  /* Not existing_ok: a layer sent twice is refused. */
  cleanup_close int fd = make_dir(layersfd, hex, false, err);
  if (fd < 0)
    return -1;
  struct layer_stats stats;
  if (layer_extract_from(read_fn, ctx, fd, &o->lim, LAYER_WHITEOUTS_OVERLAY,
                         &stats, err) < 0)
    return cell_error_wrap(err, "layer %s", name);
  if (strcmp(stats.digest, sha256) != 0)
    return cell_fail(err, 0, "layer %s: its sha256 is %s, the sender says "
                     "%s: the stream is damaged", name, stats.digest, sha256);
  return 0;
}

int instance_archive_read(int in_fd, int workfd,
                          const struct instance_import_opts *o,
                          cell_error **err) {
  cleanup_read_archive struct archive *ar = archive_read_new();
  if (ar == NULL)
    return cell_fail(err, ENOMEM, "libarchive");
  archive_read_support_filter_zstd(ar);
  archive_read_support_format_tar(ar);
  if (archive_read_open_fd(ar, in_fd, OUT_BLOCK_SIZE) != ARCHIVE_OK) {
    fail_unreadable(ar, err);
    return cell_error_wrap(err, "import");
  }
  struct reader rd = {.ar = ar, .o = o, .workfd = workfd};
  if (read_all(&rd, err) < 0)
    return cell_error_wrap(err, "import");
  return 0;
}
