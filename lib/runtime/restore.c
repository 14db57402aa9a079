/* `cell restore`: see restore.h. */
#include "runtime/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "cgroup/cgroup.h"
#include "oci/state.h"
#include "runtime/checkpoint.h"
#include "runtime/container.h"
#include "runtime/foreground.h"
#include "runtime/rootfs.h"

/* Everything restore holds; released (and on failure undone) by
 * restoring_cleanup. */
struct restoring {
  const struct restore_opts *o;
  char *criu;
  char *bundle;
  char *rootfs;
  char *config_text;
  size_t config_len;
  struct spec *spec;
  char *image;
  char *work;
  int imagefd, workfd; /* what criu is given (criu_dir_arg) */
  int rootfd;
  int dirfd;
  bool dir_made;
  struct cgroup *cg;
  pid_t init_pid;
  bool saved; /* the state is written: the container is the user's */
};

static void restoring_cleanup(struct restoring *r, bool failed) {
  cell_error *ignored = NULL;
  if (failed && r->cg)
    cgroup_destroy(r->cg, &ignored); /* kills what criu restored, if any */
  cell_error_free(&ignored);
  if (failed && r->dir_made)
    state_dir_remove(r->rootfd, r->o->id, &ignored);
  cell_error_free(&ignored);
  cgroup_free(r->cg);
  if (r->dirfd >= 0)
    close(r->dirfd);
  if (r->rootfd >= 0)
    close(r->rootfd);
  if (r->imagefd >= 0)
    close(r->imagefd);
  if (r->workfd >= 0)
    close(r->workfd);
  spec_free(r->spec);
  free(r->criu);
  free(r->bundle);
  free(r->rootfs);
  free(r->config_text);
  free(r->image);
  free(r->work);
}

static char *absolute(const char *path) {
  if (path[0] == '/')
    return xstrdup(path);
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == NULL)
    return xstrdup(path);
  return xasprintf("%s/%s", cwd, path);
}

static int load_bundle(struct restoring *r, cell_error **err) {
  const char *b = r->o->bundle ? r->o->bundle : ".";
  r->bundle = realpath(b, NULL);
  if (r->bundle == NULL)
    return cell_fail_errno(err, "bundle `%s`", b);
  cleanup_free char *path = xasprintf("%s/config.json", r->bundle);
  if (cell_read_file_at(AT_FDCWD, path, 0, &r->config_text, &r->config_len,
                        err) < 0)
    return cell_error_wrap(err, "config.json");
  if (spec_parse(r->config_text, r->config_len, &r->spec, err) < 0 ||
      spec_validate_for_create(r->spec, err) < 0 ||
      rootfs_bind_sources_in_bundle(r->spec, r->bundle, err) < 0)
    return cell_error_wrap(err, "config.json");
  if (r->spec->process->terminal && !r->o->terminal_given)
    return cell_fail(err, ENOTSUP,
                     "config.json: process.terminal: a container with a "
                     "terminal cannot be restored yet (criu would have to "
                     "hand its pty to --console-socket)");
  const char *root = r->spec->root->path;
  cleanup_free char *joined =
      root[0] == '/' ? xstrdup(root) : xasprintf("%s/%s", r->bundle, root);
  r->rootfs = realpath(joined, NULL);
  if (r->rootfs == NULL)
    return cell_fail_errno(err, "config.json: root.path: `%s`", joined);
  return 0;
}

static int find_image(struct restoring *r, cell_error **err) {
  const struct criu_opts *c = &r->o->criu;
  r->image = absolute(c->image_path ? c->image_path : "checkpoint");
  r->work = c->work_path ? absolute(c->work_path) : xstrdup(r->image);
  r->imagefd = open(r->image, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (r->imagefd < 0)
    return cell_fail(err, 0,
                     "--image-path `%s`: no checkpoint there (make one with "
                     "cell checkpoint --image-path DIR)",
                     r->image);
  if (c->work_path && cell_mkdir_p(r->work, 0700, err) < 0)
    return cell_error_wrap(err, "--work-path");
  r->workfd = c->work_path ? open(r->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                           : fcntl(r->imagefd, F_DUPFD_CLOEXEC, 3);
  if (r->workfd < 0)
    return cell_fail_errno(err, "--work-path `%s`", r->work);
  return 0;
}

/* Our fds 0-2 stand for the checkpointed process's pipes: criu gives the
 * restored process ours (--inherit-fd), as runc does. */
static int inherit_fd_args(int imagefd, char ***argv, cell_error **err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  cleanup_json struct json_value *v = NULL;
  if (cell_read_file_at(imagefd, CHECKPOINT_DESCRIPTORS, 65536, &text, &len,
                        err) < 0 ||
      json_parse(text, len, &v, err) < 0)
    return cell_error_wrap(err, "the checkpoint's " CHECKPOINT_DESCRIPTORS);
  if (v->type != JSON_ARRAY)
    return cell_fail(err, 0, "the checkpoint's " CHECKPOINT_DESCRIPTORS
                                  ": not an array");
  for (size_t i = 0; i < v->u.array.len && i < 3; i++) {
    const struct json_value *d = v->u.array.items[i];
    if (d->type != JSON_STRING || strncmp(d->u.string, "pipe:", 5) != 0)
      continue;
    cleanup_free char *map = xasprintf("fd[%zu]:%s", i, d->u.string);
    cell_strv_push(argv, "--inherit-fd");
    cell_strv_push(argv, map);
  }
  return 0;
}

static int restore_args(struct restoring *r, const char *pidfile, char ***argv,
                        cell_error **err) {
  const struct criu_opts *c = &r->o->criu;
  cleanup_free char *image = criu_dir_arg(r->imagefd);
  cleanup_free char *work = criu_dir_arg(r->workfd);
  criu_args_begin(c, "restore", image, work, argv);
  /* The root task becomes our child (sibling of criu), which exits once
   * it is restored. */
  const char *fixed[] = {"--root", r->rootfs, "--restore-detached",
                         "--restore-sibling", "--pidfile", pidfile, NULL};
  for (const char *const *a = fixed; *a; a++)
    cell_strv_push(argv, *a);
  /* Into this container's cgroup, whatever the checkpointed one's was. */
  if (!c->manage_cgroups_mode || strcmp(c->manage_cgroups_mode, "ignore") != 0) {
    cell_strv_push(argv, "--cgroup-root");
    cell_strv_push(argv, cgroup_path(r->cg));
  }
  criu_args_bind_mounts(r->spec, true, argv);
  for (char *const *a = r->o->extra_args; a && *a; a++)
    cell_strv_push(argv, *a);
  return inherit_fd_args(r->imagefd, argv, err);
}

static int read_pidfile(int workfd, const char *name, pid_t *pid,
                        cell_error **err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  long long n;
  if (cell_read_file_at(workfd, name, 64, &text, &len, err) < 0)
    return cell_error_wrap(err, "criu's pid file");
  text[strcspn(text, "\n")] = '\0';
  if (!cell_parse_ll(text, 1, INT32_MAX, &n))
    return cell_fail(err, 0, "criu's pid file `%s`: not a pid", name);
  *pid = (pid_t)n;
  return 0;
}

static int run_criu_restore(struct restoring *r, cell_error **err) {
  /* In the work directory, where criu runs. */
  const char *pidfile = "restore.pid";
  cleanup_free char *log = xasprintf("%s/restore.log", r->work);
  cleanup_strv char **argv = NULL;
  unlinkat(r->workfd, pidfile, 0);
  if (restore_args(r, pidfile, &argv, err) < 0)
    return -1;
  /* criu runs in the new cgroup, so that what it restores starts there. */
  struct cgroup_join join = {.n = 0};
  if (cgroup_join_open(r->cg, false, &join, err) < 0)
    return -1;
  /* criu's directories, then what the caller hands over (--inherit-fd). */
  size_t n_keep = 2 + r->o->n_inherit_fds;
  cleanup_free int *keep = xcalloc(n_keep, sizeof(*keep));
  keep[0] = r->imagefd;
  keep[1] = r->workfd;
  for (size_t i = 0; i < r->o->n_inherit_fds; i++)
    keep[2 + i] = r->o->inherit_fds[i];
  struct criu_exec x = {
      .argv = (const char *const *)argv,
      .log_path = log,
      .stdio = {0, 1, 2},
      .keep_fds = keep,
      .n_keep = n_keep,
      .join = &join,
  };
  int rc = criu_run(r->criu, &x, err);
  cgroup_join_close(&join);
  if (rc < 0) {
    char *msg = xasprintf("%s (log: %s)", (*err)->msg, log);
    free((*err)->msg);
    (*err)->msg = msg;
    return -1;
  }
  return read_pidfile(r->workfd, pidfile, &r->init_pid, err);
}

static int save_state(struct restoring *r, cell_error **err) {
  cleanup_free char *created = cell_rfc3339_now();
  struct cell_state st = {
      .id = (char *)r->o->id,
      .pid = r->init_pid,
      .start_time = cell_proc_start_time(r->init_pid),
      .bundle = r->bundle,
      .rootfs = r->rootfs,
      .created = created,
      .owner = "",
      .cgroup_path = (char *)cgroup_path(r->cg),
      .started = true,
      .annotations = r->spec->annotations,
      .n_annotations = r->spec->n_annotations,
  };
  if (st.start_time == 0)
    return cell_fail_errno(err, "the restored process %d", (int)r->init_pid);
  if (state_write(r->dirfd, &st, err) < 0)
    return -1;
  return cell_write_pid_file(r->o->pid_file, r->init_pid, err);
}

static int restore_container(struct restoring *r, cell_error **err) {
  const struct restore_opts *o = r->o;
  if (state_check_id(o->id, err) < 0 || criu_opts_check(&o->criu, err) < 0 ||
      criu_find(o->criu.criu, &r->criu, err) < 0 ||
      load_bundle(r, err) < 0 || find_image(r, err) < 0 ||
      criu_check_mount_destinations(r->rootfs, r->spec, "restore", err) < 0 ||
      state_root_open(o->root, &r->rootfd, err) < 0 ||
      criu_check_usable(r->criu, r->rootfd, "restore", err) < 0)
    return -1;
  if (state_dir_create(r->rootfd, o->id, &r->dirfd, err) < 0)
    return -1;
  r->dir_made = true;
  if (cgroup_create(r->spec, o->id, &r->cg, err) < 0 ||
      cell_write_file_atomic_at(r->dirfd, CELL_CONFIG_FILE, r->config_text,
                                r->config_len, 0600, err) < 0)
    return -1;
  if (run_criu_restore(r, err) < 0 || save_state(r, err) < 0)
    return -1;
  r->saved = true;
  return 0;
}

int container_restore(const struct restore_opts *o, int *exit_code,
                      cell_error **err) {
  struct restoring r = {
      .o = o, .rootfd = -1, .dirfd = -1, .imagefd = -1, .workfd = -1};
  /* Signals are taken through a signalfd before the process exists, so
   * that its exit is never missed. */
  struct foreground fg = {.sfd = -1, .master = -1};
  if (!o->detach && foreground_begin(&fg, err) < 0)
    return -1;
  int rc = restore_container(&r, err);
  *exit_code = 0;
  if (rc == 0 && !o->detach) {
    /* Let other commands at the container while we wait. */
    close(r.dirfd);
    r.dirfd = -1;
    rc = foreground_wait(&fg, r.init_pid, exit_code, err);
    if (rc == 0)
      rc = container_delete(o->root, o->id, true, err);
  }
  if (!o->detach)
    foreground_end(&fg);
  restoring_cleanup(&r, rc < 0 && !r.saved);
  return rc;
}
