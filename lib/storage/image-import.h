/* Importing an image into the store from what a user hands over: a root
 * filesystem directory or tarball, an OCI image layout directory, an
 * oci-archive or a docker-archive.
 *
 * Every source is hostile.  Layers are extracted (layer-extract) into a
 * private directory under the store's tmp/, verified (an OCI layer's
 * content against its diff_id in the config, which the manifest's digest
 * covers), and only then moved into layers/ under their digest; the
 * image's description is written last.  An import that fails or is killed
 * leaves no image: its tmp/ directory goes (at the end, or at the store's
 * next open), and layers it moved in that no image uses go at the next
 * collection. */
#ifndef CELL_IMAGE_IMPORT_H
#define CELL_IMAGE_IMPORT_H

#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "storage/image-store.h"
#include "storage/layer-extract.h"

struct image_import_progress {
  const char *step;   /* "read" (spooling a stream), "layer", "done" */
  unsigned layer;     /* 1-based; 0 before the first */
  unsigned layers;    /* 0 while unknown */
  uint64_t bytes;     /* of the source read so far */
  uint64_t total;     /* of the source, 0 while unknown */
};

typedef void (*image_progress_fn)(void *ctx,
                                  const struct image_import_progress *p);

struct image_import_opts {
  struct layer_limits lim; /* over the whole image */
  const char *source;      /* what the importer calls it, for `image show` */
  /* A directory is read with these ids, never more (a member cannot import
   * what it could not read itself); root's own: 0. */
  uid_t read_uid;
  gid_t read_gid;
  image_progress_fn progress; /* may be NULL */
  void *progress_ctx;
};

/* Import the image of srcfd (a directory, a file, or a pipe, which is
 * first spooled) into s; *id_out gets its id, "sha256:<hex>" (the caller
 * frees).  The store in memory is not changed: load the image with
 * image_store_load (the import may run in another process). */
int image_import(struct image_store *s, int srcfd,
                 const struct image_import_opts *o, char **id_out,
                 cell_error **err);

#endif
