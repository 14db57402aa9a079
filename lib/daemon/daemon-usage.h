/* What an instance uses now: memory, CPU, pids (its cgroups), bytes and
 * packets on each NIC (the host end of its veth, turned round), and its
 * disk; as JSON for show and list, and as the Prometheus text exposition
 * format for `cellctl metrics` and celld's HTTP endpoint.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_USAGE_H
#define CELL_DAEMON_USAGE_H

#include <stdbool.h>

#include "base/json.h"
#include "daemon/daemon-types.h"

/* The instance's "usage" object (key and value) into g.  Sampling moves
 * the instance's CPU interval on once it is at least a second long;
 * fresh_disk reads the disk's use again even when the kept one is new. */
void usage_gen_json(struct daemon *d, struct instance *in, struct json_gen *g,
                    bool fresh_disk);

/* Every series of the instances may_see lets through (NULL: all), in the
 * Prometheus text format (version 0.0.4), a new string. */
char *usage_prometheus(struct daemon *d,
                       bool (*may_see)(const void *ctx, const struct instance *in),
                       const void *ctx);

#endif
