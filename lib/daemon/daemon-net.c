/* celld's networks: each instance's addresses are chosen at create and kept
 * in its record (so they survive celld and are never handed out twice);
 * its veth pairs are made at every start, between the runtime's create
 * (the network namespace exists) and start (the init runs); they go when
 * the instance exits and at destroy, with the bridge when nothing uses it.
 * Each port is filtered (net/bridge-filter) so that an instance can claim
 * only its own MAC and addresses on the bridge. */
#include "daemon/daemon-net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/daemon-dnsmasq.h"
#include "daemon/daemon-request.h"
#include "net/bridge-filter.h"
#include "net/network.h"

static char *ip_string(const struct net_ip *ip) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(ip->family, ip->bytes, buf, sizeof(buf));
  return xstrdup(buf);
}

/* The addresses of that family already given out on the network. */
static size_t used_addresses(struct daemon *d, const char *network, bool six,
                             struct net_ip **out) {
  size_t n = 0;
  *out = xcalloc(d->n_inst * INSTANCE_MAX_NETS + 1, sizeof(**out));
  for (size_t i = 0; i < d->n_inst; i++) {
    const struct instance_record *r = d->inst[i]->rec;
    for (size_t j = 0; j < r->n_nets; j++) {
      const char *a = six ? r->nets[j].ipv6 : r->nets[j].ipv4;
      cell_error *ignored = NULL;
      if (a && strcmp(r->nets[j].network, network) == 0 &&
          net_ip_parse(a, &(*out)[n], &ignored) == 0)
        n++;
      cell_error_free(&ignored);
    }
  }
  return n;
}

/* An address of the subnet for the instance: the one asked for (checked)
 * or the lowest free one (none left: the request was fine, it failed). */
static int pick_address(struct daemon *d, const struct daemon_network *net,
                        bool six, const struct net_ip *wanted, char **out,
                        enum api_code *code, cell_error **err) {
  const struct net_subnet *s = six ? &net->subnet6 : &net->subnet4;
  struct net_ip gateway = net_subnet_first_host(s);
  cleanup_free struct net_ip *used = NULL;
  size_t n = used_addresses(d, net->name, six, &used);
  struct net_ip ip;
  if (wanted) {
    if (net_check_address(s, &gateway, used, n, wanted, err) < 0)
      return -1;
    ip = *wanted;
  } else if (net_allocate(s, &gateway, used, n, &ip, err) < 0) {
    *code = API_FAILED;
    return -1;
  }
  *out = ip_string(&ip);
  return 0;
}

/* A host-side name no other instance has: "cv" and 8 hex digits. */
static char *new_host_veth(struct daemon *d, const struct instance_record *self) {
  for (;;) {
    uint32_t x = 0;
    if (getrandom(&x, sizeof(x), 0) != sizeof(x))
      x = (uint32_t)getpid() ^ (uint32_t)time(NULL);
    char *name = xasprintf("cv%08x", x);
    bool taken = false;
    /* self may be one of d's records (a start plans its pending
     * networks), its NIC being planned without a host end yet. */
    for (size_t i = 0; i < d->n_inst && !taken; i++)
      for (size_t j = 0; j < d->inst[i]->rec->n_nets; j++)
        taken |= d->inst[i]->rec->nets[j].host_veth &&
                 strcmp(d->inst[i]->rec->nets[j].host_veth, name) == 0;
    for (size_t j = 0; j < self->n_nets && !taken; j++)
      taken = self->nets[j].host_veth &&
              strcmp(self->nets[j].host_veth, name) == 0;
    if (!taken)
      return name;
    free(name);
  }
}

/* One NIC on the network `name` into r as ifname (taken), with the
 * address asked for (NULL: chosen). */
static int plan_nic(struct daemon *d, const char *name, const char *address,
                    char *ifname, struct instance_record *r,
                    enum api_code *code, cell_error **err) {
  cleanup_free char *owned_ifname = ifname;
  const struct daemon_network *net = daemon_config_network(d->cfg, name);
  if (!net) {
    *code = API_NOT_FOUND;
    return cell_fail(err, 0, "network `%s` does not exist", name);
  }
  for (size_t k = 0; k < r->n_nets; k++)
    if (strcmp(r->nets[k].network, name) == 0)
      return cell_fail(err, 0, "network `%s`: given twice", name);
  if (r->n_nets >= INSTANCE_MAX_NETS)
    return cell_fail(err, 0, "networks: at most %d", INSTANCE_MAX_NETS);
  struct net_ip wanted;
  if (address) {
    if (net_ip_parse(address, &wanted, err) < 0)
      return -1;
    bool six = wanted.family == AF_INET6;
    if (six ? !net->has6 : !net->has4)
      return cell_fail(err, 0, "address %s: network `%s` has no IPv%c subnet",
                       address, name, six ? '6' : '4');
  }
  struct instance_net *n = &r->nets[r->n_nets++];
  n->network = xstrdup(name);
  n->ifname = steal_pointer(&owned_ifname);
  n->host_veth = new_host_veth(d, r);
  const struct net_ip *want4 = address && wanted.family == AF_INET ? &wanted : NULL;
  const struct net_ip *want6 = address && wanted.family == AF_INET6 ? &wanted : NULL;
  if ((net->has4 && pick_address(d, net, false, want4, &n->ipv4, code, err) < 0) ||
      (net->has6 && pick_address(d, net, true, want6, &n->ipv6, code, err) < 0))
    return cell_error_wrap(err, "network `%s`", name);
  return 0;
}

/* One `networks[i]` of a create request: {"network": N, "address": A}. */
static int plan_one(struct daemon *d, const struct json_value *e, size_t i,
                    struct instance_record *r, enum api_code *code,
                    cell_error **err) {
  if (e->type != JSON_OBJECT)
    return cell_fail(err, 0, "field `networks[%zu]`: must be an object", i);
  for (size_t k = 0; k < e->u.object.len; k++) {
    const char *key = e->u.object.keys[k];
    if (strcmp(key, "network") != 0 && strcmp(key, "address") != 0)
      return cell_fail(err, 0, "field `networks[%zu]`: unknown field `%s`", i, key);
  }
  const char *name = request_str(e, "network");
  const struct json_value *addr = json_object_get(e, "address");
  if (!name)
    return cell_fail(err, 0, "field `networks[%zu].network`: required, a string", i);
  if (addr && addr->type != JSON_STRING)
    return cell_fail(err, 0, "field `networks[%zu].address`: must be a string", i);
  return plan_nic(d, name, addr ? addr->u.string : NULL,
                  xasprintf("eth%zu", i), r, code, err);
}

int daemon_net_plan(struct daemon *d, const struct json_value *networks,
                    struct instance_record *r, enum api_code *code,
                    cell_error **err) {
  *code = API_INVALID_REQUEST;
  if (!networks)
    return 0;
  if (networks->u.array.len > INSTANCE_MAX_NETS)
    return cell_fail(err, 0, "field `networks`: at most %d networks",
                     INSTANCE_MAX_NETS);
  for (size_t i = 0; i < networks->u.array.len; i++)
    if (plan_one(d, networks->u.array.items[i], i, r, code, err) < 0)
      return -1;
  return 0;
}

/* One address of an imported net: the old one when it is still fine here,
 * else a new one (and a warning). */
static int replan_address(struct daemon *d, const struct daemon_network *net,
                          bool six, const char *old, char **out,
                          char ***warnings, cell_error **err) {
  enum api_code code;
  struct net_ip wanted;
  cell_error *refused = NULL;
  if (old && net_ip_parse(old, &wanted, &refused) == 0 &&
      pick_address(d, net, six, &wanted, out, &code, &refused) == 0)
    return 0;
  if (pick_address(d, net, six, NULL, out, &code, err) < 0) {
    cell_error_free(&refused);
    return cell_error_wrap(err, "network `%s`", net->name);
  }
  char *w = old ? xasprintf("network `%s`: address %s is not free here "
                            "(%s): %s instead",
                            net->name, old,
                            refused ? refused->msg : "not in its subnet", *out)
                : xasprintf("network `%s`: address %s given", net->name, *out);
  cell_strv_push(warnings, w);
  free(w);
  cell_error_free(&refused);
  return 0;
}

int daemon_net_replan(struct daemon *d, struct instance_record *r,
                      char ***warnings, cell_error **err) {
  struct instance_net old[INSTANCE_MAX_NETS];
  size_t n_old = r->n_nets < INSTANCE_MAX_NETS ? r->n_nets : INSTANCE_MAX_NETS;
  memcpy(old, r->nets, sizeof(old));
  memset(r->nets, 0, sizeof(r->nets));
  r->n_nets = 0;
  int rc = 0;
  for (size_t i = 0; i < n_old && rc == 0; i++) {
    const struct daemon_network *net = daemon_config_network(d->cfg, old[i].network);
    if (!net) {
      char *w = xasprintf("network `%s` does not exist here: the instance "
                          "is no longer on it", old[i].network);
      cell_strv_push(warnings, w);
      free(w);
      continue;
    }
    struct instance_net *n = &r->nets[r->n_nets++];
    n->network = xstrdup(net->name);
    n->ifname = xasprintf("eth%zu", r->n_nets - 1);
    n->host_veth = new_host_veth(d, r);
    if ((net->has4 && replan_address(d, net, false, old[i].ipv4, &n->ipv4,
                                     warnings, err) < 0) ||
        (net->has6 && replan_address(d, net, true, old[i].ipv6, &n->ipv6,
                                     warnings, err) < 0))
      rc = -1;
  }
  for (size_t i = 0; i < n_old; i++) {
    free(old[i].network);
    free(old[i].ifname);
    free(old[i].host_veth);
    free(old[i].ipv4);
    free(old[i].ipv6);
  }
  return rc;
}

/* The gateway addresses of the network (on the bridge, with the subnets'
 * prefixes) and the instance's addresses on it. */
static size_t gateways_of(const struct daemon_network *net,
                          struct net_addr gw[2]) {
  size_t n = 0;
  if (net->has4)
    gw[n++] = (struct net_addr){net_subnet_first_host(&net->subnet4),
                                net->subnet4.prefix};
  if (net->has6)
    gw[n++] = (struct net_addr){net_subnet_first_host(&net->subnet6),
                                net->subnet6.prefix};
  return n;
}

static int addresses_of(const struct daemon_network *net,
                        const struct instance_net *in, struct net_addr a[2],
                        size_t *n, cell_error **err) {
  *n = 0;
  if (in->ipv4 && net->has4) {
    if (net_ip_parse(in->ipv4, &a[*n].ip, err) < 0)
      return -1;
    a[(*n)++].prefix = net->subnet4.prefix;
  }
  if (in->ipv6 && net->has6) {
    if (net_ip_parse(in->ipv6, &a[*n].ip, err) < 0)
      return -1;
    a[(*n)++].prefix = net->subnet6.prefix;
  }
  return 0;
}

/* The way out, after what went wrong. */
static void filter_way_out(const struct daemon_network *net, cell_error **err) {
  char *msg = xasprintf("%s (without the filter: network.%s.filter = no "
                        "in celld.conf)", (*err)->msg, net->name);
  free((*err)->msg);
  (*err)->msg = msg;
}

/* What the instance's port on the bridge may claim: its MAC, its
 * addresses.  Without the filter an instance's root (CAP_NET_RAW in its
 * namespace) could take over another's address with a gratuitous ARP. */
static struct bridge_port_identity port_identity(const struct instance_net *in,
                                                 const uint8_t mac[6],
                                                 const struct net_addr *addrs,
                                                 size_t n_addrs) {
  struct bridge_port_identity id = {.port = in->host_veth};
  memcpy(id.mac, mac, sizeof(id.mac));
  for (size_t i = 0; i < n_addrs; i++) {
    if (addrs[i].ip.family == AF_INET)
      id.ipv4 = &addrs[i].ip;
    else
      id.ipv6 = &addrs[i].ip;
  }
  return id;
}

static int filter_port(const struct daemon_network *net,
                       const struct instance_net *in, const uint8_t mac[6],
                       const struct net_addr *addrs, size_t n_addrs,
                       cell_error **err) {
  struct bridge_port_identity id = port_identity(in, mac, addrs, n_addrs);
  if (bridge_filter_port_add(net->bridge, &id, err) < 0) {
    filter_way_out(net, err);
    return -1;
  }
  return 0;
}

/* routed[0], routed[1]: an earlier interface has the IPv4, IPv6 default
 * route.  The first network of a family gets it (eth0 before eth1): its
 * gateways go to gw_ips. */
static size_t routes_of(const struct daemon_network *net, bool routed[2],
                        struct net_ip gw_ips[2]) {
  struct net_addr gw[2];
  size_t n_gw = gateways_of(net, gw), n_routes = 0;
  for (size_t i = 0; i < n_gw; i++) {
    bool *done = &routed[gw[i].ip.family == AF_INET6];
    if (!*done)
      gw_ips[n_routes++] = gw[i].ip;
    *done = true;
  }
  return n_routes;
}

/* The NIC's veth pair, its end in the namespace with the stable MAC, its
 * addresses and its routes; the bridge (and filter) made ready before. */
static int nic_attach(const struct daemon_network *net, int nsfd,
                      const struct instance_net *in, bool routed[2],
                      cell_error **err) {
  struct net_addr addrs[2];
  struct net_ip gw_ips[2];
  size_t n_addrs, n_routes = routes_of(net, routed, gw_ips);
  if (addresses_of(net, in, addrs, &n_addrs, err) < 0)
    return -1;
  /* The same MAC at every start: neighbours' ARP and NDP caches stay
   * right when the instance restarts with its address. */
  uint8_t mac[6];
  instance_net_mac(in, mac);
  return network_attach(nsfd, net->bridge, in->host_veth, in->ifname, mac,
                        net->mtu, addrs, n_addrs, gw_ips, n_routes, err);
}

/* The NIC's bridge and dnsmasq ready for it, and no veth pair of its name
 * left (by a celld killed in the middle of an attach). */
static int nic_prepare(struct daemon *d, const struct daemon_network *net,
                       const struct instance_net *in, cell_error **err) {
  struct net_addr gw[2];
  size_t n_gw = gateways_of(net, gw);
  if (network_bridge_ensure(net->bridge, gw, n_gw, net->mtu, err) < 0 ||
      network_detach(in->host_veth, err) < 0)
    return -1;
  /* With its addresses on the bridge: dnsmasq binds to them. */
  if (net->dnsmasq)
    dnsmasq_network_up(d, net);
  return 0;
}

static const struct daemon_network *
nic_network(const struct daemon *d, const struct instance_net *in,
            cell_error **err) {
  const struct daemon_network *net = daemon_config_network(d->cfg, in->network);
  if (!net)
    cell_fail(err, 0, "network `%s` is no longer in the configuration",
              in->network);
  return net;
}

/* filter: the port's filter, begun (see daemon_net_filters_begin). */
static int attach_one(struct daemon *d, int nsfd, const struct instance_net *in,
                      struct bridge_filter_job *filter, bool routed[2],
                      cell_error **err) {
  const struct daemon_network *net = nic_network(d, in, err);
  if (!net || nic_prepare(d, net, in, err) < 0)
    return -1;
  /* Before the port exists: its first frame is filtered already. */
  if (bridge_filter_port_add_finish(filter, err) < 0) {
    filter_way_out(net, err);
    return -1;
  }
  return nic_attach(net, nsfd, in, routed, err);
}

/* One NIC's filter child, begun. */
static int filter_begin_one(struct daemon *d, const struct instance_net *in,
                            struct bridge_filter_job *job, cell_error **err) {
  *job = (struct bridge_filter_job){.pid = -1, .fd = -1};
  const struct daemon_network *net = daemon_config_network(d->cfg, in->network);
  if (!net || !net->filter)
    return 0; /* attach_one says what is wrong with a missing network */
  struct net_addr addrs[2];
  size_t n_addrs;
  if (addresses_of(net, in, addrs, &n_addrs, err) < 0)
    return -1;
  uint8_t mac[6];
  instance_net_mac(in, mac);
  struct bridge_port_identity id = port_identity(in, mac, addrs, n_addrs);
  if (bridge_filter_port_add_begin(net->bridge, &id, job, err) < 0) {
    filter_way_out(net, err);
    return -1;
  }
  return 0;
}

int daemon_net_filters_begin(struct daemon *d, const struct instance_record *r,
                             struct daemon_net_filters *f, cell_error **err) {
  f->n = 0;
  for (size_t i = 0; i < r->n_nets; i++) {
    if (filter_begin_one(d, &r->nets[i], &f->job[i], err) < 0)
      return cell_error_wrap(err, "network `%s` of `%s`", r->nets[i].network,
                             r->name);
    f->n = i + 1;
  }
  return 0;
}

void daemon_net_filters_cancel(struct daemon_net_filters *f) {
  for (size_t i = 0; i < f->n; i++)
    bridge_filter_job_cancel(&f->job[i]);
  f->n = 0;
}

int daemon_net_attach(struct daemon *d, const struct instance_record *r,
                      pid_t pid, struct daemon_net_filters *filters,
                      cell_error **err) {
  cleanup_free char *path = xasprintf("/proc/%d/ns/net", (int)pid);
  cleanup_close int nsfd = open(path, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  if (r->n_nets == 0)
    return network_loopback_up(nsfd, err) < 0
               ? cell_error_wrap(err, "loopback of `%s`", r->name)
               : 0;
  bool routed[2] = {false, false};
  for (size_t i = 0; i < r->n_nets; i++) {
    if (attach_one(d, nsfd, &r->nets[i], &filters->job[i], routed, err) < 0)
      return cell_error_wrap(err, "network `%s` of `%s`", r->nets[i].network,
                             r->name);
  }
  return 0;
}

/* The port's filter for a NIC criu's restore makes: known before the port
 * exists, as at a start. */
static int restore_filter(const struct daemon_network *net,
                          const struct instance_net *in, cell_error **err) {
  struct net_addr addrs[2];
  size_t n_addrs;
  if (!net->filter)
    return 0;
  if (addresses_of(net, in, addrs, &n_addrs, err) < 0)
    return -1;
  uint8_t mac[6];
  instance_net_mac(in, mac);
  return filter_port(net, in, mac, addrs, n_addrs, err);
}

int daemon_net_prepare_restore(struct daemon *d, const struct instance_record *r,
                               cell_error **err) {
  for (size_t i = 0; i < r->n_nets; i++) {
    const struct daemon_network *net = nic_network(d, &r->nets[i], err);
    if (!net || nic_prepare(d, net, &r->nets[i], err) < 0 ||
        restore_filter(net, &r->nets[i], err) < 0)
      return cell_error_wrap(err, "network `%s` of `%s`", r->nets[i].network,
                             r->name);
  }
  return 0;
}

int daemon_net_attach_restored(const struct daemon *d,
                               const struct instance_record *r, int nsfd,
                               cell_error **err) {
  if (r->n_nets == 0)
    return network_loopback_up(nsfd, err) < 0
               ? cell_error_wrap(err, "loopback of `%s`", r->name)
               : 0;
  bool routed[2] = {false, false};
  for (size_t i = 0; i < r->n_nets; i++) {
    const struct daemon_network *net = nic_network(d, &r->nets[i], err);
    if (!net || nic_attach(net, nsfd, &r->nets[i], routed, err) < 0)
      return cell_error_wrap(err, "network `%s` of `%s`", r->nets[i].network,
                             r->name);
  }
  return 0;
}

/* Whether an instance other than `self` is on the network. */
static bool network_in_use(struct daemon *d, const char *network,
                           const struct instance_record *self) {
  for (size_t i = 0; i < d->n_inst; i++) {
    const struct instance_record *r = d->inst[i]->rec;
    if (r == self)
      continue;
    for (size_t j = 0; j < r->n_nets; j++)
      if (strcmp(r->nets[j].network, network) == 0)
        return true;
  }
  return false;
}

static void remove_bridge_if_unused(struct daemon *d,
                                    const struct daemon_network *net,
                                    const struct instance_record *self) {
  if (net->keep_bridge || network_in_use(d, net->name, self))
    return;
  /* Whatever becomes of the bridge: a server (and its fds in celld) for
   * no instance of ours would outlive a removal that failed.  The next
   * attach starts it again. */
  dnsmasq_network_down(d, net);
  bool removed = false;
  cell_error *err = NULL;
  /* No instance of ours on it: no port of ours to filter. */
  if (net->filter && bridge_filter_remove(net->bridge, &err) < 0) {
    log_warn("network `%s`: %s", net->name, err->msg);
    cell_error_free(&err);
  }
  if (network_bridge_remove_if_unused(net->bridge, &removed, &err) < 0) {
    log_warn("network `%s`: %s", net->name, err->msg);
    cell_error_free(&err);
  } else if (removed) {
    log_info("network `%s`: bridge %s removed (no instance left)", net->name,
             net->bridge);
  }
}

void daemon_net_detach(struct daemon *d, const struct instance_record *r,
                       bool remove_bridges) {
  for (size_t i = 0; i < r->n_nets; i++) {
    cell_error *err = NULL;
    if (network_detach(r->nets[i].host_veth, &err) < 0) {
      log_warn("%s: %s", r->name, err->msg);
      cell_error_free(&err);
    }
    const struct daemon_network *net = daemon_config_network(d->cfg, r->nets[i].network);
    if (net && net->filter &&
        bridge_filter_port_remove(net->bridge, r->nets[i].host_veth, &err) < 0) {
      log_warn("%s: %s", r->name, err->msg);
      cell_error_free(&err);
    }
    if (remove_bridges && net)
      remove_bridge_if_unused(d, net, r);
  }
}

void daemon_net_ports_set_up(const struct instance_record *r, bool up) {
  for (size_t i = 0; i < r->n_nets; i++) {
    cell_error *err = NULL;
    if (network_link_set_up(r->nets[i].host_veth, up, &err) < 0) {
      log_warn("%s: %s", r->name, err->msg);
      cell_error_free(&err);
    }
  }
}

void daemon_net_sweep_bridges(struct daemon *d) {
  for (size_t i = 0; i < d->cfg->n_networks; i++)
    remove_bridge_if_unused(d, &d->cfg->networks[i], NULL);
}

/* ---- NICs added and removed while the instance runs --------------------- */

static void free_nic(struct instance_net *n) {
  free(n->network);
  free(n->ifname);
  free(n->host_veth);
  free(n->ipv4);
  free(n->ipv6);
  memset(n, 0, sizeof(*n));
}

/* The NIC of r with that host end, or NULL. */
static const struct instance_net *nic_of(const struct instance_record *r,
                                         const char *host_veth) {
  for (size_t i = 0; i < r->n_nets; i++)
    if (strcmp(r->nets[i].host_veth, host_veth) == 0)
      return &r->nets[i];
  return NULL;
}

/* An address asked for that the NIC does not have. */
static bool address_differs(const struct instance_net *n, const char *address) {
  struct net_ip want, have;
  cleanup_error cell_error *ignored = NULL;
  if (!address || net_ip_parse(address, &want, &ignored) < 0)
    return false;
  const char *now = want.family == AF_INET6 ? n->ipv6 : n->ipv4;
  return !now || net_ip_parse(now, &have, &ignored) < 0 ||
         !net_ip_equal(&want, &have);
}

/* The lowest ethN no NIC of r has. */
static char *free_ifname(const struct instance_record *r) {
  for (size_t i = 0;; i++) {
    char *name = xasprintf("eth%zu", i);
    bool taken = false;
    for (size_t k = 0; k < r->n_nets && !taken; k++)
      taken = strcmp(r->nets[k].ifname, name) == 0;
    if (!taken)
      return name;
    free(name);
  }
}

/* NETWORK[:ADDRESS],... (or none) into networks and addresses. */
static size_t split_networks(const char *value, char *copy,
                             const char *names[INSTANCE_MAX_NETS + 1],
                             const char *addrs[INSTANCE_MAX_NETS + 1]) {
  size_t n = 0;
  if (strcmp(value, "none") == 0)
    return 0;
  strcpy(copy, value);
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save);
       tok && n <= INSTANCE_MAX_NETS; tok = strtok_r(NULL, ",", &save)) {
    char *colon = strchr(tok, ':');
    if (colon)
      *colon = '\0';
    names[n] = tok;
    addrs[n++] = colon ? colon + 1 : NULL;
  }
  return n;
}

int daemon_net_plan_live(struct daemon *d, const char *value,
                         struct instance_record *next, enum api_code *code,
                         cell_error **err) {
  *code = API_INVALID_REQUEST;
  cleanup_free char *copy = xstrdup(value);
  const char *names[INSTANCE_MAX_NETS + 1], *addrs[INSTANCE_MAX_NETS + 1];
  size_t n = split_networks(value, copy, names, addrs);
  if (n > INSTANCE_MAX_NETS)
    return cell_fail(err, 0, "networks: at most %d", INSTANCE_MAX_NETS);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(names[i], names[j]) == 0)
        return cell_fail(err, 0, "network `%s`: given twice", names[i]);
  struct instance_net old[INSTANCE_MAX_NETS];
  size_t n_old = next->n_nets;
  memcpy(old, next->nets, sizeof(old));
  memset(next->nets, 0, sizeof(next->nets));
  next->n_nets = 0;
  bool kept[INSTANCE_MAX_NETS] = {false}, wanted_kept[INSTANCE_MAX_NETS + 1] = {false};
  int rc = 1;
  /* The NICs that stay, in the order they have, as they are. */
  for (size_t k = 0; k < n_old; k++)
    for (size_t i = 0; i < n; i++) {
      if (strcmp(names[i], old[k].network) != 0)
        continue;
      if (address_differs(&old[k], addrs[i]))
        rc = 0;
      kept[k] = wanted_kept[i] = true;
      next->nets[next->n_nets++] = old[k];
    }
  size_t n_kept = next->n_nets;
  /* Then the new ones, each on the lowest free ethN. */
  for (size_t i = 0; i < n && rc == 1; i++)
    if (!wanted_kept[i] &&
        plan_nic(d, names[i], addrs[i], free_ifname(next), next, code, err) < 0)
      rc = -1;
  if (rc == 1) {
    for (size_t k = 0; k < n_old; k++)
      if (!kept[k])
        free_nic(&old[k]);
    return 1;
  }
  /* Refused, or not for now: next has its NICs back as they were. */
  for (size_t i = n_kept; i < next->n_nets; i++)
    free_nic(&next->nets[i]);
  memcpy(next->nets, old, sizeof(old));
  next->n_nets = n_old;
  return rc;
}

/* The NIC's veth pair and its port's filter gone, and its bridge when no
 * instance but self is on the network any more. */
static void detach_nic(struct daemon *d, const struct instance_record *self,
                       const struct instance_net *nic) {
  cell_error *err = NULL;
  if (network_detach(nic->host_veth, &err) < 0) {
    log_warn("%s: %s", self->name, err->msg);
    cell_error_free(&err);
  }
  const struct daemon_network *net = daemon_config_network(d->cfg, nic->network);
  if (net && net->filter &&
      bridge_filter_port_remove(net->bridge, nic->host_veth, &err) < 0) {
    log_warn("%s: %s", self->name, err->msg);
    cell_error_free(&err);
  }
  if (net)
    remove_bridge_if_unused(d, net, self);
}

/* The first NIC of r (before `before`, NULL: any) on a network of that
 * family, and its network. */
static const struct instance_net *
first_of_family(struct daemon *d, const struct instance_record *r, bool six,
                const struct instance_net *before,
                const struct daemon_network **net) {
  for (size_t i = 0; i < r->n_nets && &r->nets[i] != before; i++) {
    *net = daemon_config_network(d->cfg, r->nets[i].network);
    if (*net && (six ? (*net)->has6 : (*net)->has4))
      return &r->nets[i];
  }
  return NULL;
}

int daemon_net_attach_new(struct daemon *d, const struct instance_record *now,
                          const struct instance_record *next, pid_t pid,
                          cell_error **err) {
  cleanup_free char *path = xasprintf("/proc/%d/ns/net", (int)pid);
  cleanup_close int nsfd = open(path, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  for (size_t i = 0; i < next->n_nets; i++) {
    const struct instance_net *nic = &next->nets[i];
    if (nic_of(now, nic->host_veth))
      continue;
    /* As at start: the default route of a family goes through the first
     * NIC that has it. */
    const struct daemon_network *net;
    bool routed[2] = {first_of_family(d, next, false, nic, &net) != NULL,
                      first_of_family(d, next, true, nic, &net) != NULL};
    struct bridge_filter_job filter = {.pid = -1, .fd = -1};
    if (network_ifname_free(nsfd, nic->ifname, err) < 0 ||
        filter_begin_one(d, nic, &filter, err) < 0 ||
        attach_one(d, nsfd, nic, &filter, routed, err) < 0) {
      bridge_filter_job_cancel(&filter);
      cell_error_wrap(err, "network `%s` of `%s`", nic->network, next->name);
      /* This one and those made before it go. */
      for (size_t k = 0; k <= i; k++)
        if (!nic_of(now, next->nets[k].host_veth))
          detach_nic(d, now, &next->nets[k]);
      return -1;
    }
  }
  return 0;
}

void daemon_net_detach_gone(struct daemon *d, const struct instance_record *now,
                            const struct instance_record *next, pid_t pid) {
  for (size_t i = 0; i < now->n_nets; i++)
    if (!nic_of(next, now->nets[i].host_veth))
      detach_nic(d, next, &now->nets[i]);
  /* A family whose first NIC went: its default route through the first
   * NIC that is left with it, as the next start would give it. */
  cleanup_free char *path = xasprintf("/proc/%d/ns/net", (int)pid);
  cleanup_close int nsfd = open(path, O_RDONLY | O_CLOEXEC);
  for (int six = 0; six < 2 && nsfd >= 0; six++) {
    const struct daemon_network *net_now, *net;
    const struct instance_net *first_now = first_of_family(d, now, six, NULL, &net_now);
    const struct instance_net *first_next = first_of_family(d, next, six, NULL, &net);
    if (!first_now || !first_next || nic_of(next, first_now->host_veth))
      continue;
    struct net_ip gw = net_subnet_first_host(six ? &net->subnet6 : &net->subnet4);
    cell_error *err = NULL;
    if (network_default_route(nsfd, first_next->ifname, &gw, &err) < 0) {
      log_warn("%s: %s", next->name, err->msg);
      cell_error_free(&err);
    }
  }
}
