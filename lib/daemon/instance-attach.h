/* Host directories and devices attached to a running instance: the
 * source opened once on the host (no symlink in its path) and used by fd,
 * cloned with open_tree, idmapped to the instance's user namespace (a
 * directory, so that its files keep the owners the instance sees), and
 * moved onto a target resolved inside the instance's root by a child that
 * joined its mount namespace.  The child is bounded in time: an instance
 * cannot hold celld up by making the lookup hang. */
#ifndef CELL_INSTANCE_ATTACH_H
#define CELL_INSTANCE_ATTACH_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/error.h"
#include "daemon/instance.h"

/* An O_PATH fd of a host directory (absolute, no symlink on the way). */
int attach_open_dir(const char *path, cell_error **err);
/* A character device node major:minor named name in dir (made 0700 when
 * missing), owned by root (the instance's root on the host) and mode 0660;
 * an O_PATH fd of it. */
int attach_make_device(const char *dir, const char *name, unsigned major,
                       unsigned minor, uid_t root, cell_error **err);
/* srcfd's tree (a directory, idmapped; or a device node as it is) on
 * target inside the instance whose init is pid, read-only when ro.
 * The target and its parents are made when missing; none of it may be a
 * symlink. */
int attach_mount(pid_t pid, int srcfd, bool is_dir, const char *target,
                 bool ro, cell_error **err);
/* What is mounted on target inside the instance goes (lazily). */
int attach_umount(pid_t pid, const char *target, cell_error **err);
/* One mount.NAME setting (key, value) attached to the instance whose init
 * is pid: its source checked and opened on the host. */
int attach_setting(pid_t pid, const char *key, const char *value,
                   cell_error **err);
/* One device.NAME setting (key, value: its path) given to the running
 * instance whose init is pid: a node of its own made in devdir, owned by
 * root (the instance's root on the host), bound on that path inside.
 * Nothing is left when it fails. */
int attach_device(pid_t pid, const char *key, const char *value,
                  const char *devdir, uid_t root, cell_error **err);
/* The device of that setting taken away: its bind inside and the empty
 * file under it, and its node in devdir. */
int attach_detach_device(pid_t pid, const char *key, const char *value,
                         const char *devdir, cell_error **err);
/* The node NAME in devdir removed (gone already is fine). */
void attach_remove_device_node(const char *devdir, const char *name);
/* Every mount.* and device.* setting of r (at its start, before its init
 * runs); the devices' nodes are made in devdir. */
int attach_settings(const struct instance_record *r, pid_t pid,
                    const char *devdir, cell_error **err);
/* Where a mount.NAME or device.NAME setting mounts inside (the caller
 * frees); NULL when value is none of them. */
char *attach_target(const char *key, const char *value);
/* The host name of the running instance's UTS namespace. */
int attach_hostname(pid_t pid, const char *hostname, cell_error **err);

#endif
