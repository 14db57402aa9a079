/* cellctl file push|pull: a file or a tree copied into or out of an
 * instance.
 *
 * cellctl opens the local file itself, with its own rights, and hands
 * celld the open fd (celld never opens a path on a client's word); celld
 * resolves the path inside the instance through fds that never follow a
 * symlink out of it.  A pull that fails removes the file it was making.
 *
 * -r: a tree goes as one request and one tar stream on a pipe whose other
 * end rides with it (or stdin/stdout for LOCAL `-`).  push -r walks the
 * local tree through fds, never following a symlink of it (links go as
 * links, which resolve inside the instance); a tree with anything but
 * directories, files and symlinks in it is refused before anything is
 * sent.  pull -r extracts the stream into a directory it makes new (and
 * removes again on failure), refusing absolute names, `..` and writing
 * through a symlink; owners are the instance's ids when run as root (as
 * cp -a keeps them), else the caller's. */
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
#include "tree-helper.h"

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
  if (strcmp(arg, "-r") == 0) {
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

/* A push request, its fields but those of the entry's kind. */
static struct json_gen *push_request_new(const struct file_args *a,
                                         const char *path, const char *type) {
  struct json_gen *g = request_new("file.push", a->name);
  json_gen_kv_string(g, "path", path);
  json_gen_kv_int(g, "uid", a->uid >= 0 ? a->uid : 0);
  json_gen_kv_int(g, "gid", a->gid >= 0 ? a->gid : 0);
  json_gen_kv_string(g, "type", type);
  return g;
}

/* One push request; fd -1 for a symlink. */
static int push_request(const struct invocation *inv, const struct file_args *a,
                        const char *path, const char *type, const char *target,
                        long long mode, int fd, cell_error **err) {
  cleanup_json_gen struct json_gen *g = push_request_new(a, path, type);
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

static int check_tree(int dirfd, const char *name, const char *shown,
                      cell_error **err);

/* The entries of the directory fd, each checked in turn. */
static int check_children(int fd, const char *shown, cell_error **err) {
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
    rc = check_tree(fd, e->d_name, child_shown, err);
  }
  closedir(dir);
  return rc;
}

/* That name under dirfd holds only directories, files and symlinks: the
 * whole tree can go before any of it does. */
static int check_tree(int dirfd, const char *name, const char *shown,
                      cell_error **err) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "`%s`", shown), EXIT_FAILED;
  if (S_ISLNK(st.st_mode) || S_ISREG(st.st_mode))
    return EXIT_OK;
  if (!S_ISDIR(st.st_mode))
    return cell_fail(err, 0, "`%s` is not a regular file, a directory nor a "
                     "symlink: nothing was copied", shown), EXIT_FAILED;
  cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY |
                                                 O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "`%s`", shown), EXIT_FAILED;
  return check_children(fd, shown, err);
}

/* Dial celld and send req with fd riding along. */
static int send_with_fd(const struct invocation *inv, struct client *c,
                        const char *req, int fd, cell_error **err) {
  int rc = client_dial(c, inv->socket, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_free char *line = xasprintf("%s\n", req);
  if (cell_send_with_fd(c->fd, line, strlen(line), fd) < 0)
    return cell_fail_errno(err, "send"), EXIT_CONNECT;
  return EXIT_OK;
}

/* celld's answer to a tree's request, once the stream is over (rc: how
 * the local side went).  Of two failures, the one that came first is
 * told: the local side's, unless it is the stream breaking (EPIPE), which
 * is what celld's failure looks like from here. */
static int tree_answer(struct client *c, int rc, cell_error **local_err,
                       struct json_value **answer, cell_error **err) {
  cleanup_free char *line = client_read_line(c);
  cleanup_error cell_error *answer_err = NULL;
  int answer_rc = EXIT_CONNECT;
  if (!line)
    cell_fail(&answer_err, 0, "the daemon closed the connection");
  else
    answer_rc = client_answer(line, answer, &answer_err);
  bool local_first =
      rc != EXIT_OK && *local_err && (*local_err)->errnum != EPIPE;
  if (answer_rc != EXIT_OK && !local_first) {
    *err = answer_err;
    answer_err = NULL;
    return answer_rc;
  }
  if (rc != EXIT_OK) {
    *err = *local_err;
    *local_err = NULL;
  }
  return rc;
}

/* The local directory as a tar stream into the pipe whose other end rides
 * with the request; LOCAL `-`: stdin is the stream. */
static int push_stream(const struct invocation *inv, const struct file_args *a,
                       int dirfd, cell_error **err) {
  cleanup_json_gen struct json_gen *g = push_request_new(a, a->path, "tree");
  if (a->mode >= 0)
    json_gen_kv_int(g, "mode", a->mode);
  cleanup_free char *req = request_finish(g);
  int p[2] = {STDIN_FILENO, -1};
  if (dirfd >= 0 && pipe2(p, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe"), EXIT_FAILED;
  cleanup_close int write_end = p[1];
  cleanup_client struct client c = {.fd = -1};
  int rc = send_with_fd(inv, &c, req, p[0], err);
  if (dirfd >= 0)
    close(p[0]);
  if (rc != EXIT_OK)
    return rc;
  cleanup_error cell_error *local_err = NULL;
  if (dirfd >= 0) {
    if (tree_helper_pack(dirfd, write_end, &local_err) < 0)
      rc = EXIT_FAILED;
    close(write_end);
    write_end = -1;
  }
  cleanup_json struct json_value *answer = NULL;
  return tree_answer(&c, rc, &local_err, &answer, err);
}

static int push_recursive(const struct invocation *inv,
                          const struct file_args *a, cell_error **err) {
  if (strcmp(a->local, "-") == 0 && isatty(STDIN_FILENO))
    return usage_error(err, "file push -r - NAME:/PATH: stdin is a terminal; "
                       "give it a tar stream");
  if (strcmp(a->local, "-") == 0)
    return push_stream(inv, a, -1, err);
  struct stat st;
  if (fstatat(AT_FDCWD, a->local, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "`%s`", a->local), EXIT_FAILED;
  int rc = check_tree(AT_FDCWD, a->local, a->local, err);
  if (rc != EXIT_OK)
    return rc;
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(a->local, target, sizeof(target) - 1);
    if (n <= 0)
      return cell_fail_errno(err, "readlink `%s`", a->local), EXIT_FAILED;
    target[n] = '\0';
    return push_request(inv, a, a->path, "symlink", target, 0, -1, err);
  }
  cleanup_close int fd = open(a->local, O_RDONLY | O_NOFOLLOW | O_NOCTTY |
                                            O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return cell_fail_errno(err, "`%s`", a->local), EXIT_FAILED;
  if (S_ISREG(st.st_mode))
    return push_file(inv, a, fd, &st, a->path, err);
  return push_stream(inv, a, fd, err);
}

static int push(const struct invocation *inv, cell_error **err) {
  struct file_args a;
  cleanup_free char *buf = NULL;
  int rc = parse_args(inv, true, &a, &buf, err);
  if (rc != EXIT_OK)
    return rc;
  if (a.recursive)
    return push_recursive(inv, &a, err);
  cleanup_close int fd = open(a.local, O_RDONLY | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0)
    return cell_fail_errno(err, "`%s`", a.local), EXIT_FAILED;
  if (!S_ISREG(st.st_mode))
    return cell_fail(err, 0, "`%s` is not a regular file: only files are "
                     "copied (-r for a directory)", a.local), EXIT_FAILED;
  return push_file(inv, &a, fd, &st, a.path, err);
}

/* ---- pull -r ------------------------------------------------------------ */

static void print_skipped(const struct json_value *answer) {
  const struct json_value *list = json_object_get(answer, "skipped");
  if (list && list->type == JSON_ARRAY)
    for (size_t i = 0; i < list->u.array.len; i++)
      fprintf(stderr, "cellctl: warning: `%s` left out: %s\n",
              field_string(list->u.array.items[i], "path"),
              field_string(list->u.array.items[i], "why"));
  long long more = field_int(answer, "skipped_more", 0);
  if (more > 0)
    fprintf(stderr, "cellctl: warning: %lld more left out\n", more);
}

/* LOCAL made new, as a directory; the tree extracted into it from the
 * pipe whose write end rides with the request (LOCAL `-`: the stream goes
 * to stdout as it is).  A failed pull removes what it made. */
static int pull_recursive(const struct invocation *inv,
                          const struct file_args *a, cell_error **err) {
  cleanup_json_gen struct json_gen *g = request_new("file.pull", a->name);
  json_gen_kv_string(g, "path", a->path);
  json_gen_kv_bool(g, "recursive", true);
  cleanup_free char *req = request_finish(g);
  bool to_stdout = strcmp(a->local, "-") == 0;
  if (to_stdout && isatty(STDOUT_FILENO))
    return usage_error(err, "file pull -r NAME:/PATH -: stdout is a "
                       "terminal; redirect it to a file or a pipe");
  if (!to_stdout && mkdir(a->local, 0700) < 0)
    return cell_fail_errno(err, "`%s` (a pull -r makes a new directory)",
                           a->local), EXIT_FAILED;
  cleanup_close int dirfd =
      to_stdout ? -1
                : open(a->local, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int p[2] = {-1, STDOUT_FILENO};
  int rc = EXIT_OK;
  cleanup_error cell_error *local_err = NULL;
  if (!to_stdout && (dirfd < 0 || pipe2(p, O_CLOEXEC) < 0))
    rc = (cell_fail_errno(&local_err, "`%s`", a->local), EXIT_FAILED);
  cleanup_client struct client c = {.fd = -1};
  cleanup_json struct json_value *answer = NULL;
  if (rc == EXIT_OK) {
    rc = send_with_fd(inv, &c, req, p[1], err);
    bool sent = rc == EXIT_OK;
    if (!to_stdout)
      close(p[1]);
    if (sent && !to_stdout && tree_helper_unpack(dirfd, p[0], &local_err) < 0)
      rc = EXIT_FAILED;
    if (p[0] >= 0)
      close(p[0]); /* celld's child stops at a broken pipe */
    if (sent)
      rc = tree_answer(&c, rc, &local_err, &answer, err);
  } else {
    *err = local_err;
    local_err = NULL;
  }
  if (rc != EXIT_OK && !to_stdout) {
    cleanup_error cell_error *ignored = NULL;
    cell_rm_rf_at(AT_FDCWD, a->local, &ignored);
    return rc;
  }
  if (rc == EXIT_OK)
    print_skipped(answer);
  return rc;
}

static int pull(const struct invocation *inv, cell_error **err) {
  struct file_args a;
  cleanup_free char *buf = NULL;
  int rc = parse_args(inv, false, &a, &buf, err);
  if (rc != EXIT_OK)
    return rc;
  if (a.recursive)
    return pull_recursive(inv, &a, err);
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
