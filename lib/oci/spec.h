/* config.json (OCI runtime-spec 1.x, Linux) as C structs.
 *
 * Conventions: strings are heap-allocated, NULL when absent.  String lists
 * are NULL-terminated vectors (char **), NULL when absent.  Struct lists are
 * (pointer, count) pairs.  Optional scalars are pointers (NULL = absent) so
 * that "absent" and "zero" stay different, as the spec requires. */
#ifndef CELL_SPEC_H
#define CELL_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"

#define CELL_OCI_VERSION "1.2.0" /* what we write and report */

struct spec_kv {
  char *key;
  char *value;
};

/* ---- process ------------------------------------------------------------- */
struct spec_user {
  uint32_t uid;
  uint32_t gid;
  uint32_t *umask;
  uint32_t *additional_gids;
  size_t n_additional_gids;
  char *username; /* windows only; kept for completeness */
};

struct spec_rlimit {
  char *type;    /* "RLIMIT_NOFILE" */
  int resource;  /* RLIMIT_NOFILE, resolved by the parser */
  uint64_t soft;
  uint64_t hard;
};

struct spec_capabilities {
  char **bounding;
  char **effective;
  char **inheritable;
  char **permitted;
  char **ambient;
};

struct spec_scheduler {
  char *policy; /* SCHED_OTHER ... */
  int32_t nice;
  int32_t priority;
  char **flags;
  uint64_t runtime;
  uint64_t deadline;
  uint64_t period;
};

struct spec_io_priority {
  char *class_; /* IOPRIO_CLASS_RT | _BE | _IDLE */
  int32_t priority;
};

struct spec_cpu_affinity {
  char *initial;
  char *final;
};

struct spec_console_size {
  uint32_t height;
  uint32_t width;
};

struct spec_process {
  bool terminal;
  struct spec_console_size *console_size;
  struct spec_user user;
  char **args; /* non-empty */
  char *command_line;
  char **env;
  char *cwd; /* absolute */
  struct spec_capabilities *capabilities;
  struct spec_rlimit *rlimits;
  size_t n_rlimits;
  bool no_new_privileges;
  char *apparmor_profile;
  int32_t *oom_score_adj;
  char *selinux_label;
  struct spec_scheduler *scheduler;
  struct spec_io_priority *io_priority;
  struct spec_cpu_affinity *exec_cpu_affinity;
};

/* ---- root, mounts, hooks -------------------------------------------------- */
struct spec_root {
  char *path; /* as written (may be relative to the bundle) */
  bool readonly;
};

struct spec_id_mapping {
  uint32_t container_id;
  uint32_t host_id;
  uint32_t size;
};

struct spec_mount {
  char *destination; /* absolute, inside the container */
  char *type;
  char *source;
  char **options;
  struct spec_id_mapping *uid_mappings;
  size_t n_uid_mappings;
  struct spec_id_mapping *gid_mappings;
  size_t n_gid_mappings;
};

struct spec_hook {
  char *path; /* absolute */
  char **args;
  char **env;
  int *timeout; /* seconds, > 0 */
};

struct spec_hook_list {
  struct spec_hook *hooks;
  size_t len;
};

struct spec_hooks {
  struct spec_hook_list prestart; /* deprecated, still run */
  struct spec_hook_list create_runtime;
  struct spec_hook_list create_container;
  struct spec_hook_list start_container;
  struct spec_hook_list poststart;
  struct spec_hook_list poststop;
};

/* ---- linux ----------------------------------------------------------------- */
enum spec_ns_type {
  SPEC_NS_PID,
  SPEC_NS_NETWORK,
  SPEC_NS_MOUNT,
  SPEC_NS_IPC,
  SPEC_NS_UTS,
  SPEC_NS_USER,
  SPEC_NS_CGROUP,
  SPEC_NS_TIME,
  SPEC_NS_COUNT
};

struct spec_namespace {
  enum spec_ns_type type;
  char *path; /* NULL: create a new one */
};

struct spec_time_offset {
  int64_t secs;
  uint32_t nanosecs;
};

struct spec_device {
  char *type; /* "c", "b", "u", "p" */
  char *path;
  int64_t major;
  int64_t minor;
  uint32_t *file_mode;
  uint32_t *uid;
  uint32_t *gid;
};

struct spec_device_rule {
  bool allow;
  char *type;   /* "a", "c", "b"; NULL = all */
  int64_t *major; /* NULL = wildcard */
  int64_t *minor;
  char *access; /* "rwm" subset; NULL = "rwm" */
};

struct spec_memory {
  int64_t *limit;
  int64_t *reservation;
  int64_t *swap;
  int64_t *kernel;
  int64_t *kernel_tcp;
  uint64_t *swappiness;
  bool *disable_oom_killer;
  bool *use_hierarchy;
  bool *check_before_update;
};

struct spec_cpu {
  uint64_t *shares;
  int64_t *quota;
  uint64_t *burst;
  uint64_t *period;
  int64_t *realtime_runtime;
  uint64_t *realtime_period;
  char *cpus;
  char *mems;
  int64_t *idle;
};

struct spec_weight_device {
  int64_t major;
  int64_t minor;
  uint16_t *weight;
  uint16_t *leaf_weight;
};

struct spec_throttle_device {
  int64_t major;
  int64_t minor;
  uint64_t rate;
};

struct spec_block_io {
  uint16_t *weight;
  uint16_t *leaf_weight;
  struct spec_weight_device *weight_device;
  size_t n_weight_device;
  struct spec_throttle_device *throttle_read_bps_device;
  size_t n_throttle_read_bps_device;
  struct spec_throttle_device *throttle_write_bps_device;
  size_t n_throttle_write_bps_device;
  struct spec_throttle_device *throttle_read_iops_device;
  size_t n_throttle_read_iops_device;
  struct spec_throttle_device *throttle_write_iops_device;
  size_t n_throttle_write_iops_device;
};

struct spec_hugepage_limit {
  char *page_size; /* "2MB" */
  uint64_t limit;
};

struct spec_net_priority {
  char *name;
  uint32_t priority;
};

struct spec_network {
  uint32_t *class_id;
  struct spec_net_priority *priorities;
  size_t n_priorities;
};

struct spec_rdma {
  char *device;
  uint32_t *hca_handles;
  uint32_t *hca_objects;
};

struct spec_resources {
  struct spec_device_rule *devices;
  size_t n_devices;
  struct spec_memory *memory;
  struct spec_cpu *cpu;
  int64_t *pids_limit; /* linux.resources.pids.limit */
  struct spec_block_io *block_io;
  struct spec_hugepage_limit *hugepage_limits;
  size_t n_hugepage_limits;
  struct spec_network *network;
  struct spec_rdma *rdma;
  size_t n_rdma;
  struct spec_kv *unified;
  size_t n_unified;
};

struct spec_seccomp_arg {
  uint32_t index;
  uint64_t value;
  uint64_t value_two;
  char *op; /* SCMP_CMP_EQ ... */
};

struct spec_seccomp_syscall {
  char **names;
  char *action;
  uint32_t *errno_ret;
  struct spec_seccomp_arg *args;
  size_t n_args;
};

struct spec_seccomp {
  char *default_action;
  uint32_t *default_errno_ret;
  char **architectures;
  char **flags;
  char *listener_path;
  char *listener_metadata;
  struct spec_seccomp_syscall *syscalls;
  size_t n_syscalls;
};

struct spec_personality {
  char *domain; /* LINUX | LINUX32 */
  char **flags;
};

struct spec_net_device {
  char *host_name; /* the key of linux.netDevices */
  char *name;      /* name inside the container; NULL = same */
};

struct spec_intel_rdt {
  char *clos_id;
  char *l3_cache_schema;
  char *mem_bw_schema;
};

struct spec_linux {
  struct spec_namespace *namespaces;
  size_t n_namespaces;
  struct spec_id_mapping *uid_mappings;
  size_t n_uid_mappings;
  struct spec_id_mapping *gid_mappings;
  size_t n_gid_mappings;
  struct spec_time_offset *time_monotonic;
  struct spec_time_offset *time_boottime;
  struct spec_device *devices;
  size_t n_devices;
  char *cgroups_path;
  struct spec_resources *resources;
  struct spec_kv *sysctl;
  size_t n_sysctl;
  struct spec_seccomp *seccomp;
  char *rootfs_propagation; /* shared | slave | private | unbindable (+ r-forms) */
  char **masked_paths;
  char **readonly_paths;
  char *mount_label;
  struct spec_personality *personality;
  struct spec_net_device *net_devices;
  size_t n_net_devices;
  struct spec_intel_rdt *intel_rdt;
};

/* ---- the whole document ---------------------------------------------------- */
struct spec {
  char *oci_version;
  struct spec_process *process; /* NULL when absent */
  struct spec_root *root;       /* NULL when absent */
  char *hostname;               /* NULL when absent ("" is a value) */
  char *domainname;
  struct spec_mount *mounts;
  size_t n_mounts;
  struct spec_hooks hooks;
  struct spec_kv *annotations;
  size_t n_annotations;
  struct spec_linux *linux_; /* NULL when absent */
};

/* Parse and validate a config.json document.  Errors name the JSON path:
 * "process.args: must be a non-empty array of strings",
 * "mounts[2].destination: must be an absolute path",
 * "line 3, column 7: ..." for malformed JSON.  Unknown members are ignored;
 * a known member of the wrong type is an error. */
int spec_parse(const char *json, size_t len, struct spec **out,
               cell_error **err);
/* Read and parse a file; errors are prefixed with the file's base name
 * ("config.json: process.args: ..."). */
int spec_load(const char *path, struct spec **out, cell_error **err);
void spec_free(struct spec *s);
static inline void spec_freep(struct spec **s) { spec_free(*s); }
#define cleanup_spec __attribute__((cleanup(spec_freep)))

/* A linux.resources object alone, as `cell update -r FILE` reads it.
 * Errors name the member path inside it ("memory.limit: must be a number
 * ..."), without a file name: the caller adds that. */
int spec_parse_resources(const char *json, size_t len,
                         struct spec_resources **out, cell_error **err);
void spec_resources_free(struct spec_resources *r);
static inline void spec_resources_freep(struct spec_resources **r) {
  spec_resources_free(*r);
}
#define cleanup_resources __attribute__((cleanup(spec_resources_freep)))

/* Checks that need the whole document and a runtime operation (create):
 * process and root present, mappings only with a user namespace, ... */
int spec_validate_for_create(const struct spec *s, cell_error **err);

/* The namespace entry of a type, NULL when the config does not ask for it. */
const struct spec_namespace *spec_find_namespace(const struct spec *s,
                                                 enum spec_ns_type type);
/* "pid", "network", ... and the CLONE_NEW* flag of a type. */
const char *spec_ns_type_name(enum spec_ns_type t);
int spec_ns_clone_flag(enum spec_ns_type t);
/* The value of an annotation, NULL when absent. */
const char *spec_annotation(const struct spec *s, const char *key);

#endif
