/* checkpoint and restore: parse runc's flags, call checkpoint.h and
 * restore.h. */
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint-commands.h"
#include "base/log.h"
#include "base/util.h"
#include "runtime/checkpoint.h"
#include "runtime/restore.h"
#include "usage.h"

enum {
  OPT_IMAGE_PATH = 256, OPT_WORK_PATH, OPT_PARENT_PATH, OPT_LEAVE_RUNNING,
  OPT_TCP_ESTABLISHED, OPT_EXT_UNIX_SK, OPT_SHELL_JOB, OPT_LAZY_PAGES,
  OPT_STATUS_FD, OPT_PAGE_SERVER, OPT_FILE_LOCKS, OPT_PRE_DUMP,
  OPT_MANAGE_CGROUPS_MODE, OPT_EMPTY_NS, OPT_AUTO_DEDUP, OPT_CONSOLE_SOCKET,
  OPT_PID_FILE, OPT_NO_SUBREAPER, OPT_IGNORED,
};

/* The flags both commands take; true when opt was one of them. */
static bool criu_flag(int opt, struct criu_opts *c) {
  switch (opt) {
  case OPT_IMAGE_PATH: c->image_path = optarg; return true;
  case OPT_WORK_PATH: c->work_path = optarg; return true;
  case OPT_TCP_ESTABLISHED: c->tcp_established = true; return true;
  case OPT_EXT_UNIX_SK: c->ext_unix_sk = true; return true;
  case OPT_SHELL_JOB: c->shell_job = true; return true;
  case OPT_FILE_LOCKS: c->file_locks = true; return true;
  case OPT_LAZY_PAGES: c->lazy_pages = true; return true;
  case OPT_AUTO_DEDUP: c->auto_dedup = true; return true;
  case OPT_MANAGE_CGROUPS_MODE: c->manage_cgroups_mode = optarg; return true;
  case OPT_EMPTY_NS: cell_strv_push(&c->empty_ns, optarg); return true;
  default: return false;
  }
}

#define CRIU_OPTIONS                                                          \
  {"image-path", required_argument, NULL, OPT_IMAGE_PATH},                    \
  {"work-path", required_argument, NULL, OPT_WORK_PATH},                      \
  {"tcp-established", no_argument, NULL, OPT_TCP_ESTABLISHED},                \
  {"ext-unix-sk", no_argument, NULL, OPT_EXT_UNIX_SK},                        \
  {"shell-job", no_argument, NULL, OPT_SHELL_JOB},                            \
  {"file-locks", no_argument, NULL, OPT_FILE_LOCKS},                          \
  {"lazy-pages", no_argument, NULL, OPT_LAZY_PAGES},                          \
  {"auto-dedup", no_argument, NULL, OPT_AUTO_DEDUP},                          \
  {"manage-cgroups-mode", required_argument, NULL, OPT_MANAGE_CGROUPS_MODE},  \
  {"empty-ns", required_argument, NULL, OPT_EMPTY_NS},                        \
  {"help", no_argument, NULL, 'h'}

#define CRIU_HELP                                                             \
  "  --image-path DIR          criu's images (default: ./checkpoint)\n"       \
  "  --work-path DIR           criu's logs (default: the image path)\n"       \
  "  --tcp-established         established TCP connections too\n"             \
  "  --ext-unix-sk             unix sockets connected outside\n"              \
  "  --shell-job               a process of a shell's session\n"              \
  "  --file-locks              file locks too\n"                              \
  "  --lazy-pages              memory copied on demand (userfaultfd)\n"       \
  "  --auto-dedup              free image pages already restored or dumped\n" \
  "  --manage-cgroups-mode M   soft (default), full, strict or ignore\n"      \
  "  --empty-ns network        a new, empty network namespace on restore\n"

static const char checkpoint_help[] =
    "Usage: cell [--criu PATH] checkpoint [options] ID\n\n"
    "Save a running container's processes with criu (found on PATH, or\n"
    "--criu).  The container is deleted afterwards unless --leave-running\n"
    "or --pre-dump.  A container with a terminal is refused: criu run as a\n"
    "program cannot hand a restored pty to --console-socket.\n\n" CRIU_HELP
    "  --leave-running           keep the container running\n"
    "  --pre-dump                memory only, to make the final dump short\n"
    "  --parent-path DIR         the previous pre-dump, relative to the image\n"
    "  --page-server ADDR:PORT   send memory to criu's page server (with\n"
    "                            --lazy-pages: serve it there on demand)\n"
    "  --status-fd FD            criu writes \\0 there once ready (lazy pages)\n";

static int status_fd_flag(const char *arg, int *fd) {
  long long n;
  if (!cell_parse_ll(arg, 0, 1 << 20, &n) || fcntl((int)n, F_GETFD) < 0)
    return usage_error("checkpoint", "--status-fd `%s`: not an open fd", arg);
  *fd = (int)n;
  return 0;
}

int cmd_checkpoint(const struct global *g, int argc, char **argv) {
  static const struct option opts[] = {
      CRIU_OPTIONS,
      {"leave-running", no_argument, NULL, OPT_LEAVE_RUNNING},
      {"pre-dump", no_argument, NULL, OPT_PRE_DUMP},
      {"parent-path", required_argument, NULL, OPT_PARENT_PATH},
      {"page-server", required_argument, NULL, OPT_PAGE_SERVER},
      {"status-fd", required_argument, NULL, OPT_STATUS_FD},
      {NULL, 0, NULL, 0},
  };
  struct checkpoint_opts o = {.root = g->root, .status_fd = -1};
  o.criu.criu = g->criu;
  cleanup_strv char **empty_ns = NULL;
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (criu_flag(opt, &o.criu)) {
      empty_ns = o.criu.empty_ns;
      continue;
    }
    switch (opt) {
    case OPT_LEAVE_RUNNING: o.leave_running = true; break;
    case OPT_PRE_DUMP: o.pre_dump = true; break;
    case OPT_PARENT_PATH: o.parent_path = optarg; break;
    case OPT_PAGE_SERVER: o.page_server = optarg; break;
    case OPT_STATUS_FD:
      if (status_fd_flag(optarg, &o.status_fd) < 0)
        return 1;
      break;
    case 'h': fputs(checkpoint_help, stdout); return 0;
    default:
      return usage_error("checkpoint", "unknown option or missing argument `%s`",
                         argv[optind - 1]);
    }
  }
  if (need_id("checkpoint", argc) < 0)
    return 1;
  o.id = argv[optind];
  cell_error *err = NULL;
  if (container_checkpoint(&o, &err) < 0)
    return report(err);
  return 0;
}

static const char restore_help[] =
    "Usage: cell [--criu PATH] restore [options] ID\n\n"
    "Make container ID again from a checkpoint and the bundle, and wait for\n"
    "it as `run` does (exit status: the container's), unless --detach.\n\n"
    "  -b, --bundle DIR          bundle directory (default: current directory)\n"
    "  -d, --detach              return once the container runs\n"
    "  --pid-file FILE           write the container process's pid to FILE\n"
    "  --console-socket SOCK     accepted; a terminal cannot be restored yet\n"
    "  --no-subreaper            accepted (the process is restored as our child)\n"
    CRIU_HELP;

/* containerd's shim (go-runc) passes `-no-subreaper` with one dash, which
 * runc's flag parser takes as the long flag and getopt would read as the
 * short options -n -o ...: spelled with two here. */
static void accept_go_runc_spelling(int argc, char **argv) {
  static char no_subreaper[] = "--no-subreaper";
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strcmp(argv[i], "-no-subreaper") == 0)
      argv[i] = no_subreaper;
}

int cmd_restore(const struct global *g, int argc, char **argv) {
  static const struct option opts[] = {
      CRIU_OPTIONS,
      {"bundle", required_argument, NULL, 'b'},
      {"detach", no_argument, NULL, 'd'},
      {"pid-file", required_argument, NULL, OPT_PID_FILE},
      {"console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET},
      {"no-subreaper", no_argument, NULL, OPT_NO_SUBREAPER},
      /* runc's flags that change nothing here. */
      {"no-pivot", no_argument, NULL, OPT_IGNORED},
      {"lsm-profile", required_argument, NULL, OPT_IGNORED},
      {"lsm-mount-context", required_argument, NULL, OPT_IGNORED},
      {NULL, 0, NULL, 0},
  };
  struct restore_opts o = {.root = g->root};
  o.criu.criu = g->criu;
  cleanup_strv char **empty_ns = NULL;
  int opt;
  accept_go_runc_spelling(argc, argv);
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+b:dh", opts, NULL)) != -1) {
    if (criu_flag(opt, &o.criu)) {
      empty_ns = o.criu.empty_ns;
      continue;
    }
    switch (opt) {
    case 'b': o.bundle = optarg; break;
    case 'd': o.detach = true; break;
    case OPT_PID_FILE: o.pid_file = optarg; break;
    case OPT_CONSOLE_SOCKET: o.console_socket = optarg; break;
    case OPT_NO_SUBREAPER: o.no_subreaper = true; break;
    case OPT_IGNORED: break;
    case 'h': fputs(restore_help, stdout); return 0;
    default:
      return usage_error("restore", "unknown option or missing argument `%s`",
                         argv[optind - 1]);
    }
  }
  if (need_id("restore", argc) < 0)
    return 1;
  o.id = argv[optind];
  cell_error *err = NULL;
  int code = 0;
  if (container_restore(&o, &code, &err) < 0)
    return report(err);
  return code;
}
