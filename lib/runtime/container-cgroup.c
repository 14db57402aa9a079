/* pause, resume, ps, update and events: the lifecycle commands that work
 * on a container through its cgroup (cgroup.h does the cgroup side). */
#include "runtime/container-cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "cgroup/cgroup.h"
#include "runtime/container-open.h"

/* How often events looks at the OOM kill count between two stats. */
#define OOM_POLL_MS 100
/* More output than any ps prints for one host is a runaway. */
#define PS_MAX_OUTPUT (64u << 20)

static void cgroup_freep(struct cgroup **cg) { cgroup_free(*cg); }
#define cleanup_cgroup __attribute__((cleanup(cgroup_freep)))

static int not_running(cell_error **err) {
  return cell_fail(err, 0, "container not running");
}

/* The cgroup of a container that should have one. */
static int need_cgroup(const struct cell_state *st, struct cgroup **cg,
                       cell_error **err) {
  *cg = container_cgroup(st);
  if (*cg == NULL)
    return cell_fail(err, ENOENT, "container `%s` has no cgroup", st->id);
  return 0;
}

/* ---- pause, resume ------------------------------------------------------ */

int container_pause(const char *root, const char *id, cell_error **err) {
  cleanup_close int rootfd = -1, dirfd = -1;
  cleanup_state struct cell_state *st = NULL;
  cleanup_cgroup struct cgroup *cg = NULL;
  if (container_open(root, id, &rootfd, &dirfd, &st, err) < 0)
    return -1;
  enum cell_status s = container_status(st);
  /* runc pauses created containers too, and calls a paused one "not
   * running". */
  if (s != CELL_STATUS_RUNNING && s != CELL_STATUS_CREATED)
    return not_running(err);
  if (need_cgroup(st, &cg, err) < 0)
    return -1;
  return cgroup_freeze(cg, true, err);
}

int container_resume(const char *root, const char *id, cell_error **err) {
  cleanup_close int rootfd = -1, dirfd = -1;
  cleanup_state struct cell_state *st = NULL;
  cleanup_cgroup struct cgroup *cg = NULL;
  if (container_open(root, id, &rootfd, &dirfd, &st, err) < 0)
    return -1;
  if (container_status(st) != CELL_STATUS_PAUSED)
    return cell_fail(err, 0, "container not paused");
  if (need_cgroup(st, &cg, err) < 0)
    return -1;
  return cgroup_freeze(cg, false, err);
}

/* ---- ps ----------------------------------------------------------------- */

static int compare_pids(const void *a, const void *b) {
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return (x > y) - (x < y);
}

int container_pids(const char *root, const char *id, pid_t **pids, size_t *n,
                   cell_error **err) {
  cleanup_close int rootfd = -1, dirfd = -1;
  cleanup_state struct cell_state *st = NULL;
  *pids = NULL;
  *n = 0;
  if (container_open(root, id, &rootfd, &dirfd, &st, err) < 0)
    return -1;
  /* A stopped container may still have processes (outside its pid
   * namespace, or without one) until it is deleted: ask the cgroup. */
  cleanup_cgroup struct cgroup *cg = container_cgroup(st);
  if (cg == NULL)
    return 0;
  if (cgroup_pids(cg, pids, n, err) < 0)
    return -1;
  qsort(*pids, *n, sizeof(**pids), compare_pids);
  return 0;
}

/* Read fd to EOF into a NUL-terminated buffer. */
static int read_to_end(int fd, char **out, size_t *len, cell_error **err) {
  size_t cap = 4096, used = 0;
  char *buf = xmalloc(cap);
  for (;;) {
    if (cap - used < 2048)
      buf = xrealloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + used, cap - used - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      free(buf);
      return cell_fail_errno(err, "read the output of ps");
    }
    if (r == 0)
      break;
    used += (size_t)r;
    if (used > PS_MAX_OUTPUT) {
      free(buf);
      return cell_fail(err, EFBIG, "ps printed more than %u bytes",
                       PS_MAX_OUTPUT);
    }
  }
  buf[used] = '\0';
  *out = buf;
  *len = used;
  return 0;
}

static void exec_in_child(char *const *argv, int out_fd) {
  cell_reset_signals();
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null >= 0)
    dup2(null, STDIN_FILENO);
  dup2(out_fd, STDOUT_FILENO);
  dup2(out_fd, STDERR_FILENO);
  execvp(argv[0], argv);
  dprintf(STDERR_FILENO, "exec %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

/* Run argv with stdout and stderr into *out (runc shows both when ps
 * fails); *status is waitpid's. */
static int run_capture(char *const *argv, char **out, int *status,
                       cell_error **err) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe");
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return cell_fail_errno(err, "fork");
  }
  if (pid == 0)
    exec_in_child(argv, p[1]);
  close(p[1]);
  size_t len = 0;
  int r = read_to_end(p[0], out, &len, err);
  close(p[0]);
  while (waitpid(pid, status, 0) < 0 && errno == EINTR)
    ;
  return r;
}

/* The index of the whitespace-separated field `name` in line, -1 if none. */
static int field_index(const char *line, const char *name) {
  size_t want = strlen(name);
  int i = 0;
  for (const char *p = line + strspn(line, " \t"); *p; i++) {
    size_t w = strcspn(p, " \t");
    if (w == want && strncmp(p, name, w) == 0)
      return i;
    p += w;
    p += strspn(p, " \t");
  }
  return -1;
}

/* Field i of line as a pid; false when there is none or it is no number. */
static bool field_pid(const char *line, int i, pid_t *pid) {
  const char *p = line + strspn(line, " \t");
  for (; i > 0 && *p; i--) {
    p += strcspn(p, " \t");
    p += strspn(p, " \t");
  }
  size_t w = strcspn(p, " \t");
  if (w == 0 || w > 15)
    return false;
  char num[16];
  memcpy(num, p, w);
  num[w] = '\0';
  long long v;
  if (!cell_parse_ll(num, 0, INT_MAX, &v))
    return false;
  *pid = (pid_t)v;
  return true;
}

static bool has_pid(const pid_t *pids, size_t n, pid_t pid) {
  return bsearch(&pid, pids, n, sizeof(*pids), compare_pids) != NULL;
}

static char *first_line(const char *text) {
  text += strspn(text, "\n");
  return xstrndup(text, strcspn(text, "\n"));
}

static char *command_line(char *const *argv) {
  char *s = xstrdup(argv[0]);
  for (size_t i = 1; argv[i]; i++) {
    char *t = xasprintf("%s %s", s, argv[i]);
    free(s);
    s = t;
  }
  return s;
}

/* Keep the header and the rows whose PID column is one of pids. */
static int filter_ps(char *out, const pid_t *pids, size_t n, char **table,
                     cell_error **err) {
  char *next = strchr(out, '\n');
  if (next)
    *next++ = '\0';
  int col = field_index(out, "PID");
  if (col < 0)
    return cell_fail(err, 0, "no PID column in the output of ps: `%s`", out);
  size_t cap = strlen(out) + 2, len = 0;
  char *res = xmalloc(cap);
  len = (size_t)sprintf(res, "%s\n", out);
  for (char *line = next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    if (line[strspn(line, " \t")] == '\0')
      continue;
    pid_t pid;
    if (!field_pid(line, col, &pid)) {
      free(res);
      return cell_fail(err, 0, "ps: no pid in column %d of `%s`", col + 1,
                       line);
    }
    if (!has_pid(pids, n, pid))
      continue;
    size_t l = strlen(line);
    if (len + l + 2 > cap)
      res = xrealloc(res, cap = (len + l + 2) * 2);
    memcpy(res + len, line, l);
    len += l;
    res[len++] = '\n';
    res[len] = '\0';
  }
  *table = res;
  return 0;
}

int container_ps_table(const char *root, const char *id, char *const *args,
                       char **table, cell_error **err) {
  cleanup_free pid_t *pids = NULL;
  size_t n = 0;
  if (container_pids(root, id, &pids, &n, err) < 0)
    return -1;
  cleanup_strv char **argv = NULL;
  cell_strv_push(&argv, "ps");
  if (args == NULL || args[0] == NULL)
    cell_strv_push(&argv, "-ef");
  for (size_t i = 0; args && args[i]; i++)
    cell_strv_push(&argv, args[i]);
  cleanup_free char *out = NULL;
  int status = 0;
  if (run_capture(argv, &out, &status, err) < 0)
    return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    cleanup_free char *cmd = command_line(argv);
    cleanup_free char *why = first_line(out);
    if (WIFSIGNALED(status))
      return cell_fail(err, 0, "`%s` killed by signal %d: %s", cmd,
                       WTERMSIG(status), why);
    return cell_fail(err, 0, "`%s` exited with status %d: %s", cmd,
                     WEXITSTATUS(status), why);
  }
  return filter_ps(out, pids, n, table, err);
}

/* ---- update ------------------------------------------------------------- */

int container_update(const char *root, const char *id,
                     const struct spec_resources *r, cell_error **err) {
  cleanup_close int rootfd = -1, dirfd = -1;
  cleanup_state struct cell_state *st = NULL;
  cleanup_cgroup struct cgroup *cg = NULL;
  if (container_open(root, id, &rootfd, &dirfd, &st, err) < 0)
    return -1;
  if (container_status(st) == CELL_STATUS_STOPPED)
    return not_running(err);
  if (need_cgroup(st, &cg, err) < 0)
    return -1;
  return cgroup_update(cg, r, err);
}

/* ---- events ------------------------------------------------------------- */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* {"type":TYPE,"id":ID} with "data" when data_json is not NULL. */
static int event_json(const char *type, const char *id, const char *data_json,
                      char **out, cell_error **err) {
  cleanup_json struct json_value *data = NULL;
  if (data_json &&
      json_parse(data_json, strlen(data_json), &data, err) < 0)
    return cell_error_wrap(err, "statistics");
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_string(g, "type", type);
  json_gen_kv_string(g, "id", id);
  if (data) {
    json_gen_key(g, "data");
    json_gen_value(g, data);
  }
  json_gen_object_close(g);
  *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return 0;
}

static int emit_event(const struct container_events_opts *o, const char *type,
                      const char *id, const char *data_json,
                      cell_error **err) {
  cleanup_free char *line = NULL;
  if (event_json(type, id, data_json, &line, err) < 0)
    return -1;
  return o->emit(line, o->data, err);
}

static int emit_stats(const struct container_events_opts *o,
                      const struct cgroup *cg, const char *id,
                      cell_error **err) {
  cleanup_free char *stats = NULL;
  if (cgroup_stats_json(cg, &stats, err) < 0)
    return -1;
  return emit_event(o, "stats", id, stats, err);
}

/* The OOM kill count, or `dflt` when it cannot be read (no memory
 * controller, or the cgroup went away with the container). */
static unsigned long long oom_count_or(const struct cgroup *cg,
                                       unsigned long long dflt) {
  unsigned long long n = 0;
  cell_error *e = NULL;
  if (cgroup_oom_count(cg, &n, &e) < 0) {
    cell_error_free(&e);
    return dflt;
  }
  return n;
}

/* Wait up to ms for the process behind pidfd to exit; true when it has.
 * Without a pidfd (no pidfd_open: an old kernel, valgrind) just sleep:
 * the caller looks at the process itself too. */
static bool exited_within(int pidfd, long long ms) {
  if (ms < 0)
    ms = 0;
  struct pollfd p = {pidfd, POLLIN, 0};
  int r = poll(&p, pidfd >= 0 ? 1 : 0, (int)ms);
  return r > 0;
}

struct watched {
  const char *id;
  pid_t pid;
  unsigned long long start_time;
};

static int watch(const struct container_events_opts *o,
                 const struct cgroup *cg, const struct watched *w,
                 cell_error **err) {
  cleanup_close int pidfd = cell_pidfd_open(w->pid);
  if (pidfd < 0 && errno == ESRCH)
    return 0; /* gone already */
  unsigned long long ooms = oom_count_or(cg, 0);
  long long interval = o->interval_ms > LLONG_MAX / 2 ? LLONG_MAX / 2
                                                      : (long long)o->interval_ms;
  long long next_stats = now_ms() + interval;
  for (;;) {
    long long wait = next_stats - now_ms();
    if (wait > OOM_POLL_MS)
      wait = OOM_POLL_MS;
    bool stopped = exited_within(pidfd, wait) ||
                   !cell_proc_alive(w->pid, w->start_time);
    /* Look once more after the end: the OOM kill of the container's own
     * process is what stops it. */
    unsigned long long now_ooms = oom_count_or(cg, ooms);
    if (now_ooms > ooms && emit_event(o, "oom", w->id, NULL, err) < 0)
      return -1;
    ooms = now_ooms > ooms ? now_ooms : ooms;
    if (stopped)
      return 0;
    if (now_ms() >= next_stats) {
      if (emit_stats(o, cg, w->id, err) < 0)
        return -1;
      next_stats += interval;
      if (next_stats < now_ms())
        next_stats = now_ms() + interval;
    }
  }
}

/* The container's cgroup and what tells that it stopped; the container's
 * directory is unlocked again on return. */
static int open_for_events(const char *root, const char *id,
                           struct cgroup **cg, struct watched *w,
                           cell_error **err) {
  cleanup_close int rootfd = -1, dirfd = -1;
  cleanup_state struct cell_state *st = NULL;
  if (container_open(root, id, &rootfd, &dirfd, &st, err) < 0)
    return -1;
  if (container_status(st) == CELL_STATUS_STOPPED)
    return cell_fail(err, 0, "container with id %s is not running", id);
  if (need_cgroup(st, cg, err) < 0)
    return -1;
  w->pid = st->pid;
  w->start_time = st->start_time;
  return 0;
}

int container_events(const char *root, const char *id,
                     const struct container_events_opts *o, cell_error **err) {
  cleanup_cgroup struct cgroup *cg = NULL;
  struct watched w = {.id = id};
  if (open_for_events(root, id, &cg, &w, err) < 0)
    return -1;
  if (o->stats_only)
    return emit_stats(o, cg, id, err);
  if (o->interval_ms == 0)
    return cell_fail(err, EINVAL, "the interval must be greater than 0");
  return watch(o, cg, &w, err);
}
