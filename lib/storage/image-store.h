/* The image store: images as ordered lists of content-addressed,
 * read-only layers, and the names their owners gave them.
 *
 *   <dir>/layers/<hex>/      one layer, extracted: owners container-relative
 *                            (0..65535), whiteouts in overlayfs's form; <hex>
 *                            is the sha256 of its uncompressed tar stream
 *                            (its OCI diff_id).  Stored once, however many
 *                            images use it.
 *   <dir>/images/<hex>.json  one image (struct image); <hex> is the sha256 of
 *                            what it is (layers, config, architecture,
 *                            created), so the same image imported twice,
 *                            from anywhere, is one image.
 *   <dir>/refs.json          who calls which image what: owner, name, tag.
 *   <dir>/tmp/               imports under way; emptied at open.
 *
 * An image is visible to root, to the owners of its refs, and to everyone
 * when root has a ref to it (root's images are published to members). */
#ifndef CELL_IMAGE_STORE_H
#define CELL_IMAGE_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "storage/digest.h"

/* NAME: runs of [a-z0-9] joined by single separators . _ - and / (as
 * registries name images), never starting or ending with one; TAG:
 * [A-Za-z0-9_][A-Za-z0-9_.-]*. */
#define IMAGE_NAME_MAX 128
#define IMAGE_TAG_MAX 128
#define IMAGE_DEFAULT_TAG "latest"

struct image {
  char *id;          /* "sha256:<hex>" of its description */
  char **layers;     /* diff_ids, "sha256:<hex>", bottom first */
  uint64_t size;     /* bytes of file contents in its layers */
  char *created;     /* RFC 3339: when the image was made, if known */
  char *imported;    /* RFC 3339: when it came into this store */
  char *architecture;
  char *source;      /* what it was imported from, as its importer said */
  char **entrypoint; /* the OCI config's, NULL-terminated; NULL if unset */
  char **cmd;
  char **env;        /* "KEY=value" */
  char *working_dir;
  char *user;
};

struct image_ref {
  uid_t owner;
  char *name;  /* "" for an image imported without a name */
  char *tag;   /* "" likewise */
  char *image; /* "sha256:<hex>" */
};

struct image_store {
  char *dir;
  int dirfd, layersfd, imagesfd, tmpfd;
  struct image **images;
  size_t n_images;
  struct image_ref *refs;
  size_t n_refs;
};

/* Open (creating what is missing) the store at dir, load its images and
 * refs, and empty tmp/ (what an interrupted import left). */
int image_store_open(const char *dir, struct image_store **out,
                     cell_error **err);
void image_store_free(struct image_store *s);
static inline void image_store_freep(struct image_store **s) {
  image_store_free(*s);
}
#define cleanup_image_store __attribute__((cleanup(image_store_freep)))

void image_free(struct image *img);
static inline void image_freep(struct image **img) { image_free(*img); }
#define cleanup_image __attribute__((cleanup(image_freep)))

/* The image's description as JSON (without its id), and back (id
 * given). */
char *image_to_json(const struct image *img, bool pretty);
int image_from_json(const char *text, size_t len, const char *id,
                    struct image **out, cell_error **err);

/* Write img (its id computed and set here) as images/<hex>.json; the same
 * content again is the same file.  Its layers must be in layers/ already. */
int image_store_write(struct image_store *s, struct image *img,
                      cell_error **err);
/* Load images/<hex>.json for id into memory (after an import in another
 * process wrote it); the image already loaded is fine. */
const struct image *image_store_load(struct image_store *s, const char *id,
                                     cell_error **err);
const struct image *image_store_find(const struct image_store *s,
                                     const char *id);

/* The image's id: the sha256 of what it is (layers, config,
 * architecture, created). */
void image_identity_digest(const struct image *img,
                           char out[static DIGEST_STR_LEN]);
/* A new image: img with the layers above (an instance's own, frozen)
 * stacked on its own, its id computed (the caller frees it). */
struct image *image_with_layers_above(const struct image *img,
                                      char *const *above);

/* "NAME[:TAG]" split and checked; the tag defaults to latest. */
int image_ref_parse(const char *text, char **name, char **tag,
                    cell_error **err);
/* Whether caller may see and use the image. */
bool image_store_visible(const struct image_store *s, uid_t caller,
                         const char *id);
/* The image caller means by text: "NAME[:TAG]" (the caller's own first,
 * then root's), or "sha256:<hex>" or a prefix of 12 or more hex digits of
 * an image caller may see.  errnum ENOENT when there is none. */
const struct image *image_store_resolve(const struct image_store *s,
                                        uid_t caller, const char *text,
                                        cell_error **err);
/* Give id the name owner's NAME:TAG (moving it from another image of
 * owner's), or, name NULL, an anonymous ref of owner's; saves refs.json. */
int image_store_tag(struct image_store *s, uid_t owner, const char *name,
                    const char *tag, const char *id, cell_error **err);
/* Drop owner's ref NAME:TAG (or, for an id, all of owner's refs to it);
 * *id_out (the caller frees) says which image it named. */
int image_store_untag(struct image_store *s, uid_t owner, const char *text,
                      char **id_out, cell_error **err);
/* How many refs name id. */
size_t image_store_ref_count(const struct image_store *s, const char *id);
/* Remove image id (its description; its layers stay until collected). */
int image_store_remove(struct image_store *s, const char *id,
                       cell_error **err);
/* Remove the layers no image uses and keep (NULL-terminated hex names,
 * may be NULL: the layers instances hold themselves) does not name: what
 * removed images and interrupted imports left. */
int image_store_collect(struct image_store *s, char *const *keep,
                        cell_error **err);
/* "<hex>" of "sha256:<hex>" (a pointer into id), NULL if it is not one. */
const char *image_id_hex(const char *id);

#endif
