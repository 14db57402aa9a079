/* cellctl top and cellctl metrics (top.h).  top asks celld for `list`,
 * whose instances carry their usage, every interval; on a terminal it
 * redraws the screen (ANSI) and reads single keys (q quits) with the
 * terminal in non-canonical mode, put back however top ends.  Elsewhere,
 * or with --once, it prints one table and exits. */
#include "top.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "usage.h"

#define DEFAULT_INTERVAL_S 2

struct top_opts {
  bool once;
  int interval_s;
};

static int top_options(const struct invocation *inv, struct top_opts *o,
                       cell_error **err) {
  *o = (struct top_opts){.interval_s = DEFAULT_INTERVAL_S};
  for (int k = 1; k < inv->argc; k++) {
    const char *a = inv->argv[k];
    long long n;
    if (strcmp(a, "--once") == 0)
      o->once = true;
    else if (strcmp(a, "--interval") == 0 && k + 1 < inv->argc &&
             cell_parse_ll(inv->argv[k + 1], 1, 3600, &n))
      o->interval_s = (int)n, k++;
    else
      return usage_error(err, "unexpected argument `%s`", a);
  }
  return EXIT_OK;
}

/* The instances with their usage. */
static int ask_list(struct client *c, struct json_value **answer,
                    cell_error **err) {
  cleanup_json_gen struct json_gen *g = request_new("list", NULL);
  cleanup_free char *req = request_finish(g);
  json_free(*answer);
  *answer = NULL;
  return client_call(c, req, answer, err);
}

/* A running instance without a CPU share yet: celld's interval had just
 * begun (it needs two samples a second apart). */
static bool cpu_share_pending(const struct json_value *list) {
  for (size_t k = 0; list && list->type == JSON_ARRAY && k < list->u.array.len; k++) {
    const struct json_value *u = json_object_get(list->u.array.items[k], "usage");
    if (u && json_object_get(u, "running") &&
        json_object_get(u, "running")->u.boolean &&
        !json_object_get(u, "cpu_percent"))
      return true;
  }
  return false;
}

static void print_table(const struct json_value *list) {
  printf("%-20s %-8s %8s %8s %6s %10s %5s %8s %8s %8s\n", "NAME", "STATE",
         "MEM", "PEAK", "CPU%", "CPU-TIME", "PIDS", "RX", "TX", "DISK");
  for (size_t k = 0; list && list->type == JSON_ARRAY && k < list->u.array.len; k++) {
    const struct json_value *i = list->u.array.items[k];
    const struct json_value *u = json_object_get(i, "usage");
    cleanup_free char *mem = usage_memory_text(i);
    cleanup_free char *peak = usage_size_text(field_int(u, "memory_peak", -1));
    cleanup_free char *cpu = usage_cpu_text(i);
    long long ns = field_int(u, "cpu_ns", -1);
    cleanup_free char *cpu_time =
        ns >= 0 ? xasprintf("%.2fs", (double)ns / 1e9) : xstrdup("-");
    cleanup_free char *pids = usage_pids_text(i);
    cleanup_free char *rx = usage_rx_text(i), *tx = usage_tx_text(i);
    cleanup_free char *disk = usage_disk_text(i);
    printf("%-20s %-8s %8s %8s %6s %10s %5s %8s %8s %8s\n",
           field_string(i, "name"), field_string(i, "state"), mem, peak, cpu,
           cpu_time, pids, rx, tx, disk);
  }
}

static int top_once(struct client *c, cell_error **err) {
  cleanup_json struct json_value *answer = NULL;
  int rc = ask_list(c, &answer, err);
  if (rc == EXIT_OK && cpu_share_pending(json_object_get(answer, "instances"))) {
    sleep(1);
    rc = ask_list(c, &answer, err);
  }
  if (rc == EXIT_OK)
    print_table(json_object_get(answer, "instances"));
  return rc;
}

/* ---- on a terminal ------------------------------------------------------- */

static struct termios saved_termios;
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) { stop_requested = 1; }

static void restore_terminal(void) {
  tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
  fputs("\033[?25h", stdout); /* the cursor back */
  fflush(stdout);
}

/* Keys one at a time, no echo; Ctrl-C still a signal (ISIG kept). */
static bool raw_terminal(void) {
  if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
    return false;
  struct termios t = saved_termios;
  t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
  t.c_cc[VMIN] = 0;
  t.c_cc[VTIME] = 0;
  return tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
}

/* Wait the interval for a key: true when it asks to quit. */
static bool wait_for_quit(int interval_s, bool keys) {
  struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
  if (poll(&p, keys ? 1 : 0, interval_s * 1000) <= 0)
    return stop_requested;
  char ch = 0;
  if (read(STDIN_FILENO, &ch, 1) == 0)
    return true; /* stdin closed */
  return ch == 'q' || ch == 'Q' || stop_requested;
}

static int top_live(struct client *c, int interval_s, cell_error **err) {
  struct sigaction sa = {.sa_handler = on_stop_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  bool keys = raw_terminal();
  fputs("\033[?25l", stdout); /* no cursor while it redraws */
  int rc = EXIT_OK;
  while (!stop_requested) {
    cleanup_json struct json_value *answer = NULL;
    rc = ask_list(c, &answer, err);
    if (rc != EXIT_OK)
      break;
    /* Home, the table, then clear what an older, longer one left. */
    fputs("\033[H", stdout);
    printf("cellctl top - every %d s; q quits\033[K\n", interval_s);
    print_table(json_object_get(answer, "instances"));
    fputs("\033[J", stdout);
    fflush(stdout);
    if (wait_for_quit(interval_s, keys))
      break;
  }
  if (keys)
    restore_terminal();
  else
    fputs("\033[?25h", stdout);
  fflush(stdout);
  return rc;
}

int cmd_top(const struct invocation *inv, cell_error **err) {
  struct top_opts o;
  int rc = top_options(inv, &o, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_client struct client c = {.fd = -1};
  rc = client_dial(&c, inv->socket, err);
  if (rc != EXIT_OK)
    return rc;
  if (o.once || !isatty(STDOUT_FILENO))
    return top_once(&c, err);
  fputs("\033[2J", stdout);
  return top_live(&c, o.interval_s, err);
}

int cmd_metrics(const struct invocation *inv, cell_error **err) {
  struct verb_flags flags;
  int rc = verb_flags(inv, 1, 0, &flags, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_json_gen struct json_gen *g = request_new("metrics", NULL);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  rc = client_request(inv->socket, req, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  fputs(field_string(answer, "metrics"), stdout);
  return EXIT_OK;
}
