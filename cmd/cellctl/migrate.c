/* cellctl migrate NAME --to CMD, cellctl receive.
 *
 * migrate runs CMD with `sh -c`, its standard input and output one end of
 * a socket pair, and hands the other end to celld: the source's celld
 * speaks to the target's over it.  CMD is whatever reaches `cellctl
 * receive` on the target (ssh host cellctl receive; in tests cellctl
 * --socket B receive), which hands its standard input and output to its
 * celld, and writes why the target failed, when it did, on the stream
 * itself. */
#include "migrate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "output.h"

/* The request with n fds riding along, and its answer. */
static int call_with_fds(const char *socket, const char *req, const int *fds,
                         size_t n, struct json_value **answer,
                         cell_error **err) {
  cleanup_client struct client c = {.fd = -1};
  int rc = client_dial(&c, socket, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_free char *line = xasprintf("%s\n", req);
  struct iovec iov = {.iov_base = line, .iov_len = strlen(line)};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  union cell_fd_control ctl;
  cell_msg_attach_fds(&mh, &ctl, fds, n);
  ssize_t sent;
  do
    sent = sendmsg(c.fd, &mh, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    cell_fail_errno(err, "send");
    return EXIT_CONNECT;
  }
  if ((size_t)sent < iov.iov_len &&
      cell_write_all(c.fd, line + sent, iov.iov_len - (size_t)sent) < 0) {
    cell_fail_errno(err, "send");
    return EXIT_CONNECT;
  }
  cleanup_free char *answer_line = client_read_line(&c);
  if (!answer_line) {
    cell_fail(err, 0, "the daemon closed the connection");
    return EXIT_CONNECT;
  }
  return client_answer(answer_line, answer, err);
}

/* ---- migrate ------------------------------------------------------------- */

/* What went while it ran and what went frozen, on standard error. */
static void print_figures(const struct json_value *answer) {
  fprintf(stderr, "layers sent while it ran: %lld (%lld bytes); already on "
          "the target: %lld\n", field_int(answer, "layers_sent", 0),
          field_int(answer, "layers_bytes", 0),
          field_int(answer, "layers_had", 0));
  const struct json_value *rounds = json_object_get(answer, "rounds");
  for (size_t i = 0;
       rounds && rounds->type == JSON_ARRAY && i < rounds->u.array.len; i++) {
    const struct json_value *r = rounds->u.array.items[i];
    fprintf(stderr, "pre-copy round %zu: %lld bytes of memory pages, %lld "
            "bytes of images\n", i + 1, field_int(r, "pages_bytes", 0),
            field_int(r, "bytes", 0));
  }
  const struct json_value *why = json_object_get(answer, "precopy_error");
  if (why && why->type == JSON_STRING)
    fprintf(stderr, "pre-copy stopped, the frozen dump took all the memory: "
            "%s\n", why->u.string);
  const struct json_value *frozen = json_object_get(answer, "frozen_images");
  fprintf(stderr, "frozen part: %lld bytes of memory pages, %lld bytes of "
          "images, %lld bytes of disk\n", field_int(frozen, "pages_bytes", 0),
          field_int(frozen, "bytes", 0),
          field_int(answer, "frozen_disk_bytes", 0));
  fprintf(stderr, "frozen for %lld ms\n", field_int(answer, "frozen_ms", 0));
}

/* CMD with the stream as its standard input and output. */
static pid_t run_to(const char *cmd, int stream, cell_error **err) {
  pid_t pid = fork();
  if (pid < 0)
    return cell_fail_errno(err, "fork");
  if (pid == 0) {
    if (dup2(stream, STDIN_FILENO) < 0 || dup2(stream, STDOUT_FILENO) < 0)
      _exit(127);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return pid;
}

static int wait_to(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return status;
}

int cmd_migrate(const struct invocation *inv, cell_error **err) {
  const char *name = NULL, *to = NULL;
  for (int i = 1; i < inv->argc; i++) {
    const char *a = inv->argv[i];
    if (strcmp(a, "--to") == 0 && i + 1 < inv->argc)
      to = inv->argv[++i];
    else if (strncmp(a, "--to=", 5) == 0)
      to = a + 5;
    else if (a[0] == '-')
      return usage_error(err, "migrate: unknown flag `%s` (NAME --to CMD)", a);
    else if (!name)
      name = a;
    else
      return usage_error(err, "migrate: unexpected `%s` (NAME --to CMD)", a);
  }
  if (!name || !to || !to[0])
    return usage_error(err, "migrate: NAME --to CMD (CMD: what runs `cellctl "
                            "receive` on the target, e.g. 'ssh host cellctl "
                            "receive')");
  /* Refused before CMD runs when it cannot be (not running, criu unusable
   * here): nothing touched on either side. */
  cleanup_json_gen struct json_gen *cg = request_new("migrate", name);
  json_gen_kv_bool(cg, "check", true);
  cleanup_free char *check = request_finish(cg);
  cleanup_json struct json_value *checked = NULL;
  int rc = client_request(inv->socket, check, &checked, err);
  if (rc != EXIT_OK)
    return rc;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    cell_fail_errno(err, "socketpair");
    return EXIT_FAILED;
  }
  pid_t pid = run_to(to, sv[1], err);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    return EXIT_FAILED;
  }
  cleanup_json_gen struct json_gen *g = request_new("migrate", name);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  /* celld holds the stream from here: CMD sees its end when celld's
   * child is done with it. */
  int fds[1] = {sv[0]};
  rc = call_with_fds(inv->socket, req, fds, 1, &answer, err);
  close(sv[0]);
  wait_to(pid);
  if (rc != EXIT_OK)
    return rc;
  printf("%s\n", field_string(answer, "name"));
  fflush(stdout);
  print_figures(answer);
  return EXIT_OK;
}

/* ---- receive ------------------------------------------------------------- */

static bool same_file(int a, int b) {
  struct stat sa, sb;
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

/* Why the target failed, on the stream, for the source; its celld says
 * the rest itself (the restored copy held, then the commit's answer). */
static void tell_source(const cell_error *failed) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", false);
  json_gen_kv_string(g, "error", failed->msg);
  json_gen_object_close(g);
  json_gen_write_line(g, STDOUT_FILENO);
}

int cmd_receive(const struct invocation *inv, cell_error **err) {
  if (inv->argc > 1)
    return usage_error(err, "receive: no arguments (the stream is standard "
                            "input and output, from cellctl migrate)");
  if (isatty(STDIN_FILENO) || isatty(STDOUT_FILENO))
    return usage_error(err, "receive: standard input and output are a "
                            "terminal: run it as cellctl migrate's --to CMD");
  int fds[2] = {STDIN_FILENO, STDOUT_FILENO};
  size_t n = same_file(STDIN_FILENO, STDOUT_FILENO) ? 1 : 2;
  cleanup_json_gen struct json_gen *g = request_new("receive", NULL);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  int rc = call_with_fds(inv->socket, req, fds, n, &answer, err);
  if (rc != EXIT_OK) {
    tell_source(*err);
    return rc;
  }
  fprintf(stderr, "received %s: running\n",
          field_string(json_object_get(answer, "instance"), "name"));
  return EXIT_OK;
}
