/* Host directories and devices into a running instance (instance-attach.h). */
#include "daemon/instance-attach.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/resolve.h"
#include "base/syscalls.h"
#include "base/util.h"
#include "daemon/instance-settings.h"

/* How long the child inside may take before it is killed and the attach
 * fails (an instance's FUSE mount on the path could hang it). */
#define ATTACH_TIMEOUT_MS 5000

static int open_host_path(const char *path, cell_error **err) {
  cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return cell_fail_errno(err, "open `/`");
  return resolve_open_no_symlinks(root, path, O_PATH, err);
}

int attach_open_dir(const char *path, cell_error **err) {
  cleanup_close int fd = open_host_path(path, err);
  struct stat st;
  if (fd < 0)
    return cell_error_wrap(err, "host directory `%s` (absolute, existing, no "
                           "symlink on the way)", path);
  if (fstat(fd, &st) < 0)
    return cell_fail_errno(err, "stat `%s`", path);
  if (!S_ISDIR(st.st_mode))
    return cell_fail(err, ENOTDIR, "`%s`: not a directory", path);
  return steal_fd(&fd);
}

int attach_make_device(const char *dir, const char *name, unsigned major,
                       unsigned minor, uid_t root, cell_error **err) {
  if (mkdir(dir, 0700) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", dir);
  cleanup_close int dirfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW |
                                 O_CLOEXEC);
  if (dirfd < 0)
    return cell_fail_errno(err, "open `%s`", dir);
  if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
    return cell_fail_errno(err, "remove the old node `%s/%s`", dir, name);
  /* 0660 whatever celld's umask: its group inside may use it too. */
  if (mknodat(dirfd, name, S_IFCHR | 0660, makedev(major, minor)) < 0 ||
      fchownat(dirfd, name, root, root, AT_SYMLINK_NOFOLLOW) < 0 ||
      fchmodat(dirfd, name, 0660, 0) < 0)
    return cell_fail_errno(err, "make the node `%s/%s`", dir, name);
  int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s/%s`", dir, name);
  return fd;
}

/* The detached tree to attach: a clone of srcfd, idmapped to the
 * instance's user namespace when a directory. */
static int make_tree(pid_t pid, int srcfd, bool is_dir, bool ro,
                     cell_error **err) {
  cleanup_close int tree = open_tree(srcfd, "", AT_EMPTY_PATH |
                                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return cell_fail_errno(err, "open_tree");
  struct mount_attr attr = {.attr_set = ro ? MOUNT_ATTR_RDONLY : 0};
  cleanup_close int userns = -1;
  if (is_dir) {
    cleanup_free char *ns = xasprintf("/proc/%d/ns/user", (int)pid);
    userns = open(ns, O_RDONLY | O_CLOEXEC);
    if (userns < 0)
      return cell_fail_errno(err, "open `%s`", ns);
    attr.attr_set |= MOUNT_ATTR_IDMAP;
    attr.userns_fd = (uint64_t)userns;
  }
  attr.attr_set |= MOUNT_ATTR_NOSUID;
  /* A device's node is of use only where nodes open: the clone keeps the
   * flags of the mount it is on (a state dir on a nodev /tmp). */
  if (!is_dir)
    attr.attr_clr |= MOUNT_ATTR_NODEV;
  if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
    return cell_fail_errno(err, "idmap the mount (the host directory's "
                           "filesystem must support idmapped mounts)");
  return steal_fd(&tree);
}

/* ---- the child inside ----------------------------------------------- */

struct ns_fds {
  int user, mnt;
};

struct child_report {
  int errnum;
  char msg[256];
};

_Noreturn static void child_exit(int report, cell_error *err) {
  struct child_report r = {0};
  if (err) {
    r.errnum = err->errnum ? err->errnum : EIO;
    snprintf(r.msg, sizeof(r.msg), "%s", err->msg);
  }
  if (write(report, &r, sizeof(r)) != sizeof(r))
    _exit(2);
  _exit(err ? 1 : 0);
}

/* The target, inside: missing parts made, no symlink in it at all. */
static int open_target(const char *target, bool is_dir, cell_error **err) {
  cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return cell_fail_errno(err, "open the instance's root");
  cell_error *missing = NULL;
  int fd = resolve_open_no_symlinks(root, target, O_PATH, &missing);
  if (fd >= 0 || missing->errnum != ENOENT) {
    if (fd < 0)
      *err = missing;
    return fd;
  }
  cell_error_free(&missing);
  cleanup_close int made = resolve_create(root, target, !is_dir, err);
  if (made < 0)
    return -1;
  return resolve_open_no_symlinks(root, target, O_PATH, err);
}

/* The instance's user namespace first, as its root (what the child
 * makes inside is the instance's root's, and a filesystem mounted in the
 * namespace refuses host ids), then its mount namespace. */
static int enter_instance(const struct ns_fds *ns, cell_error **err) {
  /* Not dumpable first: the instance's root, whose uid the child takes,
   * could otherwise ptrace it or open its /proc/PID/fd and reach the fds
   * it has of celld. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    return cell_fail_errno(err, "prctl PR_SET_DUMPABLE");
  if (setns(ns->user, CLONE_NEWUSER) < 0)
    return cell_fail_errno(err, "join the instance's user namespace");
  if (setns(ns->mnt, CLONE_NEWNS) < 0)
    return cell_fail_errno(err, "join the instance's mount namespace");
  if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
    return cell_fail_errno(err, "become the instance's root");
  return 0;
}

static void child_mount(const struct ns_fds *ns, int tree, bool is_dir, const char *target,
                        int report) {
  cell_error *err = NULL;
  cleanup_close int fd = -1;
  if (enter_instance(ns, &err) == 0 &&
      (fd = open_target(target, is_dir, &err)) >= 0 &&
      move_mount(tree, "", fd, "",
                 MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    cell_fail_errno(&err, "mount on `%s`", target);
  child_exit(report, err);
}

/* The empty file a device's bind was made on: gone with the bind, so
 * that the path is free again.  Anything else there is the instance's. */
static void remove_placeholder(int dir, const char *base) {
  struct stat st;
  if (fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISREG(st.st_mode) && st.st_size == 0)
    unlinkat(dir, base, 0);
}

static void child_umount(const struct ns_fds *ns, const char *target,
                         bool remove, int report) {
  cell_error *err = NULL;
  cleanup_free char *parent = xstrdup(target);
  char *slash = strrchr(parent, '/');
  const char *base = target + (slash - parent) + 1;
  *slash = '\0';
  cleanup_close int root = -1, dir = -1;
  if (enter_instance(ns, &err) == 0 &&
      (root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
      (dir = resolve_open_no_symlinks(root, *parent ? parent : "/",
                                      O_PATH | O_DIRECTORY, &err)) >= 0) {
    if ((fchdir(dir) < 0 || umount2(base, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) &&
        errno != EINVAL)
      cell_fail_errno(&err, "unmount `%s`", target);
    else if (remove)
      remove_placeholder(dir, base);
  }
  child_exit(report, err);
}

/* Wait for the child, at most ATTACH_TIMEOUT_MS, and take its report. */
static int wait_child(pid_t child, int report, cell_error **err) {
  cleanup_close int pidfd = cell_pidfd_open(child);
  struct pollfd p = {.fd = pidfd, .events = POLLIN};
  int ready = pidfd < 0 ? 1 : poll(&p, 1, ATTACH_TIMEOUT_MS);
  if (ready == 0)
    kill(child, SIGKILL);
  while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
    ;
  if (ready == 0)
    return cell_fail(err, ETIMEDOUT, "the instance's root did not answer "
                     "within %d s", ATTACH_TIMEOUT_MS / 1000);
  struct child_report r;
  if (read(report, &r, sizeof(r)) != sizeof(r))
    return cell_fail(err, EIO, "the child inside the instance died");
  if (r.errnum) {
    r.msg[sizeof(r.msg) - 1] = '\0';
    return cell_fail(err, r.errnum, "%s", r.msg);
  }
  return 0;
}

enum inside_op { INSIDE_MOUNT, INSIDE_UMOUNT, INSIDE_UMOUNT_REMOVE };

/* A child that has joined the instance of pid mounts tree on target, or
 * unmounts target (and removes a device's placeholder file). */
static int run_inside(pid_t pid, int tree, bool is_dir, const char *target,
                      enum inside_op op, cell_error **err) {
  cleanup_free char *user = xasprintf("/proc/%d/ns/user", (int)pid);
  cleanup_free char *mnt = xasprintf("/proc/%d/ns/mnt", (int)pid);
  cleanup_close int userfd = open(user, O_RDONLY | O_CLOEXEC);
  cleanup_close int mntfd = open(mnt, O_RDONLY | O_CLOEXEC);
  if (userfd < 0 || mntfd < 0)
    return cell_fail_errno(err, "open `%s`", userfd < 0 ? user : mnt);
  const struct ns_fds ns = {userfd, mntfd};
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe");
  cleanup_close int rd = pipefd[0], wr = pipefd[1];
  pid_t child = fork();
  if (child < 0)
    return cell_fail_errno(err, "fork");
  if (child == 0) {
    if (op == INSIDE_MOUNT)
      child_mount(&ns, tree, is_dir, target, wr);
    child_umount(&ns, target, op == INSIDE_UMOUNT_REMOVE, wr);
  }
  cell_closep(&wr);
  return wait_child(child, rd, err);
}

int attach_mount(pid_t pid, int srcfd, bool is_dir, const char *target,
                 bool ro, cell_error **err) {
  cleanup_close int tree = make_tree(pid, srcfd, is_dir, ro, err);
  if (tree < 0)
    return -1;
  return run_inside(pid, tree, is_dir, target, INSIDE_MOUNT, err);
}

int attach_umount(pid_t pid, const char *target, cell_error **err) {
  return run_inside(pid, -1, true, target, INSIDE_UMOUNT, err);
}

/* A device: a node of its own, the instance root's, in devdir (on the
 * host's filesystem: a node made in the instance's own /dev, a filesystem
 * of its user namespace, could not be opened), bound on the path it has on
 * the host.  A failed bind takes the node with it. */
int attach_device(pid_t pid, const char *key, const char *value,
                  const char *devdir, uid_t root, cell_error **err) {
  unsigned major, minor;
  if (setting_device_numbers(value, &major, &minor, err) < 0)
    return cell_error_wrap(err, "%s", key);
  const char *name = key + strlen("device.");
  cleanup_close int fd = attach_make_device(devdir, name, major, minor, root,
                                            err);
  if (fd < 0)
    return cell_error_wrap(err, "%s", key);
  if (attach_mount(pid, fd, false, value, false, err) < 0) {
    attach_remove_device_node(devdir, name);
    return cell_error_wrap(err, "%s", key);
  }
  return 0;
}

int attach_detach_device(pid_t pid, const char *key, const char *value,
                         const char *devdir, cell_error **err) {
  if (run_inside(pid, -1, false, value, INSIDE_UMOUNT_REMOVE, err) < 0)
    return cell_error_wrap(err, "%s", key);
  attach_remove_device_node(devdir, key + strlen("device."));
  return 0;
}

void attach_remove_device_node(const char *devdir, const char *name) {
  cleanup_close int dirfd = open(devdir, O_PATH | O_DIRECTORY | O_NOFOLLOW |
                                 O_CLOEXEC);
  if (dirfd >= 0)
    unlinkat(dirfd, name, 0);
}

int attach_setting(pid_t pid, const char *key, const char *value,
                   cell_error **err) {
  cleanup_free char *src = NULL, *dst = NULL;
  bool ro;
  if (setting_parse_mount(value, &src, &dst, &ro, err) < 0)
    return cell_error_wrap(err, "%s", key);
  cleanup_close int fd = attach_open_dir(src, err);
  if (fd < 0 || attach_mount(pid, fd, true, dst, ro, err) < 0)
    return cell_error_wrap(err, "%s", key);
  return 0;
}

int attach_settings(const struct instance_record *r, pid_t pid,
                    const char *devdir, cell_error **err) {
  for (size_t i = 0; r->settings && r->settings[i]; i++) {
    const char *s = r->settings[i];
    if (strncmp(s, "mount.", 6) != 0 && strncmp(s, "device.", 7) != 0)
      continue;
    cleanup_free char *key = xstrndup(s, strcspn(s, "="));
    const char *value = strchr(s, '=') + 1;
    int rc = s[0] == 'd'
                 ? attach_device(pid, key, value, devdir, r->id_start, err)
                 : attach_setting(pid, key, value, err);
    if (rc < 0)
      return -1;
  }
  return 0;
}

char *attach_target(const char *key, const char *value) {
  if (strncmp(key, "device.", 7) == 0)
    return xstrdup(value);
  cleanup_free char *src = NULL;
  char *dst = NULL;
  bool ro;
  cleanup_error cell_error *ignored = NULL;
  if (setting_parse_mount(value, &src, &dst, &ro, &ignored) < 0)
    return NULL;
  return dst;
}

int attach_hostname(pid_t pid, const char *hostname, cell_error **err) {
  cleanup_free char *ns = xasprintf("/proc/%d/ns/uts", (int)pid);
  cleanup_close int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0)
    return cell_fail_errno(err, "open `%s`", ns);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe");
  cleanup_close int rd = pipefd[0], wr = pipefd[1];
  pid_t child = fork();
  if (child < 0)
    return cell_fail_errno(err, "fork");
  if (child == 0) {
    cell_error *e = NULL;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || setns(nsfd, CLONE_NEWUTS) < 0)
      cell_fail_errno(&e, "join the instance's UTS namespace");
    else if (sethostname(hostname, strlen(hostname)) < 0)
      cell_fail_errno(&e, "sethostname `%s`", hostname);
    child_exit(wr, e);
  }
  cell_closep(&wr);
  return wait_child(child, rd, err);
}
