/* Path resolution inside a container rootfs that can never escape it:
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), and where openat2 is
 * missing a component-by-component walk that treats every symlink target
 * (absolute or with "..") as relative to the rootfs, as a chroot would.
 *
 * Tests: CELL_RESOLVE_NO_OPENAT2=1 in the environment (read once, at the
 * first call) forces the manual walk even where openat2 exists. */
#ifndef CELL_RESOLVE_H
#define CELL_RESOLVE_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"

/* Open path (absolute or relative, interpreted inside rootfd) with open
 * flags (O_PATH, O_RDONLY|O_DIRECTORY, ...; O_CLOEXEC is always added).
 * Returns the fd, or -1 with *err set. */
int resolve_open(int rootfd, const char *path, int flags, cell_error **err);

/* Like resolve_open, but no component of path may be a symlink (nor
 * ".."): for the places whose meaning must not depend on a link in the
 * rootfs, such as where procfs and sysfs go.  ELOOP when one is. */
int resolve_open_no_symlinks(int rootfd, const char *path, int flags,
                             cell_error **err);

/* Like resolve_open with O_PATH, creating what is missing: the parents as
 * directories (mode 0755) and the last component as a directory, or as an
 * empty regular file when as_file is true.  Returns an O_PATH fd. */
int resolve_create(int rootfd, const char *path, bool as_file,
                   cell_error **err);

/* "/proc/self/fd/N" for fd, for the syscalls that take only paths
 * (mount(2) target/source).  buf must hold 32 bytes. */
const char *resolve_fd_path(int fd, char buf[static 32]);

#endif
