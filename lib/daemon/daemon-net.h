/* celld's networks (celld.conf `network.NAME.*`): an instance's addresses
 * chosen at create, its veth pairs made at each start, each with a filter
 * on its bridge port against spoofing, and removed at its exit, bridges
 * made when needed and removed when unused.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_NET_H
#define CELL_DAEMON_NET_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"
#include "base/json.h"
#include "daemon/daemon-types.h"
#include "net/bridge-filter.h"

/* The request's `networks` (may be NULL) into r->nets: names checked,
 * addresses chosen (or the ones asked for checked), host veth names.
 * On failure *code says why: not-found (no such network), failed (no
 * address left) or invalid-request. */
int daemon_net_plan(struct daemon *d, const struct json_value *networks,
                    struct instance_record *r, enum api_code *code,
                    cell_error **err);
/* The networks of a record made on another host (an imported instance),
 * planned again here: each keeps its address when this host has a
 * network of that name whose subnet holds it and no other instance has
 * it, else it gets a free one; a network this host lacks is dropped.
 * Each change is a line pushed to *warnings. */
int daemon_net_replan(struct daemon *d, struct instance_record *r,
                      char ***warnings, cell_error **err);
/* Before criu restores an instance (a checkpoint's): each network's
 * bridge, filter and dnsmasq ready, and no veth pair left of its NICs'
 * names.  criu restores it into a new, empty network namespace, to which
 * daemon_net_attach_restored gives its NICs. */
int daemon_net_prepare_restore(struct daemon *d, const struct instance_record *r,
                               cell_error **err);
/* The NICs of r made in the network namespace nsfd as a start makes them
 * (veth pair, stable MAC, addresses, default routes; loopback only
 * without networks), on the bridges daemon_net_prepare_restore made
 * ready.  Reads d's configuration only: it runs in a child of celld.  On
 * failure, daemon_net_detach removes what was made. */
int daemon_net_attach_restored(const struct daemon *d,
                               const struct instance_record *r, int nsfd,
                               cell_error **err);
/* The port filters of an instance's NICs, begun before its container is
 * made: each filter's nftables transaction runs in a child meanwhile
 * (a few ms a start).  daemon_net_attach finishes them; cancel reaps
 * those not finished (on a failed start, before daemon_net_detach
 * removes what they added). */
struct daemon_net_filters {
  struct bridge_filter_job job[INSTANCE_MAX_NETS];
  size_t n; /* jobs begun (a NIC without a filter has an empty one) */
};
int daemon_net_filters_begin(struct daemon *d, const struct instance_record *r,
                             struct daemon_net_filters *f, cell_error **err);
void daemon_net_filters_cancel(struct daemon_net_filters *f);
/* Give the namespace of pid its interfaces (loopback only without
 * networks).  On failure the caller's daemon_net_detach removes what was
 * made (it also runs when the start fails later). */
int daemon_net_attach(struct daemon *d, const struct instance_record *r,
                      pid_t pid, struct daemon_net_filters *filters,
                      cell_error **err);
/* Remove the instance's veth pairs (gone ones are fine) and their port
 * filters and, when asked, the bridges no other instance uses (unless
 * kept by the config) with their filter tables. */
void daemon_net_detach(struct daemon *d, const struct instance_record *r,
                       bool remove_bridges);
/* A networks= value for a running instance, planned into next (a copy
 * of its record, its NICs as they are now): each NIC whose network stays
 * is kept as it is (interface, host end, MAC, addresses), in the order it
 * has; the NICs of the other networks follow, each on the lowest free
 * ethN, with its addresses chosen or checked as create does.  1: planned;
 * 0: the address of a NIC that stays would change, which only a start
 * gives (next as it was); -1: refused, *code saying why, next as it was. */
int daemon_net_plan_live(struct daemon *d, const char *value,
                         struct instance_record *next, enum api_code *code,
                         cell_error **err);
/* The NICs of next that now lacks, attached to the running instance whose
 * init is pid as a start attaches them (a busy interface name inside is
 * refused); when one fails, those made go with it. */
int daemon_net_attach_new(struct daemon *d, const struct instance_record *now,
                          const struct instance_record *next, pid_t pid,
                          cell_error **err);
/* The NICs of now that next lacks, gone (veth, filter, an unused bridge);
 * a family whose default route went with them gets it through the first
 * NIC left that has it.  Failures are logged: the NIC is gone either way
 * from the instance's point of view. */
void daemon_net_detach_gone(struct daemon *d, const struct instance_record *now,
                            const struct instance_record *next, pid_t pid);
/* The host ends of r's NICs up or down: down, nothing reaches the
 * instance, whose kernel would otherwise still answer (and acknowledge
 * TCP data) while it is frozen for a migration.  Failures are logged. */
void daemon_net_ports_set_up(const struct instance_record *r, bool up);
/* At startup: the bridges and filter tables of networks no instance is
 * on (what a crash left). */
void daemon_net_sweep_bridges(struct daemon *d);

#endif
