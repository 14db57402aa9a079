/* An instance's identity in its own root: /etc/hostname, /etc/hosts,
 * /etc/resolv.conf and /etc/machine-id, written at create into the
 * instance's writable layer (never into its template), and what its init
 * is (systemd, busybox, sysvinit), which decides the halt signal and
 * whether it needs celld's default inittab. */
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
 * /etc/hostname is replaced, never followed. */
int identity_write(int rootfd, const struct instance_record *r,
                   const char *dns, const char *search, uid_t owner,
                   cell_error **err);

enum init_kind { INIT_OTHER, INIT_SYSTEMD, INIT_BUSYBOX, INIT_SYSVINIT };

/* What the program at path (inside the root at rootfd) is, following its
 * symlinks inside that root: a link chain through `systemd` names it, one
 * through `busybox` when path is called init (busybox runs the applet its
 * argv[0] names); an ELF binary that says it is sysvinit is sysvinit. */
enum init_kind identity_init_kind(int rootfd, const char *path);
/* systemd SIGRTMIN+3, busybox SIGUSR2, sysvinit SIGPWR, else SIGTERM. */
int identity_halt_signal(enum init_kind kind);

/* An OCI image's User (USER, UID, USER:GROUP, UID:GID, ...) as "UID:GID"
 * in *out: names looked up in the /etc/passwd and /etc/group of the root
 * at rootfd (resolved inside it), a user's group its passwd entry's
 * (root's when a numeric user has none), as docker does.  Both ids must
 * be below id_count (the instance's range). */
int identity_image_user(int rootfd, const char *spec, uint32_t id_count,
                        char **out, cell_error **err);

#endif
