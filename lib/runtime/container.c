/* The lifecycle of a container as the runtime (the host side) drives it.
 * The container process's side is container-init.c. */
#include "runtime/container.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/procfs.h"
#include "base/sync.h"
#include "base/syscalls.h"
#include "base/util.h"
#include "cgroup/cgroup-delegate.h"
#include "cgroup/cgroup.h"
#include "net/network.h"
#include "oci/hooks.h"
#include "oci/spec.h"
#include "runtime/container-init.h"
#include "runtime/container-open.h"
#include "runtime/foreground.h"
#include "runtime/lsm.h"
#include "runtime/namespaces.h"
#include "runtime/process.h"
#include "runtime/rootfs.h"
#include "runtime/selfexe.h"
#include "runtime/sysctl.h"
#include "runtime/terminal.h"

/* How long delete waits for a killed container to go away. */
#define KILL_WAIT_MS 10000

/* Everything create holds while it builds a container; released (and on
 * failure undone) by creation_cleanup. */
struct creation {
  const struct container_opts *opts;
  bool wait_for_start;
  bool proxy_terminal; /* run in the foreground on a terminal */
  struct spec *spec;
  char *config_text;
  size_t config_len;
  char *bundle;
  char *rootfs;
  struct ns_plan ns;
  int *bind_fds; /* see rootfs_open_bind_sources */
  struct caps_plan *caps;
  struct seccomp_program *seccomp;
  struct cgroup *cgroup;
  struct cgroup_join cgroup_join;
  int rootfd;
  int dirfd; /* locked container directory */
  int fifo_dirfd; /* the same directory, unlocked, for the container process */
  bool dir_made;
  int sync_fd;
  int console_fd;   /* connected --console-socket, or our socketpair's end */
  int console_peer; /* run's end of that socketpair, when it proxies */
  int procfs;       /* verified procfs root, for every write to /proc */
  pid_t child;    /* our direct child */
  pid_t init_pid; /* the container process (child, or its child) */
  struct cell_state st;
};

static void creation_init(struct creation *c, const struct container_opts *o,
                          bool wait_for_start) {
  memset(c, 0, sizeof(*c));
  c->opts = o;
  c->wait_for_start = wait_for_start;
  c->rootfd = c->dirfd = c->fifo_dirfd = c->sync_fd = c->console_fd = -1;
  c->console_peer = c->procfs = -1;
  for (int t = 0; t < SPEC_NS_COUNT; t++)
    c->ns.join_fds[t] = -1;
}

/* Release what create holds; with `failed`, also kill the container process
 * and remove its state directory, so that nothing is left behind. */
static void creation_cleanup(struct creation *c, bool failed) {
  if (failed && c->init_pid > 0)
    kill(c->init_pid, SIGKILL);
  if (failed && c->child > 0) {
    kill(c->child, SIGKILL);
    waitpid(c->child, NULL, 0);
  }
  if (c->sync_fd >= 0)
    close(c->sync_fd);
  if (c->console_fd >= 0)
    close(c->console_fd);
  if (c->console_peer >= 0)
    close(c->console_peer);
  if (c->procfs >= 0)
    close(c->procfs);
  if (failed && c->cgroup) {
    cell_error *ignored = NULL;
    cgroup_destroy(c->cgroup, &ignored);
    cell_error_free(&ignored);
  }
  cgroup_join_close(&c->cgroup_join);
  cgroup_free(c->cgroup);
  c->cgroup = NULL;
  caps_plan_free(c->caps);
  seccomp_program_free(c->seccomp);
  c->caps = NULL;
  c->seccomp = NULL;
  if (failed && c->dir_made) {
    cell_error *ignored = NULL;
    state_dir_remove(c->rootfd, c->opts->id, &ignored);
    cell_error_free(&ignored);
  }
  if (c->dirfd >= 0)
    close(c->dirfd);
  if (c->fifo_dirfd >= 0)
    close(c->fifo_dirfd);
  if (c->rootfd >= 0)
    close(c->rootfd);
  ns_plan_close(&c->ns);
  if (c->spec)
    rootfs_close_bind_sources(c->bind_fds, c->spec->n_mounts);
  c->bind_fds = NULL;
  spec_free(c->spec);
  free(c->config_text);
  free(c->bundle);
  free(c->rootfs);
  free(c->st.created);
  free(c->st.cgroup_path);
  c->st.cgroup_path = NULL;
  c->sync_fd = c->dirfd = c->fifo_dirfd = c->rootfd = c->console_fd = -1;
  c->console_peer = c->procfs = -1;
  c->spec = NULL;
  c->config_text = c->bundle = c->rootfs = c->st.created = NULL;
}

static int load_config(struct creation *c, cell_error **err) {
  const char *b = c->opts->bundle ? c->opts->bundle : ".";
  c->bundle = realpath(b, NULL);
  if (c->bundle == NULL)
    return cell_fail_errno(err, "bundle `%s`", b);
  cleanup_free char *path = xasprintf("%s/config.json", c->bundle);
  if (cell_read_file_at(AT_FDCWD, path, 0, &c->config_text, &c->config_len,
                        err) < 0)
    return cell_error_wrap(err, "config.json");
  if (spec_parse(c->config_text, c->config_len, &c->spec, err) < 0 ||
      spec_validate_for_create(c->spec, err) < 0 ||
      rootfs_bind_sources_in_bundle(c->spec, c->bundle, err) < 0)
    return cell_error_wrap(err, "config.json");
  /* Before anything exists: a re-exec starts this command over. */
  if (selfexe_needs_sealed_copy(c->spec) && selfexe_reexec_sealed(err) < 0)
    return -1;

  const char *root = c->spec->root->path;
  cleanup_free char *joined =
      root[0] == '/' ? xstrdup(root) : xasprintf("%s/%s", c->bundle, root);
  c->rootfs = realpath(joined, NULL);
  if (c->rootfs == NULL)
    return cell_fail_errno(err, "config.json: root.path: `%s`", joined);
  struct stat st;
  if (stat(c->rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
    return cell_fail(err, ENOTDIR, "config.json: root.path: `%s`", joined);
  if (c->spec->process->terminal && c->opts->console_socket == NULL &&
      !c->proxy_terminal)
    return cell_fail(err, 0,
                     "config.json: process.terminal: a terminal needs "
                     "--console-socket%s",
                     c->wait_for_start ? "" : " (or run in the foreground)");
  /* The process must start with the caller's window size: it may read it
   * before we could set it on the pty. */
  if (c->spec->process->terminal && c->proxy_terminal)
    foreground_size_process(c->spec->process);
  if (c->spec->hostname && !spec_find_namespace(c->spec, SPEC_NS_UTS))
    return cell_fail(err, 0,
                     "config.json: hostname: needs a uts namespace");
  return 0;
}

/* clone(2) without a new stack: the child goes on like after fork().  With
 * a cgroup fd the child starts in that cgroup (CLONE_INTO_CGROUP): it never
 * runs a single instruction outside it.  *in_cgroup says whether it did. */
static pid_t clone_process(int flags, int cgroup_fd, bool *in_cgroup) {
  struct clone_args args = {.flags = (uint64_t)flags, .exit_signal = SIGCHLD};
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)cgroup_fd;
  }
  pid_t pid = sys_clone3(&args);
  *in_cgroup = pid >= 0 && cgroup_fd >= 0;
  if (pid < 0 && errno == ENOSYS)
    pid = sys_clone_fork((unsigned long)flags);
  return pid;
}

static char *state_json_now(const struct creation *c, enum cell_status s) {
  return state_to_json(&c->st, s, false);
}

/* prestart, createRuntime and createContainer hooks read "creating": the
 * spec's config.md says each "MUST be called as part of the create
 * operation", and runtime.md's "created" is "the runtime has finished the
 * create operation", which it has not while they run (runc says
 * "creating" too).  startContainer hooks, part of start, read "created". */
static int run_runtime_hooks(struct creation *c, cell_error **err) {
  cleanup_free char *json = state_json_now(c, CELL_STATUS_CREATING);
  if (hooks_run(&c->spec->hooks.prestart, "prestart", json, err) < 0 ||
      hooks_run(&c->spec->hooks.create_runtime, "createRuntime", json, err) < 0)
    return -1;
  return sync_send(c->sync_fd, SYNC_RUNTIME_HOOKS_DONE, NULL, err);
}

/* The state the in-container hooks read: "creating" for createContainer,
 * then, when there are startContainer hooks, "created" for those. */
static int send_state(struct creation *c, cell_error **err) {
  c->st.pid = c->init_pid;
  if (!container_init_wants_state(c->spec))
    return 0;
  cleanup_free char *json = state_json_now(c, CELL_STATUS_CREATING);
  if (sync_send(c->sync_fd, SYNC_STATE, json, err) < 0)
    return -1;
  if (c->spec->hooks.start_container.len == 0)
    return 0;
  cleanup_free char *created = state_json_now(c, CELL_STATUS_CREATED);
  return sync_send(c->sync_fd, SYNC_STATE, created, err);
}

static int pass_seccomp_fd(struct creation *c, int fd, cell_error **err) {
  if (fd < 0)
    return cell_fail(err, EPROTO, "seccomp listener fd missing");
  cleanup_free char *json = state_json_now(c, CELL_STATUS_CREATING);
  return seccomp_send_notify_fd(c->spec->linux_->seccomp, fd, 0, json, err);
}

/* Serve the container process until it reports it is created. */
static int serve_child(struct creation *c, cell_error **err) {
  if (!c->ns.fork_after_unshare && send_state(c, err) < 0)
    return -1;
  for (;;) {
    struct sync_msg m;
    if (sync_recv(c->sync_fd, &m, err) < 0)
      return -1;
    int type = m.type;
    if (type == SYNC_ERROR) {
      cell_fail(err, 0, "%s", m.payload ? m.payload : "container setup failed");
      (*err)->errnum = m.errnum;
      sync_msg_clear(&m);
      return -1;
    }
    if (type == SYNC_SECCOMP_FD && pass_seccomp_fd(c, m.fd, err) < 0) {
      sync_msg_clear(&m);
      return -1;
    }
    if (type == SYNC_HELLO) {
      c->init_pid = m.sender_pid;
      /* The intermediate process exits right after its fork. */
      waitpid(c->child, NULL, 0);
      c->child = 0;
    }
    sync_msg_clear(&m);
    if (type == SYNC_HELLO && send_state(c, err) < 0)
      return -1;
    if (type == SYNC_RUNTIME_HOOKS && run_runtime_hooks(c, err) < 0)
      return -1;
    if (type == SYNC_CREATED)
      return process_set_oom_score_adj_of(c->procfs, c->init_pid,
                                          c->spec->process, err);
  }
}

static void fill_state(struct creation *c) {
  c->st.id = (char *)c->opts->id;
  c->st.bundle = c->bundle;
  c->st.rootfs = c->rootfs;
  c->st.owner = "";
  c->st.created = cell_rfc3339_now();
  c->st.annotations = c->spec->annotations;
  c->st.n_annotations = c->spec->n_annotations;
}

static int start_child(struct creation *c, cell_error **err) {
  /* Before any namespace is joined (the pid one, here, for our
   * children): the container process joins the others with it in hand. */
  if (c->opts->procfs && procfs_is_root(*c->opts->procfs)) {
    c->procfs = fcntl(*c->opts->procfs, F_DUPFD_CLOEXEC, 3);
    if (c->procfs < 0)
      return cell_fail_errno(err, "dup the procfs fd");
  } else {
    c->procfs = procfs_open_root(err);
    if (c->procfs < 0)
      return -1;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return cell_fail_errno(err, "socketpair");
  c->sync_fd = sv[0];
  int one = 1;
  setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
  if (ns_join_pid_for_children(&c->ns, err) < 0) {
    close(sv[1]);
    return -1;
  }
  int cgroup_fd = cgroup_clone_fd(c->cgroup);
  if (cgroup_join_open(c->cgroup, cgroup_fd >= 0, &c->cgroup_join, err) < 0) {
    close(sv[1]);
    return -1;
  }
  bool in_cgroup = false;
  pid_t pid = clone_process(c->ns.clone_flags, cgroup_fd, &in_cgroup);
  if (pid < 0) {
    close(sv[1]);
    return cell_fail_errno(err, "clone the container process");
  }
  if (pid == 0) {
    close(sv[0]);
    /* Our copy of the locked directory fd would keep the lock after the
     * runtime exits (flock belongs to the open file description). */
    close(c->dirfd);
    close(c->rootfd);
    struct init_args a = {
        .spec = c->spec,
        .ns = &c->ns,
        .rootfs = c->rootfs,
        .sync_fd = sv[1],
        .state_dirfd = c->fifo_dirfd,
        .no_pivot = c->opts->no_pivot,
        .writable_net_sysctls = c->opts->writable_net_sysctls,
        .wait_for_start = c->wait_for_start,
        .preserve_fds = c->opts->preserve_fds,
        .bind_fds = c->bind_fds,
        .cgroup_join = &c->cgroup_join,
        .caps = c->caps,
        .seccomp = c->seccomp,
        .console_fd = c->console_fd,
        .procfs = c->procfs,
    };
    container_init(&a);
  }
  close(sv[1]);
  cgroup_join_close(&c->cgroup_join);
  c->child = pid;
  if (!c->ns.fork_after_unshare)
    c->init_pid = pid;
  /* Without clone3 the v2 side was not joined at birth: the slow way. */
  if (cgroup_fd >= 0 && !in_cgroup && cgroup_enter(c->cgroup, pid, err) < 0)
    return -1;
  if (!container_init_waits_for_maps(&c->ns, c->spec))
    return 0;
  if (network_move_devices(c->spec, pid, err) < 0)
    return -1;
  if (c->ns.new_userns && ns_write_id_maps(c->procfs, pid, c->spec, err) < 0)
    return -1;
  return sync_send(c->sync_fd, SYNC_IDMAP_DONE, NULL, err);
}

/* Everything up to the "created" state; c holds the result. */

/* The host id that a mapping gives the container's id 0, or -1. */
static int64_t host_id_of_root(const struct spec_id_mapping *m, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (m[i].container_id == 0 && m[i].size > 0)
      return m[i].host_id;
  return -1;
}

/* A container with a user and a cgroup namespace of its own sees its
 * cgroup as the root of every hierarchy: give that cgroup to its root, as
 * crun does, so that an init like systemd can manage its own subtree.
 * Its limits stay out of reach (cgroup-delegate.h). */
static int delegate_cgroup(const struct spec *s, const struct cgroup *cg,
                           cell_error **err) {
  const struct spec_namespace *user = spec_find_namespace(s, SPEC_NS_USER);
  const struct spec_namespace *cgns = spec_find_namespace(s, SPEC_NS_CGROUP);
  if (!user || user->path || !cgns || cgns->path || !s->linux_)
    return 0;
  int64_t uid = host_id_of_root(s->linux_->uid_mappings,
                                s->linux_->n_uid_mappings);
  int64_t gid = host_id_of_root(s->linux_->gid_mappings,
                                s->linux_->n_gid_mappings);
  if (uid < 0 || gid < 0)
    return 0;
  return cgroup_delegate(cg, (uid_t)uid, (gid_t)gid, err);
}
static int create_container(struct creation *c, cell_error **err) {
  const struct container_opts *o = c->opts;
  if (state_check_id(o->id, err) < 0 || load_config(c, err) < 0)
    return -1;
  if (ns_plan_make(c->spec, &c->ns, err) < 0)
    return cell_error_wrap(err, "config.json");
  if (caps_plan_make(c->spec->process, &c->caps, err) < 0 ||
      lsm_validate(c->spec->process, err) < 0 ||
      sysctl_validate(c->spec, err) < 0 ||
      network_check_devices(c->spec, err) < 0)
    return cell_error_wrap(err, "config.json");
  bool userns = c->ns.new_userns || c->ns.join_fds[SPEC_NS_USER] >= 0;
  if (userns && rootfs_open_bind_sources(c->spec, &c->bind_fds, err) < 0)
    return cell_error_wrap(err, "config.json");
  if (state_root_open(o->root, &c->rootfd, err) < 0)
    return -1;
  const struct spec_linux *l = c->spec->linux_;
  if (l && l->seccomp) {
    cleanup_close int cache = state_open_seccomp_cache(c->rootfd);
    if (seccomp_compile_cached(l->seccomp, cache, &c->seccomp, err) < 0)
      return cell_error_wrap(err, "config.json");
  }
  if (state_dir_create(c->rootfd, o->id, &c->dirfd, err) < 0)
    return -1;
  c->dir_made = true;
  /* Others may enter the directory, not list it: the container process,
   * maybe root of a user namespace or another uid, opens exec.fifo. */
  if (fchmod(c->dirfd, 0711) < 0)
    return cell_fail_errno(err, "chmod the state directory");
  if (cgroup_create(c->spec, o->id, &c->cgroup, err) < 0)
    return -1;
  if (delegate_cgroup(c->spec, c->cgroup, err) < 0)
    return -1;
  c->st.cgroup_path = xstrdup(cgroup_path(c->cgroup));
  if (cell_replace_file_at(c->dirfd, CELL_CONFIG_FILE, c->config_text,
                           c->config_len, 0600, err) < 0)
    return -1;
  if (c->wait_for_start) {
    if (mkfifoat(c->dirfd, CELL_EXEC_FIFO, 0600) < 0 ||
        fchmodat(c->dirfd, CELL_EXEC_FIFO, 0622, 0) < 0)
      return cell_fail_errno(err, "mkfifo exec.fifo");
    c->fifo_dirfd = openat(c->dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c->fifo_dirfd < 0)
      return cell_fail_errno(err, "open the state directory");
  }
  fill_state(c);
  if (c->spec->process->terminal && o->console_socket &&
      terminal_connect(o->console_socket, &c->console_fd, err) < 0)
    return -1;
  if (c->spec->process->terminal && !o->console_socket &&
      terminal_pair(&c->console_peer, &c->console_fd, err) < 0)
    return -1;
  if (start_child(c, err) < 0 || serve_child(c, err) < 0)
    return -1;
  /* While it waits for SYNC_START the process cannot have exited: its
   * start time can be read. */
  c->st.pid = c->init_pid;
  c->st.start_time = cell_proc_start_time(c->init_pid);
  if (c->st.start_time == 0)
    return cell_fail_errno(err, "read the start time of the container process");
  /* run: let the process go at once; the state written below already says
   * started (nobody sees it before we unlock, and a failed exec removes
   * everything). */
  if (!c->wait_for_start) {
    if (sync_send(c->sync_fd, SYNC_START, NULL, err) < 0)
      return -1;
    c->st.started = true;
  }
  if (state_write(c->dirfd, &c->st, err) < 0)
    return -1;
  return cell_write_pid_file(o->pid_file, c->init_pid, err);
}

int container_create(const struct container_opts *o, cell_error **err) {
  struct creation c;
  log_debug("create: container `%s` from bundle `%s`", o->id,
            o->bundle ? o->bundle : ".");
  creation_init(&c, o, true);
  int r = create_container(&c, err);
  if (r == 0)
    log_debug("create: container `%s` created, its process is pid %d", o->id,
              (int)c.init_pid);
  creation_cleanup(&c, r < 0);
  return r;
}

/* ---- start ---------------------------------------------------------------- */

/* Read what the container process writes to exec.fifo: "0", then an error
 * message if something failed before exec; EOF once it has exec'd. */
static int read_start_result(int fifo, int pidfd, cell_error **err) {
  char buf[4096];
  size_t len = 0;
  bool got_any = false;
  for (;;) {
    struct pollfd p[2] = {{fifo, POLLIN, 0}, {pidfd, POLLIN, 0}};
    if (poll(p, pidfd >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR)
        continue;
      return cell_fail_errno(err, "poll exec fifo");
    }
    ssize_t n = read(fifo, buf + len, sizeof(buf) - 1 - len);
    if (n > 0) {
      got_any = true;
      len += (size_t)n;
      if (len < sizeof(buf) - 1)
        continue;
    }
    if (n < 0 && errno == EAGAIN) {
      if (!got_any && (p[1].revents & POLLIN))
        return cell_fail(err, 0, "container process died before start");
      continue;
    }
    if (n < 0 && errno != EINTR)
      return cell_fail_errno(err, "read exec fifo");
    if (n == 0 || len >= sizeof(buf) - 1)
      break;
  }
  buf[len] = '\0';
  if (!got_any)
    return cell_fail(err, 0, "container process died before start");
  if (len > 1)
    return cell_fail(err, 0, "%s", buf + 1);
  return 0;
}

static int check_startable(const struct cell_state *st, cell_error **err) {
  enum cell_status s = container_status(st);
  if (s == CELL_STATUS_CREATED)
    return 0;
  if (s == CELL_STATUS_STOPPED)
    return cell_fail(err, 0, "cannot start a container that has stopped");
  return cell_fail(err, 0, "cannot start an already running container");
}

static void poststart_hooks(const struct spec *s, const struct cell_state *st) {
  if (s == NULL || s->hooks.poststart.len == 0)
    return;
  cleanup_free char *json = state_to_json(st, CELL_STATUS_RUNNING, false);
  hooks_run_warn(&s->hooks.poststart, "poststart", json);
}

/* start's: the spec as create stored it (run has its own in memory). */
static void run_poststart(int dirfd, const struct cell_state *st) {
  cleanup_spec struct spec *s = container_stored_spec_or_warn(dirfd);
  poststart_hooks(s, st);
}

int container_start(const char *root, const char *id, cell_error **err) {
  cleanup_close int rootfd = -1, dirfd = -1;
  cleanup_state struct cell_state *st = NULL;
  if (container_open(root, id, &rootfd, &dirfd, &st, err) < 0 ||
      check_startable(st, err) < 0)
    return -1;
  log_debug("start: container `%s`, pid %d", id, (int)st->pid);
  cleanup_close int fifo =
      openat(dirfd, CELL_EXEC_FIFO, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fifo < 0)
    return cell_fail_errno(err, "open exec fifo");
  cleanup_close int pidfd = cell_pidfd_open(st->pid);
  int r = read_start_result(fifo, pidfd, err);
  unlinkat(dirfd, CELL_EXEC_FIFO, 0);
  st->started = true;
  cell_error *werr = NULL;
  if (state_write(dirfd, st, &werr) < 0) {
    if (r == 0) {
      *err = werr;
      return -1;
    }
    cell_error_free(&werr);
  }
  if (r < 0)
    return r;
  run_poststart(dirfd, st);
  return 0;
}

/* ---- kill ------------------------------------------------------------------- */

static ino_t pid_ns_inode(pid_t pid) {
  char path[64];
  struct stat st;
  snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
  return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* Signal every process of the container: all members of its cgroup, or
 * without one, of its pid namespace when it has its own, else its init. */
static int signal_all(const struct cell_state *st, int signo, cell_error **err) {
  struct cgroup *cg = container_cgroup(st);
  if (cg) {
    int r = cgroup_kill_all(cg, signo, err);
    cgroup_free(cg);
    return r;
  }
  ino_t ns = pid_ns_inode(st->pid);
  if (ns == 0 || ns == pid_ns_inode(getpid())) {
    if (kill(st->pid, signo) < 0 && errno != ESRCH)
      return cell_fail_errno(err, "kill %d", (int)st->pid);
    return 0;
  }
  DIR *d = opendir("/proc");
  if (d == NULL)
    return cell_fail_errno(err, "open /proc");
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    long long pid;
    if (!cell_parse_ll(de->d_name, 1, INT_MAX, &pid))
      continue;
    if (pid_ns_inode((pid_t)pid) == ns)
      kill((pid_t)pid, signo);
  }
  closedir(d);
  return 0;
}

/* "container not running" is the phrase containerd's shim matches to treat
 * a kill of an exited process as done (docs/client-phrases.md). */
static int already_stopped(const struct cell_state *st, cell_error **err) {
  return cell_fail(err, 0,
                   "container not running: `%s` has stopped; "
                   "`delete %s` removes it",
                   st->id, st->id);
}

static int signal_cgroup_leftovers(const struct cell_state *st, int signo,
                                   cell_error **err) {
  struct cgroup *cg = container_cgroup(st);
  if (cg == NULL)
    return 0;
  int r = cgroup_kill_all(cg, signo, err);
  cgroup_free(cg);
  return r;
}

static int signal_init(const struct cell_state *st, int signo, cell_error **err) {
  /* A pidfd pins the process: the pid cannot be reused between our check
   * of its start time and the signal. */
  cleanup_close int pidfd = cell_pidfd_open(st->pid);
  if (pidfd < 0 && errno != ESRCH)
    return cell_fail_errno(err, "open a pidfd of the container process");
  if (pidfd < 0 || !cell_proc_alive(st->pid, st->start_time))
    return already_stopped(st, err);
  if (sys_pidfd_send_signal(pidfd, signo) < 0 &&
      errno != ESRCH)
    return cell_fail_errno(err, "send signal %d", signo);
  return 0;
}

int container_kill(const char *root, const char *id, int signo, bool all,
                   cell_error **err) {
  cleanup_close int rootfd = -1, dirfd = -1;
  cleanup_state struct cell_state *st = NULL;
  if (container_open(root, id, &rootfd, &dirfd, &st, err) < 0)
    return -1;
  if (container_status(st) == CELL_STATUS_STOPPED) {
    /* runc lets kill --all through for a stopped container: what may be
     * left is in its cgroup.  Its pid may be another process's by now, so
     * without a cgroup nothing is signalled. */
    if (all)
      return signal_cgroup_leftovers(st, signo, err);
    return already_stopped(st, err);
  }
  if (all)
    return signal_all(st, signo, err);
  return signal_init(st, signo, err);
}

/* ---- delete ----------------------------------------------------------------- */

static int wait_gone(const struct cell_state *st, cell_error **err) {
  cleanup_close int pidfd = cell_pidfd_open(st->pid);
  if (pidfd < 0 && errno != ESRCH)
    return cell_fail_errno(err, "open a pidfd of the container process");
  if (pidfd < 0 || !cell_proc_alive(st->pid, st->start_time))
    return 0;
  struct pollfd p = {pidfd, POLLIN, 0};
  int r;
  do
    r = poll(&p, 1, KILL_WAIT_MS);
  while (r < 0 && errno == EINTR);
  if (r == 0)
    return cell_fail(err, ETIMEDOUT, "container process %d did not exit",
                     (int)st->pid);
  return 0;
}

static void poststop_hooks(const struct spec *s, const struct cell_state *st) {
  if (s == NULL || s->hooks.poststop.len == 0)
    return;
  cleanup_free char *json = state_to_json(st, CELL_STATUS_STOPPED, false);
  hooks_run_warn(&s->hooks.poststop, "poststop", json);
}

/* delete's: the spec as create stored it. */
static void run_poststop(int dirfd, const struct cell_state *st) {
  cleanup_spec struct spec *s = container_stored_spec_or_warn(dirfd);
  poststop_hooks(s, st);
}

/* Whatever is left in the cgroup (processes outside the pid namespace,
 * or all of them without one) goes with it. */
static int destroy_cgroup(const struct cell_state *st, cell_error **err) {
  if (st->cgroup_path == NULL)
    return 0;
  /* Not container_cgroup(), which takes any failure for "no cgroup": the
   * state must stay until the cgroup is really gone, or nothing would
   * remember it. */
  struct cgroup *cg = NULL;
  if (cgroup_open(st->cgroup_path, &cg, err) < 0)
    return cell_error_wrap(err, "cgroup of `%s`", st->id);
  int r = cgroup_destroy(cg, err);
  cgroup_free(cg);
  return r;
}

static int destroy_locked(int rootfd, int dirfd, const struct cell_state *st,
                          bool force, cell_error **err) {
  enum cell_status s = container_status(st);
  if (s == CELL_STATUS_RUNNING || s == CELL_STATUS_PAUSED) {
    if (!force)
      return cell_fail(err, 0,
                       "cannot delete container `%s` that is not stopped: %s",
                       st->id, state_status_name(s));
  }
  if (s != CELL_STATUS_STOPPED) {
    if (signal_all(st, SIGKILL, err) < 0 || wait_gone(st, err) < 0)
      return -1;
  }
  if (destroy_cgroup(st, err) < 0)
    return -1;
  run_poststop(dirfd, st);
  return state_dir_remove(rootfd, st->id, err);
}

static bool id_absent(int rootfd, const char *id) {
  struct stat sb;
  return fstatat(rootfd, id, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
}

int container_delete(const char *root, const char *id, bool force,
                     cell_error **err) {
  cleanup_close int rootfd = -1, dirfd = -1;
  cleanup_state struct cell_state *st = NULL;
  if (container_open(root, id, &rootfd, &dirfd, &st, err) < 0) {
    if (force && dirfd >= 0)
      /* The state is there but unreadable: its container may be running,
       * so nothing is removed. */
      return cell_error_wrap(err, "delete `%s`: its state cannot be read; "
                             "once its processes are gone, remove %s/%s by hand",
                             id, root, id);
    /* A directory without state.json (a create killed midway) is removed
     * by delete -f rather than kept forever, holding the id. */
    bool removed = false;
    cell_error *e = NULL;
    if (force && rootfd >= 0 &&
        state_dir_remove_stateless(rootfd, id, &removed, &e) == 0 && removed) {
      cell_error_free(err);
      return 0;
    }
    cell_error_free(&e);
    /* delete -f of a container that does not exist succeeds, as with
     * runc: what is asked for (no such container) is already true, and
     * cleanup scripts delete -f whatever they may have created. */
    if (force && rootfd >= 0 && id_absent(rootfd, id)) {
      log_debug("delete: container `%s` does not exist, nothing to do", id);
      cell_error_free(err);
      return 0;
    }
    return -1;
  }
  log_debug("delete: container `%s` (%s, pid %d)", id,
            state_status_name(container_status(st)), (int)st->pid);
  return destroy_locked(rootfd, dirfd, st, force, err);
}

/* ---- state, list ------------------------------------------------------------ */

int container_state_json(const char *root, const char *id, char **json,
                         cell_error **err) {
  cleanup_close int rootfd = -1, dirfd = -1;
  cleanup_state struct cell_state *st = NULL;
  if (container_open(root, id, &rootfd, &dirfd, &st, err) < 0)
    return -1;
  *json = state_to_json(st, container_status(st), true);
  return 0;
}

int container_list(const char *root, struct container_info **out, size_t *n,
                   cell_error **err) {
  cleanup_close int rootfd = -1;
  cleanup_strv char **ids = NULL;
  *out = NULL;
  *n = 0;
  if (state_root_open(root, &rootfd, err) < 0 ||
      state_list_ids(rootfd, &ids, err) < 0)
    return -1;
  size_t count = cell_strv_len(ids);
  struct container_info *list = xcalloc(count, sizeof(*list));
  size_t used = 0;
  for (size_t i = 0; i < count; i++) {
    cleanup_close int dirfd = -1;
    cell_error *e = NULL;
    struct cell_state *st = NULL;
    /* A container deleted while we list is simply not listed. */
    if (state_dir_open(rootfd, ids[i], &dirfd, &e) < 0 ||
        state_read(dirfd, &st, &e) < 0) {
      cell_error_free(&e);
      continue;
    }
    list[used].state = st;
    list[used].status = container_status(st);
    used++;
  }
  *out = list;
  *n = used;
  return 0;
}

void container_list_free(struct container_info *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    cell_state_free(list[i].state);
  free(list);
}

/* ---- run ---------------------------------------------------------------------- */

/* Wait until the released process has exec'd: EOF on the sync socket
 * (close-on-exec), or an error message. */
static int wait_exec(struct creation *c, cell_error **err) {
  struct sync_msg m;
  cell_error *e = NULL;
  if (sync_recv(c->sync_fd, &m, &e) == 0) {
    if (m.type == SYNC_ERROR) {
      cell_fail(err, 0, "%s", m.payload ? m.payload : "start failed");
      (*err)->errnum = m.errnum;
      sync_msg_clear(&m);
      return -1;
    }
    sync_msg_clear(&m);
  }
  /* EOF: the exec happened (or the process died: run's wait reports it). */
  cell_error_free(&e);
  return 0;
}

static int remove_after_run(struct creation *c, cell_error **err) {
  c->st.pid = c->init_pid;
  if (cgroup_destroy(c->cgroup, err) < 0)
    return -1;
  poststop_hooks(c->spec, &c->st);
  return state_dir_remove(c->rootfd, c->opts->id, err);
}

/* Without --console-socket, run proxies the container's terminal itself:
 * the container process sends the pty master to us over a socketpair. */
static int take_terminal(struct creation *c, struct foreground *fg,
                         cell_error **err) {
  int master = -1;
  if (terminal_recv_fd(c->console_peer, &master, err) < 0)
    return -1;
  return foreground_attach_terminal(fg, master, err);
}

static int run_container(struct creation *c, bool detach, int *exit_code,
                         cell_error **err) {
  /* Signals are blocked (and read from a signalfd) before the process
   * exists: its SIGCHLD must not be lost however soon it exits. */
  struct foreground fg = {.sfd = -1, .master = -1};
  if (!detach && foreground_begin(&fg, err) < 0)
    return -1;
  int r = -1;
  if (create_container(c, err) < 0)
    goto out;
  if (c->console_peer >= 0 && take_terminal(c, &fg, err) < 0)
    goto out;
  if (wait_exec(c, err) < 0)
    goto out;
  poststart_hooks(c->spec, &c->st);
  if (detach) {
    *exit_code = 0;
    r = 0;
    goto out;
  }
  /* Let other commands (state, kill, exec) at the container while we wait. */
  close(c->dirfd);
  c->dirfd = -1;
  if (foreground_wait(&fg, c->init_pid, exit_code, err) < 0)
    goto out;
  foreground_end(&fg);
  c->child = 0;
  if (c->opts->keep)
    return 0;
  if (state_dir_open(c->rootfd, c->opts->id, &c->dirfd, err) < 0) {
    /* Someone deleted it meanwhile: nothing left to remove. */
    cell_error_free(err);
    return 0;
  }
  return remove_after_run(c, err);
out:
  if (!detach)
    foreground_end(&fg);
  return r;
}

int container_run(const struct container_opts *o, bool detach, int *exit_code,
                  cell_error **err) {
  struct creation c;
  log_debug("run: container `%s` from bundle `%s`%s", o->id,
            o->bundle ? o->bundle : ".", detach ? ", detached" : "");
  creation_init(&c, o, false);
  /* In the foreground without --console-socket the pty is ours to proxy,
   * whatever stdin is (a pipe, /dev/null), as runc does. */
  c.proxy_terminal = !detach && o->console_socket == NULL;
  /* With a pid namespace made by unshare the container process is our
   * grandchild: become its reaper so that we can wait for it. */
  if (!detach)
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  int r = run_container(&c, detach, exit_code, err);
  creation_cleanup(&c, r < 0);
  return r;
}
