/* The cgroup interface: a container's cgroup made, opened, joined,
 * frozen, signalled and removed, in every hierarchy of the host.  What
 * a controller's files mean is the business of the two backends, reached
 * through their tables (cgroup_ops_v1, cgroup_ops_v2) with the directory
 * cgroup-dirs.c picks for each controller; the spec's resources are
 * cgroup-resources.c's, the statistics cgroup-stats.c's.  The split keeps
 * each file to one concern and every include pointing down: interface ->
 * resources, stats -> dirs -> backends -> common. */
#include "cgroup/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/procfs.h"
#include "base/util.h"
#include "cgroup/cgroup-common.h"
#include "cgroup/cgroup-dirs.h"
#include "cgroup/cgroup-v1.h"
#include "cgroup/cgroup-v2.h"

/* ---- building a struct cgroup -------------------------------------------- */

void cgroup_free(struct cgroup *cg) {
  if (cg == NULL)
    return;
  for (size_t i = 0; i < cg->n_v1; i++) {
    free(cg->v1[i].controllers);
    free(cg->v1[i].mount);
    free(cg->v1[i].path);
    if (cg->v1[i].fd >= 0)
      close(cg->v1[i].fd);
  }
  free(cg->v1);
  free(cg->path);
  free(cg->encoded);
  free(cg->v2_mount);
  free(cg->v2_path);
  if (cg->v2_fd >= 0)
    close(cg->v2_fd);
  free(cg);
}

static void cgroup_freep(struct cgroup **cg) { cgroup_free(*cg); }
#define cleanup_cgroup __attribute__((cleanup(cgroup_freep)))

static int plan_cgroup(const char *cgroups_path, const char *id,
                       struct cgroup **out, cell_error **err) {
  enum cgroup_layout layout;
  if (cgroup_detect(&layout, err) < 0)
    return -1;
  cleanup_free char *given = NULL;
  if (cgroups_path && *cgroups_path)
    given = xstrdup(cgroups_path);
  else
    given = xasprintf("/cell/%s", id);
  cleanup_free char *clean = NULL;
  if (cgroup_dirs_clean_path(given, &clean, err) < 0)
    return -1;
  bool absolute = given[0] == '/';
  if (absolute && strcmp(clean, "/") == 0)
    return cell_fail(err, EINVAL, "linux.cgroupsPath: `%s` is the root cgroup",
                     given);
  if (!absolute && strcmp(clean, "/") == 0)
    return cell_fail(err, EINVAL, "linux.cgroupsPath: `%s` names no cgroup",
                     given);
  cleanup_cgroup struct cgroup *cg = cgroup_dirs_new(layout);
  if (cgroup_dirs_resolve(cg, absolute ? clean : NULL, absolute ? NULL : clean,
                          err) < 0)
    return -1;
  *out = steal_pointer(&cg);
  return 0;
}

/* The cgroup's directory in one hierarchy: -1 when it does not exist,
 * -1 with *err when it could not be opened (a cgroup that is there but
 * unseen would outlive its destroy). */
static int open_dir(const char *mount, const char *path, cell_error **err) {
  cleanup_free char *full = xasprintf("%s%s", mount, path);
  int fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT)
    return cell_fail_errno(err, "open cgroup `%s`", full);
  return fd;
}

int cgroup_open(const char *path, struct cgroup **out, cell_error **err) {
  enum cgroup_layout layout;
  if (cgroup_detect(&layout, err) < 0)
    return -1;
  cleanup_strv char **parts = cgroup_dirs_decode(path);
  if (parts[0][0] != '/')
    return cell_fail(err, EINVAL, "invalid cgroup path `%s`", path);
  cleanup_cgroup struct cgroup *cg = cgroup_dirs_new(layout);
  if (cgroup_dirs_resolve(cg, parts[0], NULL, err) < 0)
    return -1;
  /* The hierarchies whose path differs from the main one. */
  for (size_t i = 1; parts[i]; i++) {
    char *colon = strchr(parts[i], ':');
    if (colon == NULL || colon[1] != '/')
      return cell_fail(err, EINVAL, "invalid cgroup path `%s`", path);
    *colon = '\0';
    for (size_t h = 0; h < cg->n_v1; h++) {
      if (strcmp(cg->v1[h].controllers, parts[i]) == 0) {
        free(cg->v1[h].path);
        cg->v1[h].path = xstrdup(colon + 1);
      }
    }
  }
  free(cg->encoded);
  cg->encoded = cgroup_dirs_encode(cg);
  cell_error *e = NULL;
  for (size_t h = 0; h < cg->n_v1 && e == NULL; h++)
    cg->v1[h].fd = open_dir(cg->v1[h].mount, cg->v1[h].path, &e);
  if (cg->v2_mount && e == NULL)
    cg->v2_fd = open_dir(cg->v2_mount, cg->v2_path, &e);
  if (e) {
    *err = e;
    return -1;
  }
  *out = steal_pointer(&cg);
  return 0;
}

const char *cgroup_path(const struct cgroup *cg) { return cg->encoded; }

int cgroup_clone_fd(const struct cgroup *cg) { return cg->v2_fd; }

/* ---- joining ------------------------------------------------------------- */

int cgroup_join_open(const struct cgroup *cg, bool skip_v2,
                     struct cgroup_join *j, cell_error **err) {
  j->n = 0;
  for (size_t i = 0; i < cg->n_v1; i++) {
    const struct cgroup_hier *h = &cg->v1[i];
    if (h->fd < 0)
      continue;
    if (j->n == sizeof(j->fds) / sizeof(j->fds[0]))
      break;
    int fd = openat(h->fd, "tasks", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      cgroup_join_close(j);
      return cell_fail_errno(err, "open `%s%s/tasks`", h->mount, h->path);
    }
    j->fds[j->n++] = fd;
  }
  if (cg->v2_fd >= 0 && !skip_v2 && j->n < sizeof(j->fds) / sizeof(j->fds[0])) {
    int fd = openat(cg->v2_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      cgroup_join_close(j);
      return cell_fail_errno(err, "open `%s%s/cgroup.procs`", cg->v2_mount,
                             cg->v2_path);
    }
    j->fds[j->n++] = fd;
  }
  return 0;
}

static bool names_controller(const char *list, const char *controller) {
  size_t n = strlen(controller);
  for (const char *p = list; p && *p;) {
    if (strncmp(p, controller, n) == 0 && (p[n] == ',' || p[n] == '\0'))
      return true;
    p = strchr(p, ',');
    p = p ? p + 1 : NULL;
  }
  return false;
}

/* The sub path asked for a hierarchy with these controllers (NULL: v2). */
static const char *sub_for(char *const *subs, const char *controllers) {
  const char *any = NULL;
  for (size_t i = 0; subs && subs[i]; i++) {
    const char *colon = strchr(subs[i], ':');
    if (colon == NULL) {
      any = subs[i];
      continue;
    }
    cleanup_free char *ctl = xstrndup(subs[i], (size_t)(colon - subs[i]));
    if (controllers && names_controller(controllers, ctl))
      return colon + 1;
  }
  return any;
}

static int open_join_file(int dirfd, const char *sub, const char *file,
                          cell_error **err) {
  cleanup_close int subfd = -1;
  if (sub && *sub) {
    if (sub[0] == '/' || strstr(sub, ".."))
      return cell_fail(
          err, EINVAL,
          "--cgroup: `%s` must be a path below the container's cgroup", sub);
    subfd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (subfd < 0)
      return cell_fail_errno(err, "--cgroup: sub-cgroup `%s`", sub);
    dirfd = subfd;
  }
  int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open cgroup file `%s`", file);
  return fd;
}

int cgroup_join_open_sub(const struct cgroup *cg, char *const *subs,
                         struct cgroup_join *j, cell_error **err) {
  j->n = 0;
  for (size_t i = 0; i < cg->n_v1 && j->n < 15; i++) {
    const struct cgroup_hier *h = &cg->v1[i];
    if (h->fd < 0)
      continue;
    int fd = open_join_file(h->fd, sub_for(subs, h->controllers), "tasks", err);
    if (fd < 0) {
      cgroup_join_close(j);
      return -1;
    }
    j->fds[j->n++] = fd;
  }
  if (cg->v2_fd >= 0) {
    int fd =
        open_join_file(cg->v2_fd, sub_for(subs, NULL), "cgroup.procs", err);
    if (fd < 0) {
      cgroup_join_close(j);
      return -1;
    }
    j->fds[j->n++] = fd;
  }
  return 0;
}

int cgroup_join_self(struct cgroup_join *j, cell_error **err) {
  int r = 0;
  for (size_t i = 0; i < j->n; i++) {
    if (r == 0 && write(j->fds[i], "0", 1) < 0)
      r = cell_fail_errno(err, "join the container's cgroup");
    close(j->fds[i]);
  }
  j->n = 0;
  return r;
}

void cgroup_join_close(struct cgroup_join *j) {
  for (size_t i = 0; i < j->n; i++)
    close(j->fds[i]);
  j->n = 0;
}

/* ---- creation ------------------------------------------------------------ */

static int make_v1(struct cgroup_hier *h, cell_error **err) {
  h->fd = cgv1_make(h->mount, h->path, h->controllers, &h->made, err);
  return h->fd < 0 ? -1 : 0;
}

/* On a hybrid host the cgroup2 twin is a courtesy to tools that look
 * there; it may well not be writable. */
static int make_v2(struct cgroup *cg, cell_error **err) {
  bool unified = cg->layout == CGROUP_UNIFIED;
  cell_error *e = NULL;
  cg->v2_fd = cgv2_make(cg->v2_mount, cg->v2_path, unified, &cg->v2_made, &e);
  if (cg->v2_fd >= 0)
    return 0;
  if (unified) {
    *err = e;
    return -1;
  }
  log_debug("cgroup: no cgroup2 twin: %s", e->msg);
  cell_error_free(&e);
  return 0;
}

static int compare_pid(const void *a, const void *b) {
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return (x > y) - (x < y);
}

/* How many processes, each counted once, the cgroup holds in all of its
 * hierarchies. */
static size_t count_processes(const struct cgroup *cg) {
  cleanup_free pid_t *pids = NULL;
  size_t n = 0, distinct = 0;
  cell_error *ignored = NULL;
  if (cgroup_pids_everywhere(cg, &pids, &n, &ignored) < 0) {
    cell_error_free(&ignored);
    return 0;
  }
  qsort(pids, n, sizeof(*pids), compare_pid);
  for (size_t i = 0; i < n; i++)
    if (i == 0 || pids[i] != pids[i - 1])
      distinct++;
  return distinct;
}

static bool made_everywhere(const struct cgroup *cg) {
  for (size_t i = 0; i < cg->n_v1; i++)
    if (!cg->v1[i].made)
      return false;
  return cg->v2_fd < 0 || cg->v2_made;
}

/* A cgroup that was already there.  Frozen, the container's process
 * would freeze the moment it joined, and create would wait for it
 * forever: refused, in runc's words.  Holding processes, it is used all
 * the same with a warning, as runc 1.1 does (those processes become part
 * of the container: delete kills them with it). */
static int check_existing(const struct cgroup *cg, cell_error **err) {
  /* A hybrid host's cgroup2 twin freezes too, and clone3 starts the
   * process there. */
  if (cgroup_is_frozen(cg) ||
      (cg->v2_fd >= 0 && cg_exists(cg->v2_fd, "cgroup.freeze") &&
       cgroup_ops_v2.is_frozen(cg->v2_fd)))
    return cell_fail(err, 0,
                     "container's cgroup unexpectedly frozen: `%s` (thaw it, "
                     "or give linux.cgroupsPath another cgroup)",
                     cg->path);
  if (made_everywhere(cg))
    return 0;
  size_t n = count_processes(cg);
  if (n > 0)
    log_warn("container's cgroup is not empty: %zu process(es) found in `%s`",
             n, cg->path);
  return 0;
}

static int make_cgroup(struct cgroup *cg, cell_error **err) {
  for (size_t i = 0; i < cg->n_v1; i++)
    if (make_v1(&cg->v1[i], err) < 0)
      return -1;
  if (cg->v2_mount && make_v2(cg, err) < 0)
    return -1;
  return check_existing(cg, err);
}

/* Undo a failed create: only what we made, and only the leaves. */
static void unmake_cgroup(struct cgroup *cg) {
  for (size_t i = 0; i < cg->n_v1; i++) {
    if (!cg->v1[i].made)
      continue;
    cleanup_free char *full =
        xasprintf("%s%s", cg->v1[i].mount, cg->v1[i].path);
    rmdir(full);
  }
  if (cg->v2_made) {
    cleanup_free char *full = xasprintf("%s%s", cg->v2_mount, cg->v2_path);
    rmdir(full);
  }
}

int cgroup_create(const struct spec *s, const char *id, struct cgroup **out,
                  cell_error **err) {
  const struct spec_linux *l = s->linux_;
  cleanup_cgroup struct cgroup *cg = NULL;
  if (plan_cgroup(l ? l->cgroups_path : NULL, id, &cg, err) < 0)
    return -1;
  if (make_cgroup(cg, err) < 0 ||
      cgroup_apply_resources(cg, l ? l->resources : NULL, err) < 0) {
    unmake_cgroup(cg);
    return -1;
  }
  *out = steal_pointer(&cg);
  return 0;
}

/* ---- processes ----------------------------------------------------------- */

int cgroup_enter(const struct cgroup *cg, pid_t pid, cell_error **err) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%d", (int)pid);
  for (size_t i = 0; i < cg->n_v1; i++) {
    const struct cgroup_hier *h = &cg->v1[i];
    if (h->fd < 0)
      continue;
    cleanup_free char *what =
        xasprintf("join cgroup `%s%s`", h->mount, h->path);
    if (cg_write(h->fd, "cgroup.procs", buf, what, err) < 0)
      return -1;
  }
  if (cg->v2_fd >= 0) {
    cleanup_free char *what =
        xasprintf("join cgroup `%s%s`", cg->v2_mount, cg->v2_path);
    if (cg_write(cg->v2_fd, "cgroup.procs", buf, what, err) < 0)
      return -1;
  }
  return 0;
}

/* The cgroup v2 path of pid ("0::PATH" in /proc/PID/cgroup). */
static int v2_path_of(int procfs, pid_t pid, char **out, cell_error **err) {
  cleanup_free char *text = NULL;
  if (procfs_read_pid_file(procfs, pid, "cgroup", &text, err) < 0)
    return -1;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    if (strncmp(line, "0::", 3) == 0) {
      *out = xstrdup(line + 3);
      return 0;
    }
  return cell_fail(err, ENOENT, "process %d has no cgroup v2 path", (int)pid);
}

static bool path_is_below(const char *path, const char *top) {
  size_t n = strlen(top);
  return strncmp(path, top, n) == 0 && path[n] == '/';
}

int cgroup_v2_follow_init(struct cgroup *cg, int procfs, pid_t init,
                          cell_error **err) {
  if (cg->v2_fd < 0)
    return 0;
  cleanup_free char *enabled = NULL;
  if (cg_read(cg->v2_fd, "cgroup.subtree_control", &enabled, err) < 0)
    return -1;
  if (enabled[strspn(enabled, " \n")] == '\0')
    return 0; /* no controller below: the cgroup takes processes */
  cleanup_free char *path = NULL;
  if (v2_path_of(procfs, init, &path, err) < 0)
    return -1;
  if (!path_is_below(path, cg->v2_path))
    return cell_fail(err, EBUSY,
                     "cgroup `%s%s` has controllers enabled below it, and the "
                     "container's init is not in a cgroup beneath it",
                     cg->v2_mount, cg->v2_path);
  cleanup_free char *dir = xasprintf("%s%s", cg->v2_mount, path);
  int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open cgroup `%s`", dir);
  close(cg->v2_fd);
  cg->v2_fd = fd;
  free(cg->v2_path);
  cg->v2_path = xstrdup(path);
  return 0;
}

/* The directory that lists the container's processes: v2, else the pids
 * or freezer hierarchy (those every runtime uses), else any. */
static int procs_fd(const struct cgroup *cg) {
  if (cg->layout == CGROUP_UNIFIED)
    return cg->v2_fd;
  struct cgroup_hier *h = cgroup_dirs_find_v1(cg, "pids");
  if (h == NULL)
    h = cgroup_dirs_find_v1(cg, "freezer");
  for (size_t i = 0; h == NULL && i < cg->n_v1; i++)
    if (cg->v1[i].fd >= 0)
      h = &cg->v1[i];
  return h ? h->fd : cg->v2_fd;
}

int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n,
                cell_error **err) {
  *pids = NULL;
  *n = 0;
  int fd = procs_fd(cg);
  if (fd < 0)
    return 0; /* the cgroup is gone: no processes */
  if (cg_read_pids(fd, true, pids, n, err) < 0) {
    free(steal_pointer(pids));
    *n = 0;
    /* Removed under our open directory: no processes either. */
    if ((*err)->errnum == ENOENT) {
      cell_error_free(err);
      return 0;
    }
    return cell_error_wrap(err, "processes of cgroup `%s`", cg->path);
  }
  return 0;
}

int cgroup_pids_everywhere(const struct cgroup *cg, pid_t **pids, size_t *n,
                           cell_error **err) {
  *pids = NULL;
  *n = 0;
  for (size_t h = 0; h <= cg->n_v1; h++) {
    int fd = h < cg->n_v1 ? cg->v1[h].fd : cg->v2_fd;
    if (fd >= 0 && cg_read_pids(fd, true, pids, n, err) < 0) {
      if ((*err)->errnum != ENOENT)
        return cell_error_wrap(err, "processes of cgroup `%s`", cg->path);
      cell_error_free(err); /* removed under our open directory */
    }
  }
  return 0;
}

/* ---- freezer ------------------------------------------------------------- */

/* The v1 freezer hierarchy, else cgroup.freeze on the cgroup2 side (a
 * hybrid host's twin has it when the kernel does). */
static int freezer_target(const struct cgroup *cg, struct cgroup_target *t) {
  struct cgroup_hier *h =
      cg->layout == CGROUP_UNIFIED ? NULL : cgroup_dirs_find_v1(cg, "freezer");
  if (h) {
    *t = (struct cgroup_target){&cgroup_ops_v1, h->fd};
    return 0;
  }
  if (cg->v2_fd >= 0 && cg_exists(cg->v2_fd, "cgroup.freeze")) {
    *t = (struct cgroup_target){&cgroup_ops_v2, cg->v2_fd};
    return 0;
  }
  return -1;
}

int cgroup_freeze(const struct cgroup *cg, bool frozen, cell_error **err) {
  struct cgroup_target t;
  if (freezer_target(cg, &t) < 0)
    return cell_fail(err, ENODEV,
                     "%s cgroup `%s`: no freezer (cgroup v1 freezer not "
                     "mounted, no cgroup.freeze)",
                     frozen ? "freeze" : "thaw", cg->path);
  if (t.ops->freeze(t.fd, frozen, err) < 0)
    return cell_error_wrap(err, "%s cgroup `%s`", frozen ? "freeze" : "thaw",
                           cg->path);
  return 0;
}

char *cgroup_freezer_dir(const struct cgroup *cg) {
  struct cgroup_hier *h =
      cg->layout == CGROUP_UNIFIED ? NULL : cgroup_dirs_find_v1(cg, "freezer");
  if (h)
    return xasprintf("%s%s", h->mount, h->path);
  if (cg->v2_fd >= 0 && cg_exists(cg->v2_fd, "cgroup.freeze"))
    return xasprintf("%s%s", cg->v2_mount, cg->v2_path);
  return NULL;
}

bool cgroup_is_frozen(const struct cgroup *cg) {
  struct cgroup_target t;
  if (freezer_target(cg, &t) < 0)
    return false;
  return t.ops->is_frozen(t.fd);
}

/* ---- signals, destroy ---------------------------------------------------- */

static int signal_each(const struct cgroup *cg, int signo, cell_error **err) {
  cleanup_free pid_t *pids = NULL;
  size_t n = 0;
  if (cgroup_pids(cg, &pids, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (kill(pids[i], signo) < 0 && errno != ESRCH)
      return cell_fail_errno(err, "kill pid %d of cgroup `%s`", (int)pids[i],
                             cg->path);
  return 0;
}

/* Freeze around the signalling so that nothing forks past it (best
 * effort: a cgroup that cannot freeze is still signalled).  A paused
 * container stays paused, unless it is being killed. */
int cgroup_kill_all(const struct cgroup *cg, int signo, cell_error **err) {
  if (signo == SIGKILL && cg->layout == CGROUP_UNIFIED && cg->v2_fd >= 0) {
    int r = cgroup_ops_v2.kill(cg->v2_fd, err);
    if (r != 0)
      return r < 0 ? -1 : 0;
  }
  bool was_frozen = cgroup_is_frozen(cg);
  cell_error *ignored = NULL;
  bool froze = !was_frozen && cgroup_freeze(cg, true, &ignored) == 0;
  cell_error_free(&ignored);
  if (signal_each(cg, signo, err) < 0) {
    if (froze)
      cgroup_freeze(cg, false, &ignored);
    cell_error_free(&ignored);
    return -1;
  }
  if (froze || (was_frozen && signo == SIGKILL))
    return cgroup_freeze(cg, false, err);
  return 0;
}

enum { KILL_TIMEOUT_MS = 5000, RMDIR_TIMEOUT_MS = 2000 };

static int kill_until_empty(const struct cgroup *cg, cell_error **err) {
  long long deadline = cg_now_ms() + KILL_TIMEOUT_MS;
  unsigned delay = 0;
  for (;;) {
    cleanup_free pid_t *pids = NULL;
    size_t n = 0;
    if (cgroup_pids(cg, &pids, &n, err) < 0)
      return -1;
    if (n == 0)
      return 0;
    if (cg_now_ms() > deadline)
      return cell_fail(err, EBUSY,
                       "cgroup `%s`: %zu processes (pid %d) survive SIGKILL",
                       cg->path, n, (int)pids[0]);
    /* On a hybrid host the cgroup2 twin's cgroup.kill gets everything that
     * joined it, atomically; the v1 pass below gets the rest. */
    if (cg->layout == CGROUP_HYBRID && cg->v2_fd >= 0) {
      cell_error *e = NULL;
      cgroup_ops_v2.kill(cg->v2_fd, &e);
      cell_error_free(&e);
    }
    if (cgroup_kill_all(cg, SIGKILL, err) < 0)
      return -1;
    cg_backoff(&delay);
  }
}

/* rmdir, waiting while the kernel still tears down the last tasks. */
static int rmdir_retry(int dirfd, const char *name, const char *shown,
                       long long deadline, cell_error **err) {
  unsigned delay = 0;
  while (unlinkat(dirfd, name, AT_REMOVEDIR) < 0) {
    if (errno == ENOENT)
      return 0;
    if (errno != EBUSY || cg_now_ms() > deadline)
      return cell_fail_errno(err, "remove cgroup `%s`", shown);
    cg_backoff(&delay);
  }
  return 0;
}

/* Cgroups the container made below its own (systemd in a container, a
 * nested runtime) go first. */
static int remove_children(int fd, const char *shown, long long deadline,
                           cell_error **err) {
  int dupfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dupfd >= 0 ? fdopendir(dupfd) : NULL;
  if (d == NULL) {
    if (dupfd >= 0)
      close(dupfd);
    return cell_fail_errno(err, "list cgroup `%s`", shown);
  }
  int r = 0;
  for (struct dirent *e; r == 0 && (e = readdir(d)) != NULL;) {
    if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
        strcmp(e->d_name, "..") == 0)
      continue;
    cleanup_free char *child_shown = xasprintf("%s/%s", shown, e->d_name);
    cleanup_close int child =
        openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (child < 0)
      continue;
    r = remove_children(child, child_shown, deadline, err);
    if (r == 0)
      r = rmdir_retry(fd, e->d_name, child_shown, deadline, err);
  }
  closedir(d);
  return r;
}

static int remove_cgroup_dir(const char *mount, const char *path, int *fd,
                             long long deadline, cell_error **err) {
  if (*fd < 0)
    return 0;
  cleanup_free char *full = xasprintf("%s%s", mount, path);
  int r = remove_children(*fd, full, deadline, err);
  close(*fd);
  *fd = -1;
  if (r < 0)
    return -1;
  return rmdir_retry(AT_FDCWD, full, full, deadline, err);
}

int cgroup_destroy(struct cgroup *cg, cell_error **err) {
  if (kill_until_empty(cg, err) < 0)
    return -1;
  long long deadline = cg_now_ms() + RMDIR_TIMEOUT_MS;
  int r = 0;
  for (size_t i = 0; i < cg->n_v1; i++) {
    struct cgroup_hier *h = &cg->v1[i];
    if (remove_cgroup_dir(h->mount, h->path, &h->fd, deadline,
                          r < 0 ? NULL : err) < 0)
      r = -1;
  }
  if (cg->v2_mount && remove_cgroup_dir(cg->v2_mount, cg->v2_path, &cg->v2_fd,
                                        deadline, r < 0 ? NULL : err) < 0)
    r = -1;
  return r;
}

/* ---- one directory for a long-lived watcher ------------------------------ */

static bool kept(const struct cgroup *cg, const struct cgroup_hier *h,
                 const char *const *controllers) {
  for (size_t i = 0; controllers[i]; i++)
    if (cgroup_dirs_find_v1(cg, controllers[i]) == h)
      return true;
  return false;
}

/* The directory held by an O_PATH fd, which serves openat as well: the
 * close of a directory opened for reading makes the kernel look at its
 * dnotify marks and POSIX locks, and a long-held fd is closed once in
 * every child its holder forks (its copy, at exec or close_range).  With
 * a thousand instances that was a tenth of celld's start of one. */
static void hold_as_path(int *fd) {
  if (*fd < 0)
    return;
  int path = openat(*fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (path < 0)
    return; /* kept as it is */
  close(*fd);
  *fd = path;
}

void cgroup_keep_controllers(struct cgroup *cg, const char *const *controllers) {
  if (cg->layout == CGROUP_UNIFIED) {
    hold_as_path(&cg->v2_fd); /* one directory serves them all */
    return;
  }
  /* The cgroup2 side stays when a controller has no v1 hierarchy. */
  bool all_v1 = true;
  for (size_t i = 0; controllers[i]; i++)
    all_v1 = all_v1 && cgroup_dirs_find_v1(cg, controllers[i]) != NULL;
  for (size_t h = 0; h < cg->n_v1; h++) {
    if (kept(cg, &cg->v1[h], controllers)) {
      hold_as_path(&cg->v1[h].fd);
    } else if (cg->v1[h].fd >= 0) {
      close(cg->v1[h].fd);
      cg->v1[h].fd = -1;
    }
  }
  if (all_v1 && cg->v2_fd >= 0) {
    close(cg->v2_fd);
    cg->v2_fd = -1;
  }
  hold_as_path(&cg->v2_fd);
}

void cgroup_keep_only(struct cgroup *cg, const char *controller) {
  cgroup_keep_controllers(cg, (const char *const[]){controller, NULL});
}

/* Add the names of the directories below the cgroup directory fd to *names
 * (n of them), each once. */
static void add_children(int fd, char ***names, size_t *n) {
  int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
  if (dir == NULL) {
    if (dup_fd >= 0)
      close(dup_fd);
    return;
  }
  rewinddir(dir);
  struct dirent *e;
  while ((e = readdir(dir))) {
    if (e->d_name[0] == '.' || e->d_type != DT_DIR)
      continue;
    bool seen = false;
    for (size_t i = 0; i < *n && !seen; i++)
      seen = strcmp((*names)[i], e->d_name) == 0;
    if (seen)
      continue;
    *names = xrealloc(*names, (*n + 2) * sizeof(**names));
    (*names)[(*n)++] = xstrdup(e->d_name);
    (*names)[*n] = NULL;
  }
  closedir(dir);
}

int cgroup_children(const char *parent, char ***names, cell_error **err) {
  cleanup_cgroup struct cgroup *cg = NULL;
  if (cgroup_open(parent, &cg, err) < 0)
    return -1;
  size_t n = 0;
  *names = xcalloc(1, sizeof(**names));
  for (size_t h = 0; h < cg->n_v1; h++)
    if (cg->v1[h].fd >= 0)
      add_children(cg->v1[h].fd, names, &n);
  if (cg->v2_fd >= 0)
    add_children(cg->v2_fd, names, &n);
  return 0;
}
