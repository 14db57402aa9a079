/* celld's instances: named, long-lived containers, each with its own
 * uid/gid range, an overlay root over a shared read-only template, and a
 * durable record under <state-dir>/instances/<name>.json.
 *
 * Layout under <state-dir>/instances/<name>/ (instance-rootfs.c tells the
 * mounts):
 *   rootfs/  the merged view: the instance's root
 *   config.json  the OCI config the runtime gets
 * for an instance on an image:
 *   layers/         mount point: the store's layers, idmapped read-only
 *   disk/           the instance's writable layer, upper/ and work/, in
 *                   container-relative ids (a plain layer, for snapshots,
 *                   clones and exports); in host ids in copy mode
 *   disk.idmapped/  mount point: disk/ idmapped for the overlay
 *   lower.copy/     copy mode only: each layer copied, shifted to the range
 * for an instance on a template (the older way):
 *   lower/   the template, idmapped to the instance's range (or a chowned
 *            copy where the kernel cannot idmap it)
 *   upper/   the instance's own files (overlay upper layer), host ids
 *   work/    overlay work dir */
#ifndef CELL_INSTANCE_H
#define CELL_INSTANCE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"

#define INSTANCE_NAME_MAX 63

#define INSTANCE_MAX_NETS 8

/* The instance's place on one network, fixed at create. */
struct instance_net {
  char *network;   /* name in celld.conf */
  char *ifname;    /* inside: eth0, eth1, ... in the order given */
  char *host_veth; /* the host end, on the network's bridge */
  char *ipv4;      /* NULL when the network has no IPv4 subnet */
  char *ipv6;      /* NULL when the network has no IPv6 subnet */
};

enum restart_policy { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS };

/* A snapshot: the instance's own layers as they were, all frozen. */
struct instance_snapshot {
  char *name;
  char *created;     /* RFC 3339 */
  char **own_layers; /* "sha256:<hex>" (random names), bottom first */
};

struct instance_record {
  char *name;
  char *template_dir;   /* absolute; NULL for an instance of an image */
  char *image;          /* "sha256:<hex>" of its image; NULL: a template */
  char *image_name;     /* NAME:TAG as given at create (what it showed as) */
  char **layers;        /* its image's layers, "sha256:<hex>", bottom first */
  char **own_layers;    /* its own frozen layers (snapshots, clones) above
                           them, bottom first */
  struct instance_snapshot *snaps;
  size_t n_snaps;
  char **env;           /* the image's environment for its init: KEY=value */
  char *workdir;        /* the image's working directory for its init */
  uid_t owner;          /* uid of who created it */
  uint32_t id_start;    /* host uid = host gid of the instance's root */
  uint32_t id_count;
  int64_t memory;       /* bytes; 0: no limit */
  int64_t cpu_milli;    /* thousandths of a cpu; 0: no limit */
  int64_t pids;         /* 0: no limit */
  char *pool;           /* the pool its disk is in ("default": the state dir) */
  int64_t disk;         /* bytes its disk may hold; 0: no limit */
  enum restart_policy restart;
  int restart_max;      /* on-failure:N; 0: no bound */
  int restarts;         /* restarts done by the policy since the last start */
  bool autostart;
  char *hostname;
  char **init;          /* argv */
  char *init_user;      /* "UID:GID" its init runs as (an application
                           image's User, resolved in the image at create);
                           NULL: root */
  uint32_t *init_groups; /* and its groups (its gid first); none for root */
  size_t n_init_groups;
  int halt_signal;      /* what stops its init; 0 (older records): SIGTERM */
  char *state;          /* created | running | stopped */
  int exit_code;        /* -1: unknown; 128+N: killed by signal N */
  char *exit_time;      /* RFC 3339; NULL: never exited */
  char *created;        /* RFC 3339 */
  char *rootfs_mode;    /* "idmap" or "copy" */
  char *cgroup;         /* its cgroup path, fixed at create: <cgroup_parent>/<name> */
  struct instance_net nets[INSTANCE_MAX_NETS]; /* none: loopback only */
  size_t n_nets;
  /* The settings without a field of their own above, KEY=VALUE
   * (instance-settings.h: swap, cpuset, env.*, mount.*, device.*, ...). */
  char **settings;
  char **pending;  /* keys set while running that wait for the next start */
  char **profiles; /* the profiles it uses, in the order they apply */
  char **own_keys; /* keys set on it (create flags, set): profiles skip them */
};

void instance_record_free(struct instance_record *r);
/* The MAC of a NIC's end inside, the same wherever and whenever it runs
 * with its addresses (a start, a restore, a migration that kept them):
 * its neighbours' ARP and NDP caches stay right.  From its addresses (its
 * host end's name when it has none), unique on a network as they are. */
void instance_net_mac(const struct instance_net *n, uint8_t mac[6]);
/* Forget the layers it holds (an instance being destroyed). */
void instance_record_drop_layers(struct instance_record *r);

/* [A-Za-z0-9][A-Za-z0-9_.-]*, at most INSTANCE_NAME_MAX bytes. */
int instance_check_name(const char *name, cell_error **err);
/* no | on-failure | on-failure:N | always */
int instance_parse_restart(const char *s, enum restart_policy *p, int *max,
                           cell_error **err);
/* "on-failure:3" etc; the caller frees. */
char *instance_restart_string(enum restart_policy p, int max);

/* The record as JSON (one line) and back. */
char *instance_record_to_json(const struct instance_record *r, bool pretty);
int instance_record_from_json(const char *text, size_t len,
                              struct instance_record **out, cell_error **err);

/* <name>.json under dirfd: temp + fsync + rename + fsync of dirfd. */
int instance_record_save(int dirfd, const struct instance_record *r,
                         cell_error **err);
int instance_record_remove(int dirfd, const char *name, cell_error **err);
/* Every *.json record under dirfd; records that cannot be read are
 * reported through warn (name, error) and skipped. */
int instance_record_load_all(int dirfd, struct instance_record ***out,
                             size_t *n,
                             void (*warn)(const char *file, const char *msg),
                             cell_error **err);

/* Open the template directory path for an instance, O_RDONLY|O_DIRECTORY;
 * every use of the template after the check goes through this fd, so that
 * a rename or a symlink swapped in meanwhile cannot redirect it.
 * allowed NULL: the caller is trusted (root), any directory, symlinks
 * followed.  Otherwise path must be strictly beneath one of the allowed
 * directories (as written, or as they resolve), and what lies below that
 * one is opened without following a symlink and without `..`; a refusal
 * has errnum EACCES.  *canonical (when not NULL) gets where the template
 * is, for the record and for display. */
int instance_template_open(const char *path, char *const *allowed,
                           char **canonical, cell_error **err);
/* A template must be a directory that looks like a root filesystem:
 * bin/sh (or sbin/init) and etc/ present, symlinks resolved inside the
 * template (never on the host).  shown names it in the error. */
int instance_check_template(int templatefd, const char *shown,
                            cell_error **err);

#endif
