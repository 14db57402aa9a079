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

/* A host-side name no other instance has: "cv" and 8 hex digits, so that
 * the runtime's temporary peer name ("<name>-p") is unique too. */
static char *new_host_veth(struct daemon *d, const struct instance_record *self) {
  for (;;) {
    uint32_t x = 0;
    if (getrandom(&x, sizeof(x), 0) != sizeof(x))
      x = (uint32_t)getpid() ^ (uint32_t)time(NULL);
    char *name = xasprintf("cv%08x", x);
    bool taken = false;
    for (size_t i = 0; i < d->n_inst && !taken; i++)
      for (size_t j = 0; j < d->inst[i]->rec->n_nets; j++)
        taken |= strcmp(d->inst[i]->rec->nets[j].host_veth, name) == 0;
    for (size_t j = 0; j < self->n_nets && !taken; j++)
      taken = self->nets[j].host_veth &&
              strcmp(self->nets[j].host_veth, name) == 0;
    if (!taken)
      return name;
    free(name);
  }
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
  const struct daemon_network *net = daemon_config_network(d->cfg, name);
  if (!net) {
    *code = API_NOT_FOUND;
    return cell_fail(err, 0, "network `%s` does not exist", name);
  }
  for (size_t k = 0; k < r->n_nets; k++)
    if (strcmp(r->nets[k].network, name) == 0)
      return cell_fail(err, 0, "network `%s`: given twice", name);
  struct net_ip wanted;
  bool have_wanted = false;
  if (addr) {
    if (net_ip_parse(addr->u.string, &wanted, err) < 0)
      return -1;
    have_wanted = true;
    bool six = wanted.family == AF_INET6;
    if (six ? !net->has6 : !net->has4)
      return cell_fail(err, 0, "address %s: network `%s` has no IPv%c subnet",
                       addr->u.string, name, six ? '6' : '4');
  }
  struct instance_net *n = &r->nets[r->n_nets++];
  n->network = xstrdup(name);
  n->ifname = xasprintf("eth%zu", i);
  n->host_veth = new_host_veth(d, r);
  const struct net_ip *want4 = have_wanted && wanted.family == AF_INET ? &wanted : NULL;
  const struct net_ip *want6 = have_wanted && wanted.family == AF_INET6 ? &wanted : NULL;
  if ((net->has4 && pick_address(d, net, false, want4, &n->ipv4, code, err) < 0) ||
      (net->has6 && pick_address(d, net, true, want6, &n->ipv6, code, err) < 0))
    return cell_error_wrap(err, "network `%s`", name);
  return 0;
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

/* What the instance's port on the bridge may claim: its MAC, its
 * addresses.  Without the filter an instance's root (CAP_NET_RAW in its
 * namespace) could take over another's address with a gratuitous ARP. */
static int filter_port(const struct daemon_network *net,
                       const struct instance_net *in, const uint8_t mac[6],
                       const struct net_addr *addrs, size_t n_addrs,
                       cell_error **err) {
  struct bridge_port_identity id = {.port = in->host_veth};
  memcpy(id.mac, mac, sizeof(id.mac));
  for (size_t i = 0; i < n_addrs; i++) {
    if (addrs[i].ip.family == AF_INET)
      id.ipv4 = &addrs[i].ip;
    else
      id.ipv6 = &addrs[i].ip;
  }
  if (bridge_filter_port_add(net->bridge, &id, err) < 0) {
    /* The way out, after what went wrong. */
    char *msg = xasprintf("%s (without the filter: network.%s.filter = no "
                          "in celld.conf)", (*err)->msg, net->name);
    free((*err)->msg);
    (*err)->msg = msg;
    return -1;
  }
  return 0;
}

/* routed[0], routed[1]: an earlier interface has the IPv4, IPv6 default
 * route.  The first network of a family gets it (eth0 before eth1). */
static int attach_one(struct daemon *d, int nsfd, const struct instance_net *in,
                      bool routed[2], cell_error **err) {
  const struct daemon_network *net = daemon_config_network(d->cfg, in->network);
  if (!net)
    return cell_fail(err, 0, "network `%s` is no longer in the configuration",
                     in->network);
  struct net_addr gw[2], addrs[2];
  struct net_ip gw_ips[2];
  size_t n_gw = gateways_of(net, gw), n_addrs, n_routes = 0;
  for (size_t i = 0; i < n_gw; i++) {
    bool *done = &routed[gw[i].ip.family == AF_INET6];
    if (!*done)
      gw_ips[n_routes++] = gw[i].ip;
    *done = true;
  }
  if (addresses_of(net, in, addrs, &n_addrs, err) < 0 ||
      network_bridge_ensure(net->bridge, gw, n_gw, net->mtu, err) < 0 ||
      /* A pair left by a celld killed in the middle of an attach. */
      network_detach(in->host_veth, err) < 0)
    return -1;
  /* With its addresses on the bridge: dnsmasq binds to them. */
  if (net->dnsmasq)
    dnsmasq_network_up(d, net);
  /* The same MAC at every start: neighbours' ARP and NDP caches stay
   * right when the instance restarts with its address. */
  uint8_t mac[6];
  network_stable_mac(in->host_veth, mac);
  /* Before the port exists: its first frame is filtered already. */
  if (net->filter && filter_port(net, in, mac, addrs, n_addrs, err) < 0)
    return -1;
  return network_attach(nsfd, net->bridge, in->host_veth, in->ifname, mac, net->mtu,
                        addrs, n_addrs, gw_ips, n_routes, err);
}

int daemon_net_attach(struct daemon *d, const struct instance_record *r,
                      pid_t pid, cell_error **err) {
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
    if (attach_one(d, nsfd, &r->nets[i], routed, err) < 0)
      return cell_error_wrap(err, "network `%s` of `%s`", r->nets[i].network,
                             r->name);
  }
  return 0;
}

/* One network's bridge, filter and dnsmasq made ready for a NIC that
 * criu makes, and criu's flag for that NIC. */
static int prepare_one(struct daemon *d, const struct instance_net *in,
                       char ***criu_args, cell_error **err) {
  const struct daemon_network *net = daemon_config_network(d->cfg, in->network);
  if (!net)
    return cell_fail(err, 0, "network `%s` is no longer in the configuration",
                     in->network);
  struct net_addr gw[2], addrs[2];
  size_t n_gw = gateways_of(net, gw), n_addrs;
  if (addresses_of(net, in, addrs, &n_addrs, err) < 0 ||
      network_bridge_ensure(net->bridge, gw, n_gw, net->mtu, err) < 0 ||
      network_detach(in->host_veth, err) < 0)
    return -1;
  if (net->dnsmasq)
    dnsmasq_network_up(d, net);
  /* criu brings back the instance's end with the MAC it had, the stable
   * one of its start: the filter knows it before the port exists. */
  uint8_t mac[6];
  network_stable_mac(in->host_veth, mac);
  if (net->filter && filter_port(net, in, mac, addrs, n_addrs, err) < 0)
    return -1;
  cleanup_free char *ext =
      xasprintf("veth[%s]:%s@%s", in->ifname, in->host_veth, net->bridge);
  cell_strv_push(criu_args, "--external");
  cell_strv_push(criu_args, ext);
  return 0;
}

int daemon_net_prepare_restore(struct daemon *d, const struct instance_record *r,
                               char ***criu_args, cell_error **err) {
  for (size_t i = 0; i < r->n_nets; i++)
    if (prepare_one(d, &r->nets[i], criu_args, err) < 0)
      return cell_error_wrap(err, "network `%s` of `%s`", r->nets[i].network,
                             r->name);
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
    dnsmasq_network_down(d, net);
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

void daemon_net_sweep_bridges(struct daemon *d) {
  for (size_t i = 0; i < d->cfg->n_networks; i++)
    remove_bridge_if_unused(d, &d->cfg->networks[i], NULL);
}
