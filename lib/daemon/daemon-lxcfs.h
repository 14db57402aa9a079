/* celld's lxcfs: the FUSE filesystem whose files, bound over an
 * instance's /proc files, show the instance's own memory, cpus, uptime and
 * load (celld.conf `lxcfs`).  celld runs one on <state_dir>/lxcfs as its
 * child, supervises it (restarted at most once per LXCFS_RESTART_MS) and
 * ends it when it exits with no instance running (else the next celld
 * uses it again); or it uses one that serves on a configured directory.
 * Without one, instances start with the host's /proc.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_LXCFS_H
#define CELL_DAEMON_LXCFS_H

#include <sys/types.h>

#include "daemon/daemon-types.h"

/* The shortest time between two starts of lxcfs. */
#define LXCFS_RESTART_MS 10000
/* How long celld's startup waits for lxcfs's mount to appear. */
#define LXCFS_MOUNT_WAIT_MS 3000

/* At startup: the lxcfs an earlier celld left serving used again, or
 * what it left (a dead mount, a stuck lxcfs) removed and lxcfs started (a
 * bounded wait for its mount); or the configured mount checked.  Never fails: without lxcfs, the reason is logged once and
 * shown by lxcfs_proc_view. */
void lxcfs_init(struct daemon *d);

/* The lxcfs mount to bind an instance's files from, NULL when there is
 * none now.  Looks at the mount table only: never at the FUSE files,
 * which a stuck lxcfs would answer never. */
const char *lxcfs_dir_for_start(struct daemon *d);

/* What instances starting now see: "lxcfs", or "host (lxcfs
 * unavailable: REASON)"; the caller frees. */
char *lxcfs_proc_view(struct daemon *d);

/* The pid of the lxcfs celld runs; 0 when none. */
pid_t lxcfs_pid(const struct daemon *d);

/* It exited (SIGCHLD for its pid). */
void lxcfs_on_exit(struct daemon *d);
/* An event of a pidfd of lxcfs: it exited, if fd is still its pidfd. */
void lxcfs_on_pidfd(struct daemon *d, int fd);
/* The restart delay is over. */
void lxcfs_on_timer(struct daemon *d);

/* At celld's exit: its lxcfs ended and unmounted, unless instances still
 * run (their /proc files are binds of it). */
void lxcfs_stop(struct daemon *d);

#endif
