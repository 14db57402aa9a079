/* A procfs the runtime has verified itself, for every write to /proc.
 *
 * A path under /proc is resolved in the caller's mount namespace, and that
 * may be a namespace someone else controls: a container whose mount
 * namespace a config joins decides what is mounted at its /proc, and could
 * point the runtime's writes (timens_offsets, uid_map, sysctls, LSM
 * attributes, as root of the host) at a file of its choice.  So the
 * runtime opens a procfs root before it joins anything, checks that it is
 * one (filesystem magic, root inode), and opens every file beneath that fd
 * with no symlink, no magic link and no mount crossing, checking the file
 * again before it is written.
 *
 * The root is the host's /proc (the caller's, as it is before any join):
 * a container's mounts never reach it (its mount namespace is another,
 * its mounts do not propagate back), and a mount over any file beneath it
 * can only make an open fail (EXDEV), never lead it elsewhere.  So it is
 * as safe as a private instance, and cheaper: a private instance is a
 * detached mount whose release waits for an RCU grace period (0.2 to
 * 10 ms at every run).  A private instance is the fallback where the
 * host's /proc would refuse the runtime's writes: a mount on the way to
 * the sysctls (a container engine's read-only /proc/sys), or a /proc of
 * another pid namespace than ours, which numbers processes otherwise. */
#ifndef CELL_PROCFS_H
#define CELL_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

/* PROCFS_SELF: the calling process, as the procfs in hand numbers it
 * (its "self" link read, not followed: getpid() is wrong in another pid
 * namespace). */
#define PROCFS_SELF ((pid_t)0)

/* An fd (O_CLOEXEC) of a verified procfs root, or -1 with *err set. */
int procfs_open_root(cell_error **err);

/* Is fd the root directory of a procfs? */
bool procfs_is_root(int fd);

/* Open path ("sys/net/ipv4/ip_forward", "12/uid_map") beneath the procfs
 * root procfs: no "..", no symlink, no magic link, no other mount on the
 * way; the file opened must be procfs too. */
int procfs_open_beneath(int procfs, const char *path, int flags,
                        cell_error **err);

/* Open /proc/PID/file (PID may be PROCFS_SELF) beneath procfs. */
int procfs_open_pid_file(int procfs, pid_t pid, const char *file, int flags,
                         cell_error **err);

/* Open /proc/thread-self/file: the calling thread's own (LSM attributes
 * must be written by the thread they apply to). */
int procfs_open_thread_file(int procfs, const char *file, int flags,
                            cell_error **err);

/* Read all of /proc/PID/file (PID may be PROCFS_SELF) into a
 * NUL-terminated buffer: for files whose content decides what we do
 * (mountinfo), which a /proc of someone else's could forge. */
int procfs_read_pid_file(int procfs, pid_t pid, const char *file, char **out,
                         cell_error **err);

/* Write data to /proc/PID/file in one write(2) (the kernel parses each
 * write of a knob on its own).  Errors name the file as /proc/PID/file. */
int procfs_write_pid_file(int procfs, pid_t pid, const char *file,
                          const char *data, size_t len, cell_error **err);

#endif
