/* Network policy: address management (subnets, allocation) and the steps
 * that give a network namespace its interfaces (bridge, veth, addresses,
 * default routes), on top of netlink.h.  Also linux.netDevices of the OCI
 * runtime.
 *
 * Every setup step either completes or leaves nothing behind: a failed
 * network_attach deletes the veth pair it made. */
#ifndef CELL_NETWORK_H
#define CELL_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"
#include "net/netlink.h"
#include "oci/spec.h"

/* A subnet: base address (host bits zero) and prefix length. */
struct net_subnet {
  struct net_ip base;
  unsigned prefix;
};

/* A subnet of a named network, for the overlap check. */
struct net_named_subnet {
  const char *network;
  struct net_subnet subnet;
};

/* ---- addresses ------------------------------------------------------------ */
/* "10.88.0.5", "fd00:88::5"; error "invalid IP address `x`". */
int net_ip_parse(const char *text, struct net_ip *out, cell_error **err);
bool net_ip_equal(const struct net_ip *a, const struct net_ip *b);
/* "10.88.0.0/16", "fd00:88::/64"; the host bits must be zero. */
int net_subnet_parse(const char *text, struct net_subnet *out,
                     cell_error **err);
/* "10.88.0.0/16" into buf (at least 50 bytes). */
const char *net_subnet_to_string(const struct net_subnet *s, char *buf,
                                 size_t len);
bool net_subnets_overlap(const struct net_subnet *a, const struct net_subnet *b);
bool net_subnet_contains(const struct net_subnet *s, const struct net_ip *ip);
/* The first host address of the subnet (10.88.0.1): the usual gateway. */
struct net_ip net_subnet_first_host(const struct net_subnet *s);

/* No two subnets of different networks overlap (same family only can):
 * "subnet 10.88.1.0/24 of network `b` overlaps 10.88.0.0/16 of network `a`". */
int net_check_no_overlap(const struct net_named_subnet *v, size_t n,
                         cell_error **err);

/* An address asked for: inside the subnet, not its network or (IPv4)
 * broadcast address, not the gateway (may be NULL), not in used[]. */
int net_check_address(const struct net_subnet *s, const struct net_ip *gateway,
                      const struct net_ip *used, size_t n_used,
                      const struct net_ip *ip, cell_error **err);
/* The lowest host address of s that is neither the gateway nor in used[];
 * "subnet 10.88.0.0/30 is exhausted" when there is none. */
int net_allocate(const struct net_subnet *s, const struct net_ip *gateway,
                 const struct net_ip *used, size_t n_used, struct net_ip *out,
                 cell_error **err);

/* A locally administered unicast MAC (02:...) made from seed (an
 * instance's host veth name, unique and kept in its record): the same MAC
 * at every start, so that neighbours' caches and DHCP's static leases
 * stay right. */
void network_stable_mac(const char *seed, uint8_t mac[6]);

/* A DNS name: `.`-separated labels of letters, digits and `-` (not first
 * or last), 63 characters each, 253 in all. */
bool net_dns_name_ok(const char *name);

/* 1 to 15 (IFNAMSIZ - 1) characters, none of '/', ':' or white space, not
 * "." or "..": "interface name `averyveryverylongname` is longer than 15
 * characters". */
int net_ifname_validate(const char *name, cell_error **err);

/* ---- setup steps (celld) ------------------------------------------------------ */
/* Create the bridge if missing (an existing link of that name must be a
 * bridge; a new one gets a MAC of its own, network_stable_mac of its
 * name, which no port changes), give it the gateway addresses (with the subnets' prefixes), the
 * MTU (0: leave it) and bring it up.  Idempotent. */
int network_bridge_ensure(const char *bridge, const struct net_addr *gateways,
                          size_t n_gateways, unsigned mtu, cell_error **err);
/* A veth pair host_veth <-> ifname, the peer made in the namespace
 * netns_fd with the MAC address mac (6 bytes; NULL: a random one) and the
 * MTU (0: leave it); host_veth joins the bridge and comes up; the peer
 * gets the addresses and default routes via the
 * gateways (one per family at most, may be none), and comes up with lo.
 * On failure the pair is deleted. */
int network_attach(int netns_fd, const char *bridge, const char *host_veth,
                   const char *ifname, const uint8_t *mac, unsigned mtu,
                   const struct net_addr *addrs,
                   size_t n_addrs, const struct net_ip *gateways,
                   size_t n_gateways, cell_error **err);
/* Whether ifname is free in the namespace netns_fd; EEXIST naming it and
 * the way out when a link has it (one the namespace's root made). */
int network_ifname_free(int netns_fd, const char *ifname, cell_error **err);
/* The default route of gateway's family in the namespace goes via
 * gateway on ifname (an existing one is replaced). */
int network_default_route(int netns_fd, const char *ifname,
                          const struct net_ip *gateway, cell_error **err);
/* Only lo, up: a namespace without networks. */
int network_loopback_up(int netns_fd, cell_error **err);
/* Delete the veth pair of host_veth (deleting one end deletes both); a veth
 * already gone is not an error (cleanup after a crash). */
int network_detach(const char *host_veth, cell_error **err);
/* The host's link `name` (a veth's host end) up or down. */
int network_link_set_up(const char *name, bool up, cell_error **err);
/* Delete the bridge when no link is a port of it any more; *removed says
 * whether it did.  A missing bridge is not an error; a link of that name
 * that is not a bridge is left alone. */
int network_bridge_remove_if_unused(const char *bridge, bool *removed,
                                    cell_error **err);

/* ---- linux.netDevices (OCI runtime) ---------------------------------------- */
/* What can be checked before anything is made: the config asks for a
 * network namespace, the names are valid and unique, every host device
 * exists.  Errors start with "linux.netDevices". */
int network_check_devices(const struct spec *s, cell_error **err);
/* Move each host device of linux.netDevices into the network namespace of
 * container_pid (/proc/PID/ns/net), renamed as asked, its permanent global
 * addresses kept.  Nothing to undo on delete: when the namespace dies,
 * physical devices return to the host and virtual ones are destroyed. */
int network_move_devices(const struct spec *s, pid_t container_pid,
                         cell_error **err);

#endif
