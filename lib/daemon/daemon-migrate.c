/* Live migration: see daemon-migrate.h.
 *
 * The stream between the two cellds is lines of JSON, each followed by
 * the raw bytes of a blob when it announces one:
 *   source: {"cell_migrate":1,"name":N,"id_start":I,"id_count":C,
 *            "networks":[...]}
 *   target: {"ok":true} or {"ok":false,"error":E}  (nothing made yet)
 *   source: {"blob":"archive","size":S} + S bytes   (the export stream)
 *           {"blob":"image","file":F,"size":S} + S bytes, each image file
 *           {"done":true}
 *   target: {"ok":true} once the instance runs there, or the error
 *           (cellctl receive writes it when its celld answers).
 * The source freezes the instance before its final dump and thaws it on
 * any failure; it kills and destroys it only after the target's ok.  The
 * target's work is in tmp/import-PID-0 (gone with the job whatever
 * happens) until the instance is made; a failed restore destroys it. */
#include "daemon/daemon-migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cgroup/cgroup.h"
#include "daemon/daemon-checkpoint.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-image.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-net.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/daemon-runtime.h"
#include "daemon/daemon-transfer.h"
#include "storage/image-store.h"
#include "storage/instance-archive.h"

#define MIGRATE_FORMAT 1
#define MIGRATE_MAX_LINE 65536
/* The images' directory under the instance's checkpoints/, both sides. */
#define MIGRATE_SNAP "migrate"

/* ---- the stream --------------------------------------------------------- */

static int send_gen(int fd, struct json_gen *g, cell_error **err) {
  size_t len = 0;
  cleanup_free char *text = json_gen_finish(g, &len);
  json_gen_free(g);
  cleanup_free char *line = xasprintf("%s\n", text);
  if (cell_write_all(fd, line, len + 1) < 0)
    return cell_fail_errno(err, "migration stream: write");
  return 0;
}

static int send_answer(int fd, const cell_error *failed, cell_error **err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", failed == NULL);
  if (failed)
    json_gen_kv_string(g, "error", failed->msg);
  json_gen_object_close(g);
  return send_gen(fd, g, err);
}

/* One line, byte by byte: what follows it is a blob for someone else. */
static int read_line(int fd, struct json_value **out, cell_error **err) {
  cleanup_free char *buf = xmalloc(MIGRATE_MAX_LINE);
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return cell_fail_errno(err, "migration stream: read");
    if (r == 0)
      return cell_fail(err, 0, "migration stream: the other side went");
    if (buf[n] == '\n')
      break;
    if (++n == MIGRATE_MAX_LINE)
      return cell_fail(err, 0, "migration stream: a line too long");
  }
  if (json_parse(buf, n, out, err) < 0 || (*out)->type != JSON_OBJECT)
    return cell_error_wrap(err, "migration stream: not a JSON object");
  return 0;
}

/* The other side's {"ok":...}: its error becomes ours. */
static int read_answer(int fd, const char *what, cell_error **err) {
  cleanup_json struct json_value *v = NULL;
  if (read_line(fd, &v, err) < 0)
    return cell_error_wrap(err, "%s", what);
  const struct json_value *ok = json_object_get(v, "ok");
  if (ok && ok->type == JSON_BOOL && ok->u.boolean)
    return 0;
  const char *e = request_str(v, "error");
  return cell_fail(err, 0, "%s: %s", what, e ? e : "refused");
}

static int copy_bytes(int from, int to, uint64_t size, cell_error **err) {
  char buf[65536];
  while (size > 0) {
    size_t want = size < sizeof(buf) ? (size_t)size : sizeof(buf);
    ssize_t r = read(from, buf, want);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return cell_fail_errno(err, "migration stream: read");
    if (r == 0)
      return cell_fail(err, 0, "migration stream: ended in a blob");
    if (cell_write_all(to, buf, (size_t)r) < 0)
      return cell_fail_errno(err, "migration stream: write");
    size -= (uint64_t)r;
  }
  return 0;
}

static int send_blob(int sock, const char *kind, const char *file, int fd,
                     cell_error **err) {
  struct stat sb;
  if (fstat(fd, &sb) < 0 || lseek(fd, 0, SEEK_SET) < 0)
    return cell_fail_errno(err, "migration: a blob to send");
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_string(g, "blob", kind);
  if (file)
    json_gen_kv_string(g, "file", file);
  json_gen_key(g, "size");
  json_gen_uint(g, (uint64_t)sb.st_size);
  json_gen_object_close(g);
  if (send_gen(sock, g, err) < 0)
    return -1;
  return copy_bytes(fd, sock, (uint64_t)sb.st_size, err);
}

/* The line a child ends with, for the loop. */
static void child_result(int fd, const cell_error *err, int64_t frozen_ms) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", err == NULL);
  if (err)
    json_gen_kv_string(g, "error", err->msg);
  json_gen_kv_int(g, "frozen_ms", frozen_ms);
  json_gen_object_close(g);
  cell_error *ignored = NULL;
  send_gen(fd, g, &ignored);
  cell_error_free(&ignored);
}

static struct image_job *new_job(uid_t owner, void *ctx,
                                 void (*ctx_free)(void *)) {
  struct image_job *j = xcalloc(1, sizeof(*j));
  j->owner = owner;
  j->pidfd = j->pipefd = -1;
  j->ctx = ctx;
  j->ctx_free = ctx_free;
  return j;
}

static bool result_ok(const struct json_value *v, const char **error) {
  const struct json_value *ok = json_object_get(v, "ok");
  *error = request_str(v, "error");
  return ok && ok->type == JSON_BOOL && ok->u.boolean;
}

/* ---- the source: the child ---------------------------------------------- */

struct send_work {
  char *name, *runroot, *inst_dir, *images, *cgroup, *record_json;
  struct image *image; /* with its own layers above */
  char **networks;
  uint32_t id_start, id_count;
  pid_t pid;
  int sock, upperfd;
  bool check_only; /* criu's verdict only: no stream yet */
};

static void send_work_free(void *p) {
  struct send_work *w = p;
  free(w->name);
  free(w->runroot);
  free(w->inst_dir);
  free(w->images);
  free(w->cgroup);
  free(w->record_json);
  image_free(w->image);
  cell_strv_free(w->networks);
  if (w->sock >= 0)
    close(w->sock);
  if (w->upperfd >= 0)
    close(w->upperfd);
  free(w);
}

static int send_hello(const struct send_work *w, cell_error **err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_int(g, "cell_migrate", MIGRATE_FORMAT);
  json_gen_kv_string(g, "name", w->name);
  json_gen_kv_int(g, "id_start", w->id_start);
  json_gen_kv_int(g, "id_count", w->id_count);
  json_gen_key(g, "networks");
  json_gen_array_open(g);
  for (size_t i = 0; w->networks && w->networks[i]; i++)
    json_gen_string(g, w->networks[i]);
  json_gen_array_close(g);
  json_gen_object_close(g);
  return send_gen(w->sock, g, err);
}

/* The export stream of the frozen instance, spooled (its size goes
 * first), then sent. */
static int send_archive(struct daemon *d, const struct send_work *w,
                        cell_error **err) {
  cleanup_close int fd =
      openat(d->store->tmpfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return cell_fail_errno(err, "migration: spool the storage");
  struct instance_export x = {.record_json = w->record_json,
                              .image = w->image,
                              .layersfd = d->store->layersfd,
                              .upperfd = w->upperfd,
                              .spoolfd = d->store->tmpfd};
  uint64_t size = 0;
  if (instance_archive_write(&x, fd, &size, err) < 0)
    return -1;
  return send_blob(w->sock, "archive", NULL, fd, err);
}

static int send_images(const struct send_work *w, cell_error **err) {
  int dfd = open(w->images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
  if (!dir) {
    if (dfd >= 0)
      close(dfd);
    return cell_fail_errno(err, "open `%s`", w->images);
  }
  int rc = 0;
  for (struct dirent *e; rc == 0 && (e = readdir(dir));) {
    if (e->d_type != DT_REG)
      continue;
    cleanup_close int fd =
        openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    rc = fd < 0 ? cell_fail_errno(err, "open `%s/%s`", w->images, e->d_name)
                : send_blob(w->sock, "image", e->d_name, fd, err);
  }
  closedir(dir);
  return rc;
}

static int send_done(int sock, cell_error **err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "done", true);
  json_gen_object_close(g);
  return send_gen(sock, g, err);
}

/* A write failed: the target went.  Its reason, when it wrote one
 * before it went, says more than the broken pipe. */
static void prefer_target_reason(int sock, cell_error **err) {
  cleanup_json struct json_value *v = NULL;
  cell_error *none = NULL;
  if (read_line(sock, &v, &none) < 0) {
    cell_error_free(&none);
    return;
  }
  const char *why = request_str(v, "error");
  if (!why)
    return;
  cell_error_free(err);
  cell_fail(err, 0, "the target: %s", why);
}

static void run_send(struct daemon *d, void *arg, int outfd) {
  struct send_work *w = arg;
  int keep[] = {w->sock, w->upperfd, outfd, d->store->layersfd,
                d->store->tmpfd};
  image_child_setup(keep, sizeof(keep) / sizeof(keep[0]));
  cell_error *err = NULL;
  cleanup_free char *criu = NULL;
  uint64_t frozen_at = 0;
  int64_t frozen_ms = 0;
  /* Nothing touched on either side before both agree. */
  int rc = checkpoint_usable_criu(w->runroot, "migrate", &criu, &err);
  if (w->check_only) {
    child_result(outfd, err, 0);
    _exit(rc == 0 ? 0 : 1);
  }
  if (rc == 0)
    rc = send_hello(w, &err);
  if (rc == 0)
    rc = read_answer(w->sock, "the target", &err);
  /* Until it runs on the target, or on here again (thaw), nothing reaches
   * it: its kernel would acknowledge TCP data that the target never gets. */
  struct instance *in = daemon_find_instance(d, w->name);
  if (rc == 0 && in)
    daemon_net_ports_set_up(in->rec, false);
  if (rc == 0)
    rc = checkpoint_dump_frozen(w->runroot, w->inst_dir, w->images, w->cgroup,
                                w->pid, &frozen_at, &err);
  if (rc == 0 && (send_archive(d, w, &err) < 0 || send_images(w, &err) < 0 ||
                  send_done(w->sock, &err) < 0)) {
    prefer_target_reason(w->sock, &err);
    rc = -1;
  }
  if (rc == 0)
    rc = read_answer(w->sock, "the target", &err);
  if (frozen_at)
    frozen_ms = (int64_t)(daemon_now_ms() - frozen_at);
  child_result(outfd, err, frozen_ms);
  _exit(rc == 0 ? 0 : 1);
}

/* ---- the source: the loop ----------------------------------------------- */

struct send_job {
  struct send_work *w;
  bool done; /* its result came: the instance is killed or thawed */
};

static void send_job_free(void *p) {
  struct send_job *sj = p;
  send_work_free(sj->w);
  free(sj);
}

static void thaw(const struct instance *in) {
  struct cgroup *cg = NULL;
  cleanup_error cell_error *err = NULL;
  if (cgroup_open(in->rec->cgroup, &cg, &err) < 0 ||
      cgroup_freeze(cg, false, &err) < 0)
    log_error("%s: thaw after a migration: %s", in->rec->name, err->msg);
  cgroup_free(cg);
}

/* The migration failed: it runs on here again, reachable again. */
static void resume_here(const struct instance *in) {
  daemon_net_ports_set_up(in->rec, true);
  thaw(in);
}

/* It runs on the target: killed while still frozen (it dies at the
 * thaw, without running a step), then destroyed as destroy -f does. */
static void remove_migrated(struct instance *in) {
  in->after = AFTER_DESTROY;
  in->stopping = true;
  daemon_pidfd_signal(in->pidfd, SIGKILL);
  thaw(in);
}

static void reply_migrated(struct daemon *d, struct conn *c, const char *name,
                           int64_t frozen_ms) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_kv_string(g, "name", name);
  json_gen_kv_int(g, "frozen_ms", frozen_ms);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

static void send_result(struct daemon *d, struct image_job *j,
                        const struct json_value *v) {
  struct send_job *sj = j->ctx;
  struct conn *c = daemon_find_conn(d, j->conn_id);
  struct instance *in = daemon_find_instance(d, sj->w->name);
  const char *error = NULL;
  int64_t frozen_ms = 0;
  const struct json_value *f = json_object_get(v, "frozen_ms");
  if (f)
    json_get_int64(f, &frozen_ms);
  sj->done = true;
  if (in && !sj->w->check_only)
    in->checkpointing = false;
  if (sj->w->check_only) {
    if (!c)
      return;
    if (result_ok(v, &error))
      reply_migrated(d, c, sj->w->name, 0);
    else
      conn_error(d, c, API_FAILED, error ? error : "migration refused");
    return;
  }
  if (!result_ok(v, &error)) {
    log_warn("%s: migration failed, it runs on here: %s", sj->w->name,
             error ? error : "?");
    if (in && in->pidfd >= 0)
      resume_here(in);
    cleanup_free char *msg = xasprintf("migrate `%s`: %s (it runs on here)",
                                       sj->w->name, error ? error : "failed");
    if (c)
      conn_error(d, c, API_FAILED, msg);
    return;
  }
  log_info("%s: migrated (frozen %lld ms); removed here", sj->w->name,
           (long long)frozen_ms);
  if (in && in->pidfd >= 0)
    remove_migrated(in);
  else if (in)
    inst_finish_destroy(d, in);
  if (c)
    reply_migrated(d, c, sj->w->name, frozen_ms);
}

static void send_end(struct daemon *d, struct image_job *j) {
  struct send_job *sj = j->ctx;
  struct instance *in = daemon_find_instance(d, sj->w->name);
  cleanup_error cell_error *err = NULL;
  if (sj->w->check_only)
    return;
  if (cell_rm_rf_at(AT_FDCWD, sj->w->images, &err) < 0)
    log_warn("%s", err->msg);
  if (!in || sj->done)
    return;
  /* The child died without a word: it runs on here. */
  in->checkpointing = false;
  if (in->pidfd >= 0)
    resume_here(in);
}

static int check_migratable(struct daemon *d, const struct conn *c,
                            const struct instance *in, bool check_only,
                            enum api_code *code, cell_error **err) {
  const struct instance_record *r = in->rec;
  *code = API_INVALID_REQUEST;
  if (c->n_fds != (check_only ? 0u : 1u))
    return cell_fail(err, 0, "migrate: send the stream's fd with the request "
                     "(SCM_RIGHTS)");
  if (!r->image || (r->rootfs_mode && strcmp(r->rootfs_mode, "copy") == 0))
    return cell_fail(err, 0, "instance `%s` is not an image's instance in "
                     "container ids: it cannot be migrated", r->name);
  *code = API_WRONG_STATE;
  if (in->pidfd < 0)
    return cell_fail(err, 0, "instance `%s` is not running: export and "
                     "import it instead", r->name);
  if (inst_is_paused(in))
    return cell_fail(err, 0, "instance `%s` is paused: resume it first",
                     r->name);
  if (checkpoint_refuse_lxcfs(in, "migrate", err) < 0)
    return -1;
  if (in->checkpointing || in->exports > 0)
    return cell_fail(err, 0, "instance `%s` is being checkpointed, exported "
                     "or migrated: try again when that is done", r->name);
  *code = API_FAILED;
  if (!daemon_image_of(d, r))
    return cell_fail(err, 0, "instance `%s`: its image %s is not in the "
                     "store", r->name, r->image);
  if (daemon_image_jobs_full(d))
    return cell_fail(err, 0, "too many imports, exports and checkpoints "
                     "under way: try again when one has finished");
  return 0;
}

static struct send_work *send_work_new(struct daemon *d, struct conn *c,
                                       const struct instance *in,
                                       bool check_only, cell_error **err) {
  const struct instance_record *r = in->rec;
  struct send_work *w = xcalloc(1, sizeof(*w));
  w->sock = w->upperfd = -1;
  w->name = xstrdup(r->name);
  w->runroot = xstrdup(d->runroot);
  w->inst_dir = daemon_inst_dir(d, r->name);
  w->images = xasprintf("%s/checkpoints/.tmp-" MIGRATE_SNAP, w->inst_dir);
  w->cgroup = xstrdup(r->cgroup);
  w->record_json = instance_record_to_json(r, false);
  w->image = image_with_layers_above(daemon_image_of(d, r), r->own_layers);
  for (size_t i = 0; i < r->n_nets; i++)
    cell_strv_push(&w->networks, r->nets[i].network);
  w->id_start = r->id_start;
  w->id_count = r->id_count;
  w->pid = in->pid;
  w->check_only = check_only;
  if (check_only)
    return w;
  w->sock = fcntl(c->fds[0], F_DUPFD_CLOEXEC, 3);
  cleanup_free char *upper = xasprintf("%s/disk/upper", w->inst_dir);
  w->upperfd = open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (w->sock < 0 || w->upperfd < 0) {
    cell_fail_errno(err, "migrate `%s`", r->name);
    send_work_free(w);
    return NULL;
  }
  return w;
}

void op_migrate(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v) {
  cell_error *err = NULL;
  enum api_code code;
  const struct json_value *check = json_object_get(v, "check");
  bool check_only = check && check->type == JSON_BOOL && check->u.boolean;
  if (check_migratable(d, c, in, check_only, &code, &err) < 0) {
    conn_fail(d, c, code, &err);
    return;
  }
  struct send_work *w = send_work_new(d, c, in, check_only, &err);
  int pipefd = -1;
  pid_t pid = w ? image_child_spawn(run_send, d, w, &pipefd, &err) : -1;
  if (pid < 0) {
    if (w)
      send_work_free(w);
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  /* The child has its own copies. */
  if (w->sock >= 0)
    close(w->sock);
  if (w->upperfd >= 0)
    close(w->upperfd);
  w->sock = w->upperfd = -1;
  struct send_job *sj = xcalloc(1, sizeof(*sj));
  sj->w = w;
  in->checkpointing = !check_only;
  struct image_job *j = new_job(c->cred.uid, sj, send_job_free);
  j->on_result = send_result;
  j->on_end = send_end;
  daemon_image_add_job(d, c, j, pid, pipefd);
}

/* ---- the target: the child ---------------------------------------------- */

struct recv_work {
  int in, out;
};

static bool ranges_overlap(uint32_t a, uint32_t na, uint32_t b, uint32_t nb) {
  return (uint64_t)a < (uint64_t)b + nb && (uint64_t)b < (uint64_t)a + na;
}

/* What the sender asks, checked against this host before anything is
 * made (the loop checks the name again when it makes the instance). */
static int check_hello(struct daemon *d, const struct json_value *v,
                       cell_error **err) {
  int64_t format = 0, id_start = -1, id_count = -1;
  const struct json_value *f = json_object_get(v, "cell_migrate");
  const struct json_value *s = json_object_get(v, "id_start");
  const struct json_value *n = json_object_get(v, "id_count");
  const char *name = request_str(v, "name");
  if (!f || !json_get_int64(f, &format) || format != MIGRATE_FORMAT || !s ||
      !json_get_int64(s, &id_start) || !n ||
      !json_get_int64(n, &id_count) || id_start < 1 || id_count < 1 ||
      id_start + id_count > UINT32_MAX || !name)
    return cell_fail(err, 0, "not a migration of this version of celld");
  if (instance_check_name(name, err) < 0)
    return -1;
  if (daemon_find_instance(d, name))
    return cell_fail(err, 0, "instance `%s` already exists on the target: "
                     "destroy or rename it there first", name);
  const struct json_value *nets = json_object_get(v, "networks");
  for (size_t i = 0; nets && nets->type == JSON_ARRAY && i < nets->u.array.len;
       i++) {
    const struct json_value *e = nets->u.array.items[i];
    if (e->type != JSON_STRING || !daemon_config_network(d->cfg, e->u.string))
      return cell_fail(err, 0, "the target has no network `%s`: add it to "
                       "its celld.conf first",
                       e->type == JSON_STRING ? e->u.string : "?");
  }
  /* criu's images hold the instance's ids: it keeps them here. */
  for (size_t i = 0; i < d->n_inst; i++)
    if (ranges_overlap((uint32_t)id_start, (uint32_t)id_count,
                       d->inst[i]->rec->id_start, d->inst[i]->rec->id_count))
      return cell_fail(err, 0, "the target's instance `%s` has ids of the "
                       "range %lld..: they are the migrated instance's",
                       d->inst[i]->rec->name, (long long)id_start);
  cleanup_free char *criu = NULL;
  return checkpoint_usable_criu(d->runroot, "migrate", &criu, err);
}

static int recv_hello(struct daemon *d, const struct recv_work *w,
                      cell_error **err) {
  cleanup_json struct json_value *v = NULL;
  if (read_line(w->in, &v, err) < 0)
    return -1;
  cell_error *refused = NULL;
  int rc = check_hello(d, v, &refused);
  if (send_answer(w->out, refused, err) < 0) {
    cell_error_free(&refused);
    return -1;
  }
  if (rc < 0)
    *err = refused;
  return rc;
}

/* An image file's name: one component, as criu names them. */
static bool image_name_ok(const char *s) {
  return s && s[0] && s[0] != '.' && strlen(s) < 256 && !strchr(s, '/');
}

static int recv_archive(struct daemon *d, const struct recv_work *w,
                        int workfd, uint64_t size, cell_error **err) {
  cleanup_close int fd =
      openat(workfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return cell_fail_errno(err, "migration: spool the storage");
  if (copy_bytes(w->in, fd, size, err) < 0 || lseek(fd, 0, SEEK_SET) < 0)
    return -1;
  struct instance_import_opts o = {
      .layersfd = d->store->layersfd,
      .lim = {d->cfg->image_max_size, d->cfg->image_max_entries}};
  return instance_archive_read(fd, workfd, &o, err);
}

static int recv_image(const struct recv_work *w, int imagesfd,
                      const char *file, uint64_t size, cell_error **err) {
  if (!image_name_ok(file))
    return cell_fail(err, 0, "migration stream: an image named `%s`",
                     file ? file : "");
  cleanup_close int fd =
      openat(imagesfd, file,
             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return cell_fail_errno(err, "migration: image `%s`", file);
  return copy_bytes(w->in, fd, size, err);
}

/* The blobs until {"done":true}: the archive extracted into workfd, the
 * images into its images/. */
static int recv_blobs(struct daemon *d, const struct recv_work *w, int workfd,
                      cell_error **err) {
  if (mkdirat(workfd, "images", 0700) < 0)
    return cell_fail_errno(err, "mkdir images");
  cleanup_close int imagesfd =
      openat(workfd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (imagesfd < 0)
    return cell_fail_errno(err, "open images");
  bool have_archive = false;
  for (;;) {
    cleanup_json struct json_value *v = NULL;
    if (read_line(w->in, &v, err) < 0)
      return -1;
    if (json_object_get(v, "done"))
      break;
    const char *kind = request_str(v, "blob");
    const struct json_value *sz = json_object_get(v, "size");
    uint64_t size = 0;
    if (!kind || !sz || !json_get_uint64(sz, &size))
      return cell_fail(err, 0, "migration stream: not a blob");
    int rc;
    if (strcmp(kind, "archive") == 0 && !have_archive) {
      rc = recv_archive(d, w, workfd, size, err);
      have_archive = true;
    } else if (strcmp(kind, "image") == 0) {
      rc = recv_image(w, imagesfd, request_str(v, "file"), size, err);
    } else {
      rc = cell_fail(err, 0, "migration stream: an unexpected `%s`", kind);
    }
    if (rc < 0)
      return -1;
  }
  if (!have_archive)
    return cell_fail(err, 0, "migration stream: no storage came");
  return 0;
}

static void run_receive(struct daemon *d, void *arg, int outfd) {
  struct recv_work *w = arg;
  int keep[] = {w->in, w->out, outfd, d->store->layersfd, d->store->tmpfd};
  image_child_setup(keep, sizeof(keep) / sizeof(keep[0]));
  cell_error *err = NULL;
  int rc = recv_hello(d, w, &err);
  cleanup_free char *work = transfer_work_dir_name(getpid());
  if (rc == 0 && mkdirat(d->store->tmpfd, work, 0700) < 0)
    rc = cell_fail_errno(&err, "mkdir tmp/%s", work);
  cleanup_close int workfd =
      rc < 0 ? -1
             : openat(d->store->tmpfd, work,
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rc == 0 && workfd < 0)
    rc = cell_fail_errno(&err, "open tmp/%s", work);
  if (rc == 0)
    rc = recv_blobs(d, w, workfd, &err);
  child_result(outfd, err, 0);
  _exit(rc == 0 ? 0 : 1);
}

/* ---- the target: the loop ----------------------------------------------- */

/* The images the child received, moved to the instance's checkpoints/. */
static int place_images(struct daemon *d, const struct image_job *j,
                        const char *name, cell_error **err) {
  cleanup_free char *work = transfer_work_dir_name(j->pid);
  cleanup_free char *from = xasprintf("%s/images", work);
  cleanup_free char *dir = daemon_inst_dir(d, name);
  cleanup_free char *parent = xasprintf("%s/checkpoints", dir);
  if (mkdir(parent, 0700) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", parent);
  cleanup_free char *to = xasprintf("%s/" MIGRATE_SNAP, parent);
  if (renameat(d->store->tmpfd, from, AT_FDCWD, to) < 0)
    return cell_fail_errno(err, "move the images to `%s`", to);
  return 0;
}

static void receive_result(struct daemon *d, struct image_job *j,
                           const struct json_value *v) {
  struct conn *c = daemon_find_conn(d, j->conn_id);
  const char *error = NULL;
  cell_error *err = NULL;
  enum api_code code = API_FAILED;
  if (!result_ok(v, &error)) {
    log_warn("receive failed: %s", error ? error : "?");
    if (c)
      conn_error(d, c, API_FAILED, error ? error : "receive failed");
    return;
  }
  if (!c)
    return; /* nobody waits: nothing made */
  cleanup_strv char **warnings = NULL;
  struct instance *in =
      transfer_place_import(d, j, NULL, true, &warnings, &code, &err);
  if (in && place_images(d, j, in->rec->name, &err) < 0) {
    inst_finish_destroy(d, in);
    in = NULL;
  }
  if (!in) {
    log_warn("receive failed: %s", err->msg);
    conn_fail(d, c, code, &err);
    return;
  }
  for (size_t i = 0; warnings && warnings[i]; i++)
    log_warn("instance %s: %s", in->rec->name, warnings[i]);
  log_info("instance %s received (ids %u..): restoring its processes",
           in->rec->name, (unsigned)in->rec->id_start);
  daemon_emit(d, in, "created");
  checkpoint_restore_migrated(d, c, in, MIGRATE_SNAP);
}

void op_receive(struct daemon *d, struct conn *c, struct instance *unused,
                const struct json_value *v) {
  cell_error *err = NULL;
  if (c->n_fds != 1 && c->n_fds != 2) {
    conn_error(d, c, API_INVALID_REQUEST, "receive: send the stream's fd "
               "(and the fd to answer on, when not the same) with the "
               "request (SCM_RIGHTS)");
    return;
  }
  if (daemon_image_jobs_full(d)) {
    conn_error(d, c, API_FAILED, "too many imports, exports and checkpoints "
               "under way: try again when one has finished");
    return;
  }
  struct recv_work w = {c->fds[0], c->fds[c->n_fds - 1]};
  int pipefd = -1;
  pid_t pid = image_child_spawn(run_receive, d, &w, &pipefd, &err);
  if (pid < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  struct image_job *j = new_job(c->cred.uid, NULL, NULL);
  j->on_result = receive_result;
  daemon_image_add_job(d, c, j, pid, pipefd);
}
