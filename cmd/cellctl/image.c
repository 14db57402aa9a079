/* cellctl image import|list|show|tag|rm: the image store of celld.
 *
 * import opens the source itself, with the caller's rights, and hands
 * celld the open fd (celld never opens a path on a client's word); the
 * transports of skopeo (docker://, containers-storage:, ...) are copied to
 * an oci-archive by skopeo first.  Progress: one line on a terminal, JSON
 * lines with --progress=json, nothing otherwise; Ctrl-C cancels (celld
 * drops the import when the connection goes). */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "output.h"
#include "progress.h"

struct import_args {
  const char *source;
  const char *as; /* NAME[:TAG] or NULL */
  enum progress_mode progress;
};

/* ---- the source ---------------------------------------------------------- */

static bool has_prefix(const char *s, const char *p) {
  return strncmp(s, p, strlen(p)) == 0;
}

/* Transports only skopeo reads. */
static bool skopeo_transport(const char *s) {
  static const char *const t[] = {"docker://", "containers-storage:",
                                  "docker-daemon:", "oci:", "dir:", NULL};
  for (size_t i = 0; t[i]; i++)
    if (has_prefix(s, t[i]))
      return true;
  return false;
}

static char *find_program(const char *name) {
  const char *path = getenv("PATH");
  if (!path)
    path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path; *p;) {
    size_t len = strcspn(p, ":");
    cleanup_free char *full = xasprintf("%.*s/%s", (int)len, p, name);
    if (access(full, X_OK) == 0)
      return steal_pointer(&full);
    p += len + (p[len] == ':');
  }
  return NULL;
}

/* skopeo copy SOURCE oci-archive:FILE, FILE opened and unlinked at once. */
static int copy_with_skopeo(const char *source, int *fd, cell_error **err) {
  cleanup_free char *skopeo = find_program("skopeo");
  if (!skopeo)
    return cell_fail(err, 0, "`%s`: this transport is read by skopeo, which is "
                     "not installed (apt-get install skopeo), or save the "
                     "image as an oci-archive and import that", source);
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
  cleanup_free char *dir = xasprintf("%s/cellctl-import-XXXXXX", tmp);
  if (!mkdtemp(dir))
    return cell_fail_errno(err, "mkdtemp in `%s`", tmp);
  cleanup_free char *file = xasprintf("%s/image.tar", dir);
  cleanup_free char *dest = xasprintf("oci-archive:%s", file);
  pid_t pid = fork();
  if (pid == 0) {
    execl(skopeo, "skopeo", "copy", "--quiet", source, dest, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  *fd = open(file, O_RDONLY | O_CLOEXEC);
  unlink(file);
  rmdir(dir);
  if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (*fd >= 0)
      close(*fd);
    return cell_fail(err, 0, "`skopeo copy %s` failed (its message is above)",
                     source);
  }
  if (*fd < 0)
    return cell_fail_errno(err, "open skopeo's copy of `%s`", source);
  return 0;
}

/* The source opened with our rights; *shown: what `image show` will say
 * it came from. */
static int open_source(const char *source, int *fd, char **shown,
                       cell_error **err) {
  if (strcmp(source, "-") == 0) {
    *fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    *shown = xstrdup("(standard input)");
    return *fd < 0 ? cell_fail_errno(err, "standard input") : 0;
  }
  if (skopeo_transport(source)) {
    *shown = xstrdup(source);
    return copy_with_skopeo(source, fd, err);
  }
  const char *path = source;
  if (has_prefix(source, "oci-archive:") || has_prefix(source, "docker-archive:"))
    path = strchr(source, ':') + 1;
  *fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (*fd < 0)
    return cell_fail_errno(err, "`%s`", path);
  char *abs = realpath(path, NULL);
  *shown = abs ? abs : xstrdup(path);
  return 0;
}

/* ---- import -------------------------------------------------------------- */

/* The source opened with the caller's rights, its fd handed to celld; the
 * answer once the import is done. */
static int run_import(const char *socket, const struct import_args *a,
                      struct json_value **answer, cell_error **err) {
  cleanup_close int fd = -1;
  cleanup_free char *shown = NULL;
  if (open_source(a->source, &fd, &shown, err) < 0)
    return EXIT_FAILED;
  cleanup_json_gen struct json_gen *g = request_new("image.import", NULL);
  json_gen_kv_string(g, "source", shown);
  if (a->as)
    json_gen_kv_string(g, "as", a->as);
  cleanup_free char *req = request_finish(g);
  return progress_call_with_fd(socket, req, fd, "importing", a->progress,
                               answer, err);
}

int image_import_source(const char *socket, const char *source, const char *as,
                        bool quiet, char **id, cell_error **err) {
  struct import_args a = {.source = source, .as = as,
                          .progress = quiet || !isatty(STDERR_FILENO)
                                          ? PROGRESS_NONE
                                          : PROGRESS_TTY};
  cleanup_json struct json_value *answer = NULL;
  int rc = run_import(socket, &a, &answer, err);
  if (rc == EXIT_OK)
    *id = xstrdup(field_string(json_object_get(answer, "image"), "id"));
  return rc;
}

static int parse_import(const struct invocation *inv, struct import_args *a,
                        cell_error **err) {
  a->progress = progress_mode_parse("auto");
  for (int i = 2; i < inv->argc; i++) {
    const char *arg = inv->argv[i];
    if ((strcmp(arg, "--name") == 0 || strcmp(arg, "--as") == 0) &&
        i + 1 < inv->argc) {
      a->as = inv->argv[++i];
    } else if (has_prefix(arg, "--name=")) {
      a->as = arg + 7;
    } else if (has_prefix(arg, "--progress=")) {
      int m = progress_mode_parse(arg + 11);
      if (m < 0)
        return usage_error(err, "--progress `%s`: auto, tty, json or none",
                           arg + 11);
      a->progress = (enum progress_mode)m;
    } else if (arg[0] == '-' && arg[1] != '\0') {
      return usage_error(err, "image import: unknown option `%s`", arg);
    } else if (a->source) {
      return usage_error(err, "image import: unexpected `%s`", arg);
    } else {
      a->source = arg;
    }
  }
  if (!a->source)
    return usage_error(err, "image import: SOURCE is needed (a directory, a "
                            "tarball, an OCI layout or archive, or -)");
  return EXIT_OK;
}

static int image_import(const struct invocation *inv, cell_error **err) {
  struct import_args a = {0};
  int rc = parse_import(inv, &a, err);
  if (rc != EXIT_OK)
    return rc;
  progress_cancel_on_signals("import", NULL);
  cleanup_json struct json_value *answer = NULL;
  rc = run_import(inv->socket, &a, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  if (a.progress == PROGRESS_JSON)
    print_json_line(answer);
  else
    printf("%s\n", field_string(json_object_get(answer, "image"), "id"));
  return EXIT_OK;
}

/* ---- list, show, tag, rm ------------------------------------------------- */

static bool want_json(const struct invocation *inv, int from, int *extra) {
  bool json = false;
  *extra = 0;
  for (int i = from; i < inv->argc; i++) {
    if (strcmp(inv->argv[i], "--json") == 0)
      json = true;
    else
      (*extra)++;
  }
  return json;
}

static int image_list(const struct invocation *inv, cell_error **err) {
  int extra;
  bool json = want_json(inv, 2, &extra);
  if (extra)
    return usage_error(err, "image list: only --json");
  cleanup_json_gen struct json_gen *g = request_new("image.list", NULL);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  int rc = client_request(inv->socket, req, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  const struct json_value *list = json_object_get(answer, "images");
  if (json)
    print_json(list);
  else
    print_images(list);
  return EXIT_OK;
}

/* A request naming an image (and the image ops' common shape). */
static int image_request(const struct invocation *inv, const char *op,
                         const char *image, const char *as,
                         struct json_value **answer, cell_error **err) {
  cleanup_json_gen struct json_gen *g = request_new(op, NULL);
  json_gen_kv_string(g, "image", image);
  if (as)
    json_gen_kv_string(g, "as", as);
  cleanup_free char *req = request_finish(g);
  return client_request(inv->socket, req, answer, err);
}

static int image_show(const struct invocation *inv, cell_error **err) {
  int extra;
  bool json = want_json(inv, 2, &extra);
  const char *image = NULL;
  for (int i = 2; i < inv->argc; i++)
    if (strcmp(inv->argv[i], "--json") != 0)
      image = inv->argv[i];
  if (extra != 1)
    return usage_error(err, "image show: one IMAGE (NAME[:TAG] or id)");
  cleanup_json struct json_value *answer = NULL;
  int rc = image_request(inv, "image.show", image, NULL, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  if (json)
    print_json(json_object_get(answer, "image"));
  else
    print_image(json_object_get(answer, "image"));
  return EXIT_OK;
}

static int image_tag(const struct invocation *inv, cell_error **err) {
  if (inv->argc != 4)
    return usage_error(err, "image tag: IMAGE NAME[:TAG]");
  cleanup_json struct json_value *answer = NULL;
  return image_request(inv, "image.tag", inv->argv[2], inv->argv[3], &answer,
                       err);
}

static int image_rm(const struct invocation *inv, cell_error **err) {
  if (inv->argc < 3)
    return usage_error(err, "image rm: IMAGE... (NAME[:TAG] or id)");
  for (int i = 2; i < inv->argc; i++) {
    cleanup_json struct json_value *answer = NULL;
    int rc = image_request(inv, "image.rm", inv->argv[i], NULL, &answer, err);
    if (rc != EXIT_OK)
      return rc;
  }
  return EXIT_OK;
}

int cmd_image(const struct invocation *inv, cell_error **err) {
  static const struct {
    const char *name;
    verb_fn *run;
  } subs[] = {{"import", image_import}, {"list", image_list}, {"ls", image_list},
              {"show", image_show},     {"tag", image_tag},   {"rm", image_rm}};
  if (inv->argc < 2)
    return usage_error(err, "image: import, list, show, tag or rm");
  for (size_t i = 0; i < sizeof(subs) / sizeof(*subs); i++)
    if (strcmp(inv->argv[1], subs[i].name) == 0)
      return subs[i].run(inv, err);
  return usage_error(err, "image: unknown `%s` (import, list, show, tag, rm)",
                     inv->argv[1]);
}
