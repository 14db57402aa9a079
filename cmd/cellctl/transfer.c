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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "output.h"
#include "progress.h"

struct transfer_args {
  const char *name; /* export: the instance; import: --name, or NULL */
  const char *file; /* a path or - */
  enum progress_mode progress;
};

static bool has_prefix(const char *s, const char *p) {
  return strncmp(s, p, strlen(p)) == 0;
}

/* NAME/FILE and the options both verbs share; import's --name. */
static int parse_args(const struct invocation *inv, bool import,
                      struct transfer_args *a, cell_error **err) {
  const char *verb = import ? "import" : "export";
  const char *positional[2] = {NULL, NULL};
  int n = 0;
  int mode = progress_mode_parse("auto");
  for (int i = 1; i < inv->argc; i++) {
    const char *arg = inv->argv[i];
    if (import && strcmp(arg, "--name") == 0 && i + 1 < inv->argc) {
      a->name = inv->argv[++i];
    } else if (import && has_prefix(arg, "--name=")) {
      a->name = arg + 7;
    } else if (has_prefix(arg, "--progress=")) {
      mode = progress_mode_parse(arg + 11);
      if (mode < 0)
        return usage_error(err, "--progress `%s`: auto, tty, json or none",
                           arg + 11);
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
  /* A file made for the stream goes when the export does not complete. */
  const char *partial = strcmp(a.file, "-") == 0 ? NULL : a.file;
  progress_cancel_on_signals("export", partial);
  rc = progress_call_with_fd(inv->socket, req, fd, "exporting", a.progress,
                             &answer, err);
  if (rc != EXIT_OK) {
    if (partial)
      unlink(partial);
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
  progress_cancel_on_signals("import", NULL);
  rc = progress_call_with_fd(inv->socket, req, fd, "importing", a.progress,
                             &answer, err);
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
