/* Reading an image's description: which layers, in which order, and its
 * config, from an OCI image layout directory or an oci-archive tarball.
 *
 * Every image is hostile: the index, manifest and config are read only
 * through fds beneath the layout directory, never through a symlink, at
 * most OCI_IMAGE_MAX_JSON bytes each; blob paths are made from verified
 * "sha256:<64 hex>" digests only (never from a path in the JSON); every
 * blob's size and sha256 are checked against its descriptor before it is
 * handed out. */
#ifndef CELL_OCI_IMAGE_H
#define CELL_OCI_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/json.h"

#define OCI_IMAGE_MAX_JSON (4u << 20) /* index, manifest, config */
#define OCI_IMAGE_MAX_LAYERS 128

enum oci_compression {
  OCI_COMPRESSION_NONE,
  OCI_COMPRESSION_GZIP,
  OCI_COMPRESSION_ZSTD,
};

struct oci_layer {
  char *digest;     /* "sha256:<hex>" of the blob as stored (compressed) */
  char *media_type; /* as the manifest names it */
  enum oci_compression compression;
  uint64_t size;    /* bytes of the blob */
  int fd;           /* the verified blob, open read-only at offset 0 */
};

/* The parts of the image config a container needs.  String vectors are
 * NULL-terminated, NULL when the config does not set them. */
struct oci_image_config {
  char **entrypoint;
  char **cmd;
  char **env;       /* "KEY=value" */
  char **labels;    /* "key=value" */
  char **diff_ids;  /* rootfs.diff_ids: sha256 of each uncompressed layer */
  char *working_dir;
  char *user;
  char *architecture;
  char *os;
  char *created;
};

struct oci_image {
  char *manifest_digest;
  char *config_digest;
  struct oci_layer *layers; /* bottom layer first */
  size_t n_layers;
  struct oci_image_config config;
};

/* Read the image of the OCI image layout directory layout_dirfd.
 * ref: the org.opencontainers.image.ref.name annotation of the index
 * entry to take, or NULL to take the only image (or the only linux image
 * of this machine's architecture).  One level of image index below
 * index.json is followed.  *out is freed with oci_image_free. */
int oci_image_read_layout(int layout_dirfd, const char *ref,
                          struct oci_image **out, cell_error **err);

void oci_image_free(struct oci_image *img);
static inline void oci_image_freep(struct oci_image **img) {
  oci_image_free(*img);
}
#define cleanup_oci_image __attribute__((cleanup(oci_image_freep)))

/* Fill img's config (and config_digest) from a parsed image config; its
 * diff_ids must number img->n_layers.  For the other image sources. */
int oci_image_set_config(struct oci_image *img, const char *config_digest,
                         const struct json_value *cfg, cell_error **err);


/* "none", "gzip", "zstd". */
const char *oci_compression_name(enum oci_compression c);

#endif
