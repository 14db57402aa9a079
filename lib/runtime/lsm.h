/* process.apparmorProfile and process.selinuxLabel: the Linux security
 * module's label of the container's program, set for its exec. */
#ifndef CELL_LSM_H
#define CELL_LSM_H

#include "base/error.h"
#include "oci/spec.h"

/* In the runtime, before anything is made: a profile or label asked for on
 * a host whose LSM is not enabled is refused (the program would run
 * unconfined), as runc refuses it:
 * "process.apparmorProfile: AppArmor is not enabled on this host: ...". */
int lsm_validate(const struct spec_process *p, cell_error **err);

/* In the process about to exec, before no_new_privs and the drop of
 * capabilities: writes the profile or label to the calling thread's
 * attr/.../exec beneath procfs, a verified procfs root (base/procfs.h),
 * as runc's apparmor.ApplyProfile and selinux.SetExecLabel do. */
int lsm_apply_on_exec(int procfs, const struct spec_process *p,
                      cell_error **err);

#endif
