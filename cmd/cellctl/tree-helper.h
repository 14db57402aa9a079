/* cellctl-tree, run for the tar streams of file push -r and pull -r (see
 * cmd/cellctl-tree/main.c): cellctl itself links no libarchive. */
#ifndef CELLCTL_TREE_HELPER_H
#define CELLCTL_TREE_HELPER_H

#include "base/error.h"

/* The directory dirfd written as a tar stream to out_fd. */
int tree_helper_pack(int dirfd, int out_fd, cell_error **err);
/* The tar stream read from in_fd extracted into dirfd.  A stream that broke
 * off (celld's answer says why) fails with errnum EPIPE. */
int tree_helper_unpack(int dirfd, int in_fd, cell_error **err);

#endif
