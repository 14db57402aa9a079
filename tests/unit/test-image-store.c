/* The image store: ref names, the store's directories, image descriptions
 * named by their digest, refs and who sees what, removal of images and
 * of the layers no image uses. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "storage/image-store.h"
#include "unit.h"

static char base[PATH_MAX]; /* <tmp>/cell-image-store-XXXXXX */
static int store_count;

static void must(int r, const char *what) {
  if (r < 0) {
    perror(what);
    exit(2);
  }
}

/* A fresh, not yet created, store path beneath base (static buffer). */
static const char *new_store_path(void) {
  static char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/store%d", base, store_count++);
  return path;
}

static struct image_store *open_store(const char *path) {
  struct image_store *s = NULL;
  cleanup_error cell_error *err = NULL;
  if (image_store_open(path, &s, &err) < 0) {
    fprintf(stderr, "image_store_open %s: %s\n", path, err->msg);
    exit(2);
  }
  return s;
}

static bool exists_at(int dirfd, const char *rel) {
  struct stat st;
  return fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
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

/* "sha256:" and 64 times c. */
static char *layer_digest(char c) {
  char hex[65];
  memset(hex, c, 64);
  hex[64] = '\0';
  return xasprintf("sha256:%s", hex);
}

/* Make layers/<hex> of digest (a directory holding one file). */
static void add_layer_dir(struct image_store *s, const char *digest) {
  const char *hex = image_id_hex(digest);
  must(mkdirat(s->layersfd, hex, 0755), hex);
  cleanup_free char *file = xasprintf("%s/f", hex);
  int fd = openat(s->layersfd, file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  must(fd, file);
  close(fd);
}

/* An image of the layers given by their hex digit ('a': sha256:aaa...),
 * with arch as its architecture; written to the store and loaded; returns
 * its id (caller frees). */
static char *make_image(struct image_store *s, const char *layer_chars,
                        const char *arch) {
  struct image *img = xcalloc(1, sizeof(*img));
  for (const char *c = layer_chars; *c; c++) {
    cleanup_free char *d = layer_digest(*c);
    if (!exists_at(s->layersfd, image_id_hex(d)))
      add_layer_dir(s, d);
    cell_strv_push(&img->layers, d);
  }
  img->size = 42;
  img->architecture = xstrdup(arch);
  img->created = xstrdup("2026-12-06T12:00:00Z");
  img->imported = xstrdup("2026-12-06T13:00:00Z");
  img->source = xstrdup("test");
  cell_strv_push(&img->cmd, "/bin/sh");
  cell_strv_push(&img->env, "PATH=/bin");
  img->working_dir = xstrdup("/");
  cleanup_error cell_error *err = NULL;
  if (image_store_write(s, img, &err) < 0) {
    fprintf(stderr, "image_store_write: %s\n", err->msg);
    exit(2);
  }
  char *id = xstrdup(img->id);
  image_free(img);
  if (!image_store_load(s, id, &err)) {
    fprintf(stderr, "image_store_load: %s\n", err->msg);
    exit(2);
  }
  return id;
}

/* ---- names -------------------------------------------------------------- */

static void parse_ok(const char *text, const char *want_name,
                     const char *want_tag) {
  cleanup_free char *name = NULL, *tag = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(image_ref_parse(text, &name, &tag, &err) == 0);
  if (err)
    fprintf(stderr, "`%s`: %s\n", text, err->msg);
  CHECK_STR(name, want_name);
  CHECK_STR(tag, want_tag);
}

/* text is refused with a message that contains part ("image name `x`"). */
static void parse_refused(const char *text, const char *part) {
  char *name = NULL, *tag = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(image_ref_parse(text, &name, &tag, &err) < 0);
  CHECK(name == NULL && tag == NULL);
  CHECK(err && err->errnum == EINVAL);
  CHECK_CONTAINS(err ? err->msg : NULL, part);
  free(name);
  free(tag);
}

TEST(ref_parse_good_names_and_the_default_tag) {
  parse_ok("debian", "debian", "latest");
  parse_ok("debian:12", "debian", "12");
  parse_ok("library/alpine:3.19", "library/alpine", "3.19");
  parse_ok("a.b-c_d", "a.b-c_d", "latest");
  parse_ok("x:Tag_1.-", "x", "Tag_1.-");
  char longest[IMAGE_NAME_MAX + 1];
  memset(longest, 'a', IMAGE_NAME_MAX);
  longest[IMAGE_NAME_MAX] = '\0';
  parse_ok(longest, longest, "latest");
}

TEST(ref_parse_bad_names_are_refused_naming_the_part) {
  parse_refused("Upper", "image name `Upper`");
  parse_refused("-x", "image name `-x`");
  parse_refused("x-", "image name `x-`");
  parse_refused("x.", "image name `x.`");
  parse_refused("a//b", "image name `a//b`");
  parse_refused("a/", "image name `a/`");
  parse_refused("/a", "image name `/a`");
  parse_refused("a/-b", "image name `a/-b`");
  parse_refused("", "image name ``");
  parse_refused(":12", "image name ``");
  char toolong[IMAGE_NAME_MAX + 2];
  memset(toolong, 'a', IMAGE_NAME_MAX + 1);
  toolong[IMAGE_NAME_MAX + 1] = '\0';
  parse_refused(toolong, "image name `aaaa");
  parse_refused("debian:.x", "image tag `.x`");
  parse_refused("debian:-x", "image tag `-x`");
  parse_refused("debian:a/b", "image tag `a/b`");
  parse_refused("debian:", "image tag ``");
}

/* ---- the store's directories and image descriptions --------------------- */

TEST(open_makes_the_directories_and_empties_tmp) {
  const char *path = new_store_path();
  struct image_store *s = open_store(path);
  CHECK(exists_at(s->dirfd, "layers") && exists_at(s->dirfd, "images") &&
        exists_at(s->dirfd, "tmp"));
  CHECK(s->n_images == 0 && s->n_refs == 0);
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0700);
  /* What an interrupted import left. */
  must(mkdirat(s->tmpfd, "import-1-0", 0700), "mkdir tmp/import-1-0");
  int fd = openat(s->tmpfd, "import-1-0/source", O_WRONLY | O_CREAT, 0600);
  must(fd, "tmp file");
  close(fd);
  fd = openat(s->tmpfd, "stray", O_WRONLY | O_CREAT, 0600);
  must(fd, "tmp file");
  close(fd);
  CHECK(count_dir(s->dirfd, "tmp") == 2);
  image_store_free(s);
  s = open_store(path);
  CHECK(exists_at(s->dirfd, "tmp"));
  CHECK(count_dir(s->dirfd, "tmp") == 0);
  image_store_free(s);
}

TEST(write_and_load_round_trip_and_the_same_image_is_one_file) {
  const char *path = new_store_path();
  cleanup_image_store struct image_store *s = open_store(path);
  cleanup_free char *id = make_image(s, "ab", "amd64");
  CHECK(image_id_hex(id) != NULL);
  CHECK(count_dir(s->dirfd, "images") == 1);
  cleanup_free char *file = xasprintf("%s.json", image_id_hex(id));
  CHECK(exists_at(s->imagesfd, file));

  /* Another process's store sees it from disk. */
  cleanup_image_store struct image_store *t = open_store(path);
  const struct image *img = image_store_find(t, id);
  CHECK(img != NULL);
  if (img) {
    CHECK_STR(img->id, id);
    CHECK(img->layers && img->layers[0] && img->layers[1] && !img->layers[2]);
    cleanup_free char *a = layer_digest('a'), *b = layer_digest('b');
    CHECK_STR(img->layers[0], a);
    CHECK_STR(img->layers[1], b);
    CHECK(img->size == 42);
    CHECK_STR(img->architecture, "amd64");
    CHECK_STR(img->created, "2026-12-06T12:00:00Z");
    CHECK_STR(img->imported, "2026-12-06T13:00:00Z");
    CHECK_STR(img->source, "test");
    CHECK(img->cmd && !img->cmd[1]);
    CHECK_STR(img->cmd ? img->cmd[0] : NULL, "/bin/sh");
    CHECK_STR(img->env ? img->env[0] : NULL, "PATH=/bin");
    CHECK(img->entrypoint == NULL);
    CHECK_STR(img->working_dir, "/");
    CHECK(img->user == NULL);
  }
  /* image_store_load of a loaded image is that image. */
  cleanup_error cell_error *err = NULL;
  CHECK(image_store_load(t, id, &err) == img);

  /* The same image again, imported later from elsewhere: one file, which
   * keeps the first description. */
  struct image *again = xcalloc(1, sizeof(*again));
  for (size_t i = 0; img && img->layers[i]; i++)
    cell_strv_push(&again->layers, img->layers[i]);
  again->size = 42;
  again->architecture = xstrdup("amd64");
  again->created = xstrdup("2026-12-06T12:00:00Z");
  again->imported = xstrdup("2027-01-01T00:00:00Z");
  again->source = xstrdup("elsewhere");
  cell_strv_push(&again->cmd, "/bin/sh");
  cell_strv_push(&again->env, "PATH=/bin");
  again->working_dir = xstrdup("/");
  CHECK(image_store_write(s, again, &err) == 0);
  CHECK_STR(again->id, id);
  image_free(again);
  CHECK(count_dir(s->dirfd, "images") == 1);
  cleanup_image_store struct image_store *u = open_store(path);
  CHECK(u->n_images == 1);
  CHECK_STR(u->n_images ? u->images[0]->source : NULL, "test");

  /* Another config is another image. */
  cleanup_free char *other = make_image(s, "ab", "arm64");
  CHECK(strcmp(other, id) != 0);
  CHECK(count_dir(s->dirfd, "images") == 2);

  /* Not an id; an id without a file. */
  CHECK(image_store_load(s, "debian", &err) == NULL);
  CHECK_CONTAINS(err ? err->msg : NULL, "is not an image id");
  cell_error_free(&err);
  cleanup_free char *none = layer_digest('0');
  CHECK(image_store_load(s, none, &err) == NULL);
  CHECK(err != NULL);
}

TEST(a_tampered_description_is_refused_at_open) {
  const char *path = new_store_path();
  cleanup_free char *file = NULL;
  {
    cleanup_image_store struct image_store *s = open_store(path);
    cleanup_free char *id = make_image(s, "a", "amd64");
    file = xasprintf("%s/images/%s.json", path, image_id_hex(id));
  }
  /* One byte: amd64 -> amd65, still good JSON. */
  char *text = NULL;
  size_t len = 0;
  cleanup_error cell_error *err = NULL;
  must(cell_read_file_at(AT_FDCWD, file, 0, &text, &len, &err), file);
  char *p = strstr(text, "amd64");
  CHECK(p != NULL);
  if (p)
    p[4] = '5';
  int fd = open(file, O_WRONLY | O_TRUNC | O_CLOEXEC);
  must(fd, file);
  must((int)cell_write_all(fd, text, len), file);
  close(fd);
  free(text);
  struct image_store *s = NULL;
  CHECK(image_store_open(path, &s, &err) < 0);
  CHECK(s == NULL);
  CHECK_CONTAINS(err ? err->msg : NULL,
                 "its description does not match its digest");
  image_store_free(s);
}

/* ---- refs ---------------------------------------------------------------- */

/* The id caller resolves text to, or NULL (with the error's kind in
 * *errnum and its message in msg). */
static const char *resolve(const struct image_store *s, uid_t caller,
                           const char *text, int *errnum, char *msg,
                           size_t msglen) {
  cleanup_error cell_error *err = NULL;
  const struct image *img = image_store_resolve(s, caller, text, &err);
  *errnum = err ? err->errnum : 0;
  snprintf(msg, msglen, "%s", err ? err->msg : "");
  return img ? img->id : NULL;
}

static int tag(struct image_store *s, uid_t owner, const char *name,
               const char *t, const char *id) {
  cleanup_error cell_error *err = NULL;
  int r = image_store_tag(s, owner, name, t, id, &err);
  if (r < 0)
    fprintf(stderr, "image_store_tag: %s\n", err->msg);
  return r;
}

TEST(refs_resolve_by_name_id_and_prefix) {
  const char *path = new_store_path();
  cleanup_image_store struct image_store *s = open_store(path);
  cleanup_free char *a = make_image(s, "a", "amd64");
  cleanup_free char *b = make_image(s, "b", "amd64");
  CHECK(tag(s, 0, "debian", "12", a) == 0);
  CHECK(tag(s, 0, "debian", "latest", a) == 0);
  CHECK(image_store_ref_count(s, a) == 2);
  CHECK(image_store_ref_count(s, b) == 0);
  int errnum;
  char msg[512];

  CHECK_STR(resolve(s, 0, "debian:12", &errnum, msg, sizeof(msg)), a);
  CHECK_STR(resolve(s, 0, "debian", &errnum, msg, sizeof(msg)), a);
  CHECK_STR(resolve(s, 0, a, &errnum, msg, sizeof(msg)), a);
  CHECK_STR(resolve(s, 0, image_id_hex(a), &errnum, msg, sizeof(msg)), a);
  char prefix[16];
  snprintf(prefix, sizeof(prefix), "%.12s", image_id_hex(b));
  CHECK_STR(resolve(s, 0, prefix, &errnum, msg, sizeof(msg)), b);
  cleanup_free char *sha_prefix = xasprintf("sha256:%s", prefix);
  CHECK_STR(resolve(s, 0, sha_prefix, &errnum, msg, sizeof(msg)), b);

  /* 11 digits are a name, and there is none such. */
  snprintf(prefix, sizeof(prefix), "%.11s", image_id_hex(b));
  CHECK(resolve(s, 0, prefix, &errnum, msg, sizeof(msg)) == NULL);
  CHECK(errnum == ENOENT);
  cleanup_free char *want = xasprintf("no image `%s:latest`", prefix);
  CHECK_CONTAINS(msg, want);

  CHECK(resolve(s, 0, "debian:11", &errnum, msg, sizeof(msg)) == NULL);
  CHECK(errnum == ENOENT);
  CHECK_CONTAINS(msg, "no image `debian:11`");
  cleanup_free char *none = layer_digest('0');
  CHECK(resolve(s, 0, none, &errnum, msg, sizeof(msg)) == NULL);
  CHECK(errnum == ENOENT);
  CHECK(resolve(s, 0, "Debian", &errnum, msg, sizeof(msg)) == NULL);
  CHECK(errnum == EINVAL);
  CHECK_CONTAINS(msg, "image name `Debian`");

  /* A tag moves from one image to another. */
  CHECK(tag(s, 0, "debian", "latest", b) == 0);
  CHECK_STR(resolve(s, 0, "debian", &errnum, msg, sizeof(msg)), b);
  CHECK(image_store_ref_count(s, a) == 1);
  CHECK(image_store_ref_count(s, b) == 1);

  /* No image, no ref. */
  cleanup_error cell_error *err = NULL;
  CHECK(image_store_tag(s, 0, "x", "1", none, &err) < 0);
  CHECK(err && err->errnum == ENOENT);
}

TEST(visibility_own_and_roots_images_not_another_members) {
  const char *path = new_store_path();
  cleanup_image_store struct image_store *s = open_store(path);
  cleanup_free char *root_img = make_image(s, "a", "amd64");
  cleanup_free char *other_img = make_image(s, "b", "amd64");
  cleanup_free char *own_img = make_image(s, "c", "amd64");
  cleanup_free char *nobodys = make_image(s, "d", "amd64");
  CHECK(tag(s, 0, "debian", "12", root_img) == 0);
  CHECK(tag(s, 2000, "secret", "latest", other_img) == 0);
  CHECK(tag(s, 1000, NULL, NULL, own_img) == 0); /* anonymous */
  int errnum;
  char msg[512];

  CHECK(image_store_visible(s, 1000, root_img));
  CHECK(!image_store_visible(s, 1000, other_img));
  CHECK(image_store_visible(s, 1000, own_img));
  CHECK(!image_store_visible(s, 1000, nobodys));
  CHECK(image_store_visible(s, 2000, other_img));
  CHECK(image_store_visible(s, 0, other_img));
  CHECK(image_store_visible(s, 0, nobodys));

  CHECK_STR(resolve(s, 1000, "debian:12", &errnum, msg, sizeof(msg)),
            root_img);
  CHECK(resolve(s, 1000, "secret", &errnum, msg, sizeof(msg)) == NULL);
  CHECK(errnum == ENOENT);
  CHECK(resolve(s, 1000, other_img, &errnum, msg, sizeof(msg)) == NULL);
  CHECK(errnum == ENOENT);
  char prefix[16];
  snprintf(prefix, sizeof(prefix), "%.12s", image_id_hex(other_img));
  CHECK(resolve(s, 1000, prefix, &errnum, msg, sizeof(msg)) == NULL);
  CHECK_STR(resolve(s, 1000, own_img, &errnum, msg, sizeof(msg)), own_img);
  CHECK_STR(resolve(s, 2000, "secret", &errnum, msg, sizeof(msg)), other_img);
  CHECK_STR(resolve(s, 0, other_img, &errnum, msg, sizeof(msg)), other_img);
  /* Root does not fall back to a member's names. */
  CHECK(resolve(s, 0, "secret", &errnum, msg, sizeof(msg)) == NULL);

  /* A member's own name comes before root's. */
  CHECK(tag(s, 1000, "debian", "12", own_img) == 0);
  CHECK_STR(resolve(s, 1000, "debian:12", &errnum, msg, sizeof(msg)),
            own_img);
  CHECK_STR(resolve(s, 2000, "debian:12", &errnum, msg, sizeof(msg)),
            root_img);
  /* The name replaced 1000's anonymous ref. */
  CHECK(image_store_ref_count(s, own_img) == 1);
  /* An anonymous ref to an image the owner has a name for adds nothing. */
  CHECK(tag(s, 1000, NULL, NULL, own_img) == 0);
  CHECK(image_store_ref_count(s, own_img) == 1);
}

TEST(untag_by_name_and_id_and_refs_persist) {
  const char *path = new_store_path();
  cleanup_free char *a = NULL, *b = NULL;
  {
    cleanup_image_store struct image_store *s = open_store(path);
    a = make_image(s, "a", "amd64");
    b = make_image(s, "b", "amd64");
    CHECK(tag(s, 0, "debian", "12", a) == 0);
    CHECK(tag(s, 0, "debian", "stable", a) == 0);
    CHECK(tag(s, 1000, "mine", "latest", a) == 0);
    CHECK(tag(s, 1000, "mine", "2", b) == 0);
    CHECK(tag(s, 1000, "also", "latest", b) == 0);
  }
  struct stat st;
  cleanup_free char *refs = xasprintf("%s/refs.json", path);
  CHECK(stat(refs, &st) == 0 && (st.st_mode & 07777) == 0600);

  cleanup_image_store struct image_store *s = open_store(path);
  CHECK(s->n_refs == 5);
  CHECK(image_store_ref_count(s, a) == 3);
  CHECK(image_store_ref_count(s, b) == 2);
  int errnum;
  char msg[512];
  CHECK_STR(resolve(s, 1000, "mine:2", &errnum, msg, sizeof(msg)), b);

  cleanup_error cell_error *err = NULL;
  char *id = NULL;
  CHECK(image_store_untag(s, 0, "debian:12", &id, &err) == 0);
  CHECK_STR(id, a);
  free(steal_pointer(&id));
  CHECK(image_store_ref_count(s, a) == 2);
  CHECK(resolve(s, 0, "debian:12", &errnum, msg, sizeof(msg)) == NULL);
  CHECK_STR(resolve(s, 0, "debian:stable", &errnum, msg, sizeof(msg)), a);

  /* Another's name is not the caller's to drop. */
  CHECK(image_store_untag(s, 2000, "mine", &id, &err) < 0);
  CHECK(err && err->errnum == ENOENT);
  CHECK_CONTAINS(err ? err->msg : NULL, "no image `mine:latest` of yours");
  cell_error_free(&err);
  CHECK(id == NULL);

  /* By id: every one of the owner's refs to it, no one else's. */
  CHECK(image_store_untag(s, 1000, b, &id, &err) == 0);
  CHECK_STR(id, b);
  free(steal_pointer(&id));
  CHECK(image_store_ref_count(s, b) == 0);
  CHECK(image_store_ref_count(s, a) == 2);
  char prefix[16];
  snprintf(prefix, sizeof(prefix), "%.12s", image_id_hex(a));
  CHECK(image_store_untag(s, 1000, prefix, &id, &err) == 0);
  CHECK_STR(id, a);
  free(steal_pointer(&id));
  CHECK(image_store_ref_count(s, a) == 1); /* root's debian:stable */
  CHECK(image_store_untag(s, 1000, "mine", &id, &err) < 0);
  cell_error_free(&err);

  cleanup_image_store struct image_store *t = open_store(path);
  CHECK(t->n_refs == 1);
  CHECK(image_store_ref_count(t, a) == 1);
  CHECK(image_store_ref_count(t, b) == 0);
  CHECK_STR(resolve(t, 0, "debian:stable", &errnum, msg, sizeof(msg)), a);
}

TEST(a_malformed_refs_file_is_refused_at_open) {
  const char *path = new_store_path();
  image_store_free(open_store(path));
  cleanup_free char *refs = xasprintf("%s/refs.json", path);
  const char *bad = "[{\"owner\":-1,\"name\":\"x\",\"tag\":\"y\","
                    "\"image\":\"sha256:1\"}]";
  int fd = open(refs, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  must(fd, refs);
  must((int)cell_write_all(fd, bad, strlen(bad)), refs);
  close(fd);
  struct image_store *s = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(image_store_open(path, &s, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : NULL, "refs.json: a malformed entry");
  image_store_free(s);
}

/* ---- removal ------------------------------------------------------------- */

TEST(a_shared_layer_stays_until_its_last_image_goes) {
  const char *path = new_store_path();
  cleanup_image_store struct image_store *s = open_store(path);
  cleanup_free char *one = make_image(s, "ab", "amd64");
  cleanup_free char *two = make_image(s, "bc", "amd64");
  cleanup_free char *la = layer_digest('a'), *lb = layer_digest('b'),
                    *lc = layer_digest('c');
  CHECK(count_dir(s->dirfd, "layers") == 3);
  cleanup_error cell_error *err = NULL;

  CHECK(image_store_remove(s, one, &err) == 0 &&
        image_store_collect(s, NULL, &err) == 0);
  CHECK(image_store_find(s, one) == NULL);
  CHECK(image_store_find(s, two) != NULL);
  CHECK(!exists_at(s->layersfd, image_id_hex(la)));
  CHECK(exists_at(s->layersfd, image_id_hex(lb)));
  CHECK(exists_at(s->layersfd, image_id_hex(lc)));
  CHECK(count_dir(s->dirfd, "images") == 1);

  CHECK(image_store_remove(s, two, &err) == 0 &&
        image_store_collect(s, NULL, &err) == 0);
  CHECK(count_dir(s->dirfd, "layers") == 0);
  CHECK(count_dir(s->dirfd, "images") == 0);
  CHECK(s->n_images == 0);

  /* Gone from disk too. */
  cleanup_image_store struct image_store *t = open_store(path);
  CHECK(t->n_images == 0);

  CHECK(image_store_remove(s, "debian", &err) < 0);
  CHECK(err && err->errnum == EINVAL);
}

TEST(keep_layers_keeps_them_until_the_next_collection) {
  const char *path = new_store_path();
  cleanup_image_store struct image_store *s = open_store(path);
  cleanup_free char *one = make_image(s, "a", "amd64");
  cleanup_free char *la = layer_digest('a');
  /* What an interrupted import left: a layer no image names, and a name
   * in layers/ that is no layer's. */
  cleanup_free char *stray = layer_digest('e');
  add_layer_dir(s, stray);
  must(mkdirat(s->layersfd, "not-a-layer", 0700), "mkdir");
  cleanup_error cell_error *err = NULL;
  CHECK(image_store_remove(s, one, &err) == 0);
  CHECK(image_store_find(s, one) == NULL);
  CHECK(exists_at(s->layersfd, image_id_hex(la)));
  CHECK(exists_at(s->layersfd, image_id_hex(stray)));
  CHECK(image_store_collect(s, NULL, &err) == 0);
  CHECK(!exists_at(s->layersfd, image_id_hex(la)));
  CHECK(!exists_at(s->layersfd, image_id_hex(stray)));
  CHECK(exists_at(s->layersfd, "not-a-layer"));
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(base, sizeof(base), "%s/cell-image-store-XXXXXX",
           tmp ? tmp : "/tmp");
  if (!mkdtemp(base)) {
    perror("mkdtemp");
    return 2;
  }
  RUN(ref_parse_good_names_and_the_default_tag);
  RUN(ref_parse_bad_names_are_refused_naming_the_part);
  RUN(open_makes_the_directories_and_empties_tmp);
  RUN(write_and_load_round_trip_and_the_same_image_is_one_file);
  RUN(a_tampered_description_is_refused_at_open);
  RUN(refs_resolve_by_name_id_and_prefix);
  RUN(visibility_own_and_roots_images_not_another_members);
  RUN(untag_by_name_and_id_and_refs_persist);
  RUN(a_malformed_refs_file_is_refused_at_open);
  RUN(a_shared_layer_stays_until_its_last_image_goes);
  RUN(keep_layers_keeps_them_until_the_next_collection);
  cleanup_error cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, base, &err) < 0)
    fprintf(stderr, "cleanup: %s\n", err->msg);
  UNIT_DONE();
}
