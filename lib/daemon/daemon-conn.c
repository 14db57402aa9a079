/* celld's client connections: buffered replies (errors with their code),
 * instance replies, events for subscribers, and what a peer may see. */
#include "daemon/daemon-conn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/signals.h"
#include "base/syscalls.h"
#include "base/util.h"
#include "daemon/daemon-log.h"
#include "daemon/daemon-records.h"
#include "daemon/instance-log.h"

struct conn *daemon_find_conn(struct daemon *d, uint64_t id) {
  for (size_t i = 0; i < d->n_conns; i++)
    if (d->conns[i]->id == id)
      return d->conns[i];
  return NULL;
}

struct conn *daemon_conn_by_fd(struct daemon *d, int fd) {
  for (size_t i = 0; i < d->n_conns; i++)
    if (d->conns[i]->fd == fd)
      return d->conns[i];
  return NULL;
}

void conn_drop_fds(struct conn *c) {
  for (size_t i = 0; i < c->n_fds; i++)
    close(c->fds[i]);
  c->n_fds = 0;
}

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

void conn_end_exec_helper(struct daemon *d, struct conn *c, bool kill_all) {
  if (c->helper_sock < 0)
    return;
  if (kill_all) {
    /* Stopped or stuck in the instance: SIGKILL ends either. */
    if (c->spawn_pidfd >= 0)
      sys_pidfd_send_signal(c->spawn_pidfd, SIGKILL);
    if (c->helper_pidfd >= 0)
      sys_pidfd_send_signal(c->helper_pidfd, SIGKILL);
  }
  daemon_unwatch(d, c->helper_sock);
  close_fd(&c->helper_sock);
  close_fd(&c->helper_pidfd);
  close_fd(&c->spawn_pidfd);
  free(c->exec_instance);
  c->exec_instance = NULL;
  c->deadline_ms = 0;
}

void conn_begin_op(struct conn *c, const char *op, const char *name) {
  free(c->op);
  free(c->op_name);
  c->op = op ? xstrdup(op) : NULL;
  c->op_name = name ? xstrdup(name) : NULL;
  c->op_pending = true;
  c->op_changes_instance = false;
}

/* A line of the instance's own log for an op that changed it: who, and
 * how it ended. */
static void log_op_on_instance(struct daemon *d, const struct conn *c,
                               const char *error) {
  if (!c->op_changes_instance || !c->op_name ||
      !daemon_find_instance(d, c->op_name))
    return;
  cleanup_close int dirfd =
      openat(d->instdirfd, c->op_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                           O_CLOEXEC);
  if (dirfd < 0)
    return;
  cleanup_free char *text =
      error ? xasprintf("%s by uid %u: failed: %s", c->op, (unsigned)c->cred.uid,
                        error)
            : xasprintf("%s by uid %u", c->op, (unsigned)c->cred.uid);
  instance_log_append(dirfd, text, INSTANCE_LOG_MAX);
}

/* The answer to the pending request is going out: its log line. */
static void end_op(struct daemon *d, struct conn *c, const char *error,
                   enum api_code code) {
  if (!c->op_pending)
    return;
  c->op_pending = false;
  struct op_log_entry e = {.uid = c->cred.uid, .pid = c->cred.pid,
                           .op = c->op, .name = c->op_name, .error = error,
                           .code = error ? api_code_name(code) : NULL};
  daemon_log_op(d->logfd, &e);
  log_op_on_instance(d, c, error);
}

void conn_note_answer(struct daemon *d, struct conn *c) {
  end_op(d, c, NULL, API_FAILED);
}

void conn_close(struct daemon *d, struct conn *c) {
  /* A request never answered: the client went first. */
  end_op(d, c, "the client closed the connection before the answer",
         API_FAILED);
  for (size_t i = 0; i < d->n_conns; i++) {
    if (d->conns[i] != c)
      continue;
    memmove(&d->conns[i], &d->conns[i + 1], (d->n_conns - i - 1) * sizeof(*d->conns));
    d->n_conns--;
    break;
  }
  daemon_unwatch(d, c->fd);
  close(c->fd);
  conn_drop_fds(c);
  conn_end_exec_helper(d, c, true);
  /* A client that goes cancels its import (the worker's pipe tells the
   * loop, which cleans up after it). */
  if (c->import_pidfd >= 0)
    sys_pidfd_send_signal(c->import_pidfd, SIGKILL);
  if (c->exec_pidfd >= 0) {
    /* The client went: its command loses its terminal (or its reader). */
    sys_pidfd_send_signal(c->exec_pidfd, SIGHUP);
    daemon_unwatch(d, c->exec_pidfd);
    close(c->exec_pidfd);
  }
  free(c->in);
  free(c->out);
  free(c->op);
  free(c->op_name);
  free(c->answer_at_destroy);
  free(c);
}

static void update_conn_events(struct daemon *d, struct conn *c) {
  struct epoll_event ev = {.events = EPOLLIN | (c->out_len ? EPOLLOUT : 0),
                           .data.u64 = ev_data(TAG_CONN, c->fd)};
  epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what the socket takes now; the rest waits for EPOLLOUT.  Returns
 * false when the connection was closed. */
bool conn_flush(struct daemon *d, struct conn *c) {
  while (c->out_len > 0) {
    ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n <= 0) {
      conn_close(d, c);
      return false;
    }
    memmove(c->out, c->out + n, c->out_len - (size_t)n);
    c->out_len -= (size_t)n;
  }
  if (c->out_len == 0 && c->closing) {
    conn_close(d, c);
    return false;
  }
  update_conn_events(d, c);
  return true;
}

bool conn_send(struct daemon *d, struct conn *c, const char *json) {
  /* Answers open with "ok" (progress lines and events do not). */
  if (strncmp(json, "{\"ok\":", 6) == 0)
    end_op(d, c, NULL, API_FAILED);
  size_t len = strlen(json);
  if (c->out_len + len + 1 > MAX_OUTBUF) {
    /* A subscriber that does not read loses its subscription, not our
     * memory. */
    log_warn("client %d: output buffer full: closing", (int)c->cred.pid);
    conn_close(d, c);
    return false;
  }
  c->out = xrealloc(c->out, c->out_len + len + 1);
  memcpy(c->out + c->out_len, json, len);
  c->out[c->out_len + len] = '\n';
  c->out_len += len + 1;
  return conn_flush(d, c);
}

const char *api_code_name(enum api_code code) {
  static const char *const names[] = {
      [API_INVALID_REQUEST] = "invalid-request",
      [API_UNKNOWN_OP] = "unknown-op",
      [API_PERMISSION_DENIED] = "permission-denied",
      [API_NOT_FOUND] = "not-found",
      [API_EXISTS] = "exists",
      [API_WRONG_STATE] = "wrong-state",
      [API_FAILED] = "failed",
  };
  if ((size_t)code >= sizeof(names) / sizeof(names[0]) || !names[code])
    return "failed";
  return names[code];
}

void conn_error(struct daemon *d, struct conn *c, enum api_code code,
                const char *msg) {
  end_op(d, c, msg, code);
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", false);
  json_gen_kv_string(g, "error", msg);
  json_gen_kv_string(g, "code", api_code_name(code));
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

void conn_fail(struct daemon *d, struct conn *c, enum api_code code,
               cell_error **err) {
  conn_error(d, c, code, (*err)->msg);
  cell_error_free(err);
}

void conn_reply_instance(struct daemon *d, struct conn *c, struct instance *in) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  if (in) {
    /* What `stop` without a timeout waits before SIGKILL (cellctl says it). */
    json_gen_kv_int(g, "stop_timeout", d->cfg->stop_timeout);
    cleanup_free char *rec = instance_record_to_json(in->rec, false);
    cell_error *err = NULL;
    cleanup_json struct json_value *v = NULL;
    if (json_parse(rec, strlen(rec), &v, &err) == 0) {
      json_gen_key(g, "instance");
      json_gen_value(g, v);
    }
    cell_error_free(&err);
  }
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

bool conn_may_see(const struct conn *c, const struct instance *in) {
  return c->root || (c->member && in->rec->owner == c->cred.uid);
}

/* How the init ended, from its exit code (128+N: killed by signal N). */
static char *exit_text(int code) {
  if (code < 0)
    return xstrdup("exit status unknown (it did not end under this celld)");
  char buf[32];
  const char *sig = code > 128 ? signal_name(code - 128, buf, sizeof(buf)) : NULL;
  if (sig)
    return xasprintf("killed by signal %d (%s)", code - 128, sig);
  return xasprintf("exit status %d", code);
}

/* The event as a line of the instance's own log. */
static char *event_text(const struct instance *in, const char *event) {
  if (strcmp(event, "died") == 0 || strcmp(event, "stopped") == 0) {
    cleanup_free char *how = exit_text(in->rec->exit_code);
    return xasprintf("%s: %s", event, how);
  }
  if (strcmp(event, "oom") == 0)
    return xasprintf("oom: the kernel killed a process for memory (%llu OOM "
                     "kills since it started)", in->oom_kills);
  if (strcmp(event, "rebooted") == 0)
    return xstrdup("rebooted: its init called reboot");
  if (strcmp(event, "poweroff") == 0)
    return xstrdup("poweroff: its init called poweroff or halt");
  if (strcmp(event, "restarted") == 0 && in->rec->restarts > 0)
    return xasprintf("restarted by its restart policy (restart %d)",
                     in->rec->restarts);
  return xstrdup(event);
}

static void log_event_on_instance(struct daemon *d, const struct instance *in,
                                  const char *event) {
  cleanup_close int dirfd =
      openat(d->instdirfd, in->rec->name,
             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0)
    return; /* destroyed: its log went with it */
  cleanup_free char *text = event_text(in, event);
  instance_log_append(dirfd, text, INSTANCE_LOG_MAX);
}

void conn_emit_event(struct daemon *d, struct instance *in, const char *event) {
  log_event_on_instance(d, in, event);
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_string(g, "event", event);
  json_gen_kv_string(g, "name", in->rec->name);
  cleanup_free char *now = cell_rfc3339_now();
  json_gen_kv_string(g, "time", now);
  if (strcmp(event, "died") == 0) {
    json_gen_key(g, "exit_code");
    if (in->rec->exit_code >= 0)
      json_gen_int(g, in->rec->exit_code);
    else
      json_gen_null(g);
  }
  if (strcmp(event, "oom") == 0) {
    json_gen_key(g, "oom_kills");
    json_gen_int(g, (int64_t)in->oom_kills);
  }
  json_gen_object_close(g);
  cleanup_free char *line = json_gen_finish(g, NULL);
  json_gen_free(g);
  log_info("%s: %s", in->rec->name, event);
  /* conn_send may close (and remove) a connection: walk a copy. */
  size_t n = d->n_conns;
  uint64_t *ids = xcalloc(n ? n : 1, sizeof(*ids));
  for (size_t i = 0; i < n; i++)
    ids[i] = d->conns[i]->id;
  for (size_t i = 0; i < n; i++) {
    struct conn *c = daemon_find_conn(d, ids[i]);
    if (c && c->subscriber && conn_may_see(c, in))
      conn_send(d, c, line);
  }
  free(ids);
}

void conn_answer_waiter(struct daemon *d, uint64_t conn_id,
                        struct instance *in, const char *error) {
  struct conn *c = daemon_find_conn(d, conn_id);
  if (!c)
    return;
  cleanup_free char *ready = steal_pointer(&c->answer_at_destroy);
  if (error)
    conn_error(d, c, API_FAILED, error);
  else if (ready)
    conn_send(d, c, ready);
  else
    conn_reply_instance(d, c, in);
}
