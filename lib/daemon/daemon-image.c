/* The image ops: import (in a child process, so that celld keeps serving
 * while an image of gigabytes is read; its progress goes to the client,
 * and a client that goes away cancels it), list, show, tag and rm; and
 * the image a create names. */
#include "daemon/daemon-image.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/syscalls.h"
#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "storage/image-import.h"

/* Imports at once, all clients together: each holds a process and I/O. */
#define MAX_IMPORTS 4
#define MAX_JOB_LINE 8192

int daemon_image_open_store(struct daemon *d, cell_error **err) {
  cleanup_free char *dir = xasprintf("%s/images", d->cfg->state_dir);
  return image_store_open(dir, &d->store, err);
}

/* ---- the import's child ------------------------------------------------- */

struct worker_out {
  int fd;
};

static void worker_progress(void *ctx, const struct image_import_progress *p) {
  struct worker_out *out = ctx;
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_key(g, "progress");
  json_gen_object_open(g);
  json_gen_kv_string(g, "step", p->step);
  json_gen_kv_int(g, "layer", p->layer);
  json_gen_kv_int(g, "layers", p->layers);
  json_gen_key(g, "bytes");
  json_gen_uint(g, p->bytes);
  json_gen_key(g, "total");
  json_gen_uint(g, p->total);
  json_gen_object_close(g);
  json_gen_object_close(g);
  json_gen_write_line(g, out->fd);
}

static void worker_result(int fd, const char *id, const cell_error *err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", id != NULL);
  if (id)
    json_gen_kv_string(g, "id", id);
  else
    json_gen_kv_string(g, "error", err ? err->msg : "import failed");
  json_gen_object_close(g);
  json_gen_write_line(g, fd);
}

/* What an import's child reads, and for whom. */
struct import_work {
  int srcfd;
  const struct conn *c;
  const char *source;
};

static void run_worker(struct daemon *d, void *arg, int outfd) {
  const struct import_work *w = arg;
  const struct conn *c = w->c;
  int srcfd = w->srcfd;
  const struct image_store *s = d->store;
  int keep[] = {srcfd, outfd, s->dirfd, s->layersfd, s->imagesfd, s->tmpfd};
  image_child_setup(keep, sizeof(keep) / sizeof(keep[0]));
  struct worker_out out = {outfd};
  struct image_import_opts o = {
      .lim = {d->cfg->image_max_size, d->cfg->image_max_entries},
      .source = w->source,
      .read_uid = c->root ? 0 : c->cred.uid,
      .read_gid = c->root ? 0 : c->cred.gid,
      .progress = worker_progress,
      .progress_ctx = &out};
  cleanup_free char *id = NULL;
  cell_error *err = NULL;
  int rc = image_import(d->store, srcfd, &o, &id, &err);
  worker_result(outfd, rc == 0 ? id : NULL, err);
  _exit(rc == 0 ? 0 : 1);
}

/* ---- jobs in the loop --------------------------------------------------- */

static void job_free(struct image_job *j) {
  if (j->ctx_free)
    j->ctx_free(j->ctx);
  if (j->pidfd >= 0)
    close(j->pidfd);
  if (j->pipefd >= 0)
    close(j->pipefd);
  free(j->buf);
  free(j->what);
  free(j->name);
  free(j->tag);
  free(j);
}

static struct image_job *job_by_pipe(struct daemon *d, int fd, size_t *index) {
  for (size_t i = 0; i < d->n_jobs; i++)
    if (d->jobs[i]->pipefd == fd) {
      *index = i;
      return d->jobs[i];
    }
  return NULL;
}

/* What a killed worker left: its directory in tmp/ (named after its pid)
 * goes now; layers it had moved in go at the next collection. */
static void job_remove_leftovers(struct daemon *d, const struct image_job *j) {
  for (int tries = 0; tries < 100; tries++) {
    cleanup_free char *name = xasprintf("import-%d-%d", (int)j->pid, tries);
    cleanup_error cell_error *err = NULL;
    struct stat st;
    if (fstatat(d->store->tmpfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      break;
    /* Once more when it fails: what stays here stays until a restart. */
    if (cell_rm_rf_at(d->store->tmpfd, name, &err) < 0) {
      cell_error_free(&err);
      if (cell_rm_rf_at(d->store->tmpfd, name, &err) < 0)
        log_warn("image store: %s", err->msg);
    }
  }
}

static void gen_image(struct daemon *d, struct json_gen *g,
                      const struct image *img, uid_t caller, bool full);

/* {"ok":true,"image":...}: with its layers and config when full. */
static void reply_image(struct daemon *d, struct conn *c,
                        const struct image *img, bool full) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "image");
  gen_image(d, g, img, c->cred.uid, full);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

static void reply_imported(struct daemon *d, struct conn *c,
                           const struct image_job *j, const char *id) {
  cell_error *err = NULL;
  const struct image *img = image_store_load(d->store, id, &err);
  if (!img || image_store_tag(d->store, j->owner, j->name, j->tag, id, &err) < 0) {
    if (c)
      conn_fail(d, c, API_FAILED, &err);
    cell_error_free(&err);
    return;
  }
  /* A name it took from another image may have been that one's last. */
  daemon_collect_images(d);
  log_info("image %s imported by uid %u%s%s%s%s", id, (unsigned)j->owner,
           j->name ? " as " : "", j->name ? j->name : "", j->name ? ":" : "",
           j->name ? j->tag : "");
  if (!c)
    return;
  reply_image(d, c, img, false);
}

/* A line from the worker: progress for the client, or its result. */
static void job_line(struct daemon *d, struct image_job *j, const char *line,
                     size_t len) {
  struct conn *c = j->conn_id ? daemon_find_conn(d, j->conn_id) : NULL;
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(line, len, &v, &err) < 0 || v->type != JSON_OBJECT) {
    cell_error_free(&err);
    return;
  }
  if (json_object_get(v, "progress")) {
    if (c)
      conn_send(d, c, line);
    return;
  }
  j->done = true;
  if (j->on_result) {
    j->on_result(d, j, v);
    return;
  }
  const char *id = request_str(v, "id");
  const char *error = request_str(v, "error");
  if (id) {
    reply_imported(d, c, j, id);
  } else if (c) {
    conn_error(d, c, API_FAILED, error ? error : "import failed");
  }
}

static void job_end(struct daemon *d, size_t index) {
  struct image_job *j = d->jobs[index];
  if (!j->done) {
    struct conn *c = j->conn_id ? daemon_find_conn(d, j->conn_id) : NULL;
    if (c) {
      cleanup_free char *msg =
          xasprintf("%s failed: its process died", j->what);
      conn_error(d, c, API_FAILED, msg);
    }
  }
  daemon_unwatch(d, j->pipefd);
  job_remove_leftovers(d, j);
  if (j->on_end)
    j->on_end(d, j);
  struct conn *c = j->conn_id ? daemon_find_conn(d, j->conn_id) : NULL;
  if (c)
    c->import_pidfd = -1;
  d->jobs[index] = d->jobs[--d->n_jobs];
  job_free(j);
}

void image_job_on_readable(struct daemon *d, int fd) {
  size_t index;
  struct image_job *j = job_by_pipe(d, fd, &index);
  if (!j)
    return;
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0 || j->len + (size_t)n > MAX_JOB_LINE) {
    job_end(d, index);
    return;
  }
  j->buf = xrealloc(j->buf, j->len + (size_t)n + 1);
  memcpy(j->buf + j->len, buf, (size_t)n);
  j->len += (size_t)n;
  char *nl;
  while ((nl = memchr(j->buf, '\n', j->len))) {
    *nl = '\0';
    size_t len = (size_t)(nl - j->buf);
    job_line(d, j, j->buf, len);
    memmove(j->buf, nl + 1, j->len - len - 1);
    j->len -= len + 1;
  }
}

void daemon_image_stop_jobs(struct daemon *d) {
  while (d->n_jobs > 0) {
    struct image_job *j = d->jobs[0];
    sys_pidfd_send_signal(j->pidfd, SIGKILL);
    j->done = true;
    job_end(d, 0);
  }
  free(d->jobs);
  d->jobs = NULL;
}

/* ---- ops ---------------------------------------------------------------- */

static int parse_target_name(const struct json_value *v, char **name,
                             char **tag, cell_error **err) {
  const char *text = request_str(v, "as");
  if (!text)
    return 0;
  return image_ref_parse(text, name, tag, err);
}

bool daemon_image_jobs_full(const struct daemon *d) {
  size_t asked = 0;
  for (size_t i = 0; i < d->n_jobs; i++)
    asked += d->jobs[i]->conn_id != 0;
  return asked >= MAX_IMPORTS;
}

void daemon_image_add_job(struct daemon *d, struct conn *c,
                          struct image_job *j, pid_t pid, int pipefd) {
  j->conn_id = c ? c->id : 0;
  j->pid = pid;
  j->pipefd = pipefd;
  j->pidfd = cell_pidfd_open(pid);
  fcntl(j->pipefd, F_SETFL, O_NONBLOCK);
  daemon_watch(d, j->pipefd, TAG_IMAGE_JOB, EPOLLIN);
  if (c)
    c->import_pidfd = j->pidfd;
  d->jobs = xrealloc(d->jobs, (d->n_jobs + 1) * sizeof(*d->jobs));
  d->jobs[d->n_jobs++] = j;
}

void daemon_image_job_free(struct image_job *j) { job_free(j); }

void op_image_import(struct daemon *d, struct conn *c, struct instance *unused,
                     const struct json_value *v) {
  cell_error *err = NULL;
  if (c->n_fds != 1) {
    conn_error(d, c, API_INVALID_REQUEST,
               "image.import: send the source's fd with the request "
               "(SCM_RIGHTS): a directory, an archive or a pipe");
    return;
  }
  if (d->n_jobs >= MAX_IMPORTS) {
    conn_error(d, c, API_FAILED, "too many imports under way: try again when "
                                 "one has finished");
    return;
  }
  cleanup_free char *name = NULL, *tag = NULL;
  if (parse_target_name(v, &name, &tag, &err) < 0) {
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  const char *source = request_str(v, "source");
  struct import_work w = {.srcfd = c->fds[0],
                          .c = c,
                          .source = source ? source : "(an fd)"};
  int pipefd = -1;
  pid_t pid = image_child_spawn(run_worker, d, &w, &pipefd, &err);
  if (pid < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  struct image_job *j = image_job_new(c->cred.uid, "import", NULL, NULL);
  j->name = steal_pointer(&name);
  j->tag = steal_pointer(&tag);
  daemon_image_add_job(d, c, j, pid, pipefd);
}

static void gen_strv_kv(struct json_gen *g, const char *key, char *const *v) {
  json_gen_key(g, key);
  json_gen_array_open(g);
  for (size_t i = 0; v && v[i]; i++)
    json_gen_string(g, v[i]);
  json_gen_array_close(g);
}

/* The names of img that caller may see: its own, and root's; root sees
 * everyone's, a member's shown as "uid:N/NAME:TAG". */
static void gen_names(struct daemon *d, struct json_gen *g,
                      const struct image *img, uid_t caller) {
  json_gen_key(g, "names");
  json_gen_array_open(g);
  for (size_t i = 0; i < d->store->n_refs; i++) {
    const struct image_ref *r = &d->store->refs[i];
    if (strcmp(r->image, img->id) != 0 || r->name[0] == '\0' ||
        (caller != 0 && r->owner != caller && r->owner != 0))
      continue;
    cleanup_free char *shown =
        caller == 0 && r->owner != 0
            ? xasprintf("uid:%u/%s:%s", (unsigned)r->owner, r->name, r->tag)
            : xasprintf("%s:%s", r->name, r->tag);
    json_gen_string(g, shown);
  }
  json_gen_array_close(g);
}

static void gen_instances(struct daemon *d, struct json_gen *g,
                          const struct image *img, uid_t caller) {
  json_gen_key(g, "instances");
  json_gen_array_open(g);
  for (size_t i = 0; i < d->n_inst; i++) {
    const struct instance_record *r = d->inst[i]->rec;
    if (r->image && strcmp(r->image, img->id) == 0 &&
        (caller == 0 || r->owner == caller))
      json_gen_string(g, r->name);
  }
  json_gen_array_close(g);
}

static void gen_image(struct daemon *d, struct json_gen *g,
                      const struct image *img, uid_t caller, bool full) {
  json_gen_object_open(g);
  json_gen_kv_string(g, "id", img->id);
  gen_names(d, g, img, caller);
  json_gen_key(g, "size");
  json_gen_uint(g, img->size);
  json_gen_kv_int(g, "n_layers", (int64_t)cell_strv_len(img->layers));
  if (img->created)
    json_gen_kv_string(g, "created", img->created);
  if (img->imported)
    json_gen_kv_string(g, "imported", img->imported);
  if (img->architecture)
    json_gen_kv_string(g, "architecture", img->architecture);
  if (img->source)
    json_gen_kv_string(g, "source", img->source);
  gen_instances(d, g, img, caller);
  if (full) {
    gen_strv_kv(g, "layers", img->layers);
    json_gen_key(g, "config");
    json_gen_object_open(g);
    if (img->entrypoint)
      gen_strv_kv(g, "entrypoint", img->entrypoint);
    if (img->cmd)
      gen_strv_kv(g, "cmd", img->cmd);
    if (img->env)
      gen_strv_kv(g, "env", img->env);
    if (img->working_dir)
      json_gen_kv_string(g, "working_dir", img->working_dir);
    if (img->user)
      json_gen_kv_string(g, "user", img->user);
    json_gen_object_close(g);
  }
  json_gen_object_close(g);
}

void op_image_list(struct daemon *d, struct conn *c, struct instance *unused,
                   const struct json_value *v) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "images");
  json_gen_array_open(g);
  for (size_t i = 0; i < d->store->n_images; i++) {
    const struct image *img = d->store->images[i];
    if (image_store_visible(d->store, c->cred.uid, img->id))
      gen_image(d, g, img, c->cred.uid, false);
  }
  json_gen_array_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

static const struct image *lookup_image(struct daemon *d, struct conn *c,
                                        const struct json_value *v,
                                        cell_error **err) {
  const char *text = request_str(v, "image");
  if (!text) {
    cell_fail(err, 0, "field `image`: required");
    return NULL;
  }
  return image_store_resolve(d->store, c->cred.uid, text, err);
}

static void fail_lookup(struct daemon *d, struct conn *c, cell_error **err) {
  conn_fail(d, c, (*err)->errnum == ENOENT ? API_NOT_FOUND : API_INVALID_REQUEST,
            err);
}

void op_image_show(struct daemon *d, struct conn *c, struct instance *unused,
                   const struct json_value *v) {
  cell_error *err = NULL;
  const struct image *img = lookup_image(d, c, v, &err);
  if (!img) {
    fail_lookup(d, c, &err);
    return;
  }
  reply_image(d, c, img, true);
}

void op_image_tag(struct daemon *d, struct conn *c, struct instance *unused,
                  const struct json_value *v) {
  cell_error *err = NULL;
  const struct image *img = lookup_image(d, c, v, &err);
  if (!img) {
    fail_lookup(d, c, &err);
    return;
  }
  cleanup_free char *name = NULL, *tag = NULL;
  if (!request_str(v, "as")) {
    conn_error(d, c, API_INVALID_REQUEST, "field `as`: required, NAME[:TAG]");
    return;
  }
  if (parse_target_name(v, &name, &tag, &err) < 0) {
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  if (image_store_tag(d->store, c->cred.uid, name, tag, img->id, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  daemon_collect_images(d);
  op_image_show(d, c, NULL, v);
}

/* The instances using id, as a list for a message: those caller may see
 * by name, the others as a count. */
static char *instances_using(struct daemon *d, const char *id, uid_t caller,
                             size_t *count) {
  cleanup_free char *names = xstrdup("");
  size_t hidden = 0;
  *count = 0;
  for (size_t i = 0; i < d->n_inst; i++) {
    const struct instance_record *r = d->inst[i]->rec;
    if (!r->image || strcmp(r->image, id) != 0)
      continue;
    ++*count;
    if (caller != 0 && r->owner != caller) {
      hidden++;
      continue;
    }
    char *more = xasprintf("%s%s`%s`", names, names[0] ? ", " : "", r->name);
    free(names);
    names = more;
  }
  if (hidden)
    return xasprintf("%s%s%zu of other users", names, names[0] ? " and " : "",
                     hidden);
  return steal_pointer(&names);
}

/* Would dropping caller's ref(s) named by text leave the image without a
 * name while instances use it? */
static int check_removable(struct daemon *d, struct conn *c, const char *text,
                           const struct image *img, cell_error **err) {
  size_t mine = 0;
  for (size_t i = 0; i < d->store->n_refs; i++) {
    const struct image_ref *r = &d->store->refs[i];
    if (r->owner == c->cred.uid && strcmp(r->image, img->id) == 0)
      mine++;
  }
  bool by_id = strncmp(text, "sha256:", 7) == 0 ||
               strspn(text, "0123456789abcdef") == strlen(text);
  size_t dropped = by_id ? mine : (mine ? 1 : 0);
  if (dropped == 0)
    return cell_fail(err, 0, "image `%s`: no name of yours to remove", text);
  if (image_store_ref_count(d->store, img->id) > dropped)
    return 0;
  size_t n;
  cleanup_free char *users = instances_using(d, img->id, c->cred.uid, &n);
  if (n) {
    cell_fail(err, 0, "image `%s` is used by %s: destroy %s first", text,
              users, n == 1 ? "it" : "them");
    (*err)->errnum = EBUSY;
    return -1;
  }
  return 0;
}

void op_image_rm(struct daemon *d, struct conn *c, struct instance *unused,
                 const struct json_value *v) {
  cell_error *err = NULL;
  const struct image *img = lookup_image(d, c, v, &err);
  if (!img) {
    fail_lookup(d, c, &err);
    return;
  }
  const char *text = request_str(v, "image");
  if (check_removable(d, c, text, img, &err) < 0) {
    conn_fail(d, c, err->errnum == EBUSY ? API_WRONG_STATE : API_NOT_FOUND,
              &err);
    return;
  }
  cleanup_free char *id = NULL;
  if (image_store_untag(d->store, c->cred.uid, text, &id, &err) < 0) {
    conn_fail(d, c, API_NOT_FOUND, &err);
    return;
  }
  bool removed = image_store_ref_count(d->store, id) == 0;
  if (removed && image_store_remove(d->store, id, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  if (removed)
    daemon_collect_layers(d);
  log_info("image %s: %s removed by uid %u%s", id, text, (unsigned)c->cred.uid,
           removed ? " (and its content)" : "");
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_kv_string(g, "id", id);
  json_gen_kv_bool(g, "removed", removed);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

int daemon_image_for_instance(struct daemon *d, const struct conn *c,
                              const char *text, struct instance_record *r,
                              cell_error **err) {
  const struct image *img = image_store_resolve(d->store, c->cred.uid, text, err);
  if (!img)
    return -1;
  r->image = xstrdup(img->id);
  r->image_name = xstrdup(text);
  r->layers = cell_strv_dup(img->layers);
  r->env = cell_strv_dup(img->env);
  r->workdir = img->working_dir ? xstrdup(img->working_dir) : NULL;
  return 0;
}

const struct image *daemon_image_of(struct daemon *d,
                                    const struct instance_record *r) {
  return r->image ? image_store_find(d->store, r->image) : NULL;
}

void image_child_setup(const int *keep, size_t n) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  cell_close_fds_from(3, keep, n);
  cell_reset_signals();
  signal(SIGPIPE, SIG_IGN);
}

struct image_job *image_job_new(uid_t owner, const char *what, void *ctx,
                                void (*ctx_free)(void *)) {
  struct image_job *j = xcalloc(1, sizeof(*j));
  j->owner = owner;
  j->what = xstrdup(what);
  j->pidfd = j->pipefd = -1;
  j->ctx = ctx;
  j->ctx_free = ctx_free;
  return j;
}

bool image_child_ok(const struct json_value *v, const char **error) {
  const struct json_value *ok = json_object_get(v, "ok");
  *error = request_str(v, "error");
  return ok && ok->type == JSON_BOOL && ok->u.boolean;
}

void image_child_result(int fd, const cell_error *err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", err == NULL);
  if (err)
    json_gen_kv_string(g, "error", err->msg);
  json_gen_object_close(g);
  json_gen_write_line(g, fd);
}

pid_t image_child_spawn(void (*work)(struct daemon *d, void *arg, int outfd),
                   struct daemon *d, void *arg, int *pipefd, cell_error **err) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe");
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    work(d, arg, p[1]);
    _exit(1);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return cell_fail_errno(err, "fork");
  }
  *pipefd = p[0];
  return pid;
}
