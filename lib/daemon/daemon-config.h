/* celld.conf: `key = value` lines that set up celld (config/celld.conf
 * documents every key), read into a struct daemon_config. */
#ifndef CELL_DAEMON_CONFIG_H
#define CELL_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "base/error.h"
#include "daemon/idrange.h"
#include "net/network.h"

/* A network instances can join (celld.conf `network.NAME.KEY = VALUE`):
 * a host bridge with the gateway addresses (the first host of each subnet)
 * and, per instance, a veth pair with addresses from the subnets. */
struct daemon_network {
  char *name;
  char *bridge;               /* at most 15 characters */
  struct net_subnet subnet4;  /* has4: an IPv4 subnet */
  struct net_subnet subnet6;  /* has6: an IPv6 subnet */
  bool has4, has6;
  unsigned mtu;               /* 0: the kernel's default */
  bool keep_bridge;           /* the bridge stays when its last instance goes */
  bool filter;                /* anti-spoofing on its ports; default yes */
  char *dns;                  /* ADDR[,ADDR]: its instances' resolv.conf; NULL: the global dns */
  /* celld runs a dnsmasq on the bridge (daemon-dnsmasq.c): DHCP with
   * static leases, the instances' names, and IPv6 router advertisements;
   * default yes. */
  bool dnsmasq;
  char *domain;               /* its instances' names also as NAME.DOMAIN; NULL: none */
  char *dns_upstream;         /* ADDR[,ADDR]: where dnsmasq forwards; NULL: the global dns */
  /* With dnsmasq: the bridge's addresses, its instances' name servers
   * unless dns says otherwise (filled in by daemon_config_load). */
  char *gateway_dns;
};

/* A pool (celld.conf `pool.NAME.path = DIR`): a directory where the
 * disks of instances created in it live, <path>/instances/NAME/disk
 * (storage/pool.h says what its filesystem offers). */
struct daemon_pool {
  char *name;
  char *path;                 /* absolute; NULL until its path line */
};

/* An address celld listens on over TCP (metrics_listen): on is false
 * for `off`; text is how celld.conf wrote it, for messages. */
struct daemon_listen {
  bool on;
  struct sockaddr_storage addr;
  socklen_t len;
  char text[64];
};

#define DAEMON_DEFAULT_NETWORK "default"
/* The pool that is the state directory, there without a line. */
#define DAEMON_DEFAULT_POOL "default"
#define DAEMON_MAX_POOLS 64
#define DAEMON_MAX_NETWORKS 64

struct daemon_config {
  char *state_dir;      /* default /var/lib/cell */
  char *socket_path;    /* default /run/cell/celld.sock */
  mode_t socket_mode;   /* default 0660 */
  char *group;          /* members may manage their own instances; NULL: none */
  struct idrange_pool pool;
  int stop_timeout;     /* seconds before SIGKILL; default 10 */
  int max_connections;  /* of all peers but root together; default 256 */
  int max_connections_per_uid; /* of one peer uid (not root); default 32 */
  int exec_timeout;     /* seconds for an exec to start; default 30 */
  bool force_copy;      /* idmap = copy: never idmap (tests, old kernels) */
  uint64_t image_max_size;    /* bytes of content an image may expand to */
  uint64_t image_max_entries; /* files an image may hold */
  bool autostart;       /* start the autostart instances at startup */
  /* Not from the file: how celld says it serves (daemon-ready.c).  An fd
   * that gets "READY\n" then EOF (the parent of a daemonized celld), -1
   * for none; and a pid file to write then, NULL for none. */
  int ready_fd;
  char *pidfile;
  /* The log of operations (daemon-log.h): a file, or NULL for standard
   * error (<state_dir>/celld.log when celld runs in the background). */
  char *log_path;
  char *cgroup_parent;  /* instances' cgroups go under it; default /cell-instances */
  /* Where members' templates may be: absolute directories, `:`-separated;
   * "" none (root only); NULL the default, <state_dir>/templates. */
  char *template_dirs;
  char *dns;            /* ADDR[,ADDR]: the instances' name servers; NULL: none */
  /* The view of /proc instances get (daemon-lxcfs.c): "auto" (run the
   * lxcfs in $PATH), "off" (the host's), an executable to run, or the
   * directory an lxcfs already serves on. */
  char *lxcfs;
  /* Where celld serves its metrics over HTTP (daemon-http.c); off by
   * default. */
  struct daemon_listen metrics_listen;
  /* The file whose content a request to metrics_listen must carry as
   * `Authorization: Bearer TOKEN` (daemon-http.c); NULL: none asked. */
  char *metrics_token_file;
  struct daemon_network networks[DAEMON_MAX_NETWORKS];
  size_t n_networks;    /* networks[0] is `default` unless the config drops it */
  struct daemon_pool pools[DAEMON_MAX_POOLS]; /* besides `default` */
  size_t n_pools;
};

/* The network of that name; NULL when there is none. */
const struct daemon_network *daemon_config_network(const struct daemon_config *c,
                                                   const char *name);

/* The directory of the pool of that name (`default`: the state
 * directory); NULL when there is none. */
const char *daemon_config_pool_path(const struct daemon_config *c,
                                    const char *name);

/* The name servers of an instance on net (NULL: none on a network): the
 * network's dns, else its dnsmasq (the bridge's addresses), else the
 * global one; NULL when there is none. */
const char *daemon_config_dns(const struct daemon_config *c,
                              const struct daemon_network *net);
/* The search domain of an instance on net: the network's domain when its
 * dnsmasq is the instance's name server, else NULL. */
const char *daemon_config_dns_search(const struct daemon_config *c,
                                     const struct daemon_network *net);
/* Where the network's dnsmasq forwards what it does not know: its
 * dns_upstream, else the global dns; NULL: nowhere. */
const char *daemon_config_dns_upstream(const struct daemon_config *c,
                                       const struct daemon_network *net);

/* The directories members' templates must be in (template_dirs, or
 * <state_dir>/templates when unset), a new NULL-terminated list, never
 * NULL: empty when there are none (members may create nothing). */
char **daemon_config_template_dirs(const struct daemon_config *c);

void daemon_config_defaults(struct daemon_config *c);
void daemon_config_clear(struct daemon_config *c);
/* key = value lines, `#` comments; errors name the file and line. */
int daemon_config_load(struct daemon_config *c, const char *path,
                       cell_error **err);

/* The keys celld.conf takes, for checking that config/celld.conf documents
 * each: the i-th one's name, NULL past the last.  daemon_config_network_key
 * gives the KEY of the network.NAME.KEY keys. */
const char *daemon_config_key(size_t i);
const char *daemon_config_network_key(size_t i);
/* The KEY of the pool.NAME.KEY keys likewise. */
const char *daemon_config_pool_key(size_t i);

#endif
