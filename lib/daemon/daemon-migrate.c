/* Live migration: see daemon-migrate.h.
 *
 * The stream between the two cellds is lines of JSON, each followed by
 * the raw bytes of a blob when it announces one:
 *   source: {"cell_migrate":2,"name":N,"id_start":I,"id_count":C,
 *            "networks":[...],"layers":[L...]}
 *   target: {"ok":true,"have":[L...]}  (the layers its store has)
 *           or, from cellctl receive, {"ok":false,"error":E}: the end
 * While the instance runs:
 *   source: {"blob":"layer","name":L,"sha256":H,"size":S} + S bytes, each
 *           layer the target lacks (its OCI tar)
 *           {"round":K} then {"blob":"image","round":K,"file":F,"size":S}
 *           + S bytes, each file of pre-copy round K (1, 2, ...: criu
 *           pre-dump, from round 2 on only the pages written since)
 * Frozen:
 *   source: {"blob":"archive","size":S} + S bytes (the export stream with
 *           its layers apart: the record, the image, the disk)
 *           {"blob":"image","file":F,"size":S} + S bytes, each file of the
 *           final dump (only the pages written since round P)
 *           {"done":true,"parent":P}  (0: no round, a whole dump)
 *   target: {"restored":true} once the instance is restored there, held
 *           frozen with its host ports down; or the error (cellctl
 *           receive writes it when its celld answers)
 * The hand-over, a commit:
 *   source: {"commit":true}: from here on it never runs on here again
 *   target: {"ok":true} once it runs there (thawed, reachable).
 * The target's copy stays held until the commit comes; the stream's end,
 * or HOLD_MAX_MS without a word, kills and destroys it instead.  A source
 * whose commit is not answered leaves its copy stopped, not destroyed,
 * and says how to check the target: one stopped copy rather than two
 * running.
 * The rounds are directories pre-K beside the final images, in the one
 * directory a rename moves (checkpoints/.tmp-migrate here, tmp/ then
 * checkpoints/migrate there); each holds criu's link "parent" to the
 * round before, which the target makes itself: the stream carries
 * regular files only.  criu freezes the instance for a moment in each
 * round; this celld freezes it for the final dump and thaws it on any
 * failure before the commit; it kills and destroys it only after the
 * target's ok.  The
 * target's work is in tmp/import-PID-0 (gone with the job whatever
 * happens) until the instance is made; a failed restore destroys it. */
#include "daemon/daemon-migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include "daemon/daemon-intent.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-net.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/daemon-runtime.h"
#include "daemon/daemon-transfer.h"
#include "storage/image-store.h"
#include "storage/instance-archive.h"

#define MIGRATE_FORMAT 3
#define MIGRATE_MAX_LINE 65536
/* The images' directory under the instance's checkpoints/, both sides. */
#define MIGRATE_SNAP "migrate"
/* Rounds of pre-copy at most: each costs criu's short freeze, and the
 * pages a program keeps writing come again in every round. */
#define MIGRATE_MAX_ROUNDS 3
/* Pages of a round under which another round gains nothing worth its
 * freeze: the final dump copies as few in no time. */
#define MIGRATE_ROUND_ENOUGH (256u << 10)
/* A round's directory, beside the final images. */
#define ROUND_DIR "pre-%u"
/* How long the target holds a restored instance frozen for the source's
 * commit, which follows its word at once: a source that says nothing for
 * this long has gone, and the target's copy goes. */
#define HOLD_MAX_MS 60000

/* ---- the stream --------------------------------------------------------- */

static int send_gen(int fd, struct json_gen *g, cell_error **err) {
  if (json_gen_write_line(g, fd) < 0)
    return cell_fail_errno(err, "migration stream: write");
  return 0;
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

/* The line that announces a blob of this kind, open for more fields. */
static struct json_gen *blob_line(const char *kind) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_string(g, "blob", kind);
  return g;
}

/* The line g (its size added) and fd's bytes; *size (may be NULL) gets
 * their count. */
static int send_blob(int sock, struct json_gen *g, int fd, uint64_t *size,
                     cell_error **err) {
  struct stat sb;
  if (fstat(fd, &sb) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
    json_gen_free(g);
    return cell_fail_errno(err, "migration: a blob to send");
  }
  json_gen_key(g, "size");
  json_gen_uint(g, (uint64_t)sb.st_size);
  json_gen_object_close(g);
  if (send_gen(sock, g, err) < 0)
    return -1;
  if (size)
    *size = (uint64_t)sb.st_size;
  return copy_bytes(fd, sock, (uint64_t)sb.st_size, err);
}

/* criu's images sent of one dump: its memory pages (pages-*.img), and
 * all its files. */
struct images_sent {
  uint64_t pages, bytes;
};

/* What a migration sent, for the user: the layers while it ran, each
 * pre-copy round, and the frozen part. */
struct migrate_stats {
  unsigned layers_sent, layers_had;
  uint64_t layers_bytes;
  struct images_sent rounds[MIGRATE_MAX_ROUNDS];
  unsigned n_rounds;
  char *precopy_error; /* why the rounds stopped short, when they did */
  struct images_sent frozen_images;
  uint64_t frozen_disk;
  int64_t frozen_ms;
};

static void images_gen(struct json_gen *g, const struct images_sent *s) {
  json_gen_object_open(g);
  json_gen_key(g, "pages_bytes");
  json_gen_uint(g, s->pages);
  json_gen_key(g, "bytes");
  json_gen_uint(g, s->bytes);
  json_gen_object_close(g);
}

static void stats_gen(struct json_gen *g, const struct migrate_stats *st) {
  json_gen_kv_int(g, "frozen_ms", st->frozen_ms);
  json_gen_kv_int(g, "layers_sent", st->layers_sent);
  json_gen_kv_int(g, "layers_had", st->layers_had);
  json_gen_key(g, "layers_bytes");
  json_gen_uint(g, st->layers_bytes);
  json_gen_key(g, "rounds");
  json_gen_array_open(g);
  for (unsigned i = 0; i < st->n_rounds; i++)
    images_gen(g, &st->rounds[i]);
  json_gen_array_close(g);
  if (st->precopy_error)
    json_gen_kv_string(g, "precopy_error", st->precopy_error);
  json_gen_key(g, "frozen_images");
  images_gen(g, &st->frozen_images);
  json_gen_key(g, "frozen_disk_bytes");
  json_gen_uint(g, st->frozen_disk);
}

/* The line a child ends with, for the loop (st: a source's, or NULL;
 * committed: the source sent the commit). */
static void child_result(int fd, const cell_error *err,
                         const struct migrate_stats *st, bool committed) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", err == NULL);
  if (err)
    json_gen_kv_string(g, "error", err->msg);
  if (committed)
    json_gen_kv_bool(g, "committed", true);
  if (st)
    stats_gen(g, st);
  json_gen_object_close(g);
  cell_error *ignored = NULL;
  send_gen(fd, g, &ignored);
  cell_error_free(&ignored);
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
  json_gen_key(g, "layers");
  json_gen_array_open(g);
  for (size_t i = 0; w->image->layers && w->image->layers[i]; i++)
    json_gen_string(g, w->image->layers[i]);
  json_gen_array_close(g);
  json_gen_object_close(g);
  return send_gen(w->sock, g, err);
}

static bool strv_has(char *const *v, const char *s) {
  for (size_t i = 0; v && v[i]; i++)
    if (strcmp(v[i], s) == 0)
      return true;
  return false;
}

/* The target's answer to the hello: the layers its store has. */
static int read_accept(int sock, char ***have, cell_error **err) {
  cleanup_json struct json_value *v = NULL;
  if (read_line(sock, &v, err) < 0)
    return cell_error_wrap(err, "the target");
  const char *error = NULL;
  if (!image_child_ok(v, &error))
    return cell_fail(err, 0, "the target: %s", error ? error : "refused");
  const struct json_value *h = json_object_get(v, "have");
  for (size_t i = 0; h && h->type == JSON_ARRAY && i < h->u.array.len; i++)
    if (h->u.array.items[i]->type == JSON_STRING)
      cell_strv_push(have, h->u.array.items[i]->u.string);
  return 0;
}

/* Each layer the target lacks, while the instance runs. */
static int send_layers(struct daemon *d, const struct send_work *w,
                       char *const *have, struct migrate_stats *st,
                       cell_error **err) {
  for (size_t i = 0; w->image->layers && w->image->layers[i]; i++) {
    const char *name = w->image->layers[i];
    if (strv_has(have, name)) {
      st->layers_had++;
      continue;
    }
    cleanup_close int fd = -1;
    uint64_t size = 0;
    char sha256[DIGEST_STR_LEN];
    if (instance_archive_spool_layer(d->store->layersfd, d->store->tmpfd, name,
                                     &fd, &size, sha256, err) < 0)
      return cell_error_wrap(err, "migration");
    struct json_gen *g = blob_line("layer");
    json_gen_kv_string(g, "name", name);
    json_gen_kv_string(g, "sha256", sha256);
    if (send_blob(w->sock, g, fd, &size, err) < 0)
      return -1;
    st->layers_sent++;
    st->layers_bytes += size;
  }
  return 0;
}

/* The export stream of the frozen instance, its layers apart, spooled
 * (its size goes first), then sent. */
static int send_archive(struct daemon *d, const struct send_work *w,
                        uint64_t *size, cell_error **err) {
  cleanup_close int fd =
      openat(d->store->tmpfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return cell_fail_errno(err, "migration: spool the storage");
  struct instance_export x = {.record_json = w->record_json,
                              .image = w->image,
                              .layersfd = d->store->layersfd,
                              .upperfd = w->upperfd,
                              .spoolfd = d->store->tmpfd,
                              .layers_apart = true};
  if (instance_archive_write(&x, fd, NULL, err) < 0)
    return -1;
  return send_blob(w->sock, blob_line("archive"), fd, size, err);
}

/* criu's files in dir: of round (1, 2, ...) or, 0, the final dump.  Its
 * logs stay here: the restore has no use for them. */
static int send_images(const struct send_work *w, const char *dir_path,
                       unsigned round, struct images_sent *sent,
                       cell_error **err) {
  int dfd = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
  if (!dir) {
    if (dfd >= 0)
      close(dfd);
    return cell_fail_errno(err, "open `%s`", dir_path);
  }
  int rc = 0;
  for (struct dirent *e; rc == 0 && (e = readdir(dir));) {
    size_t len = strlen(e->d_name);
    if (e->d_type != DT_REG ||
        (len > 4 && strcmp(e->d_name + len - 4, ".log") == 0))
      continue;
    cleanup_close int fd =
        openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      rc = cell_fail_errno(err, "open `%s/%s`", dir_path, e->d_name);
      break;
    }
    struct json_gen *g = blob_line("image");
    json_gen_kv_string(g, "file", e->d_name);
    if (round)
      json_gen_kv_int(g, "round", round);
    uint64_t size = 0;
    rc = send_blob(w->sock, g, fd, &size, err);
    sent->bytes += size;
    if (strncmp(e->d_name, "pages-", 6) == 0)
      sent->pages += size;
  }
  closedir(dir);
  return rc;
}

static int send_round_start(int sock, unsigned round, cell_error **err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_int(g, "round", round);
  json_gen_object_close(g);
  return send_gen(sock, g, err);
}

/* Rounds of pre-copy while the instance runs, each sent as it is made,
 * until one's pages are few, or no fewer by a quarter than the round
 * before's, or MIGRATE_MAX_ROUNDS; *last is the round the final dump
 * builds on (0: none).  A round criu fails ends them, and the final dump
 * is then whole: a failed pre-dump may have reset the kernel's tracking
 * of written pages without saving them. */
static int precopy(const struct send_work *w, struct migrate_stats *st,
                   unsigned *last, cell_error **err) {
  *last = 0;
  for (unsigned k = 1; k <= MIGRATE_MAX_ROUNDS; k++) {
    cleanup_free char *dir = xasprintf("%s/" ROUND_DIR, w->images, k);
    cleanup_free char *parent =
        k > 1 ? xasprintf("../" ROUND_DIR, k - 1) : NULL;
    cell_error *failed = NULL;
    if (checkpoint_pre_dump(w->runroot, w->inst_dir, dir, parent, w->cgroup,
                            w->pid, &failed) < 0) {
      st->precopy_error = xasprintf("round %u: %s", k, failed->msg);
      cell_error_free(&failed);
      *last = 0;
      return 0;
    }
    struct images_sent *sent = &st->rounds[st->n_rounds++];
    if (send_round_start(w->sock, k, err) < 0 ||
        send_images(w, dir, k, sent, err) < 0)
      return -1;
    *last = k;
    if (sent->pages < MIGRATE_ROUND_ENOUGH ||
        (k > 1 && sent->pages * 4 > st->rounds[k - 2].pages * 3))
      break;
  }
  return 0;
}

static int send_done(int sock, unsigned parent, cell_error **err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "done", true);
  json_gen_kv_int(g, "parent", parent);
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

/* While it runs: the layers the target lacks, then the pre-copy rounds
 * (*last: the one the final dump builds on). */
static int send_running(struct daemon *d, const struct send_work *w,
                        struct migrate_stats *st, unsigned *last,
                        cell_error **err) {
  cleanup_strv char **have = NULL;
  if (send_hello(w, err) < 0 || read_accept(w->sock, &have, err) < 0)
    return -1;
  if (send_layers(d, w, have, st, err) < 0 ||
      checkpoint_images_new(w->inst_dir, w->images, err) < 0 ||
      precopy(w, st, last, err) < 0) {
    prefer_target_reason(w->sock, err);
    return -1;
  }
  return 0;
}

/* Frozen: the final dump (on round last), the disk and the dump sent. */
static int send_frozen(struct daemon *d, const struct send_work *w,
                       unsigned last, struct migrate_stats *st,
                       uint64_t *frozen_at, cell_error **err) {
  cleanup_free char *parent = last ? xasprintf(ROUND_DIR, last) : NULL;
  /* Until it runs on the target, or on here again (resume_here), nothing
   * reaches it: its kernel would acknowledge TCP data that the target
   * never gets. */
  struct instance *in = daemon_find_instance(d, w->name);
  if (in)
    daemon_net_ports_set_up(in->rec, false);
  if (checkpoint_dump_frozen(w->runroot, w->inst_dir, w->images, parent,
                             w->cgroup, w->pid, frozen_at, err) < 0)
    return -1;
  if (send_archive(d, w, &st->frozen_disk, err) < 0 ||
      send_images(w, w->images, 0, &st->frozen_images, err) < 0 ||
      send_done(w->sock, last, err) < 0) {
    prefer_target_reason(w->sock, err);
    return -1;
  }
  return 0;
}

/* The target's word once it has restored the instance, frozen:
 * {"restored":true}, or why it could not (cellctl receive's). */
static int read_restored(int sock, cell_error **err) {
  cleanup_json struct json_value *v = NULL;
  if (read_line(sock, &v, err) < 0)
    return cell_error_wrap(err, "the target");
  const struct json_value *r = json_object_get(v, "restored");
  if (r && r->type == JSON_BOOL && r->u.boolean)
    return 0;
  const char *e = request_str(v, "error");
  return cell_fail(err, 0, "the target: %s", e ? e : "refused");
}

static int send_flag(int sock, const char *key, cell_error **err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, key, true);
  json_gen_object_close(g);
  return send_gen(sock, g, err);
}

/* The hand-over: the loop is told first (a child that dies after this
 * leaves the instance stopped here, never running again beside the
 * target's), then the target, which thaws its copy and answers. */
static int commit(int sock, int outfd, cell_error **err) {
  cell_error *ignored = NULL;
  if (send_flag(outfd, "committing", &ignored) < 0) {
    cell_error_free(&ignored);
    return cell_fail(err, 0, "migration: the loop cannot be told of the "
                     "commit");
  }
  if (send_flag(sock, "commit", err) < 0)
    return -1;
  return read_answer(sock, "the target's answer to the commit", err);
}

/* A write the target's end refused (EPIPE): it went because it failed,
 * and cellctl receive wrote why on the stream before it closed.  That
 * line, if it comes within a moment, says more than the broken pipe. */
static void take_target_reason(int sock, cell_error **err) {
  if (*err == NULL || (*err)->errnum != EPIPE)
    return;
  struct pollfd p = {.fd = sock, .events = POLLIN};
  if (poll(&p, 1, 2000) != 1)
    return;
  cleanup_json struct json_value *v = NULL;
  cleanup_error cell_error *ignored = NULL;
  const char *error = NULL;
  if (read_line(sock, &v, &ignored) < 0 || image_child_ok(v, &error) || !error)
    return;
  cell_error_free(err);
  cell_fail(err, 0, "the target: %s", error);
}

static void run_send(struct daemon *d, void *arg, int outfd) {
  struct send_work *w = arg;
  int keep[] = {w->sock, w->upperfd, outfd, d->store->layersfd,
                d->store->tmpfd};
  image_child_setup(keep, sizeof(keep) / sizeof(keep[0]));
  cell_error *err = NULL;
  cleanup_free char *criu = NULL;
  struct migrate_stats st = {0};
  uint64_t frozen_at = 0;
  unsigned last = 0;
  /* Nothing touched on either side before both agree. */
  int rc = checkpoint_usable_criu(w->runroot, "migrate", &criu, &err);
  if (w->check_only) {
    child_result(outfd, err, NULL, false);
    _exit(rc == 0 ? 0 : 1);
  }
  if (rc == 0)
    rc = send_running(d, w, &st, &last, &err);
  if (rc == 0)
    rc = send_frozen(d, w, last, &st, &frozen_at, &err);
  if (rc == 0)
    rc = read_restored(w->sock, &err);
  take_target_reason(w->sock, &err);
  bool committed = rc == 0;
  if (committed)
    rc = commit(w->sock, outfd, &err);
  /* Until the target's answer: its thaw is inside. */
  if (frozen_at)
    st.frozen_ms = (int64_t)(daemon_now_ms() - frozen_at);
  child_result(outfd, err, &st, committed);
  _exit(rc == 0 ? 0 : 1);
}

/* ---- the source: the loop ----------------------------------------------- */

struct send_job {
  struct send_work *w;
  bool done;       /* its result came: the instance is killed or thawed */
  bool committing; /* the commit may have reached the target */
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

/* Killed while still frozen (it dies at the thaw, without running a
 * step), then destroyed as destroy -f does, or only stopped. */
static void kill_frozen(struct instance *in, bool destroy) {
  in->after = destroy ? AFTER_DESTROY : AFTER_NOTHING;
  in->stopping = true;
  daemon_pidfd_signal(in->pidfd, SIGKILL);
  thaw(in);
}

/* The commit went, its answer did not come: it may run on the target.
 * One copy stopped is better than two running: it stays here, stopped,
 * for the user to start or destroy once the target is seen to. */
static void stop_after_commit(struct daemon *d, struct conn *c,
                              struct instance *in, const char *name,
                              const char *error) {
  log_warn("%s: migration committed but not answered (%s): stopped here",
           name, error ? error : "its process died");
  if (in && in->pidfd >= 0)
    kill_frozen(in, false);
  cleanup_free char *msg = xasprintf(
      "migrate `%s`: the commit went to the target but its answer did not "
      "come (%s): it may run there, see `cellctl list` on the target; here "
      "it is stopped, not destroyed: `cellctl destroy %s` once it runs "
      "there, `cellctl start %s` if it does not",
      name, error ? error : "its process died", name, name);
  if (c)
    conn_error(d, c, API_FAILED, msg);
}

/* result: the child's line, whose figures the client is told; NULL for
 * a check. */
static char *migrated_answer(const char *name,
                             const struct json_value *result) {
  static const char *const figures[] = {
      "layers_sent", "layers_had", "layers_bytes", "rounds", "precopy_error",
      "frozen_images", "frozen_disk_bytes", NULL};
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_kv_string(g, "name", name);
  const struct json_value *f = result ? json_object_get(result, "frozen_ms") : NULL;
  json_gen_key(g, "frozen_ms");
  if (f)
    json_gen_value(g, f);
  else
    json_gen_int(g, 0);
  for (size_t i = 0; result && figures[i]; i++) {
    const struct json_value *v = json_object_get(result, figures[i]);
    if (!v)
      continue;
    json_gen_key(g, figures[i]);
    json_gen_value(g, v);
  }
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}

static void reply_migrated(struct daemon *d, struct conn *c, const char *name,
                           const struct json_value *result) {
  cleanup_free char *out = migrated_answer(name, result);
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
  if (json_object_get(v, "committing")) {
    sj->committing = true;
    return; /* its result comes next */
  }
  sj->done = true;
  if (in && !sj->w->check_only)
    in->hold = HOLD_NONE;
  if (sj->w->check_only) {
    if (!c)
      return;
    if (image_child_ok(v, &error))
      reply_migrated(d, c, sj->w->name, NULL);
    else
      conn_error(d, c, API_FAILED, error ? error : "migration refused");
    return;
  }
  if (!image_child_ok(v, &error) && json_object_get(v, "committed")) {
    stop_after_commit(d, c, in, sj->w->name, error);
    return;
  }
  if (!image_child_ok(v, &error)) {
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
  const char *precopy_error = request_str(v, "precopy_error");
  if (precopy_error)
    log_warn("%s: pre-copy stopped at %s", sj->w->name, precopy_error);
  log_info("%s: migrated (frozen %lld ms); removed here", sj->w->name,
           (long long)frozen_ms);
  /* The client hears once the copy here is gone: a script that goes on
   * finds the name free (a migration back, a create). */
  if (in && in->pidfd >= 0) {
    kill_frozen(in, true);
    if (c) {
      c->answer_at_destroy = migrated_answer(sj->w->name, v);
      inst_add_waiter(in, c->id);
    }
    return;
  }
  if (in)
    inst_finish_destroy(d, in);
  if (c)
    reply_migrated(d, c, sj->w->name, v);
}

static void send_end(struct daemon *d, struct image_job *j) {
  struct send_job *sj = j->ctx;
  struct instance *in = daemon_find_instance(d, sj->w->name);
  cleanup_error cell_error *err = NULL;
  if (sj->w->check_only)
    return;
  if (cell_rm_rf_at(AT_FDCWD, sj->w->images, &err) < 0)
    log_warn("%s", err->msg);
  if (sj->done)
    return;
  if (in)
    in->hold = HOLD_NONE;
  /* The child died without a word (the job answered nobody: its
   * "committing" was a line): it runs on here, unless the commit went. */
  if (sj->committing) {
    stop_after_commit(d, daemon_find_conn(d, j->conn_id), in, sj->w->name,
                      NULL);
    return;
  }
  if (in && in->pidfd >= 0)
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
  if (in->exports > 0)
    return cell_fail(err, 0, "instance `%s` is being exported: try again "
                     "when that is done", r->name);
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
  if (!check_only)
    in->hold = HOLD_MIGRATE_OUT;
  cleanup_free char *what = xasprintf("migration of `%s`", in->rec->name);
  struct image_job *j = image_job_new(c->cred.uid, what, sj, send_job_free);
  j->on_result = send_result;
  j->on_end = send_end;
  daemon_image_add_job(d, c, j, pid, pipefd);
}

/* ---- the target: the child ---------------------------------------------- */

struct recv_work {
  int in, out;
};

/* What the target has received so far, in its work directory. */
struct recv_state {
  char *name; /* the instance's, from the hello */
  int workfd, imagesfd;
  char **layers;   /* the instance's, from the hello */
  unsigned rounds; /* of pre-copy, each in images/pre-K */
  int roundfd;     /* the last one's */
  bool have_archive;
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
  const struct json_value *layers = json_object_get(v, "layers");
  if (!layers || layers->type != JSON_ARRAY ||
      layers->u.array.len > INSTANCE_ARCHIVE_MAX_LAYERS)
    return cell_fail(err, 0, "not a migration of this version of celld");
  for (size_t i = 0; i < layers->u.array.len; i++) {
    const struct json_value *e = layers->u.array.items[i];
    if (e->type != JSON_STRING || !digest_is_valid(e->u.string))
      return cell_fail(err, 0, "migration stream: a layer that is not "
                       "sha256:<hex>");
  }
  const struct json_value *nets = json_object_get(v, "networks");
  for (size_t i = 0; nets && nets->type == JSON_ARRAY && i < nets->u.array.len;
       i++) {
    const struct json_value *e = nets->u.array.items[i];
    if (e->type != JSON_STRING || !daemon_config_network(d->cfg, e->u.string))
      return cell_fail(err, 0, "the target has no network `%s`: add it to "
                       "its celld.conf first",
                       e->type == JSON_STRING ? e->u.string : "?");
  }
  /* criu's images hold the instance's ids: it keeps them here, where
   * they must be this celld's to give and no other instance's. */
  const struct idrange_pool *pool = &d->cfg->pool;
  if ((uint64_t)id_start < pool->start ||
      (uint64_t)id_start + (uint64_t)id_count >
          (uint64_t)pool->start + pool->count)
    return cell_fail(err, 0, "the migrated instance's ids %lld..%lld are "
                     "outside the target's pool %u..%llu: give the target's "
                     "celld.conf a pool_start and pool_count that cover them "
                     "(an instance keeps its ids when it migrates)",
                     (long long)id_start, (long long)(id_start + id_count - 1),
                     pool->start,
                     (unsigned long long)pool->start + pool->count - 1);
  for (size_t i = 0; i < d->n_inst; i++)
    if (ranges_overlap((uint32_t)id_start, (uint32_t)id_count,
                       d->inst[i]->rec->id_start, d->inst[i]->rec->id_count))
      return cell_fail(err, 0, "the target's instance `%s` has ids of the "
                       "range %lld..%lld, the migrated instance's: migrate "
                       "or destroy it first, or migrate to another host",
                       d->inst[i]->rec->name, (long long)id_start,
                       (long long)(id_start + id_count - 1));
  cleanup_free char *criu = NULL;
  return checkpoint_usable_criu(d->runroot, "migrate", &criu, err);
}

/* Yes to the hello, with the layers of the instance this store has: the
 * source sends the others. */
static int send_accept(struct daemon *d, int out, char *const *layers,
                       cell_error **err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "have");
  json_gen_array_open(g);
  for (size_t i = 0; layers && layers[i]; i++) {
    struct stat st;
    if (fstatat(d->store->layersfd, image_id_hex(layers[i]), &st,
                AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      json_gen_string(g, layers[i]);
  }
  json_gen_array_close(g);
  json_gen_object_close(g);
  return send_gen(out, g, err);
}

/* A refusal is not answered here: cellctl receive writes it on the
 * stream once its celld tells it, the one word the source reads. */
static int recv_hello(struct daemon *d, const struct recv_work *w,
                      struct recv_state *rs, cell_error **err) {
  cleanup_json struct json_value *v = NULL;
  if (read_line(w->in, &v, err) < 0 || check_hello(d, v, err) < 0)
    return -1;
  const struct json_value *layers = json_object_get(v, "layers");
  for (size_t i = 0; i < layers->u.array.len; i++)
    cell_strv_push(&rs->layers, layers->u.array.items[i]->u.string);
  rs->name = xstrdup(request_str(v, "name"));
  return send_accept(d, w->out, rs->layers, err);
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

/* The stream up to the end of a blob, for the layer's extraction. */
struct blob_reader {
  int fd;
  uint64_t left;
  bool cut; /* the stream ended in the blob */
};

static ssize_t read_blob(void *ctx, void *buf, size_t len) {
  struct blob_reader *b = ctx;
  if (len > b->left)
    len = (size_t)b->left;
  if (len == 0)
    return 0;
  ssize_t r;
  do
    r = read(b->fd, buf, len);
  while (r < 0 && errno == EINTR);
  if (r == 0) {
    b->cut = true;
    errno = EIO;
    return -1;
  }
  if (r > 0)
    b->left -= (uint64_t)r;
  return r;
}

/* A layer the target lacks (the hello named it), sent while the instance
 * runs, into the work directory's layers/. */
static int recv_layer(struct daemon *d, const struct recv_work *w,
                      const struct recv_state *rs, const struct json_value *v,
                      uint64_t size, cell_error **err) {
  const char *name = request_str(v, "name");
  if (rs->have_archive || !name || !strv_has(rs->layers, name))
    return cell_fail(err, 0, "migration stream: a layer `%s` not announced, "
                     "or late", name ? name : "");
  struct blob_reader b = {.fd = w->in, .left = size};
  struct instance_import_opts o = {
      .layersfd = d->store->layersfd,
      .lim = {d->cfg->image_max_size, d->cfg->image_max_entries}};
  if (instance_archive_read_layer(read_blob, &b, name, request_str(v, "sha256"),
                                  rs->workfd, &o, err) < 0) {
    if (!b.cut)
      return -1;
    cell_error_free(err);
    return cell_fail(err, 0, "migration stream: ended in a blob");
  }
  return 0;
}

/* Pre-copy round k's directory, with criu's link to the round before,
 * made here: only the next round, before the frozen part.  What came
 * before it (the layers, the rounds before) is synced first, while the
 * instance still runs: the sync at the end of the stream, inside the
 * freeze, then writes back little more than the frozen part. */
static int recv_round(struct recv_state *rs, const struct json_value *v,
                      cell_error **err) {
  int64_t k = 0;
  const struct json_value *r = json_object_get(v, "round");
  if (!json_get_int64(r, &k) || k != (int64_t)rs->rounds + 1 ||
      k > MIGRATE_MAX_ROUNDS || rs->have_archive)
    return cell_fail(err, 0, "migration stream: a pre-copy round out of "
                     "order");
  if (syncfs(rs->workfd) < 0)
    return cell_fail_errno(err, "sync what the migration received");
  char dir[32], parent[32];
  snprintf(dir, sizeof(dir), ROUND_DIR, (unsigned)k);
  snprintf(parent, sizeof(parent), "../" ROUND_DIR, (unsigned)k - 1);
  if (mkdirat(rs->imagesfd, dir, 0700) < 0)
    return cell_fail_errno(err, "mkdir images/%s", dir);
  int fd = openat(rs->imagesfd, dir,
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open images/%s", dir);
  if (rs->roundfd >= 0)
    close(rs->roundfd);
  rs->roundfd = fd;
  rs->rounds = (unsigned)k;
  if (k > 1 && symlinkat(parent, fd, "parent") < 0)
    return cell_fail_errno(err, "link images/%s/parent", dir);
  return 0;
}

/* The final images build on round parent (0: none): criu's link to it. */
static int recv_done(struct recv_state *rs, const struct json_value *v,
                     cell_error **err) {
  int64_t parent = 0;
  const struct json_value *p = json_object_get(v, "parent");
  if (p && (!json_get_int64(p, &parent) || parent < 0 ||
            parent > (int64_t)rs->rounds))
    return cell_fail(err, 0, "migration stream: the final dump builds on a "
                     "round that did not come");
  if (!rs->have_archive)
    return cell_fail(err, 0, "migration stream: no storage came");
  if (parent == 0)
    return 0;
  char dir[32];
  snprintf(dir, sizeof(dir), ROUND_DIR, (unsigned)parent);
  if (symlinkat(dir, rs->imagesfd, "parent") < 0)
    return cell_fail_errno(err, "link images/parent");
  return 0;
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

/* One blob: a layer, the archive, or an image file of a round (the one
 * under way, before the archive) or of the final dump. */
static int recv_blob(struct daemon *d, const struct recv_work *w,
                     struct recv_state *rs, const struct json_value *v,
                     cell_error **err) {
  const char *kind = request_str(v, "blob");
  const struct json_value *sz = json_object_get(v, "size");
  uint64_t size = 0;
  if (!kind || !sz || !json_get_uint64(sz, &size))
    return cell_fail(err, 0, "migration stream: not a blob");
  if (strcmp(kind, "layer") == 0)
    return recv_layer(d, w, rs, v, size, err);
  if (strcmp(kind, "archive") == 0 && !rs->have_archive) {
    rs->have_archive = true;
    return recv_archive(d, w, rs->workfd, size, err);
  }
  if (strcmp(kind, "image") != 0)
    return cell_fail(err, 0, "migration stream: an unexpected `%s`", kind);
  const struct json_value *r = json_object_get(v, "round");
  int64_t round = 0;
  if (r && (!json_get_int64(r, &round) || round != (int64_t)rs->rounds ||
            round == 0 || rs->have_archive))
    return cell_fail(err, 0, "migration stream: an image of a round not "
                     "under way");
  return recv_image(w, r ? rs->roundfd : rs->imagesfd,
                    request_str(v, "file"), size, err);
}

/* The lines and blobs until {"done":...}: layers and the archive
 * extracted into workfd, criu's images into its images/ (the rounds'
 * in images/pre-K). */
static int recv_blobs(struct daemon *d, const struct recv_work *w,
                      struct recv_state *rs, cell_error **err) {
  if (mkdirat(rs->workfd, "images", 0700) < 0)
    return cell_fail_errno(err, "mkdir images");
  rs->imagesfd = openat(rs->workfd, "images", O_RDONLY | O_DIRECTORY |
                                                  O_NOFOLLOW | O_CLOEXEC);
  if (rs->imagesfd < 0)
    return cell_fail_errno(err, "open images");
  for (;;) {
    cleanup_json struct json_value *v = NULL;
    if (read_line(w->in, &v, err) < 0)
      return -1;
    if (json_object_get(v, "done"))
      return recv_done(rs, v, err);
    int rc = json_object_get(v, "blob") ? recv_blob(d, w, rs, v, err)
                                        : recv_round(rs, v, err);
    if (rc < 0)
      return -1;
  }
}

static void run_receive(struct daemon *d, void *arg, int outfd) {
  struct recv_work *w = arg;
  int keep[] = {w->in, w->out, outfd, d->store->layersfd, d->store->tmpfd};
  image_child_setup(keep, sizeof(keep) / sizeof(keep[0]));
  cell_error *err = NULL;
  struct recv_state rs = {.workfd = -1, .imagesfd = -1, .roundfd = -1};
  int rc = recv_hello(d, w, &rs, &err);
  cleanup_free char *work = transfer_work_dir_name(getpid());
  if (rc == 0 && mkdirat(d->store->tmpfd, work, 0700) < 0)
    rc = cell_fail_errno(&err, "mkdir tmp/%s", work);
  if (rc == 0)
    rs.workfd = openat(d->store->tmpfd, work,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rc == 0 && rs.workfd < 0)
    rc = cell_fail_errno(&err, "open tmp/%s", work);
  if (rc == 0)
    rc = recv_blobs(d, w, &rs, &err);
  /* The disk, layers and images on disk before the loop's record names
   * them and before the commit: once the source hears the target's ok it
   * destroys its copy, and a crash of this host must not lose the only
   * one left.  Inside the freeze (recv_round synced what came before). */
  if (rc == 0 && syncfs(rs.workfd) < 0)
    rc = cell_fail_errno(&err, "sync what the migration received");
  /* The name the hello announced, for the loop's intent. */
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", rc == 0);
  if (err)
    json_gen_kv_string(g, "error", err->msg);
  else
    json_gen_kv_string(g, "name", rs.name);
  json_gen_object_close(g);
  cell_error *ignored = NULL;
  send_gen(outfd, g, &ignored);
  _exit(rc == 0 ? 0 : 1);
}

/* ---- the target: the hand-over ------------------------------------------ */

/* The stream, kept by the loop from the receive to the commit: the
 * request's fds go with the request. */
struct handover {
  int in, out;
  char *name; /* the instance, once restored */
  bool decided;
};

static void handover_free(void *p) {
  struct handover *h = p;
  if (!h)
    return; /* passed on to the restore */
  if (h->in >= 0)
    close(h->in);
  if (h->out >= 0)
    close(h->out);
  free(h->name);
  free(h);
}

static struct handover *handover_new(const struct conn *c, cell_error **err) {
  struct handover *h = xcalloc(1, sizeof(*h));
  h->in = fcntl(c->fds[0], F_DUPFD_CLOEXEC, 3);
  h->out = fcntl(c->fds[c->n_fds - 1], F_DUPFD_CLOEXEC, 3);
  if (h->in < 0 || h->out < 0) {
    cell_fail_errno(err, "receive: keep the stream");
    handover_free(h);
    return NULL;
  }
  return h;
}

/* The child: the target's word that its copy is restored (frozen), then
 * the source's commit, or the stream's end, or nothing for HOLD_MAX_MS. */
static void run_await_commit(struct daemon *d, void *arg, int outfd) {
  struct handover *h = arg;
  int keep[] = {h->in, h->out, outfd};
  image_child_setup(keep, sizeof(keep) / sizeof(keep[0]));
  cell_error *err = NULL;
  cleanup_json struct json_value *v = NULL;
  struct pollfd p = {.fd = h->in, .events = POLLIN};
  int rc = send_flag(h->out, "restored", &err);
  if (rc == 0 && poll(&p, 1, HOLD_MAX_MS) == 0)
    rc = cell_fail(&err, 0, "the source sent no commit in %d s",
                   HOLD_MAX_MS / 1000);
  if (rc == 0)
    rc = read_line(h->in, &v, &err);
  const struct json_value *cm = v ? json_object_get(v, "commit") : NULL;
  if (rc == 0 && !(cm && cm->type == JSON_BOOL && cm->u.boolean))
    rc = cell_fail(&err, 0, "migration stream: not the source's commit");
  child_result(outfd, err, NULL, false);
  _exit(rc == 0 ? 0 : 1);
}

/* The source did not commit: the restored copy, frozen, is killed and
 * destroyed with what came with it (its record, disk, cgroup, veths). */
static void drop_held(struct daemon *d, struct conn *c, struct instance *in,
                      const char *name, const char *why) {
  log_warn("%s: the source did not commit its migration (%s): removed here",
           name, why);
  if (in) {
    in->hold = HOLD_NONE;
    if (in->pidfd >= 0)
      kill_frozen(in, true);
    else
      inst_finish_destroy(d, in);
  }
  cleanup_free char *msg = xasprintf("receive `%s`: the source did not "
                                     "commit (%s): nothing kept here",
                                     name, why);
  if (c)
    conn_error(d, c, API_FAILED, msg);
}

/* Committed: it thaws, reachable, and only then the source hears. */
static void go_live(struct daemon *d, struct conn *c, struct instance *in,
                    struct handover *h) {
  in->hold = HOLD_NONE;
  resume_here(in);
  /* Its own now: the next celld keeps it whatever happens. */
  intent_end(d, in->rec->name);
  cell_error *err = NULL;
  if (send_flag(h->out, "ok", &err) < 0) {
    log_warn("%s: migrated, the source not told: %s", in->rec->name, err->msg);
    cell_error_free(&err);
  }
  log_info("instance %s: migration committed, it runs here", in->rec->name);
  if (c)
    conn_reply_instance(d, c, in);
}

static void commit_result(struct daemon *d, struct image_job *j,
                          const struct json_value *v) {
  struct handover *h = j->ctx;
  struct conn *c = daemon_find_conn(d, j->conn_id);
  struct instance *in = daemon_find_instance(d, h->name);
  const char *error = NULL;
  h->decided = true;
  if (!image_child_ok(v, &error) || !in || in->pidfd < 0)
    drop_held(d, c, in, h->name, error ? error : "its copy here went");
  else
    go_live(d, c, in, h);
}

static void commit_end(struct daemon *d, struct image_job *j) {
  struct handover *h = j->ctx;
  if (!h->decided)
    drop_held(d, NULL, daemon_find_instance(d, h->name), h->name,
              "the wait for it died");
}

/* restore_hold's: the instance restored, frozen, its ports down; the
 * source is told and its commit awaited in a child.  The receive's
 * client going meanwhile changes nothing: the stream decides. */
static void hold_restored(struct daemon *d, struct conn *c,
                          struct instance *in, void *ctx) {
  struct handover *h = ctx;
  cell_error *err = NULL;
  h->name = xstrdup(in->rec->name);
  in->hold = HOLD_MIGRATE_IN;
  int pipefd = -1;
  pid_t pid = c ? image_child_spawn(run_await_commit, d, h, &pipefd, &err)
                : cell_fail(&err, 0, "its receive went");
  if (pid < 0) {
    drop_held(d, c, in, h->name, err->msg);
    cell_error_free(&err);
    handover_free(h);
    return;
  }
  cleanup_free char *what =
      xasprintf("receive of `%s` (the wait for the commit)", h->name);
  struct image_job *j = image_job_new(c->cred.uid, what, h, handover_free);
  j->on_result = commit_result;
  j->on_end = commit_end;
  daemon_image_add_job(d, c, j, pid, pipefd);
  c->import_pidfd = -1;
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
  if (!image_child_ok(v, &error)) {
    log_warn("receive failed: %s", error ? error : "?");
    if (c)
      conn_error(d, c, API_FAILED, error ? error : "receive failed");
    return;
  }
  if (!c)
    return; /* nobody waits: nothing made */
  cleanup_strv char **warnings = NULL;
  /* Before anything lands: a celld killed from here to the commit leaves
   * its successor what to remove (daemon-intent.h). */
  const char *name = request_str(v, "name");
  struct intent it = {.op = INTENT_RECEIVE, .name = name, .arg = "migration"};
  struct instance *in = NULL;
  if (!name || daemon_find_instance(d, name))
    cell_fail(&err, 0, "instance `%s` was made on the target meanwhile: "
              "destroy or rename it there first", name ? name : "?");
  else if (intent_begin(d, &it, &err) == 0 &&
           !(in = transfer_place_import(d, j, name, true, &warnings, &code,
                                        &err)))
    intent_end(d, name);
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
  struct restore_hold hold = {hold_restored, steal_pointer(&j->ctx),
                              handover_free};
  checkpoint_restore_migrated(d, c, in, MIGRATE_SNAP, &hold);
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
  struct handover *h = handover_new(c, &err);
  int pipefd = -1;
  pid_t pid = h ? image_child_spawn(run_receive, d, &w, &pipefd, &err) : -1;
  if (pid < 0) {
    if (h)
      handover_free(h);
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  struct image_job *j = image_job_new(c->cred.uid, "receive", h, handover_free);
  j->on_result = receive_result;
  daemon_image_add_job(d, c, j, pid, pipefd);
}
