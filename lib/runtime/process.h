/* The container's process as the spec describes it: rlimits, OOM score,
 * user and groups, umask, cwd, and finding the program to exec.
 * Called in the container process, in the order container-init.c gives. */
#ifndef CELL_PROCESS_H
#define CELL_PROCESS_H

#include "base/error.h"
#include "oci/spec.h"
#include "runtime/capabilities.h"
#include "runtime/seccomp.h"

int process_set_rlimits(const struct spec_process *p, cell_error **err);
/* Written by the runtime into /proc/PID, beneath the verified procfs root
 * procfs: the container process is non-dumpable by then, and in a user
 * namespace can no longer write its own /proc files.  The value survives
 * exec. */
int process_set_oom_score_adj_of(int procfs, pid_t pid,
                                 const struct spec_process *p,
                                 cell_error **err);
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

/* process.rlimits, user, capabilities, noNewPrivileges and seccomp, in
 * the order the kernel allows: a filter without no_new_privs needs
 * CAP_SYS_ADMIN, so it goes in before the capabilities are dropped; with
 * no_new_privs it waits for process_load_late_seccomp (exec: just before
 * execve; create: right after this, before the startContainer hooks, as
 * runc), unless it has a listener, whose fd (*notify_fd, else -1) must
 * reach listenerPath before create returns. */
int process_drop_privileges(const struct spec_process *p,
                            const struct caps_plan *caps,
                            const struct seccomp_program *seccomp,
                            int *notify_fd, cell_error **err);
/* The filter process_drop_privileges left for the last moment, if any. */
int process_load_late_seccomp(const struct spec_process *p,
                              const struct seccomp_program *seccomp,
                              cell_error **err);

#endif
