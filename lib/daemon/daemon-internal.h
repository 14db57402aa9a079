/* celld internals shared by its files: the daemon, its instances and its
 * client connections.
 *   daemon.c       the event loop, instance lifecycle (start, stop, exit,
 *                  restart policy), startup and adoption of running instances
 *   daemon-conn.c  client connections: framing, replies, events, rights
 *   daemon-ops.c   the API's ops (create, start, stop, destroy, set, ...)
 *   daemon-exec.c  exec/enter: commands run in an instance for a client
 *   daemon-console.c  the console keeper's client and the `console` op */
#ifndef CELL_DAEMON_INTERNAL_H
#define CELL_DAEMON_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "daemon/daemon.h"
#include "daemon/instance.h"
#include "base/json.h"

#define DEFAULT_INIT "/sbin/init"
#define MAX_OUTBUF (1 << 20)
#define RESTART_DELAY_MS 1000
/* How often the OOM kill counters of running instances are read. */
#define OOM_POLL_MS 500

enum after_exit { AFTER_NOTHING, AFTER_START, AFTER_DESTROY };

struct instance {
  struct instance_record *rec;
  pid_t pid;
  int pidfd;          /* -1 when not running */
  bool child;         /* ours to wait for: the exit status is known */
  bool stopping;      /* we asked it to stop: not a failure */
  enum after_exit after;
  int timerfd;        /* SIGKILL deadline, or the restart delay */
  bool timer_restart; /* the timer is the restart delay */
  uint64_t *waiters;  /* clients waiting for it to stop */
  size_t n_waiters;
  struct cgroup *cgroup;        /* while running: for its OOM kill count */
  unsigned long long oom_kills; /* the count already reported */
  int oom_fd;                   /* readable on an OOM event; -1: polled */
  int oom_recheck;              /* ticks left to read the count again */
};

struct conn {
  uint64_t id;
  int fd;
  struct ucred cred;
  bool root, member;
  bool subscriber;
  char *in;
  size_t in_len;
  char *out;
  size_t out_len;
  bool closing; /* close once out is flushed */
  int fds[3];   /* received with SCM_RIGHTS, for the next request */
  size_t n_fds;
  pid_t exec_pid;  /* the exec running for this client */
  int exec_pidfd;  /* -1 when none */
};

enum tag { TAG_LISTEN, TAG_SIGNAL, TAG_CONN, TAG_PIDFD, TAG_TIMER, TAG_EXEC,
           TAG_OOM, TAG_OOM_EVENT };

struct daemon {
  const struct daemon_config *cfg;
  int epfd, listenfd, sigfd, instdirfd, oomfd;
  char *instances_dir, *runroot, *execdir;
  gid_t group_gid;
  bool have_group;
  struct instance **inst;
  size_t n_inst;
  struct conn **conns;
  size_t n_conns;
  uint64_t next_conn_id;
  bool quit;
  int keeperfd; /* the console keeper (daemon-console.c); -1: none yet */
};

/* epoll data: a tag in the low byte, an index-free handle above.  The
 * handle is the fd: each fd is in one place only. */
static inline uint64_t ev_data(enum tag t, int fd) {
  return ((uint64_t)fd << 8) | t;
}

/* ---- daemon.c ---- */
int daemon_watch(struct daemon *d, int fd, enum tag t, uint32_t events);
void daemon_unwatch(struct daemon *d, int fd);
char *daemon_inst_dir(struct daemon *d, const char *name);
struct instance *daemon_find_instance(struct daemon *d, const char *name);
struct instance *daemon_add_instance(struct daemon *d,
                                     struct instance_record *rec);
void daemon_remove_instance(struct daemon *d, struct instance *in);
void inst_set_state(struct instance *in, const char *state);
int inst_save(struct daemon *d, struct instance *in, cell_error **err);
void inst_save_or_log(struct daemon *d, struct instance *in);
void inst_add_waiter(struct instance *in, struct conn *c);
void inst_disarm_timer(struct daemon *d, struct instance *in);
int daemon_pidfd_signal(int pidfd, int sig);
int inst_mount_root(struct daemon *d, struct instance *in, cell_error **err);
void daemon_restore_stdio(int saved[3]);
int inst_start(struct daemon *d, struct instance *in,
               cell_error **err);
void inst_stop(struct daemon *d, struct instance *in, int timeout);
void inst_destroy_now(struct daemon *d, struct instance *in,
                      cell_error **err);
int daemon_exit_code(const siginfo_t *si);
void inst_finish_destroy(struct daemon *d, struct instance *in);
void daemon_test_pause(const char *where);

/* ---- daemon-conn.c ---- */
struct conn *daemon_find_conn(struct daemon *d, uint64_t id);
struct conn *daemon_conn_by_fd(struct daemon *d, int fd);
void conn_drop_fds(struct conn *c);
void conn_close(struct daemon *d, struct conn *c);
bool conn_flush(struct daemon *d, struct conn *c);
bool conn_send(struct daemon *d, struct conn *c, const char *json);
void conn_error(struct daemon *d, struct conn *c, const char *msg);
void conn_reply_instance(struct daemon *d, struct conn *c, struct instance *in);
bool conn_may_see(const struct conn *c, const struct instance *in);
void daemon_emit_event(struct daemon *d, struct instance *in, const char *event);
void conn_on_readable(struct daemon *d, struct conn *c);
void daemon_on_accept(struct daemon *d);

/* ---- daemon-ops.c ---- */
const char *request_str(const struct json_value *v, const char *key);
void ops_handle_line(struct daemon *d, struct conn *c, const char *line,
                     size_t len);

/* ---- daemon-exec.c ---- */
void exec_op(struct daemon *d, struct conn *c, struct instance *in,
             const struct json_value *v);
void exec_op_signal(struct daemon *d, struct conn *c,
                    const struct json_value *v);
void exec_on_exit(struct daemon *d, int pidfd);

/* ---- daemon-net.c ---- */
/* The request's `networks` (may be NULL) into r->nets: names checked,
 * addresses chosen (or the ones asked for checked), host veth names. */
int daemon_net_plan(struct daemon *d, const struct json_value *networks,
                    struct instance_record *r, cell_error **err);
/* Give the namespace of pid its interfaces (loopback only without
 * networks).  On failure the caller's daemon_net_detach removes what was
 * made (it also runs when the start fails later). */
int daemon_net_attach(struct daemon *d, const struct instance_record *r,
                      pid_t pid, cell_error **err);
/* Remove the instance's veth pairs (gone ones are fine) and, when asked,
 * the bridges no other instance uses (unless kept by the config). */
void daemon_net_detach(struct daemon *d, const struct instance_record *r,
                       bool remove_bridges);
/* At startup: the bridges of networks no instance is on. */
void daemon_net_sweep_bridges(struct daemon *d);
/* The `networks` op: the configured networks, with how many of the
 * instances the peer may see are on each. */
void daemon_net_op_list(struct daemon *d, struct conn *c);

/* ---- daemon-console.c ---- */
/* A listening socket at path for a pty master (the runtime's
 * console_socket): an instance's console, an exec's terminal. */
int daemon_pty_listener(const char *path, cell_error **err);
/* Connect to the console keeper of our state dir, or start one. */
void daemon_console_init(struct daemon *d);
void daemon_console_close(struct daemon *d);
/* Around container_create: a socket for the init's pty master (*path is
 * its console_socket), then the master handed to the keeper (or, when the
 * create failed, only the socket removed).  A failure after the create
 * costs the instance its console, not its start. */
int daemon_console_listen(struct daemon *d, struct instance *in, char **path,
                          cell_error **err);
void daemon_console_take(struct daemon *d, struct instance *in, int listener,
                         const char *path, bool created);
/* The instance is destroyed: its console and buffer go. */
void daemon_console_remove(struct daemon *d, const char *name);
void console_op(struct daemon *d, struct conn *c, struct instance *in);

#endif
