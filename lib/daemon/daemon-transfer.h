/* The export and import ops: an instance (its record, its image, its own
 * writable layer) written as one stream to a client's fd, and such a
 * stream made an instance of this host (storage/instance-archive.h has
 * the format).  Each runs in a child process, as an image import does.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_TRANSFER_H
#define CELL_DAEMON_TRANSFER_H

#include "base/json.h"
#include "daemon/daemon-types.h"

void op_export(struct daemon *d, struct conn *c, struct instance *in,
               const struct json_value *v);
void op_import(struct daemon *d, struct conn *c, struct instance *unused,
               const struct json_value *v);

#endif
