/* linux.seccomp with libseccomp.  The filter is compiled in the runtime
 * (errors at create, before any process exists) and loaded by the
 * container process as its last step before exec (see
 * seccomp_program_load for when it must come earlier). */
#ifndef CELL_SECCOMP_H
#define CELL_SECCOMP_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"
#include "oci/spec.h"

struct seccomp_program; /* a compiled BPF program */

/* Compile linux.seccomp (NULL → *out = NULL, nothing to load).  Errors
 * name the field: "linux.seccomp.syscalls[3].action: unknown action
 * `SCMP_ACT_FOO`", "linux.seccomp.syscalls[0].args[1].op: unknown operator".
 * Syscall names unknown to this kernel/libseccomp are skipped with a
 * log_debug, as runc does.  When the default action refuses, a syscall
 * newer than any the profile names, and clone3 unless the profile names
 * it, answer ENOSYS instead, so that programs fall back (see seccomp.c). */
int seccomp_compile(const struct spec_seccomp *s, struct seccomp_program **out,
                    cell_error **err);
void seccomp_program_free(struct seccomp_program *p);

/* seccomp_compile through a cache of compiled programs in cache_dirfd
 * (<root>/.seccomp-cache): compiling a docker-sized profile takes ~15 ms of
 * libseccomp work, reading it back ~20 us.  An entry holds its full key
 * (every field of the profile, the libseccomp version and the kernel
 * release), compared byte for byte, so a hash collision can never load the
 * wrong filter.  A broken or unwritable cache only costs the compile. */
int seccomp_compile_cached(const struct spec_seccomp *s, int cache_dirfd,
                           struct seccomp_program **out, cell_error **err);
/* True when the program uses SCMP_ACT_NOTIFY: seccomp_program_load then
 * returns a listener fd that must reach listenerPath (through the runtime,
 * seccomp_send_notify_fd). */
bool seccomp_program_notifies(const struct seccomp_program *p);

/* In the container process: install the filter (with the spec's flags).
 * When the profile uses SCMP_ACT_NOTIFY, *notify_fd gets the listener fd,
 * close-on-exec (else -1).  Without no_new_privs the kernel wants
 * CAP_SYS_ADMIN: call it then before the capabilities are dropped.
 * (Not "seccomp_load": libseccomp exports that name.) */
int seccomp_program_load(const struct seccomp_program *p, int *notify_fd,
                         cell_error **err);

/* Send a notify fd to linux.seccomp.listenerPath with the container state
 * JSON and listenerMetadata, as runtime-spec's seccomp notify describes.
 * process_pid is the confined process (an exec'd one); 0 for the
 * container's own, the state's pid. */
int seccomp_send_notify_fd(const struct spec_seccomp *s, int notify_fd,
                           pid_t process_pid, const char *state_json,
                           cell_error **err);

#endif
