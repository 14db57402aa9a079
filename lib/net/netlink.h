/* rtnetlink requests (built by nlmsg.h): links (bridge, veth), addresses and
 * routes, in the caller's network namespace or in another one.
 *
 * Every request carries NLM_F_ACK and waits for the kernel's answer, so a
 * function returning 0 means the kernel did it.  Errors name the operation
 * and the interface and carry the kernel's errno:
 * "set the MTU of `eth0` to 99999: Invalid argument". */
#ifndef CELL_NETLINK_H
#define CELL_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* An IPv4 or IPv6 address: family AF_INET (first 4 bytes used) or AF_INET6. */
struct net_ip {
  int family;
  uint8_t bytes[16];
};

/* An address with its prefix length, as put on an interface. */
struct net_addr {
  struct net_ip ip;
  unsigned prefix;
};

struct nl_sock;

/* A NETLINK_ROUTE socket.  netns_fd < 0: the caller's network namespace;
 * otherwise an fd of a network namespace (/proc/PID/ns/net, a bind mount
 * of one): a short-lived child enters it, opens the socket there and hands
 * it back, so the caller never changes namespace (and stays safe to call
 * from a threaded program).  A socket keeps the namespace it was made in. */
int nl_open(int netns_fd, struct nl_sock **out, cell_error **err);
void nl_close(struct nl_sock *nl);
static inline void nl_closep(struct nl_sock **nl) {
  if (*nl)
    nl_close(*nl);
  *nl = NULL;
}
#define cleanup_nl __attribute__((cleanup(nl_closep)))

/* Index of a link; ENODEV and "network device `eth9` does not exist" when
 * there is none. */
int nl_link_index(struct nl_sock *nl, const char *name, unsigned *index,
                  cell_error **err);
/* 1 when the link exists, 0 when not, -1 on another error. */
int nl_link_exists(struct nl_sock *nl, const char *name, cell_error **err);

/* What is known about an existing link. */
struct nl_link_info {
  unsigned index;
  unsigned master; /* index of the bridge it is a port of, 0 if none */
  unsigned mtu;
  char kind[16];   /* IFLA_INFO_KIND: "bridge", "veth", "" if none */
  /* Its counters (IFLA_STATS64), as this end sees them. */
  uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
};
int nl_link_get(struct nl_sock *nl, const char *name, struct nl_link_info *out,
                cell_error **err);
/* How many links have the given link as master (ports of a bridge). */
int nl_link_count_ports(struct nl_sock *nl, unsigned master_index,
                        unsigned *count, cell_error **err);

int nl_bridge_add(struct nl_sock *nl, const char *name, unsigned mtu,
                  cell_error **err);
/* A veth pair name <-> peer, both in the socket's namespace; mtu 0 leaves
 * the kernel's default. */
/* The bridge learns no MAC from link-local frames (01:80:c2:00:00:0X,
 * LLDP among them), which no netfilter hook filters: a port could
 * otherwise take another's MAC with them. */
int nl_bridge_no_linklocal_learn(struct nl_sock *nl, const char *name,
                                 cell_error **err);
int nl_veth_add(struct nl_sock *nl, const char *name, const char *peer,
                unsigned mtu, cell_error **err);
/* The same with the peer made directly in the namespace peer_netns_fd,
 * with the MAC address peer_mac (6 bytes; NULL: a random one): no move of
 * a link between namespaces, which waits for an RCU grace period (tens of
 * milliseconds on a busy host). */
int nl_veth_add_into(struct nl_sock *nl, const char *name, const char *peer,
                     int peer_netns_fd, const uint8_t *peer_mac, unsigned mtu,
                     cell_error **err);
int nl_link_del(struct nl_sock *nl, const char *name, cell_error **err);
/* Move a link into another network namespace (IFLA_NET_NS_FD). */
int nl_link_set_netns(struct nl_sock *nl, const char *name, int netns_fd,
                      cell_error **err);
int nl_link_rename(struct nl_sock *nl, const char *name, const char *new_name,
                   cell_error **err);
int nl_link_set_mtu(struct nl_sock *nl, const char *name, unsigned mtu,
                    cell_error **err);
int nl_link_set_mac(struct nl_sock *nl, const char *name, const uint8_t mac[6],
                    cell_error **err);
int nl_link_set_up(struct nl_sock *nl, const char *name, bool up,
                   cell_error **err);
/* Make name a port of the bridge `master`. */
int nl_link_set_master(struct nl_sock *nl, const char *name,
                       const char *master, cell_error **err);
/* Add an address; an address already there is replaced, not an error.
 * IPv6 addresses skip duplicate address detection (the subnet is ours and
 * the interface usable at once). */
int nl_addr_add(struct nl_sock *nl, const char *name, const struct net_addr *a,
                cell_error **err);
/* The permanent global addresses of a link (what a move to another
 * namespace loses): *out is a malloc'ed array of *n. */
int nl_addr_list(struct nl_sock *nl, const char *name, struct net_addr **out,
                 size_t *n, cell_error **err);
/* Default route (0.0.0.0/0 or ::/0) via gateway out of link name. */
int nl_route_add_default(struct nl_sock *nl, const char *name,
                         const struct net_ip *gateway, cell_error **err);

/* "10.88.0.1" / "fd00:88::1" into buf (at least 46 bytes). */
const char *net_ip_to_string(const struct net_ip *ip, char *buf, size_t len);

#endif
