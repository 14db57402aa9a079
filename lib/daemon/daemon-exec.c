/* The ops that connect a client to a running instance: exec (a command
 * run with the client's stdio, received over SCM_RIGHTS, or a pty whose
 * master goes back to the client), signal (to that command) and console
 * (a socket attached to the instance's console by the keeper). */
#include "daemon/daemon-exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-console.h"
#include "daemon/daemon-request.h"
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

/* Run the command in the instance, detached: it is our child, its stdio
 * the client's fds (or a pty whose master goes back to the client). */
static int spawn_exec(struct daemon *d, struct conn *c, struct instance *in,
                      char **args, char **env, const char *cwd, bool tty,
                      pid_t *pid, int *master, cell_error **err) {
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
                        .console_socket = tty ? sockpath : NULL};
  int saved[3] = {-1, -1, -1};
  if (!tty) {
    for (int i = 0; i < 3; i++)
      saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
    for (int i = 0; i < 3; i++)
      dup2(c->fds[i], i);
  }
  int code = 0;
  int r = container_exec(&o, &code, err);
  daemon_restore_stdio(saved);
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

void exec_op(struct daemon *d, struct conn *c, struct instance *in,
             const struct json_value *v) {
  cell_error *err = NULL;
  cleanup_strv char **args = strv_field(v, "args", 4096, &err);
  cleanup_strv char **env = args ? strv_field(v, "env", 4096, &err) : NULL;
  const struct json_value *t = json_object_get(v, "tty");
  bool tty = t && t->u.boolean;
  pid_t pid = 0;
  int master = -1;
  cleanup_free char *line = NULL;
  if (!args || !env || check_exec_request(v, args, env, &err) < 0) {
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  if (in->pidfd < 0) {
    cell_fail(&err, 0, "instance `%s` is not running", in->rec->name);
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  if (!tty && c->n_fds != 3) {
    cell_fail(&err, 0, "exec without a tty: stdin, stdout and stderr must "
                       "come with the request (SCM_RIGHTS)");
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  if (spawn_exec(d, c, in, args, env, request_str(v, "cwd"), tty, &pid, &master,
                 &err) < 0) {
    cell_error_wrap(&err, "exec in `%s`", in->rec->name);
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  conn_drop_fds(c);
  c->exec_pid = pid;
  c->exec_pidfd = cell_pidfd_open(pid);
  if (c->exec_pidfd >= 0)
    daemon_watch(d, c->exec_pidfd, TAG_EXEC, EPOLLIN);
  line = xasprintf("{\"ok\":true,\"pid\":%d}\n", (int)pid);
  if (master >= 0) {
    /* The master rides with the answer; we keep no copy of it. */
    int rc = cell_send_with_fd(c->fd, line, strlen(line), master);
    close(master);
    if (rc < 0)
      conn_close(d, c);
    return;
  }
  line[strlen(line) - 1] = '\0';
  conn_send(d, c, line);
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
  if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
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
  if (in->pidfd < 0) {
    cleanup_free char *msg = xasprintf("instance `%s` is not running", in->rec->name);
    conn_error(d, c, API_WRONG_STATE, msg);
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
  /* The client's end rides with the answer; we keep no copy of it. */
  static const char line[] = "{\"ok\":true}\n";
  r = cell_send_with_fd(c->fd, line, sizeof(line) - 1, sv[1]);
  close(sv[1]);
  if (r < 0)
    conn_close(d, c);
}
