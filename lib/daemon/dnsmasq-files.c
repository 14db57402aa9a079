/* A network's dnsmasq: its command line and its hosts files (see
 * dnsmasq-files.h).  Every value that reaches the command line or a file
 * has been checked already: addresses parsed, names of letters, digits,
 * `-` and `.` only, so no line can carry a second option or entry. */
#include "daemon/dnsmasq-files.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "net/network.h"

/* A name an instance may have in DNS: one label.  A dotted one
 * (`www.example.org`) would answer, for every other instance of the
 * network, for a name of the world that its owner does not own. */
static bool name_servable(const char *name) {
  return !strchr(name, '.') && net_dns_name_ok(name);
}

/* The record's interface on the network, NULL when it is not on it. */
static const struct instance_net *net_of(const struct instance_record *r,
                                         const char *network) {
  for (size_t i = 0; i < r->n_nets; i++)
    if (strcmp(r->nets[i].network, network) == 0)
      return &r->nets[i];
  return NULL;
}

static void host_line(FILE *f, const char *addr, const char *name,
                      const char *domain) {
  if (!addr)
    return;
  if (domain)
    fprintf(f, "%s %s %s.%s\n", addr, name, name, domain);
  else
    fprintf(f, "%s %s\n", addr, name);
}

char *dnsmasq_hosts_text(const struct daemon_network *net,
                         const struct instance_record *const *recs, size_t n) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f)
    abort();
  for (size_t i = 0; i < n; i++) {
    const struct instance_net *in = net_of(recs[i], net->name);
    if (!in || !name_servable(recs[i]->name))
      continue;
    host_line(f, in->ipv4, recs[i]->name, net->domain);
    host_line(f, in->ipv6, recs[i]->name, net->domain);
  }
  fclose(f);
  return text;
}

char *dnsmasq_dhcp_hosts_text(const struct daemon_network *net,
                              const struct instance_record *const *recs,
                              size_t n) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f)
    abort();
  for (size_t i = 0; i < n; i++) {
    const struct instance_net *in = net_of(recs[i], net->name);
    if (!in || !in->host_veth || (!in->ipv4 && !in->ipv6))
      continue;
    uint8_t m[6];
    instance_net_mac(in, m);
    fprintf(f, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
            m[5]);
    if (in->ipv4)
      fprintf(f, ",%s", in->ipv4);
    if (in->ipv6)
      fprintf(f, ",[%s]", in->ipv6);
    fputc('\n', f);
  }
  fclose(f);
  return text;
}

void dnsmasq_paths_init(struct dnsmasq_paths *p, const char *state_dir,
                        const char *network) {
  p->dir = xasprintf("%s/dnsmasq/%s", state_dir, network);
  p->pidfile = xasprintf("%s/dnsmasq.pid", p->dir);
  p->leases = xasprintf("%s/leases", p->dir);
  p->hosts = xasprintf("%s/hosts", p->dir);
  p->dhcp_hosts = xasprintf("%s/dhcp-hosts", p->dir);
  p->log = xasprintf("%s/dnsmasq.log", p->dir);
}

void dnsmasq_paths_clear(struct dnsmasq_paths *p) {
  free(p->dir);
  free(p->pidfile);
  free(p->leases);
  free(p->hosts);
  free(p->dhcp_hosts);
  free(p->log);
  *p = (struct dnsmasq_paths){0};
}

static void push(char ***v, char *owned) {
  cell_strv_push(v, owned);
  free(owned);
}

/* Static leases only: an address is the one celld chose for the MAC, never
 * one from a pool (an instance must not get another's address). */
static void push_ranges(char ***v, const struct daemon_network *net) {
  char base[INET6_ADDRSTRLEN];
  if (net->has4) {
    net_ip_to_string(&net->subnet4.base, base, sizeof(base));
    uint32_t mask = net->subnet4.prefix ? ~0u << (32 - net->subnet4.prefix) : 0;
    push(v, xasprintf("--dhcp-range=%s,static,%u.%u.%u.%u,1h", base,
                      mask >> 24, (mask >> 16) & 0xff, (mask >> 8) & 0xff,
                      mask & 0xff));
  }
  if (net->has6) {
    net_ip_to_string(&net->subnet6.base, base, sizeof(base));
    push(v, xasprintf("--dhcp-range=%s,static,%u,1h", base,
                      net->subnet6.prefix));
    /* Router advertisements: the route, and the M flag that sends guests
     * to DHCPv6 for their (static) address. */
    cell_strv_push(v, "--enable-ra");
  }
}

static void push_upstream(char ***v, const char *upstream) {
  for (const char *p = upstream ? upstream : ""; *p;) {
    size_t len = strcspn(p, ",");
    push(v, xasprintf("--server=%.*s", (int)len, p));
    p += len + (p[len] == ',');
  }
}

char **dnsmasq_argv(const char *binary, const struct daemon_network *net,
                    const struct dnsmasq_paths *p, const char *upstream,
                    const char *user) {
  char **v = xcalloc(1, sizeof(*v));
  cell_strv_push(&v, binary);
  /* In the foreground: its pid is the server's, and a pidfd says when it
   * ends. */
  cell_strv_push(&v, "--keep-in-foreground");
  cell_strv_push(&v, "--conf-file=/dev/null");
  push(&v, xasprintf("--interface=%s", net->bridge));
  cell_strv_push(&v, "--bind-interfaces");
  cell_strv_push(&v, "--except-interface=lo");
  cell_strv_push(&v, "--no-resolv");
  cell_strv_push(&v, "--no-hosts");
  cell_strv_push(&v, "--log-facility=-");
  push(&v, xasprintf("--pid-file=%s", p->pidfile));
  push(&v, xasprintf("--dhcp-leasefile=%s", p->leases));
  push(&v, xasprintf("--addn-hosts=%s", p->hosts));
  push(&v, xasprintf("--dhcp-hostsfile=%s", p->dhcp_hosts));
  /* The only DHCP server of the bridge: a guest that asks for its old
   * lease after a restart of dnsmasq gets its answer at once. */
  cell_strv_push(&v, "--dhcp-authoritative");
  /* Names come from the hosts file alone: none from a lease, which would
   * outlive its instance, and none a guest asks for (it could claim
   * another's). */
  cell_strv_push(&v, "--dhcp-ignore-names");
  /* A name without a dot is an instance's or nothing: never sent out. */
  cell_strv_push(&v, "--domain-needed");
  if (net->domain) {
    push(&v, xasprintf("--domain=%s", net->domain));
    push(&v, xasprintf("--local=/%s/", net->domain));
    /* DHCPv4 gives the domain to every client; DHCPv6 only with a name
     * of the client's, and names come from the hosts file alone: the
     * search list is given as an option, as DHCPv4's. */
    if (net->has6)
      push(&v, xasprintf("--dhcp-option=option6:domain-search,%s",
                         net->domain));
  }
  push_upstream(&v, upstream);
  push_ranges(&v, net);
  if (user)
    push(&v, xasprintf("--user=%s", user));
  return v;
}
