/* Progress of the work celld does on an fd a verb hands it (progress.h). */
#include "progress.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "client.h"

static volatile sig_atomic_t progress_shown;
static char cancelled_msg[64];
static const char *volatile partial;

int progress_mode_parse(const char *s) {
  if (strcmp(s, "auto") == 0)
    return isatty(STDERR_FILENO) ? PROGRESS_TTY : PROGRESS_NONE;
  if (strcmp(s, "tty") == 0)
    return PROGRESS_TTY;
  if (strcmp(s, "json") == 0)
    return PROGRESS_JSON;
  if (strcmp(s, "none") == 0)
    return PROGRESS_NONE;
  return -1;
}

static void on_interrupt(int sig) {
  /* After a progress line: on a line of its own. */
  const char *m = progress_shown ? cancelled_msg : cancelled_msg + 1;
  (void)!write(STDERR_FILENO, m, strlen(m));
  if (partial)
    unlink(partial);
  _exit(128 + sig);
}

void progress_cancel_on_signals(const char *what, const char *partial_file) {
  snprintf(cancelled_msg, sizeof(cancelled_msg), "\ncellctl: %s cancelled\n",
           what);
  partial = partial_file;
  signal(SIGINT, on_interrupt);
  signal(SIGTERM, on_interrupt);
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

/* "importing  layer 2/3  120.5 MiB / 300.0 MiB  45.2 MiB/s  ETA 4s" over
 * itself (an image's layers, or an export's parts). */
static void show_line(const char *verb, const struct json_value *p,
                      double started) {
  long long bytes = field_int(p, "bytes", 0), total = field_int(p, "total", 0);
  bool layers = json_object_get(p, "layers") != NULL;
  long long n = field_int(p, layers ? "layer" : "part", 0);
  long long of = field_int(p, layers ? "layers" : "parts", 0);
  double elapsed = now_s() - started;
  double rate = elapsed > 0.2 ? (double)bytes / elapsed : 0;
  char done[32], all[32], speed[32];
  human(done, sizeof(done), (double)bytes);
  human(all, sizeof(all), (double)total);
  human(speed, sizeof(speed), rate);
  fprintf(stderr, "\r\033[K%s", verb);
  if (of)
    fprintf(stderr, "  %s %lld/%lld", layers ? "layer" : field_string(p, "step"),
            n, of);
  fprintf(stderr, "  %s", done);
  if (total)
    fprintf(stderr, " / %s", all);
  if (rate > 0)
    fprintf(stderr, "  %s/s", speed);
  if (rate > 0 && total > bytes)
    fprintf(stderr, "  ETA %.0fs", (double)(total - bytes) / rate);
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
        show_line(verb, p, started);
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

int progress_call_with_fd(const char *socket, const char *req, int fd,
                          const char *verb, enum progress_mode mode,
                          struct json_value **answer, cell_error **err) {
  cleanup_client struct client c = {.fd = -1};
  int rc = client_dial(&c, socket, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_free char *line = xasprintf("%s\n", req);
  if (cell_send_with_fd(c.fd, line, strlen(line), fd) < 0) {
    cell_fail_errno(err, "send");
    return EXIT_CONNECT;
  }
  return await_answer(&c, verb, mode, answer, err);
}
