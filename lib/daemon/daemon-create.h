/* The create op (a handler of the ops[] table in daemon-ops.c).
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_CREATE_H
#define CELL_DAEMON_CREATE_H

#include "base/json.h"
#include "daemon/daemon-types.h"

/* The instance is made, not started; in is unused (NULL). */
void op_create(struct daemon *d, struct conn *c, struct instance *in,
               const struct json_value *v);

/* clone: a new instance on the layers of name's (frozen for it), with its
 * own name, ids, addresses and identity; no data copied. */
void op_clone(struct daemon *d, struct conn *c, struct instance *src,
              const struct json_value *v);

#endif
