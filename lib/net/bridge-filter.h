/* Anti-spoofing on bridge ports, through nftables' bridge family
 * (libnftables: the only file of libcell that knows it).
 *
 * Each filtered bridge has a table `bridge cell-BRIDGE` of its own (so that
 * two programs never share one): a `prerouting` and an `input` chain that
 * send each filtered port's frames, through the verdict map `ports` keyed
 * by the port's name (iifname), to a chain `port-PORT` of that port alone.  That
 * chain lets through only the frames whose source MAC is the port's, ARP
 * that claims the port's own IPv4 address and MAC, IPv4 from that address,
 * IPv6 from the port's addresses (its MAC's EUI-64 link-local address
 * included) and neighbour advertisements for those only, carrying the
 * port's MAC; everything else from the port (other EtherTypes, VLAN tags,
 * router advertisements, redirects) is dropped.  Prerouting sees a frame
 * before the bridge learns its source MAC and before it goes to the host
 * or to another port, so a dropped frame poisons neither the bridge's
 * forwarding table nor anyone's neighbour table; input sees the frames to
 * the bridge's link-local groups, which skip prerouting.  (LLDP frames,
 * 01:80:c2:00:00:0e, pass no hook at all: the bridge's no_linklocal_learn
 * option is what keeps them from being learnt.)
 *
 * Each call is one nftables transaction: it completes or changes nothing.
 * Errors carry libnftables' message: "filter port `cv1` of bridge `br0`
 * (nftables): Could not process rule: Operation not supported". */
#ifndef CELL_BRIDGE_FILTER_H
#define CELL_BRIDGE_FILTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "net/netlink.h"

/* Who is behind a port: what its frames may claim to be. */
struct bridge_port_identity {
  const char *port;          /* the host end of its veth, on the bridge */
  uint8_t mac[6];            /* the instance's MAC */
  const struct net_ip *ipv4; /* NULL: no IPv4 (no ARP, no IPv4 at all) */
  const struct net_ip *ipv6; /* NULL: link-local IPv6 only */
};

/* The nftables commands that (re)place the port's chain and map entry,
 * and first create or repair the bridge's table when with_table; malloc'ed.  NULL with an error
 * when a name holds a character other than letters, digits, `.`, `_`
 * and `-` (nothing of a name reaches nftables unchecked). */
char *bridge_filter_port_commands(const char *bridge,
                                  const struct bridge_port_identity *id,
                                  bool with_table, cell_error **err);
/* Filter the port (it need not exist yet: the map is keyed by name, so the
 * filter is in place before the port's first frame).  Replaces an earlier
 * filter of the same port. */
int bridge_filter_port_add(const char *bridge,
                           const struct bridge_port_identity *id,
                           cell_error **err);
/* The same in two halves, so that the transaction's child runs while the
 * caller does other work (an instance's start makes its container).
 * begin forks the child; finish waits for it (and makes the bridge's
 * table when the port alone could not be added) and must come before
 * the port's first frame; cancel only reaps the child of a job that is
 * not to be finished (what it added stays, for the caller's removal).
 * finish and cancel are no-ops on a job finished or never begun. */
struct bridge_filter_job {
  pid_t pid;        /* -1: no child */
  int fd;           /* the child's error pipe */
  char *with_table; /* the commands again, with the table's */
  char *what;       /* "filter port `P` of bridge `B`", for errors */
};
int bridge_filter_port_add_begin(const char *bridge,
                                 const struct bridge_port_identity *id,
                                 struct bridge_filter_job *job,
                                 cell_error **err);
int bridge_filter_port_add_finish(struct bridge_filter_job *job,
                                  cell_error **err);
void bridge_filter_job_cancel(struct bridge_filter_job *job);
/* Remove the port's chain and map entry; a port (or table) not filtered is
 * not an error. */
int bridge_filter_port_remove(const char *bridge, const char *port,
                              cell_error **err);
/* Remove the bridge's whole table; a missing one is not an error. */
int bridge_filter_remove(const char *bridge, cell_error **err);

#endif
