/* cellctl file pull -r (cellctl-tree unpack): the tar stream celld sends,
 * extracted into the local directory cellctl made new, with libarchive's
 * guards against a hostile stream (no absolute name, no `..`, no write
 * through a symlink the stream made).  Symlinks are made as links, modes
 * and mtimes kept; the stream's owners (the instance's view) only when run
 * as root, as cp -a would, else the caller's. */
#ifndef CELLCTL_LOCAL_TREE_H
#define CELLCTL_LOCAL_TREE_H

#include "base/error.h"

/* The stream read from fd to its end, extracted into dirfd.  A failure
 * to read the stream (it broke off: celld's answer says why) has errnum
 * EPIPE; the caller removes what was made. */
int local_tree_extract(int dirfd, int fd, cell_error **err);

#endif
