/* Stateful snapshots: see daemon-checkpoint.h.
 *
 * A checkpoint is three steps.  A child process asks whether criu can work
 * here (runtime/criu.h: its verdict is kept per boot), freezes the
 * instance's cgroup itself (criu then does not poll the freezer in 100 ms
 * steps), and has criu dump the processes into checkpoints/.tmp-SNAP,
 * leaving them frozen (or, with stop, killed).  The loop, on the child's
 * result, copies the writable layer as a snapshot does, while the cgroup
 * is still frozen: memory and disk are of the same instant.  Then the
 * images are renamed to checkpoints/SNAP, the snapshot is recorded, and
 * the instance thaws.  Any failure thaws it and removes the images. */
#include "daemon/daemon-checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "base/libexec.h"
#include "base/log.h"
#include "base/util.h"
#include "cgroup/cgroup.h"
#include "daemon/criu-action.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-console.h"
#include "daemon/daemon-image.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-lxcfs.h"
#include "daemon/daemon-net.h"
#include "daemon/daemon-oom.h"
#include "daemon/daemon-runtime.h"
#include "daemon/instance-rootfs.h"
#include "daemon/instance-spec.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/daemon-snapshot.h"
#include "oci/spec.h"
#include "runtime/checkpoint.h"
#include "runtime/criu.h"
#include "runtime/restore.h"

static void rm_rf_or_log(const char *path) {
  cleanup_error cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, path, &err) < 0)
    log_warn("%s", err->msg);
}

/* How criu locks the instance's TCP connections while it dumps and
 * restores them: nftables, through its library, in criu itself; the
 * default (iptables) runs iptables-restore twice (IPv4, IPv6) at each
 * lock and unlock, programs started while the instance is frozen. */
#define NETWORK_LOCK "--network-lock=nftables"

/* In a checkpoint's images: the device nodes bound into the instance and
 * their host sources, "PATH SOURCE" a line (device_args). */
#define EXTERNAL_DEVICES "celld-devices"
/* ... and criu's key of the init's terminal, "tty[RDEV:DEV]". */
#define CONSOLE_KEY "celld-console"

/* ---- the child ---------------------------------------------------------- */

/* What every child does first: die with celld, hold only its fds. */
static void child_setup(int outfd, int also) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int keep[] = {outfd, also};
  cell_close_fds_from(3, keep, also >= 0 ? 2 : 1);
  cell_reset_signals();
  signal(SIGPIPE, SIG_IGN);
}

/* frozen_at: when it froze the cgroup (CLOCK_MONOTONIC, the loop's
 * clock too), for the frozen time the client is told. */
static void child_result(int fd, const cell_error *err, uint64_t frozen_at) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", err == NULL);
  if (err)
    json_gen_kv_string(g, "error", err->msg);
  json_gen_key(g, "frozen_at_ms");
  json_gen_uint(g, frozen_at);
  json_gen_object_close(g);
  json_gen_write_line(g, fd);
}

/* criu, found, and usable on this kernel: else the runtime's one line. */
int checkpoint_usable_criu(const char *runroot, const char *action,
                           char **criu, cell_error **err) {
  if (criu_find(NULL, criu, err) < 0)
    return cell_error_wrap(err, "%s", action);
  cleanup_close int rootfd =
      open(runroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return cell_fail_errno(err, "open `%s`", runroot);
  return criu_check_usable(*criu, rootfd, action, err);
}

struct dump_work {
  char *runroot;
  char *inst_dir; /* <state>/instances/<name> */
  char *images;   /* <inst_dir>/checkpoints/.tmp-<snap> */
  char *cgroup;
  char *parent; /* a migration's last pre-dump round, relative to images */
  pid_t pid;
  bool stop;
  uint64_t frozen_at_ms; /* the child's */
  /* The store's new layer, a copy of the writable layer (upper) the
   * child makes while the dump holds the instance frozen; "" when there
   * is none (with stop, the loop freezes the stopped one's by a rename). */
  char layer[65];
  int upper;
};

static void dump_work_free(void *p) {
  struct dump_work *w = p;
  free(w->runroot);
  free(w->inst_dir);
  free(w->images);
  free(w->cgroup);
  free(w->parent);
  if (w->layer[0] && w->upper >= 0)
    close(w->upper);
  free(w);
}

/* The init's terminal is the console keeper's pty: outside the instance,
 * so criu records it as external, by its device numbers, as LXC does; the
 * key goes to CONSOLE_KEY for the restore, which gives a new pty for it.
 * Its stdio is that terminal, no pipe: descriptors.json (the runtime's
 * restore reads it) says so. */
static int console_args(const struct dump_work *w, char ***argv,
                        cell_error **err) {
  static const char no_pipes[] = "[\"/dev/null\",\"/dev/null\",\"/dev/null\"]";
  cleanup_free char *desc = xasprintf("%s/" CHECKPOINT_DESCRIPTORS, w->images);
  if (cell_write_file_atomic_at(AT_FDCWD, desc, no_pipes, strlen(no_pipes),
                                0600, err) < 0)
    return -1;
  cleanup_free char *fd0 = xasprintf("/proc/%d/fd/0", (int)w->pid);
  struct stat sb;
  if (stat(fd0, &sb) < 0 || !S_ISCHR(sb.st_mode))
    return 0;
  cleanup_free char *tty = xasprintf(
      "tty[%llx:%llx]", (unsigned long long)sb.st_rdev,
      (unsigned long long)sb.st_dev);
  cell_strv_push(argv, "--external");
  cell_strv_push(argv, tty);
  cleanup_free char *key = xasprintf("%s/" CONSOLE_KEY, w->images);
  return cell_write_file_atomic_at(AT_FDCWD, key, tty, strlen(tty), 0600, err);
}

/* "\040" and the like in a mountinfo path, decoded in place. */
static void unescape_octal(char *s) {
  char *out = s;
  for (char *in = s; *in; out++) {
    if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' &&
        in[2] <= '7' && in[3] >= '0' && in[3] <= '7') {
      *out = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
      in += 4;
    } else {
      *out = *in++;
    }
  }
  *out = '\0';
}

/* Where a device node bound into the instance comes from on the host:
 * /dev/null for a masked file, the same path for a device of the config
 * (/dev/tty, /dev/zero, ...), "console" for its terminal (celld gives a
 * new one at restore); NULL when the host has no such node there. */
static const char *device_source(const char *path, const struct stat *sb) {
  if (strcmp(path, "/dev/console") == 0)
    return "console";
  if (sb->st_rdev == makedev(1, 3))
    return "/dev/null";
  struct stat host;
  if (stat(path, &host) == 0 && S_ISCHR(host.st_mode) &&
      host.st_rdev == sb->st_rdev)
    return path;
  return NULL;
}

/* The device nodes bound into it (its devices, its masked files bound
 * from /dev/null, /dev/console) are mounts whose root criu cannot find
 * inside: external, by their path, and bound again from the host at
 * restore.  Their sources go to EXTERNAL_DEVICES, "PATH SOURCE" a line. */
static int device_args(const struct dump_work *w, char ***argv,
                       cell_error **err) {
  cleanup_free char *path = xasprintf("/proc/%d/mountinfo", (int)w->pid);
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (cell_read_file_at(AT_FDCWD, path, 0, &text, &len, err) < 0)
    return -1;
  cleanup_free char *list = xstrdup("");
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char mnt[4096];
    /* id parent major:minor root mountpoint ... */
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
      continue;
    unescape_octal(mnt);
    cleanup_free char *inside = xasprintf("/proc/%d/root%s", (int)w->pid, mnt);
    struct stat sb;
    const char *source = NULL;
    if (mnt[0] != '/' || strchr(mnt, ' ') || lstat(inside, &sb) < 0 ||
        !S_ISCHR(sb.st_mode) || !(source = device_source(mnt, &sb)))
      continue;
    cleanup_free char *map = xasprintf("%s:%s", mnt, mnt);
    cell_strv_push(argv, "--ext-mount-map");
    cell_strv_push(argv, map);
    char *more = xasprintf("%s%s %s\n", list, mnt, source);
    free(list);
    list = more;
  }
  cleanup_free char *out = xasprintf("%s/" EXTERNAL_DEVICES, w->images);
  return cell_write_file_atomic_at(AT_FDCWD, out, list, strlen(list), 0600,
                                   err);
}

/* The host directories bound into it (config.json's binds) are external
 * mounts, by their destination; so are its device nodes. */
static int bind_args(const struct dump_work *w, char ***argv, cell_error **err) {
  cleanup_free char *path = xasprintf("%s/config.json", w->inst_dir);
  cleanup_free char *text = NULL;
  size_t len = 0;
  cleanup_spec struct spec *s = NULL;
  if (cell_read_file_at(AT_FDCWD, path, 0, &text, &len, err) < 0 ||
      spec_parse(text, len, &s, err) < 0)
    return cell_error_wrap(err, "the instance's config.json");
  criu_args_bind_mounts(s, false, argv);
  return device_args(w, argv, err);
}

/* The kernel tracks what the processes write from a pre-dump on; with a
 * parent (the round before, relative to the images) criu writes only the
 * pages written since, and links the images to it ("parent"). */
static void track_mem_args(const char *parent, char ***argv) {
  cell_strv_push(argv, "--track-mem");
  if (!parent)
    return;
  cell_strv_push(argv, "--prev-images-dir");
  cell_strv_push(argv, parent);
}

/* The restore follows criu's link to the round before: it must be the one
 * criu was given, which stays inside the images' directory. */
static int check_parent_link(const char *images, const char *parent,
                             cell_error **err) {
  char got[PATH_MAX];
  cleanup_free char *link = xasprintf("%s/parent", images);
  ssize_t n = readlink(link, got, sizeof(got) - 1);
  if (n < 0)
    return cell_fail_errno(err, "criu left no link `%s`", link);
  got[n] = '\0';
  if (strcmp(got, parent) != 0)
    return cell_fail(err, 0, "criu's link `%s` leads to `%s`, not `%s`", link,
                     got, parent);
  return 0;
}

/* The tree criu takes (the init's), and the cgroup it freezes when we
 * have not frozen it ourselves. */
static void target_args(const struct dump_work *w, const char *freezer,
                        char ***argv) {
  cleanup_free char *pid = xasprintf("%d", (int)w->pid);
  cell_strv_push(argv, "-t");
  cell_strv_push(argv, pid);
  if (freezer) {
    cell_strv_push(argv, "--freeze-cgroup");
    cell_strv_push(argv, freezer);
  }
}

static int dump_args(const struct dump_work *w, const char *freezer,
                     char ***argv, cell_error **err) {
  /* Established TCP stays (a client's connection survives a restore).
   * The network namespace is left out (its interfaces, addresses and
   * routes are the instance's record, which celld makes again at the
   * restore): criu would dump it with ip and iptables-save, each run
   * while the instance is frozen. */
  char *empty_net[] = {"network", NULL};
  struct criu_opts o = {.tcp_established = true,
                        .file_locks = true,
                        .manage_cgroups_mode = "soft",
                        .empty_ns = empty_net};
  criu_args_begin(&o, "dump", w->images, w->images, argv);
  target_args(w, freezer, argv);
  if (!w->stop)
    cell_strv_push(argv, "--leave-running");
  if (w->parent)
    track_mem_args(w->parent, argv);
  cell_strv_push(argv, NETWORK_LOCK);
  if (console_args(w, argv, err) < 0)
    return -1;
  return bind_args(w, argv, err);
}

static int make_images_dir(const struct dump_work *w, cell_error **err) {
  cleanup_free char *parent = xasprintf("%s/checkpoints", w->inst_dir);
  if (mkdir(parent, 0700) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", parent);
  /* What a killed checkpoint of the same name left. */
  cleanup_error cell_error *ignored = NULL;
  cell_rm_rf_at(AT_FDCWD, w->images, &ignored);
  if (mkdir(w->images, 0700) < 0)
    return cell_fail_errno(err, "mkdir `%s`", w->images);
  return 0;
}

/* criu, run on an instance with its lock (inst_dir/criu.lock) held: criu
 * and the child that runs it share the one open file.  A celld killed
 * meanwhile takes the child with it, not criu, which must not die with
 * its parasite code in the instance's processes: it dumps on, and at its
 * end leaves the cgroup frozen, as it found it.  The next celld sees the
 * lock still held and thaws nothing before that criu is gone
 * (daemon-startup.c). */
static int criu_run_locked(const char *inst_dir, const char *criu,
                           struct criu_exec *x, cell_error **err) {
  cleanup_free char *path = xasprintf("%s/" CHECKPOINT_CRIU_LOCK, inst_dir);
  cleanup_close int fd =
      open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0)
    return cell_fail_errno(err, "`%s`: a criu an earlier celld started "
                           "still works on the instance: try again when "
                           "it is done", path);
  x->keep_fds = &fd;
  x->n_keep = 1;
  return criu_run(criu, x, err);
}

/* Frozen first, then dumped; left frozen for the copy of its disk when
 * the dump worked (thawed by the loop), thawed when it did not. */
static int dump_frozen(struct dump_work *w, const char *criu,
                       cell_error **err) {
  struct cgroup *cg = NULL;
  if (cgroup_open(w->cgroup, &cg, err) < 0)
    return -1;
  cleanup_free char *freezer = cgroup_freezer_dir(cg);
  cleanup_strv char **argv = NULL;
  int rc = dump_args(w, freezer, &argv, err);
  w->frozen_at_ms = daemon_now_ms();
  if (rc == 0)
    rc = cgroup_freeze(cg, true, err);
  if (rc == 0) {
    cleanup_free char *log = xasprintf("%s/dump.log", w->images);
    struct criu_exec x = {.argv = (const char *const *)argv,
                          .log_path = log,
                          .stdio = {-1, -1, -1}};
    rc = criu_run_locked(w->inst_dir, criu, &x, err);
    if (rc == 0 && w->parent)
      rc = check_parent_link(w->images, w->parent, err);
    if (rc < 0) {
      cell_error *ignored = NULL;
      cgroup_freeze(cg, false, &ignored);
      cell_error_free(&ignored);
      /* Kept where the user can read it: the images go. */
      cleanup_free char *kept = xasprintf("%s/checkpoints/dump-failed.log", w->inst_dir);
      rename(log, kept);
      cell_error_wrap(err, "checkpoint (criu's log: %s)", kept);
    }
  }
  cgroup_free(cg);
  return rc;
}

static void run_dump(struct daemon *d, void *arg, int outfd) {
  struct dump_work *w = arg;
  int keep[] = {outfd, w->upper, d->store->layersfd};
  image_child_setup(keep, w->layer[0] ? 3 : 1);
  cell_error *err = NULL;
  cleanup_free char *criu = NULL;
  int rc = checkpoint_usable_criu(w->runroot, "checkpoint", &criu, &err);
  if (rc == 0)
    rc = make_images_dir(w, &err);
  if (rc == 0)
    rc = dump_frozen(w, criu, &err);
  if (rc == 0)
    daemon_test_pause("checkpoint-dumped");
  /* Still frozen by the dump: the disk as the images have it. */
  if (rc == 0 && w->layer[0])
    rc = snapshot_copy_frozen(d, w->upper, w->layer, &err);
  if (rc < 0)
    rm_rf_or_log(w->images);
  child_result(outfd, err, w->frozen_at_ms);
  _exit(rc == 0 ? 0 : 1);
}

int checkpoint_images_new(const char *inst_dir, const char *images,
                          cell_error **err) {
  struct dump_work w = {.inst_dir = (char *)inst_dir, .images = (char *)images};
  return make_images_dir(&w, err);
}

/* criu pre-dump with its own freeze of the cgroup, which it thaws once
 * it has the pages (it writes them out while the processes run). */
static void pre_dump_args(const struct dump_work *w, const char *freezer,
                          char ***argv) {
  struct criu_opts o = {.manage_cgroups_mode = "soft"};
  criu_args_begin(&o, "pre-dump", w->images, w->images, argv);
  target_args(w, freezer, argv);
  track_mem_args(w->parent, argv);
}

int checkpoint_pre_dump(const char *runroot, const char *inst_dir,
                        const char *images, const char *parent,
                        const char *cgroup, pid_t pid, cell_error **err) {
  struct dump_work w = {.inst_dir = (char *)inst_dir,
                        .images = (char *)images,
                        .parent = (char *)parent,
                        .pid = pid};
  cleanup_free char *criu = NULL;
  struct cgroup *cg = NULL;
  if (checkpoint_usable_criu(runroot, "migrate", &criu, err) < 0 ||
      cgroup_open(cgroup, &cg, err) < 0)
    return -1;
  cleanup_free char *freezer = cgroup_freezer_dir(cg);
  cgroup_free(cg);
  cleanup_strv char **argv = NULL;
  pre_dump_args(&w, freezer, &argv);
  if (mkdir(images, 0700) < 0)
    return cell_fail_errno(err, "mkdir `%s`", images);
  cleanup_free char *log = xasprintf("%s/pre-dump.log", images);
  struct criu_exec x = {.argv = (const char *const *)argv,
                        .log_path = log,
                        .stdio = {-1, -1, -1}};
  int rc = criu_run_locked(inst_dir, criu, &x, err);
  if (rc == 0 && parent)
    rc = check_parent_link(images, parent, err);
  if (rc < 0) {
    cleanup_free char *kept =
        xasprintf("%s/checkpoints/pre-dump-failed.log", inst_dir);
    rename(log, kept);
    cell_error_wrap(err, "pre-copy (criu's log: %s)", kept);
  }
  return rc;
}

int checkpoint_dump_frozen(const char *runroot, const char *inst_dir,
                           const char *images, const char *parent,
                           const char *cgroup, pid_t pid,
                           uint64_t *frozen_at_ms, cell_error **err) {
  struct dump_work w = {.runroot = (char *)runroot,
                        .inst_dir = (char *)inst_dir,
                        .images = (char *)images,
                        .cgroup = (char *)cgroup,
                        .parent = (char *)parent,
                        .pid = pid};
  cleanup_free char *criu = NULL;
  if (checkpoint_usable_criu(runroot, "migrate", &criu, err) < 0)
    return -1;
  int rc = dump_frozen(&w, criu, err);
  *frozen_at_ms = w.frozen_at_ms;
  return rc;
}

/* ---- the loop ----------------------------------------------------------- */

struct checkpoint_job {
  struct dump_work *w;
  char *name, *snap;
  bool stop;
  bool made; /* the snapshot is recorded */
};

static void checkpoint_job_free(void *p) {
  struct checkpoint_job *cj = p;
  dump_work_free(cj->w);
  free(cj->name);
  free(cj->snap);
  free(cj);
}

static void thaw_unless_paused(struct instance *in) {
  if (in->pidfd < 0 || inst_is_paused(in))
    return;
  struct cgroup *cg = NULL;
  cleanup_error cell_error *err = NULL;
  if (cgroup_open(in->rec->cgroup, &cg, &err) < 0 ||
      cgroup_freeze(cg, false, &err) < 0)
    log_error("%s: thaw after its checkpoint: %s", in->rec->name, err->msg);
  cgroup_free(cg);
}

/* The dump is done and the instance frozen (or gone, with stop): the
 * images in place, then its disk's layer frozen (*layer: the copy of a
 * running one's, else NULL).  The record comes after the thaw
 * (record_checkpoint).  A celld killed between the two leaves images no
 * snapshot names, which the next one removes (daemon-startup.c), never a
 * snapshot recorded without its images: that one would be taken for a
 * plain snapshot. */
static int finish_checkpoint(struct daemon *d, struct instance *in,
                             struct checkpoint_job *cj, char **layer,
                             cell_error **err) {
  cleanup_free char *final = snapshot_images_dir(d, cj->name, cj->snap);
  if (rename(cj->w->images, final) < 0)
    return cell_fail_errno(err, "rename `%s`", cj->w->images);
  daemon_test_pause("checkpoint");
  if (cj->w->layer[0]) {
    *layer = xasprintf("sha256:%s", cj->w->layer);
    return 0;
  }
  if (snapshot_freeze(d, in, true, layer, err) < 0) {
    rm_rf_or_log(final);
    return -1;
  }
  return 0;
}

/* The snapshot recorded once its layer and images are on disk; on failure
 * neither stays. */
static int record_checkpoint(struct daemon *d, struct instance *in,
                             const struct checkpoint_job *cj,
                             const char *layer, cell_error **err) {
  /* The child's copy is the snapshot's alone, whatever became of the
   * instance since; else snapshot_freeze copied a running one's. */
  bool copied = cj->w->layer[0] != '\0' || in->pidfd >= 0;
  if (snapshot_record(d, in, cj->snap, layer, copied, err) == 0)
    return 0;
  cleanup_free char *final = snapshot_images_dir(d, cj->name, cj->snap);
  rm_rf_or_log(final);
  daemon_collect_layers(d);
  return -1;
}

static void reply_checkpoint(struct daemon *d, struct conn *c,
                             const struct checkpoint_job *cj, uint64_t ms) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_kv_string(g, "name", cj->name);
  json_gen_kv_string(g, "snapshot", cj->snap);
  json_gen_kv_bool(g, "stopped", cj->stop);
  json_gen_kv_int(g, "frozen_ms", (int64_t)ms);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

static void checkpoint_result(struct daemon *d, struct image_job *j,
                              const struct json_value *v) {
  struct checkpoint_job *cj = j->ctx;
  struct conn *c = daemon_find_conn(d, j->conn_id);
  struct instance *in = daemon_find_instance(d, cj->name);
  const char *error = NULL;
  cell_error *err = NULL;
  if (!image_child_ok(v, &error)) {
    log_warn("%s: checkpoint failed: %s", cj->name, error ? error : "?");
    if (c)
      conn_error(d, c, API_FAILED, error ? error : "checkpoint failed");
    return;
  }
  cleanup_free char *layer = NULL;
  int rc = in ? finish_checkpoint(d, in, cj, &layer, &err)
              : cell_fail(&err, 0, "instance `%s` went during its checkpoint",
                          cj->name);
  uint64_t frozen_at = daemon_now_ms();
  const struct json_value *at = json_object_get(v, "frozen_at_ms");
  if (at)
    json_get_uint64(at, &frozen_at);
  uint64_t frozen = daemon_now_ms() - frozen_at;
  if (in)
    thaw_unless_paused(in);
  if (rc == 0)
    rc = record_checkpoint(d, in, cj, layer, &err);
  if (rc < 0) {
    rm_rf_or_log(cj->w->images);
    log_warn("%s: checkpoint failed: %s", cj->name, err->msg);
    if (c)
      conn_fail(d, c, API_FAILED, &err);
    cell_error_free(&err);
    return;
  }
  cj->made = true;
  log_info("%s: checkpoint %s%s, frozen %llu ms", cj->name, cj->snap,
           cj->stop ? ", stopped" : "", (unsigned long long)frozen);
  if (c)
    reply_checkpoint(d, c, cj, frozen);
}

/* Whatever became of the child: the instance is not left frozen, nor
 * held, and no half images stay. */
static void checkpoint_end(struct daemon *d, struct image_job *j) {
  struct checkpoint_job *cj = j->ctx;
  struct instance *in = daemon_find_instance(d, cj->name);
  rm_rf_or_log(cj->w->images);
  /* (The store collects nothing while a job runs.) */
  cleanup_error cell_error *ignored = NULL;
  if (!cj->made && cj->w->layer[0])
    cell_rm_rf_at(d->store->layersfd, cj->w->layer, &ignored);
  if (!in)
    return;
  in->hold = HOLD_NONE;
  if (cj->made && cj->stop)
    return;
  /* Not stopped after all: its exit would be a failure again. */
  in->stopping = false;
  thaw_unless_paused(in);
}

static const struct json_value *json_true_or_null(const struct json_value *v,
                                                  const char *key) {
  const struct json_value *b = json_object_get(v, key);
  return b && b->type == JSON_BOOL && b->u.boolean ? b : NULL;
}

static struct dump_work *new_dump_work(struct daemon *d, struct instance *in,
                                       const char *snap, bool stop) {
  struct dump_work *w = xcalloc(1, sizeof(*w));
  w->runroot = xstrdup(d->runroot);
  w->inst_dir = daemon_inst_dir(d, in->rec->name);
  w->images = xasprintf("%s/checkpoints/.tmp-%s", w->inst_dir, snap);
  w->cgroup = xstrdup(in->rec->cgroup);
  w->pid = in->pid;
  w->stop = stop;
  w->upper = -1;
  return w;
}

/* Whether lxcfs's files are bound into the instance whose init is pid:
 * mounts of a FUSE filesystem, which criu cannot dump. */
static bool uses_lxcfs(pid_t pid) {
  cleanup_free char *path = xasprintf("/proc/%d/mountinfo", (int)pid);
  cleanup_free char *text = NULL;
  size_t len = 0;
  cleanup_error cell_error *ignored = NULL;
  if (cell_read_file_at(AT_FDCWD, path, 0, &text, &len, &ignored) < 0)
    return false;
  /* "... - fuse.lxcfs lxcfs rw,..." */
  return strstr(text, " - fuse.lxcfs ") != NULL;
}

int checkpoint_refuse_lxcfs(const struct instance *in, const char *action,
                            cell_error **err) {
  if (in->pid <= 0 || !uses_lxcfs(in->pid))
    return 0;
  return cell_fail(err, 0, "%s `%s`: its /proc is lxcfs's, which criu "
                   "cannot dump (lxcfs = off in celld.conf, then restart "
                   "the instance)", action, in->rec->name);
}

void op_checkpoint(struct daemon *d, struct conn *c, struct instance *in,
                   const struct json_value *v) {
  const char *name = in->rec->name;
  cell_error *err = NULL;
  if (in->pidfd < 0) {
    cell_fail(&err, 0, "instance `%s` is not running: a checkpoint saves a "
              "running one's processes (cellctl snapshot %s saves a stopped "
              "one's disk)", name, name);
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  if (checkpoint_refuse_lxcfs(in, "checkpoint", &err) < 0) {
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  if (in->exports > 0) {
    cell_fail(&err, 0, "instance `%s` is being exported: try again when "
              "that is done", name);
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  if (daemon_image_jobs_full(d)) {
    conn_error(d, c, API_FAILED, "too many imports, exports and checkpoints "
               "under way: try again when one has finished");
    return;
  }
  cleanup_free char *snap = NULL;
  enum api_code code = API_INVALID_REQUEST;
  if (snapshot_new_name(in->rec, request_str(v, "snapshot"), &snap, &code,
                        &err) < 0) {
    conn_fail(d, c, code, &err);
    return;
  }
  struct checkpoint_job *cj = xcalloc(1, sizeof(*cj));
  cj->name = xstrdup(name);
  cj->snap = xstrdup(snap);
  cj->stop = json_true_or_null(v, "stop") != NULL;
  cj->w = new_dump_work(d, in, snap, cj->stop);
  int pipefd = -1;
  pid_t pid = -1;
  /* The dump's child copies the writable layer while criu holds the
   * instance frozen; with stop, only where the loop could not rename it
   * into the store once the instance is gone (it would copy it there). */
  bool copy = !cj->stop || snapshot_layer_crosses(d, in);
  if (!copy ||
      snapshot_copy_prepare(d, in, cj->w->layer, &cj->w->upper, &err) == 0)
    pid = image_child_spawn(run_dump, d, cj->w, &pipefd, &err);
  if (pid < 0) {
    checkpoint_job_free(cj);
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  /* With stop its init dies by criu's hand: an exit asked for, no
   * restart. */
  if (cj->stop)
    in->stopping = true;
  in->hold = HOLD_CHECKPOINT;
  cleanup_free char *what = xasprintf("checkpoint %s of `%s`", snap, name);
  struct image_job *j =
      image_job_new(c->cred.uid, what, cj, checkpoint_job_free);
  j->on_result = checkpoint_result;
  j->on_end = checkpoint_end;
  daemon_image_add_job(d, c, j, pid, pipefd);
}

/* ---- restore ------------------------------------------------------------ */

/* A new pty for the restored init's terminal: the master for the keeper,
 * the slave (owned by the instance's root) for criu to give the init. */
static int open_console(const struct instance *in, int *master, int *slave,
                        char **slave_path, cell_error **err) {
  *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*master < 0)
    return cell_fail_errno(err, "open /dev/ptmx");
  char name[64];
  if (grantpt(*master) < 0 || unlockpt(*master) < 0 ||
      ptsname_r(*master, name, sizeof(name)) != 0)
    return cell_fail_errno(err, "a pty for the console");
  *slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*slave < 0)
    return cell_fail_errno(err, "open `%s`", name);
  if (fchown(*slave, in->rec->id_start, in->rec->id_start) < 0)
    return cell_fail_errno(err, "chown `%s`", name);
  *slave_path = xstrdup(name);
  return 0;
}

/* criu's flags for the device nodes and the terminal the dump recorded
 * (device_args, console_args). */
static int external_args(const char *images, int slave, const char *slave_path,
                         char ***argv, cell_error **err) {
  cleanup_free char *path = xasprintf("%s/" EXTERNAL_DEVICES, images);
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (cell_read_file_at(AT_FDCWD, path, 1 << 20, &text, &len, err) < 0)
    return cell_error_wrap(err, "the checkpoint");
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char *sp = strchr(line, ' ');
    if (!sp)
      continue;
    *sp = '\0';
    const char *source = strcmp(sp + 1, "console") == 0 ? slave_path : sp + 1;
    cleanup_free char *map = xasprintf("%s:%s", line, source);
    cell_strv_push(argv, "--ext-mount-map");
    cell_strv_push(argv, map);
  }
  cleanup_free char *key_path = xasprintf("%s/" CONSOLE_KEY, images);
  cleanup_free char *key = NULL;
  cleanup_error cell_error *none = NULL;
  if (cell_read_file_at(AT_FDCWD, key_path, 256, &key, &len, &none) < 0)
    return 0; /* it had no terminal */
  cleanup_free char *inherit = xasprintf("fd[%d]:%s", slave, key);
  cell_strv_push(argv, "--inherit-fd");
  cell_strv_push(argv, inherit);
  return 0;
}

/* The directory fd (taken) and its entries, and with depth those of its
 * subdirectories, never through a link. */
static int chown_dir(int fd, uid_t id, int depth) {
  DIR *dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return -1;
  }
  int rc = fchown(fd, id, id);
  for (struct dirent *e; rc == 0 && (e = readdir(dir));) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    rc = fchownat(fd, e->d_name, id, id, AT_SYMLINK_NOFOLLOW);
    if (rc < 0 || depth == 0 || e->d_type != DT_DIR)
      continue;
    int sub = openat(fd, e->d_name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    rc = sub < 0 ? -1 : chown_dir(sub, id, depth - 1);
  }
  closedir(dir);
  return rc;
}

/* criu reads some images from inside the instance's user namespace, as
 * its root: the images are given to that root (they are its own memory),
 * and the directories above them let it through (0711).  A migration's
 * pre-copy rounds are directories beside its images, their parents.
 *
 * The images directory itself is 0711 while given, not 0700: criu's root
 * task looks up its first image (timens-0.img, absent unless a time
 * namespace was dumped) right after its clone into the new user
 * namespace, racing criu's write of that namespace's id maps.  Before the
 * maps, the task is still host root with no rights over a directory owned
 * by the instance's root, and a 0700 one would answer EACCES, not ENOENT.
 * Its entries are 0600: the names can be looked up, never the memory. */
static int chown_images(const char *images, uid_t id, mode_t mode,
                        cell_error **err) {
  cleanup_close int fd =
      open(images, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fchmod(fd, mode) < 0 || chown_dir(steal_fd(&fd), id, 1) < 0)
    return cell_fail_errno(err, "chown `%s`", images);
  return 0;
}

/* The same race with an image that is there: a migration's images hold
 * the time namespace's (timens-0.img, its clocks' offsets and nothing
 * else), which the root task opens before the maps too.  Readable by
 * all (0644) while given, as nothing else is; 0600 again after. */
static int timens_images_mode(const char *images, mode_t mode,
                              cell_error **err) {
  DIR *dir = opendir(images);
  if (!dir)
    return cell_fail_errno(err, "open `%s`", images);
  int rc = 0;
  for (struct dirent *e; rc == 0 && (e = readdir(dir));) {
    if (strncmp(e->d_name, "timens-", 7) != 0)
      continue;
    /* Never through a link (the instance's root owned the directory):
     * the file itself, whatever d_type the file system gives. */
    cleanup_close int fd = openat(dirfd(dir), e->d_name,
                                  O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
                                      O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 ||
        (S_ISREG(st.st_mode) && fchmod(fd, mode) < 0))
      rc = cell_fail_errno(err, "chmod `%s/%s`", images, e->d_name);
  }
  closedir(dir);
  return rc;
}

/* Back to root once criu is done: images an instance could write would
 * be what criu, as host root, restores next time. */
static void take_back_images(const char *images) {
  cleanup_error cell_error *err = NULL;
  if (chown_images(images, 0, 0700, &err) < 0 ||
      timens_images_mode(images, 0600, &err) < 0)
    log_warn("%s", err->msg);
}

static int give_images(const struct instance *in, const char *images,
                       cell_error **err) {
  uid_t id = in->rec->id_start;
  cleanup_free char *parent = xasprintf("%s/..", images);
  if (chmod(parent, 0711) < 0)
    return cell_fail_errno(err, "chmod `%s`", parent);
  if (chown_images(images, id, 0711, err) < 0)
    return -1;
  return timens_images_mode(images, 0644, err);
}

/* The instance's root mounted and its config written, as a start does. */
static int prepare_root(struct daemon *d, struct instance *in, const char *dir,
                        cell_error **err) {
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
  free(in->proc_view);
  in->proc_view = lxcfs_proc_view(d);
  cleanup_free char *spec =
      instance_spec_json(in->rec, rootfs, lxcfs_dir_for_start(d), err);
  cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!spec || dirfd < 0)
    return spec ? cell_fail_errno(err, "open `%s`", dir) : -1;
  if (inst_mount_root(d, in, err) < 0 ||
      instance_rootfs_keep_root_only(dir, err) < 0)
    return -1;
  /* Made again from the record at every start and restore: no fsync,
   * which would count in the frozen time. */
  return cell_replace_file_at(dirfd, "config.json", spec, strlen(spec), 0600,
                              err);
}

/* ---- the network of a restored instance ------------------------------- *
 *
 * criu restores the instance into a new, empty network namespace (its
 * dump left it out), owned by the instance's user namespace as a start's
 * is.  At post-setup-namespaces, when the namespaces exist and before
 * any socket is restored, criu runs its action script
 * (cmd/celld-criu-action): it hands the new init's pid to a thread of the
 * restore's child through one fifo and waits for its answer on another,
 * while the thread makes the instance's NICs as a start does.  Its TCP
 * sockets then come back on its address.  Not at setup-namespaces: criu
 * locks the new namespace's network (iptables) only between the two, and
 * a peer's retransmission that reached the address before the lock, with
 * no socket yet to take it, would be answered with a reset.
 * (criu 3.17 cannot restore into a namespace made beforehand and given
 * as external: its restored tasks, in their new user namespace, may not
 * join one that namespace does not own.) */

struct net_hook {
  const struct daemon *d;
  const struct instance_record *rec;
  char *request, *answer; /* the fifos' paths */
  int wake;               /* the request fifo, read-write: never blocks */
  cell_error *err;        /* the thread's, when it failed */
  pthread_t thread;
  bool running;
  bool ports_down; /* a held restore's: nothing reaches it yet */
};

/* The pid of the restored init, from the script; 0: criu ended first
 * (net_hook_stop wrote 0).  wake keeps a writer on the fifo: this open
 * does not block, the read waits for a line. */
static pid_t net_hook_pid(const struct net_hook *h) {
  int fd = open(h->request, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char buf[32];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  long long pid = 0;
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  return cell_parse_ll(buf, 1, INT32_MAX, &pid) ? (pid_t)pid : 0;
}

static void *net_hook_run(void *arg) {
  struct net_hook *h = arg;
  pid_t pid = net_hook_pid(h);
  if (pid == 0)
    return NULL;
  cleanup_free char *ns = xasprintf("/proc/%d/ns/net", (int)pid);
  int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0)
    cell_fail_errno(&h->err, "open `%s`", ns);
  else if (daemon_net_attach_restored(h->d, h->rec, nsfd, &h->err) == 0 &&
           h->ports_down)
    daemon_net_ports_set_up(h->rec, false);
  if (nsfd >= 0)
    close(nsfd);
  const char *answer = h->err ? "failed\n" : "ok\n";
  int fd = open(h->answer, O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    cell_write_all(fd, answer, strlen(answer));
    close(fd);
  }
  return NULL;
}

/* criu's action script: a link, in the restore's work directory, to
 * celld-criu-action, which finds the fifos beside the path criu runs it
 * by.  A static program, not a shell script: criu runs it at each of the
 * restore's steps, most of them while the instance is frozen. */
static int link_action_script(const char *path, cell_error **err) {
  cleanup_free char *helper = cell_libexec_path("celld-criu-action");
  if (access(helper, X_OK) < 0)
    return cell_fail_errno(err, "`%s`, criu's action script at a restore: "
                           "reinstall cell (make install)", helper);
  unlink(path);
  if (symlink(helper, path) < 0)
    return cell_fail_errno(err, "link `%s` to `%s`", path, helper);
  return 0;
}

/* The fifos, the script and the thread that waits on them; criu's flag
 * pushed to args. */
static int net_hook_start(struct net_hook *h, const char *work, char ***args,
                          cell_error **err) {
  h->request = xasprintf("%s/" CRIU_ACTION_REQUEST, work);
  h->answer = xasprintf("%s/" CRIU_ACTION_ANSWER, work);
  cleanup_free char *script = xasprintf("%s/" CRIU_ACTION_SCRIPT, work);
  unlink(h->request);
  unlink(h->answer);
  if (mkfifo(h->request, 0600) < 0 || mkfifo(h->answer, 0600) < 0)
    return cell_fail_errno(err, "mkfifo in `%s`", work);
  h->wake = open(h->request, O_RDWR | O_CLOEXEC);
  if (h->wake < 0)
    return cell_fail_errno(err, "open `%s`", h->request);
  if (link_action_script(script, err) < 0)
    return -1;
  int rc = pthread_create(&h->thread, NULL, net_hook_run, h);
  if (rc != 0) {
    errno = rc;
    return cell_fail_errno(err, "a thread for the restored network");
  }
  h->running = true;
  cell_strv_push(args, "--action-script");
  cell_strv_push(args, script);
  return 0;
}

/* criu is done: the thread is let go wherever it waits.  A pid of 0 ends
 * its wait for the script's line; a reader on the answer fifo, held until
 * it is gone, its open to answer a script that went. */
static void net_hook_stop(struct net_hook *h) {
  if (h->running) {
    cell_write_all(h->wake, "0\n", 2);
    int fd = open(h->answer, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    pthread_join(h->thread, NULL);
    if (fd >= 0)
      close(fd);
  }
  if (h->wake >= 0)
    close(h->wake);
  if (h->request)
    unlink(h->request);
  if (h->answer)
    unlink(h->answer);
  free(h->request);
  free(h->answer);
}

/* In the restore's child: criu, through the runtime, with the runtime's
 * stdio as a start has it.  The restored init is the child's child, and
 * celld's (its subreaper) once the child is gone. */
static int runtime_restore(const char *runroot, const char *name,
                           const char *dir, const char *images,
                           char **args, int slave, struct net_hook *net,
                           cell_error **err) {
  cleanup_free char *work = xasprintf("%s/restore-work", dir);
  if (cell_mkdir_p(work, 0700, err) < 0)
    return -1;
  cleanup_strv char **all = NULL;
  for (char **a = args; a && *a; a++)
    cell_strv_push(&all, *a);
  cell_strv_push(&all, NETWORK_LOCK);
  if (net_hook_start(net, work, &all, err) < 0) {
    net_hook_stop(net);
    return -1;
  }
  char *empty_net[] = {"network", NULL};
  int keep[1] = {slave};
  struct restore_opts o = {
      .root = runroot,
      .id = name,
      .bundle = dir,
      .detach = true,
      .criu = {.image_path = images,
               .work_path = work,
               .tcp_established = true,
               .file_locks = true,
               .manage_cgroups_mode = "soft",
               .empty_ns = empty_net},
      .extra_args = all,
      .inherit_fds = keep,
      .n_inherit_fds = slave >= 0 ? 1 : 0,
      .terminal_given = true,
  };
  int saved[3] = {-1, -1, -1};
  if (daemon_swap_stdio(dir, saved, err) < 0)
    return -1;
  int exit_code = 0;
  int rc = container_restore(&o, &exit_code, err);
  daemon_restore_stdio(saved);
  net_hook_stop(net);
  /* What went wrong with the network says more than criu's "action
   * script failed". */
  if (rc < 0 && net->err) {
    cell_error_free(err);
    *err = steal_pointer(&net->err);
    cell_error_wrap(err, "the restored instance's network");
  }
  cell_error_free(&net->err);
  return rc;
}

/* The restored init watched as a started one is. */
static int adopt_restored(struct daemon *d, struct instance *in,
                          cell_error **err) {
  pid_t pid;
  if (daemon_runtime_pid(d, in->rec->name, &pid, err) < 0)
    return -1;
  int pidfd = cell_pidfd_open(pid);
  if (pidfd < 0)
    return cell_fail_errno(err, "pidfd_open %d", (int)pid);
  in->pid = pid;
  in->pidfd = pidfd;
  in->child = daemon_parent_of(pid) == getpid();
  daemon_watch(d, pidfd, TAG_PIDFD, EPOLLIN);
  in->stopping = false;
  in->after = AFTER_NOTHING;
  oom_watch(d, in);
  inst_set_state(in, "running");
  return inst_save(d, in, err);
}

struct restore_job {
  struct daemon *d; /* read by the child (its copy) */
  char *name, *snap;
  char *runroot, *dir, *images;
  char **args;
  int master, slave;
  bool adopted;
  bool handed; /* to hold.restored, which holds the instance now */
  bool destroy_on_failure; /* a migrated instance: nothing left of it */
  struct restore_hold hold; /* a migrated instance's, until the commit */
};

static void restore_job_free(void *p) {
  struct restore_job *rj = p;
  free(rj->name);
  free(rj->snap);
  free(rj->runroot);
  free(rj->dir);
  free(rj->images);
  cell_strv_free(rj->args);
  if (rj->hold.ctx_free)
    rj->hold.ctx_free(rj->hold.ctx);
  if (rj->master >= 0)
    close(rj->master);
  if (rj->slave >= 0)
    close(rj->slave);
  free(rj);
}

/* What the loop made ready for criu, undone (a failed restore). */
static void restore_undo(struct daemon *d, struct restore_job *rj) {
  daemon_runtime_delete(d, rj->name);
  struct instance *in = daemon_find_instance(d, rj->name);
  if (in && in->pidfd < 0)
    daemon_net_detach(d, in->rec, true);
  daemon_rootfs_umount(d, rj->name);
}

/* Its root mounted, a console, its networks ready, criu's flags: all
 * that the child's criu needs. */
static int restore_prepare(struct daemon *d, struct instance *in,
                           struct restore_job *rj, cell_error **err) {
  cleanup_free char *slave_path = NULL;
  inst_disarm_timer(d, in);
  daemon_runtime_delete(d, rj->name);
  if (prepare_root(d, in, rj->dir, err) < 0 ||
      give_images(in, rj->images, err) < 0 ||
      open_console(in, &rj->master, &rj->slave, &slave_path, err) < 0)
    return -1;
  if (external_args(rj->images, rj->slave, slave_path, &rj->args, err) < 0)
    return -1;
  return daemon_net_prepare_restore(d, in->rec, err);
}

/* A held restore's processes frozen the moment criu lets them go: they
 * ran for that moment only, their host ports down, on their own disk. */
static int freeze_restored(const struct instance *in, cell_error **err) {
  struct cgroup *cg = NULL;
  int rc = cgroup_open(in->rec->cgroup, &cg, err);
  if (rc == 0)
    rc = cgroup_freeze(cg, true, err);
  cgroup_free(cg);
  return rc < 0 ? cell_error_wrap(err, "freeze the restored instance") : 0;
}

static void run_restore(struct daemon *d, void *arg, int outfd) {
  struct restore_job *rj = arg;
  child_setup(outfd, rj->slave);
  cell_error *err = NULL;
  struct instance *in = daemon_find_instance(rj->d, rj->name);
  bool held = rj->hold.restored != NULL;
  struct net_hook net = {.d = rj->d,
                         .rec = in ? in->rec : NULL,
                         .wake = -1,
                         .ports_down = held};
  int rc = !in ? cell_fail(&err, 0, "instance `%s` went", rj->name)
               : runtime_restore(rj->runroot, rj->name, rj->dir, rj->images,
                                 rj->args, rj->slave, &net, &err);
  /* Failed, the loop kills what criu restored (restore_undo). */
  if (rc == 0 && held)
    rc = freeze_restored(in, &err);
  child_result(outfd, err, 0);
  _exit(rc == 0 ? 0 : 1);
}

static void restore_result(struct daemon *d, struct image_job *j,
                           const struct json_value *v) {
  struct restore_job *rj = j->ctx;
  struct conn *c = daemon_find_conn(d, j->conn_id);
  struct instance *in = daemon_find_instance(d, rj->name);
  const char *error = NULL;
  cell_error *err = NULL;
  if (!image_child_ok(v, &error))
    cell_fail(&err, 0, "restore `%s`: %s", rj->name,
              error ? error : "its process failed");
  else if (!in)
    cell_fail(&err, 0, "instance `%s` went during its restore", rj->name);
  else if (adopt_restored(d, in, &err) == 0)
    rj->adopted = true;
  if (!rj->adopted) {
    log_warn("%s: restore %s: %s", rj->name, rj->snap, err->msg);
    if (c)
      conn_fail(d, c, API_FAILED, &err);
    cell_error_free(&err);
    return;
  }
  daemon_rootfs_umount(d, rj->name);
  if (daemon_console_give(d, in, rj->master, &err) < 0) {
    log_warn("%s: no console: %s", rj->name, err->msg);
    cell_error_free(&err);
  }
  log_info("%s: restored with its processes from %s%s", rj->name, rj->snap,
           rj->hold.restored ? ", frozen until the source commits" : "");
  if (rj->hold.restored) {
    void *ctx = steal_pointer(&rj->hold.ctx);
    rj->hold.ctx_free = NULL;
    rj->handed = true;
    rj->hold.restored(d, c, in, ctx);
  } else if (c) {
    conn_reply_instance(d, c, in);
  }
}

/* A migrated instance's images served their one restore: no snapshot of
 * the instance names them. */
static void drop_migrated_images(const struct restore_job *rj) {
  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, rj->images, &err) < 0) {
    log_warn("%s: remove its migrated images: %s", rj->name, err->msg);
    cell_error_free(&err);
  }
}

static void restore_end(struct daemon *d, struct image_job *j) {
  struct restore_job *rj = j->ctx;
  take_back_images(rj->images);
  if (rj->adopted && rj->destroy_on_failure)
    drop_migrated_images(rj);
  struct instance *in = daemon_find_instance(d, rj->name);
  if (in && !rj->handed)
    in->hold = HOLD_NONE;
  if (!rj->adopted)
    restore_undo(d, rj);
  if (!rj->adopted && rj->destroy_on_failure && in) {
    in->after = AFTER_NOTHING;
    inst_finish_destroy(d, in);
  }
}

/* The disk is the snapshot's: the processes next, in a child. */
static void restore_processes(struct daemon *d, struct conn *c,
                              struct instance *in, const char *snap,
                              bool destroy_on_failure,
                              struct restore_hold *hold) {
  cell_error *err = NULL;
  struct restore_job *rj = xcalloc(1, sizeof(*rj));
  rj->name = xstrdup(in->rec->name);
  rj->snap = xstrdup(snap);
  rj->runroot = xstrdup(d->runroot);
  rj->dir = daemon_inst_dir(d, rj->name);
  rj->images = snapshot_images_dir(d, rj->name, snap);
  rj->d = d;
  rj->master = rj->slave = -1;
  rj->destroy_on_failure = destroy_on_failure;
  if (hold)
    rj->hold = *hold;
  int pipefd = -1;
  pid_t pid = -1;
  if (restore_prepare(d, in, rj, &err) == 0)
    pid = image_child_spawn(run_restore, d, rj, &pipefd, &err);
  if (pid < 0) {
    restore_undo(d, rj);
    take_back_images(rj->images);
    restore_job_free(rj);
    cell_error_wrap(&err, "restore `%s`", in->rec->name);
    conn_fail(d, c, API_FAILED, &err);
    if (destroy_on_failure)
      inst_finish_destroy(d, in);
    return;
  }
  /* The child has its own copy. */
  close(rj->slave);
  rj->slave = -1;
  in->hold = destroy_on_failure ? HOLD_MIGRATE_IN : HOLD_RESTORE;
  cleanup_free char *what = xasprintf("restore of `%s` from %s", rj->name,
                                      destroy_on_failure ? "its migration"
                                                         : snap);
  struct image_job *j =
      image_job_new(c->cred.uid, what, rj, restore_job_free);
  j->on_result = restore_result;
  j->on_end = restore_end;
  daemon_image_add_job(d, c, j, pid, pipefd);
}

struct check_job {
  char *name, *snap;
};

static void check_job_free(void *p) {
  struct check_job *cj = p;
  free(cj->name);
  free(cj->snap);
  free(cj);
}

/* The child of a restore: is criu usable here?  Nothing is touched
 * before it says so. */
static void run_restore_check(struct daemon *d, void *arg, int outfd) {
  struct dump_work *w = arg;
  child_setup(outfd, -1);
  cell_error *err = NULL;
  cleanup_free char *criu = NULL;
  int rc = checkpoint_usable_criu(w->runroot, "restore", &criu, &err);
  child_result(outfd, err, 0);
  _exit(rc == 0 ? 0 : 1);
}

static void restore_checked(struct daemon *d, struct image_job *j,
                            const struct json_value *v) {
  struct check_job *ck = j->ctx;
  struct conn *c = daemon_find_conn(d, j->conn_id);
  struct instance *in = daemon_find_instance(d, ck->name);
  const char *error = NULL;
  cell_error *err = NULL;
  if (!image_child_ok(v, &error)) {
    if (c)
      conn_error(d, c, API_FAILED, error ? error : "restore failed");
    return;
  }
  struct instance_snapshot *s = NULL;
  for (size_t i = 0; in && i < in->rec->n_snaps; i++)
    if (strcmp(in->rec->snaps[i].name, ck->snap) == 0)
      s = &in->rec->snaps[i];
  if (!c)
    return; /* nobody waits: nothing is touched */
  if (!s || in->pidfd >= 0 || in->hold != HOLD_NONE) {
    conn_error(d, c, API_WRONG_STATE, "the instance or its snapshot changed "
               "while criu was asked: try again");
    return;
  }
  if (snapshot_restore_disk(d, in, s, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  restore_processes(d, c, in, ck->snap, false, NULL);
}

void checkpoint_restore_migrated(struct daemon *d, struct conn *c,
                                 struct instance *in, const char *snap,
                                 struct restore_hold *hold) {
  restore_processes(d, c, in, snap, true, hold);
}

void checkpoint_restore(struct daemon *d, struct conn *c, struct instance *in,
                        const char *snap) {
  cell_error *err = NULL;
  if (daemon_image_jobs_full(d)) {
    conn_error(d, c, API_FAILED, "too many imports, exports and checkpoints "
               "under way: try again when one has finished");
    return;
  }
  struct dump_work w = {.runroot = d->runroot};
  int pipefd = -1;
  pid_t pid = image_child_spawn(run_restore_check, d, &w, &pipefd, &err);
  if (pid < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  struct check_job *ck = xcalloc(1, sizeof(*ck));
  ck->name = xstrdup(in->rec->name);
  ck->snap = xstrdup(snap);
  cleanup_free char *what =
      xasprintf("restore of `%s` from %s", in->rec->name, snap);
  struct image_job *j = image_job_new(c->cred.uid, what, ck, check_job_free);
  j->on_result = restore_checked;
  daemon_image_add_job(d, c, j, pid, pipefd);
}

void op_restore(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v) {
  struct instance_snapshot *s = snapshot_to_restore(d, c, in, v);
  if (!s)
    return;
  if (!snapshot_is_stateful(d, in->rec->name, s->name)) {
    snapshot_restore_plain(d, c, in, s);
    return;
  }
  if (in->pidfd >= 0) {
    snapshot_refuse_running(d, c, in);
    return;
  }
  checkpoint_restore(d, c, in, s->name);
}
