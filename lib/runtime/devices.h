/* /dev inside the container: the default nodes (null zero full random
 * urandom tty), ptmx -> pts/ptmx, /dev/fd and std* links, /dev/pts and
 * /dev/shm dirs when not mounted, and linux.devices.  Nodes are made with
 * mknod, or bind-mounted from the host inside a user namespace. */
#ifndef CELL_DEVICES_H
#define CELL_DEVICES_H

#include <stdbool.h>

#include "base/error.h"
#include "oci/spec.h"

int devices_setup(int rootfd, const struct spec *s, bool in_userns,
                  cell_error **err);

#endif
