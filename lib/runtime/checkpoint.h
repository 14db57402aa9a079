/* `cell checkpoint`: a running container's processes saved by criu into an
 * image directory, runc's way, so that `cell restore` (restore.h) brings
 * them back from it, here or on another machine. */
#ifndef CELL_CHECKPOINT_H
#define CELL_CHECKPOINT_H

#include <stdbool.h>

#include "base/error.h"
#include "runtime/criu.h"

/* What the image directory holds besides criu's images: the targets of the
 * container process's fds 0, 1 and 2 ("pipe:[1234]", "/dev/null"), a JSON
 * array, from which restore learns which of its own fds stand for them. */
#define CHECKPOINT_DESCRIPTORS "descriptors.json"

struct checkpoint_opts {
  const char *root;
  const char *id;
  struct criu_opts criu;
  bool leave_running;
  bool pre_dump;           /* memory only, the container keeps running */
  const char *parent_path; /* the previous (pre-)dump, relative to the image */
  const char *page_server; /* ADDRESS:PORT */
  int status_fd;           /* -1: none */
};

/* Freeze the container's cgroup, have criu dump it, then thaw it
 * (--leave-running, --pre-dump) or delete the container, as runc does.
 * Fails before touching anything when criu cannot work on this kernel, or
 * when the container is not running or paused; a failed dump thaws it and
 * removes an image directory that it made. */
int container_checkpoint(const struct checkpoint_opts *o, cell_error **err);

#endif
