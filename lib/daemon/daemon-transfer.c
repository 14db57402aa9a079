/* The export and import ops.  Both read or write a stream of gigabytes, so
 * each runs in a child process, as an image import does (daemon-image.c
 * watches it: its progress lines go to the client, a client that goes
 * kills it).  An import's child only extracts, into a directory of its own
 * under the store's tmp/; the loop then makes the instance of it (layers
 * moved into the store, the image's description, the record with an id
 * range and addresses of this host, the writable layer moved in), and
 * undoes all of it when a step fails. */
#include "daemon/daemon-transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-image.h"
#include "daemon/daemon-net.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/idrange.h"
#include "storage/image-store.h"
#include "storage/instance-archive.h"

/* ---- the child's lines -------------------------------------------------- */

static void child_progress(void *ctx,
                           const struct instance_archive_progress *p) {
  int fd = *(int *)ctx;
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_key(g, "progress");
  json_gen_object_open(g);
  json_gen_kv_string(g, "step", p->step);
  json_gen_kv_int(g, "part", p->part);
  json_gen_kv_int(g, "parts", p->parts);
  json_gen_key(g, "bytes");
  json_gen_uint(g, p->bytes);
  json_gen_object_close(g);
  json_gen_object_close(g);
  json_gen_write_line(g, fd);
}

static void child_result(int fd, const cell_error *err, uint64_t size) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", err == NULL);
  if (err)
    json_gen_kv_string(g, "error", err->msg);
  json_gen_key(g, "size");
  json_gen_uint(g, size);
  json_gen_object_close(g);
  json_gen_write_line(g, fd);
}

/* ---- export ------------------------------------------------------------- */

struct export_work {
  int clientfd, upperfd;
  char *record_json;
  const struct image *image;
};

static void run_export(struct daemon *d, void *arg, int outfd) {
  struct export_work *w = arg;
  const struct image_store *s = d->store;
  int keep[] = {w->clientfd, w->upperfd, outfd, s->layersfd, s->tmpfd};
  image_child_setup(keep, sizeof(keep) / sizeof(keep[0]));
  struct instance_export x = {
      .record_json = w->record_json, .image = w->image,
      .layersfd = s->layersfd, .upperfd = w->upperfd, .spoolfd = s->tmpfd,
      .progress = child_progress, .progress_ctx = &outfd};
  uint64_t size = 0;
  cell_error *err = NULL;
  int rc = instance_archive_write(&x, w->clientfd, &size, &err);
  child_result(outfd, err, size);
  _exit(rc == 0 ? 0 : 1);
}

/* The instance may start or go again: its disk is read. */
static void export_end(struct daemon *d, struct image_job *j) {
  struct instance *in = daemon_find_instance(d, j->ctx);
  if (in && in->exports > 0)
    in->exports--;
}

static void export_result(struct daemon *d, struct image_job *j,
                          const struct json_value *v) {
  /* Before the answer, so that the client's next request (a destroy once
   * the stream is safe elsewhere) finds the instance free. */
  export_end(d, j);
  j->on_end = NULL;
  struct conn *c = daemon_find_conn(d, j->conn_id);
  const struct json_value *ok = json_object_get(v, "ok");
  const char *name = j->ctx;
  if (!ok || ok->type != JSON_BOOL || !ok->u.boolean) {
    const char *error = request_str(v, "error");
    log_warn("instance %s: export failed: %s", name, error ? error : "?");
    if (c)
      conn_error(d, c, API_FAILED, error ? error : "export failed");
    return;
  }
  uint64_t size = 0;
  const struct json_value *sz = json_object_get(v, "size");
  if (sz)
    json_get_uint64(sz, &size);
  log_info("instance %s exported (%llu bytes)", name, (unsigned long long)size);
  if (!c)
    return;
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_kv_string(g, "name", name);
  json_gen_key(g, "size");
  json_gen_uint(g, size);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}


/* Only a stopped instance of an image, in container ids, can be read
 * whole: its disk does not change under the export. */
static int check_exportable(struct daemon *d, const struct instance *in,
                            enum api_code *code, cell_error **err) {
  const struct instance_record *r = in->rec;
  *code = API_WRONG_STATE;
  if (in->pidfd >= 0)
    return cell_fail(err, 0, "instance `%s` is running: stop it to export it",
                     r->name);
  *code = API_INVALID_REQUEST;
  if (!r->image)
    return cell_fail(err, 0, "instance `%s` is made of a template, not an "
                     "image: only an image's instance can be exported",
                     r->name);
  if (r->rootfs_mode && strcmp(r->rootfs_mode, "copy") == 0)
    return cell_fail(err, 0, "instance `%s`: its disk is in host ids (copy "
                     "mode) and cannot be exported", r->name);
  *code = API_FAILED;
  if (!daemon_image_of(d, r))
    return cell_fail(err, 0, "instance `%s`: its image %s is not in the "
                     "store", r->name, r->image);
  if (daemon_image_jobs_full(d))
    return cell_fail(err, 0, "too many imports and exports under way: try "
                     "again when one has finished");
  return 0;
}

static int open_upper(struct daemon *d, const char *name, cell_error **err) {
  cleanup_free char *dir = daemon_inst_dir(d, name);
  cleanup_free char *upper = xasprintf("%s/disk/upper", dir);
  int fd = open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", upper);
  return fd;
}

void op_export(struct daemon *d, struct conn *c, struct instance *in,
               const struct json_value *v) {
  cell_error *err = NULL;
  enum api_code code;
  if (c->n_fds != 1) {
    conn_error(d, c, API_INVALID_REQUEST, "export: send the fd to write the "
               "stream to with the request (SCM_RIGHTS)");
    return;
  }
  if (check_exportable(d, in, &code, &err) < 0) {
    conn_fail(d, c, code, &err);
    return;
  }
  cleanup_close int upperfd = open_upper(d, in->rec->name, &err);
  if (upperfd < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  cleanup_free char *record = instance_record_to_json(in->rec, false);
  /* Its own frozen layers (snapshots, clones) travel as layers of its
   * image: on the target it is an instance of that image, with no layers
   * of its own (its snapshots stay here). */
  cleanup_image struct image *with_own =
      image_with_layers_above(daemon_image_of(d, in->rec), in->rec->own_layers);
  struct export_work w = {c->fds[0], upperfd, record, with_own};
  int pipefd = -1;
  pid_t pid = image_child_spawn(run_export, d, &w, &pipefd, &err);
  if (pid < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  cleanup_free char *what = xasprintf("export of `%s`", in->rec->name);
  struct image_job *j =
      image_job_new(c->cred.uid, what, xstrdup(in->rec->name), free);
  j->on_result = export_result;
  j->on_end = export_end;
  in->exports++;
  daemon_image_add_job(d, c, j, pid, pipefd);
}

/* ---- import: the child -------------------------------------------------- */

/* The child's directory under tmp/: named as an image import's is, so that
 * daemon-image.c removes it when the job ends, whatever became of it. */
char *transfer_work_dir_name(pid_t pid) {
  return xasprintf("import-%d-0", (int)pid);
}

static int import_into_work_dir(struct daemon *d, int srcfd, int outfd,
                                cell_error **err) {
  cleanup_free char *name = transfer_work_dir_name(getpid());
  if (mkdirat(d->store->tmpfd, name, 0700) < 0)
    return cell_fail_errno(err, "mkdir tmp/%s", name);
  cleanup_close int workfd = openat(d->store->tmpfd, name,
                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                        O_CLOEXEC);
  if (workfd < 0)
    return cell_fail_errno(err, "open tmp/%s", name);
  struct instance_import_opts o = {
      .layersfd = d->store->layersfd,
      .lim = {d->cfg->image_max_size, d->cfg->image_max_entries},
      .progress = child_progress,
      .progress_ctx = &outfd};
  if (instance_archive_read(srcfd, workfd, &o, err) < 0)
    return -1;
  /* On disk before the loop's record names it, and synced here, in the
   * child, where a long write-back blocks no one: the loop then only
   * renames it into place. */
  if (syncfs(workfd) < 0)
    return cell_fail_errno(err, "sync the imported instance");
  return 0;
}

static void run_import(struct daemon *d, void *arg, int outfd) {
  int srcfd = *(int *)arg;
  const struct image_store *s = d->store;
  int keep[] = {srcfd, outfd, s->layersfd, s->tmpfd};
  image_child_setup(keep, sizeof(keep) / sizeof(keep[0]));
  cell_error *err = NULL;
  int rc = import_into_work_dir(d, srcfd, outfd, &err);
  child_result(outfd, err, 0);
  _exit(rc == 0 ? 0 : 1);
}

/* ---- import: the loop --------------------------------------------------- */

/* What an import has put in place so far, to be undone on failure. */
struct placed {
  char **layers;  /* store names of the layers moved into the store */
  char *image_id; /* the image's description, when it was new here */
  char *dir;      /* the instance's directory, made */
};

static void warn_undo(int rc, cell_error **err) {
  if (rc < 0)
    log_warn("import: undoing: %s", (*err)->msg);
  cell_error_free(err);
}

static void undo_placed(struct daemon *d, struct placed *p) {
  cell_error *err = NULL;
  if (p->dir)
    warn_undo(cell_rm_rf_at(d->instdirfd, p->dir, &err), &err);
  if (p->image_id)
    warn_undo(image_store_remove(d->store, p->image_id, &err), &err);
  for (size_t i = 0; p->layers && p->layers[i]; i++)
    warn_undo(layer_remove_tree(d->store->layersfd,
                                image_id_hex(p->layers[i]), &err),
              &err);
}

static void placed_free(struct placed *p) {
  cell_strv_free(p->layers);
  free(p->image_id);
  free(p->dir);
}

/* The layers the child extracted (those the store lacked) moved in. */
static int place_layers(struct daemon *d, int workfd,
                        const struct instance_import *im, struct placed *p,
                        cell_error **err) {
  for (size_t i = 0; im->layers[i]; i++) {
    const char *hex = image_id_hex(im->layers[i]);
    cleanup_free char *from = xasprintf("layers/%s", hex);
    struct stat st;
    if (fstatat(workfd, from, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (fstatat(d->store->layersfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0)
        continue; /* the store had it */
      return cell_fail(err, 0, "layer %s: neither in the stream nor in the "
                       "store", im->layers[i]);
    }
    if (renameat(workfd, from, d->store->layersfd, hex) < 0) {
      /* Another import brought it meanwhile: the same content, by name. */
      if (errno == EEXIST || errno == ENOTEMPTY)
        continue;
      return cell_fail_errno(err, "move layer %s into the store",
                             im->layers[i]);
    }
    cell_strv_push(&p->layers, im->layers[i]);
  }
  return 0;
}

/* The image's description, written when the store lacks it. */
static const struct image *place_image(struct daemon *d,
                                       struct instance_import *im,
                                       struct placed *p, cell_error **err) {
  const struct image *have = image_store_find(d->store, im->image->id);
  if (have)
    return have;
  if (image_store_write(d->store, im->image, err) < 0)
    return NULL;
  p->image_id = xstrdup(im->image->id);
  return image_store_load(d->store, im->image->id, err);
}

/* What the sender's record says that this host keeps as it is: checked
 * as create checks a request's (the stream is root's, but still a stream
 * from elsewhere). */
static int check_kept_fields(const struct instance_record *r,
                             cell_error **err) {
  if (!r->image || r->template_dir)
    return cell_fail(err, 0, "the record is not of an image's instance");
  if (!r->init || !r->init[0] || r->init[0][0] != '/')
    return cell_fail(err, 0, "the record's init is not an absolute path");
  const char *h = r->hostname;
  if (!h || !h[0] || strlen(h) > 64 ||
      strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                "0123456789-.") != strlen(h))
    return cell_fail(err, 0, "the record's hostname is not a host name");
  return 0;
}

/* The sender's record made one of this host: the new name, owner, id
 * range, cgroup and addresses; a new instance, never started here.  Its
 * hostname, limits, init and environment stay. */
static int remake_record(struct daemon *d, struct instance_record *r,
                         const char *name, uid_t owner, const struct image *img,
                         bool keep_ids, char ***warnings, cell_error **err) {
  if (check_kept_fields(r, err) < 0)
    return -1;
  free(r->name);
  r->name = xstrdup(name);
  r->owner = owner;
  free(r->image);
  r->image = xstrdup(img->id);
  /* Its own layers came as its image's (op_export); snapshots stay
   * behind with the sender. */
  instance_record_drop_layers(r);
  r->layers = cell_strv_dup(img->layers);
  free(r->state);
  r->state = xstrdup("created");
  r->exit_code = -1;
  free(r->exit_time);
  r->exit_time = NULL;
  r->restarts = 0;
  free(r->created);
  r->created = cell_rfc3339_now();
  free(r->rootfs_mode);
  r->rootfs_mode = xstrdup("idmap"); /* the disk holds container ids */
  free(r->cgroup);
  r->cgroup = xasprintf("%s/%s", d->cfg->cgroup_parent, name);
  if (keep_ids) /* criu's images hold them (the receive checked them) */
    return daemon_net_replan(d, r, warnings, err);
  r->id_count = d->cfg->pool.size;
  cleanup_free uint32_t *used = xcalloc(d->n_inst + 1, sizeof(*used));
  for (size_t i = 0; i < d->n_inst; i++)
    used[i] = d->inst[i]->rec->id_start;
  if (idrange_alloc(&d->cfg->pool, used, d->n_inst, &r->id_start, err) < 0)
    return -1;
  return daemon_net_replan(d, r, warnings, err);
}

/* instances/NAME/disk/upper: the writable layer the child extracted. */
static int place_instance_dir(struct daemon *d, int workfd, const char *name,
                              struct placed *p, cell_error **err) {
  if (mkdirat(d->instdirfd, name, 0711) < 0)
    return cell_fail_errno(err, "mkdir `%s/%s`", d->instances_dir, name);
  p->dir = xstrdup(name);
  cleanup_free char *disk = xasprintf("%s/disk", name);
  if (mkdirat(d->instdirfd, disk, 0755) < 0)
    return cell_fail_errno(err, "mkdir `%s/%s`", d->instances_dir, disk);
  cleanup_free char *upper = xasprintf("%s/upper", disk);
  if (renameat(workfd, "upper", d->instdirfd, upper) < 0)
    return cell_fail_errno(err, "move the disk into `%s/%s`",
                           d->instances_dir, upper);
  return 0;
}

static int check_new_name(struct daemon *d, const char *name,
                          enum api_code *code, cell_error **err) {
  *code = API_INVALID_REQUEST;
  if (instance_check_name(name, err) < 0)
    return -1;
  if (daemon_find_instance(d, name)) {
    *code = API_EXISTS;
    return cell_fail(err, 0, "instance `%s` already exists: import it under "
                     "another name (--name NEW)", name);
  }
  return 0;
}

struct import_job {
  char *as; /* the new name; NULL: the sender's */
};

static void import_job_free(void *ctx) {
  struct import_job *ij = ctx;
  free(ij->as);
  free(ij);
}

/* Everything but the record's saving; on failure p says what to undo. */
static struct instance_record *
make_instance(struct daemon *d, struct image_job *j, const char *as,
              bool keep_ids, struct placed *p, char ***warnings,
              enum api_code *code, cell_error **err) {
  *code = API_FAILED;
  cleanup_free char *work = transfer_work_dir_name(j->pid);
  cleanup_close int workfd = openat(d->store->tmpfd, work,
                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                        O_CLOEXEC);
  if (workfd < 0)
    return cell_fail_errno(err, "open tmp/%s", work), NULL;
  cleanup_instance_import struct instance_import *im = NULL;
  struct instance_record *r = NULL;
  if (instance_import_load(workfd, &im, err) < 0)
    return NULL;
  if (instance_record_from_json(im->record_json, strlen(im->record_json), &r,
                                err) < 0)
    return cell_error_wrap(err, "the stream's record"), NULL;
  /* A copy: remake_record frees the record's name. */
  cleanup_free char *name = xstrdup(as ? as : r->name);
  const struct image *img = NULL;
  if (check_new_name(d, name, code, err) < 0) {
    instance_record_free(r);
    return NULL;
  }
  /* What fails from here is the stream's or this host's: failed, as a
   * damaged stream is (check_new_name set its own code). */
  *code = API_FAILED;
  if (place_layers(d, workfd, im, p, err) < 0 ||
      !(img = place_image(d, im, p, err)) ||
      remake_record(d, r, name, j->owner, img, keep_ids, warnings, err) < 0 ||
      place_instance_dir(d, workfd, name, p, err) < 0) {
    instance_record_free(r);
    return NULL;
  }
  return r;
}

static void reply_imported(struct daemon *d, struct conn *c,
                           struct instance *in, char *const *warnings) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  cleanup_free char *rec = instance_record_to_json(in->rec, false);
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(rec, strlen(rec), &v, &err) == 0) {
    json_gen_key(g, "instance");
    json_gen_value(g, v);
  }
  cell_error_free(&err);
  json_gen_key(g, "warnings");
  json_gen_array_open(g);
  for (size_t i = 0; warnings && warnings[i]; i++)
    json_gen_string(g, warnings[i]);
  json_gen_array_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

struct instance *transfer_place_import(struct daemon *d, struct image_job *j,
                                       const char *as, bool keep_ids,
                                       char ***warnings, enum api_code *code,
                                       cell_error **err) {
  struct placed p = {0};
  struct instance_record *r =
      make_instance(d, j, as, keep_ids, &p, warnings, code, err);
  struct instance *in = r ? daemon_add_instance(d, r) : NULL;
  if (in && inst_save(d, in, err) < 0) {
    daemon_remove_instance(d, in);
    in = NULL;
  }
  if (!in)
    undo_placed(d, &p);
  placed_free(&p);
  return in;
}

static void finish_import(struct daemon *d, struct conn *c,
                          struct image_job *j) {
  cell_error *err = NULL;
  enum api_code code;
  cleanup_strv char **warnings = NULL;
  const struct import_job *ij = j->ctx;
  struct instance *in =
      transfer_place_import(d, j, ij->as, false, &warnings, &code, &err);
  if (!in) {
    log_warn("import failed: %s", err->msg);
    if (c)
      conn_fail(d, c, code, &err);
    cell_error_free(&err);
    return;
  }
  log_info("instance %s imported (ids %u..)", in->rec->name,
           (unsigned)in->rec->id_start);
  for (size_t i = 0; warnings && warnings[i]; i++)
    log_warn("instance %s: %s", in->rec->name, warnings[i]);
  daemon_emit(d, in, "created");
  if (c)
    reply_imported(d, c, in, warnings);
}

static void import_result(struct daemon *d, struct image_job *j,
                          const struct json_value *v) {
  struct conn *c = daemon_find_conn(d, j->conn_id);
  const struct json_value *ok = json_object_get(v, "ok");
  if (ok && ok->type == JSON_BOOL && ok->u.boolean) {
    finish_import(d, c, j);
    return;
  }
  const char *error = request_str(v, "error");
  log_warn("import failed: %s", error ? error : "?");
  if (c)
    conn_error(d, c, API_FAILED, error ? error : "import failed");
}

void op_import(struct daemon *d, struct conn *c, struct instance *unused,
               const struct json_value *v) {
  cell_error *err = NULL;
  enum api_code code;
  if (c->n_fds != 1) {
    conn_error(d, c, API_INVALID_REQUEST, "import: send the fd of the stream "
               "with the request (SCM_RIGHTS)");
    return;
  }
  if (daemon_image_jobs_full(d)) {
    conn_error(d, c, API_FAILED, "too many imports and exports under way: "
               "try again when one has finished");
    return;
  }
  /* The name is checked again at the end: this is to fail early. */
  const char *as = request_str(v, "as");
  if (as && check_new_name(d, as, &code, &err) < 0) {
    conn_fail(d, c, code, &err);
    return;
  }
  int srcfd = c->fds[0];
  int pipefd = -1;
  pid_t pid = image_child_spawn(run_import, d, &srcfd, &pipefd, &err);
  if (pid < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  struct import_job *ij = xcalloc(1, sizeof(*ij));
  ij->as = as ? xstrdup(as) : NULL;
  struct image_job *j =
      image_job_new(c->cred.uid, "import", ij, import_job_free);
  j->on_result = import_result;
  daemon_image_add_job(d, c, j, pid, pipefd);
}
