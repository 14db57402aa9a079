/* The file.push and file.pull ops: a file, or a whole tree as one tar
 * stream, copied into or out of an instance, running or stopped, by a
 * child process (as an export is: the instance's filesystem and a slow
 * client never block celld) through the fd the client sends with the
 * request (SCM_RIGHTS): celld opens no path of the client's, and every
 * path inside the instance goes through instance-files.h or
 * instance-tree-files.h.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_FILES_H
#define CELL_DAEMON_FILES_H

#include "base/json.h"
#include "daemon/daemon-types.h"

/* path, uid and gid (the instance's ids; default its root, 0), mode,
 * type (file, directory, symlink, tree); the fd to read from (a file's
 * content, a tree's tar stream) rides with the request. */
void op_file_push(struct daemon *d, struct conn *c, struct instance *in,
                  const struct json_value *v);
/* path, recursive; the fd to write to rides with the request.  The
 * answer has the file's mode and size; a tree's, what was left out. */
void op_file_pull(struct daemon *d, struct conn *c, struct instance *in,
                  const struct json_value *v);

#endif
