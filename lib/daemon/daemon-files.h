/* The file.push and file.pull ops: a file copied into or out of an
 * instance, running or stopped, by a child process (as an export is: the
 * instance's filesystem never blocks celld) through the fd the client
 * sends with the request (SCM_RIGHTS): celld opens no path of the
 * client's, and every path inside the instance goes through
 * instance-files.h.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_FILES_H
#define CELL_DAEMON_FILES_H

#include "base/json.h"
#include "daemon/daemon-types.h"

/* path, uid and gid (the instance's ids; default its root, 0), mode; the
 * fd to read from rides with the request. */
void op_file_push(struct daemon *d, struct conn *c, struct instance *in,
                  const struct json_value *v);
/* path; the fd to write to rides with the request.  The answer has the
 * file's mode and size. */
void op_file_pull(struct daemon *d, struct conn *c, struct instance *in,
                  const struct json_value *v);

#endif
