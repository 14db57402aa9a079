/* The ops on an instance's settings: set (each key through the settings'
 * table, applied live where the kernel allows, else marked pending until
 * the next start) and get.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_SETTINGS_H
#define CELL_DAEMON_SETTINGS_H

#include "base/json.h"
#include "daemon/daemon-types.h"

void op_set(struct daemon *d, struct conn *c, struct instance *in,
            const struct json_value *v);
void op_get(struct daemon *d, struct conn *c, struct instance *in,
            const struct json_value *v);

#endif
