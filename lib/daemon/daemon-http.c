/* The metrics endpoint, on libmicrohttpd in its external mode: MHD's
 * epoll fd sits in celld's epoll set and MHD_run does what is ready, on
 * non-blocking sockets.  So the handler runs in celld's loop and renders
 * from celld's own single-threaded data as it is at that moment (no
 * snapshot, no lock, no thread to outlive a fork), and a slow or silent
 * client costs a connection slot, never a wait: MHD drops it after
 * IDLE_TIMEOUT_S, and at most MAX_CLIENTS are served at once.
 *
 * With metrics_token_file, every request must carry that file's token as
 * `Authorization: Bearer TOKEN` (RFC 6750), compared in a time that does
 * not depend on how much of it a guess got right; otherwise 401. */
#include "daemon/daemon-http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/daemon-usage.h"

#define MAX_CLIENTS 16
#define IDLE_TIMEOUT_S 10
/* A token shorter than this is refused at start: guessable. */
#define TOKEN_MIN_LEN 16
#define TOKEN_MAX_LEN 1024

struct daemon_http {
  struct MHD_Daemon *mhd;
  int epfd;  /* MHD's, watched by celld */
  int timer; /* MHD's next timeout (idle clients) */
  char *token; /* NULL: no token asked */
};

/* ---- the token ----------------------------------------------------------- */

/* RFC 6750's b64token: what may follow `Bearer ` in a header. */
static bool token_chars_ok(const char *t) {
  size_t n = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789-._~+/");
  return n > 0 && t[n + strspn(t + n, "=")] == '\0';
}

/* The file must be root's and closed to others: anyone who can read it
 * reads every instance's usage, and one who can write it chooses the
 * token. */
static int token_file_safe(const char *path, const struct stat *st,
                           cell_error **err) {
  if (!S_ISREG(st->st_mode))
    return cell_fail(err, EINVAL, "metrics_token_file `%s`: not a regular file",
                     path);
  if (st->st_uid != 0 || (st->st_mode & (S_IRWXO | S_IWGRP)))
    return cell_fail(err, EPERM,
                     "metrics_token_file `%s`: owned by uid %u with mode %04o: "
                     "it must be owned by root and neither readable nor "
                     "writable by others (chown root %s; chmod 600 %s)",
                     path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777),
                     path, path);
  return 0;
}

/* The token: the file's one line, its newline and blanks around it
 * dropped. */
static char *read_token(const char *path, cell_error **err) {
  cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    cell_fail_errno(err, "metrics_token_file `%s`: open", path);
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    cell_fail_errno(err, "metrics_token_file `%s`: stat", path);
    return NULL;
  }
  if (token_file_safe(path, &st, err) < 0)
    return NULL;
  char buf[TOKEN_MAX_LEN + 2];
  ssize_t n = cell_read_all(fd, buf, sizeof(buf) - 1);
  if (n < 0) {
    cell_fail_errno(err, "metrics_token_file `%s`: read", path);
    return NULL;
  }
  buf[n] = '\0';
  char *t = buf + strspn(buf, " \t\r\n");
  size_t len = strlen(t);
  while (len > 0 && strchr(" \t\r\n", t[len - 1]))
    t[--len] = '\0';
  if (len < TOKEN_MIN_LEN || len > TOKEN_MAX_LEN || !token_chars_ok(t)) {
    explicit_bzero(buf, sizeof(buf));
    cell_fail(err, EINVAL,
              "metrics_token_file `%s`: expected one token of %d to %d "
              "characters of A-Z a-z 0-9 - . _ ~ + / = (openssl rand -hex 32 "
              "makes one)", path, TOKEN_MIN_LEN, TOKEN_MAX_LEN);
    return NULL;
  }
  char *token = xstrdup(t);
  explicit_bzero(buf, sizeof(buf));
  return token;
}

/* Equal, in a time that depends on the length of `want` alone: no byte
 * of the answer tells a guesser how far it got. */
static bool token_equal(const char *want, const char *given) {
  size_t wl = strlen(want), gl = strlen(given);
  volatile unsigned char diff = (unsigned char)(wl != gl);
  for (size_t i = 0; i < wl; i++)
    diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? given[i] : 0);
  return diff == 0;
}

/* Whether the request carries `Authorization: Bearer TOKEN` (the scheme's
 * case does not matter, RFC 7235). */
static bool authorized(const struct daemon_http *h, struct MHD_Connection *conn) {
  if (!h->token)
    return true;
  const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_AUTHORIZATION);
  if (!v || strncasecmp(v, "Bearer ", 7) != 0)
    return false;
  v += 7;
  v += strspn(v, " ");
  return token_equal(h->token, v);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             char *body, const char *type) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(body), body, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result unauthorized(struct MHD_Connection *conn) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen("a bearer token is required\n"),
      (void *)"a bearer token is required\n", MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
  MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                          "Bearer realm=\"celld\"");
  enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **state) {
  struct daemon *d = cls;
  /* Before anything else: without the token, nothing is told. */
  if (!authorized(d->http, conn))
    return unauthorized(conn);
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
      strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                 xstrdup("only GET /metrics\n"), "text/plain");
  if (strcmp(url, "/metrics") != 0)
    return reply(conn, MHD_HTTP_NOT_FOUND, xstrdup("only GET /metrics\n"),
                 "text/plain");
  return reply(conn, MHD_HTTP_OK, usage_prometheus(d, NULL, NULL),
               "text/plain; version=0.0.4; charset=utf-8");
}

/* Our own socket, so that a refusal says which address and why. */
static int listen_on(const struct daemon_listen *l, cell_error **err) {
  int fd = socket(l->addr.ss_family,
                  SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return cell_fail_errno(err, "metrics_listen %s: socket", l->text);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, (const struct sockaddr *)&l->addr, l->len) < 0 ||
      listen(fd, 64) < 0) {
    cell_fail_errno(err, "metrics_listen %s: cannot listen there "
                    "(another program on that port? change metrics_listen "
                    "in celld.conf, or set it to off)", l->text);
    close(fd);
    return -1;
  }
  return fd;
}

static void arm_timer(struct daemon_http *h) {
  MHD_UNSIGNED_LONG_LONG ms;
  struct itimerspec its = {0};
  if (MHD_get_timeout(h->mhd, &ms) == MHD_YES) {
    if (ms == 0)
      ms = 1; /* 0 would disarm it */
    its.it_value.tv_sec = (time_t)(ms / 1000);
    its.it_value.tv_nsec = (long)(ms % 1000) * 1000000;
  }
  timerfd_settime(h->timer, 0, &its, NULL);
}

static bool loopback(const struct daemon_listen *l) {
  if (l->addr.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&l->addr;
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&l->addr;
  return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
         (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
}

int http_start(struct daemon *d, cell_error **err) {
  const struct daemon_listen *l = &d->cfg->metrics_listen;
  if (!l->on)
    return 0;
  cleanup_free char *token = NULL;
  if (d->cfg->metrics_token_file) {
    token = read_token(d->cfg->metrics_token_file, err);
    if (!token)
      return -1;
  } else if (!loopback(l)) {
    log_warn("metrics_listen %s is not a loopback address and no "
             "metrics_token_file is set: whoever reaches it reads every "
             "instance's name and usage", l->text);
  }
  int fd = listen_on(l, err);
  if (fd < 0)
    return -1;
  struct daemon_http *h = xcalloc(1, sizeof(*h));
  h->token = steal_pointer(&token);
  h->mhd = MHD_start_daemon(
      MHD_USE_EPOLL, 0, NULL, NULL, on_request, d,
      MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CLIENTS,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
      MHD_OPTION_END);
  const union MHD_DaemonInfo *info =
      h->mhd ? MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
  h->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (!info || h->timer < 0) {
    if (!h->mhd)
      close(fd);
    d->http = h;
    h->epfd = -1;
    http_stop(d);
    return cell_fail(err, EIO, "metrics_listen %s: libmicrohttpd did not start",
                     l->text);
  }
  h->epfd = info->epoll_fd;
  d->http = h;
  daemon_watch(d, h->epfd, TAG_HTTP, EPOLLIN);
  daemon_watch(d, h->timer, TAG_HTTP_TIMER, EPOLLIN);
  log_info("metrics on http://%s/metrics%s", l->text,
           h->token ? " (bearer token required)" : "");
  return 0;
}

void http_on_event(struct daemon *d) {
  struct daemon_http *h = d->http;
  if (!h)
    return;
  uint64_t ticks;
  while (read(h->timer, &ticks, sizeof(ticks)) > 0)
    ;
  MHD_run(h->mhd);
  arm_timer(h);
}

void http_stop(struct daemon *d) {
  struct daemon_http *h = steal_pointer(&d->http);
  if (!h)
    return;
  if (h->epfd >= 0)
    daemon_unwatch(d, h->epfd);
  if (h->timer >= 0) {
    daemon_unwatch(d, h->timer);
    close(h->timer);
  }
  if (h->mhd)
    MHD_stop_daemon(h->mhd); /* closes the listening socket and MHD's epoll fd */
  if (h->token) {
    explicit_bzero(h->token, strlen(h->token));
    free(h->token);
  }
  free(h);
}
