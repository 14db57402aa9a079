#include "runtime/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/resolve.h"
#include "base/util.h"

struct device_node {
  const char *path;
  mode_t type; /* S_IFCHR, S_IFBLK, S_IFIFO */
  dev_t rdev;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  bool chown; /* uid/gid given by the config */
};

/* "/dev//null/" and "/dev/null" are the same device path. */
static bool same_path(const char *a, const char *b) {
  for (;;) {
    while (*a == '/' && (a[1] == '/' || a[1] == '\0'))
      a++;
    while (*b == '/' && (b[1] == '/' || b[1] == '\0'))
      b++;
    if (*a != *b)
      return false;
    if (*a == '\0')
      return true;
    a++;
    b++;
  }
}

/* A bind-mounted /dev is the host's (or someone's) directory: leave it as
 * it is, like runc. */
static bool dev_is_bind_mounted(const struct spec *s) {
  bool bind = false;
  for (size_t i = 0; i < s->n_mounts; i++) {
    const struct spec_mount *m = &s->mounts[i];
    if (m->destination == NULL || !same_path(m->destination, "/dev"))
      continue;
    bind = m->type && (strcmp(m->type, "bind") == 0 || strcmp(m->type, "none") == 0);
    for (size_t k = 0; m->options && m->options[k]; k++)
      if (strcmp(m->options[k], "bind") == 0 || strcmp(m->options[k], "rbind") == 0)
        bind = true;
  }
  return bind;
}

/* Split "/dev/net/tun" into an O_PATH fd of "/dev/net" (created inside the
 * rootfs when missing) and "tun". */
static int open_parent(int rootfd, const char *path, int *dirfd,
                       const char **name, cell_error **err) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
    return cell_fail(err, 0, "device path `%s` does not name a file", path);
  cleanup_free char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : NULL;
  *dirfd = resolve_create(rootfd, dir && *dir ? dir : "/", false, err);
  if (*dirfd < 0)
    return -1;
  *name = base;
  return 0;
}

enum existing { EXISTING_NONE, EXISTING_KEEP, EXISTING_MOUNTED };

static bool is_mount_point(int dirfd, const char *name) {
  struct statx dir, node;
  return statx(dirfd, "", AT_EMPTY_PATH, STATX_MNT_ID, &dir) == 0 &&
         statx(dirfd, name, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &node) == 0 &&
         (dir.stx_mask & node.stx_mask & STATX_MNT_ID) &&
         dir.stx_mnt_id != node.stx_mnt_id;
}

/* Make room for the node.  Something mounted there was put there on
 * purpose (a spec mount): leave it untouched.  A correct node is kept;
 * anything else is removed, symlinks above all, which are never followed. */
static int clear_existing(int dirfd, const char *name, const struct device_node *d,
                          bool in_userns, cell_error **err) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT)
      return EXISTING_NONE;
    return cell_fail_errno(err, "stat `%s`", d->path);
  }
  if (is_mount_point(dirfd, name))
    return EXISTING_MOUNTED;
  if (S_ISDIR(st.st_mode))
    return cell_fail(err, EISDIR, "create device `%s`", d->path);
  /* In a user namespace the node must be the host's, bound. */
  if (!in_userns && (st.st_mode & S_IFMT) == d->type &&
      (d->type == S_IFIFO || st.st_rdev == d->rdev))
    return EXISTING_KEEP;
  if (unlinkat(dirfd, name, 0) < 0)
    return cell_fail_errno(err, "remove `%s`", d->path);
  return EXISTING_NONE;
}

static int open_node(int dirfd, const char *name, const struct device_node *d,
                     mode_t want_type, cell_error **err) {
  int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", d->path);
  struct stat st;
  if (fstat(fd, &st) < 0 || (st.st_mode & S_IFMT) != want_type) {
    close(fd);
    return cell_fail(err, 0, "`%s` was replaced while being created", d->path);
  }
  return fd;
}

/* In a user namespace mknod is refused: cover an empty file with the
 * host's node instead. */
static int bind_host_node(int dirfd, const char *name,
                          const struct device_node *d, cell_error **err) {
  struct stat host;
  if (stat(d->path, &host) < 0)
    return cell_fail_errno(err, "host device `%s`", d->path);
  if ((host.st_mode & S_IFMT) != d->type || host.st_rdev != d->rdev)
    return cell_fail(err, 0, "host `%s` is not device %u:%u", d->path,
                     major(d->rdev), minor(d->rdev));
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0000);
  if (fd < 0 && errno != EEXIST)
    return cell_fail_errno(err, "create `%s`", d->path);
  if (fd >= 0)
    close(fd);
  cleanup_close int target = open_node(dirfd, name, d, S_IFREG, err);
  if (target < 0)
    return -1;
  char p[32];
  if (mount(d->path, resolve_fd_path(target, p), NULL, MS_BIND, NULL) < 0)
    return cell_fail_errno(err, "bind host device `%s`", d->path);
  return 0;
}

static int set_owner_and_mode(int dirfd, const char *name,
                              const struct device_node *d, cell_error **err) {
  cleanup_close int fd = open_node(dirfd, name, d, d->type, err);
  if (fd < 0)
    return -1;
  char p[32];
  /* chmod has no O_PATH form; the magic link reaches exactly this node. */
  if (chmod(resolve_fd_path(fd, p), d->mode) < 0)
    return cell_fail_errno(err, "chmod `%s`", d->path);
  if (d->chown && fchownat(fd, "", d->uid, d->gid, AT_EMPTY_PATH) < 0)
    return cell_fail_errno(err, "chown `%s`", d->path);
  return 0;
}

static int create_node(int rootfd, const struct device_node *d, bool in_userns,
                       cell_error **err) {
  cleanup_close int dirfd = -1;
  const char *name = NULL;
  if (open_parent(rootfd, d->path, &dirfd, &name, err) < 0)
    return -1;
  int existing = clear_existing(dirfd, name, d, in_userns, err);
  if (existing < 0)
    return -1;
  if (existing == EXISTING_MOUNTED)
    return 0;
  if (existing == EXISTING_NONE) {
    bool bind = in_userns && d->type != S_IFIFO;
    if (!bind && mknodat(dirfd, name, d->type | d->mode, d->rdev) < 0) {
      if (errno != EPERM || d->type == S_IFIFO)
        return cell_fail_errno(err, "mknod `%s`", d->path);
      bind = true;
    }
    if (bind)
      return bind_host_node(dirfd, name, d, err);
  }
  return set_owner_and_mode(dirfd, name, d, err);
}

static const struct device_node default_nodes[] = {
    {"/dev/null", S_IFCHR, 0, 0666, 0, 0, false},
    {"/dev/zero", S_IFCHR, 0, 0666, 0, 0, false},
    {"/dev/full", S_IFCHR, 0, 0666, 0, 0, false},
    {"/dev/random", S_IFCHR, 0, 0666, 0, 0, false},
    {"/dev/urandom", S_IFCHR, 0, 0666, 0, 0, false},
    {"/dev/tty", S_IFCHR, 0, 0666, 0, 0, false},
};
static const unsigned default_numbers[][2] = {{1, 3}, {1, 5}, {1, 7},
                                              {1, 8}, {1, 9}, {5, 0}};

static bool listed_in_config(const struct spec *s, const char *path) {
  for (size_t i = 0; s->linux_ && i < s->linux_->n_devices; i++)
    if (s->linux_->devices[i].path && same_path(s->linux_->devices[i].path, path))
      return true;
  return false;
}

static int config_node(const struct spec_device *sd, struct device_node *d,
                       cell_error **err) {
  const char *t = sd->type ? sd->type : "";
  if (strcmp(t, "c") == 0 || strcmp(t, "u") == 0)
    d->type = S_IFCHR;
  else if (strcmp(t, "b") == 0)
    d->type = S_IFBLK;
  else if (strcmp(t, "p") == 0)
    d->type = S_IFIFO;
  else
    return cell_fail(err, 0, "linux.devices: `%s`: invalid type `%s`",
                     sd->path ? sd->path : "", t);
  if (sd->path == NULL || sd->path[0] != '/')
    return cell_fail(err, 0, "linux.devices: path `%s` is not absolute",
                     sd->path ? sd->path : "");
  d->path = sd->path;
  d->rdev = d->type == S_IFIFO ? 0
                               : makedev((unsigned)sd->major, (unsigned)sd->minor);
  d->mode = sd->file_mode ? (*sd->file_mode & 07777) : 0666;
  d->chown = sd->uid || sd->gid;
  d->uid = sd->uid ? *sd->uid : 0;
  d->gid = sd->gid ? *sd->gid : 0;
  return 0;
}

/* Links in /dev: existing entries are left alone, except ptmx which must
 * point into the container's devpts. */
static int make_dev_links(int rootfd, cell_error **err) {
  static const char *const links[][2] = {
      {"fd", "/proc/self/fd"},
      {"stdin", "/proc/self/fd/0"},
      {"stdout", "/proc/self/fd/1"},
      {"stderr", "/proc/self/fd/2"},
  };
  cleanup_close int dev = resolve_create(rootfd, "/dev", false, err);
  if (dev < 0)
    return -1;
  for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
    if (symlinkat(links[i][1], dev, links[i][0]) < 0 && errno != EEXIST)
      return cell_fail_errno(err, "symlink `/dev/%s`", links[i][0]);

  char target[16];
  ssize_t n = readlinkat(dev, "ptmx", target, sizeof(target) - 1);
  if (n >= 0) {
    target[n] = '\0';
    if (strcmp(target, "pts/ptmx") == 0)
      return 0;
  }
  if (unlinkat(dev, "ptmx", 0) < 0 && errno != ENOENT) {
    if (errno == EBUSY)
      return 0; /* something was mounted there on purpose */
    return cell_fail_errno(err, "remove `/dev/ptmx`");
  }
  if (symlinkat("pts/ptmx", dev, "ptmx") < 0)
    return cell_fail_errno(err, "symlink `/dev/ptmx`");
  return 0;
}

static int make_dev_dirs(int rootfd, cell_error **err) {
  static const char *const dirs[] = {"/dev/pts", "/dev/shm"};
  for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
    int fd = resolve_create(rootfd, dirs[i], false, err);
    if (fd < 0)
      return -1;
    close(fd);
  }
  return 0;
}

static int setup_all(int rootfd, const struct spec *s, bool in_userns,
                     cell_error **err) {
  if (make_dev_dirs(rootfd, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof(default_nodes) / sizeof(default_nodes[0]); i++) {
    struct device_node d = default_nodes[i];
    if (listed_in_config(s, d.path))
      continue;
    d.rdev = makedev(default_numbers[i][0], default_numbers[i][1]);
    if (create_node(rootfd, &d, in_userns, err) < 0)
      return -1;
  }
  for (size_t i = 0; s->linux_ && i < s->linux_->n_devices; i++) {
    struct device_node d;
    if (config_node(&s->linux_->devices[i], &d, err) < 0)
      return -1;
    if (create_node(rootfd, &d, in_userns, err) < 0)
      return cell_error_wrap(err, "linux.devices[%zu]", i);
  }
  return make_dev_links(rootfd, err);
}

int devices_setup(int rootfd, const struct spec *s, bool in_userns,
                  cell_error **err) {
  if (dev_is_bind_mounted(s))
    return 0;
  /* Modes come from the config (or 0666), not from our umask. */
  mode_t old = umask(0);
  int r = setup_all(rootfd, s, in_userns, err);
  umask(old);
  return r;
}
