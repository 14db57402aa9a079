/* celld: the instance daemon (see lib/daemon.h and docs/api.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/daemon.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: celld [--state-dir DIR] [--socket PATH] [--config FILE]\n"
          "             [--foreground] [--debug] [--autostart]\n");
}

static int daemonize(void) {
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid > 0)
    _exit(0);
  /* Our own session: no terminal, no job-control signals. */
  if (setsid() < 0)
    return -1;
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
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *state_dir = NULL, *socket_path = NULL, *config = NULL;
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
  if (geteuid() != 0) {
    cell_fail(&err, 0, "must run as root");
    goto fail;
  }
  if (!foreground && daemonize() < 0) {
    cell_fail_errno(&err, "daemonize");
    goto fail;
  }
  int r = daemon_run(&cfg, &err);
  if (r < 0)
    goto fail;
  daemon_config_clear(&cfg);
  log_close();
  return 0;
fail:
  log_error("%s", err->msg);
  cell_error_free(&err);
  daemon_config_clear(&cfg);
  log_close();
  return 1;
}
