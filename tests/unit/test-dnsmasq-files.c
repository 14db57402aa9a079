/* What a network's dnsmasq is given (lib/daemon/dnsmasq-files.c): its
 * hosts files from the instances' records, and its command line. */
#include <stdlib.h>

#include "base/util.h"
#include "daemon/dnsmasq-files.h"
#include "net/network.h"
#include "unit.h"

static struct daemon_network network(const char *domain) {
  struct daemon_network n = {.name = "lan", .bridge = "br-lan",
                             .domain = (char *)domain, .dnsmasq = true};
  cell_error *err = NULL;
  n.has4 = net_subnet_parse("10.5.0.0/16", &n.subnet4, &err) == 0;
  n.has6 = net_subnet_parse("fd05::/64", &n.subnet6, &err) == 0;
  return n;
}

static struct instance_record record(const char *name, const char *network,
                                     const char *veth, const char *v4,
                                     const char *v6) {
  struct instance_record r = {.name = (char *)name, .n_nets = 1};
  r.nets[0] = (struct instance_net){.network = (char *)network,
                                    .host_veth = (char *)veth,
                                    .ipv4 = (char *)v4, .ipv6 = (char *)v6};
  return r;
}

static char *mac_of(const struct instance_record *r) {
  uint8_t m[6];
  instance_net_mac(&r->nets[0], m);
  return xasprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
                   m[4], m[5]);
}

TEST(hosts_name_each_address_of_the_network_with_and_without_domain) {
  struct daemon_network net = network("cell.test");
  struct instance_record a = record("web1", "lan", "cv00000001", "10.5.0.2", "fd05::2");
  struct instance_record b = record("db", "other", "cv00000002", "10.6.0.2", NULL);
  const struct instance_record *recs[] = {&a, &b};
  cleanup_free char *t = dnsmasq_hosts_text(&net, recs, 2);
  CHECK_STR(t, "10.5.0.2 web1 web1.cell.test\nfd05::2 web1 web1.cell.test\n");
  net.domain = NULL;
  cleanup_free char *bare = dnsmasq_hosts_text(&net, recs, 2);
  CHECK_STR(bare, "10.5.0.2 web1\nfd05::2 web1\n");
}

TEST(attack_a_dotted_or_odd_name_does_not_pass_for_a_name_of_the_world) {
  struct daemon_network net = network(NULL);
  struct instance_record a = record("www.example.org", "lan", "cv00000001", "10.5.0.2", NULL);
  struct instance_record b = record("under_score", "lan", "cv00000002", "10.5.0.3", NULL);
  const struct instance_record *recs[] = {&a, &b};
  cleanup_free char *hosts = dnsmasq_hosts_text(&net, recs, 2);
  CHECK_STR(hosts, "");
  /* Their leases stay, without a name. */
  cleanup_free char *dhcp = dnsmasq_dhcp_hosts_text(&net, recs, 2);
  cleanup_free char *mac = mac_of(&a);
  cleanup_free char *line = xasprintf("%s,10.5.0.2\n", mac);
  CHECK_CONTAINS(dhcp, line);
  CHECK(strstr(dhcp, "example") == NULL && strstr(dhcp, "under") == NULL);
}

TEST(dhcp_hosts_give_each_mac_its_own_addresses) {
  struct daemon_network net = network("cell.test");
  struct instance_record a = record("web1", "lan", "cv0000abcd", "10.5.0.2", "fd05::2");
  struct instance_record b = record("web2", "lan", "cv0000abce", "10.5.0.3", NULL);
  const struct instance_record *recs[] = {&a, &b};
  cleanup_free char *t = dnsmasq_dhcp_hosts_text(&net, recs, 2);
  cleanup_free char *ma = mac_of(&a), *mb = mac_of(&b);
  cleanup_free char *want = xasprintf("%s,10.5.0.2,[fd05::2]\n"
                                      "%s,10.5.0.3\n", ma, mb);
  CHECK_STR(t, want);
  CHECK(strcmp(ma, mb) != 0);
}

/* Whether argv holds arg. */
static bool has(char **argv, const char *arg) {
  for (char **a = argv; *a; a++)
    if (strcmp(*a, arg) == 0)
      return true;
  return false;
}

TEST(argv_binds_the_bridge_alone_and_reads_no_host_file) {
  struct daemon_network net = network("cell.test");
  struct dnsmasq_paths p;
  dnsmasq_paths_init(&p, "/var/lib/cell", "lan");
  cleanup_strv char **v = dnsmasq_argv("/usr/sbin/dnsmasq", &net, &p,
                                       "9.9.9.9,2620:fe::fe", "dnsmasq");
  CHECK_STR(v[0], "/usr/sbin/dnsmasq");
  CHECK(has(v, "--keep-in-foreground"));
  CHECK(has(v, "--interface=br-lan"));
  CHECK(has(v, "--bind-interfaces"));
  CHECK(has(v, "--except-interface=lo"));
  CHECK(has(v, "--conf-file=/dev/null"));
  CHECK(has(v, "--no-resolv"));
  CHECK(has(v, "--no-hosts"));
  CHECK(has(v, "--server=9.9.9.9"));
  CHECK(has(v, "--server=2620:fe::fe"));
  CHECK(has(v, "--user=dnsmasq"));
  CHECK(has(v, "--dhcp-ignore-names"));
  CHECK(has(v, "--domain=cell.test"));
  CHECK(has(v, "--local=/cell.test/"));
  /* DHCPv6 gives the search list too, as DHCPv4 does. */
  CHECK(has(v, "--dhcp-option=option6:domain-search,cell.test"));
  CHECK(has(v, "--pid-file=/var/lib/cell/dnsmasq/lan/dnsmasq.pid"));
  CHECK(has(v, "--dhcp-leasefile=/var/lib/cell/dnsmasq/lan/leases"));
  CHECK(has(v, "--addn-hosts=/var/lib/cell/dnsmasq/lan/hosts"));
  CHECK(has(v, "--dhcp-hostsfile=/var/lib/cell/dnsmasq/lan/dhcp-hosts"));
  /* Static leases only, both families; RAs on IPv6. */
  CHECK(has(v, "--dhcp-range=10.5.0.0,static,255.255.0.0,1h"));
  CHECK(has(v, "--dhcp-range=fd05::,static,64,1h"));
  CHECK(has(v, "--enable-ra"));
  dnsmasq_paths_clear(&p);
}

TEST(argv_without_ipv6_upstream_or_domain) {
  struct daemon_network net = network(NULL);
  net.has6 = false;
  struct dnsmasq_paths p;
  dnsmasq_paths_init(&p, "/s", "lan");
  cleanup_strv char **v = dnsmasq_argv("/usr/sbin/dnsmasq", &net, &p, NULL, NULL);
  for (char **a = v; *a; a++) {
    CHECK(strncmp(*a, "--server=", 9) != 0);
    CHECK(strncmp(*a, "--domain=", 9) != 0);
    CHECK(strncmp(*a, "--dhcp-option=", 14) != 0);
    CHECK(strncmp(*a, "--user=", 7) != 0);
    CHECK(strcmp(*a, "--enable-ra") != 0);
  }
  CHECK(has(v, "--dhcp-range=10.5.0.0,static,255.255.0.0,1h"));
  dnsmasq_paths_clear(&p);
}

int main(void) {
  RUN(hosts_name_each_address_of_the_network_with_and_without_domain);
  RUN(attack_a_dotted_or_odd_name_does_not_pass_for_a_name_of_the_world);
  RUN(dhcp_hosts_give_each_mac_its_own_addresses);
  RUN(argv_binds_the_bridge_alone_and_reads_no_host_file);
  RUN(argv_without_ipv6_upstream_or_domain);
  UNIT_DONE();
}
