/* celld's startup: its instances from their records, matched against
 * what still runs.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_STARTUP_H
#define CELL_DAEMON_STARTUP_H

#include "base/error.h"
#include "daemon/daemon-types.h"

/* Load every record, sweep what a killed celld left half-made (instance
 * directories, runtime state, exec sockets, unused bridges), and adopt the
 * instances that still run (the others are cleaned up, and restarted when
 * their policy says so). */
int daemon_load_instances(struct daemon *d, cell_error **err);
/* Start the instances marked autostart that do not run. */
void daemon_autostart(struct daemon *d);

#endif
