/* The image store on disk and in memory: images, their layers and refs
 * (image-store.h has the layout).  One process writes it (celld's loop);
 * an import in a child process only adds layers and an image description,
 * which the loop then loads. */
#include "storage/image-store.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"

#define MAX_DESCRIPTION (4u << 20)

/* A refusal whose errnum tells callers its kind (ENOENT: no such image),
 * without strerror's words in the message. */
__attribute__((format(printf, 3, 4))) static int refuse(cell_error **err,
                                                        int kind,
                                                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cell_vfail(err, 0, fmt, ap);
  va_end(ap);
  (*err)->errnum = kind;
  return -1;
}

/* ---- images ------------------------------------------------------------- */

void image_free(struct image *img) {
  if (!img)
    return;
  free(img->id);
  cell_strv_free(img->layers);
  free(img->created);
  free(img->imported);
  free(img->architecture);
  free(img->source);
  cell_strv_free(img->entrypoint);
  cell_strv_free(img->cmd);
  cell_strv_free(img->env);
  free(img->working_dir);
  free(img->user);
  free(img);
}

const char *image_id_hex(const char *id) {
  if (!id || !digest_is_valid(id))
    return NULL;
  return id + strlen("sha256:");
}

static void gen_strv(struct json_gen *g, const char *key, char *const *v) {
  if (!v)
    return;
  json_gen_key(g, key);
  json_gen_array_open(g);
  for (size_t i = 0; v[i]; i++)
    json_gen_string(g, v[i]);
  json_gen_array_close(g);
}

static void gen_opt_string(struct json_gen *g, const char *key, const char *s) {
  if (s)
    json_gen_kv_string(g, key, s);
}

static void gen_config(struct json_gen *g, const struct image *img) {
  json_gen_object_open(g);
  gen_strv(g, "entrypoint", img->entrypoint);
  gen_strv(g, "cmd", img->cmd);
  gen_strv(g, "env", img->env);
  gen_opt_string(g, "working_dir", img->working_dir);
  gen_opt_string(g, "user", img->user);
  json_gen_object_close(g);
}

/* What makes the image what it is: its layers and config, not where or
 * when it came from.  Its id is the sha256 of this text. */
static char *identity_json(const struct image *img) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  gen_strv(g, "layers", img->layers);
  gen_opt_string(g, "architecture", img->architecture);
  gen_opt_string(g, "created", img->created);
  json_gen_key(g, "config");
  gen_config(g, img);
  json_gen_object_close(g);
  char *text = json_gen_finish(g, NULL);
  json_gen_free(g);
  return text;
}

void image_identity_digest(const struct image *img,
                           char out[static DIGEST_STR_LEN]) {
  cleanup_free char *text = identity_json(img);
  cleanup_digest digest_ctx *d = digest_new();
  digest_update(d, text, strlen(text));
  digest_final(d, out);
}

char *image_to_json(const struct image *img, bool pretty) {
  struct json_gen *g = json_gen_new(pretty);
  json_gen_object_open(g);
  gen_strv(g, "layers", img->layers);
  json_gen_key(g, "size");
  json_gen_uint(g, img->size);
  gen_opt_string(g, "created", img->created);
  gen_opt_string(g, "imported", img->imported);
  gen_opt_string(g, "architecture", img->architecture);
  gen_opt_string(g, "source", img->source);
  json_gen_key(g, "config");
  gen_config(g, img);
  json_gen_object_close(g);
  char *text = json_gen_finish(g, NULL);
  json_gen_free(g);
  return text;
}


static int get_strv(const struct json_value *o, const char *key, char ***out,
                    cell_error **err) {
  const struct json_value *a = json_object_get(o, key);
  if (!a)
    return 0;
  if (a->type != JSON_ARRAY)
    return cell_fail(err, 0, "`%s` must be an array", key);
  cleanup_strv char **v = xcalloc(a->u.array.len + 1, sizeof(char *));
  for (size_t i = 0; i < a->u.array.len; i++) {
    if (a->u.array.items[i]->type != JSON_STRING)
      return cell_fail(err, 0, "`%s[%zu]` must be a string", key, i);
    v[i] = xstrdup(a->u.array.items[i]->u.string);
  }
  *out = steal_pointer(&v);
  return 0;
}

static char *dup_string(const struct json_value *o, const char *key) {
  const struct json_value *s = json_object_get(o, key);
  return s && s->type == JSON_STRING ? xstrdup(s->u.string) : NULL;
}

int image_from_json(const char *text, size_t len, const char *id,
                    struct image **out, cell_error **err) {
  cleanup_json struct json_value *v = NULL;
  if (json_parse(text, len, &v, err) < 0)
    return -1;
  if (v->type != JSON_OBJECT)
    return cell_fail(err, 0, "image %s: not a JSON object", id);
  cleanup_image struct image *img = xcalloc(1, sizeof(*img));
  img->id = xstrdup(id);
  const struct json_value *cfg = json_object_get(v, "config");
  if (get_strv(v, "layers", &img->layers, err) < 0 ||
      (cfg && (get_strv(cfg, "entrypoint", &img->entrypoint, err) < 0 ||
               get_strv(cfg, "cmd", &img->cmd, err) < 0 ||
               get_strv(cfg, "env", &img->env, err) < 0)))
    return cell_error_wrap(err, "image %s", id);
  if (!img->layers || !img->layers[0])
    return cell_fail(err, 0, "image %s: no layers", id);
  for (size_t i = 0; img->layers[i]; i++)
    if (!image_id_hex(img->layers[i]))
      return cell_fail(err, 0, "image %s: layer `%s` is not a sha256 digest",
                       id, img->layers[i]);
  const struct json_value *size = json_object_get(v, "size");
  if (size && !json_get_uint64(size, &img->size))
    return cell_fail(err, 0, "image %s: `size` must be a count of bytes", id);
  img->created = dup_string(v, "created");
  img->imported = dup_string(v, "imported");
  img->architecture = dup_string(v, "architecture");
  img->source = dup_string(v, "source");
  if (cfg) {
    img->working_dir = dup_string(cfg, "working_dir");
    img->user = dup_string(cfg, "user");
  }
  *out = steal_pointer(&img);
  return 0;
}

struct image *image_with_layers_above(const struct image *img,
                                      char *const *above) {
  struct image *c = xcalloc(1, sizeof(*c));
  c->layers = cell_strv_dup(img->layers);
  for (size_t i = 0; above && above[i]; i++)
    cell_strv_push(&c->layers, above[i]);
  c->size = img->size;
  c->created = img->created ? xstrdup(img->created) : NULL;
  c->imported = img->imported ? xstrdup(img->imported) : NULL;
  c->architecture = img->architecture ? xstrdup(img->architecture) : NULL;
  c->source = img->source ? xstrdup(img->source) : NULL;
  c->entrypoint = cell_strv_dup(img->entrypoint);
  c->cmd = cell_strv_dup(img->cmd);
  c->env = cell_strv_dup(img->env);
  c->working_dir = img->working_dir ? xstrdup(img->working_dir) : NULL;
  c->user = img->user ? xstrdup(img->user) : NULL;
  char id[DIGEST_STR_LEN];
  image_identity_digest(c, id);
  c->id = xstrdup(id);
  return c;
}

const struct image *image_store_find(const struct image_store *s,
                                     const char *id) {
  for (size_t i = 0; i < s->n_images; i++)
    if (strcmp(s->images[i]->id, id) == 0)
      return s->images[i];
  return NULL;
}

static void add_image(struct image_store *s, struct image *img) {
  s->images = xrealloc(s->images, (s->n_images + 1) * sizeof(*s->images));
  s->images[s->n_images++] = img;
}

static int read_image(struct image_store *s, const char *hex,
                      struct image **out, cell_error **err) {
  cleanup_free char *name = xasprintf("%s.json", hex);
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (cell_read_file_at(s->imagesfd, name, MAX_DESCRIPTION, &text, &len, err) < 0)
    return -1;
  cleanup_free char *id = xasprintf("sha256:%s", hex);
  cleanup_image struct image *img = NULL;
  if (image_from_json(text, len, id, &img, err) < 0)
    return -1;
  /* The name is the digest of what the image is: a changed file is not
   * that image. */
  char sum[DIGEST_STR_LEN];
  image_identity_digest(img, sum);
  if (strcmp(sum, id) != 0)
    return cell_fail(err, 0, "image %s: its description does not match its "
                             "digest (%s): remove images/%s", id, sum, name);
  *out = steal_pointer(&img);
  return 0;
}

const struct image *image_store_load(struct image_store *s, const char *id,
                                     cell_error **err) {
  const struct image *have = image_store_find(s, id);
  if (have)
    return have;
  const char *hex = image_id_hex(id);
  if (!hex) {
    cell_fail(err, 0, "`%s` is not an image id", id);
    return NULL;
  }
  struct image *img = NULL;
  if (read_image(s, hex, &img, err) < 0)
    return NULL;
  add_image(s, img);
  return img;
}

int image_store_write(struct image_store *s, struct image *img,
                      cell_error **err) {
  char sum[DIGEST_STR_LEN];
  image_identity_digest(img, sum);
  free(img->id);
  img->id = xstrdup(sum);
  /* The same image again keeps its first description (when and whence it
   * first came). */
  cleanup_free char *name = xasprintf("%s.json", image_id_hex(sum));
  struct stat st;
  if (fstatat(s->imagesfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  cleanup_free char *text = image_to_json(img, false);
  return cell_write_file_atomic_at(s->imagesfd, name, text, strlen(text), 0644,
                                   err);
}

/* ---- refs --------------------------------------------------------------- */

static void ref_clear(struct image_ref *r) {
  free(r->name);
  free(r->tag);
  free(r->image);
}

static bool name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > IMAGE_NAME_MAX || strchr("._-/", s[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum)
      continue;
    /* A separator never starts or ends a part nor follows another. */
    if (!strchr("._-/", c) || i == 0 || strchr("._-/", s[i - 1]))
      return false;
  }
  return true;
}

static bool tag_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > IMAGE_TAG_MAX || s[0] == '.' || s[0] == '-')
    return false;
  return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789_.-") == n;
}

int image_ref_parse(const char *text, char **name, char **tag,
                    cell_error **err) {
  const char *colon = strrchr(text, ':');
  cleanup_free char *n = colon ? xstrndup(text, (size_t)(colon - text))
                               : xstrdup(text);
  cleanup_free char *t = xstrdup(colon ? colon + 1 : IMAGE_DEFAULT_TAG);
  if (!name_ok(n))
    return refuse(err, EINVAL,
                     "image name `%s`: lower-case letters, digits and . _ - / "
                     "between them, at most %d bytes (e.g. debian:12)",
                     n, IMAGE_NAME_MAX);
  if (!tag_ok(t))
    return refuse(err, EINVAL,
                     "image tag `%s`: letters, digits, _ . - (not first), at "
                     "most %d bytes", t, IMAGE_TAG_MAX);
  *name = steal_pointer(&n);
  *tag = steal_pointer(&t);
  return 0;
}

static int save_refs(struct image_store *s, cell_error **err) {
  struct json_gen *g = json_gen_new(true);
  json_gen_array_open(g);
  for (size_t i = 0; i < s->n_refs; i++) {
    const struct image_ref *r = &s->refs[i];
    json_gen_object_open(g);
    json_gen_kv_int(g, "owner", r->owner);
    json_gen_kv_string(g, "name", r->name);
    json_gen_kv_string(g, "tag", r->tag);
    json_gen_kv_string(g, "image", r->image);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  size_t len = 0;
  cleanup_free char *text = json_gen_finish(g, &len);
  json_gen_free(g);
  return cell_write_file_atomic_at(s->dirfd, "refs.json", text, len, 0600, err);
}

static int load_ref(const struct json_value *o, struct image_ref *r,
                    cell_error **err) {
  const struct json_value *owner = json_object_get(o, "owner");
  int64_t uid;
  r->name = dup_string(o, "name");
  r->tag = dup_string(o, "tag");
  r->image = dup_string(o, "image");
  if (!owner || !json_get_int64(owner, &uid) || uid < 0 || uid > UINT32_MAX ||
      !r->name || !r->tag || !image_id_hex(r->image))
    return cell_fail(err, 0, "refs.json: a malformed entry");
  r->owner = (uid_t)uid;
  return 0;
}

static int load_refs(struct image_store *s, cell_error **err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  cleanup_error cell_error *missing = NULL;
  if (cell_read_file_at(s->dirfd, "refs.json", MAX_DESCRIPTION, &text, &len,
                        &missing) < 0) {
    if (missing->errnum == ENOENT)
      return 0;
    *err = steal_pointer(&missing);
    return -1;
  }
  cleanup_json struct json_value *v = NULL;
  if (json_parse(text, len, &v, err) < 0)
    return cell_error_wrap(err, "%s/refs.json", s->dir);
  if (v->type != JSON_ARRAY)
    return cell_fail(err, 0, "%s/refs.json: not an array", s->dir);
  s->refs = xcalloc(v->u.array.len + 1, sizeof(*s->refs));
  for (size_t i = 0; i < v->u.array.len; i++) {
    struct image_ref *r = &s->refs[s->n_refs++];
    if (load_ref(v->u.array.items[i], r, err) < 0)
      return cell_error_wrap(err, "%s", s->dir);
  }
  return 0;
}

size_t image_store_ref_count(const struct image_store *s, const char *id) {
  size_t n = 0;
  for (size_t i = 0; i < s->n_refs; i++)
    n += strcmp(s->refs[i].image, id) == 0;
  return n;
}

bool image_store_visible(const struct image_store *s, uid_t caller,
                         const char *id) {
  if (caller == 0)
    return image_store_find(s, id) != NULL;
  for (size_t i = 0; i < s->n_refs; i++)
    if (strcmp(s->refs[i].image, id) == 0 &&
        (s->refs[i].owner == caller || s->refs[i].owner == 0))
      return true;
  return false;
}

static const struct image_ref *find_ref(const struct image_store *s,
                                        uid_t owner, const char *name,
                                        const char *tag) {
  for (size_t i = 0; i < s->n_refs; i++)
    if (s->refs[i].owner == owner && strcmp(s->refs[i].name, name) == 0 &&
        strcmp(s->refs[i].tag, tag) == 0)
      return &s->refs[i];
  return NULL;
}

/* "sha256:<hex>" or a bare hex prefix of at least 12 digits. */
static const struct image *resolve_id(const struct image_store *s,
                                      uid_t caller, const char *text,
                                      cell_error **err) {
  const char *hex = strncmp(text, "sha256:", 7) == 0 ? text + 7 : text;
  size_t n = strlen(hex);
  const struct image *found = NULL;
  for (size_t i = 0; i < s->n_images; i++) {
    const struct image *img = s->images[i];
    if (strncmp(image_id_hex(img->id), hex, n) != 0 ||
        !image_store_visible(s, caller, img->id))
      continue;
    if (found) {
      refuse(err, EINVAL, "image id `%s` is ambiguous: give more digits",
                text);
      return NULL;
    }
    found = img;
  }
  if (!found)
    refuse(err, ENOENT, "no image `%s` (cellctl image list)", text);
  return found;
}

static bool looks_like_id(const char *text) {
  const char *hex = strncmp(text, "sha256:", 7) == 0 ? text + 7 : text;
  size_t n = strlen(hex);
  return n >= 12 && n <= 64 && strspn(hex, "0123456789abcdef") == n &&
         (hex != text || n == 64 || strchr(text, ':') == NULL);
}

const struct image *image_store_resolve(const struct image_store *s,
                                        uid_t caller, const char *text,
                                        cell_error **err) {
  if (looks_like_id(text)) {
    cleanup_error cell_error *ignored = NULL;
    const struct image *img = resolve_id(s, caller, text, &ignored);
    if (img || strncmp(text, "sha256:", 7) == 0) {
      if (!img)
        *err = steal_pointer(&ignored);
      return img;
    }
  }
  cleanup_free char *name = NULL, *tag = NULL;
  if (image_ref_parse(text, &name, &tag, err) < 0)
    return NULL;
  const struct image_ref *r = find_ref(s, caller, name, tag);
  if (!r && caller != 0)
    r = find_ref(s, 0, name, tag);
  if (!r) {
    refuse(err, ENOENT, "no image `%s:%s` (cellctl image list)", name, tag);
    return NULL;
  }
  return image_store_find(s, r->image);
}

int image_store_tag(struct image_store *s, uid_t owner, const char *name,
                    const char *tag, const char *id, cell_error **err) {
  if (!image_store_find(s, id))
    return refuse(err, ENOENT, "no image `%s`", id);
  const char *n = name ? name : "", *t = name ? tag : "";
  struct image_ref *r = (struct image_ref *)find_ref(s, owner, n, t);
  if (r && !name && strcmp(r->image, id) != 0)
    r = NULL; /* anonymous refs: one per image */
  if (!name)
    for (size_t i = 0; i < s->n_refs && !r; i++)
      if (s->refs[i].owner == owner && strcmp(s->refs[i].image, id) == 0)
        return 0; /* already owner's under some name */
  if (r) {
    free(r->image);
    r->image = xstrdup(id);
  } else {
    s->refs = xrealloc(s->refs, (s->n_refs + 1) * sizeof(*s->refs));
    s->refs[s->n_refs++] = (struct image_ref){
        .owner = owner, .name = xstrdup(n), .tag = xstrdup(t),
        .image = xstrdup(id)};
  }
  /* A named image no longer needs its anonymous ref. */
  for (size_t i = 0; name && i < s->n_refs; i++)
    if (s->refs[i].owner == owner && s->refs[i].name[0] == '\0' &&
        strcmp(s->refs[i].image, id) == 0) {
      ref_clear(&s->refs[i]);
      s->refs[i] = s->refs[--s->n_refs];
      break;
    }
  return save_refs(s, err);
}

int image_store_untag(struct image_store *s, uid_t owner, const char *text,
                      char **id_out, cell_error **err) {
  cleanup_free char *id = NULL;
  cleanup_free char *name = NULL, *tag = NULL;
  if (looks_like_id(text)) {
    const struct image *img = resolve_id(s, owner, text, err);
    if (!img)
      return -1;
    id = xstrdup(img->id);
  } else {
    if (image_ref_parse(text, &name, &tag, err) < 0)
      return -1;
    const struct image_ref *r = find_ref(s, owner, name, tag);
    if (!r)
      return refuse(err, ENOENT, "no image `%s:%s` of yours", name, tag);
    id = xstrdup(r->image);
  }
  size_t kept = 0;
  for (size_t i = 0; i < s->n_refs; i++) {
    struct image_ref *r = &s->refs[i];
    bool drop = r->owner == owner && strcmp(r->image, id) == 0 &&
                (!name || (strcmp(r->name, name) == 0 && strcmp(r->tag, tag) == 0));
    if (drop)
      ref_clear(r);
    else
      s->refs[kept++] = *r;
  }
  s->n_refs = kept;
  if (save_refs(s, err) < 0)
    return -1;
  *id_out = steal_pointer(&id);
  return 0;
}

/* ---- removal and collection --------------------------------------------- */

static bool layer_in_use(const struct image_store *s, const char *hex) {
  for (size_t i = 0; i < s->n_images; i++)
    for (size_t j = 0; s->images[i]->layers[j]; j++)
      if (strcmp(image_id_hex(s->images[i]->layers[j]), hex) == 0)
        return true;
  return false;
}

static bool is_hex64(const char *s) {
  return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static bool named_in(char *const *keep, const char *hex) {
  for (size_t i = 0; keep && keep[i]; i++)
    if (strcmp(keep[i], hex) == 0)
      return true;
  return false;
}

int image_store_collect(struct image_store *s, char *const *keep,
                        cell_error **err) {
  int fd = openat(s->layersfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    if (fd >= 0)
      close(fd);
    return cell_fail_errno(err, "read %s/layers", s->dir);
  }
  cleanup_strv char **unused = NULL;
  for (struct dirent *e; (e = readdir(d));)
    if (is_hex64(e->d_name) && !layer_in_use(s, e->d_name) &&
        !named_in(keep, e->d_name))
      cell_strv_push(&unused, e->d_name);
  closedir(d);
  for (size_t i = 0; unused && unused[i]; i++)
    if (cell_rm_rf_at(s->layersfd, unused[i], err) < 0)
      return cell_error_wrap(err, "remove layer %s", unused[i]);
  return 0;
}

int image_store_remove(struct image_store *s, const char *id,
                       cell_error **err) {
  const char *hex = image_id_hex(id);
  if (!hex)
    return refuse(err, EINVAL, "`%s` is not an image id", id);
  cleanup_free char *name = xasprintf("%s.json", hex);
  if (unlinkat(s->imagesfd, name, 0) < 0 && errno != ENOENT)
    return cell_fail_errno(err, "remove %s/images/%s", s->dir, name);
  for (size_t i = 0; i < s->n_images; i++)
    if (strcmp(s->images[i]->id, id) == 0) {
      image_free(s->images[i]);
      s->images[i] = s->images[--s->n_images];
      break;
    }
  return 0;
}

/* ---- opening ------------------------------------------------------------ */

void image_store_free(struct image_store *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->n_images; i++)
    image_free(s->images[i]);
  free(s->images);
  for (size_t i = 0; i < s->n_refs; i++)
    ref_clear(&s->refs[i]);
  free(s->refs);
  for (int *fd = &s->dirfd; fd <= &s->tmpfd; fd++)
    if (*fd >= 0)
      close(*fd);
  free(s->dir);
  free(s);
}

static int open_subdir(int dirfd, const char *name, mode_t mode, int *out,
                       cell_error **err) {
  if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", name);
  *out = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (*out < 0)
    return cell_fail_errno(err, "open `%s`", name);
  return 0;
}

static int load_images(struct image_store *s, cell_error **err) {
  int fd = openat(s->imagesfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    if (fd >= 0)
      close(fd);
    return cell_fail_errno(err, "read %s/images", s->dir);
  }
  int rc = 0;
  for (struct dirent *e; rc == 0 && (e = readdir(d));) {
    size_t n = strlen(e->d_name);
    if (n != 64 + 5 || strcmp(e->d_name + 64, ".json") != 0)
      continue;
    cleanup_free char *hex = xstrndup(e->d_name, 64);
    struct image *img = NULL;
    rc = read_image(s, hex, &img, err);
    if (rc == 0)
      add_image(s, img);
  }
  closedir(d);
  return rc;
}

int image_store_open(const char *dir, struct image_store **out,
                     cell_error **err) {
  if (cell_mkdir_p(dir, 0700, err) < 0)
    return -1;
  cleanup_image_store struct image_store *s = xcalloc(1, sizeof(*s));
  s->dir = xstrdup(dir);
  s->layersfd = s->imagesfd = s->tmpfd = -1;
  s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (s->dirfd < 0)
    return cell_fail_errno(err, "open the image store `%s`", dir);
  /* What an interrupted import left in tmp/ is never an image. */
  if (cell_rm_rf_at(s->dirfd, "tmp", err) < 0 ||
      open_subdir(s->dirfd, "layers", 0700, &s->layersfd, err) < 0 ||
      open_subdir(s->dirfd, "images", 0700, &s->imagesfd, err) < 0 ||
      open_subdir(s->dirfd, "tmp", 0700, &s->tmpfd, err) < 0 ||
      load_images(s, err) < 0 || load_refs(s, err) < 0)
    return cell_error_wrap(err, "image store `%s`", dir);
  *out = steal_pointer(&s);
  return 0;
}
