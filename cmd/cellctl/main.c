/* cellctl: the command line of celld (docs/api.md).
 * Exit codes: 0 ok, 1 the daemon refused or failed, 2 usage, 3 cannot
 * connect (or the connection broke). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/console-client.h"
#include "runtime/foreground.h"
#include "base/json.h"
#include "base/util.h"

/* exec and enter exit with the command's status, or EXIT_EXEC when it could
 * not be run (the daemon refused, the connection failed). */
enum { EXIT_OK = 0, EXIT_DAEMON = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3,
       EXIT_EXEC = 125 };

static const char *socket_path(const char *flag) {
  if (flag)
    return flag;
  const char *env = getenv("CELL_SOCKET");
  return env && *env ? env : "/run/cell/celld.sock";
}

static int dial(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path)) {
    fprintf(stderr, "cellctl: socket `%s`: path too long\n", path);
    return -1;
  }
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    fprintf(stderr, "cellctl: connect to `%s`: %s\n", path, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

/* One response line (without the newline) or NULL at EOF/error. */
static char *read_line(int fd, char **buf, size_t *len) {
  for (;;) {
    char *nl = *buf ? memchr(*buf, '\n', *len) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - *buf);
      char *line = xstrndup(*buf, n);
      memmove(*buf, nl + 1, *len - n - 1);
      *len -= n + 1;
      return line;
    }
    char tmp[65536];
    ssize_t r = read(fd, tmp, sizeof(tmp));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return NULL;
    *buf = xrealloc(*buf, *len + (size_t)r);
    memcpy(*buf + *len, tmp, (size_t)r);
    *len += (size_t)r;
  }
}

struct client {
  int fd;
  char *buf;
  size_t len;
};

/* Send one request; the parsed response in *out.  Returns an exit code. */
static int call(struct client *c, const char *req, struct json_value **out) {
  size_t n = strlen(req);
  if (cell_write_all(c->fd, req, n) < 0 || cell_write_all(c->fd, "\n", 1) < 0) {
    fprintf(stderr, "cellctl: send: %s\n", strerror(errno));
    return EXIT_CONNECT;
  }
  cleanup_free char *line = read_line(c->fd, &c->buf, &c->len);
  if (!line) {
    fprintf(stderr, "cellctl: the daemon closed the connection\n");
    return EXIT_CONNECT;
  }
  cell_error *err = NULL;
  if (json_parse(line, strlen(line), out, &err) < 0 || (*out)->type != JSON_OBJECT) {
    fprintf(stderr, "cellctl: bad response: %s\n", err ? err->msg : line);
    cell_error_free(&err);
    return EXIT_DAEMON;
  }
  const struct json_value *ok = json_object_get(*out, "ok");
  if (!ok || ok->type != JSON_BOOL || !ok->u.boolean) {
    const struct json_value *e = json_object_get(*out, "error");
    fprintf(stderr, "cellctl: %s\n",
            e && e->type == JSON_STRING ? e->u.string : "request failed");
    return EXIT_DAEMON;
  }
  return EXIT_OK;
}

static const char *s_of(const struct json_value *o, const char *k) {
  const struct json_value *v = json_object_get(o, k);
  return v && v->type == JSON_STRING ? v->u.string : "-";
}

static long long n_of(const struct json_value *o, const char *k, long long dflt) {
  int64_t n;
  const struct json_value *v = json_object_get(o, k);
  return v && json_get_int64(v, &n) ? n : dflt;
}

static void print_json(const struct json_value *v) {
  struct json_gen *g = json_gen_new(true);
  json_gen_value(g, v);
  cleanup_free char *s = json_gen_finish(g, NULL);
  json_gen_free(g);
  fputs(s, stdout);
}

static char *limits_text(const struct json_value *i) {
  long long mem = n_of(i, "memory", 0), cpu = n_of(i, "cpu_milli", 0),
            pids = n_of(i, "pids", 0);
  cleanup_free char *m = mem ? xasprintf("%lldM", mem >> 20) : xstrdup("-");
  cleanup_free char *c = cpu ? xasprintf("%lld.%02lld", cpu / 1000, cpu % 1000 / 10)
                             : xstrdup("-");
  cleanup_free char *p = pids ? xasprintf("%lld", pids) : xstrdup("-");
  return xasprintf("%s/%s/%s", m, c, p);
}

/* The first address of the first network (IPv4 before IPv6), or "-". */
static const char *address_text(const struct json_value *i) {
  const struct json_value *nets = json_object_get(i, "networks");
  if (!nets || nets->type != JSON_ARRAY || nets->u.array.len == 0)
    return "-";
  const struct json_value *n = nets->u.array.items[0];
  const char *v4 = s_of(n, "ipv4");
  return strcmp(v4, "-") != 0 ? v4 : s_of(n, "ipv6");
}

static void print_table(const struct json_value *list) {
  printf("%-20s %-10s %-8s %-10s %-5s %-18s %-16s %s\n", "NAME", "STATE", "PID",
         "IDS", "EXIT", "MEM/CPU/PIDS", "ADDRESS", "TEMPLATE");
  for (size_t k = 0; list && k < list->u.array.len; k++) {
    const struct json_value *i = list->u.array.items[k];
    long long code = n_of(i, "exit_code", -1);
    cleanup_free char *exit = code >= 0 ? xasprintf("%lld", code) : xstrdup("-");
    cleanup_free char *lim = limits_text(i);
    printf("%-20s %-10s %-8lld %-10lld %-5s %-18s %-16s %s\n", s_of(i, "name"),
           s_of(i, "state"), n_of(i, "pid", 0), n_of(i, "id_start", 0), exit,
           lim, address_text(i), s_of(i, "template"));
  }
}

static void print_networks(const struct json_value *list) {
  printf("%-16s %-16s %-18s %-24s %-6s %s\n", "NAME", "BRIDGE", "IPV4", "IPV6",
         "MTU", "INSTANCES");
  for (size_t k = 0; list && list->type == JSON_ARRAY && k < list->u.array.len; k++) {
    const struct json_value *n = list->u.array.items[k];
    long long mtu = n_of(n, "mtu", 0);
    cleanup_free char *m = mtu ? xasprintf("%lld", mtu) : xstrdup("-");
    printf("%-16s %-16s %-18s %-24s %-6s %lld\n", s_of(n, "name"),
           s_of(n, "bridge"), s_of(n, "subnet4"), s_of(n, "subnet6"),
           m, n_of(n, "instances", 0));
  }
}

static void print_show(const struct json_value *i) {
  const char *keys[] = {"name", "state", "template", "hostname", "restart",
                        "created", "exit_time", "rootfs_mode"};
  for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++)
    printf("%-12s %s\n", keys[k], s_of(i, keys[k]));
  printf("%-12s %lld\n", "pid", n_of(i, "pid", 0));
  long long code = n_of(i, "exit_code", -1);
  if (code >= 0)
    printf("%-12s %lld\n", "exit_code", code);
  else
    printf("%-12s unknown\n", "exit_code");
  printf("%-12s %lld-%lld\n", "ids", n_of(i, "id_start", 0),
         n_of(i, "id_start", 0) + n_of(i, "id_count", 0) - 1);
  cleanup_free char *lim = limits_text(i);
  printf("%-12s %s\n", "limits", lim);
  printf("%-12s %lld\n", "owner", n_of(i, "owner", 0));
  printf("%-12s %lld\n", "restarts", n_of(i, "restarts", 0));
  const struct json_value *nets = json_object_get(i, "networks");
  for (size_t k = 0; nets && nets->type == JSON_ARRAY && k < nets->u.array.len; k++) {
    const struct json_value *n = nets->u.array.items[k];
    printf("%-12s %s on %s:", "network", s_of(n, "interface"), s_of(n, "network"));
    for (const char *const *k = (const char *const[]){"ipv4", "ipv6", NULL}; *k; k++)
      if (strcmp(s_of(n, *k), "-") != 0)
        printf(" %s", s_of(n, *k));
    printf(" (host side %s)\n", s_of(n, "host_veth"));
  }
  const struct json_value *init = json_object_get(i, "init");
  printf("%-12s", "init");
  for (size_t k = 0; init && init->type == JSON_ARRAY && k < init->u.array.len; k++)
    printf(" %s", init->u.array.items[k]->u.string);
  printf("\n");
}

/* SIZE: bytes, or with K/M/G (powers of 1024). */
static bool parse_size(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long n = strtoll(s, &end, 10);
  if (errno || end == s || n < 0)
    return false;
  long long mul = 1;
  if (*end == 'k' || *end == 'K')
    mul = 1LL << 10;
  else if (*end == 'm' || *end == 'M')
    mul = 1LL << 20;
  else if (*end == 'g' || *end == 'G')
    mul = 1LL << 30;
  else if (*end != '\0')
    return false;
  if (*end && end[1] != '\0' && strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
    return false;
  if (n > INT64_MAX / mul)
    return false;
  *out = n * mul;
  return true;
}

static bool parse_cpus(const char *s, double *out) {
  char *end;
  errno = 0;
  double d = strtod(s, &end);
  if (errno || end == s || *end || d < 0 || d > 4096)
    return false;
  *out = d;
  return true;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: cellctl [--socket PATH] COMMAND ...\n"
          "  create NAME --template DIR [--memory SIZE] [--cpus N] [--pids N]\n"
          "         [--init CMD] [--autostart] [--restart no|on-failure[:N]|always]\n"
          "         [--hostname H] [--net NETWORK[:ADDRESS]]... (eth0, eth1, ...)\n"
          "  start NAME | stop NAME [--timeout S] | restart NAME [--timeout S]\n"
          "  destroy NAME [-f] | list [--json] | show NAME [--json]\n"
          "  set NAME memory=SIZE cpus=N pids=N | events [--json]\n"
          "  exec NAME [-t] -- CMD... | enter NAME (a login shell as its root)\n"
          "  console NAME   its console (the last 64 KiB first); Ctrl-] detaches\n"
          "  networks [--json]  the networks instances can join (celld.conf)\n"
          "  raw            send stdin lines as they are, print the answers\n"
          "exit: 0 ok, 1 error from the daemon, 2 usage, 3 cannot connect;\n"
          "exec/enter: the command's status, 125 when it could not be run\n");
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "cellctl: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  usage(stderr);
  return EXIT_USAGE;
}

static void gen_init(struct json_gen *g, const char *cmd) {
  /* --init "CMD ARGS": split on blanks (no shell quoting). */
  json_gen_key(g, "init");
  json_gen_array_open(g);
  cleanup_free char *copy = xstrdup(cmd);
  for (char *save = NULL, *w = strtok_r(copy, " \t", &save); w;
       w = strtok_r(NULL, " \t", &save))
    json_gen_string(g, w);
  json_gen_array_close(g);
}

/* --net NAME[:ADDR], in order: eth0, eth1, ...  NAME has no `:`, so an
 * IPv6 ADDR keeps all of its own. */
static void gen_networks(struct json_gen *g, const char *const *nets, size_t n) {
  json_gen_key(g, "networks");
  json_gen_array_open(g);
  for (size_t i = 0; i < n; i++) {
    const char *colon = strchr(nets[i], ':');
    cleanup_free char *name =
        colon ? xstrndup(nets[i], (size_t)(colon - nets[i])) : xstrdup(nets[i]);
    json_gen_object_open(g);
    json_gen_kv_string(g, "network", name);
    if (colon)
      json_gen_kv_string(g, "address", colon + 1);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
}

static int build_create(int argc, char **argv, struct json_gen *g) {
  static const struct option opts[] = {
      {"template", required_argument, NULL, 't'},
      {"memory", required_argument, NULL, 'm'},
      {"cpus", required_argument, NULL, 'c'},
      {"pids", required_argument, NULL, 'p'},
      {"init", required_argument, NULL, 'i'},
      {"autostart", no_argument, NULL, 'a'},
      {"restart", required_argument, NULL, 'r'},
      {"hostname", required_argument, NULL, 'H'},
      {"net", required_argument, NULL, 'n'},
      {NULL, 0, NULL, 0},
  };
  const char *nets[16];
  size_t n_nets = 0;
  int o;
  while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    long long n;
    double d;
    switch (o) {
    case 't': {
      cleanup_free char *abs = realpath(optarg, NULL);
      json_gen_kv_string(g, "template", abs ? abs : optarg);
      break;
    }
    case 'm':
      if (!parse_size(optarg, &n))
        return usage_error("--memory `%s`: expected a size like 256M", optarg);
      json_gen_key(g, "memory");
      json_gen_int(g, n);
      break;
    case 'c':
      if (!parse_cpus(optarg, &d))
        return usage_error("--cpus `%s`: expected a number like 0.5", optarg);
      json_gen_key(g, "cpus");
      json_gen_double(g, d);
      break;
    case 'p':
      if (!cell_parse_ll(optarg, 1, INT32_MAX, &n))
        return usage_error("--pids `%s`: expected a positive integer", optarg);
      json_gen_key(g, "pids");
      json_gen_int(g, n);
      break;
    case 'i': gen_init(g, optarg); break;
    case 'a': json_gen_kv_bool(g, "autostart", true); break;
    case 'r': json_gen_kv_string(g, "restart", optarg); break;
    case 'H': json_gen_kv_string(g, "hostname", optarg); break;
    case 'n':
      if (n_nets == sizeof(nets) / sizeof(*nets))
        return usage_error("--net `%s`: too many networks", optarg);
      nets[n_nets++] = optarg;
      break;
    default: return EXIT_USAGE;
    }
  }
  if (optind != argc)
    return usage_error("create: unexpected `%s`", argv[optind]);
  if (n_nets > 0)
    gen_networks(g, nets, n_nets);
  return EXIT_OK;
}

static int build_set(int argc, char **argv, struct json_gen *g) {
  if (argc < 1)
    return usage_error("%s", "set: NAME memory=.. cpus=.. pids=..");
  for (int i = 0; i < argc; i++) {
    long long n;
    double d;
    if (strncmp(argv[i], "memory=", 7) == 0 && parse_size(argv[i] + 7, &n)) {
      json_gen_key(g, "memory");
      json_gen_int(g, n);
    } else if (strncmp(argv[i], "cpus=", 5) == 0 && parse_cpus(argv[i] + 5, &d)) {
      json_gen_key(g, "cpus");
      json_gen_double(g, d);
    } else if (strncmp(argv[i], "pids=", 5) == 0 &&
               cell_parse_ll(argv[i] + 5, 0, INT32_MAX, &n)) {
      json_gen_key(g, "pids");
      json_gen_int(g, n);
    } else {
      return usage_error("set: `%s`: expected memory=SIZE, cpus=N or pids=N", argv[i]);
    }
  }
  return EXIT_OK;
}

static int stream_events(struct client *c, bool json) {
  for (;;) {
    cleanup_free char *line = read_line(c->fd, &c->buf, &c->len);
    if (!line)
      return EXIT_CONNECT;
    if (json) {
      printf("%s\n", line);
    } else {
      cleanup_json struct json_value *v = NULL;
      cell_error *err = NULL;
      if (json_parse(line, strlen(line), &v, &err) < 0) {
        cell_error_free(&err);
        continue;
      }
      long long code = n_of(v, "exit_code", -1);
      printf("%s %-10s %s", s_of(v, "time"), s_of(v, "event"), s_of(v, "name"));
      if (strcmp(s_of(v, "event"), "died") == 0) {
        if (code >= 0)
          printf(" exit_code=%lld", code);
        else
          printf(" exit_code=unknown");
      }
      printf("\n");
    }
    fflush(stdout);
  }
}

static int raw_mode(struct client *c) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int rc = EXIT_OK;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    /* The daemon may answer (an oversized request) and close before it
     * read everything: still print what it said. */
    bool sent = cell_write_all(c->fd, line, (size_t)n) >= 0;
    if (sent && line[n - 1] != '\n')
      break;
    char *resp = read_line(c->fd, &c->buf, &c->len);
    if (!resp) {
      rc = EXIT_CONNECT;
      break;
    }
    printf("%s\n", resp);
    free(resp);
  }
  free(line);
  return rc;
}

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

/* The first answer line, with the pty master when one rides along. */
static char *read_answer(struct client *c, int *fd) {
  *fd = -1;
  for (;;) {
    char *nl = c->buf ? memchr(c->buf, '\n', c->len) : NULL;
    if (nl)
      return read_line(c->fd, &c->buf, &c->len);
    char tmp[4096];
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } control;
    struct iovec iov = {tmp, sizeof(tmp)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf)};
    ssize_t r = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return NULL;
    struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
    if (h && h->cmsg_type == SCM_RIGHTS && *fd < 0)
      memcpy(fd, CMSG_DATA(h), sizeof(int));
    c->buf = xrealloc(c->buf, c->len + (size_t)r);
    memcpy(c->buf + c->len, tmp, (size_t)r);
    c->len += (size_t)r;
  }
}

static void forward_signal(struct client *c, int sig) {
  char req[80];
  int n = snprintf(req, sizeof(req),
                   "{\"version\":1,\"op\":\"signal\",\"signal\":%d}\n", sig);
  cell_write_all(c->fd, req, (size_t)n);
}

/* An answer line with exit_code: the command is done. */
static bool exit_line(const char *line, int *code) {
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(line, strlen(line), &v, &err) < 0) {
    cell_error_free(&err);
    return false;
  }
  long long n = n_of(v, "exit_code", -1);
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

/* Until the exit line: signals to the command (through celld), and with a
 * terminal, our terminal to and from its pty. */
static int proxy(struct client *c, struct foreground *fg, int *code) {
  bool in_open = fg->master >= 0, out_open = fg->master >= 0;
  for (;;) {
    struct pollfd p[4] = {{.fd = fg->sfd, .events = POLLIN},
                          {.fd = c->fd, .events = POLLIN},
                          {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN},
                          {.fd = out_open ? fg->master : -1, .events = POLLIN}};
    bool pending = c->buf && memchr(c->buf, '\n', c->len);
    if (poll(p, 4, pending ? 0 : -1) < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (p[0].revents & POLLIN) {
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
    if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
      in_open = foreground_pump(STDIN_FILENO, fg->master);
    if (p[3].revents & (POLLIN | POLLHUP | POLLERR))
      out_open = foreground_pump(fg->master, STDOUT_FILENO);
    /* The exit line may have come in the same read as the first answer. */
    bool buffered = c->buf && memchr(c->buf, '\n', c->len);
    if (buffered || (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      cleanup_free char *line = read_line(c->fd, &c->buf, &c->len);
      if (!line) {
        fprintf(stderr, "cellctl: lost the connection to celld: the command's "
                        "status is unknown\n");
        return -1;
      }
      if (exit_line(line, code)) {
        if (out_open)
          drain(fg->master);
        return 0;
      }
    }
  }
}

static int run_exec(const char *sock, const char *name, char **argv, bool tty) {
  if (tty && !foreground_has_terminal()) {
    fprintf(stderr, "cellctl: exec -t: stdin is not a terminal\n");
    return EXIT_USAGE;
  }
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_int(g, "version", 1);
  json_gen_kv_string(g, "op", "exec");
  json_gen_kv_string(g, "name", name);
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
  json_gen_object_close(g);
  cleanup_free char *body = json_gen_finish(g, NULL);
  json_gen_free(g);
  cleanup_free char *req = xasprintf("%s\n", body);
  struct client c = {.fd = dial(socket_path(sock))};
  if (c.fd < 0)
    return EXIT_EXEC;
  int rc = EXIT_EXEC, master = -1, code = 0;
  cleanup_json struct json_value *resp = NULL;
  int sent = tty ? (int)cell_write_all(c.fd, req, strlen(req))
                 : send_with_stdio(c.fd, req, strlen(req));
  cleanup_free char *line = sent < 0 ? NULL : read_answer(&c, &master);
  cell_error *err = NULL;
  if (!line) {
    fprintf(stderr, "cellctl: the daemon closed the connection\n");
    goto out;
  }
  if (json_parse(line, strlen(line), &resp, &err) < 0) {
    fprintf(stderr, "cellctl: bad response: %s\n", err->msg);
    cell_error_free(&err);
    goto out;
  }
  const struct json_value *ok = json_object_get(resp, "ok");
  if (!ok || ok->type != JSON_BOOL || !ok->u.boolean) {
    fprintf(stderr, "cellctl: %s\n", s_of(resp, "error"));
    goto out;
  }
  if (tty && master < 0) {
    fprintf(stderr, "cellctl: exec: the daemon sent no terminal\n");
    goto out;
  }
  struct foreground fg;
  if (foreground_begin(&fg, &err) < 0 ||
      (master >= 0 && foreground_attach_terminal(&fg, steal_fd(&master), &err) < 0)) {
    fprintf(stderr, "cellctl: %s\n", err->msg);
    cell_error_free(&err);
    foreground_end(&fg);
    goto out;
  }
  if (proxy(&c, &fg, &code) == 0)
    rc = code;
  foreground_end(&fg);
out:
  if (master >= 0)
    close(master);
  free(c.buf);
  close(c.fd);
  return rc;
}

/* ---- console ------------------------------------------------------------------ */

/* Attached until the detach key or the end of the console: 0 then, 1 when
 * refused, 3 without a daemon. */
static int run_console(const char *sock, const char *name) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_int(g, "version", 1);
  json_gen_kv_string(g, "op", "console");
  json_gen_kv_string(g, "name", name);
  json_gen_object_close(g);
  cleanup_free char *body = json_gen_finish(g, NULL);
  json_gen_free(g);
  cleanup_free char *req = xasprintf("%s\n", body);
  struct client c = {.fd = dial(socket_path(sock))};
  if (c.fd < 0)
    return EXIT_CONNECT;
  int fd = -1, rc = EXIT_DAEMON;
  cleanup_json struct json_value *resp = NULL;
  cell_error *err = NULL;
  enum console_end end = CONSOLE_CLOSED;
  cleanup_free char *line =
      cell_write_all(c.fd, req, strlen(req)) < 0 ? NULL : read_answer(&c, &fd);
  free(c.buf);
  close(c.fd);
  if (!line) {
    fprintf(stderr, "cellctl: the daemon closed the connection\n");
    rc = EXIT_CONNECT;
    goto out;
  }
  if (json_parse(line, strlen(line), &resp, &err) < 0) {
    fprintf(stderr, "cellctl: bad response: %s\n", err->msg);
    goto out;
  }
  const struct json_value *ok = json_object_get(resp, "ok");
  if (!ok || ok->type != JSON_BOOL || !ok->u.boolean) {
    fprintf(stderr, "cellctl: %s\n", s_of(resp, "error"));
    goto out;
  }
  if (fd < 0) {
    fprintf(stderr, "cellctl: console: the daemon sent no socket\n");
    goto out;
  }
  fprintf(stderr, "cellctl: console of `%s`; detach with Ctrl-]\n", name);
  if (console_client(fd, &end, &err) < 0) {
    fprintf(stderr, "cellctl: %s\n", err->msg);
    goto out;
  }
  rc = EXIT_OK;
  if (end == CONSOLE_DETACHED)
    fputc('\n', stderr);
  else if (end == CONSOLE_CLOSED)
    fprintf(stderr, "\ncellctl: the console of `%s` closed (the instance stopped)\n", name);
out:
  cell_error_free(&err);
  if (fd >= 0)
    close(fd);
  return rc;
}

int main(int argc, char **argv) {
  const char *sock = NULL;
  int i = 1;
  signal(SIGPIPE, SIG_IGN);
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
      sock = argv[++i];
    } else if (strncmp(argv[i], "--socket=", 9) == 0) {
      sock = argv[i] + 9;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return EXIT_OK;
    } else {
      return usage_error("unknown option `%s`", argv[i]);
    }
  }
  if (i >= argc)
    return usage_error("%s", "a command is needed");
  const char *cmd = argv[i++];
  int rest = argc - i;
  char **args = argv + i;
  if (strcmp(cmd, "console") == 0) {
    if (rest != 1 || args[0][0] == '-')
      return usage_error("%s", "console: NAME (and nothing else)");
    return run_console(sock, args[0]);
  }
  if (strcmp(cmd, "exec") == 0 || strcmp(cmd, "enter") == 0) {
    if (rest < 1 || args[0][0] == '-')
      return usage_error("%s: NAME is needed", cmd);
    const char *name = args[0];
    if (cmd[1] == 'n') {
      if (rest != 1)
        return usage_error("enter: unexpected `%s`", args[1]);
      /* A login shell as the instance's root; a terminal when we have one. */
      char *shell[] = {"/bin/sh", "-l", NULL};
      return run_exec(sock, name, shell, foreground_has_terminal());
    }
    bool tty = false;
    int k = 1;
    for (; k < rest && strcmp(args[k], "--") != 0; k++) {
      if (strcmp(args[k], "-t") == 0 || strcmp(args[k], "--tty") == 0)
        tty = true;
      else
        return usage_error("exec: unexpected `%s` (NAME [-t] -- CMD...)", args[k]);
    }
    if (k + 1 >= rest)
      return usage_error("%s", "exec: NAME [-t] -- CMD... (the command is missing)");
    return run_exec(sock, name, args + k + 1, tty);
  }
  bool json = false, force = false;
  int timeout = -1;
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_int(g, "version", 1);
  int rc = EXIT_OK;
  static const char *const named[] = {"create", "start", "stop", "restart",
                                      "destroy", "show", "set", NULL};
  bool needs_name = false;
  for (const char *const *n = named; *n; n++)
    needs_name |= strcmp(cmd, *n) == 0;
  bool known = needs_name || strcmp(cmd, "list") == 0 ||
               strcmp(cmd, "events") == 0 || strcmp(cmd, "raw") == 0 ||
               strcmp(cmd, "networks") == 0;
  if (!known) {
    json_gen_free(g);
    return usage_error("unknown command `%s`", cmd);
  }
  json_gen_kv_string(g, "op", cmd);
  if (needs_name) {
    if (rest < 1 || args[0][0] == '-') {
      json_gen_free(g);
      return usage_error("%s: NAME is needed", cmd);
    }
    json_gen_kv_string(g, "name", args[0]);
    args++;
    rest--;
  }
  if (strcmp(cmd, "create") == 0) {
    optind = 0;
    rc = build_create(rest + 1, args - 1, g);
  } else if (strcmp(cmd, "set") == 0) {
    rc = rest < 1 ? usage_error("%s", "set: memory=.. cpus=.. pids=..")
                  : build_set(rest, args, g);
  } else {
    for (int k = 0; k < rest && rc == EXIT_OK; k++) {
      if (strcmp(args[k], "--json") == 0 &&
          (strcmp(cmd, "list") == 0 || strcmp(cmd, "show") == 0 ||
           strcmp(cmd, "events") == 0 || strcmp(cmd, "networks") == 0))
        json = true;
      else if ((strcmp(args[k], "-f") == 0 || strcmp(args[k], "--force") == 0) &&
               strcmp(cmd, "destroy") == 0)
        force = true;
      else if (strcmp(args[k], "--timeout") == 0 && k + 1 < rest &&
               (strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0)) {
        long long n;
        if (!cell_parse_ll(args[++k], 0, 3600, &n))
          rc = usage_error("--timeout `%s`: expected seconds (0-3600)", args[k]);
        timeout = (int)n;
      } else
        rc = usage_error("unexpected argument `%s`", args[k]);
    }
  }
  if (force)
    json_gen_kv_bool(g, "force", true);
  if (timeout >= 0)
    json_gen_kv_int(g, "timeout", timeout);
  json_gen_object_close(g);
  cleanup_free char *req = json_gen_finish(g, NULL);
  json_gen_free(g);
  if (rc != EXIT_OK)
    return rc;
  /* Before any goto: its cleanup runs at the end of the scope. */
  cleanup_json struct json_value *resp = NULL;
  struct client c = {.fd = dial(socket_path(sock))};
  if (c.fd < 0)
    return EXIT_CONNECT;
  if (strcmp(cmd, "raw") == 0) {
    rc = raw_mode(&c);
    goto out;
  }
  rc = call(&c, req, &resp);
  if (rc != EXIT_OK)
    goto out;
  if (strcmp(cmd, "events") == 0) {
    rc = stream_events(&c, json);
  } else if (strcmp(cmd, "list") == 0) {
    const struct json_value *list = json_object_get(resp, "instances");
    if (json)
      print_json(list);
    else
      print_table(list);
  } else if (strcmp(cmd, "networks") == 0) {
    const struct json_value *nets = json_object_get(resp, "networks");
    if (json)
      print_json(nets);
    else
      print_networks(nets);
  } else if (strcmp(cmd, "show") == 0) {
    const struct json_value *inst = json_object_get(resp, "instance");
    if (json)
      print_json(inst);
    else if (inst)
      print_show(inst);
  }
out:
  free(c.buf);
  close(c.fd);
  return rc;
}
