/* cellctl's connection to celld (client.h). */
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"

static const char *socket_path(const char *flag) {
  if (flag)
    return flag;
  const char *env = getenv("CELL_SOCKET");
  return env && *env ? env : "/run/cell/celld.sock";
}

int client_dial(struct client *c, const char *flag, cell_error **err) {
  *c = (struct client){.fd = -1};
  const char *path = socket_path(flag);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path)) {
    cell_fail(err, 0, "socket `%s`: path too long", path);
    return EXIT_CONNECT;
  }
  strcpy(sa.sun_path, path);
  cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    int e = errno;
    cell_fail(err, 0, "connect to `%s`: %s: is celld running? (start celld, "
                      "or name its socket with --socket or CELL_SOCKET)",
              path, strerror(e));
    return EXIT_CONNECT;
  }
  c->fd = steal_fd(&fd);
  return EXIT_OK;
}

void client_close(struct client *c) {
  free(c->buf);
  c->buf = NULL;
  c->len = 0;
  cell_closep(&c->fd);
}

int client_send(struct client *c, const char *req, cell_error **err) {
  /* One write: celld may answer a request as soon as its line ends. */
  cleanup_free char *line = xasprintf("%s\n", req);
  if (cell_write_all(c->fd, line, strlen(line)) < 0) {
    cell_fail_errno(err, "send");
    return EXIT_CONNECT;
  }
  return EXIT_OK;
}

bool client_line_buffered(const struct client *c) {
  return c->buf && memchr(c->buf, '\n', c->len);
}

static void buffer_append(struct client *c, const char *data, size_t n) {
  c->buf = xrealloc(c->buf, c->len + n);
  memcpy(c->buf + c->len, data, n);
  c->len += n;
}

/* The first buffered line, taken out of the buffer. */
static char *take_line(struct client *c) {
  char *nl = memchr(c->buf, '\n', c->len);
  size_t n = (size_t)(nl - c->buf);
  char *line = xstrndup(c->buf, n);
  memmove(c->buf, nl + 1, c->len - n - 1);
  c->len -= n + 1;
  return line;
}

char *client_read_line(struct client *c) {
  while (!client_line_buffered(c)) {
    char tmp[65536];
    ssize_t r = read(c->fd, tmp, sizeof(tmp));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return NULL;
    buffer_append(c, tmp, (size_t)r);
  }
  return take_line(c);
}

char *client_read_answer(struct client *c, int *fd) {
  *fd = -1;
  while (!client_line_buffered(c)) {
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
    buffer_append(c, tmp, (size_t)r);
  }
  return take_line(c);
}

/* celld's reasons for a refusal (its "code"), each an exit status of its
 * own so that scripts can tell them apart. */
static const struct {
  const char *code;
  int status;
} refusal_codes[] = {
    {"failed", EXIT_FAILED},
    {"not-found", EXIT_NOT_FOUND},
    {"permission-denied", EXIT_PERMISSION},
    {"exists", EXIT_EXISTS},
    {"wrong-state", EXIT_WRONG_STATE},
    {"invalid-request", EXIT_INVALID},
    {"unknown-op", EXIT_INVALID},
};

/* An unknown code (a newer celld) or none (an older one): failed. */
static int refusal_status(const struct json_value *answer) {
  const struct json_value *code = json_object_get(answer, "code");
  if (!code || code->type != JSON_STRING)
    return EXIT_FAILED;
  for (size_t i = 0; i < sizeof(refusal_codes) / sizeof(*refusal_codes); i++)
    if (strcmp(code->u.string, refusal_codes[i].code) == 0)
      return refusal_codes[i].status;
  return EXIT_FAILED;
}

int client_answer(const char *line, struct json_value **out, cell_error **err) {
  cell_error *parse_err = NULL;
  if (json_parse(line, strlen(line), out, &parse_err) < 0 ||
      (*out)->type != JSON_OBJECT) {
    cell_fail(err, 0, "bad response: %s", parse_err ? parse_err->msg : line);
    cell_error_free(&parse_err);
    return EXIT_FAILED;
  }
  const struct json_value *ok = json_object_get(*out, "ok");
  if (ok && ok->type == JSON_BOOL && ok->u.boolean)
    return EXIT_OK;
  const struct json_value *e = json_object_get(*out, "error");
  cell_fail(err, 0, "%s", e && e->type == JSON_STRING ? e->u.string : "request failed");
  return refusal_status(*out);
}

int client_call(struct client *c, const char *req, struct json_value **out,
                cell_error **err) {
  int rc = client_send(c, req, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_free char *line = client_read_line(c);
  if (!line) {
    cell_fail(err, 0, "the daemon closed the connection");
    return EXIT_CONNECT;
  }
  return client_answer(line, out, err);
}

int client_request(const char *flag, const char *req, struct json_value **out,
                   cell_error **err) {
  cleanup_client struct client c = {.fd = -1};
  int rc = client_dial(&c, flag, err);
  return rc != EXIT_OK ? rc : client_call(&c, req, out, err);
}

struct json_gen *request_new(const char *op, const char *name) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_int(g, "version", 1);
  json_gen_kv_string(g, "op", op);
  if (name)
    json_gen_kv_string(g, "name", name);
  return g;
}

char *request_finish(struct json_gen *g) {
  json_gen_object_close(g);
  return json_gen_finish(g, NULL);
}

const char *field_string(const struct json_value *o, const char *key) {
  const struct json_value *v = json_object_get(o, key);
  return v && v->type == JSON_STRING ? v->u.string : "-";
}

long long field_int(const struct json_value *o, const char *key, long long dflt) {
  int64_t n;
  const struct json_value *v = json_object_get(o, key);
  return v && json_get_int64(v, &n) ? n : dflt;
}
