/* lxcfs's files bound over an instance's /proc and /sys files. */
#include "daemon/instance-lxcfs.h"

#include "base/util.h"

/* LXC's list (lxcfs's README): what `free`, `top`, `uptime` and
 * `getconf _NPROCESSORS_ONLN` read.  Each destination is one the runtime
 * allows inside /proc (rootfs.c's proc_allowed, as runc's). */
const char *const instance_lxcfs_files[] = {
    "proc/cpuinfo", "proc/diskstats", "proc/loadavg", "proc/meminfo",
    "proc/stat",    "proc/swaps",     "proc/uptime",
    "sys/devices/system/cpu/online",
    NULL,
};

static void gen_bind(struct json_gen *g, const char *lxcfs_dir,
                     const char *file) {
  cleanup_free char *source = xasprintf("%s/%s", lxcfs_dir, file);
  cleanup_free char *dest = xasprintf("/%s", file);
  json_gen_object_open(g);
  json_gen_kv_string(g, "destination", dest);
  json_gen_kv_string(g, "type", "bind");
  json_gen_kv_string(g, "source", source);
  json_gen_key(g, "options");
  json_gen_array_open(g);
  /* lxcfs mounts nosuid,nodev: in the instance's user namespace those
   * flags are locked, and a remount that dropped them would fail. */
  const char *opts[] = {"bind", "nosuid", "nodev", "noexec"};
  for (size_t i = 0; i < sizeof(opts) / sizeof(*opts); i++)
    json_gen_string(g, opts[i]);
  json_gen_array_close(g);
  json_gen_object_close(g);
}

void instance_lxcfs_gen_mounts(struct json_gen *g,
                               const struct json_value *defaults,
                               const char *lxcfs_dir) {
  json_gen_array_open(g);
  for (size_t i = 0; defaults && defaults->type == JSON_ARRAY &&
                     i < defaults->u.array.len; i++)
    json_gen_value(g, defaults->u.array.items[i]);
  for (size_t i = 0; lxcfs_dir && instance_lxcfs_files[i]; i++)
    gen_bind(g, lxcfs_dir, instance_lxcfs_files[i]);
  json_gen_array_close(g);
}
