/* oci-archive tarballs (`podman save --format oci-archive`, `buildah push
 * oci-archive:`): a tar of an OCI image layout. */
#ifndef CELL_OCI_ARCHIVE_H
#define CELL_OCI_ARCHIVE_H

#include "base/error.h"
#include "storage/oci-image.h"

/* Unpack the tarball read from archive_fd into a private directory made
 * beneath work_dirfd, read it as a layout (oci_image_read_layout, ref
 * likewise) and remove the directory again: the layer fds of *out keep
 * the blobs alive.  Only regular files named "oci-layout", "index.json"
 * and "blobs/sha256/<64 hex>" are unpacked, everything else is skipped. */
int oci_image_read_oci_archive(int archive_fd, int work_dirfd, const char *ref,
                               struct oci_image **out, cell_error **err);

/* A docker-archive tarball (`docker save`, `podman save --format
 * docker-archive`), the same way: manifest.json's Config and Layers (of
 * the only image, or of the one whose RepoTags hold ref).  The config's
 * digest is checked against its file name; the layers are uncompressed
 * tars, each of whose sha256 must be its rootfs.diff_ids entry, and which
 * is its digest in *out.  manifest_digest is NULL: docker has none. */
int oci_image_read_docker_archive(int archive_fd, int work_dirfd,
                                  const char *ref, struct oci_image **out,
                                  cell_error **err);

#endif
