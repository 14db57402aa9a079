/* The metrics endpoint, on libmicrohttpd in its external mode: MHD's
 * epoll fd sits in celld's epoll set and MHD_run does what is ready, on
 * non-blocking sockets.  So the handler runs in celld's loop and renders
 * from celld's own single-threaded data as it is at that moment (no
 * snapshot, no lock, no thread to outlive a fork), and a slow or silent
 * client costs a connection slot, never a wait: MHD drops it after
 * IDLE_TIMEOUT_S, and at most MAX_CLIENTS are served at once. */
#include "daemon/daemon-http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/daemon-usage.h"

#define MAX_CLIENTS 16
#define IDLE_TIMEOUT_S 10

struct daemon_http {
  struct MHD_Daemon *mhd;
  int epfd;  /* MHD's, watched by celld */
  int timer; /* MHD's next timeout (idle clients) */
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             char *body, const char *type) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(body), body, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **state) {
  struct daemon *d = cls;
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

int http_start(struct daemon *d, cell_error **err) {
  const struct daemon_listen *l = &d->cfg->metrics_listen;
  if (!l->on)
    return 0;
  int fd = listen_on(l, err);
  if (fd < 0)
    return -1;
  struct daemon_http *h = xcalloc(1, sizeof(*h));
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
  log_info("metrics on http://%s/metrics", l->text);
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
  free(h);
}
