/* What a network's dnsmasq is given (daemon-dnsmasq.c runs it): its
 * command line, and the text of the two files it re-reads on SIGHUP, the
 * instances' names (`--addn-hosts`) and their static DHCP leases
 * (`--dhcp-hostsfile`).  Text only: no file is written here. */
#ifndef CELL_DNSMASQ_FILES_H
#define CELL_DNSMASQ_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/daemon-config.h"
#include "daemon/instance.h"

/* "ADDR NAME NAME.DOMAIN" for each address of each record on the network
 * (no DOMAIN: NAME alone); records whose names are not one DNS label are
 * left out (a dotted name could pass for a name of the world). */
char *dnsmasq_hosts_text(const struct daemon_network *net,
                         const struct instance_record *const *recs, size_t n);

/* "MAC,IPV4,[IPV6]" for each record on the network: its own MAC
 * (instance_net_mac) gets its own addresses.  No name:
 * names are the hosts file's alone. */
char *dnsmasq_dhcp_hosts_text(const struct daemon_network *net,
                              const struct instance_record *const *recs,
                              size_t n);

/* Where a network's dnsmasq keeps its files, under dir
 * (<state_dir>/dnsmasq/NAME). */
struct dnsmasq_paths {
  char *dir, *pidfile, *leases, *hosts, *dhcp_hosts, *log;
};
void dnsmasq_paths_init(struct dnsmasq_paths *p, const char *state_dir,
                        const char *network);
void dnsmasq_paths_clear(struct dnsmasq_paths *p);

/* The command line: bound to the bridge alone, no /etc/dnsmasq.conf, no
 * /etc/resolv.conf, no /etc/hosts, in the foreground, its log on stderr;
 * upstream (ADDR[,ADDR], NULL: none) for what it does not know; user
 * (NULL: root) once its sockets are open.  A NULL-terminated vector the
 * caller frees with cell_strv_free. */
char **dnsmasq_argv(const char *binary, const struct daemon_network *net,
                    const struct dnsmasq_paths *p, const char *upstream,
                    const char *user);

#endif
