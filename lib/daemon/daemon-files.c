/* The file.push and file.pull ops (daemon-files.h).
 *
 * The instance's root: for a running one, its init's /proc/PID/root (what
 * it sees, its own mounts included), the pidfd checked after the open so
 * that a reused pid cannot hand us another root; for a stopped one, its
 * root mounted for the copy and unmounted after, the instance kept from
 * starting meanwhile. */
#include "daemon/daemon-files.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-image.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/daemon-runtime.h"
#include "daemon/instance-files.h"
#include "daemon/instance-tree-files.h"

enum push_type { PUSH_FILE, PUSH_DIRECTORY, PUSH_SYMLINK, PUSH_TREE };

/* The entries a pull -r left out that its answer names (the rest are
 * counted): the result line, each byte escaped as \u00XX at worst, must
 * stay under the job's line limit (8 KiB). */
#define SKIPPED_NAMED_BYTES 1024

struct file_work {
  bool push;
  bool tree; /* a pull of a directory and all it holds */
  enum push_type type;
  bool has_mode;
  uint32_t id_start, id_count;
  const char *target; /* of a symlink */
  int rootfd, clientfd;
  const char *path;
  uid_t uid;
  gid_t gid;
  mode_t mode;
};

/* The root of a running instance, through its init. */
static int open_running_root(const struct instance *in, cell_error **err) {
  char proc[64];
  snprintf(proc, sizeof(proc), "/proc/%d/root", (int)in->pid);
  cleanup_close int fd = open(proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open the root of `%s`", in->rec->name);
  if (daemon_pidfd_signal(in->pidfd, 0) < 0)
    return cell_fail(err, ESRCH, "instance `%s` stopped meanwhile",
                     in->rec->name);
  return steal_fd(&fd);
}

/* The root of a stopped instance, mounted for the copy (*mounted). */
static int open_stopped_root(struct daemon *d, struct instance *in,
                             bool *mounted, cell_error **err) {
  if (in->exports > 0)
    return cell_fail(err, EBUSY, "instance `%s` is busy (an export or a "
                     "file copy): try again when it is done", in->rec->name);
  /* Even a failed mount is undone as a mounted one. */
  *mounted = true;
  if (inst_mount_root(d, in, err) < 0)
    return -1;
  cleanup_free char *dir = daemon_inst_dir(d, in->rec->name);
  cleanup_free char *root = xasprintf("%s/rootfs", dir);
  int fd = open(root, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", root);
  return fd;
}

/* What the child tells celld: the copy's result, and for a tree its
 * entries and what a pull left out. */
struct copy_result {
  mode_t mode;
  uint64_t size, entries;
  char **skipped; /* path, why, path, why ... */
  size_t n_skipped, skipped_bytes;
  uint64_t skipped_more;   /* left out, but not named */
};

static void note_skipped(void *ctx, const char *path, const char *why) {
  struct copy_result *r = ctx;
  size_t len = strlen(path) + strlen(why) + 32; /* and its JSON */
  if (r->skipped_bytes + len > SKIPPED_NAMED_BYTES) {
    r->skipped_more++;
    return;
  }
  r->skipped_bytes += len;
  r->skipped = xrealloc(r->skipped, (r->n_skipped + 2) * sizeof(char *));
  r->skipped[r->n_skipped++] = xstrdup(path);
  r->skipped[r->n_skipped++] = xstrdup(why);
}

static void send_result(int fd, const cell_error *err,
                        const struct copy_result *r) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", err == NULL);
  if (err)
    json_gen_kv_string(g, "error", err->msg);
  json_gen_kv_int(g, "mode", r->mode);
  json_gen_key(g, "size");
  json_gen_uint(g, r->size);
  json_gen_key(g, "entries");
  json_gen_uint(g, r->entries);
  json_gen_key(g, "skipped_more");
  json_gen_uint(g, r->skipped_more);
  json_gen_key(g, "skipped");
  json_gen_array_open(g);
  for (size_t i = 0; i + 1 < r->n_skipped; i += 2) {
    json_gen_object_open(g);
    json_gen_kv_string(g, "path", r->skipped[i]);
    json_gen_kv_string(g, "why", r->skipped[i + 1]);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  json_gen_object_close(g);
  json_gen_write_line(g, fd);
}

static int copy_tree(const struct file_work *w, struct copy_result *r,
                     cell_error **err) {
  if (w->push) {
    struct tree_push_stats stats;
    int rc = instance_tree_push(w->rootfd, w->path, w->clientfd, w->uid,
                                w->gid, w->has_mode ? (int)w->mode : -1,
                                &stats, err);
    r->size = stats.bytes;
    r->entries = stats.entries;
    return rc;
  }
  return instance_tree_pull(w->rootfd, w->path, w->clientfd, w->id_start,
                            w->id_count, note_skipped, r, &r->size, err);
}

static void run_copy(struct daemon *d, void *arg, int outfd) {
  const struct file_work *w = arg;
  int keep[] = {w->rootfd, w->clientfd, outfd};
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  cell_close_fds_from(3, keep, sizeof(keep) / sizeof(*keep));
  cell_reset_signals();
  signal(SIGPIPE, SIG_IGN);
  cell_error *err = NULL;
  struct copy_result r = {.mode = w->mode};
  int rc;
  if (w->tree || (w->push && w->type == PUSH_TREE))
    rc = copy_tree(w, &r, &err);
  else if (!w->push)
    rc = instance_file_pull(w->rootfd, w->path, w->clientfd, &r.mode, &r.size,
                            &err);
  else if (w->type == PUSH_DIRECTORY)
    rc = instance_dir_push(w->rootfd, w->path, w->uid, w->gid, w->mode, &err);
  else if (w->type == PUSH_SYMLINK)
    rc = instance_symlink_push(w->rootfd, w->path, w->target, w->uid, w->gid,
                               &err);
  else
    rc = instance_file_push(w->rootfd, w->path, w->clientfd, w->uid, w->gid,
                            w->mode, &r.size, &err);
  /* The stream's end, before the answer: the client reads it to its EOF
   * first. */
  close(w->clientfd);
  send_result(outfd, err, &r);
  _exit(rc == 0 ? 0 : 1);
}

/* What the job remembers: the instance, and whether its root was mounted
 * for it. */
struct file_job {
  char *name;
  bool mounted;
};

static void file_job_free(void *ctx) {
  struct file_job *fj = ctx;
  free(fj->name);
  free(fj);
}

/* A stopped instance's root, mounted for the copy, goes; it may start
 * again.  Before the answer, so that the client's next request finds it
 * so. */
static void release_root(struct daemon *d, struct file_job *fj) {
  struct instance *in = daemon_find_instance(d, fj->name);
  if (!fj->mounted || !in)
    return;
  fj->mounted = false;
  if (in->exports > 0)
    in->exports--;
  if (in->pidfd < 0)
    daemon_rootfs_umount(d, fj->name);
}

static void file_result(struct daemon *d, struct image_job *j,
                        const struct json_value *v) {
  release_root(d, j->ctx);
  struct conn *c = daemon_find_conn(d, j->conn_id);
  if (!c)
    return;
  const struct json_value *ok = json_object_get(v, "ok");
  if (!ok || ok->type != JSON_BOOL || !ok->u.boolean) {
    const char *error = request_str(v, "error");
    conn_error(d, c, API_FAILED, error ? error : "file copy failed");
    return;
  }
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  /* What the child counted, passed on as it is (numbers, and the entries
   * a pull -r left out). */
  static const char *const passed[] = {"mode", "size", "entries", "skipped",
                                       "skipped_more"};
  for (size_t i = 0; i < sizeof(passed) / sizeof(*passed); i++) {
    const struct json_value *f = json_object_get(v, passed[i]);
    if (f) {
      json_gen_key(g, passed[i]);
      json_gen_value(g, f);
    }
  }
  json_gen_object_close(g);
  size_t len = 0;
  cleanup_free char *out = json_gen_finish(g, &len);
  json_gen_free(g);
  conn_send(d, c, out);
}

static void file_end(struct daemon *d, struct image_job *j) {
  release_root(d, j->ctx);
}

/* The fields of a push: ids inside the instance, shifted to its range. */
static int push_fields(const struct instance *in, const struct json_value *v,
                       struct file_work *w, cell_error **err) {
  int64_t uid = 0, gid = 0, mode = 0644;
  const struct json_value *u = json_object_get(v, "uid");
  const struct json_value *g = json_object_get(v, "gid");
  const struct json_value *m = json_object_get(v, "mode");
  int64_t max = (int64_t)in->rec->id_count - 1;
  if (u && (!json_get_int64(u, &uid) || uid < 0 || uid > max))
    return cell_fail(err, 0, "field `uid`: an id of the instance, 0 to %lld",
                     (long long)max);
  if (g && (!json_get_int64(g, &gid) || gid < 0 || gid > max))
    return cell_fail(err, 0, "field `gid`: an id of the instance, 0 to %lld",
                     (long long)max);
  if (m && (!json_get_int64(m, &mode) || mode < 0 || mode > 07777))
    return cell_fail(err, 0, "field `mode`: permission bits, 0 to 07777");
  const char *type = request_str(v, "type");
  w->type = !type || strcmp(type, "file") == 0 ? PUSH_FILE
            : strcmp(type, "directory") == 0  ? PUSH_DIRECTORY
            : strcmp(type, "symlink") == 0    ? PUSH_SYMLINK
            : strcmp(type, "tree") == 0       ? PUSH_TREE
                                              : (enum push_type)-1;
  if ((int)w->type < 0)
    return cell_fail(err, 0, "field `type`: file, directory, symlink or tree");
  w->has_mode = m != NULL;
  w->target = request_str(v, "target");
  if ((w->type == PUSH_SYMLINK) != (w->target != NULL))
    return cell_fail(err, 0, "field `target`: required with type symlink, "
                     "and only with it");
  if (w->target && (!*w->target || strlen(w->target) >= 4096))
    return cell_fail(err, 0, "field `target`: 1 to 4095 bytes");
  w->uid = (uid_t)(in->rec->id_start + (uint32_t)uid);
  w->gid = (gid_t)(in->rec->id_start + (uint32_t)gid);
  w->mode = (mode_t)mode;
  return 0;
}

static int check_request(struct daemon *d, struct conn *c, struct instance *in,
                         const struct json_value *v, struct file_work *w,
                         enum api_code *code, cell_error **err) {
  *code = API_INVALID_REQUEST;
  w->path = request_str(v, "path");
  if (!w->path || w->path[0] != '/')
    return cell_fail(err, 0, "field `path`: required, an absolute path inside "
                     "the instance");
  if (w->push && push_fields(in, v, w, err) < 0)
    return -1;
  const struct json_value *r = json_object_get(v, "recursive");
  w->tree = !w->push && r && r->type == JSON_BOOL && r->u.boolean;
  w->id_start = in->rec->id_start;
  w->id_count = in->rec->id_count;
  bool needs_fd = !w->push || w->type == PUSH_FILE || w->type == PUSH_TREE;
  if (c->n_fds != (needs_fd ? 1u : 0u))
    return cell_fail(err, 0, needs_fd ? "send the fd to %s with the request "
                                        "(SCM_RIGHTS)"
                                      : "a %s comes with no fd",
                     needs_fd ? (w->push ? "read from" : "write to")
                              : "directory or symlink");
  *code = API_FAILED;
  if (daemon_image_jobs_full(d))
    return cell_fail(err, EBUSY, "too many copies, imports and exports under "
                     "way: try again when one has finished");
  return 0;
}

static void file_op(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v, bool push) {
  struct file_work w = {.push = push, .rootfd = -1,
                        .clientfd = c->n_fds ? c->fds[0] : -1};
  cell_error *err = NULL;
  enum api_code code;
  if (check_request(d, c, in, v, &w, &code, &err) < 0) {
    conn_fail(d, c, code, &err);
    return;
  }
  bool mounted = false;
  cleanup_close int rootfd = in->pidfd >= 0
                                 ? open_running_root(in, &err)
                                 : open_stopped_root(d, in, &mounted, &err);
  int pipefd = -1;
  w.rootfd = rootfd;
  pid_t pid = rootfd < 0 ? -1 : image_child_spawn(run_copy, d, &w, &pipefd, &err);
  if (pid < 0) {
    if (mounted)
      daemon_rootfs_umount(d, in->rec->name);
    inst_save_or_log(d, in); /* its rootfs_mode may be new */
    conn_fail(d, c, err->errnum == EBUSY ? API_WRONG_STATE : API_FAILED, &err);
    return;
  }
  struct file_job *fj = xcalloc(1, sizeof(*fj));
  fj->name = xstrdup(in->rec->name);
  fj->mounted = mounted;
  cleanup_free char *what = xasprintf(push ? "file push into `%s`"
                                           : "file pull from `%s`",
                                      in->rec->name);
  struct image_job *j =
      image_job_new(c->cred.uid, what, fj, file_job_free);
  j->on_result = file_result;
  j->on_end = file_end;
  if (mounted)
    in->exports++; /* no start while its root is ours */
  daemon_image_add_job(d, c, j, pid, pipefd);
}

void op_file_push(struct daemon *d, struct conn *c, struct instance *in,
                  const struct json_value *v) {
  file_op(d, c, in, v, true);
}

void op_file_pull(struct daemon *d, struct conn *c, struct instance *in,
                  const struct json_value *v) {
  file_op(d, c, in, v, false);
}
