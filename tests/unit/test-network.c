/* IP address management and interface names (lib/net/network.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include "net/network.h"
#include "unit.h"

static struct net_subnet subnet(const char *text) {
  struct net_subnet s;
  cell_error *err = NULL;
  if (net_subnet_parse(text, &s, &err) < 0) {
    fprintf(stderr, "subnet %s: %s\n", text, err->msg);
    cell_error_free(&err);
    abort();
  }
  return s;
}

static struct net_ip ip(const char *text) {
  struct net_ip a;
  cell_error *err = NULL;
  if (net_ip_parse(text, &a, &err) < 0) {
    fprintf(stderr, "%s\n", err->msg);
    cell_error_free(&err);
    abort();
  }
  return a;
}

static const char *ip_str(const struct net_ip *a) {
  static char buf[INET6_ADDRSTRLEN];
  return net_ip_to_string(a, buf, sizeof(buf));
}

/* The error message of a failing subnet parse ("" if it succeeds). */
static char last_msg[256];
static const char *subnet_error(const char *text) {
  struct net_subnet s;
  cell_error *err = NULL;
  last_msg[0] = '\0';
  if (net_subnet_parse(text, &s, &err) < 0) {
    snprintf(last_msg, sizeof(last_msg), "%s", err->msg);
    cell_error_free(&err);
  }
  return last_msg;
}

TEST(parse_ipv4_subnet) {
  struct net_subnet s = subnet("10.88.0.0/16");
  CHECK(s.base.family == AF_INET);
  CHECK(s.prefix == 16);
  CHECK_STR(ip_str(&s.base), "10.88.0.0");
  char buf[64];
  CHECK_STR(net_subnet_to_string(&s, buf, sizeof(buf)), "10.88.0.0/16");
  CHECK(subnet("0.0.0.0/0").prefix == 0);
  CHECK(subnet("10.1.2.3/32").prefix == 32);
}

TEST(parse_ipv6_subnet) {
  struct net_subnet s = subnet("fd00:88::/64");
  CHECK(s.base.family == AF_INET6);
  CHECK(s.prefix == 64);
  char buf[64];
  CHECK_STR(net_subnet_to_string(&s, buf, sizeof(buf)), "fd00:88::/64");
  CHECK(subnet("::/0").prefix == 0);
  CHECK(subnet("fd00::1/128").prefix == 128);
}

TEST(parse_bad_subnets) {
  CHECK_CONTAINS(subnet_error("10.88.0.0"), "expected ADDRESS/PREFIX");
  CHECK_CONTAINS(subnet_error("10.88.0.0/33"), "prefix length must be 0 to 32");
  CHECK_CONTAINS(subnet_error("fd00::/129"), "prefix length must be 0 to 128");
  CHECK_CONTAINS(subnet_error("10.88.0.0/"), "prefix length");
  CHECK_CONTAINS(subnet_error("10.88.0.0/-1"), "prefix length");
  CHECK_CONTAINS(subnet_error("10.88.0.0/1x"), "prefix length");
  CHECK_CONTAINS(subnet_error("10.888.0.0/16"), "invalid address `10.888.0.0`");
  CHECK_CONTAINS(subnet_error("/16"), "invalid address");
  CHECK_CONTAINS(subnet_error("10.88.0.1/16"),
                 "subnet `10.88.0.1/16`: host bits set (did you mean "
                 "10.88.0.0/16?)");
  CHECK_CONTAINS(subnet_error("fd00:88::1/64"), "did you mean fd00:88::/64?");
  CHECK_STR(subnet_error("10.88.0.0/16"), "");
}

TEST(parse_addresses) {
  struct net_ip a;
  cell_error *err = NULL;
  CHECK(net_ip_parse("10.88.0.5", &a, &err) == 0 && a.family == AF_INET);
  CHECK(net_ip_parse("fd00:88::5", &a, &err) == 0 && a.family == AF_INET6);
  CHECK(net_ip_parse("10.88.0", &a, &err) < 0);
  CHECK(err != NULL);
  CHECK_CONTAINS(err ? err->msg : NULL, "invalid IP address `10.88.0`");
  cell_error_free(&err);
  CHECK(net_ip_parse("10.88.0.5/24", &a, &err) < 0);
  cell_error_free(&err);
  struct net_ip x = ip("10.0.0.1"), y = ip("10.0.0.1"), z = ip("10.0.0.2");
  CHECK(net_ip_equal(&x, &y));
  CHECK(!net_ip_equal(&x, &z));
  struct net_ip v6 = ip("::a00:1"); /* same low bits, other family */
  CHECK(!net_ip_equal(&x, &v6));
}

TEST(membership) {
  struct net_subnet s = subnet("10.88.0.0/16");
  struct net_ip in = ip("10.88.255.254"), out = ip("10.89.0.1"),
                v6 = ip("fd00:88::1");
  CHECK(net_subnet_contains(&s, &in));
  CHECK(!net_subnet_contains(&s, &out));
  CHECK(!net_subnet_contains(&s, &v6));
  struct net_subnet s6 = subnet("fd00:88::/64");
  struct net_ip in6 = ip("fd00:88::ffff:ffff:ffff:ffff"), out6 = ip("fd00:89::1");
  CHECK(net_subnet_contains(&s6, &in6));
  CHECK(!net_subnet_contains(&s6, &out6));
  struct net_subnet all = subnet("0.0.0.0/0");
  CHECK(net_subnet_contains(&all, &out));
  struct net_ip first = net_subnet_first_host(&s);
  CHECK_STR(ip_str(&first), "10.88.0.1");
  first = net_subnet_first_host(&s6);
  CHECK_STR(ip_str(&first), "fd00:88::1");
}

TEST(overlap) {
  struct net_subnet a = subnet("10.88.0.0/16"), b = subnet("10.88.7.0/24"),
                    c = subnet("10.89.0.0/16"), d = subnet("0.0.0.0/0"),
                    e = subnet("fd00:88::/64"), f = subnet("fd00:88::/48"),
                    g = subnet("fd00:89::/64");
  CHECK(net_subnets_overlap(&a, &b));
  CHECK(net_subnets_overlap(&b, &a));
  CHECK(net_subnets_overlap(&a, &a));
  CHECK(!net_subnets_overlap(&a, &c));
  CHECK(net_subnets_overlap(&d, &c));
  CHECK(net_subnets_overlap(&e, &f));
  CHECK(!net_subnets_overlap(&e, &g));
  CHECK(!net_subnets_overlap(&a, &e)); /* families never overlap */
  struct net_subnet adjacent1 = subnet("10.0.0.0/25"), adjacent2 = subnet("10.0.0.128/25");
  CHECK(!net_subnets_overlap(&adjacent1, &adjacent2));
}

TEST(overlap_between_networks) {
  struct net_named_subnet v[] = {
      {"default", subnet("10.88.0.0/16")},
      {"default", subnet("fd00:88::/64")},
      {"other", subnet("10.90.0.0/16")},
      {"other", subnet("fd00:90::/64")},
  };
  cell_error *err = NULL;
  CHECK(net_check_no_overlap(v, 4, &err) == 0);
  CHECK(err == NULL);
  struct net_named_subnet w[] = {
      {"a", subnet("10.88.0.0/16")},
      {"b", subnet("fd00:88::/64")},
      {"b", subnet("10.88.1.0/24")},
  };
  CHECK(net_check_no_overlap(w, 3, &err) < 0);
  CHECK_STR(err ? err->msg : NULL, "subnet 10.88.1.0/24 of network `b` "
                                   "overlaps 10.88.0.0/16 of network `a`");
  cell_error_free(&err);
}

static const char *check_msg(const char *sub, const char *gw, const char *addr,
                             const char *const *used, size_t n) {
  struct net_subnet s = subnet(sub);
  struct net_ip g = gw ? ip(gw) : (struct net_ip){0};
  struct net_ip a = ip(addr);
  struct net_ip u[8];
  for (size_t i = 0; i < n; i++)
    u[i] = ip(used[i]);
  cell_error *err = NULL;
  last_msg[0] = '\0';
  if (net_check_address(&s, gw ? &g : NULL, u, n, &a, &err) < 0) {
    snprintf(last_msg, sizeof(last_msg), "%s", err->msg);
    cell_error_free(&err);
  }
  return last_msg;
}

TEST(check_address) {
  const char *used[] = {"10.88.0.2", "10.88.0.3"};
  CHECK_STR(check_msg("10.88.0.0/16", "10.88.0.1", "10.88.0.4", used, 2), "");
  CHECK_STR(check_msg("10.88.0.0/16", "10.88.0.1", "10.89.0.4", used, 2),
            "address 10.89.0.4 is not in subnet 10.88.0.0/16");
  CHECK_STR(check_msg("10.88.0.0/16", "10.88.0.1", "10.88.0.0", used, 2),
            "address 10.88.0.0 is the network address of subnet 10.88.0.0/16");
  CHECK_STR(check_msg("10.88.0.0/16", "10.88.0.1", "10.88.255.255", used, 2),
            "address 10.88.255.255 is the broadcast address of subnet "
            "10.88.0.0/16");
  CHECK_STR(check_msg("10.88.0.0/16", "10.88.0.1", "10.88.0.1", used, 2),
            "address 10.88.0.1 is the gateway of subnet 10.88.0.0/16");
  CHECK_STR(check_msg("10.88.0.0/16", "10.88.0.1", "10.88.0.3", used, 2),
            "address 10.88.0.3 is already in use");
  /* No gateway: .1 is a normal address. */
  CHECK_STR(check_msg("10.88.0.0/16", NULL, "10.88.0.1", used, 2), "");
  /* IPv6 has no broadcast: the last address is fine, the base is not. */
  CHECK_STR(check_msg("fd00:88::/64", "fd00:88::1",
                      "fd00:88::ffff:ffff:ffff:ffff", NULL, 0), "");
  CHECK_STR(check_msg("fd00:88::/64", "fd00:88::1", "fd00:88::", NULL, 0),
            "address fd00:88:: is the network address of subnet fd00:88::/64");
  CHECK_STR(check_msg("fd00:88::/64", "fd00:88::1", "fd00:88::1", NULL, 0),
            "address fd00:88::1 is the gateway of subnet fd00:88::/64");
  CHECK_STR(check_msg("fd00:88::/64", "fd00:88::1", "10.88.0.5", NULL, 0),
            "address 10.88.0.5 is not in subnet fd00:88::/64");
  /* /31 point-to-point: both addresses are hosts (RFC 3021). */
  CHECK_STR(check_msg("10.0.0.0/31", NULL, "10.0.0.0", NULL, 0), "");
  CHECK_STR(check_msg("10.0.0.0/31", NULL, "10.0.0.1", NULL, 0), "");
}

/* Allocate from sub with the gateway and used addresses; "" on error with
 * the message in last_msg. */
static const char *alloc(const char *sub, const char *gw,
                         const char *const *used, size_t n) {
  static char out[INET6_ADDRSTRLEN];
  struct net_subnet s = subnet(sub);
  struct net_ip g = gw ? ip(gw) : (struct net_ip){0};
  struct net_ip *u = calloc(n + 1, sizeof(*u));
  for (size_t i = 0; i < n; i++)
    u[i] = ip(used[i]);
  struct net_ip a;
  cell_error *err = NULL;
  out[0] = last_msg[0] = '\0';
  if (net_allocate(&s, gw ? &g : NULL, u, n, &a, &err) < 0) {
    snprintf(last_msg, sizeof(last_msg), "%s", err->msg);
    CHECK(err->errnum == ENOSPC);
    cell_error_free(&err);
  } else {
    net_ip_to_string(&a, out, sizeof(out));
  }
  free(u);
  return out;
}

TEST(allocate_first_free) {
  CHECK_STR(alloc("10.88.0.0/16", "10.88.0.1", NULL, 0), "10.88.0.2");
  CHECK_STR(alloc("10.88.0.0/16", NULL, NULL, 0), "10.88.0.1");
  const char *used[] = {"10.88.0.3", "10.88.0.2", "10.88.0.5"};
  CHECK_STR(alloc("10.88.0.0/16", "10.88.0.1", used, 3), "10.88.0.4");
  /* Holes are reused: the lowest free one wins. */
  const char *holes[] = {"10.88.0.2", "10.88.0.4"};
  CHECK_STR(alloc("10.88.0.0/16", "10.88.0.1", holes, 2), "10.88.0.3");
  /* Addresses of other subnets and families do not matter; duplicates do
   * not confuse the walk. */
  const char *mixed[] = {"10.99.0.2", "fd00::2", "10.88.0.2", "10.88.0.2"};
  CHECK_STR(alloc("10.88.0.0/16", "10.88.0.1", mixed, 4), "10.88.0.3");
  /* The gateway need not be the first address; it is never handed out. */
  const char *two[] = {"10.88.0.1", "10.88.0.2"};
  CHECK_STR(alloc("10.88.0.0/16", "10.88.0.3", two, 2), "10.88.0.4");
  /* Crossing an octet boundary. */
  const char *upto[] = {"10.88.0.253", "10.88.0.254"};
  CHECK_STR(alloc("10.88.0.0/23", "10.88.0.255", upto, 0), "10.88.0.1");
  (void)upto;
}

TEST(allocate_ipv6) {
  CHECK_STR(alloc("fd00:88::/64", "fd00:88::1", NULL, 0), "fd00:88::2");
  const char *used[] = {"fd00:88::2", "fd00:88::3"};
  CHECK_STR(alloc("fd00:88::/64", "fd00:88::1", used, 2), "fd00:88::4");
  const char *carry[] = {"fd00:88::2"};
  CHECK_STR(alloc("fd00:88::fffe/127", NULL, carry, 0), "fd00:88::fffe");
  (void)carry;
}

TEST(allocate_exhausted) {
  /* /30: .1 and .2 are the hosts; .1 is the gateway. */
  const char *used[] = {"10.88.0.2"};
  CHECK_STR(alloc("10.88.0.0/30", "10.88.0.1", used, 1), "");
  CHECK_STR(last_msg, "subnet 10.88.0.0/30 is exhausted: no free address left");
  CHECK_STR(alloc("10.88.0.0/30", "10.88.0.1", NULL, 0), "10.88.0.2");
  /* The broadcast address is never handed out, even when free. */
  const char *full[] = {"10.88.0.1", "10.88.0.2"};
  CHECK_STR(alloc("10.88.0.0/30", NULL, full, 2), "");
  CHECK_CONTAINS(last_msg, "exhausted");
  /* A /24 filled by 253 instances plus the gateway. */
  const char *many[253];
  char store[253][24]; /* room for any int, as -O1 cannot see i < 253 */
  for (int i = 0; i < 253; i++) {
    snprintf(store[i], sizeof(store[i]), "10.1.2.%d", i + 2);
    many[i] = store[i];
  }
  CHECK_STR(alloc("10.1.2.0/24", "10.1.2.1", many, 253), "");
  CHECK_CONTAINS(last_msg, "subnet 10.1.2.0/24 is exhausted");
  CHECK_STR(alloc("10.1.2.0/24", "10.1.2.1", many, 252), "10.1.2.254");
  /* /32 holds one host; /128 too. */
  CHECK_STR(alloc("10.1.2.3/32", NULL, NULL, 0), "10.1.2.3");
  const char *one[] = {"10.1.2.3"};
  CHECK_STR(alloc("10.1.2.3/32", NULL, one, 1), "");
  const char *one6[] = {"fd00::7"};
  CHECK_STR(alloc("fd00::7/128", NULL, one6, 1), "");
  CHECK_CONTAINS(last_msg, "subnet fd00::7/128 is exhausted");
}

static const char *ifname_error(const char *name) {
  cell_error *err = NULL;
  last_msg[0] = '\0';
  if (net_ifname_validate(name, &err) < 0) {
    snprintf(last_msg, sizeof(last_msg), "%s", err->msg);
    cell_error_free(&err);
  }
  return last_msg;
}

TEST(interface_names) {
  CHECK_STR(ifname_error("eth0"), "");
  CHECK_STR(ifname_error("cell0"), "");
  CHECK_STR(ifname_error("abcdefghijklmno"), ""); /* 15: the most */
  CHECK_STR(ifname_error("abcdefghijklmnop"),
            "interface name `abcdefghijklmnop` is longer than 15 characters");
  CHECK_STR(ifname_error(""), "interface name must not be empty");
  CHECK_STR(ifname_error(NULL), "interface name must not be empty");
  CHECK_CONTAINS(ifname_error("."), "not allowed");
  CHECK_CONTAINS(ifname_error(".."), "not allowed");
  CHECK_CONTAINS(ifname_error("a/b"), "must not contain");
  CHECK_CONTAINS(ifname_error("eth0:1"), "must not contain");
  CHECK_CONTAINS(ifname_error("eth 0"), "must not contain");
  CHECK_CONTAINS(ifname_error("eth\t0"), "must not contain");
}

TEST(net_devices_checks_without_root) {
  /* Errors that come from the config alone, before any netlink. */
  struct spec_net_device d[2] = {{"cell-nd-a", "eth7"}, {"cell-nd-b", "eth7"}};
  struct spec_namespace ns = {SPEC_NS_NETWORK, NULL};
  struct spec_linux l = {.net_devices = d, .n_net_devices = 2};
  struct spec s = {.linux_ = &l};
  cell_error *err = NULL;
  CHECK(network_check_devices(&s, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : NULL,
                 "linux.netDevices: the container has no network namespace");
  cell_error_free(&err);
  l.namespaces = &ns;
  l.n_namespaces = 1;
  CHECK(network_check_devices(&s, &err) < 0);
  CHECK_STR(err ? err->msg : NULL, "linux.netDevices: `cell-nd-a` and "
                                   "`cell-nd-b` would both be `eth7` in the "
                                   "container");
  cell_error_free(&err);
  d[1].name = "averyveryverylongname";
  CHECK(network_check_devices(&s, &err) < 0);
  CHECK_STR(err ? err->msg : NULL,
            "linux.netDevices.cell-nd-b.name: interface name "
            "`averyveryverylongname` is longer than 15 characters");
  cell_error_free(&err);
  l.n_net_devices = 0;
  CHECK(network_check_devices(&s, &err) == 0);
  CHECK(network_move_devices(&s, 1, &err) == 0);
}

int main(void) {
  RUN(parse_ipv4_subnet);
  RUN(parse_ipv6_subnet);
  RUN(parse_bad_subnets);
  RUN(parse_addresses);
  RUN(membership);
  RUN(overlap);
  RUN(overlap_between_networks);
  RUN(check_address);
  RUN(allocate_first_free);
  RUN(allocate_ipv6);
  RUN(allocate_exhausted);
  RUN(interface_names);
  RUN(net_devices_checks_without_root);
  UNIT_DONE();
}
