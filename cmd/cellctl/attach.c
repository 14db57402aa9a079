/* The verbs that attach us to a running instance (attach.h). */
#include "attach.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "daemon/console-client.h"
#include "runtime/foreground.h"

/* ---- exec and enter -------------------------------------------------------- */

/* Send the request with our stdin, stdout and stderr riding along. */
static int send_with_stdio(int sock, const char *data, size_t len) {
  union cell_fd_control control;
  struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  const int fds[3] = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO};
  cell_msg_attach_fds(&mh, &control, fds, 3);
  ssize_t n;
  do
    n = sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -1;
  return cell_write_all(sock, data + n, len - (size_t)n) < 0 ? -1 : 0;
}

static void forward_signal(struct client *c, int sig) {
  char req[80];
  int n = snprintf(req, sizeof(req),
                   "{\"version\":1,\"op\":\"signal\",\"signal\":%d}\n", sig);
  cell_write_all(c->fd, req, (size_t)n);
}

/* An answer line with exit_code: the command is done.  Any other line
 * with an error is told as it comes: the command still runs. */
static bool exit_line(const char *line, int *code) {
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(line, strlen(line), &v, &err) < 0) {
    cell_error_free(&err);
    return false;
  }
  long long n = field_int(v, "exit_code", -1);
  if (n < 0) {
    const struct json_value *e = json_object_get(v, "error");
    if (e && e->type == JSON_STRING)
      fprintf(stderr, "cellctl: %s\n", e->u.string);
    return false;
  }
  *code = (int)n;
  return true;
}

/* What the pty still holds once the command is gone. */
static void drain(int master) {
  struct pollfd p = {.fd = master, .events = POLLIN};
  while (poll(&p, 1, 50) > 0 && (p.revents & POLLIN) &&
         foreground_pump(master, STDOUT_FILENO))
    ;
}

/* Signals that came to us: the window size to the pty, the others (but
 * those about ourselves) to the command through celld. */
static void relay_signals(struct client *c, struct foreground *fg) {
  struct signalfd_siginfo si;
  while (read(fg->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    int sig = (int)si.ssi_signo;
    if (sig == SIGWINCH && fg->master >= 0) {
      struct winsize ws;
      if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
        ioctl(fg->master, TIOCSWINSZ, &ws);
    } else if (sig != SIGCHLD && sig != SIGPIPE && sig != SIGURG &&
               sig != SIGWINCH) {
      forward_signal(c, sig);
    }
  }
}

/* Until the exit line: signals to the command (through celld), and with a
 * terminal, our terminal to and from its pty. */
static int proxy(struct client *c, struct foreground *fg, int *code,
                 cell_error **err) {
  bool in_open = fg->master >= 0, out_open = fg->master >= 0;
  for (;;) {
    struct pollfd p[4] = {{.fd = fg->sfd, .events = POLLIN},
                          {.fd = c->fd, .events = POLLIN},
                          {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN},
                          {.fd = out_open ? fg->master : -1, .events = POLLIN}};
    if (poll(p, 4, client_line_buffered(c) ? 0 : -1) < 0) {
      if (errno == EINTR)
        continue;
      return cell_fail_errno(err, "poll");
    }
    if (p[0].revents & POLLIN)
      relay_signals(c, fg);
    if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
      in_open = foreground_pump(STDIN_FILENO, fg->master);
    if (p[3].revents & (POLLIN | POLLHUP | POLLERR))
      out_open = foreground_pump(fg->master, STDOUT_FILENO);
    /* The exit line may have come in the same read as the first answer. */
    if (client_line_buffered(c) || (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      cleanup_free char *line = client_read_line(c);
      if (!line)
        return cell_fail(err, 0, "lost the connection to celld: the command's "
                                 "status is unknown");
      if (exit_line(line, code)) {
        if (out_open)
          drain(fg->master);
        return 0;
      }
    }
  }
}

static char *exec_request(const char *name, char **argv, bool tty) {
  cleanup_json_gen struct json_gen *g = request_new("exec", name);
  json_gen_key(g, "args");
  json_gen_array_open(g);
  for (char **a = argv; *a; a++)
    json_gen_string(g, *a);
  json_gen_array_close(g);
  json_gen_kv_bool(g, "tty", tty);
  const char *term = getenv("TERM");
  if (tty && term && *term) {
    cleanup_free char *kv = xasprintf("TERM=%s", term);
    json_gen_key(g, "env");
    json_gen_array_open(g);
    json_gen_string(g, kv);
    json_gen_array_close(g);
  }
  cleanup_free char *body = request_finish(g);
  return xasprintf("%s\n", body);
}

/* The command, run by celld, in the foreground: our terminal its pty
 * (tty), or our stdio its own.  The command's status, or EXIT_EXEC when
 * it could not run. */
static int run_in_foreground(struct client *c, bool tty, cell_error **err) {
  cleanup_close int master = -1;
  cleanup_free char *line = client_read_answer(c, &master);
  if (!line) {
    cell_fail(err, 0, "the daemon closed the connection");
    return EXIT_EXEC;
  }
  cleanup_json struct json_value *answer = NULL;
  if (client_answer(line, &answer, err) != EXIT_OK)
    return EXIT_EXEC;
  if (tty && master < 0) {
    cell_fail(err, 0, "exec: the daemon sent no terminal");
    return EXIT_EXEC;
  }
  struct foreground fg;
  int code = EXIT_EXEC;
  if (foreground_begin(&fg, err) < 0 ||
      (master >= 0 && foreground_attach_terminal(&fg, steal_fd(&master), err) < 0) ||
      proxy(c, &fg, &code, err) < 0)
    code = EXIT_EXEC;
  foreground_end(&fg);
  return code;
}

static int run_exec(const struct invocation *inv, const char *name, char **argv,
                    bool tty, cell_error **err) {
  if (tty && !foreground_has_terminal())
    return usage_error(err, "exec -t: stdin is not a terminal");
  cleanup_free char *req = exec_request(name, argv, tty);
  cleanup_client struct client c = {.fd = -1};
  if (client_dial(&c, inv->socket, err) != EXIT_OK)
    return EXIT_EXEC;
  int sent = tty ? (int)cell_write_all(c.fd, req, strlen(req))
                 : send_with_stdio(c.fd, req, strlen(req));
  if (sent < 0) {
    cell_fail(err, 0, "the daemon closed the connection");
    return EXIT_EXEC;
  }
  return run_in_foreground(&c, tty, err);
}

int cmd_exec(const struct invocation *inv, cell_error **err) {
  const char *name;
  int rc = verb_name(inv, &name, err);
  if (rc != EXIT_OK)
    return rc;
  bool tty = false;
  int k = 2;
  for (; k < inv->argc && strcmp(inv->argv[k], "--") != 0; k++) {
    if (strcmp(inv->argv[k], "-t") == 0 || strcmp(inv->argv[k], "--tty") == 0)
      tty = true;
    else
      return usage_error(err, "exec: unexpected `%s` (NAME [-t] -- CMD...)",
                         inv->argv[k]);
  }
  if (k + 1 >= inv->argc)
    return usage_error(err, "exec: NAME [-t] -- CMD... (the command is missing)");
  return run_exec(inv, name, inv->argv + k + 1, tty, err);
}

int cmd_enter(const struct invocation *inv, cell_error **err) {
  const char *name;
  int rc = verb_name(inv, &name, err);
  if (rc != EXIT_OK)
    return rc;
  if (inv->argc != 2)
    return usage_error(err, "enter: unexpected `%s`", inv->argv[2]);
  /* A login shell as the instance's root, as `su -l` gives: its shell and
   * home from the instance's /etc/passwd, read by the instance's own sh
   * (nothing of the guest is parsed on the host), a clean environment,
   * and a terminal when we have one. */
  static const char login[] =
      "home=/root shell=/bin/sh\n"
      "while IFS=: read -r n _ _ _ _ h s; do\n"
      "  if [ \"$n\" = root ]; then home=$h shell=$s; break; fi\n"
      "done 2>/dev/null </etc/passwd\n"
      "[ -x \"$shell\" ] || shell=/bin/sh\n"
      "cd \"$home\" 2>/dev/null || { home=/; cd /; }\n"
      "exec env -i ${TERM:+TERM=\"$TERM\"} HOME=\"$home\" USER=root LOGNAME=root \\\n"
      "  SHELL=\"$shell\" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\\n"
      "  \"$shell\" -l\n";
  char *shell[] = {"/bin/sh", "-c", (char *)login, "cellctl-enter", NULL};
  return run_exec(inv, name, shell, foreground_has_terminal(), err);
}

/* ---- console ------------------------------------------------------------------ */

/* Relay the attached socket until the detach key or the end of the
 * console, saying which on stderr. */
static int relay_console(int sock, const char *name, bool stopped,
                         cell_error **err) {
  if (stopped)
    fprintf(stderr, "cellctl: `%s` is stopped: the last output of its console\n",
            name);
  else
    fprintf(stderr, "cellctl: console of `%s`; detach with Ctrl-]\n", name);
  enum console_end end = CONSOLE_CLOSED;
  if (console_client(sock, &end, err) < 0)
    return EXIT_FAILED;
  if (end == CONSOLE_DETACHED)
    fputc('\n', stderr);
  else if (end == CONSOLE_CLOSED && !stopped)
    fprintf(stderr, "\ncellctl: the console of `%s` closed (the instance stopped)\n", name);
  return EXIT_OK;
}

/* Attached until the detach key or the end of the console: EXIT_OK then. */
int cmd_console(const struct invocation *inv, cell_error **err) {
  if (inv->argc != 2 || inv->argv[1][0] == '-')
    return usage_error(err, "console: NAME (and nothing else)");
  const char *name = inv->argv[1];
  cleanup_json_gen struct json_gen *g = request_new("console", name);
  cleanup_free char *req = request_finish(g);
  cleanup_close int sock = -1;
  cleanup_free char *line = NULL;
  {
    cleanup_client struct client c = {.fd = -1};
    int rc = client_dial(&c, inv->socket, err);
    if (rc == EXIT_OK)
      rc = client_send(&c, req, err);
    if (rc != EXIT_OK)
      return rc;
    /* The socket we are given is all we need of celld. */
    line = client_read_answer(&c, &sock);
  }
  if (!line) {
    cell_fail(err, 0, "the daemon closed the connection");
    return EXIT_CONNECT;
  }
  cleanup_json struct json_value *answer = NULL;
  int rc = client_answer(line, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  if (sock < 0) {
    cell_fail(err, 0, "console: the daemon sent no socket");
    return EXIT_FAILED;
  }
  const struct json_value *stopped = json_object_get(answer, "stopped");
  return relay_console(sock, name, stopped && stopped->type == JSON_BOOL &&
                                       stopped->u.boolean,
                       err);
}
