/* linux.personality: the execution domain of the container's program
 * (LINUX32 makes `uname -m` say i686 on x86_64). */
#ifndef CELL_PERSONALITY_H
#define CELL_PERSONALITY_H

#include "base/error.h"
#include "oci/spec.h"

/* In the container process, before exec (the persona survives execve).
 * Nothing to do without linux.personality.  The spec defines no flag yet:
 * any is refused, naming it ("linux.personality.flags[0]: unknown flag
 * `X`"). */
int personality_apply(const struct spec *s, cell_error **err);

#endif
