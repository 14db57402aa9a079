/* celld's lxcfs: started as a child in the foreground (-f, so that its
 * pid is the server's and a pidfd tells when it ends), in a session of its
 * own (a ^C to celld's terminal is celld's to handle), its output in
 * <state_dir>/lxcfs.log.
 *
 * It outlives celld while instances run: their /proc files are binds of
 * its FUSE connection, and a new lxcfs is a new connection that those
 * binds never see (reads of a dead one fail with ENOTCONN).  So celld
 * leaves it running when it exits with instances running (or is killed),
 * and the next celld finds it by its pid file and uses it again; with no
 * instance running, celld's exit ends it.  For the same reason a lxcfs
 * that died and was restarted serves the instances started after it only;
 * the others get it back at their next start.
 *
 * Whether it serves is read from the mount table, never by touching its
 * files: a FUSE server that hangs would hang the reader, and celld's event
 * loop must not wait on anything (docs/architecture.md). */
#include "daemon/daemon-lxcfs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mountinfo.h"
#include "base/procfs.h"
#include "base/util.h"

enum lxcfs_mode {
  LXCFS_OFF,      /* lxcfs = off, or nothing to run */
  LXCFS_RUN,      /* celld runs it */
  LXCFS_EXTERNAL, /* one celld does not manage serves on dir */
};

struct daemon_lxcfs {
  enum lxcfs_mode mode;
  char *binary;        /* LXCFS_RUN: what is run */
  char *dir;           /* the mount point */
  char *pidfile, *logfile;
  pid_t pid;           /* LXCFS_RUN: while it runs, 0 otherwise */
  bool adopted;        /* started by an earlier celld: not our child */
  int pidfd;
  int timerfd;         /* the restart delay; -1 when none */
  uint64_t started_ms;
  char *why;           /* why instances get no view; NULL: they do */
};

static void set_why(struct daemon_lxcfs *l, char *why) {
  free(l->why);
  l->why = why;
}

/* ---- the mount table ----------------------------------------------------- */

struct topmost {
  const char *dir;
  char *type;
};

/* Later lines are mounted later: the last one on dir is on top. */
static int note_mount_on(const struct mountinfo_entry *e, void *arg) {
  struct topmost *t = arg;
  if (strcmp(e->mount_point, t->dir) == 0) {
    free(t->type);
    t->type = xstrdup(e->fstype);
  }
  return 0;
}

/* The filesystem type of the topmost mount on dir ("fuse.lxcfs"), NULL
 * when nothing is mounted there (or the table cannot be read); the caller
 * frees.  The table, never dir itself: a hung FUSE mount would block. */
static char *mounted_type(const char *dir) {
  cell_error *err = NULL;
  cleanup_close int procfs = procfs_open_root(&err);
  struct topmost t = {.dir = dir};
  if (procfs < 0 || mountinfo_each(procfs, note_mount_on, &t, &err) < 0) {
    log_debug("lxcfs: the mount table: %s", err->msg);
    cell_error_free(&err);
    free(t.type);
    return NULL;
  }
  return t.type;
}

static bool lxcfs_mounted(const char *dir) {
  cleanup_free char *type = mounted_type(dir);
  return type && strncmp(type, "fuse", 4) == 0;
}

/* Whatever is mounted on dir, lazily: a dead FUSE mount answers ENOTCONN
 * to all but that.  Bounded: a stack of mounts is not endless. */
static void unmount_all(const char *dir) {
  for (int i = 0; i < 16; i++) {
    cleanup_free char *type = mounted_type(dir);
    if (!type || umount2(dir, MNT_DETACH) < 0)
      return;
  }
}

/* ---- starting and stopping it -------------------------------------------- */

/* The pid in the pid file when that process is an lxcfs serving on our
 * directory (one an earlier celld started); 0 otherwise. */
static pid_t leftover_pid(const struct daemon_lxcfs *l) {
  return cell_pidfile_process(l->pidfile, "lxcfs", l->dir);
}

/* What an earlier celld left: its lxcfs, still serving, is used again (the
 * instances it left running read their binds of it); else that lxcfs is
 * ended, and whatever is still mounted unmounted.  true: adopted. */
static bool take_over_leftover(struct daemon *d) {
  struct daemon_lxcfs *l = d->lxcfs;
  pid_t pid = leftover_pid(l);
  if (pid && lxcfs_mounted(l->dir)) {
    int pidfd = cell_pidfd_open(pid);
    if (pidfd >= 0) {
      l->pid = pid;
      l->pidfd = pidfd;
      l->adopted = true;
      l->started_ms = daemon_now_ms();
      daemon_watch(d, pidfd, TAG_LXCFS, EPOLLIN);
      log_info("lxcfs (pid %d), left running by an earlier celld, serves on "
               "%s: using it", (int)pid, l->dir);
      return true;
    }
  }
  if (pid) {
    log_warn("lxcfs (pid %d) left by an earlier celld does not serve: killing it",
             (int)pid);
    kill(pid, SIGKILL);
  }
  cleanup_free char *type = mounted_type(l->dir);
  if (type) {
    log_warn("%s: a mount left by an earlier celld: unmounting it", l->dir);
    unmount_all(l->dir);
  }
  return false;
}

static void exec_lxcfs(const struct daemon_lxcfs *l, char *const argv[]) {
  setsid();
  int logfd = open(l->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (logfd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 ||
      dup2(logfd, 2) < 0)
    _exit(127);
  cell_reset_signals();
  cell_close_fds_from(3, NULL, 0);
  execv(l->binary, argv);
  _exit(127);
}

/* Fork and exec it; its mount appears later (lxcfs_dir_for_start). */
static int spawn(struct daemon *d, cell_error **err) {
  struct daemon_lxcfs *l = d->lxcfs;
  if (cell_mkdir_p(l->dir, 0755, err) < 0)
    return -1;
  /* --enable-cfs: cpuinfo and cpu/online follow the cpu quota;
   * --enable-loadavg: a load average of the instance's own tasks;
   * --enable-pidfd: no pid reuse in its cache of instances' inits. */
  char *const argv[] = {l->binary,     "-f", "--enable-cfs", "--enable-loadavg",
                        "--enable-pidfd", "-p", l->pidfile,   l->dir,
                        NULL};
  pid_t pid = fork();
  if (pid < 0)
    return cell_fail_errno(err, "fork");
  if (pid == 0)
    exec_lxcfs(l, argv);
  l->pid = pid;
  l->adopted = false;
  l->pidfd = cell_pidfd_open(pid);
  if (l->pidfd >= 0)
    daemon_watch(d, l->pidfd, TAG_LXCFS, EPOLLIN);
  l->started_ms = daemon_now_ms();
  set_why(l, xstrdup("lxcfs has not mounted yet"));
  return 0;
}

/* "exited with status N" / "killed by signal N"; the caller frees. */
static char *status_text(int status) {
  if (WIFEXITED(status))
    return xasprintf("exited with status %d", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return xasprintf("killed by signal %d", WTERMSIG(status));
  return xstrdup("ended");
}

static void drop_pidfd(struct daemon *d) {
  struct daemon_lxcfs *l = d->lxcfs;
  if (l->pidfd >= 0) {
    daemon_unwatch(d, l->pidfd);
    close(l->pidfd);
  }
  l->pidfd = -1;
  l->pid = 0;
}

/* It is gone: reaped (when SIGCHLD's handler has not already) and
 * forgotten.  How it ended; the caller frees. */
static char *forget_child(struct daemon *d) {
  struct daemon_lxcfs *l = d->lxcfs;
  int status = 0;
  char *how = !l->adopted && waitpid(l->pid, &status, WNOHANG) == l->pid
                  ? status_text(status)
                  : xstrdup("ended");
  drop_pidfd(d);
  return how;
}

/* At startup only: until its mount appears, it dies, or the time is up. */
static void wait_mounted(struct daemon *d) {
  struct daemon_lxcfs *l = d->lxcfs;
  for (int waited = 0; waited < LXCFS_MOUNT_WAIT_MS; waited += 10) {
    if (lxcfs_mounted(l->dir)) {
      set_why(l, NULL);
      log_info("lxcfs (pid %d) serves on %s", (int)l->pid, l->dir);
      return;
    }
    int status;
    if (waitpid(l->pid, &status, WNOHANG) == l->pid) {
      cleanup_free char *how = status_text(status);
      drop_pidfd(d);
      set_why(l, xasprintf("`%s` %s at start (see %s)", l->binary, how,
                           l->logfile));
      return;
    }
    usleep(10 * 1000);
  }
  set_why(l, xasprintf("lxcfs did not mount %s within %d ms (see %s)", l->dir,
                       LXCFS_MOUNT_WAIT_MS, l->logfile));
}

/* ---- the API ------------------------------------------------------------- */

/* From celld.conf `lxcfs`: the mode, and what to run or where to look. */
static void configure(struct daemon_lxcfs *l, const struct daemon_config *c) {
  const char *v = c->lxcfs ? c->lxcfs : "auto";
  struct stat st;
  l->dir = xasprintf("%s/lxcfs", c->state_dir);
  if (strcmp(v, "off") == 0) {
    set_why(l, xstrdup("lxcfs = off in celld.conf"));
  } else if (strcmp(v, "auto") == 0) {
    l->binary = cell_find_in_path("lxcfs");
    l->mode = l->binary ? LXCFS_RUN : LXCFS_OFF;
    if (!l->binary)
      set_why(l, xstrdup("no lxcfs in $PATH: install the lxcfs package, or "
                         "set lxcfs = off in celld.conf"));
  } else if (stat(v, &st) == 0 && S_ISDIR(st.st_mode)) {
    l->mode = LXCFS_EXTERNAL;
    free(l->dir);
    l->dir = xstrdup(v);
  } else if (access(v, X_OK) < 0) {
    set_why(l, xasprintf("lxcfs = %s in celld.conf: %s", v, strerror(errno)));
  } else {
    l->mode = LXCFS_RUN;
    l->binary = xstrdup(v);
  }
}

void lxcfs_init(struct daemon *d) {
  struct daemon_lxcfs *l = xcalloc(1, sizeof(*l));
  l->pidfd = l->timerfd = -1;
  d->lxcfs = l;
  configure(l, d->cfg);
  l->pidfile = xasprintf("%s/lxcfs.pid", d->cfg->state_dir);
  l->logfile = xasprintf("%s/lxcfs.log", d->cfg->state_dir);
  bool adopted = l->mode != LXCFS_EXTERNAL && take_over_leftover(d);
  cell_error *err = NULL;
  if (l->mode == LXCFS_RUN && !adopted) {
    /* A fresh log for each celld: it says why the last start failed. */
    if (truncate(l->logfile, 0) < 0 && errno != ENOENT)
      log_warn("truncate `%s`: %s", l->logfile, strerror(errno));
    if (spawn(d, &err) < 0) {
      set_why(l, xasprintf("start lxcfs: %s", err->msg));
      cell_error_free(&err);
    } else {
      wait_mounted(d);
    }
  }
  const char *dir = lxcfs_dir_for_start(d);
  if (!dir)
    log_warn("instances get the host's /proc: lxcfs unavailable: %s", l->why);
  else if (l->mode == LXCFS_EXTERNAL)
    log_info("instances get lxcfs's files from %s", dir);
}

const char *lxcfs_dir_for_start(struct daemon *d) {
  struct daemon_lxcfs *l = d->lxcfs;
  if (!l || l->mode == LXCFS_OFF || (l->mode == LXCFS_RUN && !l->pid))
    return NULL;
  if (!lxcfs_mounted(l->dir)) {
    if (l->mode == LXCFS_EXTERNAL)
      set_why(l, xasprintf("lxcfs = %s in celld.conf: no FUSE filesystem "
                           "mounted there", l->dir));
    return NULL;
  }
  set_why(l, NULL);
  return l->dir;
}

char *lxcfs_proc_view(struct daemon *d) {
  if (lxcfs_dir_for_start(d))
    return xstrdup("lxcfs");
  const char *why = d->lxcfs && d->lxcfs->why ? d->lxcfs->why : "not started";
  return xasprintf("host (lxcfs unavailable: %s)", why);
}

pid_t lxcfs_pid(const struct daemon *d) {
  return d->lxcfs ? d->lxcfs->pid : 0;
}

static void arm_restart(struct daemon *d, uint64_t in_ms) {
  struct daemon_lxcfs *l = d->lxcfs;
  if (l->timerfd < 0) {
    l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (l->timerfd < 0) {
      log_error("lxcfs: timerfd: %s", strerror(errno));
      return;
    }
    daemon_watch(d, l->timerfd, TAG_LXCFS_TIMER, EPOLLIN);
  }
  struct itimerspec its = {.it_value = {(time_t)(in_ms / 1000),
                                        (long)(in_ms % 1000) * 1000000}};
  timerfd_settime(l->timerfd, 0, &its, NULL);
}

static void restart(struct daemon *d) {
  struct daemon_lxcfs *l = d->lxcfs;
  cell_error *err = NULL;
  /* Its dead mount first: the new one must be the only one there. */
  unmount_all(l->dir);
  if (spawn(d, &err) < 0) {
    set_why(l, xasprintf("start lxcfs: %s", err->msg));
    log_error("lxcfs: %s", l->why);
    cell_error_free(&err);
    arm_restart(d, LXCFS_RESTART_MS);
    return;
  }
  log_info("lxcfs restarted (pid %d)", (int)l->pid);
}

void lxcfs_on_exit(struct daemon *d) {
  struct daemon_lxcfs *l = d->lxcfs;
  if (!l || !l->pid)
    return;
  pid_t pid = l->pid;
  cleanup_free char *how = forget_child(d);
  unmount_all(l->dir);
  if (l->mode != LXCFS_RUN) {
    /* One an earlier celld left, which this one is not to run. */
    log_warn("lxcfs (pid %d) %s: the instances that used it keep a broken "
             "view until they restart", (int)pid, how);
    return;
  }
  set_why(l, xasprintf("lxcfs %s", how));
  uint64_t since = daemon_now_ms() - l->started_ms;
  uint64_t wait = since >= LXCFS_RESTART_MS ? 0 : LXCFS_RESTART_MS - since;
  log_warn("lxcfs (pid %d) %s: restarting it in %llu ms; until then instances "
           "start with the host's /proc, and running ones keep a broken view "
           "until they restart", (int)pid, how, (unsigned long long)wait);
  if (wait == 0)
    restart(d);
  else
    arm_restart(d, wait);
}

void lxcfs_on_pidfd(struct daemon *d, int fd) {
  struct daemon_lxcfs *l = d->lxcfs;
  /* An event of the same batch may be of a pidfd SIGCHLD's handler has
   * already closed, its number now the new lxcfs's: only a readable one
   * of the current lxcfs means it ended. */
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (l && fd == l->pidfd && poll(&p, 1, 0) == 1 && (p.revents & POLLIN))
    lxcfs_on_exit(d);
}

void lxcfs_on_timer(struct daemon *d) {
  struct daemon_lxcfs *l = d->lxcfs;
  uint64_t ticks;
  if (!l || l->timerfd < 0 || read(l->timerfd, &ticks, sizeof(ticks)) < 0)
    return;
  if (!l->pid)
    restart(d);
}

/* SIGKILL at once: lxcfs keeps nothing to save, and it heeds neither
 * SIGTERM nor the loss of its mount for seconds (its threads sleep).  One
 * an earlier celld started is not ours to reap: its pidfd says it ended. */
static void end_lxcfs(struct daemon_lxcfs *l) {
  kill(l->pid, SIGKILL);
  if (l->adopted) {
    struct pollfd p = {.fd = l->pidfd, .events = POLLIN};
    poll(&p, 1, 1000);
  } else {
    waitpid(l->pid, NULL, 0);
  }
  unmount_all(l->dir);
}

static size_t running_instances(const struct daemon *d) {
  size_t n = 0;
  for (size_t i = 0; i < d->n_inst; i++)
    n += d->inst[i]->pidfd >= 0;
  return n;
}

void lxcfs_stop(struct daemon *d) {
  struct daemon_lxcfs *l = d->lxcfs;
  if (!l)
    return;
  size_t running = running_instances(d);
  if (l->pid && running) {
    log_info("lxcfs (pid %d) left running for the %zu running instances: the "
             "next celld uses it again", (int)l->pid, running);
  } else if (l->pid) {
    end_lxcfs(l);
    unlink(l->pidfile);
    rmdir(l->dir);
  }
  if (l->pidfd >= 0)
    close(l->pidfd);
  if (l->timerfd >= 0)
    close(l->timerfd);
  free(l->binary);
  free(l->dir);
  free(l->pidfile);
  free(l->logfile);
  free(l->why);
  free(l);
  d->lxcfs = NULL;
}
