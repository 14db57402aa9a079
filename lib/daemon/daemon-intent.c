/* celld's intents (daemon-intent.h): what an op on an instance's disk is
 * about to do, on disk before its first step, and what the next celld
 * makes of it when one was killed in the middle. */
#include "daemon/daemon-intent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "daemon/daemon-records.h"
#include "daemon/instance-rootfs.h"
#include "storage/image-store.h"

static const char *const op_names[] = {
    [INTENT_FREEZE] = "freeze",
    [INTENT_RESTORE] = "restore",
    [INTENT_RENAME] = "rename",
    [INTENT_RECEIVE] = "receive",
};

static char *intent_file(const char *name) {
  return xasprintf("%s.intent", name);
}

int intent_begin(struct daemon *d, const struct intent *it, cell_error **err) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_string(g, "op", op_names[it->op]);
  json_gen_kv_string(g, "name", it->name);
  json_gen_kv_string(g, "arg", it->arg);
  json_gen_kv_bool(g, "by_copy", it->by_copy);
  if (it->pool_dir)
    json_gen_kv_string(g, "pool_dir", it->pool_dir);
  json_gen_object_close(g);
  size_t len = 0;
  cleanup_free char *text = json_gen_finish(g, &len);
  json_gen_free(g);
  cleanup_free char *file = intent_file(it->name);
  if (cell_write_file_atomic_at(d->instdirfd, file, text, len, 0600, err) < 0)
    return cell_error_wrap(err, "instance `%s`: write what it is about to "
                           "do", it->name);
  return 0;
}

/* An intent left behind would be replayed by the next celld (a restore
 * done again over what was written since): an unlink that fails is tried
 * once more. */
void intent_end(struct daemon *d, const char *name) {
  cleanup_free char *file = intent_file(name);
  for (int tries = 0; unlinkat(d->instdirfd, file, 0) < 0 && errno != ENOENT;
       tries++)
    if (tries == 1) {
      log_error("instances/%s: %s", file, strerror(errno));
      break;
    }
  fsync(d->instdirfd);
}

/* ---- the steps both an op and a replay take ----------------------------- */

static bool exists_at(int dirfd, const char *name) {
  struct stat st;
  return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* upper/ replaced by what is at fromfd/from, with a fresh work/. */
static int upper_from(int diskfd, int fromfd, const char *from,
                      cell_error **err) {
  if (cell_rm_rf_at(diskfd, "upper", err) < 0 ||
      cell_rm_rf_at(diskfd, "work", err) < 0)
    return -1;
  if (renameat(fromfd, from, diskfd, "upper") < 0)
    return cell_fail_errno(err, "move `%s` back as the writable layer", from);
  if (mkdirat(diskfd, "work", 0700) < 0 ||
      fchownat(diskfd, "work", 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "make the overlay's work directory");
  return 0;
}

int intent_undo_freeze(struct daemon *d, int diskfd, const char *hex,
                       bool by_copy, cell_error **err) {
  int layersfd = d->store->layersfd;
  if (!by_copy)
    return exists_at(layersfd, hex) ? upper_from(diskfd, layersfd, hex, err)
                                    : 0; /* not moved yet */
  if (exists_at(diskfd, "upper.frozen") &&
      upper_from(diskfd, diskfd, "upper.frozen", err) < 0)
    return -1;
  return cell_rm_rf_at(layersfd, hex, err);
}

static int open_disk(struct daemon *d, const struct instance_record *r,
                     cell_error **err) {
  cleanup_free char *disk = daemon_inst_disk_dir(d, r, err);
  if (!disk)
    return -1;
  int fd = open(disk, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", disk);
  return fd;
}

int intent_apply_restore(struct daemon *d, struct instance *in,
                         const struct instance_snapshot *s, cell_error **err) {
  cleanup_close int diskfd = open_disk(d, in->rec, err);
  /* What it wrote since goes; the snapshot's layers come back. */
  if (diskfd < 0 || cell_rm_rf_at(diskfd, "upper", err) < 0 ||
      instance_new_writable_layer(diskfd, err) < 0)
    return -1;
  cell_strv_free(in->rec->own_layers);
  in->rec->own_layers = cell_strv_dup(s->own_layers);
  return inst_save(d, in, err);
}

/* ---- replay ------------------------------------------------------------- */

struct intent_file {
  struct intent it;
  struct json_value *json; /* the strings of it point into it */
};

static const char *str_field(const struct json_value *v, const char *key) {
  const struct json_value *f = json_object_get(v, key);
  return f && f->type == JSON_STRING ? f->u.string : NULL;
}

static int parse_intent(const char *text, size_t len, struct intent_file *f,
                        cell_error **err) {
  if (json_parse(text, len, &f->json, err) < 0)
    return -1;
  const char *op = str_field(f->json, "op");
  f->it.name = str_field(f->json, "name");
  f->it.arg = str_field(f->json, "arg");
  f->it.pool_dir = str_field(f->json, "pool_dir");
  const struct json_value *by_copy = json_object_get(f->json, "by_copy");
  f->it.by_copy = by_copy && by_copy->type == JSON_BOOL && by_copy->u.boolean;
  for (size_t i = 0; op && i < sizeof(op_names) / sizeof(op_names[0]); i++)
    if (strcmp(op, op_names[i]) == 0) {
      f->it.op = (enum intent_op)i;
      if (f->it.name && f->it.arg)
        return 0;
    }
  return cell_fail(err, EINVAL, "not an intent celld wrote");
}

/* from renamed to at dirfd when only from is there (a replay may find
 * it done already). */
static int move_if_left(int dirfd, const char *from, const char *to,
                        cell_error **err) {
  if (!exists_at(dirfd, from) || exists_at(dirfd, to))
    return 0;
  if (renameat(dirfd, from, dirfd, to) < 0)
    return cell_fail_errno(err, "rename `%s` to `%s`", from, to);
  return 0;
}

/* The new record was written: the rename goes on to its end.  It was
 * not: it is undone.  The instance's directory, then its disk's in a
 * pool, each moved to whichever name wins. */
static int replay_rename(struct daemon *d, const struct intent *it,
                         cell_error **err) {
  cleanup_free char *new_record = xasprintf("%s.json", it->arg);
  bool done = exists_at(d->instdirfd, new_record);
  const char *from = done ? it->name : it->arg;
  const char *to = done ? it->arg : it->name;
  if (move_if_left(d->instdirfd, from, to, err) < 0)
    return -1;
  if (it->pool_dir) {
    cleanup_close int poolfd =
        open(it->pool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (poolfd < 0 && errno != ENOENT)
      return cell_fail_errno(err, "open `%s`", it->pool_dir);
    if (poolfd >= 0 && move_if_left(poolfd, from, to, err) < 0)
      return -1;
  }
  if (done) {
    cleanup_free char *old_record = xasprintf("%s.json", it->name);
    if (unlinkat(d->instdirfd, old_record, 0) < 0 && errno != ENOENT)
      return cell_fail_errno(err, "remove `%s`", old_record);
  }
  log_warn("%s: a rename to %s cut short by an earlier celld: %s", it->name,
           it->arg, done ? "finished" : "undone");
  return 0;
}

static bool has_layer(char *const *layers, const char *hex) {
  for (size_t i = 0; layers && layers[i]; i++)
    if (strcmp(layers[i] + strlen("sha256:"), hex) == 0)
      return true;
  return false;
}

/* The record holds the layer: the freeze is done, what it moved aside
 * goes.  It does not: the freeze is undone. */
static int replay_freeze(struct daemon *d, struct instance *in,
                         const struct intent *it, cell_error **err) {
  cleanup_close int diskfd = open_disk(d, in->rec, err);
  if (diskfd < 0)
    return -1;
  bool done = has_layer(in->rec->own_layers, it->arg);
  log_warn("%s: a snapshot of its writable layer cut short by an earlier "
           "celld: %s", it->name, done ? "finished" : "undone");
  if (!done)
    return intent_undo_freeze(d, diskfd, it->arg, it->by_copy, err);
  if (cell_rm_rf_at(diskfd, "upper.frozen", err) < 0)
    return -1;
  return exists_at(diskfd, "upper") ? 0
                                    : instance_new_writable_layer(diskfd, err);
}

static int replay_restore(struct daemon *d, struct instance *in,
                          const struct intent *it, cell_error **err) {
  for (size_t i = 0; i < in->rec->n_snaps; i++)
    if (strcmp(in->rec->snaps[i].name, it->arg) == 0) {
      log_warn("%s: a restore of %s cut short by an earlier celld: finished",
               it->name, it->arg);
      return intent_apply_restore(d, in, &in->rec->snaps[i], err);
    }
  return 0;
}

static int replay_one(struct daemon *d, const struct intent *it, bool renames,
                      intent_drop_fn drop_received, cell_error **err) {
  if (renames)
    return it->op == INTENT_RENAME ? replay_rename(d, it, err) : 0;
  struct instance *in = daemon_find_instance(d, it->name);
  if (!in || it->op == INTENT_RENAME)
    return 0; /* destroyed meanwhile: nothing of it is left to mend */
  switch (it->op) {
  case INTENT_FREEZE:
    return replay_freeze(d, in, it, err);
  case INTENT_RESTORE:
    return replay_restore(d, in, it, err);
  default:
    return drop_received(d, in, err);
  }
}

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n > m && strcmp(s + n - m, suffix) == 0;
}

/* One intent file: replayed (when of this pass) and removed.  One that
 * cannot be replayed stays, for the next celld, and is said. */
static void replay_file(struct daemon *d, const char *file, bool renames,
                        intent_drop_fn drop_received) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  struct intent_file f = {0};
  cell_error *err = NULL;
  if (cell_read_file_at(d->instdirfd, file, 65536, &text, &len, &err) == 0 &&
      parse_intent(text, len, &f, &err) == 0 &&
      (f.it.op == INTENT_RENAME) != renames) {
    json_free(f.json);
    return; /* the other pass's */
  }
  if (!err && replay_one(d, &f.it, renames, drop_received, &err) == 0)
    unlinkat(d->instdirfd, file, 0);
  if (err) {
    log_error("instances/%s: %s", file, err->msg);
    cell_error_free(&err);
  }
  json_free(f.json);
}

static void replay_all(struct daemon *d, bool renames,
                       intent_drop_fn drop_received) {
  cleanup_close int fd = openat(d->instdirfd, ".", O_RDONLY | O_DIRECTORY |
                                                       O_CLOEXEC);
  DIR *dir = fd < 0 ? NULL : fdopendir(fd);
  if (!dir)
    return;
  fd = -1; /* the DIR has it */
  cleanup_strv char **files = NULL;
  for (struct dirent *e; (e = readdir(dir));) {
    if (e->d_name[0] != '.' && has_suffix(e->d_name, ".intent"))
      cell_strv_push(&files, e->d_name);
    /* A record or an intent whose atomic write was cut short. */
    else if (renames && e->d_name[0] == '.' && has_suffix(e->d_name, ".tmp"))
      unlinkat(d->instdirfd, e->d_name, 0);
  }
  closedir(dir);
  for (size_t i = 0; files && files[i]; i++)
    replay_file(d, files[i], renames, drop_received);
  fsync(d->instdirfd);
}

void intent_replay_renames(struct daemon *d) { replay_all(d, true, NULL); }

void intent_replay(struct daemon *d, intent_drop_fn drop_received) {
  replay_all(d, false, drop_received);
}
