/* process.capabilities with libcap: the five sets, kept exactly across the
 * change to process.user (securebits / PR_SET_KEEPCAPS as needed). */
#ifndef CELL_CAPABILITIES_H
#define CELL_CAPABILITIES_H

#include <stdint.h>

#include "base/error.h"
#include "oci/spec.h"

struct caps_plan; /* the resolved sets, ready to apply */

enum caps_set {
  CAPS_BOUNDING,
  CAPS_EFFECTIVE,
  CAPS_INHERITABLE,
  CAPS_PERMITTED,
  CAPS_AMBIENT,
  CAPS_SET_COUNT
};

/* In the runtime, at create: resolve names ("CAP_SYS_ADMIN").  A name that
 * is no capability at all is an error naming it
 * ("process.capabilities.bounding[2]: unknown capability `CAP_FOO`"); a
 * real capability this kernel does not know is skipped with a log_warn.
 * A NULL process.capabilities means: drop everything (like runc). */
int caps_plan_make(const struct spec_process *p, struct caps_plan **out,
                   cell_error **err);
void caps_plan_free(struct caps_plan *plan);
/* One resolved set as a mask of capability numbers (bit 1 << CAP_KILL ...),
 * for tests and debug logs. */
uint64_t caps_plan_mask(const struct caps_plan *plan, enum caps_set set);

/* In the container process, before setresuid: drop what is not in the
 * bounding set and arrange for the permitted set to survive the uid change. */
int caps_before_setuid(const struct caps_plan *plan, cell_error **err);
/* After setresuid: set effective/permitted/inheritable, then ambient. */
int caps_after_setuid(const struct caps_plan *plan, cell_error **err);

#endif
