/* `cell exec`.  The runtime enters the container's pid namespace for its
 * children, clones the new process (into the container's cgroup where
 * clone3 can), and that process joins every other namespace at once with
 * setns(pidfd), takes the process's credentials and execs.  No re-exec of
 * the runtime, no intermediate process. */
#include "runtime/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/procfs.h"
#include "base/sync.h"
#include "base/syscalls.h"
#include "base/util.h"
#include "cgroup/cgroup.h"
#include "oci/spec.h"
#include "oci/state.h"
#include "runtime/capabilities.h"
#include "runtime/container-open.h"
#include "runtime/foreground.h"
#include "runtime/lsm.h"
#include "runtime/process.h"
#include "runtime/rootfs.h"
#include "runtime/seccomp.h"
#include "runtime/selfexe.h"
#include "runtime/terminal.h"

struct execution {
  const struct exec_opts *o;
  struct spec *spec; /* the stored config; its process is the one we run */
  struct cell_state *st;
  struct caps_plan *caps;
  struct seccomp_program *seccomp;
  struct cgroup *cgroup;
  struct cgroup_join cgroup_join;
  int pidfd;
  int ns_flags; /* namespaces of the container that are not ours */
  int console_fd;   /* --console-socket, or our socketpair's far end */
  int console_peer; /* our end when we proxy the terminal */
  int err_pipe[2];  /* the child's error message, EOF on exec */
  int notify_sock[2]; /* a SCMP_ACT_NOTIFY filter's listener fd, child -> us */
  int procfs;       /* verified procfs root, opened before any setns */
  char *exe;
};

static void execution_free(struct execution *x) {
  spec_free(x->spec);
  cell_state_free(x->st);
  caps_plan_free(x->caps);
  seccomp_program_free(x->seccomp);
  cgroup_join_close(&x->cgroup_join);
  cgroup_free(x->cgroup);
  int fds[] = {x->pidfd,          x->console_fd,     x->console_peer,
               x->err_pipe[0],    x->err_pipe[1],    x->procfs,
               x->notify_sock[0], x->notify_sock[1]};
  for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
    if (fds[i] >= 0)
      close(fds[i]);
  free(x->exe);
}

/* --process FILE: a process object as in config.json's "process". */
static int load_process_file(struct execution *x, cell_error **err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (cell_read_file_at(AT_FDCWD, x->o->process_file, 1 << 20, &text, &len,
                        err) < 0)
    return cell_error_wrap(err, "--process");
  cleanup_free char *doc =
      xasprintf("{\"ociVersion\":\"" CELL_OCI_VERSION "\",\"process\":%s}", text);
  cleanup_spec struct spec *wrapper = NULL;
  if (spec_parse(doc, strlen(doc), &wrapper, err) < 0)
    return cell_error_wrap(err, "--process `%s`", x->o->process_file);
  if (wrapper->process == NULL)
    return cell_fail(err, 0, "--process `%s`: no process", x->o->process_file);
  struct spec_process *old = x->spec->process;
  x->spec->process = wrapper->process;
  wrapper->process = old;
  return 0;
}

static void set_env(struct spec_process *p, const char *kv) {
  size_t key_len = strcspn(kv, "=");
  for (size_t i = 0; p->env && p->env[i]; i++) {
    if (strncmp(p->env[i], kv, key_len) == 0 && p->env[i][key_len] == '=') {
      free(p->env[i]);
      p->env[i] = xstrdup(kv);
      return;
    }
  }
  cell_strv_push(&p->env, kv);
}

static void add_caps(struct spec_process *p, char *const *caps) {
  if (caps == NULL)
    return;
  if (p->capabilities == NULL)
    p->capabilities = xcalloc(1, sizeof(*p->capabilities));
  struct spec_capabilities *c = p->capabilities;
  for (size_t i = 0; caps[i]; i++) {
    cell_strv_push(&c->bounding, caps[i]);
    cell_strv_push(&c->effective, caps[i]);
    cell_strv_push(&c->permitted, caps[i]);
  }
}

/* The process to run: the container's, changed by the flags. */
static int build_process(struct execution *x, cell_error **err) {
  const struct exec_opts *o = x->o;
  if (o->process_file && load_process_file(x, err) < 0)
    return -1;
  struct spec_process *p = x->spec->process;
  if (p == NULL)
    return cell_fail(err, 0, "the container has no process to start from");
  if (!o->process_file) {
    if (o->args == NULL || o->args[0] == NULL)
      return cell_fail(err, 0, "exec: missing command (or --process)");
    cell_strv_free(p->args);
    p->args = cell_strv_dup(o->args);
    p->terminal = o->tty;
  }
  for (size_t i = 0; o->env && o->env[i]; i++)
    set_env(p, o->env[i]);
  if (o->cwd) {
    free(p->cwd);
    p->cwd = xstrdup(o->cwd);
  }
  if (o->set_user) {
    p->user.uid = o->uid;
    p->user.gid = o->set_gid ? o->gid : 0;
  }
  if (o->n_additional_gids) {
    free(p->user.additional_gids);
    p->user.additional_gids = xmalloc(o->n_additional_gids * sizeof(uint32_t));
    memcpy(p->user.additional_gids, o->additional_gids,
           o->n_additional_gids * sizeof(uint32_t));
    p->user.n_additional_gids = o->n_additional_gids;
  }
  add_caps(p, o->caps);
  if (o->no_new_privs)
    p->no_new_privileges = true;
  /* In the foreground we proxy the pty ourselves, whatever stdin is. */
  if (p->terminal && !o->console_socket && o->detach)
    return cell_fail(err, 0,
                     "exec: a terminal with --detach needs --console-socket "
                     "(or run exec in the foreground)");
  if (p->terminal && !o->console_socket)
    foreground_size_process(p);
  return 0;
}

static int ns_differs(pid_t pid, const char *name) {
  char path[64];
  struct stat theirs, ours;
  snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, name);
  if (stat(path, &theirs) < 0)
    return -1;
  snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
  if (stat(path, &ours) < 0)
    return -1;
  return theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev;
}

/* setns(pidfd) joins all of these in one step; joining one that is
 * already ours is refused (user) or pointless, so only those that differ. */
static int namespaces_to_join(struct execution *x, cell_error **err) {
  static const struct {
    const char *name;
    int flag;
  } all[] = {{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},
             {"pid", CLONE_NEWPID},   {"net", CLONE_NEWNET},
             {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS},
             {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    int d = ns_differs(x->st->pid, all[i].name);
    if (d < 0 && errno != ENOENT)
      return cell_fail_errno(err, "namespace `%s` of the container", all[i].name);
    if (d > 0)
      x->ns_flags |= all[i].flag;
  }
  return 0;
}


static int prepare(struct execution *x, cell_error **err) {
  const struct exec_opts *o = x->o;
  cleanup_close int rootfd = -1, dirfd = -1;
  if (container_open(o->root, o->id, &rootfd, &dirfd, &x->st, err) < 0)
    return -1;
  enum cell_status s = container_status(x->st);
  if (s == CELL_STATUS_STOPPED)
    return cell_fail(err, 0, "cannot exec in a stopped container");
  if (s == CELL_STATUS_PAUSED && !o->ignore_paused)
    return cell_fail(err, 0, "cannot exec in a paused container "
                             "(use --ignore-paused to override)");
  x->pidfd = cell_pidfd_open(x->st->pid);
  if (x->pidfd < 0 && errno != ESRCH)
    return cell_fail_errno(err, "open a pidfd of the container process");
  if (x->pidfd < 0 || !cell_proc_alive(x->st->pid, x->st->start_time))
    return cell_fail(err, 0, "cannot exec in a stopped container");
  x->spec = container_stored_spec(dirfd, err);
  if (x->spec == NULL)
    return -1;
  const struct spec_linux *l = x->spec->linux_;
  if (build_process(x, err) < 0 ||
      caps_plan_make(x->spec->process, &x->caps, err) < 0 ||
      lsm_validate(x->spec->process, err) < 0)
    return -1;
  /* Nothing made yet, and the lock goes with the exec. */
  if (selfexe_needs_sealed_copy(x->spec) && selfexe_reexec_sealed(err) < 0)
    return -1;
  if (l && l->seccomp) {
    cleanup_close int cache = state_open_seccomp_cache(rootfd);
    if (seccomp_compile_cached(l->seccomp, cache, &x->seccomp, err) < 0)
      return -1;
  }
  /* The child loads the filter in the container's namespaces, where
   * listenerPath (a host path) may not exist: its fd comes back to us. */
  if (seccomp_program_notifies(x->seccomp) &&
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, x->notify_sock) < 0)
    return cell_fail_errno(err, "socketpair for the seccomp listener fd");
  x->cgroup = container_cgroup(x->st);
  if (o->cgroups && x->cgroup == NULL)
    return cell_fail(err, 0, "--cgroup: the container has no cgroup");
  /* The child joins the container's mount namespace, whose /proc the
   * container decides: its /proc writes go beneath this one. */
  x->procfs = procfs_open_root(err);
  if (x->procfs < 0)
    return -1;
  /* Into the init's cgroup when the container's own takes no process. */
  if (x->cgroup && !o->cgroups &&
      cgroup_v2_follow_init(x->cgroup, x->procfs, x->st->pid, err) < 0)
    return -1;
  if (o->cgroups) {
    if (cgroup_join_open_sub(x->cgroup, o->cgroups, &x->cgroup_join, err) < 0)
      return -1;
  } else if (x->cgroup && cgroup_join_open(x->cgroup, cgroup_clone_fd(x->cgroup) >= 0,
                                           &x->cgroup_join, err) < 0) {
    return -1;
  }
  if (namespaces_to_join(x, err) < 0)
    return -1;
  const struct spec_process *p = x->spec->process;
  if (p->terminal && o->console_socket &&
      terminal_connect(o->console_socket, &x->console_fd, err) < 0)
    return -1;
  if (p->terminal && !o->console_socket &&
      terminal_pair(&x->console_peer, &x->console_fd, err) < 0)
    return -1;
  if (pipe2(x->err_pipe, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe");
  return 0;
}

/* ---- the new process ------------------------------------------------------- */

__attribute__((noreturn)) static void child_fail(struct execution *x,
                                                 cell_error *e) {
  const char *msg = e ? e->msg : "exec failed";
  cell_write_all(x->err_pipe[1], msg, strlen(msg));
  _exit(127);
}

static void close_fds_on_exec(int preserve_fds) {
  unsigned first = 3u + (unsigned)preserve_fds;
  sys_close_range(first, ~0U, CLOSE_RANGE_CLOEXEC);
}

/* The listener fd to the runtime, then wait until it reached the agent, as
 * runc does: the process must not run before whoever answers for it can.
 * (sendmsg cannot be a notify rule, see seccomp.c.) */
static int hand_over_notify_fd(struct execution *x, int notify_fd,
                               cell_error **err) {
  /* Only the runtime's end open there: EOF here if the runtime dies. */
  close(steal_fd(&x->notify_sock[0]));
  int r = sync_send_fd(x->notify_sock[1], SYNC_SECCOMP_FD, notify_fd, err);
  close(notify_fd);
  if (r < 0)
    return -1;
  struct sync_msg m;
  if (sync_expect(x->notify_sock[1], SYNC_SECCOMP_DONE, &m, err) < 0)
    return -1;
  sync_msg_clear(&m);
  return 0;
}

__attribute__((noreturn)) static void child(struct execution *x) {
  cell_error *err = NULL;
  const struct spec_process *p = x->spec->process;
  /* Until exec, nothing in the container may open our /proc entries: our
   * image is the host's cell binary (CVE-2019-5736). */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  cell_reset_signals();
  if (cgroup_join_self(&x->cgroup_join, &err) < 0)
    child_fail(x, err);
  if ((x->ns_flags & ~CLONE_NEWPID) &&
      setns(x->pidfd, x->ns_flags & ~CLONE_NEWPID) < 0) {
    cell_fail_errno(&err, "join the container's namespaces");
    child_fail(x, err);
  }
  if (x->ns_flags & CLONE_NEWUSER) {
    /* root of the container until process.user says otherwise */
    if ((setresgid(0, 0, 0) < 0 && errno != EINVAL) ||
        (setresuid(0, 0, 0) < 0 && errno != EINVAL)) {
      cell_fail_errno(&err, "become root in the user namespace");
      child_fail(x, err);
    }
  }
  /* A container without a mount namespace of its own shares ours, and
   * its process was chrooted into the rootfs: so is this one, or it would
   * run in the host's /. */
  if (!spec_find_namespace(x->spec, SPEC_NS_MOUNT)) {
    struct rootfs_config shared = {.spec = x->spec, .rootfs = x->st->rootfs};
    if (rootfs_chroot(&shared, &err) < 0)
      child_fail(x, err);
  }
  if (p->terminal) {
    if (terminal_setup(x->console_fd, p, false, &err) < 0)
      child_fail(x, err);
    close(x->console_fd);
  }
  int notify_fd = -1;
  if (process_chdir(p, &err) < 0 ||
      process_find_executable(p, &x->exe, &err) < 0 ||
      lsm_apply_on_exec(x->procfs, p, &err) < 0 ||
      process_drop_privileges(p, x->caps, x->seccomp, &notify_fd, &err) < 0)
    child_fail(x, err);
  if (notify_fd >= 0 && hand_over_notify_fd(x, notify_fd, &err) < 0)
    child_fail(x, err);
  close_fds_on_exec(x->o->preserve_fds);
  if (process_load_late_seccomp(p, x->seccomp, &err) < 0)
    child_fail(x, err);
  execve(x->exe, p->args, p->env ? p->env : (char *[]){NULL});
  cell_fail_errno(&err, "exec `%s`", p->args[0]);
  child_fail(x, err);
}

static pid_t clone_into(struct execution *x, bool *in_cgroup) {
  /* A sub-cgroup (--cgroup) is joined by the process itself. */
  int cgfd = x->cgroup && !x->o->cgroups ? cgroup_clone_fd(x->cgroup) : -1;
  struct clone_args args = {.exit_signal = SIGCHLD};
  if (cgfd >= 0) {
    args.flags = CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)cgfd;
  }
  pid_t pid = sys_clone3(&args);
  *in_cgroup = pid >= 0 && cgfd >= 0;
  if (pid < 0)
    pid = fork();
  return pid;
}

/* The exec'd process's listener fd to listenerPath, with the container's
 * state (running, its pid the container's) and the process's own pid, as
 * runc sends it; then the process may go on.  A child that failed before
 * its filter sends nothing: its error comes through err_pipe. */
static int pass_notify_fd(struct execution *x, pid_t pid, cell_error **err) {
  close(steal_fd(&x->notify_sock[1]));
  struct sync_msg m;
  cell_error *ignored = NULL;
  if (sync_recv(x->notify_sock[0], &m, &ignored) < 0) {
    cell_error_free(&ignored);
    return 0;
  }
  cleanup_close int fd = steal_fd(&m.fd);
  int type = m.type;
  sync_msg_clear(&m);
  if (type != SYNC_SECCOMP_FD || fd < 0)
    return cell_fail(err, EPROTO, "exec: seccomp listener fd missing");
  cleanup_free char *state = state_to_json(x->st, CELL_STATUS_RUNNING, false);
  if (seccomp_send_notify_fd(x->spec->linux_->seccomp, fd, pid, state, err) < 0)
    return -1;
  return sync_send(x->notify_sock[0], SYNC_SECCOMP_DONE, NULL, err);
}

/* Wait for the exec (EOF on the pipe) or the child's error message. */
static int read_child_result(struct execution *x, pid_t pid, cell_error **err) {
  close(x->err_pipe[1]);
  x->err_pipe[1] = -1;
  char buf[4096];
  ssize_t n = cell_read_all(x->err_pipe[0], buf, sizeof(buf) - 1);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  waitpid(pid, NULL, 0);
  return cell_fail(err, 0, "%s", buf);
}

static int run_exec(struct execution *x, int *exit_code, cell_error **err) {
  const struct exec_opts *o = x->o;
  cleanup_close int own_pidns = -1;
  if (prepare(x, err) < 0)
    return -1;
  struct foreground fg = {.sfd = -1, .master = -1};
  if (!o->detach && foreground_begin(&fg, err) < 0)
    return -1;
  int r = -1;
  /* Only our children enter the pid namespace, and only the one we make
   * now: a child made later in there could not see us (LSan's tracer at
   * exit, under ASan, would wait for us forever). */
  if (x->ns_flags & CLONE_NEWPID) {
    own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (own_pidns < 0 || setns(x->pidfd, CLONE_NEWPID) < 0) {
      cell_fail_errno(err, "join the container's pid namespace");
      goto out;
    }
  }
  bool in_cgroup = false;
  pid_t pid = clone_into(x, &in_cgroup);
  if (pid == 0)
    child(x);
  /* Our own namespace: cannot fail, and would only matter to later
   * children. */
  if (own_pidns >= 0)
    (void)setns(own_pidns, CLONE_NEWPID);
  if (pid < 0) {
    cell_fail_errno(err, "clone");
    goto out;
  }
  if (o->on_spawn) {
    cleanup_close int pidfd = cell_pidfd_open(pid);
    o->on_spawn(pidfd, pid, o->on_spawn_arg);
  }
  cgroup_join_close(&x->cgroup_join);
  /* Without clone3 the v2 side was not joined at birth: the slow way. */
  if (x->cgroup && !x->o->cgroups && cgroup_clone_fd(x->cgroup) >= 0 && !in_cgroup &&
      cgroup_enter(x->cgroup, pid, err) < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    goto out;
  }
  if (x->notify_sock[0] >= 0 && pass_notify_fd(x, pid, err) < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    goto out;
  }
  if (read_child_result(x, pid, err) < 0)
    goto out;
  if (x->console_peer >= 0) {
    int master = -1;
    if (terminal_recv_fd(x->console_peer, &master, err) < 0 ||
        foreground_attach_terminal(&fg, master, err) < 0)
      goto out;
  }
  if (cell_write_pid_file(o->pid_file, pid, err) < 0)
    goto out;
  if (o->detach) {
    *exit_code = 0;
    return 0;
  }
  r = foreground_wait(&fg, pid, exit_code, err);
out:
  if (!o->detach)
    foreground_end(&fg);
  return r;
}

int container_exec(const struct exec_opts *o, int *exit_code, cell_error **err) {
  struct execution x = {.o = o, .pidfd = -1, .console_fd = -1,
                        .console_peer = -1, .err_pipe = {-1, -1},
                        .notify_sock = {-1, -1}, .procfs = -1};
  int r = run_exec(&x, exit_code, err);
  execution_free(&x);
  return r;
}
