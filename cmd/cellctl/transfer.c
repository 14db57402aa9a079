/* cellctl export|import: an instance as one stream, to a file or a pipe
 * (`cellctl export web1 - | ssh host cellctl import -`).
 *
 * cellctl opens the file itself and hands celld the open fd (celld never
 * opens a path on a client's word).  Progress: one line on a terminal,
 * JSON lines with --progress=json, nothing otherwise; Ctrl-C cancels
 * (celld kills the export or import when the connection goes), and an
 * export that fails or is cancelled removes the file it was making. */
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "output.h"

enum progress_mode { PROGRESS_TTY, PROGRESS_JSON, PROGRESS_NONE };

struct transfer_args {
  const char *name; /* export: the instance; import: --name, or NULL */
  const char *file; /* a path or - */
  enum progress_mode progress;
};

/* The file an export is making, removed when it does not complete (a
 * signal handler reads it). */
static const char *volatile partial_file;
static volatile sig_atomic_t progress_shown;

static void on_interrupt(int sig) {
  static const char msg[] = "\ncellctl: cancelled\n";
  const char *m = progress_shown ? msg : msg + 1;
  (void)!write(STDERR_FILENO, m, strlen(m));
  if (partial_file)
    unlink(partial_file);
  _exit(128 + sig);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(char *buf, size_t len, double bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    u++;
  }
  snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

/* "exporting  layer 1/2  12.5 MiB  30.1 MiB/s" over itself. */
static void show_progress_line(const char *verb, const struct json_value *p,
                               double started) {
  long long bytes = field_int(p, "bytes", 0);
  long long part = field_int(p, "part", 0), parts = field_int(p, "parts", 0);
  double elapsed = now_s() - started;
  char done[32], speed[32];
  human(done, sizeof(done), (double)bytes);
  human(speed, sizeof(speed), elapsed > 0.2 ? (double)bytes / elapsed : 0);
  fprintf(stderr, "\r\033[K%s  %s %lld/%lld  %s", verb,
          field_string(p, "step"), part, parts, done);
  if (elapsed > 0.2)
    fprintf(stderr, "  %s/s", speed);
  fflush(stderr);
  progress_shown = 1;
}

/* Progress lines until the answer. */
static int await_answer(struct client *c, const char *verb,
                        enum progress_mode mode, struct json_value **answer,
                        cell_error **err) {
  double started = now_s();
  for (;;) {
    cleanup_free char *line = client_read_line(c);
    if (!line) {
      cell_fail(err, 0, "the daemon closed the connection");
      return EXIT_CONNECT;
    }
    cleanup_json struct json_value *v = NULL;
    cleanup_error cell_error *bad = NULL;
    const struct json_value *p = NULL;
    if (json_parse(line, strlen(line), &v, &bad) == 0 &&
        (p = json_object_get(v, "progress"))) {
      if (mode == PROGRESS_JSON) {
        printf("%s\n", line);
        fflush(stdout);
      } else if (mode == PROGRESS_TTY) {
        show_progress_line(verb, p, started);
      }
      continue;
    }
    if (progress_shown) {
      fputc('\n', stderr);
      progress_shown = 0;
    }
    return client_answer(line, answer, err);
  }
}

/* Send req with fd; then the answer, after the progress. */
static int call_with_fd(const struct invocation *inv, const char *req, int fd,
                        const char *verb, enum progress_mode mode,
                        struct json_value **answer, cell_error **err) {
  cleanup_client struct client c = {.fd = -1};
  int rc = client_dial(&c, inv->socket, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_free char *line = xasprintf("%s\n", req);
  if (cell_send_with_fd(c.fd, line, strlen(line), fd) < 0) {
    cell_fail_errno(err, "send");
    return EXIT_CONNECT;
  }
  signal(SIGINT, on_interrupt);
  signal(SIGTERM, on_interrupt);
  return await_answer(&c, verb, mode, answer, err);
}

static bool has_prefix(const char *s, const char *p) {
  return strncmp(s, p, strlen(p)) == 0;
}

/* NAME/FILE and the options both verbs share; import's --name. */
static int parse_args(const struct invocation *inv, bool import,
                      struct transfer_args *a, cell_error **err) {
  const char *verb = import ? "import" : "export";
  const char *positional[2] = {NULL, NULL};
  int n = 0;
  int mode = isatty(STDERR_FILENO) ? PROGRESS_TTY : PROGRESS_NONE;
  for (int i = 1; i < inv->argc; i++) {
    const char *arg = inv->argv[i];
    if (import && strcmp(arg, "--name") == 0 && i + 1 < inv->argc) {
      a->name = inv->argv[++i];
    } else if (import && has_prefix(arg, "--name=")) {
      a->name = arg + 7;
    } else if (has_prefix(arg, "--progress=")) {
      const char *m = arg + 11;
      mode = strcmp(m, "json") == 0   ? PROGRESS_JSON
             : strcmp(m, "tty") == 0  ? PROGRESS_TTY
             : strcmp(m, "none") == 0 ? PROGRESS_NONE
             : strcmp(m, "auto") == 0 ? mode
                                      : -1;
      if (mode < 0)
        return usage_error(err, "--progress `%s`: auto, tty, json or none", m);
    } else if (arg[0] == '-' && arg[1] != '\0') {
      return usage_error(err, "%s: unknown option `%s`", verb, arg);
    } else if (n < (import ? 1 : 2)) {
      positional[n++] = arg;
    } else {
      return usage_error(err, "%s: unexpected `%s`", verb, arg);
    }
  }
  a->progress = (enum progress_mode)mode;
  if (import) {
    a->file = positional[0];
    if (!a->file)
      return usage_error(err, "import: FILE is needed (or - for standard "
                              "input)");
    return EXIT_OK;
  }
  a->name = positional[0];
  a->file = positional[1];
  if (!a->name || !a->file)
    return usage_error(err, "export: NAME and FILE are needed (or - for "
                            "standard output)");
  return EXIT_OK;
}

/* ---- export -------------------------------------------------------------- */

/* FILE made new (never an existing file overwritten), or standard output
 * when it is not a terminal. */
static int open_output(const char *file, cell_error **err) {
  if (strcmp(file, "-") == 0) {
    if (isatty(STDOUT_FILENO))
      return cell_fail(err, 0, "export: standard output is a terminal: give "
                               "a FILE, or redirect it (> FILE, | ssh ...)");
    int fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    return fd < 0 ? cell_fail_errno(err, "standard output") : fd;
  }
  int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC,
                0600);
  if (fd < 0)
    return cell_fail_errno(err, "`%s`", file);
  partial_file = file;
  return fd;
}

int cmd_export(const struct invocation *inv, cell_error **err) {
  struct transfer_args a = {0};
  int rc = parse_args(inv, false, &a, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_close int fd = open_output(a.file, err);
  if (fd < 0)
    return EXIT_FAILED;
  cleanup_json_gen struct json_gen *g = request_new("export", a.name);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  rc = call_with_fd(inv, req, fd, "exporting", a.progress, &answer, err);
  if (rc != EXIT_OK) {
    if (partial_file)
      unlink(partial_file);
    return rc;
  }
  if (a.progress == PROGRESS_JSON)
    print_json_line(answer);
  else if (isatty(STDERR_FILENO) || strcmp(a.file, "-") != 0)
    fprintf(stderr, "exported %s: %lld bytes\n", a.name,
            field_int(answer, "size", 0));
  return EXIT_OK;
}

/* ---- import -------------------------------------------------------------- */

static int open_input(const char *file, cell_error **err) {
  if (strcmp(file, "-") == 0) {
    if (isatty(STDIN_FILENO))
      return cell_fail(err, 0, "import: standard input is a terminal: give "
                               "a FILE, or pipe a stream in");
    int fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    return fd < 0 ? cell_fail_errno(err, "standard input") : fd;
  }
  int fd = open(file, O_RDONLY | O_NOCTTY | O_CLOEXEC);
  return fd < 0 ? cell_fail_errno(err, "`%s`", file) : fd;
}

int cmd_import(const struct invocation *inv, cell_error **err) {
  struct transfer_args a = {0};
  int rc = parse_args(inv, true, &a, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_close int fd = open_input(a.file, err);
  if (fd < 0)
    return EXIT_FAILED;
  cleanup_json_gen struct json_gen *g = request_new("import", NULL);
  if (a.name)
    json_gen_kv_string(g, "as", a.name);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  rc = call_with_fd(inv, req, fd, "importing", a.progress, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  const struct json_value *warnings = json_object_get(answer, "warnings");
  for (size_t i = 0; warnings && warnings->type == JSON_ARRAY &&
                     i < warnings->u.array.len; i++)
    fprintf(stderr, "cellctl: warning: %s\n",
            warnings->u.array.items[i]->u.string);
  if (a.progress == PROGRESS_JSON)
    print_json_line(answer);
  else
    printf("%s\n", field_string(json_object_get(answer, "instance"), "name"));
  return EXIT_OK;
}
