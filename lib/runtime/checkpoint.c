/* `cell checkpoint`: see checkpoint.h. */
#include "runtime/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/procfs.h"
#include "base/util.h"
#include "cgroup/cgroup.h"
#include "runtime/container-open.h"
#include "runtime/container.h"

/* The image and work directories, absolute, and which of them we made
 * (to remove them again when the dump fails). */
struct dump_dirs {
  char *image;
  char *work;
  int imagefd, workfd; /* what criu is given (criu_dir_arg) */
  bool image_made;
};

static void dump_dirs_free(struct dump_dirs *d) {
  free(d->image);
  free(d->work);
  if (d->imagefd >= 0)
    close(d->imagefd);
  if (d->workfd >= 0)
    close(d->workfd);
}

static int open_dir(const char *path, cell_error **err) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open the directory `%s`", path);
  return fd;
}

static int make_dir(const char *path, bool *made, cell_error **err) {
  if (mkdir(path, 0700) == 0) {
    *made = true;
    return 0;
  }
  struct stat sb;
  if (errno == EEXIST && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return 0;
  return cell_fail_errno(err, "make the directory `%s`", path);
}

static char *absolute(const char *path) {
  if (path[0] == '/')
    return xstrdup(path);
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == NULL)
    return xstrdup(path);
  return xasprintf("%s/%s", cwd, path);
}

static int open_dump_dirs(const struct criu_opts *o, struct dump_dirs *d,
                          cell_error **err) {
  d->image = absolute(o->image_path ? o->image_path : "checkpoint");
  d->work = o->work_path ? absolute(o->work_path) : xstrdup(d->image);
  if (make_dir(d->image, &d->image_made, err) < 0 ||
      (d->imagefd = open_dir(d->image, err)) < 0)
    return cell_error_wrap(err, "--image-path");
  bool work_made = false;
  if (!o->work_path) {
    d->workfd = fcntl(d->imagefd, F_DUPFD_CLOEXEC, 3);
    return d->workfd < 0 ? cell_fail_errno(err, "dup") : 0;
  }
  if (make_dir(d->work, &work_made, err) < 0 ||
      (d->workfd = open_dir(d->work, err)) < 0)
    return cell_error_wrap(err, "--work-path");
  return 0;
}

/* Undo open_dump_dirs after a failed dump: the image directory if it made
 * it.  A work directory of the caller's choosing keeps criu's log. */
static void remove_made_image(const struct dump_dirs *d) {
  cell_error *e = NULL;
  if (d->image_made && cell_rm_rf_at(AT_FDCWD, d->image, &e) < 0) {
    log_warn("%s", e->msg);
    cell_error_free(&e);
  }
}

/* Where criu's log of a failed dump is, or how to keep it. */
static void note_log(const struct checkpoint_opts *o, const struct dump_dirs *d,
                     cell_error *e) {
  bool kept = o->criu.work_path || !d->image_made;
  char *msg = kept ? xasprintf("%s (log: %s/%s.log)", e->msg, d->work,
                               o->pre_dump ? "pre-dump" : "dump")
                   : xasprintf("%s (--work-path DIR keeps criu's log)", e->msg);
  free(e->msg);
  e->msg = msg;
}

/* descriptors.json: what fds 0-2 of the container process are. */
static int write_descriptors(pid_t pid, int imagefd, cell_error **err) {
  cleanup_close int procfs = procfs_open_root(err);
  if (procfs < 0)
    return -1;
  cleanup_close int fds = procfs_open_pid_file(
      procfs, pid, "fd", O_PATH | O_DIRECTORY | O_CLOEXEC, err);
  if (fds < 0)
    return -1;
  struct json_gen *g = json_gen_new(false);
  json_gen_array_open(g);
  for (int i = 0; i < 3; i++) {
    char name[12], target[PATH_MAX];
    snprintf(name, sizeof(name), "%d", i);
    ssize_t n = readlinkat(fds, name, target, sizeof(target) - 1);
    target[n < 0 ? 0 : n] = '\0';
    json_gen_string(g, n < 0 ? "/dev/null" : target);
  }
  json_gen_array_close(g);
  size_t len = 0;
  cleanup_free char *json = json_gen_finish(g, &len);
  json_gen_free(g);
  return cell_write_file_atomic_at(imagefd, CHECKPOINT_DESCRIPTORS, json, len,
                                   0600, err);
}

/* --page-server ADDRESS:PORT, the port after the last colon (IPv6).  With
 * lazy pages the dump itself serves the pages there (criu's --address and
 * --port alone), else it sends them to a page server (--page-server). */
static int page_server_args(const char *spec, bool serve, char ***argv,
                            cell_error **err) {
  const char *colon = strrchr(spec, ':');
  long long port;
  if (colon == NULL || colon == spec || !cell_parse_ll(colon + 1, 1, 65535, &port))
    return cell_fail(err, 0,
                     "--page-server `%s`: not ADDRESS:PORT (e.g. "
                     "192.168.0.2:27)",
                     spec);
  cleanup_free char *address = xstrndup(spec, (size_t)(colon - spec));
  if (!serve)
    cell_strv_push(argv, "--page-server");
  cell_strv_push(argv, "--address");
  cell_strv_push(argv, address);
  cell_strv_push(argv, "--port");
  cell_strv_push(argv, colon + 1);
  return 0;
}

static int dump_args(const struct checkpoint_opts *o, const struct dump_dirs *d,
                     const struct cell_state *st, const struct spec *s,
                     const char *freezer, char ***argv, cell_error **err) {
  cleanup_free char *image = criu_dir_arg(d->imagefd);
  cleanup_free char *work = criu_dir_arg(d->workfd);
  criu_args_begin(&o->criu, o->pre_dump ? "pre-dump" : "dump", image, work,
                  argv);
  cleanup_free char *pid = xasprintf("%d", (int)st->pid);
  const char *fixed[] = {"-t", pid, "--root", st->rootfs, NULL};
  for (const char *const *a = fixed; *a; a++)
    cell_strv_push(argv, *a);
  criu_args_bind_mounts(s, false, argv);
  if (freezer) {
    cell_strv_push(argv, "--freeze-cgroup");
    cell_strv_push(argv, freezer);
  }
  /* Memory changes are tracked from a pre-dump on, and a dump on top of one
   * copies only what changed since. */
  if (o->pre_dump || o->parent_path)
    cell_strv_push(argv, "--track-mem");
  if (o->parent_path) {
    cell_strv_push(argv, "--prev-images-dir");
    cell_strv_push(argv, o->parent_path);
  }
  if (o->leave_running && !o->pre_dump)
    cell_strv_push(argv, "--leave-running");
  if (o->status_fd >= 0) {
    cleanup_free char *fd = xasprintf("%d", o->status_fd);
    cell_strv_push(argv, "--status-fd");
    cell_strv_push(argv, fd);
  }
  if (o->page_server &&
      page_server_args(o->page_server, o->criu.lazy_pages, argv, err) < 0)
    return -1;
  return 0;
}

/* The container locked and open, ready to be dumped. */
struct dump_target {
  int rootfd, dirfd;
  struct cell_state *st;
  struct spec *spec;
  struct cgroup *cg;
  bool was_paused;
};

static void dump_target_close(struct dump_target *t) {
  if (t->dirfd >= 0)
    close(t->dirfd);
  if (t->rootfd >= 0)
    close(t->rootfd);
  cell_state_free(t->st);
  spec_free(t->spec);
  cgroup_free(t->cg);
}

static int open_target(const struct checkpoint_opts *o, const char *criu,
                       struct dump_target *t, cell_error **err) {
  if (container_open(o->root, o->id, &t->rootfd, &t->dirfd, &t->st, err) < 0)
    return -1;
  enum cell_status s = container_status(t->st);
  if (s != CELL_STATUS_RUNNING && s != CELL_STATUS_PAUSED)
    return cell_fail(err, 0,
                     "container `%s` cannot be checkpointed in %s state: "
                     "only a running or paused one can",
                     o->id, state_status_name(s));
  t->was_paused = s == CELL_STATUS_PAUSED;
  t->spec = container_stored_spec(t->dirfd, err);
  if (t->spec == NULL)
    return -1;
  /* Its pty's master is the console socket's receiver's, outside what
   * criu dumps; runc hands a new one over through criu's RPC
   * (orphan_pts_master), which criu's command line does not offer. */
  if (t->spec->process && t->spec->process->terminal)
    return cell_fail(err, ENOTSUP,
                     "container `%s` has a terminal (process.terminal): criu "
                     "run as a program cannot give a restored pty to "
                     "--console-socket; checkpoint a container whose stdio "
                     "are pipes or /dev/null",
                     o->id);
  if (criu_check_usable(criu, t->rootfd, "checkpoint", err) < 0)
    return -1;
  t->cg = container_cgroup(t->st);
  if (t->cg == NULL)
    return cell_fail(err, 0, "container `%s` has no cgroup", o->id);
  return 0;
}

static void thaw(const struct cgroup *cg) {
  cell_error *e = NULL;
  if (cgroup_freeze(cg, false, &e) < 0) {
    log_warn("%s", e->msg);
    cell_error_free(&e);
  }
}

/* Frozen by us first: criu finds it frozen and does not poll the freezer
 * in 100 ms steps as it does when it freezes it itself. */
static int dump(const struct checkpoint_opts *o, const char *criu,
                struct dump_target *t, const struct dump_dirs *d,
                cell_error **err) {
  cleanup_free char *freezer = cgroup_freezer_dir(t->cg);
  cleanup_strv char **argv = NULL;
  if (dump_args(o, d, t->st, t->spec, freezer, &argv, err) < 0 ||
      write_descriptors(t->st->pid, d->imagefd, err) < 0)
    return -1;
  if (freezer && !t->was_paused && cgroup_freeze(t->cg, true, err) < 0)
    return -1;
  cleanup_free char *log =
      xasprintf("%s/%s.log", d->work, o->pre_dump ? "pre-dump" : "dump");
  int keep[3] = {d->imagefd, d->workfd, o->status_fd};
  struct criu_exec x = {
      .argv = (const char *const *)argv,
      .log_path = log,
      .stdio = {-1, -1, -1},
      .keep_fds = keep,
      .n_keep = o->status_fd >= 0 ? 3 : 2,
  };
  int r = criu_run(criu, &x, err);
  bool still_running = r < 0 || o->leave_running || o->pre_dump;
  if (freezer && !t->was_paused && still_running)
    thaw(t->cg);
  return r;
}

int container_checkpoint(const struct checkpoint_opts *o, cell_error **err) {
  cleanup_free char *criu = NULL;
  if (state_check_id(o->id, err) < 0 || criu_opts_check(&o->criu, err) < 0 ||
      criu_find(o->criu.criu, &criu, err) < 0)
    return -1;
  if (o->pre_dump && o->criu.lazy_pages)
    return cell_fail(err, 0,
                     "--pre-dump and --lazy-pages: choose one (a pre-dump "
                     "copies memory ahead, lazy pages copy it after)");
  cleanup_strv char **checked = NULL;
  if (o->page_server &&
      page_server_args(o->page_server, false, &checked, err) < 0)
    return -1;
  struct dump_target t = {.rootfd = -1, .dirfd = -1};
  struct dump_dirs d = {.imagefd = -1, .workfd = -1};
  int r = open_target(o, criu, &t, err);
  if (r == 0)
    r = open_dump_dirs(&o->criu, &d, err);
  if (r == 0 && dump(o, criu, &t, &d, err) < 0) {
    r = -1;
    note_log(o, &d, *err);
  }
  if (r < 0)
    remove_made_image(&d);
  dump_dirs_free(&d);
  dump_target_close(&t);
  /* The processes are in the image and gone: so goes the container, as
   * after runc's checkpoint. */
  if (r == 0 && !o->leave_running && !o->pre_dump)
    r = container_delete(o->root, o->id, true, err);
  return r;
}
