/* An instance's identity in its own root: /etc/hostname, /etc/hosts,
 * /etc/resolv.conf and /etc/machine-id, written at create (the first two
 * again when its host name changes) into the instance's writable layer
 * (never into its template), and what its init is (systemd, busybox, sysvinit), which
 * decides the halt signal and whether it needs celld's default inittab. */
#ifndef CELL_INSTANCE_IDENTITY_H
#define CELL_INSTANCE_IDENTITY_H

#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "daemon/instance.h"

/* "NAME\n". */
char *identity_hostname_text(const char *hostname);
/* localhost lines, then the instance's name on each of its static
 * addresses (or on 127.0.1.1 when it has none, as Debian does), so that
 * `hostname -f` resolves.  A dotted name also gets its first label. */
char *identity_hosts_text(const struct instance_record *r);
/* One `nameserver` line per address of dns (comma-separated), and a
 * `search` line for search (NULL: none); with no dns, a comment that says
 * so and where to set one. */
char *identity_resolv_text(const char *dns, const char *search);
/* 32 lowercase hex digits and a newline, from 16 random bytes made a
 * version 4 UUID as systemd makes its own (never all zeros). */
void identity_machine_id_text(const uint8_t bytes[16], char out[34]);

/* Write the four files into the root at rootfd (the instance's mounted
 * root), owned by owner (the instance's root) with mode 0644.  /etc is
 * resolved inside that root (never out of it), and each file is made new and
 * renamed over what the template had: a template's symlink at
 * /etc/hostname is replaced, never followed.  Not synced: the caller (a
 * create, whose record comes after) puts them on disk, with the rest of
 * the new instance's files, in one go. */
int identity_write(int rootfd, const struct instance_record *r,
                   const char *dns, const char *search, uid_t owner,
                   cell_error **err);
/* /etc/hostname and /etc/hosts alone, as identity_write makes them: what
 * names the instance, written again when its host name changed (a rename,
 * `set hostname=`).  Its resolv.conf and machine-id stay: the same machine
 * (its journal is kept under /var/log/journal/MACHINE-ID).  On disk
 * before it returns. */
int identity_write_names(int rootfd, const struct instance_record *r,
                         uid_t owner, cell_error **err);

enum init_kind { INIT_OTHER, INIT_SYSTEMD, INIT_BUSYBOX, INIT_SYSVINIT };

/* What the program at path (inside the root at rootfd) is, following its
 * symlinks inside that root: a link chain through `systemd` names it, one
 * through `busybox` when path is called init (busybox runs the applet its
 * argv[0] names); an ELF binary that says it is sysvinit is sysvinit. */
enum init_kind identity_init_kind(int rootfd, const char *path);
/* systemd SIGRTMIN+3, busybox SIGUSR2, sysvinit SIGPWR, else SIGTERM. */
int identity_halt_signal(enum init_kind kind);

/* An OCI image's User (USER, UID, USER:GROUP, UID:GID, ...) as "UID:GID"
 * in *out and its groups in *groups (*n_groups of them, to free): names
 * looked up in the /etc/passwd and /etc/group of the root at rootfd
 * (resolved inside it, regular files only, bounded in size), as docker
 * does: a user's group its passwd entry's (root's when a numeric user has
 * none); its groups that gid, then, when no group is named, those of
 * /etc/group that list the passwd entry's name.  Every id must be below
 * id_count (the instance's range). */
int identity_image_user(int rootfd, const char *spec, uint32_t id_count,
                        char **out, uint32_t **groups, size_t *n_groups,
                        cell_error **err);

#endif
