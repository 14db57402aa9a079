/* The ops that connect a client to a running instance: exec (a command
 * run with the client's stdio, received over SCM_RIGHTS, or a pty whose
 * master goes back to the client), signal (to that command) and console
 * (a socket attached to the instance's console by the keeper). */
#include "daemon/daemon-exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/syscalls.h"
#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-console.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-request.h"
#include "daemon/instance-settings.h"
#include "daemon/daemon-runtime.h"
#include "runtime/exec.h"
#include "runtime/terminal.h"

/* Strings of a JSON array, with a bound on their count; NULL on error. */
static char **strv_field(const struct json_value *v, const char *key,
                         size_t max, cell_error **err) {
  const struct json_value *a = json_object_get(v, key);
  if (!a)
    return xcalloc(1, sizeof(char *));
  if (a->u.array.len > max)
    return cell_fail(err, 0, "field `%s`: at most %zu strings", key, max), NULL;
  char **out = xcalloc(a->u.array.len + 1, sizeof(char *));
  for (size_t i = 0; i < a->u.array.len; i++) {
    const struct json_value *s = a->u.array.items[i];
    if (s->type != JSON_STRING) {
      cell_strv_free(out);
      return cell_fail(err, 0, "field `%s[%zu]`: must be a string", key, i), NULL;
    }
    out[i] = xstrdup(s->u.string);
  }
  return out;
}

static int check_exec_request(const struct json_value *v, char **args,
                              char **env, cell_error **err) {
  if (!args[0] || !args[0][0])
    return cell_fail(err, 0, "field `args`: a command is needed");
  for (size_t i = 0; env[i]; i++)
    if (env[i][0] == '=' || !strchr(env[i], '='))
      return cell_fail(err, 0, "field `env[%zu]`: `%s` is not KEY=VALUE", i, env[i]);
  const char *cwd = request_str(v, "cwd");
  if (cwd && cwd[0] != '/')
    return cell_fail(err, 0, "field `cwd`: must be an absolute path");
  return 0;
}

static int read_pid_file(const char *path, pid_t *pid, cell_error **err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  long long n;
  if (cell_read_file_at(AT_FDCWD, path, 64, &text, &len, err) < 0)
    return -1;
  if (!cell_parse_ll(text, 1, INT32_MAX, &n))
    return cell_fail(err, 0, "`%s`: not a pid", path);
  *pid = (pid_t)n;
  return 0;
}

/* ---- the exec helper -------------------------------------------------------
 * The command is in the instance from its first steps (namespaces, user),
 * before it execs: the instance's root can stop it (SIGSTOP) or make it
 * hang there, and container_exec would wait for it forever.  celld never
 * waits on it: a helper process, a fork of celld in celld's namespaces,
 * runs container_exec and reports on a socket that the event loop
 * watches, under exec_timeout (celld.conf):
 *   "S" + the command's pidfd, as soon as the command exists, so that it
 *       can be killed whatever becomes of the helper;
 *   "P<pid>" (+ the pty master with a tty): it has exec'd;
 *   "E<message>": it failed.
 * Then the helper waits for celld to close the socket before it exits:
 * the command becomes ours (we are the subreaper) only once we know it. */

/* Test-only (docs/api.md): CELLD_TEST_PAUSE=exec stops the command as
 * soon as it exists, before it has exec'd, as an instance's root can. */
static bool test_stop_exec(void) {
  const char *want = getenv("CELLD_TEST_PAUSE");
  return want && strcmp(want, "exec") == 0;
}

static void report_spawn(int pidfd, pid_t pid, void *arg) {
  int sock = *(const int *)arg;
  (void)pid;
  if (pidfd < 0)
    return;
  bool stop = test_stop_exec();
  if (stop)
    daemon_pidfd_signal(pidfd, SIGSTOP);
  cell_send_with_fd(sock, "S", 1, pidfd);
  /* The stop may land only after the exec: wait here, as we would for a
   * command stopped before it, so that the test does not race. */
  while (stop)
    pause();
}

/* Run the command in the instance, detached: its stdio is ours (the
 * client's fds, or a pty whose master we get). */
static int spawn_exec(struct daemon *d, struct conn *c, struct instance *in,
                      char **args, char **env, const char *cwd, bool tty,
                      int sock, pid_t *pid, int *master, cell_error **err) {
  cleanup_free char *pidfile = xasprintf("%s/%llu.pid", d->execdir,
                                         (unsigned long long)c->id);
  cleanup_free char *sockpath = xasprintf("%s/%llu.sock", d->execdir,
                                          (unsigned long long)c->id);
  cleanup_close int listener = -1;
  if (tty && (listener = daemon_pty_listener(sockpath, err)) < 0)
    return -1;
  struct exec_opts o = {.root = d->runroot, .id = in->rec->name, .args = args,
                        .env = env, .cwd = cwd, .tty = tty, .detach = true,
                        .pid_file = pidfile,
                        .console_socket = tty ? sockpath : NULL,
                        .on_spawn = report_spawn, .on_spawn_arg = &sock};
  int code = 0;
  int r = container_exec(&o, &code, err);
  if (tty)
    unlink(sockpath);
  if (r < 0) {
    unlink(pidfile);
    return -1;
  }
  r = read_pid_file(pidfile, pid, err);
  unlink(pidfile);
  if (r < 0)
    return -1;
  if (tty) {
    /* The command connected and sent its master before it exec'd. */
    cleanup_close int peer = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (peer < 0 || terminal_recv_fd(peer, master, err) < 0) {
      if (peer < 0)
        cell_fail_errno(err, "exec: receive the terminal");
      kill(*pid, SIGKILL);
      return -1;
    }
  }
  return 0;
}

/* celld's other fds (clients, instances, epoll) are none of the helper's
 * business: it keeps its socket and the log. */
static void close_all_but(int a, int b) {
  int lo = a < b ? a : b, hi = a < b ? b : a;
  if (lo < 0)
    lo = hi;
  if (lo > 3)
    sys_close_range(3, (unsigned)lo - 1, 0);
  if (hi > lo + 1)
    sys_close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
  sys_close_range((unsigned)hi + 1, ~0U, 0);
}

__attribute__((noreturn)) static void run_helper(struct daemon *d,
                                                 struct conn *c,
                                                 struct instance *in,
                                                 char **args, char **env,
                                                 const char *cwd, bool tty,
                                                 int sock) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (!tty)
    for (int i = 0; i < 3; i++)
      dup2(c->fds[i], i);
  close_all_but(sock, log_fd());
  cell_error *err = NULL;
  pid_t pid = 0;
  int master = -1;
  int r = spawn_exec(d, c, in, args, env, cwd, tty, sock, &pid, &master, &err);
  cleanup_free char *msg = r < 0 ? xasprintf("E%s", err->msg)
                                 : xasprintf("P%d", (int)pid);
  if (master >= 0)
    cell_send_with_fd(sock, msg, strlen(msg), master);
  else
    send(sock, msg, strlen(msg), MSG_NOSIGNAL);
  char byte;
  while (read(sock, &byte, 1) > 0 || errno == EINTR)
    ;
  _exit(r < 0);
}

/* One report of the helper (and the fd that came with it, or -1). */
static ssize_t recv_report(int sock, char *buf, size_t len, int *fd) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = {buf, len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = control.buf,
                      .msg_controllen = sizeof(control.buf)};
  *fd = -1;
  ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0)
    return n;
  struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
  if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
      h->cmsg_len == CMSG_LEN(sizeof(int)))
    memcpy(fd, CMSG_DATA(h), sizeof(int));
  return n;
}

static void exec_failed(struct daemon *d, struct conn *c, const char *why) {
  cleanup_free char *msg = xasprintf("exec in `%s`: %s", c->exec_instance, why);
  conn_end_exec_helper(d, c, true);
  conn_error(d, c, API_FAILED, msg);
}

/* The command has exec'd: it is the connection's exec from now on. */
static void exec_started(struct daemon *d, struct conn *c, pid_t pid,
                         int master) {
  int pidfd = steal_fd(&c->spawn_pidfd);
  /* The helper may go now, and leave the command to us. */
  conn_end_exec_helper(d, c, false);
  c->exec_pid = pid;
  c->exec_pidfd = pidfd >= 0 ? pidfd : cell_pidfd_open(pid);
  if (c->exec_pidfd >= 0)
    daemon_watch(d, c->exec_pidfd, TAG_EXEC, EPOLLIN);
  cleanup_free char *line = xasprintf("{\"ok\":true,\"pid\":%d}\n", (int)pid);
  if (master >= 0) {
    /* The master rides with the answer; we keep no copy of it. */
    int rc = cell_send_with_fd(c->fd, line, strlen(line), master);
    close(master);
    conn_note_answer(d, c);
    if (rc < 0)
      conn_close(d, c);
    return;
  }
  line[strlen(line) - 1] = '\0';
  conn_send(d, c, line);
}

void exec_on_helper(struct daemon *d, int sock) {
  struct conn *c = NULL;
  for (size_t i = 0; i < d->n_conns && !c; i++)
    if (d->conns[i]->helper_sock == sock)
      c = d->conns[i];
  if (!c)
    return;
  char buf[4096];
  int fd = -1;
  ssize_t n = recv_report(sock, buf, sizeof(buf) - 1, &fd);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    exec_failed(d, c, "its helper died before the command started");
    return;
  }
  buf[n] = '\0';
  long long pid;
  if (buf[0] == 'S' && fd >= 0) {
    if (c->spawn_pidfd >= 0)
      close(c->spawn_pidfd);
    c->spawn_pidfd = fd;
  } else if (buf[0] == 'P' && cell_parse_ll(buf + 1, 1, INT32_MAX, &pid)) {
    exec_started(d, c, (pid_t)pid, fd);
  } else {
    if (fd >= 0)
      close(fd);
    exec_failed(d, c, buf[0] == 'E' ? buf + 1 : "its helper said nonsense");
  }
}

void exec_on_timeout(struct daemon *d, struct conn *c) {
  cleanup_free char *why = xasprintf(
      "the command did not start within %d s (exec_timeout in celld.conf): "
      "killed; is the instance stopping its processes?", d->cfg->exec_timeout);
  log_warn("exec in `%s` (uid %u): %s", c->exec_instance,
           (unsigned)c->cred.uid, why);
  exec_failed(d, c, why);
}

/* Start the helper; its reports come to exec_on_helper. */
static int start_helper(struct daemon *d, struct conn *c, struct instance *in,
                        char **args, char **env, const char *cwd, bool tty,
                        cell_error **err) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return cell_fail_errno(err, "socketpair");
  pid_t pid = fork();
  if (pid < 0) {
    close(sv[0]);
    close(sv[1]);
    return cell_fail_errno(err, "fork");
  }
  if (pid == 0) {
    close(sv[0]);
    run_helper(d, c, in, args, env, cwd, tty, sv[1]);
  }
  close(sv[1]);
  conn_drop_fds(c);
  c->helper_sock = sv[0];
  c->helper_pidfd = cell_pidfd_open(pid);
  c->exec_instance = xstrdup(in->rec->name);
  c->deadline_ms = daemon_now_ms() + (uint64_t)d->cfg->exec_timeout * 1000;
  daemon_watch(d, c->helper_sock, TAG_EXEC_HELPER, EPOLLIN);
  return 0;
}

/* env.KEY settings reach every new process, even those set after its
 * start; the request's own env wins over them. */
static void with_settings_env(const struct instance_record *r, char ***env) {
  cleanup_strv char **all = instance_settings_env(r);
  for (size_t i = 0; (*env)[i]; i++)
    cell_strv_push(&all, (*env)[i]);
  if (!all)
    return;
  cell_strv_free(*env);
  *env = steal_pointer(&all);
}

void exec_op(struct daemon *d, struct conn *c, struct instance *in,
             const struct json_value *v) {
  cell_error *err = NULL;
  cleanup_strv char **args = strv_field(v, "args", 4096, &err);
  cleanup_strv char **env = args ? strv_field(v, "env", 4096, &err) : NULL;
  const struct json_value *t = json_object_get(v, "tty");
  bool tty = t && t->u.boolean;
  if (!args || !env || check_exec_request(v, args, env, &err) < 0) {
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  if (in->pidfd < 0) {
    cell_fail(&err, 0, "instance `%s` is not running", in->rec->name);
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  if (inst_is_paused(in)) {
    /* Its command would hang, frozen with the rest. */
    cell_fail(&err, 0, "instance `%s` is paused: resume it first (cellctl "
              "resume %s)", in->rec->name, in->rec->name);
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  with_settings_env(in->rec, &env);
  if (c->helper_sock >= 0) {
    conn_error(d, c, API_WRONG_STATE,
               "an exec is starting on this connection: wait for its answer");
    return;
  }
  if (!tty && c->n_fds != 3) {
    cell_fail(&err, 0, "exec without a tty: stdin, stdout and stderr must "
                       "come with the request (SCM_RIGHTS)");
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  if (start_helper(d, c, in, args, env, request_str(v, "cwd"), tty, &err) < 0) {
    cell_error_wrap(&err, "exec in `%s`", in->rec->name);
    conn_fail(d, c, API_FAILED, &err);
  }
}

/* No answer: the exit line is what the client waits for. */
void exec_op_signal(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v) {
  int64_t sig = 0;
  const struct json_value *s = json_object_get(v, "signal");
  if (!s || !json_get_int64(s, &sig) || sig < 1 || sig > 64) {
    conn_error(d, c, API_INVALID_REQUEST,
               "field `signal`: required, an integer in [1, 64]");
    return;
  }
  if (c->exec_pidfd < 0) {
    conn_error(d, c, API_WRONG_STATE, "signal: no exec runs on this connection");
    return;
  }
  if (daemon_pidfd_signal(c->exec_pidfd, (int)sig) < 0)
    log_debug("exec %d: signal %d: %s", (int)c->exec_pid, (int)sig, strerror(errno));
}

void exec_on_exit(struct daemon *d, int pidfd) {
  struct conn *c = NULL;
  for (size_t i = 0; i < d->n_conns && !c; i++)
    if (d->conns[i]->exec_pidfd == pidfd)
      c = d->conns[i];
  if (!c)
    return;
  siginfo_t si = {0};
  if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG) < 0 && errno == ECHILD) {
    /* Still its helper's child, for a moment: once the helper is gone it is
     * ours, and its SIGCHLD brings us back (reap_orphans). */
    daemon_unwatch(d, pidfd);
    return;
  }
  if (si.si_pid == 0)
    return;
  daemon_unwatch(d, pidfd);
  close(pidfd);
  c->exec_pidfd = -1;
  c->exec_pid = 0;
  cleanup_free char *line = xasprintf("{\"ok\":true,\"exit_code\":%d}",
                                      daemon_exit_code(&si));
  conn_send(d, c, line);
}

void console_op(struct daemon *d, struct conn *c, struct instance *in,
                const struct json_value *v) {
  /* A stopped instance's console: what it last said (the keeper sends its
   * buffer and closes), from the file when the keeper is a new one. */
  cell_error *lerr = NULL;
  if (in->pidfd < 0 && daemon_console_load(d, in->rec->name, &lerr) < 0) {
    bool never = lerr->errnum == ENOENT;
    cleanup_free char *msg =
        never ? xasprintf("instance `%s` is not running and has no console "
                          "kept (it never ran): start it",
                          in->rec->name)
              : xasprintf("console of `%s`: %s", in->rec->name, lerr->msg);
    cell_error_free(&lerr);
    conn_error(d, c, never ? API_WRONG_STATE : API_FAILED, msg);
    return;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    cleanup_free char *msg = xasprintf("console: socketpair: %s", strerror(errno));
    conn_error(d, c, API_FAILED, msg);
    return;
  }
  cell_error *err = NULL;
  int r = daemon_console_attach(d, in->rec->name, sv[0], &err);
  close(sv[0]);
  if (r < 0) {
    close(sv[1]);
    cleanup_free char *msg = xasprintf("console of `%s`: %s", in->rec->name, err->msg);
    cell_error_free(&err);
    conn_error(d, c, API_FAILED, msg);
    return;
  }
  /* The client's end rides with the answer; we keep no copy of it.  A
   * stopped instance's is its last output only (the client says so). */
  const char *line = in->pidfd < 0 ? "{\"ok\":true,\"stopped\":true}\n"
                                   : "{\"ok\":true}\n";
  r = cell_send_with_fd(c->fd, line, strlen(line), sv[1]);
  close(sv[1]);
  conn_note_answer(d, c);
  if (r < 0)
    conn_close(d, c);
}
