/* An instance as one stream, to ship it to another host: its record, its
 * image's description, the image's layers and its own writable layer.
 *
 * The stream is a tar, zstd-compressed, whose entries come in this order:
 *   cell-export.json      format 1: {"format": 1, "instance": RECORD,
 *                         "image_id": ID, "image": DESCRIPTION,
 *                         "layers": [{"name": STORE NAME, "sha256": S,
 *                         "size": N}, ...] (bottom first),
 *                         "disk": {"sha256": S, "size": N}}
 *   layers/<hex>.tar      each layer of the image, bottom first, <hex> its
 *                         store name; S and N above are of this entry
 *   disk.tar              the instance's writable layer (disk/upper)
 * Each inner tar is the layer in the OCI form (tree_archive_write_oci):
 * ".wh." whiteouts, owners container-relative.  The record is opaque
 * here (the daemon's instance.h says what it holds).
 *
 * A migration sends the layers its target lacks apart and first, while
 * the instance still runs (instance_archive_spool_layer, then
 * instance_archive_read_layer on the target), and then a stream that
 * leaves them out: its JSON says "layers_apart": true, each layer is its
 * name alone, and the stream carries disk.tar only.  Its reader finds
 * each layer in the store or among those read apart into the same work
 * directory, or refuses it.
 *
 * Reading is one pass over a pipe, never a seek: the JSON first (its size
 * bounded), then each entry hashed while it is extracted, compared with
 * the JSON's sha256 and size; a missing, extra or out-of-order entry, a
 * digest that differs or a stream that ends early is refused.  The sha256
 * guards against a stream damaged on its way, not against its sender: the
 * JSON comes from the same stream. */
#ifndef CELL_INSTANCE_ARCHIVE_H
#define CELL_INSTANCE_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "storage/digest.h"
#include "storage/image-store.h"
#include "storage/layer-extract.h"

#define INSTANCE_ARCHIVE_FORMAT 1
#define INSTANCE_ARCHIVE_JSON "cell-export.json"
/* The JSON holds a record and an image's description: small. */
#define INSTANCE_ARCHIVE_MAX_JSON (1 << 20)
#define INSTANCE_ARCHIVE_MAX_LAYERS 128

struct instance_archive_progress {
  const char *step; /* "layer", "disk", "done" */
  unsigned part;    /* 1-based: the layers, then the disk */
  unsigned parts;
  uint64_t bytes;   /* of the stream written or read so far */
};

typedef void (*instance_progress_fn)(void *ctx,
                                     const struct instance_archive_progress *p);

struct instance_export {
  const char *record_json;   /* the instance's record, a JSON object */
  const struct image *image; /* its image */
  int layersfd;              /* the store's layers/ */
  int upperfd;               /* the instance's disk/upper */
  /* Where the inner tars are spooled (O_TMPFILE: gone with the process),
   * for their sha256 and size come before them in the stream. */
  int spoolfd;
  instance_progress_fn progress; /* may be NULL */
  void *progress_ctx;
  bool layers_apart; /* the layers were sent apart: the disk only */
};

/* Write the stream of x to out_fd (a file or a pipe; the caller ignores
 * SIGPIPE); *size_out (may be NULL) gets its size. */
int instance_archive_write(const struct instance_export *x, int out_fd,
                           uint64_t *size_out, cell_error **err);

/* What a stream held, once read and checked. */
struct instance_import {
  char *record_json;   /* the sender's record: the caller checks it */
  struct image *image; /* its description (the id is the sender's) */
  char **layers;       /* store names, "sha256:<hex>", bottom first */
};
void instance_import_free(struct instance_import *im);
static inline void instance_import_freep(struct instance_import **im) {
  instance_import_free(*im);
}
#define cleanup_instance_import __attribute__((cleanup(instance_import_freep)))

struct instance_import_opts {
  int layersfd;            /* the store's layers/: which it has already */
  struct layer_limits lim; /* for each inner tar */
  instance_progress_fn progress;
  void *progress_ctx;
};

/* Read the stream from in_fd into workfd (an empty directory of the
 * caller's, beneath the store's tmp/): the JSON as INSTANCE_ARCHIVE_JSON,
 * each layer the store lacks as layers/<hex>/, the writable layer as
 * upper/, whiteouts in overlayfs's form.  A layer the store has under the
 * same name is read and checked but not extracted: the store's name is
 * trusted, which only root may make it do (the import op is root's).  On
 * failure workfd is left half made: the caller removes it. */
int instance_archive_read(int in_fd, int workfd,
                          const struct instance_import_opts *o,
                          cell_error **err);

/* A migration's layer sent apart: the store's layer name (sha256:<hex>)
 * as the stream would carry it (its OCI tar), spooled into an anonymous
 * file under spoolfd: *fd, rewound (the caller closes it), its size and
 * sha256, which go before it. */
int instance_archive_spool_layer(int layersfd, int spoolfd, const char *name,
                                 int *fd, uint64_t *size,
                                 char sha256[static DIGEST_STR_LEN],
                                 cell_error **err);

/* Such a layer read through read_fn (to its end, which the caller sets
 * where the layer ends) into workfd's layers/<hex>/, made new, while it is
 * hashed; a layer whose sha256 differs is refused (damaged on its way). */
int instance_archive_read_layer(layer_read_fn read_fn, void *ctx,
                                const char *name, const char *sha256,
                                int workfd,
                                const struct instance_import_opts *o,
                                cell_error **err);

/* The JSON a read left in workfd, parsed and checked. */
int instance_import_load(int workfd, struct instance_import **out,
                         cell_error **err);

#endif
