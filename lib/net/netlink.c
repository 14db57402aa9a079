/* rtnetlink requests (see netlink.h), built and read by nlmsg.h. */
#include "net/netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "base/util.h"
#include "net/nlmsg.h"

struct nl_sock {
  int fd;
  uint32_t portid;
  uint32_t seq;
};

/* ---- opening ------------------------------------------------------------- */

static int nl_wrap_fd(int fd, struct nl_sock **out, cell_error **err) {
  uint32_t portid;
  if (nl_sock_bind(fd, &portid) < 0) {
    int e = errno;
    close(fd);
    return cell_fail(err, e, "bind a netlink socket");
  }
  struct nl_sock *nl = xcalloc(1, sizeof(*nl));
  nl->fd = fd;
  nl->portid = portid;
  nl->seq = (uint32_t)time(NULL);
  *out = nl;
  return 0;
}

/* What the child of socket_in_netns is given and hands back. */
struct netns_socket {
  int netns_fd;
  int fd;  /* the socket, in the fd table it shares with us */
  int err; /* else why not */
};

/* The child: enter the namespace (its own: setns changes only the task
 * that calls it) and make the socket there.  It shares our memory and our
 * fd table, and we are suspended until it has exited: the socket is ours
 * as soon as it is made, and nothing needs to be sent back. */
__attribute__((no_sanitize_address)) static int netns_socket_child(void *arg) {
  struct netns_socket *a = arg;
  if (setns(a->netns_fd, CLONE_NEWNET) < 0) {
    a->err = errno;
    return 0;
  }
  a->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (a->fd < 0)
    a->err = errno;
  return 0;
}

/* A netlink socket of the network namespace netns_fd.  A child of ours
 * makes it, so that no thread of ours ever leaves its own namespace; a
 * CLONE_VM | CLONE_VFORK | CLONE_FILES one, so that it costs no copy of
 * our memory (a fork cost about 1 ms at every start of an instance with a
 * network, and copy-on-write faults after it).  Signals stay blocked
 * around the clone: no handler runs on the child's stack. */
static int socket_in_netns(int netns_fd, cell_error **err) {
  const size_t stack_size = 16384;
  cleanup_free char *stack = xmalloc(stack_size);
  struct netns_socket a = {.netns_fd = netns_fd, .fd = -1, .err = EPROTO};
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = clone(netns_socket_child, stack + stack_size,
                    CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &a);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  if (pid < 0)
    return cell_fail(err, clone_errno, "clone to enter a network namespace");
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (a.fd < 0)
    return cell_fail(err, a.err,
                     "open a netlink socket in the network namespace");
  return a.fd;
}

int nl_open(int netns_fd, struct nl_sock **out, cell_error **err) {
  *out = NULL;
  int fd = netns_fd < 0
               ? socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)
               : socket_in_netns(netns_fd, err);
  if (fd < 0)
    return netns_fd < 0 ? cell_fail_errno(err, "open a netlink socket") : -1;
  return nl_wrap_fd(fd, out, err);
}

void nl_close(struct nl_sock *nl) {
  if (nl == NULL)
    return;
  close(nl->fd);
  free(nl);
}

/* ---- one request, one answer ---------------------------------------------- */

/* Send the request m and read until its ACK (or the end of a dump),
 * feeding data messages to cb.  Returns 0 or -errno of the kernel. */
static int nl_talk(struct nl_sock *nl, struct nl_msg *m, nl_msg_cb cb,
                   void *data) {
  if (m->overflow)
    return -EMSGSIZE;
  m->h->nlmsg_seq = ++nl->seq;
  m->h->nlmsg_flags |= NLM_F_ACK;
  int r = nl_msg_send(nl->fd, m);
  if (r < 0)
    return r;
  /* Dumps come in messages of up to a page or more: 32 KiB keeps them whole. */
  char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
  for (;;) {
    long n = nl_recv(nl->fd, buf, sizeof(buf));
    if (n < 0)
      return (int)n;
    r = nl_run(buf, (size_t)n, m->h->nlmsg_seq, nl->portid, cb, data);
    if (r != 0)
      return r < 0 ? r : 0;
  }
}

/* A request about a link: its ifinfomsg, zeroed but for the family. */
static struct ifinfomsg *link_request(struct nl_msg *m, char (*buf)[NL_MSG_MAX],
                                      uint16_t type, uint16_t flags) {
  struct ifinfomsg *ifi =
      nl_msg_start(m, buf, type, NLM_F_REQUEST | flags, sizeof(*ifi));
  ifi->ifi_family = AF_UNSPEC;
  return ifi;
}

/* ---- reading links ---------------------------------------------------------- */

struct link_parse {
  struct nl_link_info *info;
  unsigned want_master; /* for counting ports */
  unsigned count;
};

static void parse_link_info(const struct nlattr *linkinfo,
                            struct nl_link_info *info) {
  const struct nlattr *a;
  nl_attr_for_each_nested(a, linkinfo)
    if (nl_attr_type(a) == IFLA_INFO_KIND)
      nl_attr_str(a, info->kind, sizeof(info->kind));
}

static void parse_link_attr(const struct nlattr *a, struct nl_link_info *info) {
  switch (nl_attr_type(a)) {
  case IFLA_MASTER:
    nl_attr_u32(a, &info->master);
    break;
  case IFLA_MTU:
    nl_attr_u32(a, &info->mtu);
    break;
  case IFLA_LINKINFO:
    parse_link_info(a, info);
    break;
  case IFLA_STATS64:
    if (nl_attr_len(a) >= sizeof(struct rtnl_link_stats64)) {
      struct rtnl_link_stats64 st;
      memcpy(&st, nl_attr_data(a), sizeof(st)); /* may be unaligned */
      info->rx_bytes = st.rx_bytes;
      info->tx_bytes = st.tx_bytes;
      info->rx_packets = st.rx_packets;
      info->tx_packets = st.tx_packets;
    }
    break;
  }
}

static void link_msg_cb(const struct nlmsghdr *h, void *data) {
  struct link_parse *p = data;
  if (h->nlmsg_type != RTM_NEWLINK ||
      h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
    return;
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  struct nl_link_info info = {.index = (unsigned)ifi->ifi_index};
  const struct nlattr *a;
  nl_attr_for_each(a, h, sizeof(*ifi))
    parse_link_attr(a, &info);
  if (p->info)
    *p->info = info;
  if (p->want_master && info.master == p->want_master)
    p->count++;
}

static int link_get_raw(struct nl_sock *nl, const char *name,
                        struct nl_link_info *out) {
  char buf[NL_MSG_MAX];
  struct nl_msg m;
  link_request(&m, &buf, RTM_GETLINK, 0);
  nl_msg_put_strz(&m, IFLA_IFNAME, name);
  memset(out, 0, sizeof(*out));
  struct link_parse p = {.info = out};
  return nl_talk(nl, &m, link_msg_cb, &p);
}

static int fail_no_device(cell_error **err, const char *prefix,
                          const char *name) {
  cell_fail(err, 0, "%s%snetwork device `%s` does not exist", prefix ? prefix : "",
            prefix ? ": " : "", name);
  (*err)->errnum = ENODEV;
  return -1;
}

static int fail_link(cell_error **err, int r, const char *op,
                     const char *name) {
  if (r == -ENODEV)
    return fail_no_device(err, op, name);
  return cell_fail(err, -r, "%s `%s`", op, name);
}

int nl_link_get(struct nl_sock *nl, const char *name, struct nl_link_info *out,
                cell_error **err) {
  int r = link_get_raw(nl, name, out);
  if (r == -ENODEV)
    return fail_no_device(err, NULL, name);
  if (r < 0)
    return cell_fail(err, -r, "look up network device `%s`", name);
  return 0;
}

int nl_link_index(struct nl_sock *nl, const char *name, unsigned *index,
                  cell_error **err) {
  struct nl_link_info info;
  if (nl_link_get(nl, name, &info, err) < 0)
    return -1;
  *index = info.index;
  return 0;
}

int nl_link_exists(struct nl_sock *nl, const char *name, cell_error **err) {
  struct nl_link_info info;
  int r = link_get_raw(nl, name, &info);
  if (r == -ENODEV)
    return 0;
  if (r < 0)
    return cell_fail(err, -r, "look up network device `%s`", name);
  return 1;
}

int nl_link_count_ports(struct nl_sock *nl, unsigned master_index,
                        unsigned *count, cell_error **err) {
  char buf[NL_MSG_MAX];
  struct nl_msg m;
  link_request(&m, &buf, RTM_GETLINK, NLM_F_DUMP);
  struct link_parse p = {.want_master = master_index};
  int r = nl_talk(nl, &m, link_msg_cb, &p);
  if (r < 0)
    return cell_fail(err, -r, "list network devices");
  *count = p.count;
  return 0;
}

/* ---- changing links ------------------------------------------------------- */

/* A veth's peer, when link_new makes one: its name, and optionally the
 * namespace it is made in (-1: the socket's) and its MAC address. */
struct veth_peer {
  const char *name;
  int netns_fd;
  const uint8_t *mac; /* 6 bytes, or NULL */
};

static int link_new(struct nl_sock *nl, const char *kind, const char *name,
                    const struct veth_peer *peer, unsigned mtu) {
  char buf[NL_MSG_MAX];
  struct nl_msg m;
  link_request(&m, &buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  nl_msg_put_strz(&m, IFLA_IFNAME, name);
  if (mtu)
    nl_msg_put_u32(&m, IFLA_MTU, mtu);
  struct nlattr *linkinfo = nl_msg_nest_start(&m, IFLA_LINKINFO);
  nl_msg_put_strz(&m, IFLA_INFO_KIND, kind);
  if (peer) {
    struct nlattr *data = nl_msg_nest_start(&m, IFLA_INFO_DATA);
    struct nlattr *p = nl_msg_nest_start(&m, VETH_INFO_PEER);
    struct ifinfomsg *pifi = nl_msg_reserve(&m, sizeof(*pifi));
    pifi->ifi_family = AF_UNSPEC;
    nl_msg_put_strz(&m, IFLA_IFNAME, peer->name);
    if (mtu)
      nl_msg_put_u32(&m, IFLA_MTU, mtu);
    if (peer->mac)
      nl_msg_put(&m, IFLA_ADDRESS, 6, peer->mac);
    if (peer->netns_fd >= 0)
      nl_msg_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)peer->netns_fd);
    nl_msg_nest_end(&m, p);
    nl_msg_nest_end(&m, data);
  }
  nl_msg_nest_end(&m, linkinfo);
  return nl_talk(nl, &m, NULL, NULL);
}

int nl_bridge_add(struct nl_sock *nl, const char *name, unsigned mtu,
                  cell_error **err) {
  int r = link_new(nl, "bridge", name, NULL, mtu);
  if (r < 0)
    return cell_fail(err, -r, "create bridge `%s`", name);
  return 0;
}

int nl_bridge_no_linklocal_learn(struct nl_sock *nl, const char *name,
                                 cell_error **err) {
  char buf[NL_MSG_MAX];
  struct nl_msg m;
  link_request(&m, &buf, RTM_NEWLINK, 0);
  nl_msg_put_strz(&m, IFLA_IFNAME, name);
  struct nlattr *linkinfo = nl_msg_nest_start(&m, IFLA_LINKINFO);
  nl_msg_put_strz(&m, IFLA_INFO_KIND, "bridge");
  struct nlattr *data = nl_msg_nest_start(&m, IFLA_INFO_DATA);
  struct br_boolopt_multi opt = {
      .optval = 1u << BR_BOOLOPT_NO_LL_LEARN,
      .optmask = 1u << BR_BOOLOPT_NO_LL_LEARN,
  };
  nl_msg_put(&m, IFLA_BR_MULTI_BOOLOPT, sizeof(opt), &opt);
  nl_msg_nest_end(&m, data);
  nl_msg_nest_end(&m, linkinfo);
  int r = nl_talk(nl, &m, NULL, NULL);
  if (r < 0)
    return cell_fail(err, -r, "bridge `%s`: no_linklocal_learn", name);
  return 0;
}

int nl_veth_add(struct nl_sock *nl, const char *name, const char *peer,
                unsigned mtu, cell_error **err) {
  struct veth_peer p = {.name = peer, .netns_fd = -1};
  int r = link_new(nl, "veth", name, &p, mtu);
  if (r < 0)
    return cell_fail(err, -r, "create veth pair `%s` - `%s`", name, peer);
  return 0;
}

int nl_veth_add_into(struct nl_sock *nl, const char *name, const char *peer,
                     int peer_netns_fd, const uint8_t *peer_mac, unsigned mtu,
                     cell_error **err) {
  struct veth_peer p = {.name = peer, .netns_fd = peer_netns_fd, .mac = peer_mac};
  int r = link_new(nl, "veth", name, &p, mtu);
  if (r < 0)
    return cell_fail(err, -r, "create veth pair `%s` - `%s` (in the "
                     "instance's network namespace)", name, peer);
  return 0;
}

/* RTM_NEWLINK (set) or RTM_DELLINK on the link called name, with one u32 or
 * string attribute (type 0: none) and the given flags change. */
struct link_change {
  uint16_t attr;
  uint32_t u32;
  const char *str;
  const uint8_t *mac; /* 6 bytes, for IFLA_ADDRESS */
  unsigned flags, change;
};

static int link_modify(struct nl_sock *nl, uint16_t type, const char *name,
                       const struct link_change *c) {
  char buf[NL_MSG_MAX];
  struct nl_msg m;
  struct ifinfomsg *ifi = link_request(&m, &buf, type, 0);
  nl_msg_put_strz(&m, IFLA_IFNAME, name);
  if (c) {
    ifi->ifi_flags = c->flags;
    ifi->ifi_change = c->change;
    if (c->mac)
      nl_msg_put(&m, c->attr, 6, c->mac);
    else if (c->str)
      nl_msg_put_strz(&m, c->attr, c->str);
    else if (c->attr)
      nl_msg_put_u32(&m, c->attr, c->u32);
  }
  return nl_talk(nl, &m, NULL, NULL);
}

int nl_link_del(struct nl_sock *nl, const char *name, cell_error **err) {
  int r = link_modify(nl, RTM_DELLINK, name, NULL);
  return r < 0 ? fail_link(err, r, "delete", name) : 0;
}

int nl_link_set_netns(struct nl_sock *nl, const char *name, int netns_fd,
                      cell_error **err) {
  struct link_change c = {.attr = IFLA_NET_NS_FD, .u32 = (uint32_t)netns_fd};
  int r = link_modify(nl, RTM_NEWLINK, name, &c);
  return r < 0 ? fail_link(err, r, "move to another network namespace", name)
               : 0;
}

int nl_link_rename(struct nl_sock *nl, const char *name, const char *new_name,
                   cell_error **err) {
  /* IFLA_IFNAME names the link to change, so address it by index. */
  unsigned index;
  if (nl_link_index(nl, name, &index, err) < 0)
    return cell_error_wrap(err, "rename `%s` to `%s`", name, new_name);
  char buf[NL_MSG_MAX];
  struct nl_msg m;
  struct ifinfomsg *ifi = link_request(&m, &buf, RTM_NEWLINK, 0);
  ifi->ifi_index = (int)index;
  nl_msg_put_strz(&m, IFLA_IFNAME, new_name);
  int r = nl_talk(nl, &m, NULL, NULL);
  if (r < 0)
    return cell_fail(err, -r, "rename `%s` to `%s`", name, new_name);
  return 0;
}

int nl_link_set_mtu(struct nl_sock *nl, const char *name, unsigned mtu,
                    cell_error **err) {
  struct link_change c = {.attr = IFLA_MTU, .u32 = mtu};
  int r = link_modify(nl, RTM_NEWLINK, name, &c);
  if (r == -ENODEV)
    return fail_link(err, r, "set the MTU", name);
  if (r < 0)
    return cell_fail(err, -r, "set the MTU of `%s` to %u", name, mtu);
  return 0;
}

int nl_link_set_mac(struct nl_sock *nl, const char *name, const uint8_t mac[6],
                    cell_error **err) {
  struct link_change c = {.attr = IFLA_ADDRESS, .mac = mac};
  int r = link_modify(nl, RTM_NEWLINK, name, &c);
  return r < 0 ? fail_link(err, r, "set the MAC address", name) : 0;
}

int nl_link_set_up(struct nl_sock *nl, const char *name, bool up,
                   cell_error **err) {
  struct link_change c = {.flags = up ? IFF_UP : 0, .change = IFF_UP};
  int r = link_modify(nl, RTM_NEWLINK, name, &c);
  return r < 0 ? fail_link(err, r, up ? "bring up" : "bring down", name) : 0;
}

int nl_link_set_master(struct nl_sock *nl, const char *name,
                       const char *master, cell_error **err) {
  unsigned index;
  if (nl_link_index(nl, master, &index, err) < 0)
    return cell_error_wrap(err, "attach `%s` to bridge `%s`", name, master);
  struct link_change c = {.attr = IFLA_MASTER, .u32 = index};
  int r = link_modify(nl, RTM_NEWLINK, name, &c);
  if (r == -ENODEV)
    return fail_link(err, r, "attach to a bridge", name);
  if (r < 0)
    return cell_fail(err, -r, "attach `%s` to bridge `%s`", name, master);
  return 0;
}

/* ---- addresses and routes ------------------------------------------------- */

const char *net_ip_to_string(const struct net_ip *ip, char *buf, size_t len) {
  if (inet_ntop(ip->family, ip->bytes, buf, (socklen_t)len) == NULL)
    snprintf(buf, len, "?");
  return buf;
}

static size_t ip_len(const struct net_ip *ip) {
  return ip->family == AF_INET ? 4 : 16;
}

int nl_addr_add(struct nl_sock *nl, const char *name, const struct net_addr *a,
                cell_error **err) {
  char text[INET6_ADDRSTRLEN];
  net_ip_to_string(&a->ip, text, sizeof(text));
  unsigned index;
  if (nl_link_index(nl, name, &index, err) < 0)
    return cell_error_wrap(err, "add address %s/%u", text, a->prefix);
  char buf[NL_MSG_MAX];
  struct nl_msg m;
  struct ifaddrmsg *ifa =
      nl_msg_start(&m, &buf, RTM_NEWADDR,
                   NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE, sizeof(*ifa));
  ifa->ifa_family = (uint8_t)a->ip.family;
  ifa->ifa_prefixlen = (uint8_t)a->prefix;
  ifa->ifa_index = index;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  nl_msg_put(&m, IFA_LOCAL, ip_len(&a->ip), a->ip.bytes);
  nl_msg_put(&m, IFA_ADDRESS, ip_len(&a->ip), a->ip.bytes);
  if (a->ip.family == AF_INET6) {
    ifa->ifa_flags = IFA_F_NODAD;
    nl_msg_put_u32(&m, IFA_FLAGS, IFA_F_NODAD);
  }
  int r = nl_talk(nl, &m, NULL, NULL);
  if (r < 0)
    return cell_fail(err, -r, "add address %s/%u to `%s`", text, a->prefix,
                     name);
  return 0;
}

struct addr_list {
  unsigned index;
  struct net_addr *v;
  size_t n;
};

static void addr_msg_cb(const struct nlmsghdr *h, void *data) {
  struct addr_list *l = data;
  if (h->nlmsg_type != RTM_NEWADDR ||
      h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
    return;
  const struct ifaddrmsg *ifa = NLMSG_DATA(h);
  if (ifa->ifa_index != l->index || ifa->ifa_scope != RT_SCOPE_UNIVERSE ||
      (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
    return;
  uint32_t flags = ifa->ifa_flags;
  const struct nlattr *local = NULL, *address = NULL, *a;
  nl_attr_for_each(a, h, sizeof(*ifa)) {
    uint16_t t = nl_attr_type(a);
    if (t == IFA_LOCAL)
      local = a;
    else if (t == IFA_ADDRESS)
      address = a;
    else if (t == IFA_FLAGS)
      nl_attr_u32(a, &flags);
  }
  const struct nlattr *ip = local ? local : address;
  size_t want = ifa->ifa_family == AF_INET ? 4 : 16;
  if (!(flags & IFA_F_PERMANENT) || ip == NULL || nl_attr_len(ip) != want)
    return;
  l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
  struct net_addr *out = &l->v[l->n++];
  memset(out, 0, sizeof(*out));
  out->ip.family = ifa->ifa_family;
  memcpy(out->ip.bytes, nl_attr_data(ip), want);
  out->prefix = ifa->ifa_prefixlen;
}

int nl_addr_list(struct nl_sock *nl, const char *name, struct net_addr **out,
                 size_t *n, cell_error **err) {
  *out = NULL;
  *n = 0;
  struct addr_list l = {0};
  if (nl_link_index(nl, name, &l.index, err) < 0)
    return cell_error_wrap(err, "list the addresses of `%s`", name);
  char buf[NL_MSG_MAX];
  struct nl_msg m;
  struct ifaddrmsg *ifa = nl_msg_start(&m, &buf, RTM_GETADDR,
                                       NLM_F_REQUEST | NLM_F_DUMP, sizeof(*ifa));
  ifa->ifa_family = AF_UNSPEC;
  int r = nl_talk(nl, &m, addr_msg_cb, &l);
  if (r < 0) {
    free(l.v);
    return cell_fail(err, -r, "list the addresses of `%s`", name);
  }
  *out = l.v;
  *n = l.n;
  return 0;
}

int nl_route_add_default(struct nl_sock *nl, const char *name,
                         const struct net_ip *gateway, cell_error **err) {
  char text[INET6_ADDRSTRLEN];
  net_ip_to_string(gateway, text, sizeof(text));
  unsigned index;
  if (nl_link_index(nl, name, &index, err) < 0)
    return cell_error_wrap(err, "add default route via %s", text);
  char buf[NL_MSG_MAX];
  struct nl_msg m;
  struct rtmsg *rt =
      nl_msg_start(&m, &buf, RTM_NEWROUTE,
                   NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE, sizeof(*rt));
  rt->rtm_family = (uint8_t)gateway->family;
  rt->rtm_dst_len = 0;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  nl_msg_put(&m, RTA_GATEWAY, ip_len(gateway), gateway->bytes);
  nl_msg_put_u32(&m, RTA_OIF, index);
  int r = nl_talk(nl, &m, NULL, NULL);
  if (r < 0)
    return cell_fail(err, -r, "add default route via %s on `%s`", text, name);
  return 0;
}
