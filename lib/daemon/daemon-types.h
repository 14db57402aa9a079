/* The types celld's files share: the daemon, its instances, its client
 * connections, the API's error codes, and the epoll tags (types and inline
 * helpers only: no .c goes with this header).
 *
 * celld's files, bottom to top; each includes only headers of files below
 * it (its own layer's types come from here):
 *   daemon-types.h      these types
 *   daemon-log.c        the log of operations, one line per request
 *   instance-log.c      an instance's own log file
 *   instance-files.c    files into and out of a root, through fds
 *   instance-tree-files.c  whole trees into and out of a root, one tar stream
 *   daemon-request.c    fields of a JSON request: types, limits
 *   daemon-oom.c        counting an instance's OOM kills
 *   daemon-records.c    the instances in memory and their records on disk
 *   daemon-runtime.c    what the runtime does for an instance (delete,
 *                       rootfs mounts, stdio, pids)
 *   daemon-lxcfs.c      the lxcfs that gives instances their own /proc view
 *   daemon-dnsmasq.c    a dnsmasq per network: DHCP, names, RAs
 *   daemon-net.c        networks: addresses at create, veths at each start
 *   daemon-usage.c      live usage: cgroups, NIC counters, disk; the
 *                       Prometheus text
 *   daemon-console.c    the console keeper's client
 *   daemon-lifecycle.c  start, stop, exit, restart policy, destroy
 *   daemon-startup.c    loading the records, adoption, autostart
 *   daemon-conn.c       client connections: replies, events, rights
 *   daemon-exec.c       the exec, signal and console ops
 *   daemon-image.c      the image ops, and the image of a new instance
 *   daemon-snapshot.c   snapshots, restore, rename; freezing a writable
 *                       layer into a shared one (snapshots, clones)
 *   daemon-control.c    the start, stop, restart, destroy and set ops
 *   daemon-create.c     the create op
 *   daemon-files.c      the file.push and file.pull ops
 *   daemon-transfer.c   the export and import ops (an instance shipped
 *                       between hosts as one stream)
 *   daemon-migrate.c    the migrate and receive ops (a running instance
 *                       moved live to another celld over a stream)
 *   daemon-query.c      the list, show, networks and events ops
 *   daemon-ops.c        the ops[] table and the dispatch of a request
 *   daemon-http.c       the metrics over HTTP (libmicrohttpd)
 *   daemon.c            the event loop: startup, accept, reading requests
 * A lower file tells a higher one something through the hooks of struct
 * daemon (set by daemon.c), never by a call up.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_TYPES_H
#define CELL_DAEMON_TYPES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

/* celld.conf, which every file reads. */
#include "daemon/daemon-config.h"
#include "daemon/instance.h"

/* The version of the API (docs/api.md) and the longest request line. */
#define DAEMON_API_VERSION 1
#define DAEMON_MAX_REQUEST 65536

#define DEFAULT_INIT "/sbin/init"
#define MAX_OUTBUF (1 << 20)
#define RESTART_DELAY_MS 1000
/* How often the OOM kill counters of running instances are read. */
#define OOM_POLL_MS 500
/* A peer with no rights (neither root nor in the group) that sends nothing
 * is closed after this long. */
#define STRANGER_IDLE_MS 5000

/* The "code" beside "error" in every error reply (docs/api.md): stable
 * names that clients (cellctl's exit status) go by, not the message. */
enum api_code {
  API_INVALID_REQUEST, /* malformed, missing or wrong field, bad value */
  API_UNKNOWN_OP,
  API_PERMISSION_DENIED,
  API_NOT_FOUND,       /* no such instance (or network) */
  API_EXISTS,          /* an instance of that name exists already */
  API_WRONG_STATE,     /* running / not running / an exec runs */
  API_FAILED,          /* tried, and it failed */
};

enum after_exit { AFTER_NOTHING, AFTER_START, AFTER_DESTROY };

/* What celld keeps of an instance's usage between samples
 * (daemon-usage.c): the CPU time at the sample that began the current
 * interval, the CPU share over the last whole interval, and the disk use,
 * which takes a walk of its files and so is read again only when old. */
struct usage_keep {
  uint64_t cpu_ns, cpu_at_ms; /* cpu_at_ms 0: no sample yet */
  double cpu_ratio;           /* CPUs busy over the last interval */
  bool cpu_ratio_known;
  uint64_t disk_used, disk_at_ms; /* disk_at_ms 0: not read yet */
  bool disk_known;
};

/* An operation that holds an instance while a child or criu works on it:
 * a copy of its writable layer for a snapshot or a clone, the instance
 * frozen (daemon-snapshot.c); criu dumping or restoring it
 * (daemon-checkpoint.c); its migration away, or in as the target's
 * (daemon-migrate.c); a criu an earlier celld started and did not see
 * end (daemon-startup.c).  Another op would break it: a resume thaws what
 * criu dumps, a stop kills what it restores, an exec's process is one
 * criu cannot dump. */
enum instance_hold {
  HOLD_NONE,
  HOLD_SNAPSHOT,
  HOLD_CLONE,
  HOLD_CHECKPOINT,
  HOLD_RESTORE,
  HOLD_MIGRATE_OUT,
  HOLD_MIGRATE_IN,
  HOLD_EARLIER_CRIU,
};

/* Its name in `cellctl show` ("busy"), NULL for none. */
static inline const char *instance_hold_name(enum instance_hold h) {
  static const char *const names[] = {
      [HOLD_NONE] = NULL,           [HOLD_SNAPSHOT] = "snapshot",
      [HOLD_CLONE] = "clone",       [HOLD_CHECKPOINT] = "checkpoint",
      [HOLD_RESTORE] = "restore",   [HOLD_MIGRATE_OUT] = "migrate",
      [HOLD_MIGRATE_IN] = "receive",  [HOLD_EARLIER_CRIU] = "criu",
  };
  return names[h];
}

/* What holds it and when to try again, for a refusal: "instance `r`: " and
 * this. */
static inline const char *instance_hold_why(enum instance_hold h) {
  static const char *const why[] = {
      [HOLD_NONE] = "nothing holds it",
      [HOLD_SNAPSHOT] = "a snapshot of it is being copied: try again when "
                        "`cellctl snapshot` has answered",
      [HOLD_CLONE] = "a clone of it is being copied: try again when "
                     "`cellctl clone` has answered",
      [HOLD_CHECKPOINT] = "criu is checkpointing it: try again when "
                          "`cellctl checkpoint` has answered",
      [HOLD_RESTORE] = "criu is restoring it: try again when "
                       "`cellctl restore` has answered",
      [HOLD_MIGRATE_OUT] = "it is migrating to another host: try again "
                           "when `cellctl migrate` has answered (here it "
                           "runs on only if the migration fails)",
      [HOLD_MIGRATE_IN] = "it is arriving by migration: try again when "
                          "`cellctl receive` has answered",
      [HOLD_EARLIER_CRIU] = "a criu an earlier celld started still works "
                            "on it: try again when its `busy` is null",
  };
  return why[h];
}

struct instance {
  struct instance_record *rec;
  pid_t pid;
  int pidfd;          /* -1 when not running */
  bool child;         /* ours to wait for: the exit status is known */
  bool stopping;      /* we asked it to stop: not a failure */
  enum after_exit after;
  int timerfd;        /* SIGKILL deadline, or the restart delay */
  bool timer_restart; /* the timer is the restart delay */
  bool killed;        /* the stop timer sent SIGKILL: it is sent again each second */
  uint64_t *waiters;  /* ids of the clients waiting for it to stop */
  size_t n_waiters;
  /* While running: its memory, cpuacct and pids directories, for its OOM
   * kill count (daemon-oom.c) and its usage (daemon-usage.c). */
  struct cgroup *cgroup;
  unsigned long long oom_kills; /* the count already reported */
  int oom_fd;                   /* readable on an OOM event; -1: polled */
  int oom_recheck;              /* ticks left to read the count again */
  /* What its /proc shows since this celld started it ("lxcfs", or "host
   * (lxcfs unavailable: WHY)"); NULL: not started by this celld. */
  char *proc_view;
  /* Exports reading its disk (daemon-transfer.c): it may not start or be
   * destroyed meanwhile. */
  int exports;
  /* What holds it now, if anything: it takes only the ops that look
   * meanwhile (daemon-ops.c). */
  enum instance_hold hold;
  struct usage_keep usage; /* daemon-usage.c's last samples */
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
  /* An exec being started by its helper process (daemon-exec.c), which
   * reports on helper_sock; -1 when none. */
  int helper_sock;
  int helper_pidfd;
  int spawn_pidfd; /* the command, before it is known to have exec'd */
  char *exec_instance;
  int import_pidfd; /* the image import this client waits for; -1: none */
  uint64_t deadline_ms; /* CLOCK_MONOTONIC ms when its wait ends; 0: none */
  /* The request whose answer is not yet sent (daemon-log.h): its op and
   * the instance it names (NULL: none); logged with that answer. */
  char *op;
  char *op_name;
  bool op_pending;
  bool op_changes_instance; /* also a line of the instance's own log */
  /* Its answer, ready, sent once the instance it waits on is destroyed
   * (a migration's figures, once its copy here is gone); NULL: none. */
  char *answer_at_destroy;
};

enum tag { TAG_LISTEN, TAG_SIGNAL, TAG_CONN, TAG_PIDFD, TAG_TIMER, TAG_EXEC,
           TAG_OOM, TAG_OOM_EVENT, TAG_DEADLINE, TAG_EXEC_HELPER, TAG_LXCFS,
           TAG_LXCFS_TIMER, TAG_IMAGE_JOB, TAG_HTTP, TAG_HTTP_TIMER,
           TAG_DNSMASQ, TAG_DNSMASQ_TIMER };

struct daemon_lxcfs;   /* daemon-lxcfs.c's own */
struct daemon_http;    /* daemon-http.c's own */
struct daemon_dnsmasq; /* daemon-dnsmasq.c's own */
struct image_store;  /* storage/image-store.h */
struct json_value;   /* base/json.h */
struct daemon;

/* An image import, run by a child process that reports progress and its
 * result as JSON lines on pipefd (daemon-image.c). */
struct image_job {
  uint64_t conn_id; /* who asked */
  pid_t pid;
  int pidfd;
  int pipefd;
  char *buf;        /* a line not yet whole */
  size_t len;
  bool done;        /* its result has come */
  uid_t owner;
  /* The op, for its client if the job's process dies without a result:
   * "checkpoint `c1` of `k` failed: its process died". */
  char *what;
  char *name, *tag; /* the name it gets; NULL: none (anonymous) */
  /* A job of another op (an export, an instance's import): its result
   * line goes to on_result, not to the image import's handling; on_end
   * runs when the job is over, whatever became of it; ctx is theirs,
   * freed by ctx_free. */
  void (*on_result)(struct daemon *d, struct image_job *j,
                    const struct json_value *result);
  void (*on_end)(struct daemon *d, struct image_job *j);
  void *ctx;
  void (*ctx_free)(void *ctx);
};

struct daemon {
  const struct daemon_config *cfg;
  int epfd, listenfd, sigfd, instdirfd, oomfd;
  int ready_fd; /* cfg->ready_fd until celld says it serves (daemon-ready.c) */
  int logfd;    /* the log of operations (daemon-log.h) */
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
  int deadlinefd; /* timerfd: the earliest deadline_ms of the connections */
  int sparefd;    /* given up to accept-and-close a peer when out of fds */
  int procfs;     /* the runtime's procfs root for every start; -1: none yet */
  struct daemon_lxcfs *lxcfs; /* NULL until lxcfs_init */
  struct daemon_http *http;   /* the metrics endpoint; NULL: off */
  struct daemon_dnsmasq *dnsmasq; /* NULL until dnsmasq_init */
  /* An instance came, went or was renamed: the networks' dnsmasq files
   * are made again before the next wait of the event loop. */
  bool names_changed;
  struct image_store *store;  /* <state_dir>/images */
  struct image_job **jobs;    /* imports under way */
  size_t n_jobs;
  /* Hooks: how the instances' side reaches the clients without calling
   * up.  An event of the instance for the subscribers; the answer to a
   * client that waited for the instance to stop (error NULL: it did). */
  void (*emit_event)(struct daemon *d, struct instance *in, const char *event);
  void (*answer_waiter)(struct daemon *d, uint64_t conn_id,
                        struct instance *in, const char *error);
};

static inline uint64_t daemon_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* epoll data: a tag in the low byte, an index-free handle above.  The
 * handle is the fd: each fd is in one place only. */
static inline uint64_t ev_data(enum tag t, int fd) {
  return ((uint64_t)fd << 8) | t;
}

static inline int daemon_watch(struct daemon *d, int fd, enum tag t,
                               uint32_t events) {
  struct epoll_event ev = {.events = events, .data.u64 = ev_data(t, fd)};
  return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static inline void daemon_unwatch(struct daemon *d, int fd) {
  epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* An event of the instance, for the clients that subscribed. */
static inline void daemon_emit(struct daemon *d, struct instance *in,
                               const char *event) {
  if (d->emit_event)
    d->emit_event(d, in, event);
}

#endif
