/* What celld asks of the runtime (lib/runtime) and the kernel for one
 * instance: its container's pid and deletion, its root's mounts, the stdio
 * the runtime runs with, signals and exit statuses.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_RUNTIME_H
#define CELL_DAEMON_RUNTIME_H

#include <signal.h>
#include <sys/types.h>

#include "base/error.h"
#include "daemon/daemon-types.h"

int daemon_pidfd_signal(int pidfd, int sig);
/* The parent pid of pid; -1 when it cannot be read. */
pid_t daemon_parent_of(pid_t pid);
/* The init's host pid from the runtime's state. */
int daemon_runtime_pid(struct daemon *d, const char *name, pid_t *pid,
                       cell_error **err);
/* The container's runtime state goes (logged, unless there is none). */
void daemon_runtime_delete(struct daemon *d, const char *name);
int inst_mount_root(struct daemon *d, struct instance *in, cell_error **err);
/* The identity files (instance-identity.h) of r, written into its root
 * mounted at <dir>/rootfs at create and clone: all four, with the DNS of
 * its first network (none without a network: from loopback alone no
 * server is reachable).  <dir>/hostname.written keeps the host name they
 * say.  None of them synced: the create puts them on disk before its
 * record. */
int inst_write_identity(struct daemon *d, const struct instance_record *r,
                        const char *dir, cell_error **err);
/* At a start, its root mounted: /etc/hostname and hosts written again when
 * r's host name is no longer the one of <dir>/hostname.written (a rename,
 * `set hostname=`), before its init reads them (a systemd guest takes its
 * host name from /etc/hostname).  What the tenant wrote there stays until
 * the host name changes. */
int inst_update_names(const struct instance_record *r, const char *dir,
                      cell_error **err);
/* Unmounted (or logged). */
void daemon_rootfs_umount(struct daemon *d, const char *name);
/* stdio to /dev/null and <dir>/console.log for the runtime, and back. */
int daemon_swap_stdio(const char *dir, int saved[3], cell_error **err);
void daemon_restore_stdio(int saved[3]);
/* The exit code of a waitid: 128+N for signal N. */
int daemon_exit_code(const siginfo_t *si);
void daemon_test_pause(const char *where);

#endif
