/* Address management and network setup steps (see network.h). */
#include "net/network.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include "base/util.h"

/* A message without strerror, but an errno for callers to act on. */
static int __attribute__((format(printf, 3, 4)))
fail_with_code(cell_error **err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cell_vfail(err, 0, fmt, ap);
  va_end(ap);
  (*err)->errnum = code;
  return -1;
}

/* Addresses as 128-bit numbers: IPv4 in the low 32 bits. */
typedef unsigned __int128 u128;

static unsigned family_bits(int family) { return family == AF_INET ? 32 : 128; }

static u128 ip_to_num(const struct net_ip *ip) {
  size_t len = ip->family == AF_INET ? 4 : 16;
  u128 v = 0;
  for (size_t i = 0; i < len; i++)
    v = (v << 8) | ip->bytes[i];
  return v;
}

static struct net_ip num_to_ip(int family, u128 v) {
  struct net_ip ip = {.family = family};
  size_t len = family == AF_INET ? 4 : 16;
  for (size_t i = len; i-- > 0;) {
    ip.bytes[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
  return ip;
}

/* The host bits of a prefix, as a mask (all ones for /0). */
static u128 host_mask(int family, unsigned prefix) {
  unsigned host_bits = family_bits(family) - prefix;
  return host_bits >= 128 ? ~(u128)0 : ((u128)1 << host_bits) - 1;
}

static u128 subnet_last(const struct net_subnet *s) {
  return ip_to_num(&s->base) | host_mask(s->base.family, s->prefix);
}

/* The range of addresses that can go to hosts: IPv4 loses the network and
 * broadcast addresses (except in /31 and /32, RFC 3021), IPv6 the
 * subnet-router anycast address (the base) unless it is a /127 or /128. */
static void host_range(const struct net_subnet *s, u128 *first, u128 *last) {
  *first = ip_to_num(&s->base);
  *last = subnet_last(s);
  unsigned bits = family_bits(s->base.family);
  if (s->prefix + 1 >= bits)
    return;
  (*first)++;
  if (s->base.family == AF_INET)
    (*last)--;
}

int net_ip_parse(const char *text, struct net_ip *out, cell_error **err) {
  memset(out, 0, sizeof(*out));
  if (text && inet_pton(AF_INET, text, out->bytes) == 1) {
    out->family = AF_INET;
    return 0;
  }
  if (text && inet_pton(AF_INET6, text, out->bytes) == 1) {
    out->family = AF_INET6;
    return 0;
  }
  return cell_fail(err, 0, "invalid IP address `%s`", text ? text : "");
}

bool net_ip_equal(const struct net_ip *a, const struct net_ip *b) {
  return a->family == b->family && ip_to_num(a) == ip_to_num(b);
}

int net_subnet_parse(const char *text, struct net_subnet *out,
                     cell_error **err) {
  memset(out, 0, sizeof(*out));
  const char *slash = text ? strchr(text, '/') : NULL;
  if (slash == NULL)
    return cell_fail(err, 0, "subnet `%s`: expected ADDRESS/PREFIX",
                     text ? text : "");
  cleanup_free char *addr = xstrndup(text, (size_t)(slash - text));
  cell_error *e = NULL;
  if (net_ip_parse(addr, &out->base, &e) < 0) {
    cell_error_free(&e);
    return cell_fail(err, 0, "subnet `%s`: invalid address `%s`", text,
                     addr);
  }
  long long prefix;
  unsigned bits = family_bits(out->base.family);
  if (!cell_parse_ll(slash + 1, 0, bits, &prefix))
    return cell_fail(err, 0,
                     "subnet `%s`: the prefix length must be 0 to %u", text,
                     bits);
  out->prefix = (unsigned)prefix;
  if (ip_to_num(&out->base) & host_mask(out->base.family, out->prefix)) {
    char buf[64];
    struct net_subnet fixed = {
        .base = num_to_ip(out->base.family,
                          ip_to_num(&out->base) &
                              ~host_mask(out->base.family, out->prefix)),
        .prefix = out->prefix};
    return cell_fail(err, 0, "subnet `%s`: host bits set (did you mean %s?)",
                     text, net_subnet_to_string(&fixed, buf, sizeof(buf)));
  }
  return 0;
}

const char *net_subnet_to_string(const struct net_subnet *s, char *buf,
                                 size_t len) {
  char ip[INET6_ADDRSTRLEN];
  snprintf(buf, len, "%s/%u", net_ip_to_string(&s->base, ip, sizeof(ip)),
           s->prefix);
  return buf;
}

bool net_subnet_contains(const struct net_subnet *s, const struct net_ip *ip) {
  if (s->base.family != ip->family)
    return false;
  u128 mask = ~host_mask(ip->family, s->prefix);
  return (ip_to_num(ip) & mask) == (ip_to_num(&s->base) & mask);
}

bool net_subnets_overlap(const struct net_subnet *a, const struct net_subnet *b) {
  /* Two prefixes overlap when the shorter one contains the other's base. */
  const struct net_subnet *wide = a->prefix <= b->prefix ? a : b;
  const struct net_subnet *narrow = wide == a ? b : a;
  return net_subnet_contains(wide, &narrow->base);
}

struct net_ip net_subnet_first_host(const struct net_subnet *s) {
  u128 first, last;
  host_range(s, &first, &last);
  return num_to_ip(s->base.family, first);
}

int net_check_no_overlap(const struct net_named_subnet *v, size_t n,
                         cell_error **err) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < i; j++) {
      if (!net_subnets_overlap(&v[i].subnet, &v[j].subnet))
        continue;
      char a[64], b[64];
      return cell_fail(err, 0,
                       "subnet %s of network `%s` overlaps %s of network `%s`",
                       net_subnet_to_string(&v[i].subnet, a, sizeof(a)),
                       v[i].network,
                       net_subnet_to_string(&v[j].subnet, b, sizeof(b)),
                       v[j].network);
    }
  return 0;
}

int net_check_address(const struct net_subnet *s, const struct net_ip *gateway,
                      const struct net_ip *used, size_t n_used,
                      const struct net_ip *ip, cell_error **err) {
  char text[INET6_ADDRSTRLEN], sub[64];
  net_ip_to_string(ip, text, sizeof(text));
  net_subnet_to_string(s, sub, sizeof(sub));
  if (!net_subnet_contains(s, ip))
    return cell_fail(err, 0, "address %s is not in subnet %s", text, sub);
  u128 first, last, v = ip_to_num(ip);
  host_range(s, &first, &last);
  if (v < first)
    return cell_fail(err, 0,
                     "address %s is the network address of subnet %s", text,
                     sub);
  if (v > last)
    return cell_fail(err, 0,
                     "address %s is the broadcast address of subnet %s", text,
                     sub);
  if (gateway && net_ip_equal(gateway, ip))
    return cell_fail(err, 0, "address %s is the gateway of subnet %s",
                     text, sub);
  for (size_t i = 0; i < n_used; i++)
    if (net_ip_equal(&used[i], ip))
      return fail_with_code(err, EADDRINUSE, "address %s is already in use",
                            text);
  return 0;
}

static int cmp_u128(const void *a, const void *b) {
  u128 x = *(const u128 *)a, y = *(const u128 *)b;
  return x < y ? -1 : x > y;
}

int net_allocate(const struct net_subnet *s, const struct net_ip *gateway,
                 const struct net_ip *used, size_t n_used, struct net_ip *out,
                 cell_error **err) {
  /* Sort the taken addresses of the subnet, then walk up from the first
   * host address past every taken one: the first gap is the answer. */
  cleanup_free u128 *taken = xcalloc(n_used + 1, sizeof(*taken));
  size_t n = 0;
  for (size_t i = 0; i < n_used; i++)
    if (net_subnet_contains(s, &used[i]))
      taken[n++] = ip_to_num(&used[i]);
  if (gateway && net_subnet_contains(s, gateway))
    taken[n++] = ip_to_num(gateway);
  qsort(taken, n, sizeof(*taken), cmp_u128);
  u128 first, last;
  host_range(s, &first, &last);
  u128 cand = first;
  for (size_t i = 0; i < n && taken[i] <= cand; i++) {
    if (taken[i] < cand)
      continue;
    if (cand == last) {
      char sub[64];
      return fail_with_code(err, ENOSPC,
                       "subnet %s is exhausted: no free address left",
                       net_subnet_to_string(s, sub, sizeof(sub)));
    }
    cand++;
  }
  *out = num_to_ip(s->base.family, cand);
  return 0;
}

/* FNV-1a of the seed, 40 bits of it. */
void network_stable_mac(const char *seed, uint8_t mac[6]) {
  uint64_t h = 1469598103934665603ULL;
  for (const char *p = seed; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ULL;
  mac[0] = 0x02;
  for (int i = 1; i < 6; i++)
    mac[i] = (uint8_t)(h >> (8 * (i - 1)));
}

bool net_dns_name_ok(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len > 253)
    return false;
  for (const char *p = name; *p;) {
    size_t label = strcspn(p, ".");
    if (label == 0 || label > 63 || p[0] == '-' || p[label - 1] == '-')
      return false;
    for (size_t i = 0; i < label; i++)
      if (!isalnum((unsigned char)p[i]) && p[i] != '-')
        return false;
    p += label;
    if (*p == '.' && *++p == '\0')
      return false;
  }
  return true;
}

int net_ifname_validate(const char *name, cell_error **err) {
  if (name == NULL || name[0] == '\0')
    return cell_fail(err, 0, "interface name must not be empty");
  if (strlen(name) > IFNAMSIZ - 1)
    return cell_fail(err, 0,
                     "interface name `%s` is longer than %d characters", name,
                     IFNAMSIZ - 1);
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return cell_fail(err, 0, "interface name `%s` is not allowed", name);
  for (const char *p = name; *p; p++)
    if (*p == '/' || *p == ':' || *p == ' ' || (*p >= '\t' && *p <= '\r'))
      return cell_fail(err, 0,
                       "interface name `%s` must not contain '/', ':' or white "
                       "space",
                       name);
  return 0;
}

/* ---- setup steps ----------------------------------------------------------- */

int network_bridge_ensure(const char *bridge, const struct net_addr *gateways,
                          size_t n_gateways, unsigned mtu, cell_error **err) {
  if (net_ifname_validate(bridge, err) < 0)
    return cell_error_wrap(err, "bridge");
  cleanup_nl struct nl_sock *nl = NULL;
  if (nl_open(-1, &nl, err) < 0)
    return -1;
  int exists = nl_link_exists(nl, bridge, err);
  if (exists < 0)
    return -1;
  bool made = false;
  if (!exists) {
    if (nl_bridge_add(nl, bridge, mtu, err) < 0)
      return -1;
    made = true;
  } else {
    struct nl_link_info info;
    if (nl_link_get(nl, bridge, &info, err) < 0)
      return -1;
    if (strcmp(info.kind, "bridge") != 0)
      return cell_fail(err, 0,
                       "network device `%s` exists and is not a bridge",
                       bridge);
  }
  /* A MAC of its own: a bridge without one takes its ports' lowest, and a
   * port that goes (an instance destroyed) would change the gateway's MAC
   * under every other instance's ARP cache, cutting them off from the
   * gateway (and its DNS server) for seconds. */
  uint8_t mac[6];
  network_stable_mac(bridge, mac);
  int r = made ? nl_link_set_mac(nl, bridge, mac, err) : 0;
  /* Also on a bridge that was there: every start makes sure of it. */
  if (r == 0)
    r = nl_bridge_no_linklocal_learn(nl, bridge, err);
  for (size_t i = 0; r == 0 && i < n_gateways; i++)
    r = nl_addr_add(nl, bridge, &gateways[i], err);
  if (r == 0 && mtu && !made)
    r = nl_link_set_mtu(nl, bridge, mtu, err);
  if (r == 0)
    r = nl_link_set_up(nl, bridge, true, err);
  if (r < 0 && made) {
    cell_error *ignored = NULL;
    nl_link_del(nl, bridge, &ignored);
    cell_error_free(&ignored);
  }
  return r;
}

/* lo, then ifname (made there with its name, MAC and MTU): addresses, up,
 * and the routes (they need the link up and the gateway's subnet on it). */
static int configure_inside(struct nl_sock *nl, const char *ifname,
                            const struct net_addr *addrs,
                            size_t n_addrs, const struct net_ip *gateways,
                            size_t n_gateways, cell_error **err) {
  if (nl_link_set_up(nl, "lo", true, err) < 0)
    return -1;
  for (size_t i = 0; i < n_addrs; i++)
    if (nl_addr_add(nl, ifname, &addrs[i], err) < 0)
      return -1;
  if (nl_link_set_up(nl, ifname, true, err) < 0)
    return -1;
  for (size_t i = 0; i < n_gateways; i++)
    if (nl_route_add_default(nl, ifname, &gateways[i], err) < 0)
      return -1;
  return 0;
}

static int attach_steps(struct nl_sock *host, int netns_fd, const char *bridge,
                        const char *host_veth, const char *ifname,
                        const struct net_addr *addrs, size_t n_addrs,
                        const struct net_ip *gateways, size_t n_gateways,
                        cell_error **err) {
  if (nl_link_set_master(host, host_veth, bridge, err) < 0 ||
      nl_link_set_up(host, host_veth, true, err) < 0)
    return -1;
  cleanup_nl struct nl_sock *inside = NULL;
  if (nl_open(netns_fd, &inside, err) < 0)
    return -1;
  return configure_inside(inside, ifname, addrs, n_addrs, gateways,
                          n_gateways, err);
}

/* The peer is made in the namespace under its final name: nothing of it
 * is ever in the host's (no temporary name a crash could leave), and no
 * move between namespaces. */
int network_attach(int netns_fd, const char *bridge, const char *host_veth,
                   const char *ifname, const uint8_t *mac, unsigned mtu,
                   const struct net_addr *addrs,
                   size_t n_addrs, const struct net_ip *gateways,
                   size_t n_gateways, cell_error **err) {
  if (net_ifname_validate(host_veth, err) < 0 ||
      net_ifname_validate(ifname, err) < 0)
    return -1;
  cleanup_nl struct nl_sock *host = NULL;
  if (nl_open(-1, &host, err) < 0)
    return -1;
  if (nl_veth_add_into(host, host_veth, ifname, netns_fd, mac, mtu, err) < 0)
    return -1;
  if (attach_steps(host, netns_fd, bridge, host_veth, ifname, addrs, n_addrs,
                   gateways, n_gateways, err) == 0)
    return 0;
  /* Deleting the host end takes the peer with it, wherever it is. */
  cell_error *ignored = NULL;
  nl_link_del(host, host_veth, &ignored);
  cell_error_free(&ignored);
  return -1;
}

int network_ifname_free(int netns_fd, const char *ifname, cell_error **err) {
  cleanup_nl struct nl_sock *nl = NULL;
  if (nl_open(netns_fd, &nl, err) < 0)
    return -1;
  int r = nl_link_exists(nl, ifname, err);
  if (r < 0)
    return -1;
  if (r > 0)
    return cell_fail(err, EEXIST, "interface `%s` exists in the namespace "
                     "already: remove it there (ip link del %s) and try "
                     "again", ifname, ifname);
  return 0;
}

int network_default_route(int netns_fd, const char *ifname,
                          const struct net_ip *gateway, cell_error **err) {
  cleanup_nl struct nl_sock *nl = NULL;
  if (nl_open(netns_fd, &nl, err) < 0)
    return -1;
  return nl_route_add_default(nl, ifname, gateway, err);
}

int network_loopback_up(int netns_fd, cell_error **err) {
  cleanup_nl struct nl_sock *nl = NULL;
  if (nl_open(netns_fd, &nl, err) < 0)
    return -1;
  return nl_link_set_up(nl, "lo", true, err);
}

int network_detach(const char *host_veth, cell_error **err) {
  cleanup_nl struct nl_sock *nl = NULL;
  if (nl_open(-1, &nl, err) < 0)
    return -1;
  cell_error *e = NULL;
  if (nl_link_del(nl, host_veth, &e) == 0)
    return 0;
  if (e->errnum == ENODEV) {
    cell_error_free(&e);
    return 0;
  }
  *err = e;
  return -1;
}

int network_link_set_up(const char *name, bool up, cell_error **err) {
  cleanup_nl struct nl_sock *nl = NULL;
  if (nl_open(-1, &nl, err) < 0)
    return -1;
  return nl_link_set_up(nl, name, up, err);
}

int network_bridge_remove_if_unused(const char *bridge, bool *removed,
                                    cell_error **err) {
  *removed = false;
  cleanup_nl struct nl_sock *nl = NULL;
  if (nl_open(-1, &nl, err) < 0)
    return -1;
  struct nl_link_info info;
  int r = nl_link_exists(nl, bridge, err);
  if (r <= 0)
    return r;
  unsigned ports;
  if (nl_link_get(nl, bridge, &info, err) < 0)
    return -1;
  /* A link of that name that is no bridge is someone else's: never ours
   * to delete (network_bridge_ensure refuses to use it too). */
  if (strcmp(info.kind, "bridge") != 0)
    return 0;
  if (nl_link_count_ports(nl, info.index, &ports, err) < 0)
    return -1;
  if (ports > 0)
    return 0;
  if (nl_link_del(nl, bridge, err) < 0)
    return -1;
  *removed = true;
  return 0;
}

/* ---- linux.netDevices ----------------------------------------------------- */

static const char *device_target(const struct spec_net_device *d) {
  return d->name ? d->name : d->host_name;
}

static int check_device_names(const struct spec_linux *l, cell_error **err) {
  for (size_t i = 0; i < l->n_net_devices; i++) {
    const struct spec_net_device *d = &l->net_devices[i];
    if (net_ifname_validate(d->host_name, err) < 0)
      return cell_error_wrap(err, "linux.netDevices");
    if (d->name && net_ifname_validate(d->name, err) < 0)
      return cell_error_wrap(err, "linux.netDevices.%s.name", d->host_name);
    for (size_t j = 0; j < i; j++)
      if (strcmp(device_target(&l->net_devices[j]), device_target(d)) == 0)
        return cell_fail(err, 0,
                         "linux.netDevices: `%s` and `%s` would both be `%s` "
                         "in the container",
                         l->net_devices[j].host_name, d->host_name,
                         device_target(d));
  }
  return 0;
}

int network_check_devices(const struct spec *s, cell_error **err) {
  const struct spec_linux *l = s->linux_;
  if (l == NULL || l->n_net_devices == 0)
    return 0;
  if (spec_find_namespace(s, SPEC_NS_NETWORK) == NULL)
    return cell_fail(err, 0,
                     "linux.netDevices: the container has no network namespace "
                     "of its own (linux.namespaces has no `network`)");
  if (check_device_names(l, err) < 0)
    return -1;
  cleanup_nl struct nl_sock *nl = NULL;
  if (nl_open(-1, &nl, err) < 0)
    return cell_error_wrap(err, "linux.netDevices");
  for (size_t i = 0; i < l->n_net_devices; i++) {
    unsigned index;
    if (nl_link_index(nl, l->net_devices[i].host_name, &index, err) < 0)
      return cell_error_wrap(err, "linux.netDevices");
  }
  return 0;
}

/* The container must not be in our namespace: moving a device "there" would
 * do nothing and the rename would hit the host's device. */
static int open_container_netns(pid_t pid, int *out, cell_error **err) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  struct stat theirs, ours;
  if (fstat(fd, &theirs) < 0 || stat("/proc/self/ns/net", &ours) < 0)
    return cell_fail_errno(err, "stat `%s`", path);
  if (theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino)
    return cell_fail(err, 0,
                     "the container process is in the runtime's own network "
                     "namespace");
  *out = steal_fd(&fd);
  return 0;
}

static int move_one(struct nl_sock *host, struct nl_sock *inside, int netns_fd,
                    const struct spec_net_device *d, cell_error **err) {
  /* A move drops the device's addresses: note them first, put them back
   * after, as the runtime spec asks. */
  cleanup_free struct net_addr *addrs = NULL;
  size_t n = 0;
  if (nl_addr_list(host, d->host_name, &addrs, &n, err) < 0 ||
      nl_link_set_netns(host, d->host_name, netns_fd, err) < 0)
    return -1;
  if (strcmp(d->host_name, device_target(d)) != 0 &&
      nl_link_rename(inside, d->host_name, device_target(d), err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (nl_addr_add(inside, device_target(d), &addrs[i], err) < 0)
      return -1;
  return 0;
}

int network_move_devices(const struct spec *s, pid_t container_pid,
                         cell_error **err) {
  const struct spec_linux *l = s->linux_;
  if (l == NULL || l->n_net_devices == 0)
    return 0;
  /* All checks first: a missing device must not leave others moved. */
  if (network_check_devices(s, err) < 0)
    return -1;
  cleanup_close int netns_fd = -1;
  if (open_container_netns(container_pid, &netns_fd, err) < 0)
    return cell_error_wrap(err, "linux.netDevices");
  cleanup_nl struct nl_sock *host = NULL, *inside = NULL;
  if (nl_open(-1, &host, err) < 0 || nl_open(netns_fd, &inside, err) < 0)
    return cell_error_wrap(err, "linux.netDevices");
  for (size_t i = 0; i < l->n_net_devices; i++)
    if (move_one(host, inside, netns_fd, &l->net_devices[i], err) < 0)
      return cell_error_wrap(err, "linux.netDevices");
  return 0;
}
