/* The nftables commands of a port's filter (lib/net/bridge-filter.c):
 * what a port may claim, and names that never reach nftables unchecked.
 * The filter at work is in tests/bats/celld-spoof.bats. */
#include <arpa/inet.h>
#include <stdlib.h>

#include "net/bridge-filter.h"
#include "unit.h"

static struct net_ip ip(int family, const char *text) {
  struct net_ip a = {.family = family};
  if (inet_pton(family, text, a.bytes) != 1)
    abort();
  return a;
}

static struct bridge_port_identity port(const char *name,
                                        const struct net_ip *v4,
                                        const struct net_ip *v6) {
  return (struct bridge_port_identity){
      .port = name, .mac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55},
      .ipv4 = v4, .ipv6 = v6};
}

TEST(a_port_may_claim_its_own_mac_and_addresses_only) {
  struct net_ip v4 = ip(AF_INET, "10.9.0.2"), v6 = ip(AF_INET6, "fd09::2");
  struct bridge_port_identity id = port("cv0000abcd", &v4, &v6);
  cell_error *err = NULL;
  char *t = bridge_filter_port_commands("br0", &id, true, &err);
  CHECK(t != NULL);
  if (!t)
    return;
  CHECK_CONTAINS(t, "add table bridge cell-br0\n");
  CHECK_CONTAINS(t, "iifname vmap @ports");
  CHECK_CONTAINS(t, "port-cv0000abcd ether saddr != 02:11:22:33:44:55 drop");
  CHECK_CONTAINS(t, "arp saddr ether 02:11:22:33:44:55 arp saddr ip 10.9.0.2 accept");
  CHECK_CONTAINS(t, "ip saddr 10.9.0.2 accept");
  /* DHCP from no address yet, for its own MAC only. */
  CHECK_CONTAINS(t, "udp dport 67 @th,288,48 != 0x021122334455 drop\n");
  CHECK_CONTAINS(t, "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 "
                    "udp dport 67 accept\n");
  CHECK(strstr(t, "@th,288,48") < strstr(t, "ip saddr 0.0.0.0"));
  CHECK_CONTAINS(t, "ip6 saddr fd09::2 accept");
  /* The link-local address of the MAC's EUI-64 (02 -> 00). */
  CHECK_CONTAINS(t, "ip6 saddr fe80::11:22ff:fe33:4455 accept");
  CHECK_CONTAINS(t, "@th,64,128 != 0xfe80000000000000001122fffe334455 "
                    "@th,64,128 != 0xfd090000000000000000000000000002 drop");
  CHECK_CONTAINS(t, "@th,192,64 != 0x0201021122334455 drop");
  CHECK_CONTAINS(t, "icmpv6 type 134 drop");
  CHECK_CONTAINS(t, "icmpv6 type 133 ip6 length != 8 ip6 length != 16 drop");
  CHECK_CONTAINS(t, "icmpv6 type 133 ip6 length 16 @th,64,64 != 0x0101021122334455 drop");
  CHECK_CONTAINS(t, "{ \"cv0000abcd\" : jump port-cv0000abcd }");
  /* Whatever no rule accepted. */
  CHECK_CONTAINS(t, "port-cv0000abcd drop\nadd element");
  /* No anonymous set in a port's rules: they would make every change
   * read them all. */
  const char *rules = strstr(t, "add chain bridge cell-br0 port-");
  CHECK(rules && strchr(rules, '{') == strstr(rules, "{ \"cv0000abcd\""));
  free(t);
}

TEST(without_ipv4_no_arp_and_no_ipv4) {
  struct bridge_port_identity id = port("cv1", NULL, NULL);
  cell_error *err = NULL;
  char *t = bridge_filter_port_commands("br0", &id, false, &err);
  CHECK(t != NULL);
  if (!t)
    return;
  CHECK(strstr(t, "ether type arp") == NULL);
  CHECK(strstr(t, "ip saddr") == NULL);
  CHECK(strstr(t, "udp dport 67") == NULL);
  CHECK(strstr(t, "add table") == NULL);
  CHECK_CONTAINS(t, "ip6 saddr fe80::11:22ff:fe33:4455 accept");
  free(t);
}

TEST(names_that_could_end_a_command_are_refused) {
  const char *bad[] = {"br\"0", "br;0", "br 0", "br{0", "br/0", "", "br\n0"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct bridge_port_identity id = port("cv1", NULL, NULL);
    cell_error *err = NULL;
    CHECK(bridge_filter_port_commands(bad[i], &id, true, &err) == NULL);
    CHECK(err && strstr(err->msg, "nftables takes only names"));
    cell_error_free(&err);
    id.port = bad[i];
    CHECK(bridge_filter_port_commands("br0", &id, true, &err) == NULL);
    CHECK(err != NULL);
    cell_error_free(&err);
    CHECK(bridge_filter_port_remove("br0", bad[i], &err) < 0);
    cell_error_free(&err);
  }
}

int main(void) {
  RUN(a_port_may_claim_its_own_mac_and_addresses_only);
  RUN(without_ipv4_no_arp_and_no_ipv4);
  RUN(names_that_could_end_a_command_are_refused);
  UNIT_DONE();
}
