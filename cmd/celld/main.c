/* celld: the instance daemon (see lib/daemon.h and docs/api.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/daemon-ready.h"
#include "daemon/daemon.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: celld [--state-dir DIR] [--socket PATH] [--config FILE]\n"
          "             [--pidfile FILE] [--log FILE] [--foreground] [--debug]\n"
          "             [--autostart]\n"
          "celld returns once its socket accepts (exit 0), or with the reason\n"
          "it could not start (exit 1): another celld on the state dir, a bad\n"
          "celld.conf, ...  --foreground stays in front (for a service\n"
          "manager: it sends READY=1 to $NOTIFY_SOCKET).  Clients find the\n"
          "socket with --socket, else $CELL_SOCKET, else /run/cell/celld.sock;\n"
          "`cellctl wait-ready` waits for it.\n"
          "Every request is logged, one line each: time (RFC 3339, ms), the\n"
          "peer's uid and pid, the op, the instance, ok or the error.  The log\n"
          "goes to --log FILE (or celld.conf `log`, appended), else to standard\n"
          "error: in the background that is <state-dir>/celld.log.  Each\n"
          "instance's own log (`cellctl log NAME`) is\n"
          "<state-dir>/instances/NAME/log.\n");
}

/* What the waiting parent makes of the pipe: "READY\n", or the reason. */
static int wait_for_child(int fd) {
  char buf[4096];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || (len += (size_t)n) == sizeof(buf) - 1)
      break;
  }
  buf[len] = '\0';
  if (strcmp(buf, "READY\n") == 0)
    return 0;
  buf[strcspn(buf, "\n")] = '\0';
  fprintf(stderr, "celld: %s\n", len ? buf : "exited before its socket accepted");
  return 1;
}

/* Into the background; the parent returns only when the child serves (or
 * says why it cannot), so that the next command of a script finds the
 * socket.  *ready_fd: the child's end. */
static int daemonize(int *ready_fd) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid > 0) {
    close(p[1]);
    _exit(wait_for_child(p[0]));
  }
  close(p[0]);
  *ready_fd = p[1];
  /* Our own session: no terminal, no job-control signals. */
  if (setsid() < 0)
    return -1;
  return 0;
}

/* A daemon keeps none of its starter's stdio: a script's pipe would stay
 * open for as long as celld runs.  Its log goes to <state_dir>/celld.log
 * (errors before it serves go to the waiting parent as well). */
static int detach_stdio(const char *state_dir, cell_error **err) {
  if (cell_mkdir_p(state_dir, 0711, err) < 0)
    return -1;
  cleanup_free char *path = xasprintf("%s/celld.log", state_dir);
  cleanup_close int log = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log < 0)
    return cell_fail_errno(err, "open `%s`", path);
  cleanup_close int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0)
    return cell_fail_errno(err, "open /dev/null");
  if (dup2(null, STDIN_FILENO) < 0 || dup2(log, STDOUT_FILENO) < 0 ||
      dup2(log, STDERR_FILENO) < 0)
    return cell_fail_errno(err, "redirect stdio to `%s`", path);
  return 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"state-dir", required_argument, NULL, 's'},
      {"socket", required_argument, NULL, 'S'},
      {"config", required_argument, NULL, 'c'},
      {"foreground", no_argument, NULL, 'f'},
      {"debug", no_argument, NULL, 'd'},
      {"autostart", no_argument, NULL, 'a'},
      {"pidfile", required_argument, NULL, 'p'},
      {"log", required_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *state_dir = NULL, *socket_path = NULL, *config = NULL;
  const char *pidfile = NULL, *log_file = NULL;
  bool foreground = false, debug = false, autostart = false;
  int o;
  while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (o) {
    case 's': state_dir = optarg; break;
    case 'S': socket_path = optarg; break;
    case 'c': config = optarg; break;
    case 'f': foreground = true; break;
    case 'd': debug = true; break;
    case 'a': autostart = true; break;
    case 'p': pidfile = optarg; break;
    case 'l': log_file = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return 2;
  }
  cell_error *err = NULL;
  if (log_init("celld", NULL, "text", debug, &err) < 0) {
    fprintf(stderr, "celld: %s\n", err->msg);
    return 1;
  }
  struct daemon_config cfg;
  daemon_config_defaults(&cfg);
  if (config && daemon_config_load(&cfg, config, &err) < 0)
    goto fail;
  /* Flags win over the file. */
  if (state_dir) {
    free(cfg.state_dir);
    cfg.state_dir = xstrdup(state_dir);
  }
  if (socket_path) {
    free(cfg.socket_path);
    cfg.socket_path = xstrdup(socket_path);
  }
  cfg.autostart = autostart;
  if (pidfile) {
    if (pidfile[0] != '/') {
      cell_fail(&err, EINVAL, "--pidfile `%s`: give an absolute path", pidfile);
      goto fail;
    }
    cfg.pidfile = xstrdup(pidfile);
  }
  if (log_file) {
    free(cfg.log_path);
    cfg.log_path = xstrdup(log_file);
  }
  /* celld's own messages go to the log file too, beside the ops. */
  if (cfg.log_path && log_init("celld", cfg.log_path, "text", debug, &err) < 0) {
    cell_error_wrap(&err, "--log (or celld.conf `log`)");
    goto fail;
  }
  if (geteuid() != 0) {
    cell_fail(&err, 0, "must run as root");
    goto fail;
  }
  if (!foreground && daemonize(&cfg.ready_fd) < 0) {
    cell_fail_errno(&err, "daemonize");
    goto fail;
  }
  if (!foreground && detach_stdio(cfg.state_dir, &err) < 0)
    goto fail;
  int r = daemon_run(&cfg, &err);
  if (r < 0)
    goto fail;
  daemon_config_clear(&cfg);
  log_close();
  return 0;
fail:
  log_error("%s", err->msg);
  daemon_announce_failure(cfg.ready_fd, err->msg);
  cell_error_free(&err);
  daemon_config_clear(&cfg);
  log_close();
  return 1;
}
