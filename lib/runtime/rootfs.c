#include "runtime/rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/mountinfo.h"
#include "base/procfs.h"
#include "base/resolve.h"
#include "base/syscalls.h"
#include "base/util.h"
#include "cgroup/cgroup-layout.h"
#include "runtime/devices.h"

/* The per-mount flags a bind remount can change, and which a user
 * namespace locks on mounts it inherited. */
#define LOCKABLE_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

static bool streq(const char *a, const char *b) {
  return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* ---- mount options ---------------------------------------------------------- */

enum opt_kind {
  OPT_SET,
  OPT_CLEAR,
  OPT_PROPAGATION,
  OPT_IDMAP,
  OPT_TMPCOPYUP,
  OPT_REC_SET,   /* flag is a MOUNT_ATTR_*: set on the whole tree */
  OPT_REC_CLEAR, /* flag is a MOUNT_ATTR_*: cleared on the whole tree */
  OPT_REC_ATIME, /* flag is the MOUNT_ATTR_* atime mode of the whole tree */
};

struct opt_def {
  const char *name;
  unsigned long flag;
  enum opt_kind kind;
};

static const struct opt_def opt_defs[] = {
    {"defaults", 0, OPT_SET},
    {"ro", MS_RDONLY, OPT_SET},
    {"rw", MS_RDONLY, OPT_CLEAR},
    {"nosuid", MS_NOSUID, OPT_SET},
    {"suid", MS_NOSUID, OPT_CLEAR},
    {"nodev", MS_NODEV, OPT_SET},
    {"dev", MS_NODEV, OPT_CLEAR},
    {"noexec", MS_NOEXEC, OPT_SET},
    {"exec", MS_NOEXEC, OPT_CLEAR},
    {"sync", MS_SYNCHRONOUS, OPT_SET},
    {"async", MS_SYNCHRONOUS, OPT_CLEAR},
    {"dirsync", MS_DIRSYNC, OPT_SET},
    {"remount", MS_REMOUNT, OPT_SET},
    {"mand", MS_MANDLOCK, OPT_SET},
    {"nomand", MS_MANDLOCK, OPT_CLEAR},
    {"noatime", MS_NOATIME, OPT_SET},
    {"atime", MS_NOATIME, OPT_CLEAR},
    {"nodiratime", MS_NODIRATIME, OPT_SET},
    {"diratime", MS_NODIRATIME, OPT_CLEAR},
    {"relatime", MS_RELATIME, OPT_SET},
    {"norelatime", MS_RELATIME, OPT_CLEAR},
    {"strictatime", MS_STRICTATIME, OPT_SET},
    {"nostrictatime", MS_STRICTATIME, OPT_CLEAR},
    {"lazytime", MS_LAZYTIME, OPT_SET},
    {"nolazytime", MS_LAZYTIME, OPT_CLEAR},
    {"silent", MS_SILENT, OPT_SET},
    {"loud", MS_SILENT, OPT_CLEAR},
    {"nosymfollow", MS_NOSYMFOLLOW, OPT_SET},
    {"symfollow", MS_NOSYMFOLLOW, OPT_CLEAR},
    {"bind", MS_BIND, OPT_SET},
    {"rbind", MS_BIND | MS_REC, OPT_SET},
    {"shared", MS_SHARED, OPT_PROPAGATION},
    {"rshared", MS_SHARED | MS_REC, OPT_PROPAGATION},
    {"slave", MS_SLAVE, OPT_PROPAGATION},
    {"rslave", MS_SLAVE | MS_REC, OPT_PROPAGATION},
    {"private", MS_PRIVATE, OPT_PROPAGATION},
    {"rprivate", MS_PRIVATE | MS_REC, OPT_PROPAGATION},
    {"unbindable", MS_UNBINDABLE, OPT_PROPAGATION},
    {"runbindable", MS_UNBINDABLE | MS_REC, OPT_PROPAGATION},
    {"idmap", 0, OPT_IDMAP},
    {"ridmap", 0, OPT_IDMAP},
    {"tmpcopyup", 0, OPT_TMPCOPYUP},
    /* The recursive options of the runtime spec (runc's recAttrFlags),
     * applied with mount_setattr(AT_RECURSIVE): a remount would reach the
     * top mount only, and a submount of a bind would keep its own flags. */
    {"rro", MOUNT_ATTR_RDONLY, OPT_REC_SET},
    {"rrw", MOUNT_ATTR_RDONLY, OPT_REC_CLEAR},
    {"rnosuid", MOUNT_ATTR_NOSUID, OPT_REC_SET},
    {"rsuid", MOUNT_ATTR_NOSUID, OPT_REC_CLEAR},
    {"rnodev", MOUNT_ATTR_NODEV, OPT_REC_SET},
    {"rdev", MOUNT_ATTR_NODEV, OPT_REC_CLEAR},
    {"rnoexec", MOUNT_ATTR_NOEXEC, OPT_REC_SET},
    {"rexec", MOUNT_ATTR_NOEXEC, OPT_REC_CLEAR},
    {"rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, OPT_REC_SET},
    {"rsymfollow", MOUNT_ATTR_NOSYMFOLLOW, OPT_REC_CLEAR},
    {"rnodiratime", MOUNT_ATTR_NODIRATIME, OPT_REC_SET},
    {"rdiratime", MOUNT_ATTR_NODIRATIME, OPT_REC_CLEAR},
    /* The atime modes are one value, not bits (mount_setattr(2)): each of
     * these picks the mode.  "ratime" and "rnostrictatime" give relatime,
     * the kernel's default once noatime or strictatime is dropped, and
     * "rnorelatime" gives strictatime, atime updated on every access. */
    {"rrelatime", MOUNT_ATTR_RELATIME, OPT_REC_ATIME},
    {"rnoatime", MOUNT_ATTR_NOATIME, OPT_REC_ATIME},
    {"rstrictatime", MOUNT_ATTR_STRICTATIME, OPT_REC_ATIME},
    {"ratime", MOUNT_ATTR_RELATIME, OPT_REC_ATIME},
    {"rnostrictatime", MOUNT_ATTR_RELATIME, OPT_REC_ATIME},
    {"rnorelatime", MOUNT_ATTR_STRICTATIME, OPT_REC_ATIME},
};

static const struct opt_def *find_opt(const char *name) {
  for (size_t i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++)
    if (strcmp(opt_defs[i].name, name) == 0)
      return &opt_defs[i];
  return NULL;
}

static void data_append(char **data, const char *opt) {
  if (*data == NULL) {
    *data = xstrdup(opt);
    return;
  }
  char *joined = xasprintf("%s,%s", *data, opt);
  free(*data);
  *data = joined;
}

int mount_options_parse(char *const *options, struct mount_options *out,
                        cell_error **err) {
  memset(out, 0, sizeof(*out));
  for (size_t i = 0; options != NULL && options[i] != NULL; i++) {
    const char *opt = options[i];
    if (*opt == '\0')
      continue;
    const struct opt_def *d = find_opt(opt);
    if (d == NULL) {
      data_append(&out->data, opt);
      continue;
    }
    switch (d->kind) {
    case OPT_SET:
      out->flags |= d->flag;
      out->clear_flags &= ~d->flag;
      break;
    case OPT_CLEAR:
      out->clear_flags |= d->flag;
      out->flags &= ~d->flag;
      break;
    case OPT_PROPAGATION:
      out->propagation |= d->flag;
      break;
    case OPT_IDMAP:
      out->idmap = true;
      break;
    case OPT_TMPCOPYUP:
      out->tmpcopyup = true;
      break;
    case OPT_REC_SET:
      out->rec_attr_set |= d->flag;
      out->rec_attr_clr &= ~d->flag;
      break;
    case OPT_REC_CLEAR:
      out->rec_attr_clr |= d->flag;
      out->rec_attr_set &= ~d->flag;
      break;
    case OPT_REC_ATIME:
      /* The kernel changes the atime mode only when attr_clr holds the
       * whole MOUNT_ATTR__ATIME field. */
      out->rec_attr_set = (out->rec_attr_set & ~MOUNT_ATTR__ATIME) | d->flag;
      out->rec_attr_clr |= MOUNT_ATTR__ATIME;
      break;
    }
  }
  return 0;
}

void mount_options_free(struct mount_options *o) {
  if (o == NULL)
    return;
  free(o->data);
  o->data = NULL;
}

int rootfs_propagation_flags(const char *name, unsigned long *flags,
                             cell_error **err) {
  *flags = 0;
  if (name == NULL)
    return 0;
  const struct opt_def *d = find_opt(name);
  if (d == NULL || d->kind != OPT_PROPAGATION)
    return cell_fail(err, 0, "linux.rootfsPropagation: invalid value `%s`",
                     name);
  *flags = d->flag;
  return 0;
}

/* ---- small mount helpers ---------------------------------------------------- */

static unsigned long long mount_id_of(int fd) {
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0 ||
      !(stx.stx_mask & STATX_MNT_ID))
    return 0;
  return stx.stx_mnt_id;
}

static unsigned long lockable_flags_of(int fd) {
  struct statfs sfs;
  if (fstatfs(fd, &sfs) < 0)
    return 0;
  return (unsigned long)sfs.f_flags & LOCKABLE_FLAGS;
}

/* Change the propagation of the mount at fd: one mount(2) call per type,
 * as the kernel accepts only one at a time. */
static int apply_propagation(int fd, unsigned long propagation) {
  static const unsigned long types[] = {MS_SHARED, MS_SLAVE, MS_PRIVATE,
                                        MS_UNBINDABLE};
  char p[32];
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
    if (!(propagation & types[i]))
      continue;
    if (mount(NULL, resolve_fd_path(fd, p), NULL,
              types[i] | (propagation & MS_REC), NULL) < 0)
      return -1;
  }
  return 0;
}

/* Add ro/nosuid/nodev/noexec to the mount at fd and all mounts below it:
 * for host trees bound recursively (/sys, /sys/fs/cgroup), where a remount
 * of the top alone would leave the submounts writable. */
static int set_flags_recursive(int fd, unsigned long flags) {
  struct mount_attr attr = {0};
  if (flags & MS_RDONLY)
    attr.attr_set |= MOUNT_ATTR_RDONLY;
  if (flags & MS_NOSUID)
    attr.attr_set |= MOUNT_ATTR_NOSUID;
  if (flags & MS_NODEV)
    attr.attr_set |= MOUNT_ATTR_NODEV;
  if (flags & MS_NOEXEC)
    attr.attr_set |= MOUNT_ATTR_NOEXEC;
  if (attr.attr_set == 0)
    return 0;
  if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                    sizeof(attr)) == 0)
    return 0;
  if (errno != ENOSYS)
    return -1;
  /* Old kernel: at least the top of the tree. */
  char p[32];
  return mount(NULL, resolve_fd_path(fd, p), NULL,
               MS_REMOUNT | MS_BIND | (flags & LOCKABLE_FLAGS) |
                   lockable_flags_of(fd),
               NULL);
}

struct mount_point_query {
  unsigned long long id;
  char *mount_point;
  bool shared;
};

static int match_mount_id(const struct mountinfo_entry *e, void *arg) {
  struct mount_point_query *q = arg;
  if (e->id != q->id)
    return 0;
  q->mount_point = xstrdup(e->mount_point);
  q->shared = e->shared;
  return 1;
}

/* Where mount `id` is mounted, and whether it is shared. */
static int find_mount_point(int procfs, unsigned long long id,
                            char **mount_point, bool *shared, cell_error **err) {
  struct mount_point_query q = {.id = id};
  int r = mountinfo_each(procfs, match_mount_id, &q, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return cell_fail(err, ENOENT, "mount %llu not found in /proc/self/mountinfo",
                     id);
  *mount_point = q.mount_point;
  *shared = q.shared;
  return 0;
}

/* pivot_root refuses a new root whose parent mount is shared, and binding
 * the rootfs from a shared mount would put the bind in the host's peer
 * group: make that one mount private. */
static int make_rootfs_parent_private(int procfs, const char *rootfs,
                                      cell_error **err) {
  cleanup_close int fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open rootfs `%s`", rootfs);
  unsigned long long id = mount_id_of(fd);
  if (id == 0)
    return 0; /* no STATX_MNT_ID: nothing we can check */
  cleanup_free char *mount_point = NULL;
  bool shared = false;
  if (find_mount_point(procfs, id, &mount_point, &shared, err) < 0)
    return -1;
  if (shared && mount(NULL, mount_point, NULL, MS_PRIVATE, NULL) < 0)
    return cell_fail_errno(err, "make `%s` private", mount_point);
  return 0;
}

/* ---- one spec mount --------------------------------------------------------- */

struct mount_job {
  const struct rootfs_config *cfg;
  const struct spec_mount *m;
  int rootfd;
  struct mount_options opts;
  bool bind;
  bool recursive_flags; /* a host tree was bound instead of a new fs */
  bool cgroup_tree;     /* a tmpfs to fill with the v1 hierarchies */
  int tree_fd;          /* detached copy of the bind source, or -1 */
};

static const char *job_what(const struct mount_job *j) {
  if (j->m->source)
    return j->m->source;
  return j->m->type ? j->m->type : "none";
}

/* "mount `src` on `/dest`[: <what failed>]: <strerror>" */
__attribute__((format(printf, 4, 5))) static int
job_fail(const struct mount_job *j, cell_error **err, int errnum,
         const char *fmt, ...) {
  cleanup_free char *detail = NULL;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&detail, fmt, ap) < 0)
      abort();
    va_end(ap);
  }
  return cell_fail(err, errnum, "mount `%s` on `%s`%s%s", job_what(j),
                   j->m->destination, detail ? ": " : "", detail ? detail : "");
}

static int job_wrap(const struct mount_job *j, cell_error **err) {
  return cell_error_wrap(err, "mount `%s` on `%s`", job_what(j),
                         j->m->destination);
}

/* Destinations in /proc are refused, except /proc itself for a procfs and
 * the files LXCFS-like tools overlay: mounting over /proc/self/attr or
 * /proc/sys would undo the LSM and sysctl protections. */
static const char *const proc_allowed[] = {
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo",   "/proc/stat",
    "/proc/swaps",   "/proc/uptime",    "/proc/loadavg",   "/proc/slabinfo",
    "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
};

static bool source_is_procfs(const char *source) {
  struct statfs sfs;
  return source && statfs(source, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
}

static int check_proc_destination(const struct mount_job *j, int dfd,
                                  cell_error **err) {
  char p[32], real[PATH_MAX];
  ssize_t n = readlink(resolve_fd_path(dfd, p), real, sizeof(real) - 1);
  if (n < 0)
    return job_fail(j, err, errno, "readlink destination");
  real[n] = '\0';
  size_t rlen = strlen(j->cfg->rootfs);
  while (rlen > 1 && j->cfg->rootfs[rlen - 1] == '/')
    rlen--;
  if (strncmp(real, j->cfg->rootfs, rlen) != 0 ||
      (real[rlen] != '/' && real[rlen] != '\0'))
    return job_fail(j, err, 0, "destination resolved outside the rootfs (`%s`)",
                    real);
  const char *inside = real[rlen] ? real + rlen : "/";
  if (strcmp(inside, "/proc") == 0) {
    if (streq(j->m->type, "proc") || (j->bind && source_is_procfs(j->m->source)))
      return 0;
    return job_fail(j, err, 0, "only a proc filesystem may be mounted there");
  } else if (strncmp(inside, "/proc/", 6) == 0) {
    for (size_t i = 0; i < sizeof(proc_allowed) / sizeof(proc_allowed[0]); i++)
      if (strcmp(inside, proc_allowed[i]) == 0)
        return 0;
  } else {
    return 0;
  }
  return job_fail(j, err, 0, "`%s` is inside /proc: refused", inside);
}

/* sysfs needs a network namespace owned by our user namespace; without
 * one, bind the host's /sys instead. */
static int attach_sysfs(struct mount_job *j, const char *target) {
  unsigned long flags = j->opts.flags & ~(MS_BIND | MS_REC);
  if (mount(j->m->source ? j->m->source : "sysfs", target, "sysfs", flags,
            j->opts.data) == 0)
    return 0;
  if (errno != EPERM || !j->cfg->in_userns)
    return -1;
  j->recursive_flags = true;
  return mount("/sys", target, NULL, MS_BIND | MS_REC, NULL);
}

static bool host_is_cgroup2_only(void) {
  struct statfs sfs;
  return statfs("/sys/fs/cgroup", &sfs) == 0 &&
         sfs.f_type == CGROUP2_SUPER_MAGIC;
}

/* type "cgroup": a cgroup2 mount on a unified host (it shows our cgroup
 * namespace).  On a v1 or hybrid host, a tmpfs that fill_cgroup_tree
 * gives one mount per hierarchy of the host, as runc's mountCgroupV1
 * does: binding the host's /sys/fs/cgroup would show every cgroup of the
 * host, other containers' included. */
static int attach_cgroup(struct mount_job *j, const char *target) {
  unsigned long flags = j->opts.flags & ~(MS_BIND | MS_REC);
  if (host_is_cgroup2_only()) {
    if (mount("cgroup2", target, "cgroup2", flags, j->opts.data) == 0)
      return 0;
    if (errno != EPERM && errno != EBUSY)
      return -1;
    j->recursive_flags = true;
    return mount("/sys/fs/cgroup", target, NULL, MS_BIND | MS_REC, NULL);
  }
  /* Read-write until it is filled; fill_cgroup_tree applies "ro". */
  j->cgroup_tree = true;
  return mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
               "mode=755");
}

/* ---- the cgroup hierarchies of a v1 or hybrid host ------------------------ */

/* A hierarchy mounted at /sys/fs/cgroup/<dir> in our mount namespace (a
 * copy of the host's). */
struct cgroup_hierarchy {
  char *dir;         /* "cpu,cpuacct", "systemd", "unified" */
  char *host_mount;  /* "/sys/fs/cgroup/cpu,cpuacct" */
  char *subsystems;  /* "cpu,cpuacct", "name=systemd"; "" for cgroup2 */
  bool v2;
};

struct cgroup_hierarchies {
  struct cgroup_hierarchy *list;
  size_t n;
};

static void cgroup_hierarchies_free(struct cgroup_hierarchies *h) {
  for (size_t i = 0; i < h->n; i++) {
    free(h->list[i].dir);
    free(h->list[i].host_mount);
    free(h->list[i].subsystems);
  }
  free(h->list);
  *h = (struct cgroup_hierarchies){0};
}

/* The controllers and name= of a v1 mount's super options
 * ("rw,cpu,cpuacct", "rw,xattr,name=systemd"): what names the hierarchy
 * to mount(2) and in /proc/self/cgroup.  Flags like xattr or noprefix are
 * the existing superblock's, which a new mount of it gets anyway. */
static char *v1_subsystems(const char *super_opts) {
  static const char *const not_subsystems[] = {
      "rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode",
      "favordynmods", "none"};
  cleanup_free char *copy = xstrdup(super_opts);
  char *out = NULL, *save = NULL;
  for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
    bool skip = strncmp(o, "release_agent=", 14) == 0;
    for (size_t i = 0; i < sizeof(not_subsystems) / sizeof(*not_subsystems); i++)
      skip = skip || strcmp(o, not_subsystems[i]) == 0;
    if (!skip)
      data_append(&out, o);
  }
  return out ? out : xstrdup("");
}

static int add_cgroup_hierarchy(const struct mountinfo_entry *e, void *arg) {
  struct cgroup_hierarchies *h = arg;
  bool v2 = strcmp(e->fstype, "cgroup2") == 0;
  if (!v2 && strcmp(e->fstype, "cgroup") != 0)
    return 0;
  const char *prefix = CGROUP_MOUNT "/";
  if (strncmp(e->mount_point, prefix, strlen(prefix)) != 0)
    return 0;
  const char *dir = e->mount_point + strlen(prefix);
  if (*dir == '\0' || strchr(dir, '/') != NULL || strcmp(dir, ".") == 0 ||
      strcmp(dir, "..") == 0)
    return 0;
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(h->list[i].dir, dir) == 0)
      return 0; /* mounted twice there: the first will do */
  h->list = xrealloc(h->list, (h->n + 1) * sizeof(*h->list));
  h->list[h->n++] = (struct cgroup_hierarchy){
      .dir = xstrdup(dir),
      .host_mount = xstrdup(e->mount_point),
      .subsystems = v2 ? xstrdup("") : v1_subsystems(e->super_opts),
      .v2 = v2};
  return 0;
}

/* Same comma-separated names, in any order. */
static bool same_name_set(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  cleanup_free char *copy = xstrdup(a);
  char *save = NULL;
  for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
    na++;
    size_t len = strlen(o);
    const char *p = b;
    bool found = false;
    while (p && *p && !found) {
      found = strncmp(p, o, len) == 0 && (p[len] == ',' || p[len] == '\0');
      p = strchr(p, ',');
      p = p ? p + 1 : NULL;
    }
    if (!found)
      return false;
  }
  for (const char *p = b; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
    nb++;
  return na == nb;
}

/* Our cgroup in the hierarchy (from /proc/self/cgroup, read through the
 * verified procfs): NULL when we have none there. */
static char *own_cgroup_path(const char *own, const struct cgroup_hierarchy *h) {
  cleanup_free char *copy = xstrdup(own);
  char *save = NULL;
  for (char *line = strtok_r(copy, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL)
      continue;
    *c2 = '\0';
    bool match = h->v2 ? c1[1] == '\0'
                       : c1[1] != '\0' && same_name_set(c1 + 1, h->subsystems);
    if (match)
      return xstrdup(c2 + 1);
  }
  return NULL;
}

/* With a cgroup namespace: a new mount of the hierarchy, whose root the
 * kernel makes the namespace's, i.e. the container's cgroup. */
static int mount_cgroup_fresh(const struct cgroup_hierarchy *h, int fd,
                              unsigned long flags) {
  char p[32];
  if (h->v2)
    return mount("cgroup2", resolve_fd_path(fd, p), "cgroup2", flags, NULL);
  return mount("cgroup", resolve_fd_path(fd, p), "cgroup", flags, h->subsystems);
}

/* Without one: a bind of the container's own cgroup directory.  A
 * hierarchy the container has no cgroup of its own in stays an empty
 * directory, never the host's root. */
static int bind_own_cgroup(const struct cgroup_hierarchy *h, const char *own,
                           int tree, int fd, unsigned long flags,
                           cell_error **err) {
  cleanup_free char *path = own_cgroup_path(own, h);
  if (path == NULL || strcmp(path, "/") == 0)
    return 0;
  cleanup_free char *source = xasprintf("%s%s", h->host_mount, path);
  cleanup_close int src = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (src < 0)
    return cell_fail_errno(err, "open `%s`", source);
  char sp[32], tp[32];
  resolve_fd_path(fd, tp);
  if (mount(resolve_fd_path(src, sp), tp, NULL, MS_BIND, NULL) < 0)
    return cell_fail_errno(err, "bind `%s`", source);
  /* fd still names the covered directory: look the bind up again. */
  cleanup_close int mfd =
      openat(tree, h->dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (mfd < 0)
    return cell_fail_errno(err, "open the bind of `%s`", source);
  if (mount(NULL, resolve_fd_path(mfd, tp), NULL,
            MS_REMOUNT | MS_BIND | flags | lockable_flags_of(mfd), NULL) < 0)
    return cell_fail_errno(err, "remount the bind of `%s`", source);
  return 0;
}

/* "cpu,cpuacct" also answers to cpu and cpuacct, as on the host. */
static int link_merged_names(int tree, const struct cgroup_hierarchy *h,
                             cell_error **err) {
  if (h->v2 || strchr(h->dir, ',') == NULL)
    return 0;
  cleanup_free char *copy = xstrdup(h->dir);
  char *save = NULL;
  for (char *n = strtok_r(copy, ",", &save); n; n = strtok_r(NULL, ",", &save))
    if (symlinkat(h->dir, tree, n) < 0 && errno != EEXIST)
      return cell_fail_errno(err, "symlink `%s` to `%s`", n, h->dir);
  return 0;
}

static int mount_hierarchy(int tree, const struct cgroup_hierarchy *h,
                           const char *own,
                           unsigned long flags, cell_error **err) {
  if (mkdirat(tree, h->dir, 0755) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", h->dir);
  cleanup_close int fd =
      openat(tree, h->dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", h->dir);
  if (own != NULL)
    return bind_own_cgroup(h, own, tree, fd, flags, err);
  if (mount_cgroup_fresh(h, fd, flags) < 0)
    return cell_fail_errno(err, "mount the %s hierarchy `%s`",
                           h->v2 ? "cgroup2" : "cgroup", h->dir);
  return 0;
}

/* One mount per hierarchy of the host in the tmpfs at tree, then "ro". */
static int fill_cgroup_tree(const struct mount_job *j, int tree,
                            cell_error **err) {
  unsigned long flags = (j->opts.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) |
                        MS_NOSUID | MS_NODEV | MS_NOEXEC;
  bool cgroupns = spec_find_namespace(j->cfg->spec, SPEC_NS_CGROUP) != NULL;
  cleanup_free char *own = NULL;
  if (!cgroupns &&
      procfs_read_pid_file(j->cfg->procfs, PROCFS_SELF, "cgroup", &own, err) < 0)
    return job_wrap(j, err);
  struct cgroup_hierarchies h = {0};
  int r = mountinfo_each(j->cfg->procfs, add_cgroup_hierarchy, &h, err);
  for (size_t i = 0; r == 0 && i < h.n; i++) {
    r = mount_hierarchy(tree, &h.list[i], own, flags, err);
    if (r == 0)
      r = link_merged_names(tree, &h.list[i], err);
  }
  cgroup_hierarchies_free(&h);
  if (r < 0)
    return job_wrap(j, err);
  char p[32];
  if ((j->opts.flags & MS_RDONLY) &&
      mount(NULL, resolve_fd_path(tree, p), NULL,
            MS_REMOUNT | MS_BIND | MS_RDONLY | lockable_flags_of(tree), NULL) < 0)
    return job_fail(j, err, errno, "make the tmpfs read-only");
  return 0;
}

static int attach(struct mount_job *j, const char *target) {
  const struct spec_mount *m = j->m;
  const struct mount_options *o = &j->opts;
  if (o->flags & MS_REMOUNT)
    return mount(m->source, target, m->type, o->flags, o->data);
  /* target is /proc/self/fd/N: a magic link, which move_mount follows only
   * when told to. */
  if (j->bind && j->tree_fd >= 0)
    return sys_move_mount(j->tree_fd, "", AT_FDCWD, target,
                          MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS);
  if (j->bind)
    return mount(m->source, target, NULL, o->flags & (MS_BIND | MS_REC), NULL);
  if (streq(m->type, "sysfs"))
    return attach_sysfs(j, target);
  if (streq(m->type, "cgroup"))
    return attach_cgroup(j, target);
  return mount(m->source ? m->source : m->type, target, m->type, o->flags,
               o->data);
}

/* A bind mount takes its flags from the source; ro, nosuid, ... need a
 * remount.  Flags the source has and the user did not clear are kept,
 * and in a user namespace the locked ones are kept whatever was asked. */
static int remount_bind(const struct mount_job *j, int fd) {
  unsigned long want = j->opts.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
  if (want == 0 && j->opts.clear_flags == 0)
    return 0;
  unsigned long keep = lockable_flags_of(fd);
  if (!j->cfg->in_userns)
    keep &= ~j->opts.clear_flags;
  char p[32];
  return mount(NULL, resolve_fd_path(fd, p), NULL,
               MS_REMOUNT | MS_BIND | want | keep, NULL);
}

/* "rro", "rnosuid", ...: on the mount at fd and every mount below it. */
static int apply_recursive_options(const struct mount_job *j, int fd) {
  struct mount_attr attr = {.attr_set = j->opts.rec_attr_set,
                            .attr_clr = j->opts.rec_attr_clr};
  if (attr.attr_set == 0 && attr.attr_clr == 0)
    return 0;
  return mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                       sizeof(attr));
}

/* A tmpfs on an existing directory keeps the directory's mode (/tmp's
 * 1777), unless mode= says otherwise. */
static bool data_has_mode(const char *data) {
  for (const char *p = data; p && *p;) {
    if (strncmp(p, "mode=", 5) == 0)
      return true;
    p = strchr(p, ',');
    p = p ? p + 1 : NULL;
  }
  return false;
}

/* ---- tmpcopyup --------------------------------------------------------------- */

static int copy_entry(int from, int to, const char *name, cell_error **err);

/* Copy the contents of directory `from` into `to` (both inside the
 * rootfs), keeping modes and owners; symlinks are copied, never followed. */
static int copy_tree(int from_fd, int to_fd, cell_error **err) {
  int from = openat(from_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (from < 0)
    return cell_fail_errno(err, "tmpcopyup: open the covered directory");
  DIR *d = fdopendir(from);
  if (d == NULL) {
    close(from);
    return cell_fail_errno(err, "tmpcopyup: read the covered directory");
  }
  cleanup_close int to = openat(to_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = to < 0 ? cell_fail_errno(err, "tmpcopyup: open the tmpfs") : 0;
  struct dirent *de;
  while (r == 0 && (de = readdir(d)) != NULL)
    if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
      r = copy_entry(dirfd(d), to, de->d_name, err);
  closedir(d);
  return r;
}

static int copy_file(int from, int to, const char *name, const struct stat *st,
                     cell_error **err) {
  cleanup_close int in = openat(from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int out =
      openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
             st->st_mode & 07777);
  if (in < 0 || out < 0)
    return cell_fail_errno(err, "tmpcopyup: `%s`", name);
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof(buf))) > 0)
    if (cell_write_all(out, buf, (size_t)n) < 0)
      return cell_fail_errno(err, "tmpcopyup: write `%s`", name);
  return n < 0 ? cell_fail_errno(err, "tmpcopyup: read `%s`", name) : 0;
}

static int copy_entry(int from, int to, const char *name, cell_error **err) {
  struct stat st;
  if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "tmpcopyup: stat `%s`", name);
  int r = 0;
  if (S_ISDIR(st.st_mode)) {
    if (mkdirat(to, name, st.st_mode & 07777) < 0)
      return cell_fail_errno(err, "tmpcopyup: mkdir `%s`", name);
    cleanup_close int sub_from = openat(from, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    cleanup_close int sub_to = openat(to, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub_from < 0 || sub_to < 0)
      return cell_fail_errno(err, "tmpcopyup: open `%s`", name);
    r = copy_tree(sub_from, sub_to, err);
  } else if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlinkat(from, name, target, sizeof(target) - 1);
    if (n < 0)
      return cell_fail_errno(err, "tmpcopyup: readlink `%s`", name);
    target[n] = '\0';
    if (symlinkat(target, to, name) < 0)
      return cell_fail_errno(err, "tmpcopyup: symlink `%s`", name);
  } else if (S_ISREG(st.st_mode)) {
    r = copy_file(from, to, name, &st, err);
  } else {
    return 0; /* devices, fifos, sockets: not copied, as runc */
  }
  if (r == 0 && fchownat(to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "tmpcopyup: chown `%s`", name);
  return r;
}

void rootfs_kernel_mounts_clear(struct rootfs_kernel_mounts *k) {
  for (size_t i = 0; i < k->n; i++) {
    free(k->list[i].destination);
    close(k->list[i].fd);
  }
  free(k->list);
  *k = (struct rootfs_kernel_mounts){0};
}

/* procfs and sysfs (or a bind of the host's procfs): what maskedPaths and
 * readonlyPaths protect. */
static bool is_kernel_fs(const struct mount_job *j) {
  return streq(j->m->type, "proc") || streq(j->m->type, "sysfs") ||
         (j->bind && source_is_procfs(j->m->source));
}

/* runc's rule: procfs and sysfs go on an ordinary directory, one reached
 * without symlinks, so that where they land cannot change with a later
 * mount that gives a link in the rootfs another meaning. */
static int open_kernel_fs_destination(const struct mount_job *j,
                                      cell_error **err) {
  cleanup_close int made = resolve_create(j->rootfd, j->m->destination, false, err);
  if (made < 0)
    return job_wrap(j, err);
  cell_error *e = NULL;
  int fd = resolve_open_no_symlinks(j->rootfd, j->m->destination,
                                    O_PATH | O_DIRECTORY, &e);
  if (fd < 0) {
    int errnum = e->errnum;
    cleanup_free char *why = xstrdup(e->msg);
    cell_error_free(&e);
    return job_fail(j, err, errnum,
                    "%s must be mounted on an ordinary directory (%s): "
                    "make it a real directory in the rootfs",
                    j->m->type, why);
  }
  return fd;
}

/* Keep an fd of the kernel filesystem just mounted, after checking that it
 * is one. */
static int remember_kernel_mount(const struct mount_job *j, int mfd,
                                 cell_error **err) {
  struct statfs sfs;
  if (fstatfs(mfd, &sfs) < 0)
    return job_fail(j, err, errno, "statfs");
  if (sfs.f_type != PROC_SUPER_MAGIC && sfs.f_type != SYSFS_MAGIC)
    return job_fail(j, err, 0, "the destination is not the filesystem just mounted");
  struct rootfs_kernel_mounts *k = j->cfg->kernel_mounts;
  if (k == NULL)
    return 0;
  int fd = fcntl(mfd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    return job_fail(j, err, errno, "dup");
  k->list = xrealloc(k->list, (k->n + 1) * sizeof(*k->list));
  k->list[k->n++] = (struct rootfs_kernel_mount){
      .destination = xstrdup(j->m->destination), .fd = fd};
  return 0;
}

/* The first of options that is no mount option cell knows: what went to
 * the filesystem data. */
static const char *first_unknown_option(char *const *options) {
  for (size_t i = 0; options && options[i]; i++)
    if (options[i][0] != '\0' && find_opt(options[i]) == NULL)
      return options[i];
  return "";
}

static bool is_bind(const struct spec_mount *m, const struct mount_options *o) {
  return (o->flags & MS_BIND) || streq(m->type, "bind") || streq(m->type, "none");
}

/* "/dev", "/dev/", "//dev": mount destinations are absolute. */
static bool is_dev(const char *path) {
  while (*path == '/')
    path++;
  if (strncmp(path, "dev", 3) != 0)
    return false;
  for (path += 3; *path == '/'; path++)
    ;
  return *path == '\0';
}

static bool is_readonly_dev_tmpfs(const struct spec_mount *m,
                                  const struct mount_options *o) {
  return m->destination && is_dev(m->destination) && streq(m->type, "tmpfs") &&
         !(o->flags & MS_REMOUNT) && (o->flags & MS_RDONLY);
}

static int mount_entry(struct mount_job *j, cell_error **err) {
  const struct spec_mount *m = j->m;
  const char *dest = m->destination;
  if (dest == NULL)
    return cell_fail(err, 0, "mount `%s`: no destination", job_what(j));
  if (mount_options_parse(m->options, &j->opts, err) < 0)
    return job_wrap(j, err);
  if (j->opts.idmap || m->n_uid_mappings || m->n_gid_mappings)
    return job_fail(j, err, 0, "idmapped mounts are not supported");
  j->bind = is_bind(m, &j->opts);
  if (j->bind)
    j->opts.flags |= MS_BIND;
  /* /dev is filled after the mounts (devpts on /dev/pts, the device
   * nodes): rootfs_prepare makes it read-only at the end. */
  if (is_readonly_dev_tmpfs(m, &j->opts))
    j->opts.flags &= ~MS_RDONLY;
  if (j->bind && j->opts.data != NULL)
    return job_fail(j, err, 0,
                    "unknown option `%s` for a bind mount: a bind takes no "
                    "filesystem options; remove it from mounts[].options",
                    first_unknown_option(m->options));

  bool as_file = false;
  if (j->bind) {
    struct stat st;
    if (m->source == NULL)
      return job_fail(j, err, 0, "bind mount without a source");
    int r = j->tree_fd >= 0 ? fstat(j->tree_fd, &st) : stat(m->source, &st);
    if (r < 0)
      return job_fail(j, err, errno, "stat source");
    as_file = !S_ISDIR(st.st_mode);
  }

  /* Remember an existing directory's mode before covering it. */
  mode_t old_mode = 0;
  bool kernel_fs = !(j->opts.flags & MS_REMOUNT) && is_kernel_fs(j);
  cleanup_close int dfd = kernel_fs ? open_kernel_fs_destination(j, err)
                                    : resolve_open(j->rootfd, dest, O_PATH, NULL);
  if (kernel_fs && dfd < 0)
    return -1;
  if (dfd >= 0) {
    struct stat st;
    if (fstat(dfd, &st) == 0 && S_ISDIR(st.st_mode))
      old_mode = st.st_mode & 07777;
  } else {
    dfd = resolve_create(j->rootfd, dest, as_file, err);
    if (dfd < 0)
      return job_wrap(j, err);
  }
  if (check_proc_destination(j, dfd, err) < 0)
    return -1;

  unsigned long long old_id = mount_id_of(dfd);
  char p[32];
  if (attach(j, resolve_fd_path(dfd, p)) < 0)
    return job_fail(j, err, errno, NULL);
  if (j->opts.flags & MS_REMOUNT)
    return 0;

  /* The fd still names what was covered: look the destination up again,
   * which also checks the mount landed where the config says. */
  cleanup_close int mfd = kernel_fs
      ? resolve_open_no_symlinks(j->rootfd, dest, O_PATH | O_DIRECTORY, err)
      : resolve_open(j->rootfd, dest, O_PATH, err);
  if (mfd < 0)
    return job_wrap(j, err);
  if (old_id != 0 && mount_id_of(mfd) == old_id)
    return job_fail(j, err, 0, "destination changed while mounting");
  if (kernel_fs && remember_kernel_mount(j, mfd, err) < 0)
    return -1;

  if (j->cgroup_tree && fill_cgroup_tree(j, mfd, err) < 0)
    return -1;
  if (j->recursive_flags) {
    if (set_flags_recursive(mfd, j->opts.flags) < 0)
      return job_fail(j, err, errno, "apply mount flags to the host tree");
  } else if (j->bind) {
    if (remount_bind(j, mfd) < 0)
      return job_fail(j, err, errno, "remount with the mount options");
  }
  if (apply_recursive_options(j, mfd) < 0)
    return job_fail(j, err, errno, "apply the recursive options (rro, rnosuid, ...)");
  if (j->opts.tmpcopyup && streq(m->type, "tmpfs") &&
      copy_tree(dfd, mfd, err) < 0)
    return job_wrap(j, err);
  if (old_mode && streq(m->type, "tmpfs") && !data_has_mode(j->opts.data) &&
      chmod(resolve_fd_path(mfd, p), old_mode) < 0)
    return job_fail(j, err, errno, "chmod");
  if (apply_propagation(mfd, j->opts.propagation) < 0)
    return job_fail(j, err, errno, "set propagation");
  return 0;
}

static int mount_all(const struct rootfs_config *cfg, int rootfd,
                     cell_error **err) {
  const struct spec *s = cfg->spec;
  for (size_t i = 0; i < s->n_mounts; i++) {
    struct mount_job j = {.cfg = cfg,
                          .m = &s->mounts[i],
                          .rootfd = rootfd,
                          .tree_fd = cfg->bind_fds ? cfg->bind_fds[i] : -1};
    int r = mount_entry(&j, err);
    mount_options_free(&j.opts);
    if (r < 0)
      return -1;
  }
  return 0;
}

/* ---- bind sources opened by the runtime ---------------------------------- */

int rootfs_bind_sources_in_bundle(struct spec *s, const char *bundle,
                                  cell_error **err) {
  for (size_t i = 0; i < s->n_mounts; i++) {
    struct spec_mount *m = &s->mounts[i];
    struct mount_options o = {0};
    if (mount_options_parse(m->options, &o, err) < 0)
      return cell_error_wrap(err, "mounts[%zu]", i);
    bool bind = is_bind(m, &o);
    mount_options_free(&o);
    if (!bind || m->source == NULL || m->source[0] == '/')
      continue;
    char *joined = xasprintf("%s/%s", bundle, m->source);
    free(m->source);
    m->source = joined;
  }
  return 0;
}

int rootfs_open_bind_sources(const struct spec *s, int **fds, cell_error **err) {
  int *out = xmalloc((s->n_mounts ? s->n_mounts : 1) * sizeof(int));
  for (size_t i = 0; i < s->n_mounts; i++)
    out[i] = -1;
  for (size_t i = 0; i < s->n_mounts; i++) {
    const struct spec_mount *m = &s->mounts[i];
    struct mount_options o = {0};
    if (mount_options_parse(m->options, &o, err) < 0) {
      rootfs_close_bind_sources(out, s->n_mounts);
      return cell_error_wrap(err, "mounts[%zu]", i);
    }
    bool bind = is_bind(m, &o) && m->source && !(o.flags & MS_REMOUNT);
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
                     ((o.flags & MS_REC) ? AT_RECURSIVE : 0);
    mount_options_free(&o);
    if (!bind)
      continue;
    out[i] = sys_open_tree(AT_FDCWD, m->source, flags);
    if (out[i] < 0) {
      int e = errno;
      rootfs_close_bind_sources(out, s->n_mounts);
      return cell_fail(err, e, "mount `%s` on `%s`: open source", m->source,
                       m->destination);
    }
  }
  *fds = out;
  return 0;
}

void rootfs_close_bind_sources(int *fds, size_t n) {
  for (size_t i = 0; fds && i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  free(fds);
}

/* ---- the three steps -------------------------------------------------------- */

static const char *rootfs_propagation_name(const struct spec *s) {
  return s->linux_ ? s->linux_->rootfs_propagation : NULL;
}

/* What / gets before anything is mounted: the asked propagation, rslave by
 * default.  Unbindable would forbid binding the rootfs, so it waits for
 * rootfs_pivot and private stands in until then. */
static unsigned long initial_root_propagation(unsigned long asked) {
  if (asked == 0)
    return MS_SLAVE | MS_REC;
  if (asked & MS_UNBINDABLE)
    return MS_PRIVATE | (asked & MS_REC);
  return asked;
}

/* The last mount on /dev decides: a tmpfs with "ro", mounted read-write by
 * mount_entry so that it could be filled, is now made read-only. */
static int make_dev_readonly_if_asked(const struct spec *s, int rootfd,
                                      cell_error **err) {
  bool readonly = false;
  for (size_t i = 0; i < s->n_mounts; i++) {
    const struct spec_mount *m = &s->mounts[i];
    if (m->destination == NULL || !is_dev(m->destination))
      continue;
    struct mount_options o;
    if (mount_options_parse(m->options, &o, err) < 0)
      return -1;
    readonly = is_readonly_dev_tmpfs(m, &o);
    mount_options_free(&o);
  }
  if (!readonly)
    return 0;
  /* The terminal's slave is bound on /dev/console after the pivot: the
   * file it covers must exist before /dev can take no new one. */
  if (s->process && s->process->terminal) {
    cleanup_close int console = resolve_create(rootfd, "/dev/console", true, err);
    if (console < 0)
      return cell_error_wrap(err, "make `/dev` read-only");
  }
  cleanup_close int fd =
      resolve_open_no_symlinks(rootfd, "/dev", O_PATH | O_DIRECTORY, err);
  if (fd < 0)
    return cell_error_wrap(err, "make `/dev` read-only");
  char p[32];
  if (mount(NULL, resolve_fd_path(fd, p), NULL,
            MS_BIND | MS_REMOUNT | MS_RDONLY | lockable_flags_of(fd), NULL) < 0)
    return cell_fail_errno(err, "make `/dev` read-only");
  return 0;
}

int rootfs_prepare(const struct rootfs_config *cfg, cell_error **err) {
  unsigned long asked;
  if (rootfs_propagation_flags(rootfs_propagation_name(cfg->spec), &asked,
                               err) < 0)
    return -1;
  unsigned long initial = initial_root_propagation(asked);
  if (mount(NULL, "/", NULL, initial, NULL) < 0)
    return cell_fail_errno(err, "set the propagation of `/`");
  /* After a recursive slave or private (the default), no mount of ours is
   * shared: no need to read the mount table to find out. */
  bool none_shared = (initial & MS_REC) && !(initial & MS_SHARED);
  if (!none_shared &&
      make_rootfs_parent_private(cfg->procfs, cfg->rootfs, err) < 0)
    return -1;
  if (mount(cfg->rootfs, cfg->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return cell_fail_errno(err, "bind rootfs `%s` onto itself", cfg->rootfs);
  cleanup_close int rootfd =
      open(cfg->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return cell_fail_errno(err, "open rootfs `%s`", cfg->rootfs);
  if (mount_all(cfg, rootfd, err) < 0)
    return -1;
  if (devices_setup(rootfd, cfg->spec, cfg->in_userns, err) < 0)
    return -1;
  return make_dev_readonly_if_asked(cfg->spec, rootfd, err);
}

static int pivot_into(const char *rootfs, cell_error **err) {
  cleanup_close int oldroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (oldroot < 0)
    return cell_fail_errno(err, "open `/`");
  cleanup_close int newroot = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (newroot < 0)
    return cell_fail_errno(err, "open rootfs `%s`", rootfs);
  if (fchdir(newroot) < 0)
    return cell_fail_errno(err, "chdir to rootfs `%s`", rootfs);
  /* new_root == put_old: the old root ends up stacked on the new one,
   * reachable through oldroot, with no directory needed in the rootfs. */
  if (sys_pivot_root(".", ".") < 0)
    return cell_fail_errno(err, "pivot_root to `%s`", rootfs);
  if (fchdir(oldroot) < 0)
    return cell_fail_errno(err, "chdir to the old root");
  /* Our unmounts must not reach the host's mounts through shared peers. */
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    return cell_fail_errno(err, "make the old root rslave");
  if (umount2(".", MNT_DETACH) < 0)
    return cell_fail_errno(err, "detach the old root");
  return 0;
}

static bool path_is_under(const char *path, const char *dir) {
  size_t len = strlen(dir);
  while (len > 1 && dir[len - 1] == '/')
    len--;
  return strncmp(path, dir, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

struct detach_ctx {
  const char *rootfs;
  cell_error **err;
};

static int detach_if_full_kernel_fs(const struct mountinfo_entry *e, void *arg) {
  struct detach_ctx *c = arg;
  if (strcmp(e->root, "/") != 0 ||
      (strcmp(e->fstype, "proc") != 0 && strcmp(e->fstype, "sysfs") != 0) ||
      path_is_under(e->mount_point, c->rootfs))
    return 0;
  /* The unmount must not reach the host through a shared peer.  ENOENT
   * or EINVAL (no mount there any more): a parent was detached already,
   * and this one with it. */
  if (mount(NULL, e->mount_point, NULL, MS_SLAVE | MS_REC, NULL) < 0) {
    if (errno == ENOENT || errno == EINVAL)
      return 0;
    cell_fail_errno(c->err, "--no-pivot: make `%s` a slave", e->mount_point);
    return -1;
  }
  if (umount2(e->mount_point, MNT_DETACH) == 0)
    return 0;
  if (errno != EINVAL && errno != EPERM) {
    cell_fail_errno(c->err, "--no-pivot: detach `%s`", e->mount_point);
    return -1;
  }
  /* Locked in our user namespace: cover it instead, which also makes it
   * no longer fully visible. */
  if (mount("tmpfs", e->mount_point, "tmpfs", 0, NULL) < 0) {
    cell_fail_errno(c->err, "--no-pivot: cover `%s`", e->mount_point);
    return -1;
  }
  return 0;
}

/* After a chroot, the host's mounts are still in our mount namespace.
 * The kernel lets a user namespace mount a new procfs or sysfs when a
 * full, uncovered one is in its mount namespace: a nested user namespace
 * of the container would get an unmasked /proc (sysrq-trigger, ...).  So
 * every full proc and sysfs outside the rootfs goes, as runc's
 * msMoveRoot does. */
static int detach_host_kernel_fs(int procfs, const char *rootfs,
                                 cell_error **err) {
  struct detach_ctx c = {.rootfs = rootfs, .err = err};
  return mountinfo_each(procfs, detach_if_full_kernel_fs, &c, err) < 0 ? -1 : 0;
}

static int move_into(int procfs, const char *rootfs, cell_error **err) {
  if (detach_host_kernel_fs(procfs, rootfs, err) < 0)
    return -1;
  if (chdir(rootfs) < 0)
    return cell_fail_errno(err, "chdir to rootfs `%s`", rootfs);
  /* Moving onto a shared / would propagate the move to the host. */
  if (mount(NULL, "/", NULL, MS_PRIVATE, NULL) < 0)
    return cell_fail_errno(err, "make `/` private");
  if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
    return cell_fail_errno(err, "move rootfs `%s` to `/`", rootfs);
  if (chroot(".") < 0)
    return cell_fail_errno(err, "chroot to rootfs `%s`", rootfs);
  return 0;
}

static int set_root_propagation(const struct spec *s, unsigned long flags,
                                cell_error **err) {
  if (mount(NULL, "/", NULL, flags, NULL) < 0)
    return cell_fail_errno(err, "set the propagation of `/` to `%s`",
                           rootfs_propagation_name(s));
  return 0;
}

int rootfs_pivot(const struct rootfs_config *cfg, cell_error **err) {
  unsigned long asked;
  if (rootfs_propagation_flags(rootfs_propagation_name(cfg->spec), &asked,
                               err) < 0)
    return -1;
  int r = cfg->no_pivot ? move_into(cfg->procfs, cfg->rootfs, err)
                        : pivot_into(cfg->rootfs, err);
  if (r < 0)
    return -1;
  if (chdir("/") < 0)
    return cell_fail_errno(err, "chdir `/`");
  /* The rootfs bind was made private (or slave) so that pivot_root would
   * take it; shared can only be given to the final /. */
  if (asked & MS_SHARED)
    return set_root_propagation(cfg->spec, asked, err);
  return 0;
}

int rootfs_chroot(const struct rootfs_config *cfg, cell_error **err) {
  if (chdir(cfg->rootfs) < 0)
    return cell_fail_errno(err, "chdir to rootfs `%s`", cfg->rootfs);
  if (chroot(".") < 0)
    return cell_fail_errno(err, "chroot to rootfs `%s`", cfg->rootfs);
  if (chdir("/") < 0)
    return cell_fail_errno(err, "chdir `/`");
  return 0;
}

/* ---- finalize --------------------------------------------------------------- */

/* Open path if it exists: 1 with *fd set, 0 when missing, -1 on error. */
/* The kernel mount whose destination holds path, the longest one when
 * several do, with the rest of the path below it in *rest. */
static const struct rootfs_kernel_mount *
kernel_mount_of(const struct rootfs_kernel_mounts *k, const char *path,
                const char **rest) {
  const struct rootfs_kernel_mount *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; k && i < k->n; i++) {
    const char *d = k->list[i].destination;
    size_t len = strlen(d);
    while (len > 1 && d[len - 1] == '/')
      len--;
    if (strncmp(path, d, len) != 0 || (path[len] != '/' && path[len] != '\0'))
      continue;
    if (best == NULL || len > best_len) {
      best = &k->list[i];
      best_len = len;
    }
  }
  if (best) {
    *rest = path + best_len;
    while (**rest == '/')
      (*rest)++;
    if (**rest == '\0')
      *rest = ".";
  }
  return best;
}

/* Open path for a masked or read-only path: under a procfs or sysfs mount,
 * from that mount's fd and without following any symlink; elsewhere by
 * name inside the root.  1 found, 0 absent (the kernel or the image has no
 * such file), -1 error: one that should be there but cannot be reached is
 * an error, never a skip. */
static int open_if_exists(const struct rootfs_config *cfg, int rootfd,
                          const char *path, int *fd, cell_error **err) {
  cell_error *e = NULL;
  const char *rest = NULL;
  const struct rootfs_kernel_mount *km =
      kernel_mount_of(cfg->kernel_mounts, path, &rest);
  if (km)
    *fd = resolve_open_no_symlinks(km->fd, rest, O_PATH, &e);
  else
    *fd = resolve_open(rootfd, path, O_PATH, &e);
  if (*fd >= 0)
    return 1;
  if (e->errnum == ENOENT) {
    cell_error_free(&e);
    return 0;
  }
  *err = e;
  return -1;
}

static int open_dev_null(int rootfd, int *out, cell_error **err) {
  cleanup_close int fd =
      resolve_open(rootfd, "/dev/null", O_PATH | O_NOFOLLOW, err);
  if (fd < 0)
    return -1;
  struct stat st;
  if (fstat(fd, &st) < 0)
    return cell_fail_errno(err, "stat `/dev/null`");
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
    return cell_fail(err, 0, "`/dev/null` is not the null device (1:3)");
  *out = steal_fd(&fd);
  return 0;
}

/* A masked directory: the first gets an empty read-only tmpfs, the
 * others a read-only bind of that same one (*mask, its root).  One file
 * system, not one each: criu, which dumps every tmpfs by running tar
 * while the container is frozen, dumps it once. */
static int mask_dir(const struct rootfs_config *cfg, int rootfd,
                    const char *path, const char *target, int *mask,
                    cell_error **err) {
  char p[32];
  int r = *mask >= 0
              ? mount(resolve_fd_path(*mask, p), target, NULL, MS_BIND, NULL)
              : mount("tmpfs", target, "tmpfs", MS_RDONLY, NULL);
  if (r < 0)
    return cell_fail_errno(err, "linux.maskedPaths: mask `%s`", path);
  /* The mount covers target's directory: look it up again. */
  cleanup_close int top = -1;
  r = open_if_exists(cfg, rootfd, path, &top, err);
  if (r <= 0)
    return r < 0 ? cell_error_wrap(err, "linux.maskedPaths")
                 : cell_fail(err, ENOENT, "linux.maskedPaths: `%s` is gone",
                             path);
  if (*mask < 0) {
    *mask = steal_fd(&top);
    return 0;
  }
  if (mount(NULL, resolve_fd_path(top, p), NULL,
            MS_BIND | MS_REMOUNT | MS_RDONLY | lockable_flags_of(top),
            NULL) < 0)
    return cell_fail_errno(err, "linux.maskedPaths: remount `%s` read-only",
                           path);
  return 0;
}

static int mask_paths(const struct rootfs_config *cfg, int rootfd,
                      char *const *paths, cell_error **err) {
  cleanup_close int devnull = -1;
  cleanup_close int mask = -1;
  for (size_t i = 0; paths && paths[i]; i++) {
    cleanup_close int fd = -1;
    int r = open_if_exists(cfg, rootfd, paths[i], &fd, err);
    if (r < 0)
      return cell_error_wrap(err, "linux.maskedPaths");
    if (r == 0)
      continue;
    struct stat st;
    if (fstat(fd, &st) < 0)
      return cell_fail_errno(err, "linux.maskedPaths: stat `%s`", paths[i]);
    char target[32], source[32];
    resolve_fd_path(fd, target);
    if (S_ISDIR(st.st_mode)) {
      if (mask_dir(cfg, rootfd, paths[i], target, &mask, err) < 0)
        return -1;
      continue;
    }
    if (devnull < 0 && open_dev_null(rootfd, &devnull, err) < 0)
      return cell_error_wrap(err, "linux.maskedPaths: mask `%s`", paths[i]);
    if (mount(resolve_fd_path(devnull, source), target, NULL, MS_BIND, NULL) < 0)
      return cell_fail_errno(err, "linux.maskedPaths: mask `%s`", paths[i]);
  }
  return 0;
}

/* /proc/sys/net as a mount of its own on the bind of /proc/sys, which
 * the read-only remount of that bind (the top mount only) leaves writable:
 * what LXC calls proc:mixed.  Only with a network
 * namespace of the container's own, whose sysctls are all it reaches. */
static int keep_net_sysctls_writable(const struct rootfs_config *cfg,
                                     int rootfd, cell_error **err) {
  const struct spec_namespace *net =
      spec_find_namespace(cfg->spec, SPEC_NS_NETWORK);
  if (!net || net->path)
    return cell_fail(err, EINVAL,
                     "writable net sysctls need a network namespace of the "
                     "container's own: add {\"type\": \"network\"} to "
                     "linux.namespaces");
  cleanup_close int fd = -1;
  int r = open_if_exists(cfg, rootfd, "/proc/sys/net", &fd, err);
  if (r <= 0)
    return r;
  char p[32];
  if (mount(resolve_fd_path(fd, p), p, NULL, MS_BIND, NULL) < 0)
    return cell_fail_errno(err, "bind /proc/sys/net onto itself");
  return 0;
}

static int make_paths_readonly(const struct rootfs_config *cfg, int rootfd,
                               char *const *paths, cell_error **err) {
  for (size_t i = 0; paths && paths[i]; i++) {
    cleanup_close int fd = -1;
    int r = open_if_exists(cfg, rootfd, paths[i], &fd, err);
    if (r < 0)
      return cell_error_wrap(err, "linux.readonlyPaths");
    if (r == 0)
      continue;
    char p[32];
    if (mount(resolve_fd_path(fd, p), p, NULL, MS_BIND | MS_REC, NULL) < 0)
      return cell_fail_errno(err, "linux.readonlyPaths: bind `%s`", paths[i]);
    /* The bind covers fd's file: look it up again, the same way. */
    cleanup_close int mfd = -1;
    r = open_if_exists(cfg, rootfd, paths[i], &mfd, err);
    if (r <= 0)
      return r < 0 ? cell_error_wrap(err, "linux.readonlyPaths")
                   : cell_fail(err, ENOENT, "linux.readonlyPaths: `%s` is gone",
                               paths[i]);
    if (cfg->writable_net_sysctls && streq(paths[i], "/proc/sys") &&
        keep_net_sysctls_writable(cfg, rootfd, err) < 0)
      return -1;
    if (mount(NULL, resolve_fd_path(mfd, p), NULL,
              MS_BIND | MS_REMOUNT | MS_RDONLY | lockable_flags_of(mfd),
              NULL) < 0)
      return cell_fail_errno(err, "linux.readonlyPaths: remount `%s` read-only",
                             paths[i]);
  }
  return 0;
}

static int make_root_readonly(cell_error **err) {
  cleanup_close int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `/`");
  if (mount(NULL, "/", NULL,
            MS_BIND | MS_REMOUNT | MS_RDONLY | lockable_flags_of(fd), NULL) < 0)
    return cell_fail_errno(err, "root.readonly: remount `/` read-only");
  return 0;
}

int rootfs_finalize(const struct rootfs_config *cfg, cell_error **err) {
  const struct spec *s = cfg->spec;
  cleanup_close int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return cell_fail_errno(err, "open `/`");
  if (s->linux_) {
    if (make_paths_readonly(cfg, rootfd, s->linux_->readonly_paths, err) < 0)
      return -1;
    if (mask_paths(cfg, rootfd, s->linux_->masked_paths, err) < 0)
      return -1;
  }
  if (s->root && s->root->readonly && make_root_readonly(err) < 0)
    return -1;
  /* Last: an unbindable tree refuses the binds of readonlyPaths and
   * maskedPaths above. */
  unsigned long asked;
  if (rootfs_propagation_flags(rootfs_propagation_name(s), &asked, err) < 0)
    return -1;
  if (asked & MS_UNBINDABLE)
    return set_root_propagation(s, asked, err);
  return 0;
}
