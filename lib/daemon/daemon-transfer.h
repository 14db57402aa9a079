/* The export and import ops: an instance (its record, its image, its own
 * writable layer) written as one stream to a client's fd, and such a
 * stream made an instance of this host (storage/instance-archive.h has
 * the format).  Each runs in a child process, as an image import does.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_TRANSFER_H
#define CELL_DAEMON_TRANSFER_H

#include <stdbool.h>

#include "base/error.h"
#include "base/json.h"
#include "daemon/daemon-types.h"

/* The directory tmp/import-PID-0 a child of job j extracted an instance
 * stream into (instance_archive_read), made an instance of this host and
 * saved: named as, or the sender's name when NULL; with the sender's id
 * range when keep_ids (a migration: criu's images hold it), else one of
 * this host's.  On failure all it placed is undone and *code says why. */
struct instance *transfer_place_import(struct daemon *d, struct image_job *j,
                                       const char *as, bool keep_ids,
                                       char ***warnings, enum api_code *code,
                                       cell_error **err);
/* The name of that directory under tmp/ for the child pid. */
char *transfer_work_dir_name(pid_t pid);

void op_export(struct daemon *d, struct conn *c, struct instance *in,
               const struct json_value *v);
void op_import(struct daemon *d, struct conn *c, struct instance *unused,
               const struct json_value *v);

#endif
