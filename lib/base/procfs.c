#include "base/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "base/syscalls.h"
#include "base/util.h"

/* The root directory of every procfs instance has this inode number. */
#define PROC_ROOT_INO 1

static bool is_procfs(int fd) {
  struct statfs sfs;
  return fstatfs(fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
}

bool procfs_is_root(int fd) {
  struct stat st;
  return is_procfs(fd) && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) &&
         st.st_ino == PROC_ROOT_INO;
}

/* A procfs instance of our own, attached nowhere: nobody can mount over
 * any of its files.  Not subset=pid, which would hide sys/ (sysctls).
 * Dearer than the host's: its release, at the last close, waits for an
 * expedited RCU grace period (0.2 to 10 ms), so only a fallback. */
static int open_private_instance(void) {
  cleanup_close int fsfd = sys_fsopen("proc", FSOPEN_CLOEXEC);
  if (fsfd < 0)
    return -1;
  if (sys_fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return -1;
  return sys_fsmount(fsfd, FSMOUNT_CLOEXEC,
                     MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
}

/* The directories the runtime writes beneath (sysctls): none of them may
 * be another mount, or every write there would be refused (EXDEV).  A
 * container engine's /proc has read-only binds over sys/, a systemd host
 * one at sys/fs/binfmt_misc, which the runtime never writes. */
static const char *const written_dirs[] = {"sys", "sys/kernel", "sys/net",
                                           "sys/fs", "sys/vm", "sys/user"};

static bool reaches_without_mount(int root, const char *path) {
  struct open_how how = {
      .flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                 RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
  };
  int fd = sys_openat2(root, path, &how);
  if (fd >= 0) {
    close(fd);
    return true;
  }
  /* sys/ itself must be there; its children may be missing (no
   * network namespaces in the kernel, say), and kernels without
   * openat2 walk (procfs_open_beneath) and are not probed. */
  return errno == ENOSYS || (errno == ENOENT && strcmp(path, "sys") != 0);
}

/* Is root a procfs of our own pid namespace?  The runtime names its
 * children by the numbers clone gave it; a procfs of an ancestor's pid
 * namespace (`unshare -p` without a new /proc) numbers them otherwise,
 * and a write by number would reach another process.  "self" must be our
 * own pid, and its NSpid line hold that one number alone (more: the
 * procfs's namespace is an ancestor of ours, where we only look alike). */
static bool numbers_pids_as_we_do(int root) {
  char self[32];
  ssize_t n = readlinkat(root, "self", self, sizeof(self) - 1);
  if (n <= 0)
    return false;
  self[n] = '\0';
  char *end;
  long pid = strtol(self, &end, 10);
  if (*end != '\0' || pid != (long)getpid())
    return false;
  char path[48];
  snprintf(path, sizeof(path), "%s/status", self);
  cell_error *err = NULL;
  cleanup_close int fd = procfs_open_beneath(root, path, O_RDONLY, &err);
  cell_error_free(&err);
  char buf[4096];
  ssize_t len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
  if (len <= 0)
    return false;
  buf[len] = '\0';
  const char *ns = strstr(buf, "\nNSpid:");
  if (ns == NULL)
    return true; /* a kernel before 4.1: "self" alone tells */
  /* "NSpid:\t<pid>\n": one number, ours. */
  long nspid = strtol(ns + strlen("\nNSpid:"), &end, 10);
  return nspid == pid && *end == '\n';
}

/* Does the host's /proc serve every open the runtime makes: sysctls with
 * no mount on their way, and this process's pid namespace? */
static bool serves_the_runtime(int root) {
  for (size_t i = 0; i < sizeof(written_dirs) / sizeof(written_dirs[0]); i++)
    if (!reaches_without_mount(root, written_dirs[i]))
      return false;
  return numbers_pids_as_we_do(root);
}

/* The caller's /proc, opened before the runtime joins anything: what a
 * container mounts there later is never seen through this fd. */
static int open_host_proc(void) {
  int fd = open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 && !(procfs_is_root(fd) && serves_the_runtime(fd))) {
    close(fd);
    fd = -1;
  }
  return fd;
}

int procfs_open_root(cell_error **err) {
  /* The host's /proc when it is a procfs root that serves the runtime;
   * else a private instance (a /proc with read-only binds over sys/, in
   * a container; a /proc of another pid namespace); without the
   * privilege to make one (a runtime in a user namespace it does not own,
   * an old kernel), the host's /proc still, checked: writes then fail on
   * the mount in their way, never pass it. */
  int fd = open_host_proc();
  if (fd < 0)
    fd = open_private_instance();
  if (fd < 0)
    fd = open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open /proc");
  if (!procfs_is_root(fd)) {
    close(fd);
    return cell_fail(err, 0,
                     "/proc is not the root of a procfs: mount one there "
                     "(mount -t proc proc /proc)");
  }
  return fd;
}

static bool has_dotdot(const char *path) {
  for (const char *c = path; (c = strstr(c, "..")) != NULL; c += 2)
    if ((c == path || c[-1] == '/') && (c[2] == '\0' || c[2] == '/'))
      return true;
  return false;
}

/* Kernels before 5.6 have no openat2: walk one level at a time, never
 * following a symlink and never leaving procfs. */
static int open_by_walking(int procfs, const char *path, int flags) {
  cleanup_free char *copy = xstrdup(path);
  cleanup_close int dir = -1;
  int at = procfs;
  char *save = NULL;
  char *name = strtok_r(copy, "/", &save);
  for (char *next; name; name = next) {
    next = strtok_r(NULL, "/", &save);
    if (next == NULL)
      return openat(at, name, flags | O_NOFOLLOW | O_CLOEXEC);
    int fd = openat(at, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return -1;
    cell_closep(&dir);
    at = dir = fd;
    if (!is_procfs(dir)) {
      errno = EXDEV;
      return -1;
    }
  }
  errno = EINVAL;
  return -1;
}

int procfs_open_beneath(int procfs, const char *path, int flags,
                        cell_error **err) {
  if (path[0] == '/' || has_dotdot(path))
    return cell_fail(err, EINVAL, "open `/proc/%s`", path);
  struct open_how how = {
      .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                 RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
  };
  int fd = sys_openat2(procfs, path, &how);
  if (fd < 0 && errno == ENOSYS)
    fd = open_by_walking(procfs, path, flags);
  if (fd < 0)
    return cell_fail_errno(err, "open `/proc/%s`", path);
  if (!is_procfs(fd)) {
    close(fd);
    return cell_fail(err, EXDEV, "open `/proc/%s`: not a procfs file", path);
  }
  return fd;
}

static bool all_digits(const char *s) {
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return false;
  return true;
}

/* The text of procfs's own link `name` ("self", "thread-self"): read, not
 * followed, so that what we open next is by number. */
static int read_self_link(int procfs, const char *name, char *buf, size_t size,
                          cell_error **err) {
  ssize_t n = readlinkat(procfs, name, buf, size - 1);
  if (n < 0)
    return cell_fail_errno(err,
                           "read `/proc/%s` (is this process in the pid "
                           "namespace of the procfs?)",
                           name);
  buf[n] = '\0';
  return 0;
}

/* "1234", or "1234/task/1235" for thread-self. */
static bool is_pid_link(const char *text, bool thread) {
  char copy[64];
  snprintf(copy, sizeof(copy), "%s", text);
  char *task = strchr(copy, '/');
  if (!thread)
    return task == NULL && all_digits(copy);
  if (task == NULL || strncmp(task, "/task/", 6) != 0)
    return false;
  *task = '\0';
  return all_digits(copy) && all_digits(task + 6);
}

static int pid_dir(int procfs, pid_t pid, char *buf, size_t size,
                   cell_error **err) {
  if (pid != PROCFS_SELF) {
    snprintf(buf, size, "%d", (int)pid);
    return 0;
  }
  if (read_self_link(procfs, "self", buf, size, err) < 0)
    return -1;
  if (!is_pid_link(buf, false))
    return cell_fail(err, EINVAL, "`/proc/self` links to `%s`", buf);
  return 0;
}

int procfs_open_pid_file(int procfs, pid_t pid, const char *file, int flags,
                         cell_error **err) {
  char dir[64];
  if (pid_dir(procfs, pid, dir, sizeof(dir), err) < 0)
    return -1;
  cleanup_free char *path = xasprintf("%s/%s", dir, file);
  return procfs_open_beneath(procfs, path, flags, err);
}

int procfs_open_thread_file(int procfs, const char *file, int flags,
                            cell_error **err) {
  char dir[64];
  if (read_self_link(procfs, "thread-self", dir, sizeof(dir), err) < 0)
    return -1;
  if (!is_pid_link(dir, true))
    return cell_fail(err, EINVAL, "`/proc/thread-self` links to `%s`", dir);
  cleanup_free char *path = xasprintf("%s/%s", dir, file);
  return procfs_open_beneath(procfs, path, flags, err);
}

int procfs_read_pid_file(int procfs, pid_t pid, const char *file, char **out,
                         cell_error **err) {
  cleanup_close int fd = procfs_open_pid_file(procfs, pid, file, O_RDONLY, err);
  if (fd < 0)
    return -1;
  size_t cap = 4096, n = 0;
  cleanup_free char *buf = xmalloc(cap + 1);
  for (;;) {
    if (n == cap) {
      cap *= 2;
      buf = xrealloc(buf, cap + 1);
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return cell_fail_errno(err, "read `/proc/%s`", file);
    if (r == 0)
      break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  *out = steal_pointer(&buf);
  return 0;
}

int procfs_write_pid_file(int procfs, pid_t pid, const char *file,
                          const char *data, size_t len, cell_error **err) {
  cleanup_close int fd = procfs_open_pid_file(procfs, pid, file, O_WRONLY, err);
  if (fd < 0)
    return -1;
  char name[32];
  if (pid == PROCFS_SELF)
    snprintf(name, sizeof(name), "self");
  else
    snprintf(name, sizeof(name), "%d", (int)pid);
  ssize_t n;
  do
    n = write(fd, data, len);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return cell_fail_errno(err, "write `/proc/%s/%s`", name, file);
  if ((size_t)n != len)
    return cell_fail(err, EIO, "write `/proc/%s/%s`: short write", name, file);
  return 0;
}
