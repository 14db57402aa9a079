/* An instance's OOM kills: counted from the kernel's notice (an eventfd on
 * cgroup v1, an inotify watch on v2) or, without one, read every 500 ms;
 * each new kill is an `oom` event.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_OOM_H
#define CELL_DAEMON_OOM_H

#include "base/error.h"
#include "daemon/daemon-types.h"

/* Start counting from what the count is now (the instance starts). */
void oom_watch(struct daemon *d, struct instance *in);
void oom_unwatch(struct daemon *d, struct instance *in);
/* Read the count; an `oom` event when it grew. */
void oom_check(struct daemon *d, struct instance *in);
/* The kernel's notice on fd (TAG_OOM_EVENT). */
void oom_on_event(struct daemon *d, int fd);
/* The periodic timer (TAG_OOM): instances without a notice, and rechecks. */
void oom_on_tick(struct daemon *d);
int oom_open_timer(struct daemon *d, cell_error **err);

#endif
