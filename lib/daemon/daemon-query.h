/* The ops that only read (handlers of the ops[] table in daemon-ops.c;
 * in is the named instance for show, NULL for the others).
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_QUERY_H
#define CELL_DAEMON_QUERY_H

#include "base/json.h"
#include "daemon/daemon-types.h"

/* The instances the peer may see. */
void op_list(struct daemon *d, struct conn *c, struct instance *in,
             const struct json_value *v);
void op_show(struct daemon *d, struct conn *c, struct instance *in,
             const struct json_value *v);
/* Each pool: name, path, filesystem, quota support, size and use, and
 * the instances in it the peer may see. */
void op_pools(struct daemon *d, struct conn *c, struct instance *in,
              const struct json_value *v);
/* The configured networks, with how many of the peer's instances are on
 * each. */
void op_networks(struct daemon *d, struct conn *c, struct instance *in,
                 const struct json_value *v);
/* {"ok":true,"metrics":TEXT}: the usage of the instances the peer may
 * see in the Prometheus text format (daemon-usage.h). */
void op_metrics(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v);
/* The last `lines` lines (0 or none: all) of the instance's own log:
 * {"ok":true,"lines":[...]}. */
void op_log(struct daemon *d, struct conn *c, struct instance *in,
            const struct json_value *v);
/* {"ok":true}, then every event of the instances the peer may see. */
void op_events(struct daemon *d, struct conn *c, struct instance *in,
               const struct json_value *v);

#endif
