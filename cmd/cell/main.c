/* cell: an OCI runtime with runc's command line.  This file parses the
 * global flags and dispatches; commands.c has one function per command. */
#include <getopt.h>
#include <stdbool.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/log.h"
#include "base/version.h"
#include "cgroup-commands.h"
#include "checkpoint-commands.h"
#include "commands.h"
#include "exec.h"
#include "oci/state.h"

static const struct command commands[] = {
    {"create", cmd_create, "create a container"},
    {"start", cmd_start, "start a created container"},
    {"run", cmd_run, "create and start a container, wait for it, delete it"},
    {"state", cmd_state, "print the state of a container"},
    {"kill", cmd_kill, "send a signal to a container's process"},
    {"delete", cmd_delete, "delete a container"},
    {"list", cmd_list, "list containers"},
    {"exec", cmd_exec, "run a process in a running container"},
    {"pause", cmd_pause, "freeze every process of a container"},
    {"resume", cmd_resume, "thaw a paused container"},
    {"ps", cmd_ps, "list the processes of a container"},
    {"update", cmd_update, "change the resource limits of a container"},
    {"events", cmd_events, "print a container's events and statistics"},
    {"spec", cmd_spec, "write a default config.json"},
    {"features", cmd_features, "print the features of this runtime"},
    {"checkpoint", cmd_checkpoint, "save a running container with criu"},
    {"restore", cmd_restore, "make a container again from a checkpoint"},
    {NULL, NULL, NULL},
};

/* exec and ps: what follows the ID belongs to a command (`exec ID sh -c`,
 * `ps ID -o pid`), so their flags are not moved in front as for the other
 * commands; runc's parser makes the same exception. */
static bool args_are_a_command(const char *name) {
  return strcmp(name, "exec") == 0 || strcmp(name, "ps") == 0;
}

static void usage(FILE *out) {
  fprintf(out,
          "Usage: cell [global options] COMMAND [options] [arguments]\n\n"
          "Global options:\n"
          "  --root DIR          state directory (default " CELL_DEFAULT_ROOT ")\n"
          "  --log FILE          write diagnostics to FILE\n"
          "  --log-format FMT    text (default) or json\n"
          "  --debug             log debug messages\n"
          "  --criu PATH         the criu program (default: criu on PATH)\n"
          "  --version, -v       print the version\n"
          "  --help, -h          print this help\n\n"
          "Commands:\n");
  for (const struct command *c = commands; c->name; c++)
    fprintf(out, "  %-10s %s\n", c->name, c->summary);
  fprintf(out, "\nRun 'cell COMMAND --help' for a command's options.  As with runc, a\n"
               "command's options may also follow the container ID, except for\n"
               "exec and ps, where what follows the ID is the command's.\n");
}

#ifndef CELL_COMMIT
#define CELL_COMMIT "unknown" /* the Makefile passes git describe */
#endif

/* runc's layout, which tools parse line by line ("runc version X",
 * "commit: ...", "spec: ..."); cell has no go: line. */
static void version(void) {
  const struct scmp_version *v = seccomp_version();
  printf("cell version %s\ncommit: %s\nspec: %s\n", CELL_VERSION,
         CELL_COMMIT, CELL_OCI_VERSION);
  if (v)
    printf("libseccomp: %u.%u.%u\n", v->major, v->minor, v->micro);
}

enum { OPT_ROOT = 256, OPT_LOG, OPT_LOG_FORMAT, OPT_DEBUG, OPT_CRIU, OPT_IGNORED };

int main(int argc, char **argv) {
  static const struct option global_opts[] = {
      {"root", required_argument, NULL, OPT_ROOT},
      {"log", required_argument, NULL, OPT_LOG},
      {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
      {"debug", no_argument, NULL, OPT_DEBUG},
      {"criu", required_argument, NULL, OPT_CRIU},
      {"version", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      /* Flags runc accepts that do not apply to cell: accepted so that
       * clients passing them keep working. */
      {"systemd-cgroup", no_argument, NULL, OPT_IGNORED},
      {"rootless", required_argument, NULL, OPT_IGNORED},
      {NULL, 0, NULL, 0},
  };
  struct global g = {.root = CELL_DEFAULT_ROOT, .log_format = "text"};
  const char *log_file = NULL;
  int opt;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "+vh", global_opts, NULL)) != -1) {
    switch (opt) {
    case OPT_ROOT: g.root = optarg; break;
    case OPT_LOG: log_file = optarg; break;
    case OPT_LOG_FORMAT: g.log_format = optarg; break;
    case OPT_DEBUG: g.debug = true; break;
    case OPT_CRIU: g.criu = optarg; break;
    case OPT_IGNORED: break;
    case 'v': version(); return 0;
    case 'h': usage(stdout); return 0;
    default:
      fprintf(stderr, "cell: unknown global option `%s`\n", argv[optind - 1]);
      usage(stderr);
      return 1;
    }
  }
  cell_error *err = NULL;
  if (log_init("cell", log_file, g.log_format, g.debug, &err) < 0) {
    fprintf(stderr, "cell: %s\n", err->msg);
    cell_error_free(&err);
    return 1;
  }
  if (optind >= argc) {
    usage(stderr);
    return 1;
  }
  const char *name = argv[optind];
  for (const struct command *c = commands; c->name; c++) {
    if (strcmp(c->name, name) == 0) {
      if (!args_are_a_command(c->name))
        args_flags_first(argc - optind, argv + optind);
      int r = c->fn(&g, argc - optind, argv + optind);
      log_close();
      return r;
    }
  }
  log_error("unknown command `%s` (see cell --help)", name);
  return 1;
}
