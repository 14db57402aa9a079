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

#endif
