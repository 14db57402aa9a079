/* celld's dnsmasq (daemon-dnsmasq.h): one child per network whose bridge
 * is up, in the foreground (its pid is the server's; a pidfd says when it
 * ends), in a session of its own, its log in its directory.  dnsmasq
 * opens its sockets, lease and pid files as root, then runs as an
 * unprivileged user (`dnsmasq`, else `nobody`); the two hosts files it
 * re-reads on SIGHUP are world-readable in a directory it can reach.
 *
 * Nothing here waits on dnsmasq while celld serves: a start is a fork, a
 * change of names a file rewrite and a signal, a stop a signal whose
 * child is reaped like any other.  Only celld's exit waits, bounded. */
#include "daemon/daemon-dnsmasq.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/dnsmasq-files.h"

struct dnsmasq_server {
  const struct daemon_network *net;
  struct dnsmasq_paths paths;
  bool wanted;          /* its bridge is up: it should run */
  pid_t pid;            /* 0 when not running */
  int pidfd;
  int timerfd;          /* the restart delay; -1 when none */
  bool armed;           /* the restart delay runs */
  bool stopping;        /* we sent it SIGTERM: its end is no failure */
  uint64_t started_ms;
  unsigned delay_ms;    /* the next restart's delay */
  char *hosts, *dhcp_hosts; /* what the files hold now; NULL: not written */
};

struct daemon_dnsmasq {
  char *binary; /* NULL: none in $PATH */
  char *user;   /* the one it runs as once its sockets are open */
  struct dnsmasq_server *servers;
  size_t n;
};

static struct dnsmasq_server *server_of(struct daemon *d,
                                        const struct daemon_network *net) {
  struct daemon_dnsmasq *m = d->dnsmasq;
  for (size_t i = 0; m && i < m->n; i++)
    if (m->servers[i].net == net)
      return &m->servers[i];
  return NULL;
}

/* ---- the files ----------------------------------------------------------- */

/* Replaced by a rename, so that dnsmasq reads a whole file or the old
 * one.  No fsync: the files are made again from the records at every
 * start. */
static int replace_file(const char *path, const char *text, cell_error **err) {
  cleanup_free char *tmp = xasprintf("%s.new", path);
  cleanup_close int fd =
      open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", tmp);
  if (fchmod(fd, 0644) < 0 ||
      cell_write_all(fd, text, strlen(text)) != (ssize_t)strlen(text))
    return cell_fail_errno(err, "write `%s`", tmp);
  if (rename(tmp, path) < 0)
    return cell_fail_errno(err, "rename `%s`", tmp);
  return 0;
}

/* The records of every instance, for the text of the files. */
static const struct instance_record **all_records(struct daemon *d) {
  const struct instance_record **v = xcalloc(d->n_inst + 1, sizeof(*v));
  for (size_t i = 0; i < d->n_inst; i++)
    v[i] = d->inst[i]->rec;
  return v;
}

static bool same_text(const char *a, const char *b) {
  return a && b && strcmp(a, b) == 0;
}

/* The two files as the records say; true when either changed. */
static bool write_files(struct daemon *d, struct dnsmasq_server *s) {
  cleanup_free const struct instance_record **recs = all_records(d);
  char *hosts = dnsmasq_hosts_text(s->net, recs, d->n_inst);
  char *dhcp = dnsmasq_dhcp_hosts_text(s->net, recs, d->n_inst);
  if (same_text(hosts, s->hosts) && same_text(dhcp, s->dhcp_hosts)) {
    free(hosts);
    free(dhcp);
    return false;
  }
  cell_error *err = NULL;
  if (replace_file(s->paths.hosts, hosts, &err) < 0 ||
      replace_file(s->paths.dhcp_hosts, dhcp, &err) < 0) {
    log_error("network `%s`: dnsmasq's files: %s", s->net->name, err->msg);
    cell_error_free(&err);
    free(hosts);
    free(dhcp);
    return false;
  }
  free(s->hosts);
  free(s->dhcp_hosts);
  s->hosts = hosts;
  s->dhcp_hosts = dhcp;
  return true;
}

/* ---- starting and ending it ---------------------------------------------- */

/* Its environment: nothing of celld's (LD_PRELOAD, LD_LIBRARY_PATH, a
 * sanitizer's or a test's variables) reaches a server that parses the
 * instances' packets. */
static char *const dnsmasq_env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};

/* In the child: only dup2, close_range and exec, which cannot fail for a
 * reason of the host's; the files were opened by celld, which says when
 * they cannot be. */
static void exec_dnsmasq(int logfd, int null, char **argv) {
  setsid();
  if (dup2(null, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
    _exit(127);
  cell_reset_signals();
  cell_close_fds_from(3, NULL, 0);
  execve(argv[0], argv, dnsmasq_env);
  _exit(127);
}

static void drop_pidfd(struct daemon *d, struct dnsmasq_server *s) {
  if (s->pidfd >= 0) {
    daemon_unwatch(d, s->pidfd);
    close(s->pidfd);
  }
  s->pidfd = -1;
  s->pid = 0;
}

static void arm_restart(struct daemon *d, struct dnsmasq_server *s);

/* It could not be started: tried again after the delay, as when it dies. */
static void spawn_failed(struct daemon *d, struct dnsmasq_server *s,
                         cell_error **err) {
  log_error("network `%s`: start dnsmasq: %s: trying again in %u ms",
            s->net->name, (*err)->msg, s->delay_ms);
  cell_error_free(err);
  arm_restart(d, s);
}

static void spawn(struct daemon *d, struct dnsmasq_server *s) {
  struct daemon_dnsmasq *m = d->dnsmasq;
  cell_error *err = NULL;
  if (if_nametoindex(s->net->bridge) == 0) {
    /* Gone meanwhile: the next attach makes it and starts us again. */
    s->wanted = false;
    return;
  }
  write_files(d, s);
  /* No lease of an earlier run: one of a destroyed instance would keep
   * its address from the next instance that gets it. */
  if (truncate(s->paths.leases, 0) < 0 && errno != ENOENT)
    log_warn("truncate `%s`: %s", s->paths.leases, strerror(errno));
  cleanup_close int logfd =
      open(s->paths.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (logfd < 0) {
    cell_fail_errno(&err, "open `%s`", s->paths.log);
    spawn_failed(d, s, &err);
    return;
  }
  cleanup_close int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0) {
    cell_fail_errno(&err, "open /dev/null");
    spawn_failed(d, s, &err);
    return;
  }
  cleanup_strv char **argv =
      dnsmasq_argv(m->binary, s->net, &s->paths,
                   daemon_config_dns_upstream(d->cfg, s->net), m->user);
  pid_t pid = fork();
  if (pid < 0) {
    cell_fail_errno(&err, "fork");
    spawn_failed(d, s, &err);
    return;
  }
  if (pid == 0)
    exec_dnsmasq(logfd, null, argv);
  s->pid = pid;
  s->pidfd = cell_pidfd_open(pid);
  if (s->pidfd >= 0)
    daemon_watch(d, s->pidfd, TAG_DNSMASQ, EPOLLIN);
  s->started_ms = daemon_now_ms();
  log_info("network `%s`: dnsmasq (pid %d) serves on %s", s->net->name,
           (int)pid, s->net->bridge);
}

/* The restart delay is over or no longer wanted: its timer goes, so that
 * celld holds no fd for a network whose dnsmasq runs or is not wanted. */
static void drop_timer(struct daemon *d, struct dnsmasq_server *s) {
  if (s->timerfd >= 0) {
    daemon_unwatch(d, s->timerfd);
    close(s->timerfd);
  }
  s->timerfd = -1;
  s->armed = false;
}

/* The restart after the delay, and the delay doubled for the next one. */
static void arm_restart(struct daemon *d, struct dnsmasq_server *s) {
  if (s->timerfd < 0) {
    s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (s->timerfd < 0) {
      log_error("dnsmasq: timerfd: %s", strerror(errno));
      return;
    }
    daemon_watch(d, s->timerfd, TAG_DNSMASQ_TIMER, EPOLLIN);
  }
  struct itimerspec its = {.it_value = {(time_t)(s->delay_ms / 1000),
                                        (long)(s->delay_ms % 1000) * 1000000}};
  timerfd_settime(s->timerfd, 0, &its, NULL);
  s->armed = true;
  s->delay_ms = s->delay_ms * 2 > DNSMASQ_RESTART_MAX_MS ? DNSMASQ_RESTART_MAX_MS
                                                         : s->delay_ms * 2;
}

/* "exited with status N" / "killed by signal N"; the caller frees. */
static char *status_text(int status) {
  if (WIFEXITED(status))
    return xasprintf("exited with status %d", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return xasprintf("killed by signal %d", WTERMSIG(status));
  return xstrdup("ended");
}

/* It ended: reaped; started again after the delay when its bridge is
 * still up, the delay doubled when it did not last. */
static void on_ended(struct daemon *d, struct dnsmasq_server *s) {
  int status = 0;
  pid_t pid = s->pid;
  cleanup_free char *how = waitpid(pid, &status, WNOHANG) == pid
                               ? status_text(status)
                               : xstrdup("ended");
  drop_pidfd(d, s);
  bool stopped = s->stopping;
  s->stopping = false;
  if (!s->wanted || stopped) {
    log_info("network `%s`: dnsmasq (pid %d) %s", s->net->name, (int)pid, how);
    /* Ended for a bridge that came back meanwhile: a new one at once. */
    if (s->wanted)
      spawn(d, s);
    return;
  }
  if (daemon_now_ms() - s->started_ms >= DNSMASQ_STABLE_MS)
    s->delay_ms = DNSMASQ_RESTART_MIN_MS;
  log_warn("network `%s`: dnsmasq (pid %d) %s (see %s): restarting it in %u ms",
           s->net->name, (int)pid, how, s->paths.log, s->delay_ms);
  arm_restart(d, s);
}

bool dnsmasq_on_exit(struct daemon *d, pid_t pid) {
  struct daemon_dnsmasq *m = d->dnsmasq;
  for (size_t i = 0; m && i < m->n; i++)
    if (m->servers[i].pid == pid) {
      on_ended(d, &m->servers[i]);
      return true;
    }
  return false;
}

void dnsmasq_on_pidfd(struct daemon *d, int fd) {
  struct daemon_dnsmasq *m = d->dnsmasq;
  /* A pidfd SIGCHLD's handler already closed may have its number reused:
   * only a readable pidfd of a running dnsmasq means it ended. */
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (size_t i = 0; m && i < m->n; i++)
    if (m->servers[i].pidfd == fd && poll(&p, 1, 0) == 1 &&
        (p.revents & POLLIN)) {
      on_ended(d, &m->servers[i]);
      return;
    }
}

void dnsmasq_on_timer(struct daemon *d, int fd) {
  struct daemon_dnsmasq *m = d->dnsmasq;
  for (size_t i = 0; m && i < m->n; i++) {
    struct dnsmasq_server *s = &m->servers[i];
    uint64_t ticks;
    if (s->timerfd != fd || read(fd, &ticks, sizeof(ticks)) < 0)
      continue;
    drop_timer(d, s);
    if (s->wanted && !s->pid)
      spawn(d, s);
  }
}

void dnsmasq_network_up(struct daemon *d, const struct daemon_network *net) {
  struct dnsmasq_server *s = server_of(d, net);
  if (!s || !d->dnsmasq->binary)
    return;
  s->wanted = true;
  if (!s->pid && !s->armed)
    spawn(d, s);
}

void dnsmasq_network_down(struct daemon *d, const struct daemon_network *net) {
  struct dnsmasq_server *s = server_of(d, net);
  if (!s)
    return;
  s->wanted = false;
  drop_timer(d, s);
  s->delay_ms = DNSMASQ_RESTART_MIN_MS;
  if (s->pid && !s->stopping) {
    s->stopping = true;
    kill(s->pid, SIGTERM);
  }
}

void dnsmasq_sync(struct daemon *d) {
  struct daemon_dnsmasq *m = d->dnsmasq;
  for (size_t i = 0; m && i < m->n; i++) {
    struct dnsmasq_server *s = &m->servers[i];
    if (s->pid && !s->stopping && write_files(d, s))
      kill(s->pid, SIGHUP);
  }
}

/* ---- startup and exit ---------------------------------------------------- */

/* The pid in the pid file when that process is a dnsmasq with that pid
 * file on its command line (one an earlier celld started); 0 otherwise. */
static pid_t leftover_pid(const struct dnsmasq_server *s) {
  return cell_pidfile_process(s->paths.pidfile, "dnsmasq", s->paths.pidfile);
}

/* A dnsmasq a killed celld left holds the bridge's port 53 and knows
 * nothing of this celld: ended, and waited for (briefly) so that the new
 * one can bind. */
static void end_leftover(struct dnsmasq_server *s) {
  pid_t pid = leftover_pid(s);
  if (!pid)
    return;
  log_warn("network `%s`: dnsmasq (pid %d) left by an earlier celld: ending it",
           s->net->name, (int)pid);
  cleanup_close int pidfd = cell_pidfd_open(pid);
  kill(pid, SIGKILL);
  struct pollfd p = {.fd = pidfd, .events = POLLIN};
  if (pidfd >= 0)
    poll(&p, 1, DNSMASQ_STOP_WAIT_MS);
}

/* Who dnsmasq becomes: its own user (Debian's package makes one), else
 * nobody, else it stays root. */
static char *unprivileged_user(void) {
  const char *names[] = {"dnsmasq", "nobody"};
  for (size_t i = 0; i < 2; i++)
    if (getpwnam(names[i]))
      return xstrdup(names[i]);
  return NULL;
}

static void server_init(struct daemon *d, struct dnsmasq_server *s,
                        const struct daemon_network *net) {
  *s = (struct dnsmasq_server){.net = net, .pidfd = -1, .timerfd = -1,
                               .delay_ms = DNSMASQ_RESTART_MIN_MS};
  dnsmasq_paths_init(&s->paths, d->cfg->state_dir, net->name);
  cell_error *err = NULL;
  if (cell_mkdir_p(s->paths.dir, 0755, &err) < 0) {
    log_error("network `%s`: %s", net->name, err->msg);
    cell_error_free(&err);
  }
  /* Reachable by dnsmasq's user, which re-reads the hosts files. */
  cleanup_free char *parent = xasprintf("%s/dnsmasq", d->cfg->state_dir);
  chmod(parent, 0711);
  chmod(s->paths.dir, 0755);
  /* A fresh log for each celld: it says why the last start failed. */
  if (truncate(s->paths.log, 0) < 0 && errno != ENOENT)
    log_warn("truncate `%s`: %s", s->paths.log, strerror(errno));
  end_leftover(s);
}

void dnsmasq_init(struct daemon *d) {
  struct daemon_dnsmasq *m = xcalloc(1, sizeof(*m));
  d->dnsmasq = m;
  size_t wanted = 0;
  for (size_t i = 0; i < d->cfg->n_networks; i++)
    wanted += d->cfg->networks[i].dnsmasq;
  if (!wanted)
    return;
  m->binary = cell_find_in_path("dnsmasq");
  if (!m->binary) {
    log_warn("no dnsmasq in $PATH: networks get no DHCP and no names "
             "(install dnsmasq-base, or set network.NAME.dnsmasq = no)");
    return;
  }
  m->user = unprivileged_user();
  m->servers = xcalloc(wanted, sizeof(*m->servers));
  for (size_t i = 0; i < d->cfg->n_networks; i++) {
    const struct daemon_network *net = &d->cfg->networks[i];
    if (!net->dnsmasq)
      continue;
    struct dnsmasq_server *s = &m->servers[m->n++];
    server_init(d, s, net);
    /* Up already: a bridge its running instances (or keep_bridge) hold. */
    if (if_nametoindex(net->bridge) != 0)
      dnsmasq_network_up(d, net);
  }
}

/* SIGTERM, a bounded wait, then SIGKILL: celld is exiting. */
static void end_server(struct dnsmasq_server *s) {
  kill(s->pid, SIGTERM);
  struct pollfd p = {.fd = s->pidfd, .events = POLLIN};
  if (s->pidfd < 0 || poll(&p, 1, DNSMASQ_STOP_WAIT_MS) != 1)
    kill(s->pid, SIGKILL);
  waitpid(s->pid, NULL, 0);
  unlink(s->paths.pidfile);
}

void dnsmasq_stop(struct daemon *d) {
  struct daemon_dnsmasq *m = d->dnsmasq;
  if (!m)
    return;
  for (size_t i = 0; i < m->n; i++) {
    struct dnsmasq_server *s = &m->servers[i];
    if (s->pid)
      end_server(s);
    if (s->pidfd >= 0)
      close(s->pidfd);
    if (s->timerfd >= 0)
      close(s->timerfd);
    dnsmasq_paths_clear(&s->paths);
    free(s->hosts);
    free(s->dhcp_hosts);
  }
  free(m->servers);
  free(m->binary);
  free(m->user);
  free(m);
  d->dnsmasq = NULL;
}
