/* linux.sysctl: each key checked against the namespaces that make it
 * safe to set (net.* needs a network namespace of the container's own;
 * kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* need an ipc one);
 * every other key is refused. */
#ifndef CELL_SYSCTL_H
#define CELL_SYSCTL_H

#include "base/error.h"
#include "oci/spec.h"

/* In the runtime: "linux.sysctl: `kernel.domainname` cannot be set in a
 * container" / "... needs a network namespace". */
int sysctl_validate(const struct spec *s, cell_error **err);
/* In the container process, before pivot_root: writes sys/... beneath
 * procfs, a procfs root verified before any namespace was joined
 * (base/procfs.h). */
int sysctl_apply(const struct spec *s, int procfs, cell_error **err);

#endif
