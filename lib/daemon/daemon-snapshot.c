/* Snapshots, restore and rename of instances, and the freezing of an
 * instance's writable layer that snapshots and clones share.
 *
 * An instance's root is its image's layers, then its own frozen layers
 * (own_layers), then its writable layer (disk/upper), all in
 * container-relative ids.  Freezing a stopped instance's writable layer
 * is a rename into the image store's layers/ under a random 64-hex name,
 * and a new empty writable layer: O(1), whatever it holds.  A running
 * instance's cannot move under its mounted overlay: its cgroup is frozen
 * for the time a copy of the layer takes (reflinks where the filesystem
 * has them; a snapshot's copy runs in a child process, below), and it
 * goes on with its own writable layer.  A snapshot
 * records the own layers as they were; restore puts them back under a new
 * empty writable layer. */
#include "daemon/daemon-snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cgroup/cgroup.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-image.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-intent.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/daemon-runtime.h"
#include "daemon/instance-rootfs.h"
#include "storage/image-store.h"
#include "storage/pool.h"

/* Overlayfs stacks at most 500 lower layers, and our option string holds
 * about 60 names: an instance's own layers stop well below. */
#define MAX_OWN_LAYERS 32
/* A stopped instance with this many layers of its own has them merged
 * into one before its next freeze (docs/architecture.md, "Deep stacks"):
 * every lookup of a name its writable layer lacks goes down each layer
 * until one has it, so a deep stack slows every open and stat inside; 16
 * keeps that within a few layers of its image's, and the mount's option
 * string, which also names the image's layers, far from its limit. */
#define FLATTEN_DEPTH 16
/* <instance dir>/checkpoints/<snap>: a stateful snapshot's images. */
#define SNAPSHOT_IMAGES "checkpoints"

static bool running(const struct instance *in) { return in->pidfd >= 0; }

static int random_layer_name(char out[65], cell_error **err) {
  unsigned char b[32];
  if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
    return cell_fail_errno(err, "getrandom for a layer name");
  for (size_t i = 0; i < sizeof(b); i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
  return 0;
}

static int open_dir_at(int dirfd, const char *name, int *out, cell_error **err) {
  *out = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return *out < 0 ? cell_fail_errno(err, "open `%s`", name) : 0;
}

/* What a freeze made, on disk before a record names it: the layer in the
 * store, the disk's new writable layer, and (a stateful snapshot) criu's
 * images in the instance's directory.  Never while the instance is
 * frozen: a syncfs writes back everything dirty on its filesystem, the
 * other instances' pages too. */
static int sync_frozen_layer(struct daemon *d, const struct instance *in,
                             cell_error **err) {
  cleanup_free char *disk = daemon_inst_disk_dir(d, in->rec, err);
  cleanup_close int diskfd = -1;
  if (!disk || open_dir_at(AT_FDCWD, disk, &diskfd, err) < 0)
    return -1;
  return daemon_sync_filesystems(
      (const int[]){d->store->layersfd, diskfd, d->instdirfd},
      (const char *[]){d->store->dir, disk, d->instances_dir}, 3, err);
}

/* The layer copied into a new directory of the store (reflinks where the
 * filesystem has them); nothing left of it on failure. */
static int copy_into_store(struct daemon *d, int src, const char *name,
                           cell_error **err) {
  cleanup_close int dst = -1;
  if (mkdirat(d->store->layersfd, name, 0755) < 0)
    return cell_fail_errno(err, "make a layer in the image store");
  if (open_dir_at(d->store->layersfd, name, &dst, err) == 0 &&
      instance_layer_copy(src, dst, err) == 0)
    return 0;
  cleanup_error cell_error *ignored = NULL;
  cell_rm_rf_at(d->store->layersfd, name, &ignored);
  return -1;
}

/* Whether upper moves into the store in one rename: not out of a disk
 * with a project id (XFS, ext4), whose files would keep it, and so stay
 * counted in the instance's quota and outlive it there. */
static int move_upper(struct daemon *d, int diskfd, const char *name) {
  if (pool_disk_project(diskfd)) {
    errno = EXDEV;
    return -1;
  }
  return renameat(diskfd, "upper", d->store->layersfd, name);
}

/* A stopped instance: disk/upper moves into the store, O(1).  A disk in a
 * pool on another filesystem than the store, in a btrfs subvolume of its
 * own (a rename never leaves a subvolume), or with a project id, gives
 * EXDEV: then the layer
 * is copied into the store instead (reflinks where the two filesystems
 * are one, a full copy otherwise) and the disk's copy moved aside to
 * upper.frozen, removed once the record holds the layer.  The intent says
 * which, for the undo. */
static int move_upper_to_store(struct daemon *d, int diskfd,
                               struct instance *in, struct intent *it,
                               cell_error **err) {
  if (move_upper(d, diskfd, it->arg) == 0)
    return instance_new_writable_layer(diskfd, err);
  if (errno != EXDEV)
    return cell_fail_errno(err, "move the writable layer of `%s` into the "
                           "image store", in->rec->name);
  it->by_copy = true;
  if (intent_begin(d, it, err) < 0)
    return -1;
  cleanup_close int src = -1;
  if (open_dir_at(diskfd, "upper", &src, err) < 0 ||
      copy_into_store(d, src, it->arg, err) < 0)
    return cell_error_wrap(err, "copy the writable layer of `%s` into the "
                           "image store", in->rec->name);
  if (renameat(diskfd, "upper", diskfd, "upper.frozen") < 0)
    return cell_fail_errno(err, "move the writable layer of `%s` aside",
                           in->rec->name);
  return instance_new_writable_layer(diskfd, err);
}

/* The writable layer a child copied into the store (snapshot_copy_in_child),
 * the instance held meanwhile: moved aside, as a copy in the loop would
 * have left it. */
static int set_copied_upper_aside(int diskfd, struct instance *in,
                                  cell_error **err) {
  if (renameat(diskfd, "upper", diskfd, "upper.frozen") < 0)
    return cell_fail_errno(err, "move the writable layer of `%s` aside",
                           in->rec->name);
  return instance_new_writable_layer(diskfd, err);
}

/* ---- what a freeze moved aside, removed by a child ---------------------- */

/* upper.frozen renamed out of the way of the next freeze (upper.old-HEX),
 * then removed by a child: its size is the layer's.  What a killed celld
 * left of one is removed by the next such removal. */
#define OLD_UPPER_PREFIX "upper.old-"

struct old_upper_removal {
  int diskfd;
};

static void old_upper_removal_free(void *p) {
  struct old_upper_removal *r = p;
  if (r->diskfd >= 0)
    close(r->diskfd);
  free(r);
}

static int remove_old_uppers(int diskfd, cell_error **err) {
  int fd = openat(diskfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = fd < 0 ? NULL : fdopendir(fd);
  if (!dir) {
    if (fd >= 0)
      close(fd);
    return cell_fail_errno(err, "list the disk");
  }
  int rc = 0;
  for (struct dirent *e; rc == 0 && (e = readdir(dir));)
    if (strncmp(e->d_name, OLD_UPPER_PREFIX, strlen(OLD_UPPER_PREFIX)) == 0)
      rc = cell_rm_rf_at(diskfd, e->d_name, err);
  closedir(dir);
  return rc;
}

static void run_old_upper_removal(struct daemon *d, void *arg, int outfd) {
  struct old_upper_removal *r = arg;
  int keep[] = {outfd, r->diskfd};
  image_child_setup(keep, 2);
  cell_error *err = NULL;
  int rc = remove_old_uppers(r->diskfd, &err);
  image_child_result(outfd, err);
  _exit(rc == 0 ? 0 : 1);
}

static void old_upper_removed(struct daemon *d, struct image_job *j,
                              const struct json_value *v) {
  const char *error = NULL;
  if (!image_child_ok(v, &error))
    log_warn("%s: %s (tried again at its next snapshot)", j->what,
             error ? error : "failed");
}

static void discard_frozen_upper(struct daemon *d, const char *inst, int diskfd,
                                 const char *hex) {
  cleanup_free char *old = xasprintf(OLD_UPPER_PREFIX "%s", hex);
  cell_error *err = NULL;
  struct old_upper_removal *r = xcalloc(1, sizeof(*r));
  r->diskfd = fcntl(diskfd, F_DUPFD_CLOEXEC, 3);
  int pipefd = -1;
  pid_t pid = -1;
  bool moved = renameat(diskfd, "upper.frozen", diskfd, old) == 0;
  if (!moved)
    cell_fail_errno(&err, "move `upper.frozen` aside (it stays in the disk)");
  else if (r->diskfd < 0)
    cell_fail_errno(&err, "dup the disk's fd");
  else
    pid = image_child_spawn(run_old_upper_removal, d, r, &pipefd, &err);
  if (pid < 0) {
    log_warn("%s: %s%s", inst, err->msg,
             moved ? " (removed at its next copied freeze, or with it)" : "");
    cell_error_free(&err);
    old_upper_removal_free(r);
    return;
  }
  cleanup_free char *what =
      xasprintf("the removal of `%s`'s old writable layer", inst);
  struct image_job *j = image_job_new(0, what, r, old_upper_removal_free);
  j->on_result = old_upper_removed;
  daemon_image_add_job(d, NULL, j, pid, pipefd);
}

static void drop_top_layer(char **layers) {
  size_t n = cell_strv_len(layers);
  free(layers[n - 1]);
  layers[n - 1] = NULL;
}

/* The steps of a stopped instance's freeze, its record saved with the
 * layer on top of its own: all done, or all undone (here on an error, by
 * the next celld after a crash: daemon-intent.h).  copied: a child has
 * copied the writable layer into the store as `name` already. */
static int freeze_stopped(struct daemon *d, struct instance *in,
                          const char *name, bool copied, cell_error **err) {
  struct instance_record *r = in->rec;
  cleanup_free char *disk = daemon_inst_disk_dir(d, r, err);
  cleanup_close int diskfd = -1;
  if (!disk || open_dir_at(AT_FDCWD, disk, &diskfd, err) < 0)
    return -1;
  struct intent it = {
      .op = INTENT_FREEZE, .name = r->name, .arg = name, .by_copy = copied};
  if (intent_begin(d, &it, err) < 0)
    return -1;
  int rc = copied ? set_copied_upper_aside(diskfd, in, err)
                  : move_upper_to_store(d, diskfd, in, &it, err);
  if (rc == 0)
    rc = sync_frozen_layer(d, in, err);
  if (rc == 0) {
    cleanup_free char *layer = xasprintf("sha256:%s", name);
    cell_strv_push(&r->own_layers, layer);
    rc = inst_save(d, in, err);
    if (rc < 0)
      drop_top_layer(r->own_layers);
  }
  cleanup_error cell_error *undo_err = NULL;
  if (rc < 0 && intent_undo_freeze(d, diskfd, name, it.by_copy, &undo_err) < 0) {
    log_error("%s: undo its snapshot: %s (the next celld tries again)",
              r->name, undo_err->msg);
    return -1;
  }
  intent_end(d, r->name);
  if (rc == 0 && copied)
    discard_frozen_upper(d, r->name, diskfd, name);
  else if (rc == 0 && cell_rm_rf_at(diskfd, "upper.frozen", &undo_err) < 0)
    log_warn("%s: %s", r->name, undo_err->msg);
  return rc;
}

/* The layers merged bottom first into a new directory of the store's
 * tmp/ (swept at the store's next open: a crash leaves nothing), moved
 * into layers/ whole. */
static int merge_into_store(struct daemon *d, char *const *layers,
                            const char *name, cell_error **err) {
  cleanup_free char *tmp = xasprintf("flatten-%s", name);
  cleanup_close int dst = -1;
  if (mkdirat(d->store->tmpfd, tmp, 0755) < 0)
    return cell_fail_errno(err, "make a layer in the image store's tmp/");
  int rc = open_dir_at(d->store->tmpfd, tmp, &dst, err);
  for (size_t i = 0; rc == 0 && layers[i]; i++) {
    cleanup_close int src = -1;
    rc = open_dir_at(d->store->layersfd, layers[i] + strlen("sha256:"), &src,
                     err);
    if (rc == 0)
      rc = instance_layer_merge(src, dst, err);
  }
  if (rc == 0 && renameat(d->store->tmpfd, tmp, d->store->layersfd, name) < 0)
    rc = cell_fail_errno(err, "move a merged layer into the image store");
  cleanup_error cell_error *ignored = NULL;
  if (rc < 0)
    cell_rm_rf_at(d->store->tmpfd, tmp, &ignored);
  return rc;
}

/* A stopped instance's own layers become one.  Its snapshots keep theirs,
 * which go when the last snapshot holding them does. */
static int flatten_own_layers(struct daemon *d, struct instance *in,
                              cell_error **err) {
  struct instance_record *r = in->rec;
  char name[65];
  if (random_layer_name(name, err) < 0 ||
      merge_into_store(d, r->own_layers, name, err) < 0)
    return cell_error_wrap(err, "flatten the layers of `%s`", r->name);
  char **old = steal_pointer(&r->own_layers);
  r->own_layers = xcalloc(2, sizeof(char *));
  r->own_layers[0] = xasprintf("sha256:%s", name);
  if (inst_save(d, in, err) < 0) {
    cell_strv_free(r->own_layers);
    r->own_layers = old;
    cleanup_error cell_error *ignored = NULL;
    cell_rm_rf_at(d->store->layersfd, name, &ignored);
    return -1;
  }
  log_info("%s: its %zu layers of its own flattened into one", r->name,
           cell_strv_len(old));
  cell_strv_free(old);
  daemon_collect_layers(d);
  return 0;
}

/* An instance left frozen would hang for ever (even SIGKILL waits for a
 * thaw): a thaw that fails is tried again. */
static void thaw_or_log(const char *name, const struct cgroup *cg) {
  for (int tries = 0; tries < 5; tries++) {
    cell_error *err = NULL;
    if (cgroup_freeze(cg, false, &err) == 0)
      return;
    log_error("%s: thaw after its snapshot: %s%s", name, err->msg,
              tries < 4 ? " (again)" : "");
    cell_error_free(&err);
    usleep(10000);
  }
}

/* What a copy of a running instance's layer needs of it: a child has its
 * own copy of this, not of the instance. */
struct frozen_copy {
  const char *name, *cgroup;
  bool paused; /* frozen already by its owner: frozen it stays */
};

static struct frozen_copy frozen_copy_of(const struct instance *in) {
  return (struct frozen_copy){.name = in->rec->name,
                              .cgroup = in->rec->cgroup,
                              .paused = inst_is_paused(in)};
}

/* The copy, the instance frozen while it runs. */
static int copy_while_frozen(const struct frozen_copy *fc, int src, int dst,
                             cell_error **err) {
  if (fc->paused)
    return instance_layer_copy(src, dst, err);
  struct cgroup *cg = NULL;
  if (cgroup_open(fc->cgroup, &cg, err) < 0)
    return -1;
  int rc = cgroup_freeze(cg, true, err);
  if (rc == 0)
    daemon_test_pause("snapshot-copy");
  /* What it wrote is in the page cache, which the copy reads: no sync. */
  if (rc == 0)
    rc = instance_layer_copy(src, dst, err);
  thaw_or_log(fc->name, cg);
  cgroup_free(cg);
  return rc;
}

/* A running instance: its writable layer copied into the store. */
static int freeze_by_copy(struct daemon *d, struct instance *in,
                          const char *name, cell_error **err) {
  cleanup_free char *disk = daemon_inst_disk_dir(d, in->rec, err);
  if (!disk)
    return -1;
  cleanup_free char *upper = xasprintf("%s/upper", disk);
  cleanup_close int src = -1, dst = -1;
  if (open_dir_at(AT_FDCWD, upper, &src, err) < 0)
    return -1;
  if (mkdirat(d->store->layersfd, name, 0755) < 0)
    return cell_fail_errno(err, "make a layer in the image store");
  struct frozen_copy fc = frozen_copy_of(in);
  if (open_dir_at(d->store->layersfd, name, &dst, err) == 0 &&
      copy_while_frozen(&fc, src, dst, err) == 0)
    return 0;
  cleanup_error cell_error *ignored = NULL;
  cell_rm_rf_at(d->store->layersfd, name, &ignored);
  return -1;
}

/* Whether the instance's writable layer holds nothing (a stopped one that
 * has not run since its last freeze). */
static bool writable_layer_empty(struct daemon *d, const struct instance *in) {
  cleanup_error cell_error *ignored = NULL;
  cleanup_free char *disk = daemon_inst_disk_dir(d, in->rec, &ignored);
  if (!disk)
    return false;
  cleanup_free char *upper = xasprintf("%s/upper", disk);
  int fd = open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *dir = fd < 0 ? NULL : fdopendir(fd);
  if (!dir) {
    if (fd >= 0)
      close(fd);
    return false;
  }
  bool empty = true;
  for (struct dirent *e; empty && (e = readdir(dir));)
    empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
  closedir(dir);
  return empty;
}

bool snapshot_layer_crosses(struct daemon *d, const struct instance *in) {
  if (!in->rec->image)
    return false;
  cleanup_error cell_error *ignored = NULL;
  cleanup_free char *disk = daemon_inst_disk_dir(d, in->rec, &ignored);
  cleanup_close int diskfd = -1;
  struct stat upper, layers;
  if (!disk || open_dir_at(AT_FDCWD, disk, &diskfd, &ignored) < 0 ||
      fstatat(diskfd, "upper", &upper, AT_SYMLINK_NOFOLLOW) < 0 ||
      fstat(d->store->layersfd, &layers) < 0)
    return false;
  return upper.st_dev != layers.st_dev || pool_disk_project(diskfd);
}

bool snapshot_stopped_copies(struct daemon *d, const struct instance *in) {
  return !running(in) && in->rec->image && !writable_layer_empty(d, in) &&
         snapshot_layer_crosses(d, in);
}

/* Whether the instance's writable layer may become a layer of the store. */
static int check_freezable(const struct instance_record *r, cell_error **err) {
  if (!r->image)
    return cell_fail(err, 0, "instance `%s` is on a template, not an image: "
                     "snapshots and clones need an image's instance", r->name);
  if (r->rootfs_mode && strcmp(r->rootfs_mode, "copy") == 0)
    return cell_fail(err, 0, "instance `%s` is a copy (idmap = copy): its "
                     "layer is in host ids and cannot be shared", r->name);
  if (cell_strv_len(r->own_layers) >= MAX_OWN_LAYERS)
    return cell_fail(err, 0, "instance `%s` has %d layers of its own, the "
                     "most an overlay stacks well: remove a snapshot",
                     r->name, MAX_OWN_LAYERS);
  return 0;
}

int snapshot_freeze(struct daemon *d, struct instance *in, bool move,
                    char **layer_out, cell_error **err) {
  struct instance_record *r = in->rec;
  if (check_freezable(r, err) < 0)
    return -1;
  bool by_rename = move && !running(in);
  /* Nothing new since the last freeze: its own layers say it all (so a
   * thousand clones of a stopped instance add no layer to its stack). */
  *layer_out = NULL;
  if (by_rename && writable_layer_empty(d, in))
    return 0;
  if (by_rename && cell_strv_len(r->own_layers) >= FLATTEN_DEPTH &&
      flatten_own_layers(d, in, err) < 0)
    return -1;
  char name[65];
  if (random_layer_name(name, err) < 0)
    return -1;
  if ((by_rename ? freeze_stopped(d, in, name, false, err)
                 : freeze_by_copy(d, in, name, err)) < 0)
    return -1;
  /* (A stopped instance goes on above the layer it froze: its record
   * says so already.) */
  *layer_out = xasprintf("sha256:%s", name);
  return 0;
}

/* ---- ops ---------------------------------------------------------------- */

static struct instance_snapshot *find_snap(struct instance_record *r,
                                           const char *name) {
  for (size_t i = 0; i < r->n_snaps; i++)
    if (strcmp(r->snaps[i].name, name) == 0)
      return &r->snaps[i];
  return NULL;
}

/* ---- stateful snapshots' images (daemon-checkpoint.c makes them) ------- */

char *snapshot_images_dir(struct daemon *d, const char *name, const char *snap) {
  cleanup_free char *dir = daemon_inst_dir(d, name);
  return xasprintf("%s/" SNAPSHOT_IMAGES "/%s", dir, snap);
}

bool snapshot_is_stateful(struct daemon *d, const char *name, const char *snap) {
  cleanup_free char *dir = snapshot_images_dir(d, name, snap);
  struct stat sb;
  return lstat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void remove_images(struct daemon *d, const char *name, const char *snap) {
  cleanup_free char *dir = snapshot_images_dir(d, name, snap);
  cleanup_error cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, dir, &err) < 0)
    log_warn("%s: snapshot %s: %s", name, snap, err->msg);
}

static void reply_snapshots(struct daemon *d, struct conn *c,
                            const struct instance_record *r) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "snapshots");
  json_gen_array_open(g);
  for (size_t i = 0; i < r->n_snaps; i++) {
    json_gen_object_open(g);
    json_gen_kv_string(g, "name", r->snaps[i].name);
    json_gen_kv_string(g, "created", r->snaps[i].created);
    json_gen_kv_int(g, "layers", (int64_t)cell_strv_len(r->snaps[i].own_layers));
    json_gen_kv_bool(g, "stateful",
                     snapshot_is_stateful(d, r->name, r->snaps[i].name));
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

/* snap-YYYYmmdd-HHMMSS, unique among the instance's. */
static char *default_snap_name(const struct instance_record *r) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char base[32];
  strftime(base, sizeof(base), "snap-%Y%m%d-%H%M%S", &tm);
  char *name = xstrdup(base);
  for (int n = 2; find_snap((struct instance_record *)r, name); n++) {
    free(name);
    name = xasprintf("%s-%d", base, n);
  }
  return name;
}

int snapshot_new_name(const struct instance_record *r, const char *given,
                      char **name, enum api_code *code, cell_error **err) {
  *name = given ? xstrdup(given) : default_snap_name(r);
  *code = API_INVALID_REQUEST;
  if (instance_check_name(*name, err) < 0)
    return cell_error_wrap(err, "snapshot name");
  *code = API_EXISTS;
  if (find_snap((struct instance_record *)r, *name))
    return cell_fail(err, 0, "that snapshot exists: give another name");
  return 0;
}

/* The snapshot `name` in the instance's record, saved, once its layers
 * are on disk.  copied: `layer` is a copy of the running instance's
 * writable layer, the snapshot's alone. */
static void record_snapshot(struct daemon *d, struct instance *in,
                            const char *name, const char *layer, bool copied) {
  struct instance_record *r = in->rec;
  r->snaps = xrealloc(r->snaps, (r->n_snaps + 1) * sizeof(*r->snaps));
  struct instance_snapshot *s = &r->snaps[r->n_snaps++];
  s->name = xstrdup(name);
  s->created = cell_rfc3339_now();
  s->own_layers = cell_strv_dup(r->own_layers);
  if (layer && copied)
    cell_strv_push(&s->own_layers, layer);
  inst_save_or_log(d, in);
  log_info("%s: snapshot %s (%s)", r->name, name,
           copied ? "frozen while copied" : "its layer frozen");
}

int snapshot_record(struct daemon *d, struct instance *in, const char *name,
                    const char *layer, bool copied, cell_error **err) {
  if (sync_frozen_layer(d, in, err) < 0)
    return cell_error_wrap(err, "snapshot %s of `%s`", name, in->rec->name);
  record_snapshot(d, in, name, layer, copied);
  return 0;
}

int snapshot_add(struct daemon *d, struct instance *in, const char *name,
                 cell_error **err) {
  cleanup_free char *layer = NULL;
  if (snapshot_freeze(d, in, true, &layer, err) < 0)
    return -1;
  /* (A running one's layer is a copy: snapshot_freeze.) */
  if (snapshot_record(d, in, name, layer, running(in), err) < 0) {
    daemon_collect_layers(d);
    return -1;
  }
  return 0;
}

void snapshot_drop(struct daemon *d, struct instance *in, const char *name) {
  struct instance_record *r = in->rec;
  struct instance_snapshot *s = find_snap(r, name);
  if (!s)
    return;
  free(s->name);
  free(s->created);
  cell_strv_free(s->own_layers);
  *s = r->snaps[--r->n_snaps];
  inst_save_or_log(d, in);
  daemon_collect_layers(d);
}

/* ---- a running instance's snapshot, copied by a child ----------------- *
 *
 * The copy takes as long as the writable layer is large, and the freeze
 * before it waits for every task of the instance to stop: neither may
 * hold celld's loop, which serves every other instance meanwhile.  A
 * child freezes the instance, copies its layer into the store, thaws it
 * and syncs the copy; the loop then records the snapshot, or the clone
 * (daemon-create.c), on it.  Until the
 * child's answer the instance takes only the ops that look (daemon-ops.c):
 * a resume, a stop, a file push would change it under the copy.  The
 * store collects no layer while a job runs (daemon_collect_layers), and a
 * celld killed in the middle leaves a layer no record names, which the
 * next one collects, and an instance it thaws (daemon-startup.c). */

struct snapshot_copy {
  char *inst, *cgroup;
  char *what;     /* "snapshot NAME of `INST`", for its errors */
  char layer[65]; /* its name in the store's layers/ */
  struct frozen_copy fc;
  bool stopped;   /* not frozen for the copy, frozen in the loop after it */
  int upper;      /* the instance's writable layer */
  int disk;       /* a stopped one's disk: what its last freeze left goes */
  bool answered;  /* the child's result came: it thawed the instance */
  bool kept;      /* a record names the layer */
  snapshot_copied_fn *copied;
  void *ctx;
  void (*ctx_free)(void *);
};

static void snapshot_copy_free(void *p) {
  struct snapshot_copy *sc = p;
  free(sc->inst);
  free(sc->cgroup);
  free(sc->what);
  if (sc->upper >= 0)
    close(sc->upper);
  if (sc->disk >= 0)
    close(sc->disk);
  if (sc->ctx_free)
    sc->ctx_free(sc->ctx);
  free(sc);
}

/* In a child: the writable layer copied into layers/<layer> and synced,
 * the instance frozen for the copy (fc), or frozen already (fc NULL); on
 * failure nothing of it is left in the store. */
static int copy_into_new_layer(struct daemon *d, const char *layer, int upper,
                               const struct frozen_copy *fc, cell_error **err) {
  int layers = d->store->layersfd;
  if (mkdirat(layers, layer, 0755) < 0)
    return cell_fail_errno(err, "make a layer in the image store");
  cleanup_close int dst = -1;
  int rc = open_dir_at(layers, layer, &dst, err);
  if (rc == 0)
    rc = fc ? copy_while_frozen(fc, upper, dst, err)
            : instance_layer_copy(upper, dst, err);
  if (rc == 0)
    rc = daemon_sync_filesystems(&dst, (const char *[]){d->store->dir}, 1,
                                 err);
  cleanup_error cell_error *ignored = NULL;
  if (rc < 0)
    cell_rm_rf_at(layers, layer, &ignored);
  return rc;
}

int snapshot_copy_frozen(struct daemon *d, int upper, const char *layer,
                         cell_error **err) {
  return copy_into_new_layer(d, layer, upper, NULL, err);
}

int snapshot_copy_prepare(struct daemon *d, const struct instance *in,
                          char layer[65], int *upper, cell_error **err) {
  cleanup_free char *disk = NULL, *path = NULL;
  if (check_freezable(in->rec, err) < 0 || random_layer_name(layer, err) < 0 ||
      (disk = daemon_inst_disk_dir(d, in->rec, err)) == NULL)
    return -1;
  path = xasprintf("%s/upper", disk);
  return open_dir_at(AT_FDCWD, path, upper, err);
}

static void run_snapshot_copy(struct daemon *d, void *arg, int outfd) {
  struct snapshot_copy *sc = arg;
  int keep[] = {outfd, sc->upper, d->store->layersfd, sc->disk};
  image_child_setup(keep, sc->stopped ? 4 : 3);
  cell_error *err = NULL;
  if (sc->stopped) {
    daemon_test_pause("snapshot-copy");
    /* Best effort: garbage, which may be going already (the removal
     * child of the last freeze), and no reason to refuse this one. */
    cell_error *ignored = NULL;
    if (remove_old_uppers(sc->disk, &ignored) < 0)
      cell_error_free(&ignored);
  }
  int rc = copy_into_new_layer(d, sc->layer, sc->upper,
                               sc->stopped ? NULL : &sc->fc, &err);
  image_child_result(outfd, err);
  _exit(rc == 0 ? 0 : 1);
}

/* The copy, unless a record names it (it may be gone already). */
static void drop_unkept_layer(struct daemon *d, const struct snapshot_copy *sc) {
  cleanup_error cell_error *ignored = NULL;
  if (!sc->kept)
    cell_rm_rf_at(d->store->layersfd, sc->layer, &ignored);
}

static void snapshot_copy_result(struct daemon *d, struct image_job *j,
                                 const struct json_value *v) {
  struct snapshot_copy *sc = j->ctx;
  struct conn *c = daemon_find_conn(d, j->conn_id);
  struct instance *in = daemon_find_instance(d, sc->inst);
  const char *error = NULL;
  cell_error *err = NULL;
  sc->answered = true;
  if (in)
    in->hold = HOLD_NONE;
  if (!image_child_ok(v, &error))
    cell_fail(&err, 0, "%s", error ? error : "its copy failed");
  else if (!in)
    cell_fail(&err, 0, "the instance went");
  /* A stopped one goes on above the copy, frozen as a rename would have
   * made it: its record names the layer, the callback gets none. */
  if (!err && sc->stopped && freeze_stopped(d, in, sc->layer, true, &err) == 0)
    sc->kept = true;
  if (err) {
    cell_error_wrap(&err, "%s", sc->what);
    log_warn("%s", err->msg);
    if (c)
      conn_fail(d, c, API_FAILED, &err);
    cell_error_free(&err);
  } else if (sc->stopped) {
    sc->copied(d, c, in, NULL, sc->ctx);
  } else {
    cleanup_free char *layer = xasprintf("sha256:%s", sc->layer);
    sc->kept = sc->copied(d, c, in, layer, sc->ctx) == 0;
  }
  /* Before the next request of the client: it may look at the store. */
  drop_unkept_layer(d, sc);
}

/* Whatever became of the child: no copy left that no record names, and
 * the instance neither frozen nor held.  A child that answered thawed it
 * itself; one killed in its copy may have left it frozen.  (After an
 * answer the instance takes every op again: a pause asked since is its
 * owner's and stays.) */
static void snapshot_copy_end(struct daemon *d, struct image_job *j) {
  struct snapshot_copy *sc = j->ctx;
  drop_unkept_layer(d, sc);
  struct instance *in = daemon_find_instance(d, sc->inst);
  if (!in)
    return;
  in->hold = HOLD_NONE;
  if (sc->answered || sc->fc.paused || !running(in))
    return;
  struct cgroup *cg = NULL;
  cleanup_error cell_error *err = NULL;
  if (cgroup_open(sc->cgroup, &cg, &err) == 0)
    thaw_or_log(sc->inst, cg);
  cgroup_free(cg);
}

/* A stopped instance: its disk, and its own layers flattened first when
 * they are many (as snapshot_freeze does). */
static int prepare_stopped(struct daemon *d, struct instance *in, int *disk,
                           cell_error **err) {
  if (cell_strv_len(in->rec->own_layers) >= FLATTEN_DEPTH &&
      flatten_own_layers(d, in, err) < 0)
    return -1;
  cleanup_free char *path = daemon_inst_disk_dir(d, in->rec, err);
  return path ? open_dir_at(AT_FDCWD, path, disk, err) : -1;
}

void snapshot_copy_in_child(struct daemon *d, struct conn *c,
                            struct instance *in, enum instance_hold hold,
                            const char *what, snapshot_copied_fn *copied,
                            void *ctx, void (*ctx_free)(void *)) {
  cell_error *err = NULL;
  struct snapshot_copy *sc = xcalloc(1, sizeof(*sc));
  sc->inst = xstrdup(in->rec->name);
  sc->cgroup = xstrdup(in->rec->cgroup);
  sc->what = xstrdup(what);
  sc->fc = (struct frozen_copy){.name = sc->inst, .cgroup = sc->cgroup,
                                .paused = inst_is_paused(in)};
  sc->stopped = !running(in);
  sc->upper = sc->disk = -1;
  sc->copied = copied;
  sc->ctx = ctx;
  sc->ctx_free = ctx_free;
  if (daemon_image_jobs_full(d))
    cell_fail(&err, 0, "too many imports, exports, checkpoints and "
              "snapshots under way: try again when one has finished");
  int pipefd = -1;
  pid_t pid = -1;
  if (!err && sc->stopped)
    prepare_stopped(d, in, &sc->disk, &err);
  if (!err && snapshot_copy_prepare(d, in, sc->layer, &sc->upper, &err) == 0)
    pid = image_child_spawn(run_snapshot_copy, d, sc, &pipefd, &err);
  if (pid < 0) {
    snapshot_copy_free(sc);
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  in->hold = hold;
  struct image_job *j =
      image_job_new(c->cred.uid, what, sc, snapshot_copy_free);
  j->on_result = snapshot_copy_result;
  j->on_end = snapshot_copy_end;
  daemon_image_add_job(d, c, j, pid, pipefd);
}

/* A snapshot, its layer copied: recorded, answered.  (No layer: a stopped
 * instance's, frozen, among its own layers now.) */
static int snapshot_copied(struct daemon *d, struct conn *c,
                           struct instance *in, const char *layer, void *name) {
  record_snapshot(d, in, name, layer, layer != NULL);
  if (c)
    reply_snapshots(d, c, in->rec);
  return 0;
}

void op_snapshot(struct daemon *d, struct conn *c, struct instance *in,
                 const struct json_value *v) {
  cell_error *err = NULL;
  cleanup_free char *name = NULL;
  enum api_code code;
  if (snapshot_new_name(in->rec, request_str(v, "snapshot"), &name, &code,
                        &err) < 0) {
    conn_fail(d, c, code, &err);
    return;
  }
  if (running(in) || snapshot_stopped_copies(d, in)) {
    cleanup_free char *what =
        xasprintf("snapshot %s of `%s`", name, in->rec->name);
    snapshot_copy_in_child(d, c, in, HOLD_SNAPSHOT, what, snapshot_copied,
                           steal_pointer(&name), free);
    return;
  }
  if (snapshot_add(d, in, name, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  reply_snapshots(d, c, in->rec);
}

void op_snapshots(struct daemon *d, struct conn *c, struct instance *in,
                  const struct json_value *v) {
  reply_snapshots(d, c, in->rec);
}

static struct instance_snapshot *named_snap(struct daemon *d, struct conn *c,
                                            struct instance *in,
                                            const struct json_value *v) {
  const char *name = request_str(v, "snapshot");
  struct instance_snapshot *s = name ? find_snap(in->rec, name) : NULL;
  if (!name)
    conn_error(d, c, API_INVALID_REQUEST, "field `snapshot`: required");
  else if (!s)
    conn_error(d, c, API_NOT_FOUND, "no such snapshot (cellctl snapshots NAME)");
  return s;
}

struct instance_snapshot *snapshot_to_restore(struct daemon *d, struct conn *c,
                                              struct instance *in,
                                              const struct json_value *v) {
  if (request_str(v, "snapshot"))
    return named_snap(d, c, in, v);
  if (in->rec->n_snaps == 0) {
    conn_error(d, c, API_NOT_FOUND, "the instance has no snapshot (cellctl "
               "snapshot NAME, or cellctl checkpoint NAME)");
    return NULL;
  }
  /* The newest: the last one taken. */
  struct instance_snapshot *newest = &in->rec->snaps[0];
  for (size_t i = 1; i < in->rec->n_snaps; i++)
    if (strcmp(in->rec->snaps[i].created, newest->created) >= 0)
      newest = &in->rec->snaps[i];
  return newest;
}

/* The refusal of an op that needs the instance stopped. */
void snapshot_refuse_running(struct daemon *d, struct conn *c,
                             const struct instance *in) {
  cleanup_free char *msg = xasprintf(
      "instance `%s` is running: stop it first (cellctl stop %s)",
      in->rec->name, in->rec->name);
  conn_error(d, c, API_WRONG_STATE, msg);
}

int snapshot_restore_disk(struct daemon *d, struct instance *in,
                          struct instance_snapshot *s, cell_error **err) {
  /* Once begun, a restore is finished: by the next celld after a crash;
   * after an error, by its steps taken again at once (they start over
   * from wherever the error left them), or by a restore again. */
  struct intent it = {.op = INTENT_RESTORE, .name = in->rec->name,
                      .arg = s->name};
  if (intent_begin(d, &it, err) < 0)
    return -1;
  if (intent_apply_restore(d, in, s, err) < 0) {
    log_warn("%s: restore %s: %s (again)", in->rec->name, s->name, (*err)->msg);
    cell_error_free(err);
    if (intent_apply_restore(d, in, s, err) < 0)
      return cell_error_wrap(err, "restore `%s` (run it again to finish it)",
                             s->name);
  }
  intent_end(d, in->rec->name);
  daemon_collect_layers(d);
  log_info("%s: restored snapshot %s", in->rec->name, s->name);
  return 0;
}

void snapshot_restore_plain(struct daemon *d, struct conn *c,
                            struct instance *in, struct instance_snapshot *s) {
  if (running(in)) {
    snapshot_refuse_running(d, c, in);
    return;
  }
  cell_error *err = NULL;
  if (snapshot_restore_disk(d, in, s, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  conn_reply_instance(d, c, in);
}

void op_snapshot_rm(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v) {
  struct instance_snapshot *s = named_snap(d, c, in, v);
  if (!s)
    return;
  remove_images(d, in->rec->name, s->name);
  snapshot_drop(d, in, s->name);
  reply_snapshots(d, c, in->rec);
}

/* Outside the default pool the disk's directory there follows the name
 * (in the default pool it is inside the instance's directory): the
 * directory it is in, or NULL. */
static int pool_instances_dir(struct daemon *d, const struct instance_record *r,
                              char **out, cell_error **err) {
  *out = NULL;
  if (!r->pool || strcmp(r->pool, DAEMON_DEFAULT_POOL) == 0 || !r->image)
    return 0;
  const char *path = daemon_config_pool_path(d->cfg, r->pool);
  if (!path)
    return cell_fail(err, ENOENT, "instance `%s`: its pool `%s` is not in "
                     "celld.conf (pool.%s.path)", r->name, r->pool, r->pool);
  *out = xasprintf("%s/instances", path);
  return 0;
}

static int rename_pool_dir(const char *pool_dir, const char *from,
                           const char *to, cell_error **err) {
  if (!pool_dir)
    return 0;
  cleanup_free char *old = xasprintf("%s/%s", pool_dir, from);
  cleanup_free char *new = xasprintf("%s/%s", pool_dir, to);
  if (rename(old, new) < 0)
    return cell_fail_errno(err, "rename `%s`", old);
  return 0;
}

void op_rename(struct daemon *d, struct conn *c, struct instance *in,
               const struct json_value *v) {
  struct instance_record *r = in->rec;
  const char *to = request_str(v, "as");
  cell_error *err = NULL;
  if (!to || instance_check_name(to, &err) < 0) {
    if (!err)
      cell_fail(&err, 0, "field `as`: required, the new name");
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  if (daemon_find_instance(d, to)) {
    conn_error(d, c, c->root ? API_EXISTS : API_PERMISSION_DENIED,
               "that name is not available: choose another name");
    return;
  }
  if (running(in) || in->timerfd >= 0) {
    snapshot_refuse_running(d, c, in);
    return;
  }
  cleanup_free char *from_json = xasprintf("%s.json", r->name);
  cleanup_free char *pool_dir = NULL;
  /* The directory, its disk's in a pool, then the record under its new
   * name, written before the old one goes.  The intent says where a
   * crash may have left it: the next celld finishes the rename once the
   * new record is there, and undoes it otherwise. */
  if (pool_instances_dir(d, r, &pool_dir, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  struct intent it = {.op = INTENT_RENAME, .name = r->name, .arg = to,
                      .pool_dir = pool_dir};
  if (intent_begin(d, &it, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  if (renameat(d->instdirfd, r->name, d->instdirfd, to) < 0) {
    cell_fail_errno(&err, "rename `%s`", r->name);
    intent_end(d, r->name);
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  if (rename_pool_dir(pool_dir, r->name, to, &err) < 0) {
    renameat(d->instdirfd, to, d->instdirfd, r->name);
    intent_end(d, r->name);
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  cleanup_free char *old = steal_pointer(&r->name);
  cleanup_free char *old_cgroup = steal_pointer(&r->cgroup);
  r->name = xstrdup(to);
  r->cgroup = xasprintf("%s/%s", d->cfg->cgroup_parent, to);
  /* A host name that was the name follows it (its /etc/hostname and hosts
   * say so from its next start: inst_update_names); one chosen
   * (--hostname, set hostname=) stays. */
  cleanup_free char *old_hostname = NULL;
  if (strcmp(r->hostname, old) == 0) {
    old_hostname = steal_pointer(&r->hostname);
    r->hostname = xstrdup(to);
  }
  if (inst_save(d, in, &err) < 0) {
    renameat(d->instdirfd, to, d->instdirfd, old);
    cleanup_error cell_error *ignored = NULL;
    rename_pool_dir(pool_dir, to, old, &ignored);
    free(r->name);
    r->name = steal_pointer(&old);
    free(r->cgroup);
    r->cgroup = steal_pointer(&old_cgroup);
    if (old_hostname) {
      free(r->hostname);
      r->hostname = steal_pointer(&old_hostname);
    }
    intent_end(d, r->name);
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  /* An old record left would be loaded beside the new one: one that
   * cannot go keeps the intent, whose replay removes it. */
  if (unlinkat(d->instdirfd, from_json, 0) < 0 && errno != ENOENT &&
      unlinkat(d->instdirfd, from_json, 0) < 0 && errno != ENOENT)
    log_error("%s: remove its old record: %s (the next celld does)", to,
              strerror(errno));
  else
    intent_end(d, old);
  d->names_changed = true;
  log_info("%s: renamed %s", old, to);
  daemon_emit(d, in, "renamed");
  conn_reply_instance(d, c, in);
}
