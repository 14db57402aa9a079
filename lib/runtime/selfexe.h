/* CVE-2019-5736: until it execs the container's program, the container
 * process runs the host's cell binary, and /proc/PID/exe leads to it.
 * Non-dumpable keeps the container away from it, except a container
 * without a user namespace holding CAP_SYS_PTRACE: for such a container
 * cell first re-executes itself from a sealed in-memory copy, so that
 * /proc/PID/exe is that copy, which nobody can write.  Other containers
 * do not pay for the copy. */
#ifndef CELL_SELFEXE_H
#define CELL_SELFEXE_H

#include <stdbool.h>

#include "base/error.h"
#include "oci/spec.h"

bool selfexe_needs_sealed_copy(const struct spec *s);
/* Returns only on error, or at once when already running from a sealed
 * copy. */
int selfexe_reexec_sealed(cell_error **err);

#endif
