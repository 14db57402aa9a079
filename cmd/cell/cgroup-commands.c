/* pause, resume, ps, update, events: parse runc's flags, call
 * container-cgroup.h, print the result. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-commands.h"
#include "base/log.h"
#include "base/util.h"
#include "oci/spec.h"
#include "runtime/container-cgroup.h"
#include "usage.h"

/* Larger than any linux.resources object a person writes. */
#define RESOURCES_MAX_SIZE (4u << 20)

static int bad_option(const char *cmd, char **argv) {
  return usage_error(cmd, "unknown option or missing argument `%s`",
                     argv[optind - 1]);
}

/* ---- pause, resume ------------------------------------------------------ */

/* Commands whose only option is --help.  Returns 2 after printing it. */
static int parse_id_only(const char *cmd, int argc, char **argv,
                         const char *help) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (opt != 'h')
      return bad_option(cmd, argv);
    fputs(help, stdout);
    return 2;
  }
  return need_id(cmd, argc) < 0 ? 1 : 0;
}

int cmd_pause(const struct global *g, int argc, char **argv) {
  int r = parse_id_only("pause", argc, argv,
                        "Usage: cell pause ID\n\n"
                        "Freeze every process of the container (its cgroup's "
                        "freezer);\n`cell resume ID` thaws them.\n");
  if (r != 0)
    return r == 2 ? 0 : r;
  cell_error *err = NULL;
  if (container_pause(g->root, argv[optind], &err) < 0)
    return report(err);
  return 0;
}

int cmd_resume(const struct global *g, int argc, char **argv) {
  int r = parse_id_only("resume", argc, argv,
                        "Usage: cell resume ID\n\n"
                        "Thaw the processes of a paused container.\n");
  if (r != 0)
    return r == 2 ? 0 : r;
  cell_error *err = NULL;
  if (container_resume(g->root, argv[optind], &err) < 0)
    return report(err);
  return 0;
}

/* ---- ps ----------------------------------------------------------------- */

static const char ps_help[] =
    "Usage: cell ps [-f table|json] ID [PS OPTIONS...]\n\n"
    "List the processes of a container.  table runs the host's ps (with\n"
    "PS OPTIONS, default -ef) and keeps the container's rows; json prints\n"
    "the array of their host pids.\n\n"
    "  -f, --format FMT   table (default) or json\n";

static void print_pids_json(const pid_t *pids, size_t n) {
  putchar('[');
  for (size_t i = 0; i < n; i++)
    printf(i ? ",%d" : "%d", (int)pids[i]);
  puts("]");
}

int cmd_ps(const struct global *g, int argc, char **argv) {
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *format = "table";
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+f:h", opts, NULL)) != -1) {
    if (opt == 'f')
      format = optarg;
    else if (opt == 'h') {
      fputs(ps_help, stdout);
      return 0;
    } else
      return bad_option("ps", argv);
  }
  bool json = strcmp(format, "json") == 0;
  if (!json && strcmp(format, "table") != 0)
    return usage_error("ps", "--format: unknown format `%s` (table or json)",
                       format);
  if (optind >= argc)
    return usage_error("ps", "missing container id");
  const char *id = argv[optind++];
  /* `cell ps ID -- -o pid,comm`: the `--` only keeps ps's options away
   * from ours. */
  if (optind < argc && strcmp(argv[optind], "--") == 0)
    optind++;
  cell_error *err = NULL;
  if (json) {
    if (optind < argc)
      return usage_error("ps", "ps options `%s` need --format table",
                         argv[optind]);
    cleanup_free pid_t *pids = NULL;
    size_t n = 0;
    if (container_pids(g->root, id, &pids, &n, &err) < 0)
      return report(err);
    print_pids_json(pids, n);
    return 0;
  }
  cleanup_free char *table = NULL;
  if (container_ps_table(g->root, id, argv + optind, &table, &err) < 0)
    return report(err);
  fputs(table, stdout);
  return 0;
}

/* ---- update ------------------------------------------------------------- */

static const char update_help[] =
    "Usage: cell update [options] ID\n\n"
    "Change the resource limits of a running, paused or created container.\n"
    "Sizes take a suffix k, m, g, t, p (powers of 1024, optionally followed\n"
    "by i and/or b); -1 means unlimited.  A value of 0 leaves a limit as it\n"
    "is.\n\n"
    "  -r, --resources FILE        a linux.resources JSON object ('-' reads\n"
    "                              stdin); the other options are then ignored\n"
    "  --memory SIZE               memory limit\n"
    "  --memory-reservation SIZE   memory soft limit\n"
    "  --memory-swap SIZE          memory + swap limit ('-1': unlimited swap)\n"
    "  --kernel-memory SIZE        ignored (kernel memory limits are gone)\n"
    "  --kernel-memory-tcp SIZE    kernel TCP buffer limit (cgroup v1 only)\n"
    "  --cpu-share N               CPU shares (relative weight; also "
    "--cpu-shares)\n"
    "  --cpu-quota N               CFS quota in microseconds per period "
    "(-1: none)\n"
    "  --cpu-period N              CFS period in microseconds\n"
    "  --cpu-rt-period N           realtime period in microseconds\n"
    "  --cpu-rt-runtime N          realtime runtime in microseconds\n"
    "  --cpuset-cpus LIST          CPUs to run on (0-3,5)\n"
    "  --cpuset-mems LIST          memory nodes to use\n"
    "  --pids-limit N              maximum number of pids (-1: unlimited)\n"
    "  --blkio-weight N            block IO weight, 10 to 1000\n"
    "  --l3-cache-schema S         Intel RDT (not supported)\n"
    "  --mem-bw-schema S           Intel RDT (not supported)\n";

enum {
  UPD_MEMORY = 256,
  UPD_MEMORY_RESERVATION,
  UPD_MEMORY_SWAP,
  UPD_KERNEL_MEMORY,
  UPD_KERNEL_MEMORY_TCP,
  UPD_CPU_SHARE,
  UPD_CPU_QUOTA,
  UPD_CPU_PERIOD,
  UPD_CPU_RT_PERIOD,
  UPD_CPU_RT_RUNTIME,
  UPD_CPUSET_CPUS,
  UPD_CPUSET_MEMS,
  UPD_PIDS_LIMIT,
  UPD_BLKIO_WEIGHT,
  UPD_L3_CACHE_SCHEMA,
  UPD_MEM_BW_SCHEMA,
  UPD_END
};

static const struct option update_opts[] = {
    {"resources", required_argument, NULL, 'r'},
    {"memory", required_argument, NULL, UPD_MEMORY},
    {"memory-reservation", required_argument, NULL, UPD_MEMORY_RESERVATION},
    {"memory-swap", required_argument, NULL, UPD_MEMORY_SWAP},
    {"kernel-memory", required_argument, NULL, UPD_KERNEL_MEMORY},
    {"kernel-memory-tcp", required_argument, NULL, UPD_KERNEL_MEMORY_TCP},
    {"cpu-share", required_argument, NULL, UPD_CPU_SHARE},
    {"cpu-shares", required_argument, NULL, UPD_CPU_SHARE},
    {"cpu-quota", required_argument, NULL, UPD_CPU_QUOTA},
    {"cpu-period", required_argument, NULL, UPD_CPU_PERIOD},
    {"cpu-rt-period", required_argument, NULL, UPD_CPU_RT_PERIOD},
    {"cpu-rt-runtime", required_argument, NULL, UPD_CPU_RT_RUNTIME},
    {"cpuset-cpus", required_argument, NULL, UPD_CPUSET_CPUS},
    {"cpuset-mems", required_argument, NULL, UPD_CPUSET_MEMS},
    {"pids-limit", required_argument, NULL, UPD_PIDS_LIMIT},
    {"blkio-weight", required_argument, NULL, UPD_BLKIO_WEIGHT},
    {"l3-cache-schema", required_argument, NULL, UPD_L3_CACHE_SCHEMA},
    {"mem-bw-schema", required_argument, NULL, UPD_MEM_BW_SCHEMA},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The config field each flag sets, to give errors about it the flag's
 * name. */
static const char *const update_fields[UPD_END - UPD_MEMORY] = {
    [UPD_MEMORY - UPD_MEMORY] = "linux.resources.memory.limit",
    [UPD_MEMORY_RESERVATION - UPD_MEMORY] =
        "linux.resources.memory.reservation",
    [UPD_MEMORY_SWAP - UPD_MEMORY] = "linux.resources.memory.swap",
    [UPD_KERNEL_MEMORY_TCP - UPD_MEMORY] = "linux.resources.memory.kernelTCP",
    [UPD_CPU_SHARE - UPD_MEMORY] = "linux.resources.cpu.shares",
    [UPD_CPU_QUOTA - UPD_MEMORY] = "linux.resources.cpu.quota",
    [UPD_CPU_PERIOD - UPD_MEMORY] = "linux.resources.cpu.period",
    [UPD_CPU_RT_PERIOD - UPD_MEMORY] = "linux.resources.cpu.realtimePeriod",
    [UPD_CPU_RT_RUNTIME - UPD_MEMORY] = "linux.resources.cpu.realtimeRuntime",
    [UPD_CPUSET_CPUS - UPD_MEMORY] = "linux.resources.cpu.cpus",
    [UPD_CPUSET_MEMS - UPD_MEMORY] = "linux.resources.cpu.mems",
    [UPD_PIDS_LIMIT - UPD_MEMORY] = "linux.resources.pids.limit",
    [UPD_BLKIO_WEIGHT - UPD_MEMORY] = "linux.resources.blockIO.weight",
};

static const char *option_name(int code) {
  for (const struct option *o = update_opts; o->name; o++)
    if (o->val == code)
      return o->name;
  return "?";
}

/* docker's RAMInBytes, which runc uses: "512", "32m", "1.5GiB", "64 kb";
 * the suffixes are powers of 1024.  "-1" is unlimited. */
static bool parse_size(const char *s, int64_t *out) {
  if (strcmp(s, "-1") == 0) {
    *out = -1;
    return true;
  }
  size_t whole = strspn(s, "0123456789");
  if (whole == 0)
    return false;
  const char *p = s + whole;
  size_t frac = 0;
  if (*p == '.') {
    frac = strspn(p + 1, "0123456789");
    if (frac == 0)
      return false;
    p += 1 + frac;
  }
  size_t numlen = (size_t)(p - s);
  if (*p == ' ')
    p++;
  static const char units[] = "kmgtp";
  unsigned shift = 0;
  const char *u = *p ? strchr(units, p[0] | 0x20) : NULL;
  if (u) {
    shift = 10 * (unsigned)(u - units + 1);
    p++;
  }
  if (*p == 'i' || *p == 'I')
    p++;
  if (*p == 'b' || *p == 'B')
    p++;
  if (*p != '\0' || numlen > 30)
    return false;
  char num[32];
  memcpy(num, s, numlen);
  num[numlen] = '\0';
  long double v = strtold(num, NULL) * (long double)(1ULL << shift);
  if (v >= 9223372036854775807.0L)
    return false;
  *out = (int64_t)v;
  return true;
}

static bool parse_u64(const char *s, uint64_t *out) {
  if (*s < '0' || *s > '9')
    return false;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  *out = v;
  return true;
}

static bool parse_i64(const char *s, int64_t *out) {
  long long v;
  if (!cell_parse_ll(s, INT64_MIN, INT64_MAX, &v))
    return false;
  *out = v;
  return true;
}

static int64_t *new_i64(int64_t **slot, int64_t v) {
  free(*slot);
  *slot = xmalloc(sizeof(**slot));
  **slot = v;
  return *slot;
}

static uint64_t *new_u64(uint64_t **slot, uint64_t v) {
  free(*slot);
  *slot = xmalloc(sizeof(**slot));
  **slot = v;
  return *slot;
}

static struct spec_memory *memory_of(struct spec_resources *r) {
  if (r->memory == NULL)
    r->memory = xcalloc(1, sizeof(*r->memory));
  return r->memory;
}

static struct spec_cpu *cpu_of(struct spec_resources *r) {
  if (r->cpu == NULL)
    r->cpu = xcalloc(1, sizeof(*r->cpu));
  return r->cpu;
}

static int bad_value(const char *what, int code, const char *value) {
  return usage_error("update", "--%s: %s `%s`", option_name(code), what, value);
}

static int set_size_flag(struct spec_resources *r, int code, const char *v) {
  int64_t n;
  if (!parse_size(v, &n))
    return bad_value("invalid size", code, v);
  switch (code) {
  case UPD_MEMORY: new_i64(&memory_of(r)->limit, n); break;
  case UPD_MEMORY_RESERVATION: new_i64(&memory_of(r)->reservation, n); break;
  case UPD_MEMORY_SWAP: new_i64(&memory_of(r)->swap, n); break;
  case UPD_KERNEL_MEMORY_TCP: new_i64(&memory_of(r)->kernel_tcp, n); break;
  case UPD_KERNEL_MEMORY:
    log_warn("update: --kernel-memory is ignored: kernel memory limits are "
             "deprecated and gone from recent kernels");
    break;
  }
  return 0;
}

static int set_number_flag(struct spec_resources *r, int code, const char *v) {
  uint64_t u = 0;
  int64_t i = 0;
  bool is_signed = code == UPD_CPU_QUOTA || code == UPD_CPU_RT_RUNTIME ||
                   code == UPD_PIDS_LIMIT;
  if (is_signed ? !parse_i64(v, &i) : !parse_u64(v, &u))
    return bad_value("not a number", code, v);
  switch (code) {
  case UPD_CPU_SHARE: new_u64(&cpu_of(r)->shares, u); break;
  case UPD_CPU_PERIOD: new_u64(&cpu_of(r)->period, u); break;
  case UPD_CPU_RT_PERIOD: new_u64(&cpu_of(r)->realtime_period, u); break;
  case UPD_CPU_QUOTA: new_i64(&cpu_of(r)->quota, i); break;
  case UPD_CPU_RT_RUNTIME: new_i64(&cpu_of(r)->realtime_runtime, i); break;
  case UPD_PIDS_LIMIT: new_i64(&r->pids_limit, i); break;
  case UPD_BLKIO_WEIGHT:
    if (u > UINT16_MAX)
      return bad_value("out of range (10 to 1000)", code, v);
    if (r->block_io == NULL)
      r->block_io = xcalloc(1, sizeof(*r->block_io));
    free(r->block_io->weight);
    r->block_io->weight = xmalloc(sizeof(*r->block_io->weight));
    *r->block_io->weight = (uint16_t)u;
    break;
  }
  return 0;
}

static int set_flag(struct spec_resources *r, int code, const char *v) {
  switch (code) {
  case UPD_MEMORY:
  case UPD_MEMORY_RESERVATION:
  case UPD_MEMORY_SWAP:
  case UPD_KERNEL_MEMORY:
  case UPD_KERNEL_MEMORY_TCP:
    return set_size_flag(r, code, v);
  case UPD_CPUSET_CPUS:
    free(cpu_of(r)->cpus);
    r->cpu->cpus = xstrdup(v);
    return 0;
  case UPD_CPUSET_MEMS:
    free(cpu_of(r)->mems);
    r->cpu->mems = xstrdup(v);
    return 0;
  case UPD_L3_CACHE_SCHEMA:
  case UPD_MEM_BW_SCHEMA:
    log_error("update: --%s: Intel RDT is not supported by cell",
              option_name(code));
    return 1;
  default:
    return set_number_flag(r, code, v);
  }
}

static int read_stdin(char **out, size_t *len, cell_error **err) {
  size_t cap = 4096, used = 0;
  char *buf = xmalloc(cap);
  for (;;) {
    if (cap - used < 1024)
      buf = xrealloc(buf, cap *= 2);
    ssize_t n = read(STDIN_FILENO, buf + used, cap - used - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || used + (size_t)n > RESOURCES_MAX_SIZE) {
      free(buf);
      return n < 0 ? cell_fail_errno(err, "read stdin")
                   : cell_fail(err, EFBIG, "stdin: more than %u bytes",
                               RESOURCES_MAX_SIZE);
    }
    if (n == 0)
      break;
    used += (size_t)n;
  }
  buf[used] = '\0';
  *out = buf;
  *len = used;
  return 0;
}

/* -r FILE: errors are prefixed with the file's name ("stdin" for -). */
static int load_resources(const char *path, struct spec_resources **r,
                          cell_error **err) {
  bool in = strcmp(path, "-") == 0;
  cleanup_free char *text = NULL;
  size_t len = 0;
  int rc = in ? read_stdin(&text, &len, err)
              : cell_read_file_at(AT_FDCWD, path, RESOURCES_MAX_SIZE, &text,
                                  &len, err);
  if (rc < 0)
    return -1; /* the message names the file already */
  if (spec_parse_resources(text, len, r, err) < 0)
    return cell_error_wrap(err, "%s", in ? "stdin" : path);
  return 0;
}

/* runc's reading of an update: 0 leaves a value as it is (its help shows
 * a template full of zeros), and an unlimited memory with no word about
 * swap makes swap unlimited too, or the kernel would refuse a memory limit
 * above the memory+swap one. */
static void runc_update_semantics(struct spec_resources *r) {
  if (r->pids_limit && *r->pids_limit == 0)
    free(steal_pointer(&r->pids_limit));
  if (r->block_io && r->block_io->weight && *r->block_io->weight == 0)
    free(steal_pointer(&r->block_io->weight));
  struct spec_memory *m = r->memory;
  if (m && m->limit && *m->limit == -1 && (m->swap == NULL || *m->swap == 0))
    new_i64(&m->swap, -1);
}

/* "linux.resources.memory.limit: write memory.max: ..." becomes
 * "--memory `1k`: write memory.max: ..." when the value came from a flag. */
static void name_the_flag(cell_error *err, char *const *given) {
  for (int i = 0; i < UPD_END - UPD_MEMORY; i++) {
    const char *field = update_fields[i];
    size_t len = field ? strlen(field) : 0;
    if (!given[i] || !field || strncmp(err->msg, field, len) != 0 ||
        err->msg[len] != ':')
      continue;
    char *msg = xasprintf("--%s `%s`%s", option_name(UPD_MEMORY + i),
                          given[i], err->msg + len);
    free(err->msg);
    err->msg = msg;
    return;
  }
}

int cmd_update(const struct global *g, int argc, char **argv) {
  cleanup_resources struct spec_resources *r = xcalloc(1, sizeof(*r));
  char *given[UPD_END - UPD_MEMORY] = {NULL};
  const char *file = NULL;
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+r:h", update_opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(update_help, stdout);
      return 0;
    }
    if (opt == 'r') {
      file = optarg;
      continue;
    }
    if (opt < UPD_MEMORY || opt >= UPD_END)
      return bad_option("update", argv);
    int rc = set_flag(r, opt, optarg);
    if (rc != 0)
      return rc;
    given[opt - UPD_MEMORY] = optarg;
  }
  if (need_id("update", argc) < 0)
    return 1;
  cell_error *err = NULL;
  if (file) {
    for (int i = 0; i < UPD_END - UPD_MEMORY; i++)
      if (given[i])
        log_warn("update: --%s is ignored with --resources",
                 option_name(UPD_MEMORY + i));
    spec_resources_free(steal_pointer(&r));
    if (load_resources(file, &r, &err) < 0)
      return report(err);
    memset(given, 0, sizeof(given));
  }
  runc_update_semantics(r);
  if (container_update(g->root, argv[optind], r, &err) < 0) {
    name_the_flag(err, given);
    return report(err);
  }
  return 0;
}

/* ---- events ------------------------------------------------------------- */

static const char events_help[] =
    "Usage: cell events [--stats] [--interval DURATION] ID\n\n"
    "Print the container's events as JSON lines: its statistics every\n"
    "interval ({\"type\":\"stats\",...}) and each OOM kill "
    "({\"type\":\"oom\",...}),\nuntil it stops.\n\n"
    "  --interval D   how often to print the statistics (default 5s; a Go\n"
    "                 duration: 500ms, 2s, 1m30s)\n"
    "  --stats        print the statistics once and exit\n";

/* Go's time.ParseDuration: [-+]?(NUMBER UNIT)+ with units ns, us (or
 * µs), ms, s, m, h, and "0" alone. */
static bool parse_duration(const char *s, long double *ns) {
  static const struct {
    const char *name;
    long double ns;
  } units[] = {{"ns", 1},   {"us", 1e3},   {"\u00b5s", 1e3}, {"\u03bcs", 1e3},
               {"ms", 1e6}, {"s", 1e9},    {"m", 60e9},      {"h", 3600e9}};
  bool neg = *s == '-';
  if (*s == '-' || *s == '+')
    s++;
  if (strcmp(s, "0") == 0) {
    *ns = 0;
    return true;
  }
  if (*s == '\0')
    return false;
  long double total = 0;
  while (*s) {
    size_t whole = strspn(s, "0123456789"), frac = 0;
    if (s[whole] == '.')
      frac = strspn(s + whole + 1, "0123456789");
    size_t numlen = whole + (s[whole] == '.' ? 1 + frac : 0);
    if (whole + frac == 0 || numlen > 30)
      return false;
    char num[32];
    memcpy(num, s, numlen);
    num[numlen] = '\0';
    s += numlen;
    size_t ulen = strcspn(s, "0123456789.");
    bool found = false;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !found; i++) {
      if (strlen(units[i].name) == ulen &&
          strncmp(s, units[i].name, ulen) == 0) {
        total += strtold(num, NULL) * units[i].ns;
        found = true;
      }
    }
    if (!found)
      return false;
    s += ulen;
  }
  *ns = neg ? -total : total;
  return true;
}

/* Whole milliseconds, rounded up: at least one. */
static unsigned long long duration_ms(long double ns) {
  if (ns >= 1e18L)
    return 1000000000000ULL;
  unsigned long long ms = (unsigned long long)(ns / 1e6L);
  return (long double)ms * 1e6L < ns ? ms + 1 : ms;
}

static int print_event(const char *json, void *data, cell_error **err) {
  (void)data;
  if (printf("%s\n", json) < 0 || fflush(stdout) != 0)
    return cell_fail_errno(err, "write an event");
  return 0;
}

enum { EV_STATS = 256, EV_INTERVAL };

int cmd_events(const struct global *g, int argc, char **argv) {
  static const struct option opts[] = {
      {"stats", no_argument, NULL, EV_STATS},
      {"interval", required_argument, NULL, EV_INTERVAL},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  struct container_events_opts o = {.interval_ms = 5000, .emit = print_event};
  long double ns;
  int opt;
  optind = 0;
  while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (opt) {
    case EV_STATS: o.stats_only = true; break;
    case EV_INTERVAL:
      if (!parse_duration(optarg, &ns))
        return usage_error("events",
                           "--interval: `%s` is not a duration like 5s or "
                           "500ms",
                           optarg);
      if (ns <= 0)
        return usage_error("events",
                           "--interval: `%s`: the interval must be greater "
                           "than 0",
                           optarg);
      o.interval_ms = duration_ms(ns);
      break;
    case 'h': fputs(events_help, stdout); return 0;
    default: return bad_option("events", argv);
    }
  }
  if (need_id("events", argc) < 0)
    return 1;
  cell_error *err = NULL;
  if (container_events(g->root, argv[optind], &o, &err) < 0)
    return report(err);
  return 0;
}
