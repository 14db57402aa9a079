/* celld.conf: `key = value` lines. */
#include "daemon/daemon-config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"

/* The network that exists out of the box: `--net default` needs no config. */
static void add_default_network(struct daemon_config *c) {
  struct daemon_network *n = &c->networks[c->n_networks++];
  cell_error *ignored = NULL;
  *n = (struct daemon_network){.name = xstrdup(DAEMON_DEFAULT_NETWORK),
                               .bridge = xstrdup("cell0"),
                               .has4 = true, .has6 = true};
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
      .cgroup_parent = xstrdup("/cell-instances"),
  };
  add_default_network(c);
}

void daemon_config_clear(struct daemon_config *c) {
  free(c->state_dir);
  free(c->socket_path);
  free(c->group);
  free(c->cgroup_parent);
  for (size_t i = 0; i < c->n_networks; i++) {
    free(c->networks[i].name);
    free(c->networks[i].bridge);
  }
  c->n_networks = 0;
  c->state_dir = c->socket_path = c->group = c->cgroup_parent = NULL;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  return s;
}

static int set_u32(const char *v, long long min, uint32_t *out) {
  long long n;
  if (!cell_parse_ll(v, min, UINT32_MAX, &n))
    return -1;
  *out = (uint32_t)n;
  return 0;
}

const struct daemon_network *daemon_config_network(const struct daemon_config *c,
                                                   const char *name) {
  for (size_t i = 0; i < c->n_networks; i++)
    if (strcmp(c->networks[i].name, name) == 0)
      return &c->networks[i];
  return NULL;
}

/* [A-Za-z0-9][A-Za-z0-9_.-]*: no `:`, which separates NAME:ADDR in --net. */
static bool network_name_ok(const char *s, size_t len) {
  if (len == 0 || len > 31 || !isalnum((unsigned char)s[0]))
    return false;
  for (size_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
      return false;
  return true;
}

/* network.NAME.KEY = VALUE; -2 for an unknown key, -1 for a bad value. */
static int apply_network(struct daemon_config *c, const char *key,
                         const char *v) {
  const char *name = key + strlen("network.");
  const char *dot = strrchr(name, '.');
  if (!dot || !network_name_ok(name, (size_t)(dot - name)))
    return -2;
  cleanup_free char *nname = xstrndup(name, (size_t)(dot - name));
  const char *field = dot + 1;
  struct daemon_network *n =
      (struct daemon_network *)daemon_config_network(c, nname);
  if (!n) {
    if (c->n_networks == DAEMON_MAX_NETWORKS)
      return -1;
    n = &c->networks[c->n_networks++];
    *n = (struct daemon_network){.name = steal_pointer(&nname)};
  }
  cell_error *e = NULL;
  if (strcmp(field, "bridge") == 0) {
    if (net_ifname_validate(v, &e) < 0) {
      cell_error_free(&e);
      return -1;
    }
    free(n->bridge);
    n->bridge = xstrdup(v);
  } else if (strcmp(field, "subnet4") == 0 || strcmp(field, "subnet6") == 0) {
    bool six = field[6] == '6';
    struct net_subnet s;
    if (strcmp(v, "none") == 0) {
      *(six ? &n->has6 : &n->has4) = false;
      return 0;
    }
    if (net_subnet_parse(v, &s, &e) < 0 ||
        s.base.family != (six ? AF_INET6 : AF_INET)) {
      cell_error_free(&e);
      return -1;
    }
    /* Room for the gateway and at least one instance. */
    if ((!six && s.prefix > 30) || (six && s.prefix > 126))
      return -1;
    *(six ? &n->subnet6 : &n->subnet4) = s;
    *(six ? &n->has6 : &n->has4) = true;
  } else if (strcmp(field, "mtu") == 0) {
    long long mtu;
    if (!cell_parse_ll(v, 68, 65535, &mtu))
      return -1;
    n->mtu = (unsigned)mtu;
  } else if (strcmp(field, "keep_bridge") == 0) {
    if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
      return -1;
    n->keep_bridge = v[0] == 'y';
  } else {
    return -2;
  }
  return 0;
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

static int apply(struct daemon_config *c, const char *key, const char *v) {
  long long n;
  if (strcmp(key, "socket_mode") == 0) {
    char *end;
    errno = 0;
    unsigned long m = strtoul(v, &end, 8);
    if (errno || *end || end == v || m > 0777)
      return -1;
    c->socket_mode = (mode_t)m;
  } else if (strcmp(key, "group") == 0) {
    free(c->group);
    c->group = *v ? xstrdup(v) : NULL;
  } else if (strcmp(key, "pool_start") == 0) {
    return set_u32(v, 65536, &c->pool.start);
  } else if (strcmp(key, "pool_count") == 0) {
    return set_u32(v, 1, &c->pool.count);
  } else if (strcmp(key, "range_size") == 0) {
    return set_u32(v, 1, &c->pool.size);
  } else if (strcmp(key, "stop_timeout") == 0) {
    if (!cell_parse_ll(v, 1, 3600, &n))
      return -1;
    c->stop_timeout = (int)n;
  } else if (strcmp(key, "idmap") == 0) {
    if (strcmp(v, "auto") == 0)
      c->force_copy = false;
    else if (strcmp(v, "copy") == 0)
      c->force_copy = true;
    else
      return -1;
  } else if (strcmp(key, "cgroup_parent") == 0) {
    /* One path below the root: /a/b is fine, `..` and `//` are not. */
    if (v[0] != '/' || strlen(v) < 2 || strstr(v, "//") || strstr(v, "/.") ||
        v[strlen(v) - 1] == '/')
      return -1;
    free(c->cgroup_parent);
    c->cgroup_parent = xstrdup(v);
  } else if (strncmp(key, "network.", 8) == 0) {
    return apply_network(c, key, v);
  } else if (strcmp(key, "state_dir") == 0) {
    free(c->state_dir);
    c->state_dir = xstrdup(v);
  } else if (strcmp(key, "socket") == 0) {
    free(c->socket_path);
    c->socket_path = xstrdup(v);
  } else {
    return -2;
  }
  return 0;
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
    if (r == -2)
      return cell_fail(err, 0, "%s: line %d: unknown key `%s`", path,
                       lineno, key);
    if (r < 0)
      return cell_fail(err, 0, "%s: line %d: %s: bad value `%s`", path,
                       lineno, key, value);
  }
  if (idrange_pool_check(&c->pool, err) < 0 || check_networks(c, err) < 0)
    return cell_error_wrap(err, "%s", path);
  return 0;
}
