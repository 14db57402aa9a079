/* cell exec: parse runc's exec flags, call container_exec. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "base/log.h"
#include "base/util.h"
#include "runtime/exec.h"

static const char exec_help[] =
    "Usage: cell exec [options] ID [COMMAND [ARG...]]\n\n"
    "Run a process in a running container.\n\n"
    "  -p, --process FILE        the process as JSON (config.json's \"process\")\n"
    "  -e, --env KEY=VALUE       set an environment variable (repeatable)\n"
    "  --cwd DIR                 working directory in the container\n"
    "  -u, --user UID[:GID]      run as this user\n"
    "  -g, --additional-gids G   an additional group (repeatable)\n"
    "  -c, --cap CAP             add a capability (repeatable)\n"
    "  -t, --tty                 allocate a pseudo-terminal\n"
    "  --console-socket SOCK     send the terminal's master fd to SOCK\n"
    "  -d, --detach              do not wait for the process\n"
    "  --pid-file FILE           write the process's pid to FILE\n"
    "  --preserve-fds N          pass N extra fds (from fd 3) to the process\n"
    "  --no-new-privs            set no_new_privs for the process\n"
    "  --cgroup [CTL:]PATH       join this existing sub-cgroup of the container\n"
    "  --ignore-paused           exec into a paused container too (the process\n"
    "                            stays frozen, and exec waits, until resume)\n";

enum { OPT_CWD = 256, OPT_CONSOLE_SOCKET, OPT_PID_FILE, OPT_PRESERVE_FDS,
       OPT_NO_NEW_PRIVS, OPT_IGNORED_ARG, OPT_IGNORE_PAUSED, OPT_CGROUP };

/* What `runc exec` exits with when the process could not be run. */
#define EXEC_FAILED 255

static int fail(const char *fmt, const char *arg) {
  log_error(fmt, arg);
  return 1;
}

static int parse_user(const char *s, struct exec_opts *o) {
  long long uid, gid;
  cleanup_free char *copy = xstrdup(s);
  char *colon = strchr(copy, ':');
  if (colon)
    *colon = '\0';
  if (!cell_parse_ll(copy, 0, 4294967294LL, &uid))
    return -1;
  o->set_user = true;
  o->uid = (uid_t)uid;
  if (colon) {
    if (!cell_parse_ll(colon + 1, 0, 4294967294LL, &gid))
      return -1;
    o->set_gid = true;
    o->gid = (gid_t)gid;
  }
  return 0;
}

int cmd_exec(const struct global *g, int argc, char **argv) {
  static const struct option opts[] = {
      {"process", required_argument, NULL, 'p'},
      {"env", required_argument, NULL, 'e'},
      {"cwd", required_argument, NULL, OPT_CWD},
      {"user", required_argument, NULL, 'u'},
      {"additional-gids", required_argument, NULL, 'g'},
      {"cap", required_argument, NULL, 'c'},
      {"tty", no_argument, NULL, 't'},
      {"console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET},
      {"detach", no_argument, NULL, 'd'},
      {"pid-file", required_argument, NULL, OPT_PID_FILE},
      {"preserve-fds", required_argument, NULL, OPT_PRESERVE_FDS},
      {"no-new-privs", no_argument, NULL, OPT_NO_NEW_PRIVS},
      {"process-label", required_argument, NULL, OPT_IGNORED_ARG},
      {"apparmor", required_argument, NULL, OPT_IGNORED_ARG},
      {"ignore-paused", no_argument, NULL, OPT_IGNORE_PAUSED},
      {"cgroup", required_argument, NULL, OPT_CGROUP},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  struct exec_opts o = {.root = g->root};
  cleanup_strv char **env = NULL, **caps = NULL, **cgroups = NULL;
  cleanup_free gid_t *gids = NULL;
  size_t ngids = 0;
  long long n;
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+p:e:u:g:c:tdh", opts, NULL)) != -1) {
    switch (opt) {
    case 'p': o.process_file = optarg; break;
    case 'e': cell_strv_push(&env, optarg); break;
    case OPT_CWD: o.cwd = optarg; break;
    case 'u':
      if (parse_user(optarg, &o) < 0)
        return fail("exec: --user: expected UID[:GID], got `%s`", optarg);
      break;
    case 'g':
      if (!cell_parse_ll(optarg, 0, 4294967294LL, &n))
        return fail("exec: --additional-gids: not a gid `%s`", optarg);
      gids = xrealloc(gids, (ngids + 1) * sizeof(gid_t));
      gids[ngids++] = (gid_t)n;
      break;
    case 'c': cell_strv_push(&caps, optarg); break;
    case 't': o.tty = true; break;
    case OPT_CONSOLE_SOCKET: o.console_socket = optarg; break;
    case 'd': o.detach = true; break;
    case OPT_PID_FILE: o.pid_file = optarg; break;
    case OPT_PRESERVE_FDS:
      if (!cell_parse_ll(optarg, 0, 65536, &n))
        return fail("exec: --preserve-fds: not a number `%s`", optarg);
      o.preserve_fds = (int)n;
      break;
    case OPT_NO_NEW_PRIVS: o.no_new_privs = true; break;
    case OPT_CGROUP: cell_strv_push(&cgroups, optarg); break;
    case OPT_IGNORE_PAUSED: o.ignore_paused = true; break;
    case OPT_IGNORED_ARG: break;
    case 'h': fputs(exec_help, stdout); return 0;
    default:
      return fail("exec: unknown option or missing argument `%s` (see cell exec --help)",
                  argv[optind - 1]);
    }
  }
  if (optind >= argc)
    return fail("exec: missing container id%s", "");
  o.id = argv[optind++];
  if (optind < argc && strcmp(argv[optind], "--") == 0)
    optind++;
  o.args = optind < argc ? argv + optind : NULL;
  o.env = env;
  o.caps = caps;
  o.cgroups = cgroups;
  o.additional_gids = gids;
  o.n_additional_gids = ngids;
  cell_error *err = NULL;
  int code = 0;
  if (container_exec(&o, &code, &err) < 0) {
    /* runc's status and prefix for an exec that did not run: 255 cannot be
     * told from a process that exits 255, but it is what scripts and
     * podman's conmon expect. */
    cell_error_wrap(&err, "exec failed");
    log_error("%s", err->msg);
    cell_error_free(&err);
    return EXEC_FAILED;
  }
  return code;
}
