/* config.json (OCI runtime-spec 1.x, Linux) into the structs of spec.h.
 *
 * Every error names the JSON path of the offending member, so that the
 * user can find it in the file: "mounts[2].destination: must be an
 * absolute path".  Unknown members are ignored, a known member of the
 * wrong type is an error, and a JSON null counts as absent. */
#include "oci/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/json.h"
#include "base/log.h"
#include "base/syscalls.h"
#include "base/util.h"

/* Larger than any sane config (a big seccomp profile is ~100 KiB), small
 * enough that a wrong path cannot make us read gigabytes. */
#define SPEC_MAX_SIZE (16u << 20)

/* ---- paths and errors ---- */

/* "path.key"; the document itself has the empty path. */
static char *join_path(const char *path, const char *key) {
  if (key == NULL)
    return xstrdup(path);
  if (*path == '\0')
    return xstrdup(key);
  return xasprintf("%s.%s", path, key);
}

static char *index_path(const char *path, size_t i) {
  return xasprintf("%s[%zu]", path, i);
}

/* An error about member key of the object at path (key may be NULL when
 * the error is about path itself). */
static int fail_at(cell_error **err, const char *path, const char *key,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_at(cell_error **err, const char *path, const char *key,
                   const char *fmt, ...) {
  cleanup_free char *where = join_path(path, key);
  cleanup_free char *what = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&what, fmt, ap) < 0)
    abort();
  va_end(ap);
  return cell_fail(err, 0, "%s: %s", where, what);
}

static bool is_absolute(const char *p) { return p != NULL && p[0] == '/'; }

/* ---- typed members ---- */

/* A member, with JSON null treated as absent. */
static const struct json_value *member(const struct json_value *obj,
                                       const char *key) {
  const struct json_value *v = json_object_get(obj, key);
  return v && v->type == JSON_NULL ? NULL : v;
}

static int fail_required(cell_error **err, const char *path, const char *key) {
  return fail_at(err, path, key, "is required");
}

static int get_string(const struct json_value *obj, const char *path,
                      const char *key, bool required, char **out,
                      cell_error **err) {
  const struct json_value *v = member(obj, key);
  if (v == NULL)
    return required ? fail_required(err, path, key) : 0;
  if (v->type != JSON_STRING)
    return fail_at(err, path, key, "must be a string");
  free(*out);
  *out = xstrdup(v->u.string);
  return 0;
}

static int get_bool(const struct json_value *obj, const char *path,
                    const char *key, bool *out, cell_error **err) {
  const struct json_value *v = member(obj, key);
  if (v == NULL)
    return 0;
  if (v->type != JSON_BOOL)
    return fail_at(err, path, key, "must be a boolean");
  *out = v->u.boolean;
  return 0;
}

static int get_bool_ptr(const struct json_value *obj, const char *path,
                        const char *key, bool **out, cell_error **err) {
  bool b = false;
  if (member(obj, key) == NULL)
    return 0;
  if (get_bool(obj, path, key, &b, err) < 0)
    return -1;
  *out = xmalloc(sizeof(**out));
  **out = b;
  return 0;
}

/* Numbers: a wrong type and a value out of range get the same message,
 * which states what is expected. */
static int get_signed(const struct json_value *obj, const char *path,
                      const char *key, bool required, int64_t min, int64_t max,
                      int64_t *out, bool *present, cell_error **err) {
  const struct json_value *v = member(obj, key);
  *present = v != NULL;
  if (v == NULL)
    return required ? fail_required(err, path, key) : 0;
  int64_t n;
  if (!json_get_int64(v, &n) || n < min || n > max)
    return fail_at(err, path, key,
                   "must be a number between %" PRId64 " and %" PRId64, min,
                   max);
  *out = n;
  return 0;
}

static int get_unsigned(const struct json_value *obj, const char *path,
                        const char *key, bool required, uint64_t max,
                        uint64_t *out, bool *present, cell_error **err) {
  const struct json_value *v = member(obj, key);
  *present = v != NULL;
  if (v == NULL)
    return required ? fail_required(err, path, key) : 0;
  uint64_t n;
  if (!json_get_uint64(v, &n) || n > max)
    return fail_at(err, path, key, "must be a number between 0 and %" PRIu64,
                   max);
  *out = n;
  return 0;
}

static int get_u64(const struct json_value *obj, const char *path,
                   const char *key, bool required, uint64_t *out,
                   cell_error **err) {
  bool present;
  return get_unsigned(obj, path, key, required, UINT64_MAX, out, &present, err);
}

static int get_u32(const struct json_value *obj, const char *path,
                   const char *key, bool required, uint32_t *out,
                   cell_error **err) {
  bool present;
  uint64_t n;
  if (get_unsigned(obj, path, key, required, UINT32_MAX, &n, &present, err) < 0)
    return -1;
  if (present)
    *out = (uint32_t)n;
  return 0;
}

static int get_i64(const struct json_value *obj, const char *path,
                   const char *key, bool required, int64_t *out,
                   cell_error **err) {
  bool present;
  return get_signed(obj, path, key, required, INT64_MIN, INT64_MAX, out,
                    &present, err);
}

static int get_i32_range(const struct json_value *obj, const char *path,
                         const char *key, int32_t min, int32_t max,
                         int32_t *out, cell_error **err) {
  bool present;
  int64_t n;
  if (get_signed(obj, path, key, false, min, max, &n, &present, err) < 0)
    return -1;
  if (present)
    *out = (int32_t)n;
  return 0;
}

static int get_i32(const struct json_value *obj, const char *path,
                   const char *key, int32_t *out, cell_error **err) {
  return get_i32_range(obj, path, key, INT32_MIN, INT32_MAX, out, err);
}

/* Optional numbers stored behind a pointer (NULL = absent). */
#define DEFINE_GET_PTR(name, type, getter)                                     \
  static int name(const struct json_value *obj, const char *path,              \
                  const char *key, type **out, cell_error **err) {             \
    type n = 0;                                                                \
    if (member(obj, key) == NULL)                                              \
      return 0;                                                                \
    if (getter(obj, path, key, true, &n, err) < 0)                             \
      return -1;                                                               \
    *out = xmalloc(sizeof(**out));                                             \
    **out = n;                                                                 \
    return 0;                                                                  \
  }

DEFINE_GET_PTR(get_u64_ptr, uint64_t, get_u64)
DEFINE_GET_PTR(get_u32_ptr, uint32_t, get_u32)
DEFINE_GET_PTR(get_i64_ptr, int64_t, get_i64)

static int get_u16_ptr(const struct json_value *obj, const char *path,
                       const char *key, uint16_t **out, cell_error **err) {
  bool present;
  uint64_t n = 0;
  if (get_unsigned(obj, path, key, false, UINT16_MAX, &n, &present, err) < 0)
    return -1;
  if (present) {
    *out = xmalloc(sizeof(**out));
    **out = (uint16_t)n;
  }
  return 0;
}

static int get_i32_range_ptr(const struct json_value *obj, const char *path,
                             const char *key, int32_t min, int32_t max,
                             int32_t **out, cell_error **err) {
  int32_t n = 0;
  if (member(obj, key) == NULL)
    return 0;
  if (get_i32_range(obj, path, key, min, max, &n, err) < 0)
    return -1;
  *out = xmalloc(sizeof(**out));
  **out = n;
  return 0;
}

static int get_object(const struct json_value *obj, const char *path,
                      const char *key, const struct json_value **out,
                      cell_error **err) {
  const struct json_value *v = member(obj, key);
  *out = NULL;
  if (v == NULL)
    return 0;
  if (v->type != JSON_OBJECT)
    return fail_at(err, path, key, "must be an object");
  *out = v;
  return 0;
}

static bool is_string_array(const struct json_value *v) {
  if (v->type != JSON_ARRAY)
    return false;
  for (size_t i = 0; i < v->u.array.len; i++)
    if (v->u.array.items[i]->type != JSON_STRING)
      return false;
  return true;
}

static char **strv_from_array(const struct json_value *v) {
  char **out = xcalloc(v->u.array.len + 1, sizeof(*out));
  for (size_t i = 0; i < v->u.array.len; i++)
    out[i] = xstrdup(v->u.array.items[i]->u.string);
  return out;
}

static int get_strv(const struct json_value *obj, const char *path,
                    const char *key, char ***out, cell_error **err) {
  const struct json_value *v = member(obj, key);
  if (v == NULL)
    return 0;
  if (!is_string_array(v))
    return fail_at(err, path, key, "must be an array of strings");
  cell_strv_free(*out);
  *out = strv_from_array(v);
  return 0;
}

static int get_u32_array(const struct json_value *obj, const char *path,
                         const char *key, uint32_t **out, size_t *n,
                         cell_error **err) {
  const struct json_value *v = member(obj, key);
  if (v == NULL)
    return 0;
  if (v->type != JSON_ARRAY)
    return fail_at(err, path, key, "must be an array of numbers");
  if (v->u.array.len == 0)
    return 0;
  *out = xcalloc(v->u.array.len, sizeof(**out));
  *n = v->u.array.len;
  for (size_t i = 0; i < v->u.array.len; i++) {
    uint64_t x;
    if (!json_get_uint64(v->u.array.items[i], &x) || x > UINT32_MAX) {
      cleanup_free char *p = join_path(path, key);
      cleanup_free char *ip = index_path(p, i);
      return fail_at(err, ip, NULL, "must be a number between 0 and %u",
                     UINT32_MAX);
    }
    (*out)[i] = (uint32_t)x;
  }
  return 0;
}

/* An object whose members are all strings, into (key, value) pairs. */
static int get_string_map(const struct json_value *obj, const char *path,
                          const char *key, struct spec_kv **out, size_t *n,
                          cell_error **err) {
  const struct json_value *m;
  if (get_object(obj, path, key, &m, err) < 0)
    return -1;
  if (m == NULL || m->u.object.len == 0)
    return 0;
  cleanup_free char *mpath = join_path(path, key);
  *out = xcalloc(m->u.object.len, sizeof(**out));
  *n = m->u.object.len;
  for (size_t i = 0; i < m->u.object.len; i++) {
    const struct json_value *v = m->u.object.values[i];
    if (v->type != JSON_STRING)
      return fail_at(err, mpath, m->u.object.keys[i], "must be a string");
    (*out)[i].key = xstrdup(m->u.object.keys[i]);
    (*out)[i].value = xstrdup(v->u.string);
  }
  return 0;
}

typedef int (*item_parser)(const struct json_value *item, const char *path,
                           void *out, cell_error **err);

/* An array of objects into a (pointer, count) list.  The list is attached
 * to its owner before the items are parsed, so a failure half-way leaves
 * nothing that spec_free cannot release. */
static int get_list(const struct json_value *obj, const char *path,
                    const char *key, size_t elem_size, void *out_list,
                    size_t *n, item_parser parse, cell_error **err) {
  const struct json_value *v = member(obj, key);
  if (v == NULL)
    return 0;
  if (v->type != JSON_ARRAY)
    return fail_at(err, path, key, "must be an array of objects");
  if (v->u.array.len == 0)
    return 0;
  char *items = xcalloc(v->u.array.len, elem_size);
  *(void **)out_list = items;
  *n = v->u.array.len;
  cleanup_free char *lpath = join_path(path, key);
  for (size_t i = 0; i < v->u.array.len; i++) {
    cleanup_free char *ipath = index_path(lpath, i);
    const struct json_value *item = v->u.array.items[i];
    if (item->type != JSON_OBJECT)
      return fail_at(err, ipath, NULL, "must be an object");
    if (parse(item, ipath, items + i * elem_size, err) < 0)
      return -1;
  }
  return 0;
}

/* The object member key as a nested path, NULL (and *obj_out NULL) when
 * absent. */
static int get_section(const struct json_value *obj, const char *path,
                       const char *key, const struct json_value **obj_out,
                       char **path_out, cell_error **err) {
  if (get_object(obj, path, key, obj_out, err) < 0)
    return -1;
  *path_out = *obj_out ? join_path(path, key) : NULL;
  return 0;
}

/* An optional object member parsed into a new struct of size bytes, which
 * is attached to *out_ptr first (as in get_list). */
static int get_struct(const struct json_value *obj, const char *path,
                      const char *key, size_t size, void *out_ptr,
                      item_parser parse, cell_error **err) {
  const struct json_value *o;
  if (get_object(obj, path, key, &o, err) < 0)
    return -1;
  if (o == NULL)
    return 0;
  void *out = xcalloc(1, size);
  *(void **)out_ptr = out;
  cleanup_free char *spath = join_path(path, key);
  return parse(o, spath, out, err);
}

/* ---- tables ---- */

static const char *const ns_names[SPEC_NS_COUNT] = {
    [SPEC_NS_PID] = "pid",       [SPEC_NS_NETWORK] = "network",
    [SPEC_NS_MOUNT] = "mount",   [SPEC_NS_IPC] = "ipc",
    [SPEC_NS_UTS] = "uts",       [SPEC_NS_USER] = "user",
    [SPEC_NS_CGROUP] = "cgroup", [SPEC_NS_TIME] = "time",
};

static const int ns_clone_flags[SPEC_NS_COUNT] = {
    [SPEC_NS_PID] = CLONE_NEWPID,       [SPEC_NS_NETWORK] = CLONE_NEWNET,
    [SPEC_NS_MOUNT] = CLONE_NEWNS,      [SPEC_NS_IPC] = CLONE_NEWIPC,
    [SPEC_NS_UTS] = CLONE_NEWUTS,       [SPEC_NS_USER] = CLONE_NEWUSER,
    [SPEC_NS_CGROUP] = CLONE_NEWCGROUP, [SPEC_NS_TIME] = CLONE_NEWTIME,
};

const char *spec_ns_type_name(enum spec_ns_type t) {
  if ((unsigned)t >= SPEC_NS_COUNT)
    return "unknown";
  return ns_names[t];
}

int spec_ns_clone_flag(enum spec_ns_type t) {
  if ((unsigned)t >= SPEC_NS_COUNT)
    return 0;
  return ns_clone_flags[t];
}

static bool ns_type_from_name(const char *name, enum spec_ns_type *out) {
  for (int t = 0; t < SPEC_NS_COUNT; t++)
    if (strcmp(ns_names[t], name) == 0) {
      *out = (enum spec_ns_type)t;
      return true;
    }
  return false;
}

static const struct {
  const char *name;
  int resource;
} rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

static int rlimit_resource(const char *name) {
  for (size_t i = 0; i < sizeof(rlimit_names) / sizeof(rlimit_names[0]); i++)
    if (strcmp(rlimit_names[i].name, name) == 0)
      return rlimit_names[i].resource;
  return -1;
}

static bool in_list(const char *s, const char *const *list) {
  for (; *list; list++)
    if (strcmp(s, *list) == 0)
      return true;
  return false;
}

static const char *const sched_policies[] = {
    "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR",       "SCHED_BATCH",
    "SCHED_ISO",   "SCHED_IDLE", "SCHED_DEADLINE", NULL};

static const char *const ioprio_classes[] = {
    "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE", NULL};

static const char *const propagations[] = {
    "shared", "slave",    "private",     "unbindable", "rshared",
    "rslave", "rprivate", "runbindable", NULL};

static const char *const personality_domains[] = {"LINUX", "LINUX32", NULL};

/* ---- ociVersion ---- */

static bool skip_digits(const char **s) {
  const char *p = *s;
  while (*p >= '0' && *p <= '9')
    p++;
  bool any = p != *s;
  *s = p;
  return any;
}

/* 1.MINOR[.PATCH][-pre-release|+build]: every 1.x is compatible with what
 * we implement (the spec only adds optional fields within a major). */
static bool version_supported(const char *v) {
  if (strncmp(v, "1.", 2) != 0)
    return false;
  v += 2;
  if (!skip_digits(&v))
    return false;
  if (*v == '.') {
    v++;
    if (!skip_digits(&v))
      return false;
  }
  return *v == '\0' || *v == '-' || *v == '+';
}

/* ---- process ---- */

static int parse_rlimit(const struct json_value *o, const char *path, void *out,
                        cell_error **err) {
  struct spec_rlimit *r = out;
  if (get_string(o, path, "type", true, &r->type, err) < 0)
    return -1;
  r->resource = rlimit_resource(r->type);
  if (r->resource < 0)
    return fail_at(err, path, "type", "unknown rlimit `%s`", r->type);
  if (get_u64(o, path, "soft", true, &r->soft, err) < 0 ||
      get_u64(o, path, "hard", true, &r->hard, err) < 0)
    return -1;
  if (r->soft > r->hard)
    return fail_at(err, path, "soft",
                   "%" PRIu64 " is greater than the hard limit %" PRIu64,
                   r->soft, r->hard);
  return 0;
}

static int check_rlimits_unique(const struct spec_process *p, const char *path,
                                cell_error **err) {
  for (size_t i = 0; i < p->n_rlimits; i++)
    for (size_t j = 0; j < i; j++)
      if (p->rlimits[i].resource == p->rlimits[j].resource)
        return fail_at(err, path, "rlimits", "duplicate rlimit `%s`",
                       p->rlimits[i].type);
  return 0;
}

static int parse_user(const struct json_value *o, const char *path,
                      struct spec_user *u, cell_error **err) {
  if (get_u32(o, path, "uid", false, &u->uid, err) < 0 ||
      get_u32(o, path, "gid", false, &u->gid, err) < 0 ||
      get_u32_ptr(o, path, "umask", &u->umask, err) < 0 ||
      get_u32_array(o, path, "additionalGids", &u->additional_gids,
                    &u->n_additional_gids, err) < 0 ||
      get_string(o, path, "username", false, &u->username, err) < 0)
    return -1;
  return 0;
}

static int parse_capabilities(const struct json_value *o, const char *path,
                              void *out, cell_error **err) {
  struct spec_capabilities *c = out;
  if (get_strv(o, path, "bounding", &c->bounding, err) < 0 ||
      get_strv(o, path, "effective", &c->effective, err) < 0 ||
      get_strv(o, path, "inheritable", &c->inheritable, err) < 0 ||
      get_strv(o, path, "permitted", &c->permitted, err) < 0 ||
      get_strv(o, path, "ambient", &c->ambient, err) < 0)
    return -1;
  return 0;
}

static int parse_scheduler(const struct json_value *o, const char *path,
                           void *out, cell_error **err) {
  struct spec_scheduler *s = out;
  if (get_string(o, path, "policy", true, &s->policy, err) < 0)
    return -1;
  if (!in_list(s->policy, sched_policies))
    return fail_at(err, path, "policy", "unknown policy `%s`", s->policy);
  if (get_i32(o, path, "nice", &s->nice, err) < 0 ||
      get_i32(o, path, "priority", &s->priority, err) < 0 ||
      get_strv(o, path, "flags", &s->flags, err) < 0 ||
      get_u64(o, path, "runtime", false, &s->runtime, err) < 0 ||
      get_u64(o, path, "deadline", false, &s->deadline, err) < 0 ||
      get_u64(o, path, "period", false, &s->period, err) < 0)
    return -1;
  return 0;
}

static int parse_io_priority(const struct json_value *o, const char *path,
                             void *out, cell_error **err) {
  struct spec_io_priority *p = out;
  if (get_string(o, path, "class", true, &p->class_, err) < 0)
    return -1;
  if (!in_list(p->class_, ioprio_classes))
    return fail_at(err, path, "class", "unknown class `%s`", p->class_);
  return get_i32(o, path, "priority", &p->priority, err);
}

static int parse_process_args(const struct json_value *o, const char *path,
                              struct spec_process *p, cell_error **err) {
  const struct json_value *v = member(o, "args");
  if (v == NULL || !is_string_array(v) || v->u.array.len == 0)
    return fail_at(err, path, "args", "must be a non-empty array of strings");
  p->args = strv_from_array(v);
  return 0;
}

static int parse_process_cwd(const struct json_value *o, const char *path,
                             struct spec_process *p, cell_error **err) {
  if (get_string(o, path, "cwd", true, &p->cwd, err) < 0)
    return -1;
  if (!is_absolute(p->cwd))
    return fail_at(err, path, "cwd", "must be an absolute path");
  return 0;
}

static int parse_console_size(const struct json_value *o, const char *path,
                              void *out, cell_error **err) {
  struct spec_console_size *c = out;
  if (get_u32(o, path, "height", true, &c->height, err) < 0 ||
      get_u32(o, path, "width", true, &c->width, err) < 0)
    return -1;
  return 0;
}

static int parse_cpu_affinity(const struct json_value *o, const char *path,
                              void *out, cell_error **err) {
  struct spec_cpu_affinity *a = out;
  if (get_string(o, path, "initial", false, &a->initial, err) < 0 ||
      get_string(o, path, "final", false, &a->final, err) < 0)
    return -1;
  return 0;
}

static int parse_process_user(const struct json_value *o, const char *path,
                              struct spec_process *p, cell_error **err) {
  const struct json_value *u;
  cleanup_free char *upath = NULL;
  if (get_section(o, path, "user", &u, &upath, err) < 0)
    return -1;
  return u ? parse_user(u, upath, &p->user, err) : 0;
}

static int parse_process(const struct json_value *o, const char *path,
                         void *out, cell_error **err) {
  struct spec_process *p = out;
  if (get_bool(o, path, "terminal", &p->terminal, err) < 0 ||
      get_struct(o, path, "consoleSize", sizeof(*p->console_size),
                 &p->console_size, parse_console_size, err) < 0 ||
      parse_process_user(o, path, p, err) < 0 ||
      parse_process_args(o, path, p, err) < 0 ||
      get_string(o, path, "commandLine", false, &p->command_line, err) < 0 ||
      get_strv(o, path, "env", &p->env, err) < 0 ||
      parse_process_cwd(o, path, p, err) < 0 ||
      get_struct(o, path, "capabilities", sizeof(*p->capabilities),
                 &p->capabilities, parse_capabilities, err) < 0 ||
      get_list(o, path, "rlimits", sizeof(*p->rlimits), &p->rlimits,
               &p->n_rlimits, parse_rlimit, err) < 0 ||
      check_rlimits_unique(p, path, err) < 0 ||
      get_bool(o, path, "noNewPrivileges", &p->no_new_privileges, err) < 0 ||
      get_string(o, path, "apparmorProfile", false, &p->apparmor_profile,
                 err) < 0 ||
      get_string(o, path, "selinuxLabel", false, &p->selinux_label, err) < 0 ||
      get_i32_range_ptr(o, path, "oomScoreAdj", -1000, 1000, &p->oom_score_adj,
                        err) < 0 ||
      get_struct(o, path, "scheduler", sizeof(*p->scheduler), &p->scheduler,
                 parse_scheduler, err) < 0 ||
      get_struct(o, path, "ioPriority", sizeof(*p->io_priority),
                 &p->io_priority, parse_io_priority, err) < 0 ||
      get_struct(o, path, "execCPUAffinity", sizeof(*p->exec_cpu_affinity),
                 &p->exec_cpu_affinity, parse_cpu_affinity, err) < 0)
    return -1;
  return 0;
}

/* ---- root, mounts, hooks ---- */

static int parse_root(const struct json_value *o, const char *path, void *out,
                      cell_error **err) {
  struct spec_root *r = out;
  if (get_string(o, path, "path", false, &r->path, err) < 0 ||
      get_bool(o, path, "readonly", &r->readonly, err) < 0)
    return -1;
  return 0;
}

static int parse_id_mapping(const struct json_value *o, const char *path,
                            void *out, cell_error **err) {
  struct spec_id_mapping *m = out;
  if (get_u32(o, path, "containerID", true, &m->container_id, err) < 0 ||
      get_u32(o, path, "hostID", true, &m->host_id, err) < 0 ||
      get_u32(o, path, "size", true, &m->size, err) < 0)
    return -1;
  return 0;
}

static int parse_mount(const struct json_value *o, const char *path, void *out,
                       cell_error **err) {
  struct spec_mount *m = out;
  if (get_string(o, path, "destination", true, &m->destination, err) < 0)
    return -1;
  if (!is_absolute(m->destination))
    return fail_at(err, path, "destination", "must be an absolute path");
  if (get_string(o, path, "type", false, &m->type, err) < 0 ||
      get_string(o, path, "source", false, &m->source, err) < 0 ||
      get_strv(o, path, "options", &m->options, err) < 0 ||
      get_list(o, path, "uidMappings", sizeof(*m->uid_mappings),
               &m->uid_mappings, &m->n_uid_mappings, parse_id_mapping,
               err) < 0 ||
      get_list(o, path, "gidMappings", sizeof(*m->gid_mappings),
               &m->gid_mappings, &m->n_gid_mappings, parse_id_mapping, err) < 0)
    return -1;
  return 0;
}

static int parse_hook(const struct json_value *o, const char *path, void *out,
                      cell_error **err) {
  struct spec_hook *h = out;
  if (get_string(o, path, "path", true, &h->path, err) < 0)
    return -1;
  if (!is_absolute(h->path))
    return fail_at(err, path, "path", "must be an absolute path");
  if (get_strv(o, path, "args", &h->args, err) < 0 ||
      get_strv(o, path, "env", &h->env, err) < 0)
    return -1;
  if (member(o, "timeout") == NULL)
    return 0;
  int32_t timeout = 0;
  if (get_i32_range(o, path, "timeout", 1, INT_MAX, &timeout, err) < 0)
    return -1;
  h->timeout = xmalloc(sizeof(*h->timeout));
  *h->timeout = timeout;
  return 0;
}

static int parse_hooks(const struct json_value *o, const char *path,
                       struct spec_hooks *h, cell_error **err) {
  const struct {
    const char *key;
    struct spec_hook_list *list;
  } kinds[] = {
      {"prestart", &h->prestart},
      {"createRuntime", &h->create_runtime},
      {"createContainer", &h->create_container},
      {"startContainer", &h->start_container},
      {"poststart", &h->poststart},
      {"poststop", &h->poststop},
  };
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
    if (get_list(o, path, kinds[i].key, sizeof(struct spec_hook),
                 &kinds[i].list->hooks, &kinds[i].list->len, parse_hook,
                 err) < 0)
      return -1;
  return 0;
}

/* ---- linux ---- */

static int parse_namespace(const struct json_value *o, const char *path,
                           void *out, cell_error **err) {
  struct spec_namespace *ns = out;
  cleanup_free char *type = NULL;
  if (get_string(o, path, "type", true, &type, err) < 0)
    return -1;
  if (!ns_type_from_name(type, &ns->type))
    return fail_at(err, path, "type", "unknown namespace type `%s`", type);
  return get_string(o, path, "path", false, &ns->path, err);
}

static int check_namespaces_unique(const struct spec_linux *l, const char *path,
                                   cell_error **err) {
  for (size_t i = 0; i < l->n_namespaces; i++)
    for (size_t j = 0; j < i; j++)
      if (l->namespaces[i].type == l->namespaces[j].type)
        return fail_at(err, path, "namespaces", "duplicate namespace `%s`",
                       ns_names[l->namespaces[i].type]);
  return 0;
}

static int parse_time_offset(const struct json_value *o, const char *path,
                             struct spec_time_offset **out, cell_error **err) {
  struct spec_time_offset *t = *out = xcalloc(1, sizeof(**out));
  bool present;
  uint64_t ns = 0;
  if (get_i64(o, path, "secs", false, &t->secs, err) < 0)
    return -1;
  /* Nanoseconds beyond a second would be refused by the kernel. */
  if (get_unsigned(o, path, "nanosecs", false, 999999999, &ns, &present,
                   err) < 0)
    return -1;
  t->nanosecs = (uint32_t)ns;
  return 0;
}

static int parse_time_offsets(const struct json_value *l, const char *path,
                              struct spec_linux *out, cell_error **err) {
  const struct json_value *o;
  cleanup_free char *tp = NULL;
  if (get_section(l, path, "timeOffsets", &o, &tp, err) < 0)
    return -1;
  for (size_t i = 0; o && i < o->u.object.len; i++) {
    const char *clock = o->u.object.keys[i];
    const struct json_value *v = o->u.object.values[i];
    struct spec_time_offset **slot;
    if (strcmp(clock, "monotonic") == 0)
      slot = &out->time_monotonic;
    else if (strcmp(clock, "boottime") == 0)
      slot = &out->time_boottime;
    else
      return fail_at(err, tp, NULL,
                     "unknown clock `%s` (monotonic or boottime)", clock);
    if (v->type != JSON_OBJECT)
      return fail_at(err, tp, clock, "must be an object");
    cleanup_free char *cp = join_path(tp, clock);
    if (parse_time_offset(v, cp, slot, err) < 0)
      return -1;
  }
  return 0;
}

static int parse_device(const struct json_value *o, const char *path, void *out,
                        cell_error **err) {
  static const char *const types[] = {"c", "b", "u", "p", NULL};
  struct spec_device *d = out;
  if (get_string(o, path, "type", true, &d->type, err) < 0)
    return -1;
  if (!in_list(d->type, types))
    return fail_at(err, path, "type", "unknown device type `%s` (c, b, u or p)",
                   d->type);
  if (get_string(o, path, "path", true, &d->path, err) < 0)
    return -1;
  if (!is_absolute(d->path))
    return fail_at(err, path, "path", "must be an absolute path");
  /* A fifo has no device number; every other type needs one. */
  bool needs_numbers = strcmp(d->type, "p") != 0;
  if (get_i64(o, path, "major", needs_numbers, &d->major, err) < 0 ||
      get_i64(o, path, "minor", needs_numbers, &d->minor, err) < 0 ||
      get_u32_ptr(o, path, "fileMode", &d->file_mode, err) < 0 ||
      get_u32_ptr(o, path, "uid", &d->uid, err) < 0 ||
      get_u32_ptr(o, path, "gid", &d->gid, err) < 0)
    return -1;
  return 0;
}

/* runc reads only the r, w and m of an access string and ignores any
 * other letter (its own tests write "rwa"), so we keep those three and say
 * what we dropped in the debug log.  An access string with none of them
 * would allow or deny nothing: runc fails on it at start with an obscure
 * cgroup message, we at parse with a clear one. */
static int normalize_device_access(struct spec_device_rule *r, const char *path,
                                   cell_error **err) {
  char *a = r->access;
  size_t kept = 0;
  for (size_t i = 0; a[i]; i++) {
    if (strchr("rwm", a[i]) && memchr(a, a[i], kept) == NULL)
      a[kept++] = a[i];
    else if (!strchr("rwm", a[i]))
      log_debug("%s.access: `%c` is not r, w or m, ignored (as runc does)",
                path, a[i]);
  }
  if (kept == 0)
    return fail_at(err, path, "access",
                   "`%s` names none of r, w and m (use \"rwm\" for all)", a);
  a[kept] = '\0';
  return 0;
}

static int parse_device_rule(const struct json_value *o, const char *path,
                             void *out, cell_error **err) {
  static const char *const types[] = {"a", "c", "b", NULL};
  struct spec_device_rule *r = out;
  if (member(o, "allow") == NULL)
    return fail_required(err, path, "allow");
  if (get_bool(o, path, "allow", &r->allow, err) < 0 ||
      get_string(o, path, "type", false, &r->type, err) < 0)
    return -1;
  if (r->type && !in_list(r->type, types))
    return fail_at(err, path, "type", "unknown device type `%s` (a, c or b)",
                   r->type);
  if (get_i64_ptr(o, path, "major", &r->major, err) < 0 ||
      get_i64_ptr(o, path, "minor", &r->minor, err) < 0 ||
      get_string(o, path, "access", false, &r->access, err) < 0)
    return -1;
  /* No access string, or an empty one (what some tools write), means
   * "everything". */
  if (r->access == NULL || r->access[0] == '\0') {
    free(steal_pointer(&r->access));
    return 0;
  }
  return normalize_device_access(r, path, err);
}

static int parse_memory(const struct json_value *o, const char *path, void *out,
                        cell_error **err) {
  struct spec_memory *m = out;
  if (get_i64_ptr(o, path, "limit", &m->limit, err) < 0 ||
      get_i64_ptr(o, path, "reservation", &m->reservation, err) < 0 ||
      get_i64_ptr(o, path, "swap", &m->swap, err) < 0 ||
      get_i64_ptr(o, path, "kernel", &m->kernel, err) < 0 ||
      get_i64_ptr(o, path, "kernelTCP", &m->kernel_tcp, err) < 0 ||
      get_u64_ptr(o, path, "swappiness", &m->swappiness, err) < 0 ||
      get_bool_ptr(o, path, "disableOOMKiller", &m->disable_oom_killer,
                   err) < 0 ||
      get_bool_ptr(o, path, "useHierarchy", &m->use_hierarchy, err) < 0 ||
      get_bool_ptr(o, path, "checkBeforeUpdate", &m->check_before_update,
                   err) < 0)
    return -1;
  return 0;
}

static int parse_cpu(const struct json_value *o, const char *path, void *out,
                     cell_error **err) {
  struct spec_cpu *c = out;
  if (get_u64_ptr(o, path, "shares", &c->shares, err) < 0 ||
      get_i64_ptr(o, path, "quota", &c->quota, err) < 0 ||
      get_u64_ptr(o, path, "burst", &c->burst, err) < 0 ||
      get_u64_ptr(o, path, "period", &c->period, err) < 0 ||
      get_i64_ptr(o, path, "realtimeRuntime", &c->realtime_runtime, err) < 0 ||
      get_u64_ptr(o, path, "realtimePeriod", &c->realtime_period, err) < 0 ||
      get_string(o, path, "cpus", false, &c->cpus, err) < 0 ||
      get_string(o, path, "mems", false, &c->mems, err) < 0 ||
      get_i64_ptr(o, path, "idle", &c->idle, err) < 0)
    return -1;
  return 0;
}

static int parse_weight_device(const struct json_value *o, const char *path,
                               void *out, cell_error **err) {
  struct spec_weight_device *w = out;
  if (get_i64(o, path, "major", true, &w->major, err) < 0 ||
      get_i64(o, path, "minor", true, &w->minor, err) < 0 ||
      get_u16_ptr(o, path, "weight", &w->weight, err) < 0 ||
      get_u16_ptr(o, path, "leafWeight", &w->leaf_weight, err) < 0)
    return -1;
  return 0;
}

static int parse_throttle_device(const struct json_value *o, const char *path,
                                 void *out, cell_error **err) {
  struct spec_throttle_device *t = out;
  if (get_i64(o, path, "major", true, &t->major, err) < 0 ||
      get_i64(o, path, "minor", true, &t->minor, err) < 0 ||
      get_u64(o, path, "rate", true, &t->rate, err) < 0)
    return -1;
  return 0;
}

static int parse_block_io(const struct json_value *o, const char *path,
                          void *out, cell_error **err) {
  struct spec_block_io *b = out;
  const size_t tsize = sizeof(struct spec_throttle_device);
  if (get_u16_ptr(o, path, "weight", &b->weight, err) < 0 ||
      get_u16_ptr(o, path, "leafWeight", &b->leaf_weight, err) < 0 ||
      get_list(o, path, "weightDevice", sizeof(*b->weight_device),
               &b->weight_device, &b->n_weight_device, parse_weight_device,
               err) < 0 ||
      get_list(o, path, "throttleReadBpsDevice", tsize,
               &b->throttle_read_bps_device, &b->n_throttle_read_bps_device,
               parse_throttle_device, err) < 0 ||
      get_list(o, path, "throttleWriteBpsDevice", tsize,
               &b->throttle_write_bps_device, &b->n_throttle_write_bps_device,
               parse_throttle_device, err) < 0 ||
      get_list(o, path, "throttleReadIOPSDevice", tsize,
               &b->throttle_read_iops_device, &b->n_throttle_read_iops_device,
               parse_throttle_device, err) < 0 ||
      get_list(o, path, "throttleWriteIOPSDevice", tsize,
               &b->throttle_write_iops_device, &b->n_throttle_write_iops_device,
               parse_throttle_device, err) < 0)
    return -1;
  return 0;
}

static int parse_hugepage_limit(const struct json_value *o, const char *path,
                                void *out, cell_error **err) {
  struct spec_hugepage_limit *h = out;
  if (get_string(o, path, "pageSize", true, &h->page_size, err) < 0 ||
      get_u64(o, path, "limit", true, &h->limit, err) < 0)
    return -1;
  return 0;
}

static int parse_net_priority(const struct json_value *o, const char *path,
                              void *out, cell_error **err) {
  struct spec_net_priority *p = out;
  if (get_string(o, path, "name", true, &p->name, err) < 0 ||
      get_u32(o, path, "priority", true, &p->priority, err) < 0)
    return -1;
  return 0;
}

static int parse_network(const struct json_value *o, const char *path,
                         void *out, cell_error **err) {
  struct spec_network *n = out;
  if (get_u32_ptr(o, path, "classID", &n->class_id, err) < 0 ||
      get_list(o, path, "priorities", sizeof(*n->priorities), &n->priorities,
               &n->n_priorities, parse_net_priority, err) < 0)
    return -1;
  return 0;
}

/* linux.resources.rdma: {"mlx5_1": {"hcaHandles": 3, ...}, ...} */
static int parse_rdma(const struct json_value *res, const char *path,
                      struct spec_resources *r, cell_error **err) {
  const struct json_value *o;
  cleanup_free char *rp = NULL;
  if (get_section(res, path, "rdma", &o, &rp, err) < 0)
    return -1;
  if (o == NULL || o->u.object.len == 0)
    return 0;
  r->rdma = xcalloc(o->u.object.len, sizeof(*r->rdma));
  r->n_rdma = o->u.object.len;
  for (size_t i = 0; i < o->u.object.len; i++) {
    const char *dev = o->u.object.keys[i];
    const struct json_value *v = o->u.object.values[i];
    r->rdma[i].device = xstrdup(dev);
    if (v->type != JSON_OBJECT)
      return fail_at(err, rp, dev, "must be an object");
    cleanup_free char *dp = join_path(rp, dev);
    if (get_u32_ptr(v, dp, "hcaHandles", &r->rdma[i].hca_handles, err) < 0 ||
        get_u32_ptr(v, dp, "hcaObjects", &r->rdma[i].hca_objects, err) < 0)
      return -1;
  }
  return 0;
}

/* linux.resources.pids is an object with a single required member. */
static int parse_pids(const struct json_value *o, const char *path, void *out,
                      cell_error **err) {
  return get_i64(o, path, "limit", true, out, err);
}

static int parse_resources(const struct json_value *o, const char *path,
                           void *out, cell_error **err) {
  struct spec_resources *r = out;
  if (get_list(o, path, "devices", sizeof(*r->devices), &r->devices,
               &r->n_devices, parse_device_rule, err) < 0 ||
      get_struct(o, path, "memory", sizeof(*r->memory), &r->memory,
                 parse_memory, err) < 0 ||
      get_struct(o, path, "cpu", sizeof(*r->cpu), &r->cpu, parse_cpu,
                 err) < 0 ||
      get_struct(o, path, "pids", sizeof(*r->pids_limit), &r->pids_limit,
                 parse_pids, err) < 0 ||
      get_struct(o, path, "blockIO", sizeof(*r->block_io), &r->block_io,
                 parse_block_io, err) < 0 ||
      get_struct(o, path, "network", sizeof(*r->network), &r->network,
                 parse_network, err) < 0 ||
      get_list(o, path, "hugepageLimits", sizeof(*r->hugepage_limits),
               &r->hugepage_limits, &r->n_hugepage_limits, parse_hugepage_limit,
               err) < 0 ||
      parse_rdma(o, path, r, err) < 0 ||
      get_string_map(o, path, "unified", &r->unified, &r->n_unified, err) < 0)
    return -1;
  return 0;
}

static int parse_seccomp_arg(const struct json_value *o, const char *path,
                             void *out, cell_error **err) {
  struct spec_seccomp_arg *a = out;
  if (get_u32(o, path, "index", true, &a->index, err) < 0 ||
      get_u64(o, path, "value", true, &a->value, err) < 0 ||
      get_u64(o, path, "valueTwo", false, &a->value_two, err) < 0 ||
      get_string(o, path, "op", true, &a->op, err) < 0)
    return -1;
  return 0;
}

static int parse_seccomp_syscall(const struct json_value *o, const char *path,
                                 void *out, cell_error **err) {
  struct spec_seccomp_syscall *s = out;
  if (member(o, "names") == NULL)
    return fail_required(err, path, "names");
  if (get_strv(o, path, "names", &s->names, err) < 0 ||
      get_string(o, path, "action", true, &s->action, err) < 0 ||
      get_u32_ptr(o, path, "errnoRet", &s->errno_ret, err) < 0 ||
      get_list(o, path, "args", sizeof(*s->args), &s->args, &s->n_args,
               parse_seccomp_arg, err) < 0)
    return -1;
  return 0;
}

static int parse_seccomp(const struct json_value *o, const char *path,
                         void *out, cell_error **err) {
  struct spec_seccomp *s = out;
  if (get_string(o, path, "defaultAction", true, &s->default_action, err) < 0 ||
      get_u32_ptr(o, path, "defaultErrnoRet", &s->default_errno_ret, err) < 0 ||
      get_strv(o, path, "architectures", &s->architectures, err) < 0 ||
      get_strv(o, path, "flags", &s->flags, err) < 0 ||
      get_string(o, path, "listenerPath", false, &s->listener_path, err) < 0 ||
      get_string(o, path, "listenerMetadata", false, &s->listener_metadata,
                 err) < 0 ||
      get_list(o, path, "syscalls", sizeof(*s->syscalls), &s->syscalls,
               &s->n_syscalls, parse_seccomp_syscall, err) < 0)
    return -1;
  return 0;
}

static int parse_personality(const struct json_value *o, const char *path,
                             void *out, cell_error **err) {
  struct spec_personality *p = out;
  if (get_string(o, path, "domain", true, &p->domain, err) < 0)
    return -1;
  if (!in_list(p->domain, personality_domains))
    return fail_at(err, path, "domain",
                   "unknown domain `%s` (LINUX or LINUX32)", p->domain);
  return get_strv(o, path, "flags", &p->flags, err);
}

/* linux.netDevices: {"eth0": {"name": "ctr0"}, ...} */
static int parse_net_devices(const struct json_value *l, const char *path,
                             struct spec_linux *out, cell_error **err) {
  const struct json_value *o;
  cleanup_free char *np = NULL;
  if (get_section(l, path, "netDevices", &o, &np, err) < 0)
    return -1;
  if (o == NULL || o->u.object.len == 0)
    return 0;
  out->net_devices = xcalloc(o->u.object.len, sizeof(*out->net_devices));
  out->n_net_devices = o->u.object.len;
  for (size_t i = 0; i < o->u.object.len; i++) {
    const char *host = o->u.object.keys[i];
    const struct json_value *v = o->u.object.values[i];
    out->net_devices[i].host_name = xstrdup(host);
    if (v->type != JSON_OBJECT)
      return fail_at(err, np, host, "must be an object");
    cleanup_free char *dp = join_path(np, host);
    if (get_string(v, dp, "name", false, &out->net_devices[i].name, err) < 0)
      return -1;
  }
  return 0;
}

static int parse_intel_rdt(const struct json_value *o, const char *path,
                           void *out, cell_error **err) {
  struct spec_intel_rdt *r = out;
  if (get_string(o, path, "closID", false, &r->clos_id, err) < 0 ||
      get_string(o, path, "l3CacheSchema", false, &r->l3_cache_schema,
                 err) < 0 ||
      get_string(o, path, "memBwSchema", false, &r->mem_bw_schema, err) < 0)
    return -1;
  return 0;
}

static int parse_rootfs_propagation(const struct json_value *o,
                                    const char *path, struct spec_linux *l,
                                    cell_error **err) {
  if (get_string(o, path, "rootfsPropagation", false, &l->rootfs_propagation,
                 err) < 0)
    return -1;
  if (l->rootfs_propagation && !in_list(l->rootfs_propagation, propagations))
    return fail_at(err, path, "rootfsPropagation",
                   "unknown propagation `%s` (shared, slave, private or "
                   "unbindable)",
                   l->rootfs_propagation);
  return 0;
}

static int parse_linux(const struct json_value *o, const char *path, void *out,
                       cell_error **err) {
  struct spec_linux *l = out;
  if (get_list(o, path, "namespaces", sizeof(*l->namespaces), &l->namespaces,
               &l->n_namespaces, parse_namespace, err) < 0 ||
      check_namespaces_unique(l, path, err) < 0 ||
      get_list(o, path, "uidMappings", sizeof(*l->uid_mappings),
               &l->uid_mappings, &l->n_uid_mappings, parse_id_mapping,
               err) < 0 ||
      get_list(o, path, "gidMappings", sizeof(*l->gid_mappings),
               &l->gid_mappings, &l->n_gid_mappings, parse_id_mapping,
               err) < 0 ||
      parse_time_offsets(o, path, l, err) < 0 ||
      get_list(o, path, "devices", sizeof(*l->devices), &l->devices,
               &l->n_devices, parse_device, err) < 0 ||
      get_string(o, path, "cgroupsPath", false, &l->cgroups_path, err) < 0 ||
      get_string_map(o, path, "sysctl", &l->sysctl, &l->n_sysctl, err) < 0 ||
      parse_rootfs_propagation(o, path, l, err) < 0 ||
      get_strv(o, path, "maskedPaths", &l->masked_paths, err) < 0 ||
      get_strv(o, path, "readonlyPaths", &l->readonly_paths, err) < 0 ||
      get_string(o, path, "mountLabel", false, &l->mount_label, err) < 0 ||
      parse_net_devices(o, path, l, err) < 0 ||
      get_struct(o, path, "resources", sizeof(*l->resources), &l->resources,
                 parse_resources, err) < 0 ||
      get_struct(o, path, "seccomp", sizeof(*l->seccomp), &l->seccomp,
                 parse_seccomp, err) < 0 ||
      get_struct(o, path, "personality", sizeof(*l->personality),
                 &l->personality, parse_personality, err) < 0 ||
      get_struct(o, path, "intelRdt", sizeof(*l->intel_rdt), &l->intel_rdt,
                 parse_intel_rdt, err) < 0)
    return -1;
  return 0;
}

/* ---- the document ---- */

static int parse_oci_version(const struct json_value *doc, struct spec *s,
                             cell_error **err) {
  if (get_string(doc, "", "ociVersion", true, &s->oci_version, err) < 0)
    return -1;
  if (!version_supported(s->oci_version))
    return fail_at(err, "", "ociVersion",
                   "unsupported version `%s` (cell supports 1.x)",
                   s->oci_version);
  return 0;
}

static int parse_document(const struct json_value *doc, struct spec *s,
                          cell_error **err) {
  const struct json_value *hooks;
  if (parse_oci_version(doc, s, err) < 0 ||
      get_struct(doc, "", "process", sizeof(*s->process), &s->process,
                 parse_process, err) < 0 ||
      get_struct(doc, "", "root", sizeof(*s->root), &s->root, parse_root,
                 err) < 0 ||
      get_string(doc, "", "hostname", false, &s->hostname, err) < 0 ||
      get_string(doc, "", "domainname", false, &s->domainname, err) < 0 ||
      get_list(doc, "", "mounts", sizeof(*s->mounts), &s->mounts, &s->n_mounts,
               parse_mount, err) < 0 ||
      get_object(doc, "", "hooks", &hooks, err) < 0 ||
      (hooks && parse_hooks(hooks, "hooks", &s->hooks, err) < 0) ||
      get_string_map(doc, "", "annotations", &s->annotations, &s->n_annotations,
                     err) < 0 ||
      get_struct(doc, "", "linux", sizeof(*s->linux_), &s->linux_, parse_linux,
                 err) < 0)
    return -1;
  return 0;
}

int spec_parse(const char *json, size_t len, struct spec **out,
               cell_error **err) {
  cleanup_json struct json_value *doc = NULL;
  if (json_parse(json, len, &doc, err) < 0)
    return -1;
  if (doc->type != JSON_OBJECT)
    return cell_fail(err, 0, "the document must be a JSON object, not %s %s",
                     doc->type == JSON_ARRAY || doc->type == JSON_OBJECT ? "an"
                                                                         : "a",
                     json_type_name(doc->type));
  cleanup_spec struct spec *s = xcalloc(1, sizeof(*s));
  if (parse_document(doc, s, err) < 0)
    return -1;
  *out = steal_pointer(&s);
  return 0;
}

/* A linux.resources object on its own (`cell update -r FILE`).  Member
 * paths start at the object ("memory.limit: ..."); the caller prefixes the
 * name of the file it came from. */
int spec_parse_resources(const char *json, size_t len,
                         struct spec_resources **out, cell_error **err) {
  cleanup_json struct json_value *doc = NULL;
  if (json_parse(json, len, &doc, err) < 0)
    return -1;
  if (doc->type != JSON_OBJECT)
    return cell_fail(err, 0,
                     "the resources must be a JSON object, not %s %s",
                     doc->type == JSON_ARRAY ? "an" : "a",
                     json_type_name(doc->type));
  struct spec_resources *r = xcalloc(1, sizeof(*r));
  if (parse_resources(doc, "", r, err) < 0) {
    spec_resources_free(r);
    return -1;
  }
  *out = r;
  return 0;
}

/* The absolute form of path, for messages (the file may not exist). */
static char *absolute_path(const char *path) {
  if (path[0] == '/')
    return xstrdup(path);
  cleanup_free char *cwd = get_current_dir_name();
  if (cwd == NULL)
    return xstrdup(path);
  return xasprintf("%s/%s", cwd, path);
}

int spec_load(const char *path, struct spec **out, cell_error **err) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  cleanup_free char *abs = absolute_path(path);
  cleanup_free char *buf = NULL;
  size_t len = 0;
  if (cell_read_file_at(AT_FDCWD, abs, SPEC_MAX_SIZE, &buf, &len, err) < 0 ||
      spec_parse(buf, len, out, err) < 0)
    return cell_error_wrap(err, "%s", base);
  return 0;
}

/* ---- free ---- */

static void free_kv(struct spec_kv *kv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(kv[i].key);
    free(kv[i].value);
  }
  free(kv);
}

static void free_process(struct spec_process *p) {
  if (p == NULL)
    return;
  free(p->console_size);
  free(p->user.umask);
  free(p->user.additional_gids);
  free(p->user.username);
  cell_strv_free(p->args);
  free(p->command_line);
  cell_strv_free(p->env);
  free(p->cwd);
  if (p->capabilities) {
    cell_strv_free(p->capabilities->bounding);
    cell_strv_free(p->capabilities->effective);
    cell_strv_free(p->capabilities->inheritable);
    cell_strv_free(p->capabilities->permitted);
    cell_strv_free(p->capabilities->ambient);
    free(p->capabilities);
  }
  for (size_t i = 0; i < p->n_rlimits; i++)
    free(p->rlimits[i].type);
  free(p->rlimits);
  free(p->apparmor_profile);
  free(p->oom_score_adj);
  free(p->selinux_label);
  if (p->scheduler) {
    free(p->scheduler->policy);
    cell_strv_free(p->scheduler->flags);
    free(p->scheduler);
  }
  if (p->io_priority) {
    free(p->io_priority->class_);
    free(p->io_priority);
  }
  if (p->exec_cpu_affinity) {
    free(p->exec_cpu_affinity->initial);
    free(p->exec_cpu_affinity->final);
    free(p->exec_cpu_affinity);
  }
  free(p);
}

static void free_mounts(struct spec_mount *m, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(m[i].destination);
    free(m[i].type);
    free(m[i].source);
    cell_strv_free(m[i].options);
    free(m[i].uid_mappings);
    free(m[i].gid_mappings);
  }
  free(m);
}

static void free_hook_list(struct spec_hook_list *l) {
  for (size_t i = 0; i < l->len; i++) {
    free(l->hooks[i].path);
    cell_strv_free(l->hooks[i].args);
    cell_strv_free(l->hooks[i].env);
    free(l->hooks[i].timeout);
  }
  free(l->hooks);
}

static void free_hooks(struct spec_hooks *h) {
  free_hook_list(&h->prestart);
  free_hook_list(&h->create_runtime);
  free_hook_list(&h->create_container);
  free_hook_list(&h->start_container);
  free_hook_list(&h->poststart);
  free_hook_list(&h->poststop);
}

static void free_block_io(struct spec_block_io *b) {
  if (b == NULL)
    return;
  free(b->weight);
  free(b->leaf_weight);
  for (size_t i = 0; i < b->n_weight_device; i++) {
    free(b->weight_device[i].weight);
    free(b->weight_device[i].leaf_weight);
  }
  free(b->weight_device);
  free(b->throttle_read_bps_device);
  free(b->throttle_write_bps_device);
  free(b->throttle_read_iops_device);
  free(b->throttle_write_iops_device);
  free(b);
}

static void free_resources(struct spec_resources *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n_devices; i++) {
    free(r->devices[i].type);
    free(r->devices[i].major);
    free(r->devices[i].minor);
    free(r->devices[i].access);
  }
  free(r->devices);
  if (r->memory) {
    struct spec_memory *m = r->memory;
    free(m->limit);
    free(m->reservation);
    free(m->swap);
    free(m->kernel);
    free(m->kernel_tcp);
    free(m->swappiness);
    free(m->disable_oom_killer);
    free(m->use_hierarchy);
    free(m->check_before_update);
    free(m);
  }
  if (r->cpu) {
    struct spec_cpu *c = r->cpu;
    free(c->shares);
    free(c->quota);
    free(c->burst);
    free(c->period);
    free(c->realtime_runtime);
    free(c->realtime_period);
    free(c->cpus);
    free(c->mems);
    free(c->idle);
    free(c);
  }
  free(r->pids_limit);
  free_block_io(r->block_io);
  for (size_t i = 0; i < r->n_hugepage_limits; i++)
    free(r->hugepage_limits[i].page_size);
  free(r->hugepage_limits);
  if (r->network) {
    for (size_t i = 0; i < r->network->n_priorities; i++)
      free(r->network->priorities[i].name);
    free(r->network->priorities);
    free(r->network->class_id);
    free(r->network);
  }
  for (size_t i = 0; i < r->n_rdma; i++) {
    free(r->rdma[i].device);
    free(r->rdma[i].hca_handles);
    free(r->rdma[i].hca_objects);
  }
  free(r->rdma);
  free_kv(r->unified, r->n_unified);
  free(r);
}

static void free_seccomp(struct spec_seccomp *s) {
  if (s == NULL)
    return;
  free(s->default_action);
  free(s->default_errno_ret);
  cell_strv_free(s->architectures);
  cell_strv_free(s->flags);
  free(s->listener_path);
  free(s->listener_metadata);
  for (size_t i = 0; i < s->n_syscalls; i++) {
    struct spec_seccomp_syscall *sc = &s->syscalls[i];
    cell_strv_free(sc->names);
    free(sc->action);
    free(sc->errno_ret);
    for (size_t j = 0; j < sc->n_args; j++)
      free(sc->args[j].op);
    free(sc->args);
  }
  free(s->syscalls);
  free(s);
}

static void free_linux(struct spec_linux *l) {
  if (l == NULL)
    return;
  for (size_t i = 0; i < l->n_namespaces; i++)
    free(l->namespaces[i].path);
  free(l->namespaces);
  free(l->uid_mappings);
  free(l->gid_mappings);
  free(l->time_monotonic);
  free(l->time_boottime);
  for (size_t i = 0; i < l->n_devices; i++) {
    free(l->devices[i].type);
    free(l->devices[i].path);
    free(l->devices[i].file_mode);
    free(l->devices[i].uid);
    free(l->devices[i].gid);
  }
  free(l->devices);
  free(l->cgroups_path);
  free_resources(l->resources);
  free_kv(l->sysctl, l->n_sysctl);
  free_seccomp(l->seccomp);
  free(l->rootfs_propagation);
  cell_strv_free(l->masked_paths);
  cell_strv_free(l->readonly_paths);
  free(l->mount_label);
  if (l->personality) {
    free(l->personality->domain);
    cell_strv_free(l->personality->flags);
    free(l->personality);
  }
  for (size_t i = 0; i < l->n_net_devices; i++) {
    free(l->net_devices[i].host_name);
    free(l->net_devices[i].name);
  }
  free(l->net_devices);
  if (l->intel_rdt) {
    free(l->intel_rdt->clos_id);
    free(l->intel_rdt->l3_cache_schema);
    free(l->intel_rdt->mem_bw_schema);
    free(l->intel_rdt);
  }
  free(l);
}

void spec_free(struct spec *s) {
  if (s == NULL)
    return;
  free(s->oci_version);
  free_process(s->process);
  if (s->root) {
    free(s->root->path);
    free(s->root);
  }
  free(s->hostname);
  free(s->domainname);
  free_mounts(s->mounts, s->n_mounts);
  free_hooks(&s->hooks);
  free_kv(s->annotations, s->n_annotations);
  free_linux(s->linux_);
  free(s);
}

void spec_resources_free(struct spec_resources *r) { free_resources(r); }

/* ---- whole-document checks ---- */

const struct spec_namespace *spec_find_namespace(const struct spec *s,
                                                 enum spec_ns_type type) {
  if (s == NULL || s->linux_ == NULL)
    return NULL;
  for (size_t i = 0; i < s->linux_->n_namespaces; i++)
    if (s->linux_->namespaces[i].type == type)
      return &s->linux_->namespaces[i];
  return NULL;
}

const char *spec_annotation(const struct spec *s, const char *key) {
  if (s == NULL)
    return NULL;
  for (size_t i = 0; i < s->n_annotations; i++)
    if (strcmp(s->annotations[i].key, key) == 0)
      return s->annotations[i].value;
  return NULL;
}

static int check_namespace_paths(const struct spec_linux *l, cell_error **err) {
  for (size_t i = 0; l && i < l->n_namespaces; i++)
    if (l->namespaces[i].path && !is_absolute(l->namespaces[i].path))
      return cell_fail(
          err, 0, "linux.namespaces[%zu].path: must be an absolute path", i);
  return 0;
}

/* Mappings make sense only for a user namespace, and a new one is useless
 * (every id unmapped) without them. */
static int check_id_mappings(const struct spec *s, cell_error **err) {
  const struct spec_linux *l = s->linux_;
  const struct spec_namespace *user = spec_find_namespace(s, SPEC_NS_USER);
  size_t n_uid = l ? l->n_uid_mappings : 0;
  size_t n_gid = l ? l->n_gid_mappings : 0;
  if (user == NULL) {
    if (n_uid > 0)
      return cell_fail(err, 0, "linux.uidMappings: requires a user namespace");
    if (n_gid > 0)
      return cell_fail(err, 0, "linux.gidMappings: requires a user namespace");
    return 0;
  }
  if (user->path == NULL) {
    if (n_uid == 0)
      return cell_fail(err, 0,
                       "linux.uidMappings: required with a new user namespace");
    if (n_gid == 0)
      return cell_fail(err, 0,
                       "linux.gidMappings: required with a new user namespace");
  }
  return 0;
}

static int check_time_offsets(const struct spec *s, cell_error **err) {
  const struct spec_linux *l = s->linux_;
  if (l == NULL || (l->time_monotonic == NULL && l->time_boottime == NULL))
    return 0;
  const struct spec_namespace *time = spec_find_namespace(s, SPEC_NS_TIME);
  if (time == NULL || time->path != NULL)
    return cell_fail(err, 0,
                     "linux.timeOffsets: requires a new time namespace");
  return 0;
}

/* A config whose linux.namespaces leaves out "mount" shares the runtime's
 * mount namespace, as the spec says of any type left out.  runc then makes
 * the config's mounts in the host's namespace, where they outlive the
 * container and change the host (it refuses only maskedPaths and
 * readonlyPaths); cell refuses everything that needs a mount, and enters
 * the rootfs with chroot, as runc does without a mount namespace. */
static int needs_mount(const struct spec *s, const char **what) {
  const struct spec_linux *l = s->linux_;
  if (s->n_mounts > 0)
    *what = "mounts";
  else if (s->root->readonly)
    *what = "root.readonly";
  else if (s->process->terminal)
    *what = "process.terminal"; /* the pty is bound onto /dev/console */
  else if (l && l->n_devices > 0)
    *what = "linux.devices";
  else if (l && l->masked_paths && l->masked_paths[0])
    *what = "linux.maskedPaths";
  else if (l && l->readonly_paths && l->readonly_paths[0])
    *what = "linux.readonlyPaths";
  else if (l && l->rootfs_propagation)
    *what = "linux.rootfsPropagation";
  else
    return 0;
  return 1;
}

static int check_without_mount_namespace(const struct spec *s,
                                         cell_error **err) {
  const char *what = NULL;
  if (spec_find_namespace(s, SPEC_NS_MOUNT) != NULL || !needs_mount(s, &what))
    return 0;
  return cell_fail(err, 0,
                   "%s: needs a mount namespace of the container's own, or "
                   "it would change the host's: add {\"type\": \"mount\"} "
                   "to linux.namespaces, or leave %s out",
                   what, what);
}

int spec_validate_for_create(const struct spec *s, cell_error **err) {
  if (s->process == NULL)
    return cell_fail(err, 0, "process: is required");
  if (s->root == NULL || s->root->path == NULL || s->root->path[0] == '\0')
    return cell_fail(err, 0, "root.path: is required");
  if (check_without_mount_namespace(s, err) < 0)
    return -1;
  if (check_namespace_paths(s->linux_, err) < 0 ||
      check_id_mappings(s, err) < 0 || check_time_offsets(s, err) < 0)
    return -1;
  return 0;
}
