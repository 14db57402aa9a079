/* The commands that act on a live container through its cgroup: pause,
 * resume, ps, update, events.  Each opens and locks the container like the
 * rest of the lifecycle (container.h) and returns an error for the CLI to
 * print; nothing here writes to stdout. */
#ifndef CELL_CONTAINER_CGROUP_H
#define CELL_CONTAINER_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"
#include "oci/spec.h"

/* Freeze every process of a running (or created) container: "container
 * not running" otherwise, as runc says it (also when already paused). */
int container_pause(const char *root, const char *id, cell_error **err);
/* Thaw a paused container: "container not paused" otherwise. */
int container_resume(const char *root, const char *id, cell_error **err);

/* The host pids of every process of the container, sorted; none (and no
 * error) for a stopped container.  The caller frees *pids. */
int container_pids(const char *root, const char *id, pid_t **pids, size_t *n,
                   cell_error **err);
/* `ps ARGS` (`ps -ef` when args is NULL or empty) run on the host, its
 * output cut down to the header and the rows of the container's processes,
 * found by the header's PID column.  The caller frees *table. */
int container_ps_table(const char *root, const char *id, char *const *args,
                       char **table, cell_error **err);

/* Apply new limits to a container that is not stopped.  Only what r sets
 * changes (see cgroup_update).  Errors are cgroup_update's, unwrapped, so
 * that they start with the field they are about
 * ("linux.resources.memory.limit: ..."). */
int container_update(const char *root, const char *id,
                     const struct spec_resources *r, cell_error **err);

/* `cell events`: each event is handed to emit as one line of JSON without
 * the newline; emit returns < 0 (with *err set) to stop.
 *   stats_only: one {"type":"stats","id":ID,"data":{...}} and return;
 *   else: a stats event every interval_ms and an {"type":"oom","id":ID}
 *         whenever the cgroup's OOM kill count rises, until the container
 *         stops.
 * The container is not kept locked meanwhile. */
typedef int (*container_event_fn)(const char *json, void *data,
                                  cell_error **err);
struct container_events_opts {
  bool stats_only;
  unsigned long long interval_ms; /* > 0 */
  container_event_fn emit;
  void *data;
};
int container_events(const char *root, const char *id,
                     const struct container_events_opts *o, cell_error **err);

#endif
