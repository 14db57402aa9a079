/* The container's process as the spec describes it: rlimits, OOM score,
 * user and groups, umask, cwd, and finding the program to exec.
 * Called in the container process, in the order container-init.c gives. */
#ifndef CELL_PROCESS_H
#define CELL_PROCESS_H

#include "error.h"
#include "spec.h"

int process_set_rlimits(const struct spec_process *p, cell_error **err);
int process_set_oom_score_adj(const struct spec_process *p, cell_error **err);
/* setgroups(additionalGids), setresgid, setresuid, umask.  Capabilities
 * are kept across the uid change by the capability code. */
int process_set_user(const struct spec_process *p, cell_error **err);
int process_set_no_new_privileges(const struct spec_process *p,
                                  cell_error **err);
/* chdir into process.cwd; the cwd must be a directory of the container's
 * filesystem (the caller has already pivoted into it). */
int process_chdir(const struct spec_process *p, cell_error **err);
/* The path to exec for args[0]: as given when it contains '/', else looked
 * up in the PATH of process.env (not the runtime's).  Must be an
 * executable regular file. */
int process_find_executable(const struct spec_process *p, char **path,
                            cell_error **err);

#endif
