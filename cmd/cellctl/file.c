/* cellctl file push|pull: a file copied into or out of an instance.
 *
 * cellctl opens the local file itself, with its own rights, and hands
 * celld the open fd (celld never opens a path on a client's word); celld
 * resolves the path inside the instance through fds that never follow a
 * symlink out of it.  A pull that fails removes the file it was making.
 * push -r walks the local tree through fds, never following a symlink of
 * it: directories, files and symlinks (as links, which resolve inside the
 * instance) go one request each; a tree with anything else in it (a
 * device, a FIFO, a socket) is refused before anything is sent. */
#include "file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "progress.h"

struct file_args {
  const char *local;
  const char *name; /* the instance */
  const char *path; /* inside it */
  long long uid, gid, mode; /* -1: not given */
  bool recursive;
};

/* NAME:/path into name and path (name points into a copy kept in *buf). */
static int parse_remote(const char *arg, struct file_args *a, char **buf,
                        cell_error **err) {
  const char *colon = strchr(arg, ':');
  if (!colon || colon == arg || colon[1] != '/')
    return usage_error(err, "`%s`: expected NAME:/PATH (the instance, then "
                       "an absolute path inside it)", arg);
  *buf = xstrndup(arg, (size_t)(colon - arg));
  a->name = *buf;
  a->path = colon + 1;
  return EXIT_OK;
}

static int parse_id_option(const char *flag, const char *value, int base,
                           long long max, long long *out, cell_error **err) {
  char *end;
  errno = 0;
  long long n = strtoll(value, &end, base);
  if (errno || end == value || *end || n < 0 || n > max)
    return usage_error(err, "%s `%s`: expected %s", flag, value,
                       base == 8 ? "octal permission bits like 0644"
                                 : "an id inside the instance, like 0 or 1000");
  *out = n;
  return EXIT_OK;
}

/* One option (with its value at argv[*i + 1]); EXIT_OK, or a usage error. */
static int parse_option(const struct invocation *inv, int *i, bool push,
                        struct file_args *a, cell_error **err) {
  const char *arg = inv->argv[*i];
  const char *value = *i + 1 < inv->argc ? inv->argv[*i + 1] : NULL;
  long long *target = strcmp(arg, "--uid") == 0    ? &a->uid
                      : strcmp(arg, "--gid") == 0  ? &a->gid
                      : strcmp(arg, "--mode") == 0 ? &a->mode
                                                   : NULL;
  if (push && strcmp(arg, "-r") == 0) {
    a->recursive = true;
    return EXIT_OK;
  }
  if (!push || !target)
    return usage_error(err, "file %s: unknown option `%s`",
                       push ? "push" : "pull", arg);
  if (!value)
    return usage_error(err, "%s needs a value", arg);
  (*i)++;
  return parse_id_option(arg, value, target == &a->mode ? 8 : 10,
                         target == &a->mode ? 07777 : 65535, target, err);
}

static int parse_args(const struct invocation *inv, bool push,
                      struct file_args *a, char **buf, cell_error **err) {
  const char *positional[2] = {NULL, NULL};
  int n = 0;
  *a = (struct file_args){.uid = -1, .gid = -1, .mode = -1};
  for (int i = 2; i < inv->argc; i++) {
    const char *arg = inv->argv[i];
    int rc = EXIT_OK;
    if (arg[0] == '-' && arg[1] != '\0')
      rc = parse_option(inv, &i, push, a, err);
    else if (n < 2)
      positional[n++] = arg;
    else
      rc = usage_error(err, "file: unexpected `%s`", arg);
    if (rc != EXIT_OK)
      return rc;
  }
  if (n != 2)
    return usage_error(err, push ? "file push: LOCAL and NAME:/PATH are needed"
                                 : "file pull: NAME:/PATH and LOCAL are needed");
  a->local = positional[push ? 0 : 1];
  return parse_remote(positional[push ? 1 : 0], a, buf, err);
}

/* One push request; fd -1 for a directory or a symlink. */
static int push_request(const struct invocation *inv, const struct file_args *a,
                        const char *path, const char *type, const char *target,
                        long long mode, int fd, cell_error **err) {
  cleanup_json_gen struct json_gen *g = request_new("file.push", a->name);
  json_gen_kv_string(g, "path", path);
  json_gen_kv_int(g, "uid", a->uid >= 0 ? a->uid : 0);
  json_gen_kv_int(g, "gid", a->gid >= 0 ? a->gid : 0);
  json_gen_kv_string(g, "type", type);
  if (target)
    json_gen_kv_string(g, "target", target);
  else
    json_gen_kv_int(g, "mode", mode);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  if (fd >= 0)
    return progress_call_with_fd(inv->socket, req, fd, "pushing",
                                 PROGRESS_NONE, &answer, err);
  return client_request(inv->socket, req, &answer, err);
}

static int push_file(const struct invocation *inv, const struct file_args *a,
                     int fd, const struct stat *st, const char *path,
                     cell_error **err) {
  /* Without --mode, the local file's permission bits. */
  long long mode = a->mode >= 0 ? a->mode : (long long)(st->st_mode & 0777);
  return push_request(inv, a, path, "file", NULL, mode, fd, err);
}

static int push_tree(const struct invocation *inv, const struct file_args *a,
                     int dirfd, const char *name, const char *shown,
                     const char *path, bool send, cell_error **err);

/* The entries of the directory fd, each pushed (or checked) in turn. */
static int push_children(const struct invocation *inv,
                         const struct file_args *a, int fd, const char *shown,
                         const char *path, bool send, cell_error **err) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  DIR *dir = copy < 0 ? NULL : fdopendir(copy);
  if (!dir) {
    if (copy >= 0)
      close(copy);
    return cell_fail_errno(err, "`%s`", shown), EXIT_FAILED;
  }
  int rc = EXIT_OK;
  struct dirent *e;
  while (rc == EXIT_OK && (e = readdir(dir))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    cleanup_free char *child_shown = xasprintf("%s/%s", shown, e->d_name);
    cleanup_free char *child_path = xasprintf("%s/%s", path, e->d_name);
    rc = push_tree(inv, a, fd, e->d_name, child_shown, child_path, send, err);
  }
  closedir(dir);
  return rc;
}

/* name under dirfd, to path in the instance; with send false, only
 * checked (that the whole tree can go before any of it does). */
static int push_tree(const struct invocation *inv, const struct file_args *a,
                     int dirfd, const char *name, const char *shown,
                     const char *path, bool send, cell_error **err) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "`%s`", shown), EXIT_FAILED;
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
    if (n <= 0)
      return cell_fail_errno(err, "readlink `%s`", shown), EXIT_FAILED;
    target[n] = '\0';
    return send ? push_request(inv, a, path, "symlink", target, 0, -1, err)
                : EXIT_OK;
  }
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
    return cell_fail(err, 0, "`%s` is not a regular file, a directory nor a "
                     "symlink: nothing was copied", shown), EXIT_FAILED;
  cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY |
                                                 O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return cell_fail_errno(err, "`%s`", shown), EXIT_FAILED;
  if (S_ISREG(st.st_mode))
    return send ? push_file(inv, a, fd, &st, path, err) : EXIT_OK;
  int rc = send ? push_request(inv, a, path, "directory", NULL,
                               st.st_mode & 07777, -1, err)
                : EXIT_OK;
  return rc == EXIT_OK ? push_children(inv, a, fd, shown, path, send, err) : rc;
}

static int push(const struct invocation *inv, cell_error **err) {
  struct file_args a;
  cleanup_free char *buf = NULL;
  int rc = parse_args(inv, true, &a, &buf, err);
  if (rc != EXIT_OK)
    return rc;
  if (a.recursive) {
    rc = push_tree(inv, &a, AT_FDCWD, a.local, a.local, a.path, false, err);
    return rc == EXIT_OK
               ? push_tree(inv, &a, AT_FDCWD, a.local, a.local, a.path, true, err)
               : rc;
  }
  cleanup_close int fd = open(a.local, O_RDONLY | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0)
    return cell_fail_errno(err, "`%s`", a.local), EXIT_FAILED;
  if (!S_ISREG(st.st_mode))
    return cell_fail(err, 0, "`%s` is not a regular file: only files are "
                     "copied (-r for a directory)", a.local), EXIT_FAILED;
  return push_file(inv, &a, fd, &st, a.path, err);
}

static int pull(const struct invocation *inv, cell_error **err) {
  struct file_args a;
  cleanup_free char *buf = NULL;
  int rc = parse_args(inv, false, &a, &buf, err);
  if (rc != EXIT_OK)
    return rc;
  /* Made new: a pull never overwrites a local file. */
  cleanup_close int fd = open(a.local, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY |
                                           O_CLOEXEC, 0600);
  if (fd < 0)
    return cell_fail_errno(err, "`%s` (a pull makes a new file)", a.local),
           EXIT_FAILED;
  cleanup_json_gen struct json_gen *g = request_new("file.pull", a.name);
  json_gen_kv_string(g, "path", a.path);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  rc = progress_call_with_fd(inv->socket, req, fd, "pulling", PROGRESS_NONE,
                             &answer, err);
  if (rc != EXIT_OK) {
    unlink(a.local);
    return rc;
  }
  /* The instance's permission bits, less what the umask takes. */
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, (mode_t)field_int(answer, "mode", 0644) & 0777 & ~mask);
  return EXIT_OK;
}

int cmd_file(const struct invocation *inv, cell_error **err) {
  if (inv->argc < 2)
    return usage_error(err, "file: push or pull?");
  if (strcmp(inv->argv[1], "push") == 0)
    return push(inv, err);
  if (strcmp(inv->argv[1], "pull") == 0)
    return pull(inv, err);
  return usage_error(err, "file: `%s`: push or pull", inv->argv[1]);
}
