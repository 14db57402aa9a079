/* celld.conf: `key = value` lines.
 *
 * Each key is a row of a table, as systemd's ConfigTableItem and LXC's
 * config_jump_table: its name, the parser of its type, and where the value
 * goes (an offset into struct daemon_config, or into struct daemon_network
 * for the network.NAME.KEY keys, struct daemon_pool for pool.NAME.KEY).  A new key is one row, and one line of
 * config/celld.conf (a unit test holds the two together). */
#include "daemon/daemon-config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "base/util.h"

/* The network that exists out of the box: `--net default` needs no config. */
static void add_default_network(struct daemon_config *c) {
  struct daemon_network *n = &c->networks[c->n_networks++];
  cell_error *ignored = NULL;
  *n = (struct daemon_network){.name = xstrdup(DAEMON_DEFAULT_NETWORK),
                               .bridge = xstrdup("cell0"),
                               .has4 = true, .has6 = true, .filter = true,
                               .dnsmasq = true};
  net_subnet_parse("10.210.0.0/16", &n->subnet4, &ignored);
  net_subnet_parse("fd00:ce11::/64", &n->subnet6, &ignored);
}

void daemon_config_defaults(struct daemon_config *c) {
  *c = (struct daemon_config){
      .state_dir = xstrdup("/var/lib/cell"),
      .socket_path = xstrdup("/run/cell/celld.sock"),
      .socket_mode = 0660,
      .group = NULL,
      .pool = {.start = 200000, .count = 65536u * 1000, .size = 65536},
      .stop_timeout = 10,
      .max_connections = 256,
      .max_connections_per_uid = 32,
      .exec_timeout = 30,
      .ready_fd = -1,
      .cgroup_parent = xstrdup("/cell-instances"),
      .lxcfs = xstrdup("auto"),
      .image_max_size = 64ULL << 30,
      .image_max_entries = 10000000,
  };
  add_default_network(c);
}

void daemon_config_clear(struct daemon_config *c) {
  free(c->state_dir);
  free(c->socket_path);
  free(c->group);
  free(c->cgroup_parent);
  free(c->template_dirs);
  free(c->dns);
  c->dns = NULL;
  free(c->lxcfs);
  free(c->pidfile);
  c->pidfile = NULL;
  free(c->log_path);
  c->log_path = NULL;
  free(c->metrics_token_file);
  c->metrics_token_file = NULL;
  for (size_t i = 0; i < c->n_networks; i++) {
    free(c->networks[i].name);
    free(c->networks[i].bridge);
    free(c->networks[i].dns);
    free(c->networks[i].domain);
    free(c->networks[i].dns_upstream);
    free(c->networks[i].gateway_dns);
  }
  c->n_networks = 0;
  for (size_t i = 0; i < c->n_pools; i++) {
    free(c->pools[i].name);
    free(c->pools[i].path);
  }
  c->n_pools = 0;
  c->state_dir = c->socket_path = c->group = c->cgroup_parent = NULL;
  c->template_dirs = c->lxcfs = NULL;
}

const char *daemon_config_dns(const struct daemon_config *c,
                              const struct daemon_network *net) {
  if (net && net->dns)
    return net->dns;
  return net && net->dnsmasq ? net->gateway_dns : c->dns;
}

const char *daemon_config_dns_search(const struct daemon_config *c,
                                     const struct daemon_network *net) {
  (void)c;
  return net && net->dnsmasq && !net->dns ? net->domain : NULL;
}

const char *daemon_config_dns_upstream(const struct daemon_config *c,
                                       const struct daemon_network *net) {
  return net->dns_upstream ? net->dns_upstream : c->dns;
}

char **daemon_config_template_dirs(const struct daemon_config *c) {
  char **dirs = xcalloc(1, sizeof(*dirs));
  if (!c->template_dirs) {
    cleanup_free char *dflt = xasprintf("%s/templates", c->state_dir);
    cell_strv_push(&dirs, dflt);
    return dirs;
  }
  cleanup_free char *copy = xstrdup(c->template_dirs);
  char *save = NULL;
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
    cell_strv_push(&dirs, d);
  return dirs;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  return s;
}

const struct daemon_network *daemon_config_network(const struct daemon_config *c,
                                                   const char *name) {
  for (size_t i = 0; i < c->n_networks; i++)
    if (strcmp(c->networks[i].name, name) == 0)
      return &c->networks[i];
  return NULL;
}

const char *daemon_config_pool_path(const struct daemon_config *c,
                                    const char *name) {
  if (strcmp(name, DAEMON_DEFAULT_POOL) == 0)
    return c->state_dir;
  for (size_t i = 0; i < c->n_pools; i++)
    if (strcmp(c->pools[i].name, name) == 0)
      return c->pools[i].path;
  return NULL;
}

/* [A-Za-z0-9][A-Za-z0-9_.-]*: no `:`, which separates NAME:ADDR in --net
 * (pool names follow the same rule). */
static bool network_name_ok(const char *s, size_t len) {
  if (len == 0 || len > 31 || !isalnum((unsigned char)s[0]))
    return false;
  for (size_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
      return false;
  return true;
}

/* Every network complete, bridges distinct, no subnets overlapping. */
static int check_networks(const struct daemon_config *c, cell_error **err) {
  struct net_named_subnet subnets[2 * DAEMON_MAX_NETWORKS];
  size_t n = 0;
  for (size_t i = 0; i < c->n_networks; i++) {
    const struct daemon_network *net = &c->networks[i];
    if (!net->bridge)
      return cell_fail(err, 0, "network `%s`: no bridge (network.%s.bridge)",
                       net->name, net->name);
    if (!net->has4 && !net->has6)
      return cell_fail(err, 0, "network `%s`: no subnet (network.%s.subnet4 "
                               "or .subnet6)", net->name, net->name);
    for (size_t j = 0; j < i; j++)
      if (strcmp(c->networks[j].bridge, net->bridge) == 0)
        return cell_fail(err, 0, "networks `%s` and `%s`: the same bridge `%s`",
                         c->networks[j].name, net->name, net->bridge);
    if (net->has4)
      subnets[n++] = (struct net_named_subnet){net->name, net->subnet4};
    if (net->has6)
      subnets[n++] = (struct net_named_subnet){net->name, net->subnet6};
  }
  return net_check_no_overlap(subnets, n, err);
}

/* The bridge's addresses, `,`-separated: the name servers of a network
 * whose dnsmasq serves its instances. */
static void fill_gateway_dns(struct daemon_config *c) {
  for (size_t i = 0; i < c->n_networks; i++) {
    struct daemon_network *net = &c->networks[i];
    char a4[INET6_ADDRSTRLEN] = "", a6[INET6_ADDRSTRLEN] = "";
    struct net_ip gw;
    if (net->has4) {
      gw = net_subnet_first_host(&net->subnet4);
      net_ip_to_string(&gw, a4, sizeof(a4));
    }
    if (net->has6) {
      gw = net_subnet_first_host(&net->subnet6);
      net_ip_to_string(&gw, a6, sizeof(a6));
    }
    free(net->gateway_dns);
    net->gateway_dns = xasprintf("%s%s%s", a4, *a4 && *a6 ? "," : "", a6);
  }
}

/* Every pool has its path. */
static int check_pools(const struct daemon_config *c, cell_error **err) {
  for (size_t i = 0; i < c->n_pools; i++)
    if (!c->pools[i].path)
      return cell_fail(err, 0, "pool `%s`: no path (pool.%s.path)",
                       c->pools[i].name, c->pools[i].name);
  return 0;
}

/* ---- the typed parsers -------------------------------------------------- */

struct config_key;

/* Store value into the field of target that k names; -1 when the value is
 * bad (the caller says so, naming the file, the line and the key). */
typedef int config_parser(const struct config_key *k, const char *value,
                          void *target);

struct config_key {
  const char *name;
  config_parser *parse;
  size_t offset;         /* of the field in the target struct */
  size_t present_offset; /* subnets: of the bool that says there is one */
  long long min, max;    /* numbers: the range; subnets: the longest prefix */
  const char *no, *yes;  /* bools: the words for false and for true */
  const char *expect;    /* what a good value looks like, for the error */
};

#define N_KEYS(table) (sizeof(table) / sizeof((table)[0]))

static void *field_of(const struct config_key *k, void *target) {
  return (char *)target + k->offset;
}

/* Any text, the empty one too. */
static int parse_string(const struct config_key *k, const char *v,
                        void *target) {
  char **field = field_of(k, target);
  free(*field);
  *field = xstrdup(v);
  return 0;
}

/* Empty means none: NULL. */
static int parse_string_or_none(const struct config_key *k, const char *v,
                                void *target) {
  char **field = field_of(k, target);
  free(*field);
  *field = *v ? xstrdup(v) : NULL;
  return 0;
}

/* One path below the cgroup root: /a/b is fine, `..` and `//` are not. */
static int parse_cgroup_path(const struct config_key *k, const char *v,
                             void *target) {
  size_t len = strlen(v);
  if (v[0] != '/' || len < 2 || strstr(v, "//") || strstr(v, "/.") ||
      v[len - 1] == '/')
    return -1;
  return parse_string(k, v, target);
}

/* An absolute path of plain components: no `.`, `..` nor empty ones, no
 * trailing `/`; not `/` itself. */
static bool plain_absolute_path(const char *p, size_t len) {
  if (len < 2 || p[0] != '/' || p[len - 1] == '/')
    return false;
  for (size_t i = 0; i < len;) {
    size_t n = 0;
    while (i + 1 + n < len && p[i + 1 + n] != '/')
      n++;
    if (n == 0 || (n == 1 && p[i + 1] == '.') ||
        (n == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
      return false;
    i += 1 + n;
  }
  return true;
}

/* `:`-separated plain absolute paths; empty: none.  `/` is refused: as a
 * template directory it would hand members the whole host. */
static int parse_path_list(const struct config_key *k, const char *v,
                           void *target) {
  for (const char *p = v; *p;) {
    size_t len = strcspn(p, ":");
    if (!plain_absolute_path(p, len))
      return -1;
    p += len + (p[len] == ':');
    if (p[-1] == ':' && *p == '\0')
      return -1;
  }
  return parse_string(k, v, target);
}

/* A plain absolute path (not `/`), and an overlay option can name it. */
static int parse_pool_path(const struct config_key *k, const char *v,
                           void *target) {
  if (!plain_absolute_path(v, strlen(v)) || strpbrk(v, ",:\\"))
    return -1;
  return parse_string(k, v, target);
}

/* An absolute path, or empty: none (standard error). */
static int parse_log_path(const struct config_key *k, const char *v,
                          void *target) {
  if (*v && v[0] != '/')
    return -1;
  return parse_string_or_none(k, v, target);
}

/* An absolute path; `none` or nothing: none. */
static int parse_absolute_or_none(const struct config_key *k, const char *v,
                                  void *target) {
  if (*v && strcmp(v, "none") != 0 && v[0] != '/')
    return -1;
  return parse_string_or_none(k, strcmp(v, "none") == 0 ? "" : v, target);
}

/* auto, off, or a plain absolute path (a binary, or a mount point). */
static int parse_lxcfs(const struct config_key *k, const char *v,
                       void *target) {
  if (strcmp(v, "auto") != 0 && strcmp(v, "off") != 0 &&
      !plain_absolute_path(v, strlen(v)))
    return -1;
  return parse_string(k, v, target);
}

/* Permission bits in octal, as chmod takes them: 0660 or 660. */
static int parse_mode(const struct config_key *k, const char *v,
                      void *target) {
  char *end;
  errno = 0;
  unsigned long m = strtoul(v, &end, 8);
  if (errno || *end || end == v || m > 0777)
    return -1;
  *(mode_t *)field_of(k, target) = (mode_t)m;
  return 0;
}

/* The three integer parsers differ only in the field's type. */
static int parse_u32(const struct config_key *k, const char *v, void *target) {
  long long n;
  if (!cell_parse_ll(v, k->min, k->max, &n))
    return -1;
  *(uint32_t *)field_of(k, target) = (uint32_t)n;
  return 0;
}

static int parse_unsigned(const struct config_key *k, const char *v,
                          void *target) {
  long long n;
  if (!cell_parse_ll(v, k->min, k->max, &n))
    return -1;
  *(unsigned *)field_of(k, target) = (unsigned)n;
  return 0;
}

static int parse_size(const struct config_key *k, const char *v, void *target) {
  long long n;
  if (!cell_parse_size(v, &n) || n < k->min)
    return -1;
  *(uint64_t *)field_of(k, target) = (uint64_t)n;
  return 0;
}

static int parse_u64(const struct config_key *k, const char *v, void *target) {
  long long n;
  if (!cell_parse_ll(v, k->min, LLONG_MAX, &n))
    return -1;
  *(uint64_t *)field_of(k, target) = (uint64_t)n;
  return 0;
}

static int parse_int(const struct config_key *k, const char *v, void *target) {
  long long n;
  if (!cell_parse_ll(v, k->min, k->max, &n))
    return -1;
  *(int *)field_of(k, target) = (int)n;
  return 0;
}

/* Exactly one of the key's two words: no case folding, no synonyms. */
static int parse_bool(const struct config_key *k, const char *v,
                      void *target) {
  bool *field = field_of(k, target);
  if (strcmp(v, k->yes) == 0)
    *field = true;
  else if (strcmp(v, k->no) == 0)
    *field = false;
  else
    return -1;
  return 0;
}

/* A name the kernel takes for a link (at most 15 characters). */
static int parse_ifname(const struct config_key *k, const char *v,
                        void *target) {
  cleanup_error cell_error *ignored = NULL;
  if (net_ifname_validate(v, &ignored) < 0)
    return -1;
  return parse_string(k, v, target);
}

/* A network address of that family, its prefix at most k->max so that the
 * subnet has room for the gateway and at least one instance; or `none`: no
 * subnet of that family (the present flag only, the address stays). */
static int parse_subnet(const struct config_key *k, const char *v,
                        void *target, int family) {
  bool *present = (bool *)((char *)target + k->present_offset);
  if (strcmp(v, "none") == 0) {
    *present = false;
    return 0;
  }
  cleanup_error cell_error *ignored = NULL;
  struct net_subnet s;
  if (net_subnet_parse(v, &s, &ignored) < 0 || s.base.family != family ||
      s.prefix > k->max)
    return -1;
  *(struct net_subnet *)field_of(k, target) = s;
  *present = true;
  return 0;
}

static int parse_subnet4(const struct config_key *k, const char *v,
                         void *target) {
  return parse_subnet(k, v, target, AF_INET);
}

static int parse_subnet6(const struct config_key *k, const char *v,
                         void *target) {
  return parse_subnet(k, v, target, AF_INET6);
}

/* Name servers: IPv4 or IPv6 addresses, `,`-separated, at most 3 (what
 * the C library's resolver reads); empty or `none`: none. */
static int parse_dns(const struct config_key *k, const char *v, void *target) {
  char **field = field_of(k, target);
  if (*v == '\0' || strcmp(v, "none") == 0) {
    free(*field);
    *field = NULL;
    return 0;
  }
  int n = 0;
  for (const char *p = v; *p; n++) {
    size_t len = strcspn(p, ",");
    cleanup_free char *one = xstrndup(p, len);
    cleanup_error cell_error *ignored = NULL;
    struct net_ip ip;
    if (n == 3 || net_ip_parse(one, &ip, &ignored) < 0)
      return -1;
    p += len + (p[len] == ',');
    if (p[-1] == ',' && *p == '\0')
      return -1;
  }
  return parse_string(k, v, target);
}

/* `off`, IPV4:PORT or [IPV6]:PORT, port 1 to 65535. */
static int parse_listen(const struct config_key *k, const char *v,
                        void *target) {
  struct daemon_listen *l = field_of(k, target);
  if (strcmp(v, "off") == 0) {
    *l = (struct daemon_listen){.on = false};
    return 0;
  }
  const char *colon = strrchr(v, ':');
  long long port;
  if (!colon || strlen(v) >= sizeof(l->text) ||
      !cell_parse_ll(colon + 1, 1, 65535, &port))
    return -1;
  struct daemon_listen n = {.on = true};
  cleanup_free char *host = xstrndup(v, (size_t)(colon - v));
  size_t hlen = strlen(host);
  if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&n.addr;
    host[hlen - 1] = '\0';
    if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
      return -1;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    n.len = sizeof(*a);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&n.addr;
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
      return -1;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    n.len = sizeof(*a);
  }
  snprintf(n.text, sizeof(n.text), "%s", v);
  *l = n;
  return 0;
}

/* A DNS domain (net_dns_name_ok), nothing dnsmasq would read as another
 * option; `none`: none. */
static int parse_domain(const struct config_key *k, const char *v,
                        void *target) {
  if (strcmp(v, "none") == 0)
    return parse_string_or_none(k, "", target);
  return net_dns_name_ok(v) ? parse_string(k, v, target) : -1;
}

/* ---- the keys ------------------------------------------------------------ */

#define CONFIG(field) offsetof(struct daemon_config, field)
#define NETWORK(field) offsetof(struct daemon_network, field)

/* `autostart` is missing on purpose: a command-line flag only. */
static const struct config_key keys[] = {
    {.name = "state_dir", .parse = parse_string, .offset = CONFIG(state_dir)},
    {.name = "socket", .parse = parse_string, .offset = CONFIG(socket_path)},
    {.name = "socket_mode", .parse = parse_mode, .offset = CONFIG(socket_mode)},
    {.name = "group", .parse = parse_string_or_none, .offset = CONFIG(group)},
    /* Below 65536: host users. */
    {.name = "pool_start", .parse = parse_u32, .offset = CONFIG(pool.start),
     .min = 65536, .max = UINT32_MAX},
    {.name = "pool_count", .parse = parse_u32, .offset = CONFIG(pool.count),
     .min = 1, .max = UINT32_MAX},
    {.name = "range_size", .parse = parse_u32, .offset = CONFIG(pool.size),
     .min = 1, .max = UINT32_MAX},
    /* Seconds: at least one, at most an hour. */
    {.name = "stop_timeout", .parse = parse_int, .offset = CONFIG(stop_timeout),
     .min = 1, .max = 3600},
    /* Root is never counted: the fds above these are root's. */
    {.name = "max_connections", .parse = parse_int,
     .offset = CONFIG(max_connections), .min = 1, .max = 65536},
    {.name = "max_connections_per_uid", .parse = parse_int,
     .offset = CONFIG(max_connections_per_uid), .min = 1, .max = 65536},
    {.name = "exec_timeout", .parse = parse_int, .offset = CONFIG(exec_timeout),
     .min = 1, .max = 3600},
    {.name = "idmap", .parse = parse_bool, .offset = CONFIG(force_copy),
     .no = "auto", .yes = "copy"},
    {.name = "cgroup_parent", .parse = parse_cgroup_path,
     .offset = CONFIG(cgroup_parent)},
    {.name = "template_dirs", .parse = parse_path_list,
     .offset = CONFIG(template_dirs)},
    {.name = "dns", .parse = parse_dns, .offset = CONFIG(dns)},
    {.name = "lxcfs", .parse = parse_lxcfs, .offset = CONFIG(lxcfs)},
    {.name = "metrics_listen", .parse = parse_listen,
     .offset = CONFIG(metrics_listen),
     .expect = "ADDRESS:PORT, [IPV6]:PORT or off, as 127.0.0.1:9477"},
    {.name = "metrics_token_file", .parse = parse_absolute_or_none,
     .offset = CONFIG(metrics_token_file),
     .expect = "an absolute path, or none"},
    {.name = "log", .parse = parse_log_path, .offset = CONFIG(log_path)},
    /* What an imported image may expand to: a bomb stops here. */
    {.name = "image_max_size", .parse = parse_size,
     .offset = CONFIG(image_max_size), .min = 1 << 20},
    {.name = "image_max_entries", .parse = parse_u64,
     .offset = CONFIG(image_max_entries), .min = 1000},
};

/* The KEY of network.NAME.KEY. */
static const struct config_key network_keys[] = {
    {.name = "bridge", .parse = parse_ifname, .offset = NETWORK(bridge)},
    {.name = "subnet4", .parse = parse_subnet4, .offset = NETWORK(subnet4),
     .present_offset = NETWORK(has4), .max = 30},
    {.name = "subnet6", .parse = parse_subnet6, .offset = NETWORK(subnet6),
     .present_offset = NETWORK(has6), .max = 126},
    /* The smallest MTU IPv4 allows, the largest a link takes. */
    {.name = "mtu", .parse = parse_unsigned, .offset = NETWORK(mtu),
     .min = 68, .max = 65535},
    {.name = "keep_bridge", .parse = parse_bool, .offset = NETWORK(keep_bridge),
     .no = "no", .yes = "yes"},
    {.name = "filter", .parse = parse_bool, .offset = NETWORK(filter),
     .no = "no", .yes = "yes"},
    {.name = "dns", .parse = parse_dns, .offset = NETWORK(dns)},
    {.name = "dnsmasq", .parse = parse_bool, .offset = NETWORK(dnsmasq),
     .no = "no", .yes = "yes"},
    {.name = "domain", .parse = parse_domain, .offset = NETWORK(domain)},
    {.name = "dns_upstream", .parse = parse_dns, .offset = NETWORK(dns_upstream)},
};

#define POOL(field) offsetof(struct daemon_pool, field)

/* The KEY of pool.NAME.KEY. */
static const struct config_key pool_keys[] = {
    {.name = "path", .parse = parse_pool_path, .offset = POOL(path)},
};

const char *daemon_config_pool_key(size_t i) {
  return i < N_KEYS(pool_keys) ? pool_keys[i].name : NULL;
}

const char *daemon_config_key(size_t i) {
  return i < N_KEYS(keys) ? keys[i].name : NULL;
}

const char *daemon_config_network_key(size_t i) {
  return i < N_KEYS(network_keys) ? network_keys[i].name : NULL;
}

static const struct config_key *find_key(const struct config_key *table,
                                         size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(table[i].name, name) == 0)
      return &table[i];
  return NULL;
}

/* What applying a line gives besides 0. */
enum { BAD_VALUE = -1, UNKNOWN_KEY = -2 };

/* The network of that name, a new empty one when there is none yet; NULL
 * when there is no room for one more. */
static struct daemon_network *network_named(struct daemon_config *c,
                                            const char *name, size_t len) {
  cleanup_free char *nname = xstrndup(name, len);
  struct daemon_network *n =
      (struct daemon_network *)daemon_config_network(c, nname);
  if (n || c->n_networks == DAEMON_MAX_NETWORKS)
    return n;
  n = &c->networks[c->n_networks++];
  *n = (struct daemon_network){.name = steal_pointer(&nname), .filter = true,
                               .dnsmasq = true};
  return n;
}

/* network.NAME.KEY = VALUE: NAME is all up to the last dot, since a
 * network's name may hold dots itself. */
static int apply_network(struct daemon_config *c, const char *key,
                         const char *v) {
  const char *name = key + strlen("network.");
  const char *dot = strrchr(name, '.');
  if (!dot || !network_name_ok(name, (size_t)(dot - name)))
    return UNKNOWN_KEY;
  const struct config_key *k =
      find_key(network_keys, N_KEYS(network_keys), dot + 1);
  if (!k)
    return UNKNOWN_KEY;
  struct daemon_network *n = network_named(c, name, (size_t)(dot - name));
  if (!n)
    return BAD_VALUE;
  return k->parse(k, v, n) < 0 ? BAD_VALUE : 0;
}

/* The pool of that name, a new one when there is none yet; NULL when
 * there is no room for one more. */
static struct daemon_pool *pool_named(struct daemon_config *c,
                                      const char *name, size_t len) {
  for (size_t i = 0; i < c->n_pools; i++)
    if (strlen(c->pools[i].name) == len &&
        strncmp(c->pools[i].name, name, len) == 0)
      return &c->pools[i];
  if (c->n_pools == DAEMON_MAX_POOLS)
    return NULL;
  struct daemon_pool *p = &c->pools[c->n_pools++];
  *p = (struct daemon_pool){.name = xstrndup(name, len)};
  return p;
}

/* pool.NAME.KEY = VALUE.  `default` is the state directory: state_dir
 * moves it, not a pool line. */
static int apply_pool(struct daemon_config *c, const char *key,
                      const char *v) {
  const char *name = key + strlen("pool.");
  const char *dot = strrchr(name, '.');
  if (!dot || !network_name_ok(name, (size_t)(dot - name)))
    return UNKNOWN_KEY;
  const struct config_key *k = find_key(pool_keys, N_KEYS(pool_keys), dot + 1);
  if (!k)
    return UNKNOWN_KEY;
  if ((size_t)(dot - name) == strlen(DAEMON_DEFAULT_POOL) &&
      strncmp(name, DAEMON_DEFAULT_POOL, (size_t)(dot - name)) == 0)
    return BAD_VALUE;
  struct daemon_pool *p = pool_named(c, name, (size_t)(dot - name));
  if (!p)
    return BAD_VALUE;
  return k->parse(k, v, p) < 0 ? BAD_VALUE : 0;
}

static int apply(struct daemon_config *c, const char *key, const char *v) {
  if (strncmp(key, "network.", strlen("network.")) == 0)
    return apply_network(c, key, v);
  if (strncmp(key, "pool.", strlen("pool.")) == 0)
    return apply_pool(c, key, v);
  const struct config_key *k = find_key(keys, N_KEYS(keys), key);
  if (!k)
    return UNKNOWN_KEY;
  return k->parse(k, v, c) < 0 ? BAD_VALUE : 0;
}

int daemon_config_load(struct daemon_config *c, const char *path,
                       cell_error **err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (cell_read_file_at(AT_FDCWD, path, 1 << 20, &text, &len, err) < 0)
    return cell_error_wrap(err, "config");
  int lineno = 0;
  /* Not strtok: it would skip blank lines and miscount the line numbers
   * that errors give. */
  for (char *line = text, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    lineno++;
    char *hash = strchr(line, '#');
    if (hash)
      *hash = '\0';
    char *l = trim(line);
    if (*l == '\0')
      continue;
    char *eq = strchr(l, '=');
    if (!eq)
      return cell_fail(err, 0, "%s: line %d: expected `key = value`",
                       path, lineno);
    *eq = '\0';
    char *key = trim(l), *value = trim(eq + 1);
    int r = apply(c, key, value);
    if (r == UNKNOWN_KEY)
      return cell_fail(err, 0, "%s: line %d: unknown key `%s`", path,
                       lineno, key);
    const struct config_key *k = find_key(keys, N_KEYS(keys), key);
    if (r < 0 && k && k->expect)
      return cell_fail(err, 0, "%s: line %d: %s: bad value `%s`: expected %s",
                       path, lineno, key, value, k->expect);
    if (r < 0)
      return cell_fail(err, 0, "%s: line %d: %s: bad value `%s`", path,
                       lineno, key, value);
  }
  if (idrange_pool_check(&c->pool, err) < 0 || check_networks(c, err) < 0 ||
      check_pools(c, err) < 0)
    return cell_error_wrap(err, "%s", path);
  fill_gateway_dns(c);
  return 0;
}
