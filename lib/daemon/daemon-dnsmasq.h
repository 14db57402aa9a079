/* celld's dnsmasq: one per network with `dnsmasq = yes` (the default),
 * serving DHCP (static leases: each instance's own addresses for its own
 * MAC), the instances' names and, on an IPv6 subnet, router advertisements
 * and DHCPv6, on that network's bridge alone.  It runs while an instance
 * is on the network (the bridge is made at the first one's start), as
 * celld's child, restarted with a growing delay when it dies, and ended
 * when celld exits.  Its files are under <state_dir>/dnsmasq/NETWORK.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_DNSMASQ_H
#define CELL_DAEMON_DNSMASQ_H

#include <stdbool.h>
#include <sys/types.h>

#include "daemon/daemon-config.h"
#include "daemon/daemon-types.h"

/* The shortest and the longest delay before a restart: the delay doubles
 * each time dnsmasq dies within DNSMASQ_STABLE_MS of its start. */
#define DNSMASQ_RESTART_MIN_MS 500
#define DNSMASQ_RESTART_MAX_MS 30000
#define DNSMASQ_STABLE_MS 30000
/* How long celld's exit waits for a dnsmasq to end after SIGTERM. */
#define DNSMASQ_STOP_WAIT_MS 2000

/* At startup, after the instances are loaded and the unused bridges
 * swept: what an earlier celld left ended, and a dnsmasq started on each
 * bridge that is up.  Never fails: a network whose dnsmasq cannot run is
 * logged and works as without one. */
void dnsmasq_init(struct daemon *d);

/* The network's bridge is up (an instance attaches): its dnsmasq runs
 * from now on, its files up to date. */
void dnsmasq_network_up(struct daemon *d, const struct daemon_network *net);
/* No instance is left on the network (its bridge removed, or its removal
 * failed): its dnsmasq is ended (reaped later, as any child) and its
 * restart delay dropped, so that celld holds no fd for it. */
void dnsmasq_network_down(struct daemon *d, const struct daemon_network *net);

/* Instances came, went or were renamed: each network's files rewritten
 * where they changed, and its dnsmasq told to read them again (SIGHUP). */
void dnsmasq_sync(struct daemon *d);

/* The pid of a dnsmasq of celld's: reaped, forgotten, restarted in a
 * while if still wanted.  false: not one of them. */
bool dnsmasq_on_exit(struct daemon *d, pid_t pid);
/* An event of a dnsmasq's pidfd, of its restart timer. */
void dnsmasq_on_pidfd(struct daemon *d, int fd);
void dnsmasq_on_timer(struct daemon *d, int fd);

/* At celld's exit: every dnsmasq ended (SIGTERM, a bounded wait, then
 * SIGKILL) and forgotten. */
void dnsmasq_stop(struct daemon *d);

#endif
