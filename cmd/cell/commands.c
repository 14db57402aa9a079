/* One function per command: parse the command's flags, call libcell,
 * print the result.  Errors are printed once, here, through the log. */
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/util.h"
#include "oci/oci-features.h"
#include "oci/spec-default.h"
#include "oci/spec.h"
#include "runtime/container.h"
#include "usage.h"

/* The options getopt did not know, or a missing argument. */
static int bad_option(const char *cmd, char **argv) {
  return usage_error(cmd, "unknown option or missing argument `%s`",
                     argv[optind - 1]);
}

/* Exactly `want` positional arguments after the options. */
static int need_args(const char *cmd, int argc, int want, const char *what) {
  if (argc - optind == want)
    return 0;
  usage_error(cmd, argc - optind < want ? "missing %s" : "too many arguments (expected %s)",
              what);
  return -1;
}

static void print_help(const char *text) { fputs(text, stdout); }

/* ---- create / run ------------------------------------------------------- */

enum { OPT_PID_FILE = 256, OPT_CONSOLE_SOCKET, OPT_NO_PIVOT, OPT_PRESERVE_FDS,
       OPT_KEEP, OPT_IGNORED };

static const char create_help[] =
    "Usage: cell create [options] ID\n\n"
    "Create a container from the bundle; `cell start ID` runs its program.\n\n"
    "  -b, --bundle DIR         bundle directory (default: current directory)\n"
    "  --pid-file FILE          write the container process's pid to FILE\n"
    "  --console-socket SOCK    send the terminal's master fd to SOCK\n"
    "  --no-pivot               use chroot instead of pivot_root\n"
    "  --preserve-fds N         pass N extra fds (from fd 3) to the process\n";

static const char run_help[] =
    "Usage: cell run [options] ID\n\n"
    "Create and start a container, wait for it to exit and delete it.\n"
    "Exits with the container's exit status (128+N when killed by signal N).\n\n"
    "  -b, --bundle DIR         bundle directory (default: current directory)\n"
    "  -d, --detach             return once the container runs; keep it\n"
    "  --keep                   keep the stopped container (and its cgroup)\n"
    "                           after it exits, until `cell delete`\n"
    "  --pid-file FILE          write the container process's pid to FILE\n"
    "  --console-socket SOCK    send the terminal's master fd to SOCK\n"
    "  --no-pivot               use chroot instead of pivot_root\n"
    "  --preserve-fds N         pass N extra fds (from fd 3) to the process\n";

static int parse_create_opts(const char *cmd, int argc, char **argv,
                             struct container_opts *o, bool *detach) {
  static const struct option opts[] = {
      {"bundle", required_argument, NULL, 'b'},
      {"detach", no_argument, NULL, 'd'},
      {"pid-file", required_argument, NULL, OPT_PID_FILE},
      {"console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET},
      {"no-pivot", no_argument, NULL, OPT_NO_PIVOT},
      {"preserve-fds", required_argument, NULL, OPT_PRESERVE_FDS},
      {"no-new-keyring", no_argument, NULL, OPT_IGNORED},
      {"no-subreaper", no_argument, NULL, OPT_IGNORED},
      {"keep", no_argument, NULL, OPT_KEEP},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  bool is_run = detach != NULL;
  int opt;
  long long n;
  optind = 0;
  while ((opt = getopt_long(argc, argv, is_run ? "+b:dh" : "+b:h", opts,
                            NULL)) != -1) {
    switch (opt) {
    case 'b': o->bundle = optarg; break;
    case 'd':
      if (!is_run)
        return bad_option(cmd, argv);
      *detach = true;
      break;
    case OPT_PID_FILE: o->pid_file = optarg; break;
    case OPT_CONSOLE_SOCKET: o->console_socket = optarg; break;
    case OPT_NO_PIVOT: o->no_pivot = true; break;
    case OPT_PRESERVE_FDS:
      if (!cell_parse_ll(optarg, 0, 65536, &n))
        return usage_error(cmd, "--preserve-fds: not a number `%s`", optarg);
      o->preserve_fds = (int)n;
      break;
    case OPT_KEEP:
      if (!is_run)
        return bad_option(cmd, argv);
      o->keep = true;
      break;
    case OPT_IGNORED: break;
    case 'h': print_help(is_run ? run_help : create_help); return 2;
    default: return bad_option(cmd, argv);
    }
  }
  if (need_args(cmd, argc, 1, "container id") < 0)
    return 1;
  o->id = argv[optind];
  /* LISTEN_FDS (socket activation) are passed on like --preserve-fds. */
  const char *listen = getenv("LISTEN_FDS");
  if (listen && cell_parse_ll(listen, 1, 65536, &n) && n > o->preserve_fds)
    o->preserve_fds = (int)n;
  return 0;
}

int cmd_create(const struct global *g, int argc, char **argv) {
  struct container_opts o = {.root = g->root};
  int r = parse_create_opts("create", argc, argv, &o, NULL);
  if (r != 0)
    return r == 2 ? 0 : r;
  cell_error *err = NULL;
  if (container_create(&o, &err) < 0)
    return report(err);
  return 0;
}

int cmd_run(const struct global *g, int argc, char **argv) {
  struct container_opts o = {.root = g->root};
  bool detach = false;
  int r = parse_create_opts("run", argc, argv, &o, &detach);
  if (r != 0)
    return r == 2 ? 0 : r;
  cell_error *err = NULL;
  int code = 0;
  if (container_run(&o, detach, &code, &err) < 0)
    return report(err);
  return code;
}

/* ---- commands taking just an ID ------------------------------------------- */

/* Parse commands whose only option is --help (plus `extra`), leaving optind
 * at the first positional argument.  Returns 2 after printing help. */
static int parse_simple(const char *cmd, int argc, char **argv,
                        const char *help) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (opt == 'h') {
      print_help(help);
      return 2;
    }
    return bad_option(cmd, argv);
  }
  return 0;
}

int cmd_start(const struct global *g, int argc, char **argv) {
  int r = parse_simple("start", argc, argv,
                       "Usage: cell start ID\n\nRun the program of a created container.\n");
  if (r != 0)
    return r == 2 ? 0 : r;
  if (need_args("start", argc, 1, "container id") < 0)
    return 1;
  cell_error *err = NULL;
  if (container_start(g->root, argv[optind], &err) < 0)
    return report(err);
  return 0;
}

int cmd_state(const struct global *g, int argc, char **argv) {
  int r = parse_simple("state", argc, argv,
                       "Usage: cell state ID\n\nPrint the OCI state of a container as JSON.\n");
  if (r != 0)
    return r == 2 ? 0 : r;
  if (need_args("state", argc, 1, "container id") < 0)
    return 1;
  cell_error *err = NULL;
  cleanup_free char *json = NULL;
  if (container_state_json(g->root, argv[optind], &json, &err) < 0)
    return report(err);
  fputs(json, stdout);
  return 0;
}

static const char kill_help[] =
    "Usage: cell kill [--all] ID [SIGNAL]\n\n"
    "Send SIGNAL (a name like TERM or SIGKILL, or a number; default TERM)\n"
    "to the container's process.  Signal 0 only checks that it runs.\n\n"
    "  -a, --all    signal every process of the container\n";

int cmd_kill(const struct global *g, int argc, char **argv) {
  static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool all = false;
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+ah", opts, NULL)) != -1) {
    if (opt == 'a')
      all = true;
    else if (opt == 'h') {
      print_help(kill_help);
      return 0;
    } else
      return bad_option("kill", argv);
  }
  int nargs = argc - optind;
  if (nargs < 1 || nargs > 2)
    return usage_error("kill", "expected ID [SIGNAL]%s", "");
  cell_error *err = NULL;
  int signo = 15;
  /* Signal 0 sends nothing and only checks that the container's process
   * is alive (exit 0) or not ("container not running"), as with runc. */
  if (nargs == 2 && strcmp(argv[optind + 1], "0") == 0)
    signo = 0;
  else if (nargs == 2 && signal_parse(argv[optind + 1], &signo, &err) < 0)
    return report(err);
  if (container_kill(g->root, argv[optind], signo, all, &err) < 0)
    return report(err);
  return 0;
}

static const char delete_help[] =
    "Usage: cell delete [-f] ID\n\n"
    "Delete a stopped (or created) container and everything it holds.\n\n"
    "  -f, --force   kill a running container first\n";

int cmd_delete(const struct global *g, int argc, char **argv) {
  static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool force = false;
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+fh", opts, NULL)) != -1) {
    if (opt == 'f')
      force = true;
    else if (opt == 'h') {
      print_help(delete_help);
      return 0;
    } else
      return bad_option("delete", argv);
  }
  if (need_args("delete", argc, 1, "container id") < 0)
    return 1;
  cell_error *err = NULL;
  if (container_delete(g->root, argv[optind], force, &err) < 0)
    return report(err);
  return 0;
}

/* ---- list -------------------------------------------------------------------- */

static const char list_help[] =
    "Usage: cell list [-f table|json] [-q]\n\n"
    "  -f, --format FMT   table (default) or json\n"
    "  -q, --quiet        print only the IDs\n";

static void list_table(const struct container_info *l, size_t n) {
  int wid = 2, wbundle = 6;
  for (size_t i = 0; i < n; i++) {
    int a = (int)strlen(l[i].state->id), b = (int)strlen(l[i].state->bundle);
    wid = a > wid ? a : wid;
    wbundle = b > wbundle ? b : wbundle;
  }
  printf("%-*s   %-8s   %-8s   %-*s   %-30s   %s\n", wid, "ID", "PID", "STATUS",
         wbundle, "BUNDLE", "CREATED", "OWNER");
  for (size_t i = 0; i < n; i++) {
    const struct cell_state *s = l[i].state;
    bool stopped = l[i].status == CELL_STATUS_STOPPED;
    printf("%-*s   %-8d   %-8s   %-*s   %-30s   %s\n", wid, s->id,
           stopped ? 0 : (int)s->pid, state_status_name(l[i].status), wbundle,
           s->bundle, s->created, s->owner ? s->owner : "");
  }
}

static void list_json(const struct container_info *l, size_t n) {
  struct json_gen *gen = json_gen_new(false);
  json_gen_array_open(gen);
  for (size_t i = 0; i < n; i++)
    state_gen_json(gen, l[i].state, l[i].status);
  json_gen_array_close(gen);
  char *out = json_gen_finish(gen, NULL);
  json_gen_free(gen);
  printf("%s\n", out);
  free(out);
}

int cmd_list(const struct global *g, int argc, char **argv) {
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *format = "table";
  bool quiet = false;
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+f:qh", opts, NULL)) != -1) {
    if (opt == 'f')
      format = optarg;
    else if (opt == 'q')
      quiet = true;
    else if (opt == 'h') {
      print_help(list_help);
      return 0;
    } else
      return bad_option("list", argv);
  }
  if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0)
    return usage_error("list", "--format: unknown format `%s` (table or json)", format);
  if (need_args("list", argc, 0, "no arguments") < 0)
    return 1;
  cell_error *err = NULL;
  struct container_info *l = NULL;
  size_t n = 0;
  if (container_list(g->root, &l, &n, &err) < 0)
    return report(err);
  if (quiet)
    for (size_t i = 0; i < n; i++)
      printf("%s\n", l[i].state->id);
  else if (strcmp(format, "json") == 0)
    list_json(l, n);
  else
    list_table(l, n);
  container_list_free(l, n);
  return 0;
}

/* ---- spec / features -------------------------------------------------------- */

static const char spec_help[] =
    "Usage: cell spec [--rootless] [-b DIR]\n\n"
    "Write a default config.json into the bundle directory.\n\n"
    "  -b, --bundle DIR   where to write it (default: current directory)\n"
    "  --rootless         a config for a container run by a non-root user\n";

int cmd_spec(const struct global *g, int argc, char **argv) {
  static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'},
                                       {"rootless", no_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *bundle = ".";
  bool rootless = false;
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+b:h", opts, NULL)) != -1) {
    if (opt == 'b')
      bundle = optarg;
    else if (opt == 'r')
      rootless = true;
    else if (opt == 'h') {
      print_help(spec_help);
      return 0;
    } else
      return bad_option("spec", argv);
  }
  if (need_args("spec", argc, 0, "no arguments") < 0)
    return 1;
  cleanup_free char *path = xasprintf("%s/config.json", bundle);
  cleanup_free char *json = spec_default_json(rootless, getuid(), getgid());
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    log_error("spec: `%s` exists; remove it first", path);
    return 1;
  }
  if (fd < 0 || cell_write_all(fd, json, strlen(json)) < 0) {
    log_error("spec: write `%s`: %s", path, strerror(errno));
    if (fd >= 0)
      close(fd);
    return 1;
  }
  close(fd);
  (void)g;
  return 0;
}

int cmd_features(const struct global *g, int argc, char **argv) {
  int r = parse_simple("features", argc, argv,
                       "Usage: cell features\n\nPrint what this runtime supports (JSON).\n");
  if (r != 0)
    return r == 2 ? 0 : r;
  cleanup_free char *json = features_json();
  fputs(json, stdout);
  (void)g;
  return 0;
}
