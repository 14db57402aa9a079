/* An instance's settings, one table: each key's name, the form its value
 * takes, where the record keeps it, and how it reaches a running
 * instance.  set, get, create's profiles and the profiles themselves all
 * go through it, so a new key is one row of the table. */
#ifndef CELL_INSTANCE_SETTINGS_H
#define CELL_INSTANCE_SETTINGS_H

#include <stdbool.h>

#include "base/error.h"
#include "daemon/instance.h"

/* How a new value reaches an instance that runs. */
enum setting_effect {
  EFFECT_AT_ONCE,     /* celld reads it when it needs it (restart policy,
                         autostart, halt signal) */
  EFFECT_LIMITS,      /* its cgroup's limits, updated live */
  EFFECT_DISK,        /* its disk's quota, live */
  EFFECT_HOSTNAME,    /* its UTS namespace, live */
  EFFECT_MOUNT,       /* a host directory mounted in (or out), live */
  EFFECT_DEVICE,      /* a node bound in (or out) and its device cgroup,
                         live */
  EFFECT_NETWORKS,    /* NICs added and removed live; a NIC that stays
                         but changes its address waits for a start */
  EFFECT_ENV,         /* processes started from now on (exec); its init at
                         the next start */
  EFFECT_NEXT_START,  /* only a new start can give it: pending until then */
};

struct setting;

/* The row of key (a family such as env.KEY, mount.NAME, device.NAME
 * matches on its prefix); NULL, err naming the key, when there is none. */
const struct setting *setting_find(const char *key, cell_error **err);
enum setting_effect setting_effect(const struct setting *s);
/* Host mounts and devices reach the host's files: root's alone. */
bool setting_root_only(const struct setting *s);
/* The member of create's request that sets it too (its flags win over
 * profiles); NULL when none does. */
const char *setting_create_field(const struct setting *s);

/* Check value and keep it in r; an error is one line naming the key and
 * the form expected.  An empty value removes a family's member (env.X=,
 * mount.X=, device.X=). */
int setting_put(struct instance_record *r, const char *key, const char *value,
                cell_error **err);
/* "KEY=VALUE" split and put. */
int setting_put_pair(struct instance_record *r, const char *pair,
                     cell_error **err);
/* The value as set would take it; NULL when a family's member is unset. */
char *setting_get(const struct instance_record *r, const char *key);
/* The form of values of every key, one "KEY=FORM" a line (cellctl's help). */
char *settings_forms(void);

/* The value r keeps for a key without a field of its own, or NULL. */
const char *instance_setting(const struct instance_record *r, const char *key);

/* The blkio.* settings as OCI's linux.resources.blockIO member (nothing
 * when there are none). */
struct json_gen;
void settings_gen_block_io(struct json_gen *g, const struct instance_record *r);

/* A networks= value as create's `networks` array (JSON text). */
char *settings_networks_json(const char *value);
/* The kept value of key goes (a planned change, once made). */
void instance_setting_drop(struct instance_record *r, const char *key);

/* The env.KEY=VALUE settings as KEY=VALUE (NULL when none). */
char **instance_settings_env(const struct instance_record *r);

/* A host mount's value, SRC:DST[:ro], taken apart (the caller frees). */
int setting_parse_mount(const char *value, char **src, char **dst, bool *ro,
                        cell_error **err);
/* A device on the allow list: its major and minor. */
int setting_device_numbers(const char *path, unsigned *major, unsigned *minor,
                           cell_error **err);

/* key in list (pending, own_keys); added once, removed. */
bool settings_list_has(char *const *list, const char *key);
void settings_list_add(char ***list, const char *key);
void settings_list_remove(char **list, const char *key);

/* A CPU limit (thousandths of a CPU) beyond the CPUs celld may run on is
 * a quota no process can reach, most likely a typo: refused, naming how
 * many there are.  cpuset, not cpus, picks which. */
int instance_cpus_fit_host(int64_t milli, cell_error **err);

#endif
