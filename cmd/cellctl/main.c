/* cellctl: the command line of celld (docs/api.md).
 *
 * main parses the global options, finds the verb in verbs[] and runs it;
 * the verbs live in instance.c (one instance), celld.c (celld as a whole)
 * and attach.c (exec, enter, console), and talk to celld through client.c.
 * `cellctl --help` is made of verbs[] and exit_statuses[]. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "attach.h"
#include "cellctl.h"
#include "celld.h"
#include "file.h"
#include "image.h"
#include "instance.h"
#include "log.h"
#include "profile.h"
#include "checkpoint.h"
#include "migrate.h"
#include "snapshot.h"
#include "top.h"
#include "transfer.h"

static const struct verb verbs[] = {
    {"create", cmd_create,
     "NAME --image IMAGE|--template DIR [--memory SIZE] [--cpus N] [--pids N]\n"
     "[--init CMD] [--autostart] [--restart no|on-failure[:N]|always]\n"
     "[--hostname H] [--net NETWORK[:ADDRESS]]... [--halt-signal SIG]\n"
     "[--pool POOL] [--disk SIZE] [--profile P]...",
     "create an instance of an image (cellctl image list); --template DIR\n"
     "      imports DIR as an image first (a copy: DIR may change or go).\n"
     "      --net: eth0, eth1, ... in order.\n"
     "      --init CMD is split into words as a shell would, without any\n"
     "      expansion: 'single' and \"double\" quotes and \\ keep blanks in a\n"
     "      word ($, *, ; are plain).  Without it: /sbin/init, or an\n"
     "      application image's entrypoint.  --halt-signal (name or number) is what\n"
     "      stop sends the init; default from the init: systemd SIGRTMIN+3,\n"
     "      busybox SIGUSR2, sysvinit SIGPWR, else SIGTERM.  --pool: where its\n"
     "      disk lives (cellctl pools; default: the state directory); --disk:\n"
     "      what it may hold (a btrfs pool's qgroup limit).  --profile: its\n"
     "      settings, in order (a later one wins; the flags win over all)"},
    {"start", cmd_start, "NAME", "start an instance"},
    {"stop", cmd_stop, "NAME [--timeout S]",
     "stop an instance: its halt signal, SIGKILL after S seconds\n"
     "      (celld.conf stop_timeout); says what it sent and how long it took"},
    {"restart", cmd_restart, "NAME [--timeout S]", "stop and start an instance"},
    {"destroy", cmd_destroy, "NAME [-f]",
     "remove an instance and all of its files (-f: even a running one)"},
    {"list", cmd_list, "[--json]",
     "the instances, with the memory and CPU share they use now"},
    {"show", cmd_show, "NAME [--json]",
     "one instance: its settings, and its use of memory, CPU, pids,\n"
     "      network (as it sees it) and disk"},
    {"top", cmd_top, "[--once] [--interval S]",
     "every instance's use, redrawn every S seconds (2) on a terminal;\n"
     "      q or Ctrl-C quits.  --once, or not on a terminal: one table.\n"
     "      CPU% is over celld's last interval (at least a second)"},
    {"metrics", cmd_metrics, "",
     "the same in the Prometheus text format (base units: bytes,\n"
     "      seconds), for node_exporter's textfile collector; celld.conf\n"
     "      metrics_listen serves it over HTTP too"},
    {"set", cmd_set, "NAME KEY=VALUE...",
     "change settings: live where the kernel allows, else at the next\n"
     "      start (show lists them as pending).  Keys: restart, autostart,\n"
     "      autostart.priority, autostart.delay, hostname, init, halt_signal,\n"
     "      networks=NET[:ADDR],...|none, memory, swap, cpus, cpuset, pids,\n"
     "      disk (0: no limit), blkio.weight, blkio.read_bps.MAJ:MIN (and\n"
     "      write_bps, read_iops, write_iops), env.KEY,\n"
     "      mount.NAME=/srv/x:/data[:ro] and device.NAME=/dev/net/tun|/dev/fuse\n"
     "      (root only); an empty env., mount. or device. value removes it"},
    {"get", cmd_get, "NAME KEY", "one setting's value"},
    {"profile", cmd_profile,
     "create|set NAME [KEY=VALUE...] | show|rm NAME | list",
     "named sets of settings (root makes them) that create --profile\n"
     "      gives; an instance takes its profiles again at each start"},
    {"pause", cmd_pause, "NAME",
     "freeze every process of a running instance (its cgroup's freezer);\n"
     "      list and show say `paused`; exec is refused until resume; stop\n"
     "      and destroy -f thaw it first"},
    {"resume", cmd_resume, "NAME", "thaw a paused instance"},
    {"file", cmd_file,
     "push [-r] [--uid N] [--gid N] [--mode M] LOCAL NAME:/PATH\n"
     "| pull [-r] NAME:/PATH LOCAL",
     "copy a regular file into a running or stopped instance, or out of\n"
     "      it (LOCAL made new).  Pushed files belong to the instance's root\n"
     "      unless --uid/--gid (its own ids) say otherwise, with LOCAL's mode\n"
     "      unless --mode (octal).  Symlinks inside resolve inside the\n"
     "      instance, never on the host; /proc and /sys files are refused.\n"
     "      -r: a directory and all in it, as one tar stream (LOCAL `-`:\n"
     "      the stream, uncompressed, on stdin or stdout), symlinks as\n"
     "      symlinks, modes and mtimes kept.\n"
     "      push -r: a tree with a device, FIFO or socket is refused before\n"
     "      anything is sent; entries with `..` or an absolute path are\n"
     "      refused.  pull -r: LOCAL made new, owned as the instance sees it\n"
     "      when run as root (else by the caller), files without set-id\n"
     "      bits; devices, FIFOs, sockets and /proc, /sys are left out,\n"
     "      each with a warning"},
    {"log", cmd_log, "NAME [-n N] [-f|--follow]",
     "the last N lines (default 50, 0: all) of the instance's own log:\n"
     "      created, started, stopped, exits with their status or signal, OOM\n"
     "      kills, restarts by policy, reboot and poweroff from inside, and\n"
     "      the ops that changed it, with who asked (1 MiB, then rotated).\n"
     "      --follow: then what comes, until the instance is destroyed"},
    {"events", cmd_events, "[--json]", "the events of the instances, as they come"},
    {"exec", cmd_exec, "NAME [-t] -- CMD...", "run a command in a running instance"},
    {"enter", cmd_enter, "NAME", "a login shell as its root"},
    {"console", cmd_console, "NAME",
     "its console (the last 64 KiB first); Ctrl-] detaches.  Of a stopped\n"
     "      instance: what its console last said (64 KiB), then exits"},
    {"networks", cmd_networks, "[--json]",
     "the networks instances can join (celld.conf)"},
    {"pools", cmd_pools, "[--json]",
     "the pools instances' disks live in (celld.conf pool.NAME.path): their\n"
     "      filesystem, quota support, size, use and instances"},
    {"wait-ready", cmd_wait_ready, "[--timeout S]",
     "wait until celld answers (default 30 s; exit 3 if it does not)"},
    {"snapshot", cmd_snapshot, "NAME [SNAP] | rm NAME SNAP",
     "freeze an instance's writable layer as a snapshot (a stopped one:\n"
     "      no data copied; a running one: frozen while its layer is copied);\n"
     "      prints the snapshot's name.  rm removes one"},
    {"snapshots", cmd_snapshots, "NAME [--json]", "an instance's snapshots"},
    {"restore", cmd_restore, "NAME [SNAP]",
     "a stopped instance back to a snapshot, the newest by default (what\n"
     "      it wrote since goes); a checkpoint's brings its processes back\n"
     "      too, running where they were"},
    {"checkpoint", cmd_checkpoint, "NAME [SNAP] [--stop]",
     "a stateful snapshot: its disk and, by criu, its processes, taken\n"
     "      while it is frozen; it goes on running (--stop: it stops).\n"
     "      Prints the snapshot's name, and the time it was frozen on\n"
     "      standard error.  Where criu cannot work (criu check), it fails\n"
     "      at once and touches nothing"},
    {"migrate", cmd_migrate, "NAME --to CMD",
     "move a running instance to another celld, live: CMD (run by sh -c)\n"
     "      reaches `cellctl receive` there, its standard input and output\n"
     "      the stream (--to 'ssh host cellctl receive').  While it runs,\n"
     "      the image layers the target lacks and its memory (rounds of\n"
     "      criu pre-dump) go; then it is frozen, dumped by criu (what it\n"
     "      wrote since), and its disk and criu's images sent; it keeps\n"
     "      its name, ids and addresses (where the target's network holds\n"
     "      them), and goes here once it runs there.  On any failure it runs\n"
     "      on here and nothing is left there.  Prints on standard error\n"
     "      what went while it ran and frozen, and the frozen time; root\n"
     "      only"},
    {"receive", cmd_receive, "",
     "the target's end of cellctl migrate: the stream on standard input\n"
     "      and output; root only"},
    {"clone", cmd_clone, "SRC DST [--start]",
     "a new instance on SRC's layers, as SRC is now: no data copied; its\n"
     "      own ids, addresses, hostname and machine-id"},
    {"rename", cmd_rename, "OLD NEW", "rename a stopped instance"},
    {"image", cmd_image,
     "import SOURCE [--name NAME[:TAG]] [--progress=auto|json|none]\n"
     "| list [--json] | show IMAGE [--json] | tag IMAGE NAME[:TAG] | rm IMAGE...",
     "the image store.  SOURCE: a root filesystem directory or tarball\n"
     "      (.tar, .tar.gz/xz/zst), an OCI layout directory, an oci-archive or\n"
     "      docker-archive (podman save, skopeo copy, docker save), - for\n"
     "      standard input, or docker://, containers-storage:, ... through\n"
     "      skopeo.  IMAGE: NAME[:TAG] (tag latest by default) or an id\n"
     "      (12 or more hex digits).  rm is refused while an instance uses\n"
     "      the image.  Members import their own; root's are theirs to use"},
    {"export", cmd_export, "NAME FILE|- [--progress=auto|json|none]",
     "write a stopped instance (its record, its image, its disk) as one\n"
     "      stream to FILE (made new) or to standard output; root only"},
    {"import", cmd_import, "FILE|- [--name NEW] [--progress=auto|json|none]",
     "make an instance of an exported stream (from FILE or standard\n"
     "      input), with an id range and addresses of this host; root only.\n"
     "      cellctl export web1 - | ssh host cellctl import -"},
    {"raw", cmd_raw, "", "send stdin lines as they are, print the answers"},
};

#define N_VERBS (sizeof(verbs) / sizeof(*verbs))

static const struct {
  const char *status;
  const char *meaning;
} exit_statuses[] = {
    {"0", "ok"},
    {"1", "failed (celld failed, or refused for another reason)"},
    {"2", "usage: cellctl's own argument errors"},
    {"3", "cannot connect to celld (or the connection broke)"},
    {"4", "not found: no such instance (or not yours) or network"},
    {"5", "permission denied"},
    {"6", "exists: the name is taken"},
    {"7", "wrong state: e.g. not running, or running without -f"},
    {"8", "invalid request: celld does not take it"},
    {"125", "exec/enter: the command could not run (else its own status)"},
};

/* prefix, then a verb's usage, its continuation lines indented under its
 * arguments. */
static void print_verb_usage(FILE *f, const char *prefix, const struct verb *v) {
  fprintf(f, "%s%s%s", prefix, v->name, *v->usage ? " " : "");
  int indent = (int)(strlen(prefix) + strlen(v->name) + 1);
  for (const char *p = v->usage; *p; p++) {
    fputc(*p, f);
    if (*p == '\n')
      fprintf(f, "%*s", indent, "");
  }
  fputc('\n', f);
}

static void help(FILE *f) {
  fprintf(f, "usage: cellctl [--socket PATH] COMMAND ...\n"
             "  --socket PATH  celld's socket (else $CELL_SOCKET, else "
             "/run/cell/celld.sock)\n"
             "commands:\n");
  for (size_t i = 0; i < N_VERBS; i++) {
    print_verb_usage(f, "  ", &verbs[i]);
    fprintf(f, "      %s\n", verbs[i].summary);
  }
  fprintf(f, "exit status:\n");
  for (size_t i = 0; i < sizeof(exit_statuses) / sizeof(*exit_statuses); i++)
    fprintf(f, "  %-4s %s\n", exit_statuses[i].status, exit_statuses[i].meaning);
}

static const struct verb *find_verb(const char *name) {
  for (size_t i = 0; i < N_VERBS; i++)
    if (strcmp(verbs[i].name, name) == 0)
      return &verbs[i];
  return NULL;
}

/* Errors before a verb runs: one line, with where to look. */
static int global_usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "cellctl: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (cellctl --help lists them)\n");
  return EXIT_USAGE;
}

/* The global options before the verb; *first: the verb's index in argv.
 * -1 when all is done (--help), else an exit status. */
static int global_options(int argc, char **argv, const char **socket, int *first) {
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
      *socket = argv[++i];
    } else if (strncmp(argv[i], "--socket=", 9) == 0) {
      *socket = argv[i] + 9;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      help(stdout);
      return -1;
    } else {
      return global_usage_error("unknown option `%s`", argv[i]);
    }
  }
  if (i >= argc)
    return global_usage_error("%s", "a command is needed");
  *first = i;
  return EXIT_OK;
}

/* The verb's error, once, on one line; a usage error says where the
 * usage is rather than printing all of it. */
static void report(const struct verb *v, int rc, cell_error *err) {
  if (!err)
    return;
  if (rc == EXIT_USAGE)
    fprintf(stderr, "cellctl: %s (see cellctl %s --help)\n", err->msg, v->name);
  else
    fprintf(stderr, "cellctl: %s\n", err->msg);
}

/* `cellctl VERB --help` (or -h), before any "--". */
static bool wants_verb_help(int argc, char **argv) {
  for (int k = 1; k < argc && strcmp(argv[k], "--") != 0; k++)
    if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0)
      return true;
  return false;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  const char *socket = NULL;
  int first = 0;
  int rc = global_options(argc, argv, &socket, &first);
  if (rc < 0)
    return EXIT_OK;
  if (rc != EXIT_OK)
    return rc;
  const struct verb *v = find_verb(argv[first]);
  if (!v)
    return global_usage_error("unknown command `%s`", argv[first]);
  struct invocation inv = {.verb = v, .socket = socket,
                           .argc = argc - first, .argv = argv + first};
  if (wants_verb_help(inv.argc, inv.argv)) {
    print_verb_usage(stdout, "usage: cellctl ", v);
    printf("      %s\n", v->summary);
    return EXIT_OK;
  }
  verb_args_in_order(v->usage, inv.argc, inv.argv);
  cleanup_error cell_error *err = NULL;
  rc = v->run(&inv, &err);
  report(v, rc, err);
  return rc;
}
