/* linux.sysctl: only the keys that a namespace of the container's own
 * confines may be set; anything else would change the host. */
#include "runtime/sysctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "base/procfs.h"
#include "base/util.h"

/* IPC sysctls that the kernel keeps per ipc namespace. */
static const char *const ipc_keys[] = {
    "kernel.msgmax", "kernel.msgmnb",          "kernel.msgmni",
    "kernel.sem",    "kernel.shmall",          "kernel.shmmax",
    "kernel.shmmni", "kernel.shm_rmid_forced", NULL,
};

/* sysctl(8) syntax: a key containing '/' is a path under /proc/sys, and
 * its dots are part of names (net/ipv4/conf/eth0.100/forwarding);
 * otherwise dots separate the levels. */
static bool key_is_path(const char *key) { return strchr(key, '/') != NULL; }

/* The dotted name used to decide whether the key is allowed. */
static char *key_to_dotted(const char *key) {
  char *d = xstrdup(key);
  if (key_is_path(key))
    for (char *c = d; *c; c++)
      if (*c == '/')
        *c = '.';
  return d;
}

/* The path relative to /proc/sys. */
static char *key_to_path(const char *key) {
  char *p = xstrdup(key);
  if (!key_is_path(key))
    for (char *c = p; *c; c++)
      if (*c == '.')
        *c = '/';
  return p;
}

/* Every level must be a plain name: no empty level, no "." or "..", which
 * could otherwise lead a net.* key out of /proc/sys/net. */
static bool key_is_well_formed(const char *key) {
  char sep = key_is_path(key) ? '/' : '.';
  const char *start = key;
  for (;;) {
    const char *end = strchr(start, sep);
    size_t len = end ? (size_t)(end - start) : strlen(start);
    if (len == 0 || (len == 1 && start[0] == '.') ||
        (len == 2 && start[0] == '.' && start[1] == '.'))
      return false;
    if (!end)
      return true;
    start = end + 1;
  }
}

static bool is_ipc_key(const char *dotted) {
  for (size_t i = 0; ipc_keys[i]; i++)
    if (strcmp(dotted, ipc_keys[i]) == 0)
      return true;
  return strncmp(dotted, "fs.mqueue.", 10) == 0 && dotted[10] != '\0';
}

static bool is_net_key(const char *dotted) {
  return strncmp(dotted, "net.", 4) == 0 && dotted[4] != '\0';
}

/* A path to a namespace that is the runtime's own is no isolation at all.
 * Two stats; when one fails the namespace code reports the path later. */
static bool is_runtime_namespace(const char *path, const char *self) {
  struct stat a, b;
  if (stat(path, &a) < 0 || stat(self, &b) < 0)
    return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int check_namespace(const struct spec *s, const char *key,
                           enum spec_ns_type type, const char *what,
                           const char *self, cell_error **err) {
  const struct spec_namespace *ns = spec_find_namespace(s, type);
  if (ns == NULL)
    return cell_fail(err, 0, "linux.sysctl: `%s` needs %s namespace", key,
                     what);
  if (ns->path && is_runtime_namespace(ns->path, self))
    return cell_fail(err, 0,
                     "linux.sysctl: `%s` needs %s namespace of the container's "
                     "own, `%s` is the runtime's",
                     key, what, ns->path);
  return 0;
}

static int validate_key(const struct spec *s, const char *key,
                        cell_error **err) {
  if (!key_is_well_formed(key))
    return cell_fail(err, 0, "linux.sysctl: `%s` is not a valid key", key);
  cleanup_free char *dotted = key_to_dotted(key);
  if (is_net_key(dotted))
    return check_namespace(s, key, SPEC_NS_NETWORK, "a network",
                           "/proc/self/ns/net", err);
  if (is_ipc_key(dotted))
    return check_namespace(s, key, SPEC_NS_IPC, "an ipc", "/proc/self/ns/ipc",
                           err);
  return cell_fail(err, 0, "linux.sysctl: `%s` cannot be set in a container",
                   key);
}

int sysctl_validate(const struct spec *s, cell_error **err) {
  const struct spec_linux *l = s->linux_;
  if (l == NULL)
    return 0;
  for (size_t i = 0; i < l->n_sysctl; i++)
    if (validate_key(s, l->sysctl[i].key, err) < 0)
      return -1;
  return 0;
}

/* The key opened beneath our own procfs root: no symlink, no "..", no
 * mount crossing (procfs has no symlinks under sys/; one there, or a file
 * bind-mounted over a net.* knob in a joined mount namespace, would be an
 * attack).  The kernel picks the namespace of a net or ipc knob from the
 * process that opens it, not from the procfs mount. */
static int write_key(int procfs, const char *key, const char *value,
                     cell_error **err) {
  if (!key_is_well_formed(key))
    return cell_fail(err, 0, "linux.sysctl: `%s` is not a valid key", key);
  cleanup_free char *path = key_to_path(key);
  cleanup_free char *beneath = xasprintf("sys/%s", path);
  cleanup_close int fd = procfs_open_beneath(procfs, beneath, O_WRONLY, err);
  if (fd < 0)
    return cell_error_wrap(err, "linux.sysctl");
  const char *v = value ? value : "";
  if (cell_write_all(fd, v, strlen(v)) < 0)
    return cell_fail_errno(err, "linux.sysctl: set `%s` to `%s`", key, v);
  return 0;
}

int sysctl_apply(const struct spec *s, int procfs, cell_error **err) {
  const struct spec_linux *l = s->linux_;
  if (l == NULL || l->n_sysctl == 0)
    return 0;
  for (size_t i = 0; i < l->n_sysctl; i++)
    if (write_key(procfs, l->sysctl[i].key, l->sysctl[i].value, err) < 0)
      return -1;
  return 0;
}
