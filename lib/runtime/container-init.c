/* The container process, from clone() to exec.  Every failure is sent to
 * the runtime over the sync socket (before start) or the start channel
 * (after), and the process exits: the runtime then cleans up. */
#include "runtime/container-init.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/sync.h"
#include "base/syscalls.h"
#include "base/util.h"
#include "oci/hooks.h"
#include "oci/state.h"
#include "runtime/lsm.h"
#include "runtime/personality.h"
#include "runtime/process.h"
#include "runtime/rootfs.h"
#include "runtime/sysctl.h"
#include "runtime/terminal.h"

struct init_ctx {
  const struct init_args *a;
  char *state_json;         /* for createContainer hooks */
  char *created_state_json; /* for startContainer hooks */
  int start_fd;     /* exec.fifo write end once start opened it, else -1 */
};

/* Before start, errors go to the runtime; after, to whoever runs start. */
__attribute__((noreturn)) static void fail(struct init_ctx *c, cell_error *e) {
  if (c->start_fd >= 0) {
    const char *msg = e ? e->msg : "container setup failed";
    cell_write_all(c->start_fd, msg, strlen(msg));
  } else {
    sync_send_error(c->a->sync_fd, e);
  }
  _exit(1);
}

static int set_uts_names(const struct spec *s, cell_error **err) {
  if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
    return cell_fail_errno(err, "hostname: sethostname `%s`", s->hostname);
  if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
    return cell_fail_errno(err, "domainname: setdomainname `%s`", s->domainname);
  return 0;
}

/* No other process may open our /proc/PID entries (exe, fd) or ptrace us:
 * we run the host's cell binary and hold fds of the host (CVE-2016-9962,
 * CVE-2019-5736).  This is the first thing the container process does,
 * except when it must first write its own /proc/self/timens_offsets,
 * which the kernel then no longer lets it do in a user namespace. */
static int make_undumpable(cell_error **err) {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    return cell_fail_errno(err, "prctl(PR_SET_DUMPABLE)");
  return 0;
}

/* In a new pid or time namespace made by unshare, only children are
 * members: fork, and let the child carry on as the container process.  The
 * runtime learns its pid from the credentials of the HELLO message. */
static int enter_late_namespaces(struct init_ctx *c, cell_error **err) {
  const struct init_args *a = c->a;
  if (ns_unshare(a->ns, a->spec, a->procfs, err) < 0)
    return -1;
  if (!a->ns->fork_after_unshare)
    return 0;
  if (make_undumpable(err) < 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0)
    return cell_fail_errno(err, "fork into the new pid namespace");
  if (pid > 0)
    _exit(0); /* the runtime reaps us (or its subreaper does) */
  return sync_send(a->sync_fd, SYNC_HELLO, NULL, err);
}

static int become_root_in_userns(const struct init_args *a) {
  if (!a->ns->new_userns && a->ns->join_fds[SPEC_NS_USER] < 0)
    return 0;
  /* uid 0 may be unmapped (a config mapping only non-root ids): then stay
   * with the overflow ids and let process.user decide. */
  if (setresgid(0, 0, 0) < 0 && errno != EINVAL)
    return -1;
  if (setresuid(0, 0, 0) < 0 && errno != EINVAL)
    return -1;
  return 0;
}

static bool has_hooks(const struct spec_hook_list *l) { return l->len > 0; }

/* New or joined.  Without one the runtime's is shared (see oci/spec). */
static bool has_mount_namespace(const struct spec *s) {
  return spec_find_namespace(s, SPEC_NS_MOUNT) != NULL;
}

static bool is_null_device(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
         st.st_rdev == makedev(1, 3);
}

/* Stdio on the host's /dev/null (as conmon and `run -d` give it) becomes
 * the container's own, as runc does: criu cannot dump an fd on a mount
 * outside the container ("Can't lookup mount").  After the pivot, so
 * /dev/null is the container's; a rootfs whose /dev/null is something
 * else keeps the fds it was given. */
static int reopen_dev_null_stdio(cell_error **err) {
  cleanup_close int null = open("/dev/null", O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (null < 0 || !is_null_device(null))
    return 0;
  for (int fd = 0; fd < 3; fd++)
    if (is_null_device(fd) && dup2(null, fd) < 0)
      return cell_fail_errno(err, "reopen /dev/null as fd %d", fd);
  return 0;
}

static int enter_rootfs(const struct rootfs_config *rc, cell_error **err) {
  if (!has_mount_namespace(rc->spec))
    return rootfs_chroot(rc, err);
  if (rootfs_pivot(rc, err) < 0 || rootfs_finalize(rc, err) < 0 ||
      reopen_dev_null_stdio(err) < 0)
    return -1;
  return 0;
}

/* createContainer hooks run in the rootfs, as runc runs them (it chdirs
 * there to prepare it): a hook may use paths relative to it. */
static int chdir_rootfs(const struct rootfs_config *rc, cell_error **err) {
  if (chdir(rc->rootfs) < 0)
    return cell_fail_errno(err, "chdir to rootfs `%s`", rc->rootfs);
  return 0;
}

static int run_runtime_hooks(struct init_ctx *c, cell_error **err) {
  const struct spec_hooks *h = &c->a->spec->hooks;
  if (!has_hooks(&h->prestart) && !has_hooks(&h->create_runtime))
    return 0;
  struct sync_msg m;
  if (sync_send(c->a->sync_fd, SYNC_RUNTIME_HOOKS, NULL, err) < 0 ||
      sync_expect(c->a->sync_fd, SYNC_RUNTIME_HOOKS_DONE, &m, err) < 0)
    return -1;
  sync_msg_clear(&m);
  return 0;
}

/* Wait until `cell start` opens exec.fifo, then tell it we got going.  For
 * `run` the runtime releases us over the sync socket instead. */
static int wait_for_start(struct init_ctx *c, cell_error **err) {
  const struct init_args *a = c->a;
  if (!a->wait_for_start) {
    struct sync_msg m;
    if (sync_expect(a->sync_fd, SYNC_START, &m, err) < 0)
      return -1;
    sync_msg_clear(&m);
    return 0;
  }
  int fd;
  do
    fd = openat(a->state_dirfd, CELL_EXEC_FIFO, O_WRONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return cell_fail_errno(err, "open exec fifo");
  c->start_fd = fd;
  if (cell_write_all(fd, "0", 1) < 0)
    return cell_fail_errno(err, "write exec fifo");
  return 0;
}

/* Mark every fd above the preserved ones close-on-exec: the runtime's own
 * (sync socket, state dir, log) must never reach the container's program
 * (CVE-2024-21626 is a leaked fd to the host's cgroupfs). */
static void close_fds_on_exec(const struct init_args *a) {
  unsigned first = 3u + (unsigned)a->preserve_fds;
  if (sys_close_range(first, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    for (int fd = (int)first; fd < 65536; fd++) {
      int fl = fcntl(fd, F_GETFD);
      if (fl >= 0)
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
  }
}

static int setup_before_hooks(struct init_ctx *c, const struct rootfs_config *rc,
                              cell_error **err) {
  const struct init_args *a = c->a;
  const struct spec *s = a->spec;
  if (ns_join_user(a->ns, err) < 0)
    return -1;
  struct sync_msg m;
  if (container_init_waits_for_maps(a->ns, a->spec)) {
    if (sync_expect(a->sync_fd, SYNC_IDMAP_DONE, &m, err) < 0)
      return -1;
    sync_msg_clear(&m);
  }
  if (become_root_in_userns(a) < 0)
    return cell_fail_errno(err, "become root in the user namespace");
  if (ns_join_others(a->ns, err) < 0 || enter_late_namespaces(c, err) < 0)
    return -1;
  /* The runtime knows our pid only now (we may have forked). */
  if (container_init_wants_state(s)) {
    if (sync_expect(a->sync_fd, SYNC_STATE, &m, err) < 0)
      return -1;
    c->state_json = m.payload; /* taken over */
  }
  if (s->hooks.start_container.len > 0) {
    if (sync_expect(a->sync_fd, SYNC_STATE, &m, err) < 0)
      return -1;
    c->created_state_json = m.payload;
  }
  if (set_uts_names(s, err) < 0 || sysctl_apply(s, a->procfs, err) < 0)
    return -1;
  if (has_mount_namespace(s) && rootfs_prepare(rc, err) < 0)
    return -1;
  return run_runtime_hooks(c, err);
}

/* Credentials and confinement (process_drop_privileges); a seccomp
 * listener fd goes to the runtime, which hands it to listenerPath.
 *
 * With no_new_privs the filter could wait until just before execve; runc
 * loads it here, at create, before it waits for start, so startContainer
 * hooks run under it, and a profile that blocks what such a hook does
 * fails the start.  Users rely on that (a hook is part of the container,
 * confined like it), so we do the same. */
static int drop_privileges(struct init_ctx *c, cell_error **err) {
  const struct init_args *a = c->a;
  int notify_fd = -1;
  if (process_drop_privileges(a->spec->process, a->caps, a->seccomp,
                              &notify_fd, err) < 0 ||
      process_load_late_seccomp(a->spec->process, a->seccomp, err) < 0)
    return -1;
  if (notify_fd < 0)
    return 0;
  int r = sync_send_fd(a->sync_fd, SYNC_SECCOMP_FD, notify_fd, err);
  close(notify_fd);
  return r;
}

void container_init(const struct init_args *a) {
  struct init_ctx c = {.a = a, .start_fd = -1};
  cell_error *err = NULL;
  const struct spec *s = a->spec;
  const struct spec_process *p = s->process;
  struct rootfs_kernel_mounts kernel_mounts = {0};
  struct rootfs_config rc = {
      .spec = s,
      .rootfs = a->rootfs,
      .no_pivot = a->no_pivot,
      .writable_net_sysctls = a->writable_net_sysctls,
      .in_userns = a->ns->new_userns || a->ns->join_fds[SPEC_NS_USER] >= 0,
      .bind_fds = a->bind_fds,
      .kernel_mounts = &kernel_mounts,
      .procfs = a->procfs,
  };
  cleanup_free char *exe = NULL;

  /* Die with the runtime while it still owns us (during create). */
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  cell_reset_signals();
  if (!a->ns->fork_after_unshare && make_undumpable(&err) < 0)
    fail(&c, err);
  if (cgroup_join_self(a->cgroup_join, &err) < 0)
    fail(&c, err);

  if (setup_before_hooks(&c, &rc, &err) < 0 || chdir_rootfs(&rc, &err) < 0)
    fail(&c, err);
  if (hooks_run(&s->hooks.create_container, "createContainer", c.state_json,
                &err) < 0)
    fail(&c, err);
  if (enter_rootfs(&rc, &err) < 0)
    fail(&c, err);
  rootfs_kernel_mounts_clear(&kernel_mounts);
  if (p->terminal) {
    if (terminal_setup(a->console_fd, p, true, &err) < 0)
      fail(&c, err);
    close(a->console_fd);
  } else if (setsid() < 0 && errno != EPERM) {
    /* A session of its own, as runc's init makes it with or without a
     * terminal: criu dumps only a process tree whose session leader is
     * inside it (EPERM: already a group leader, which keeps its own). */
    cell_fail_errno(&err, "setsid");
    fail(&c, err);
  }
  if (process_chdir(p, &err) < 0 || process_find_executable(p, &exe, &err) < 0)
    fail(&c, err);
  /* Before no_new_privs, which would narrow the profiles we may ask for,
   * and while the procfs root is still open. */
  if (lsm_apply_on_exec(a->procfs, p, &err) < 0)
    fail(&c, err);
  /* What the runtime's process had open (celld: an fd or more per
   * instance) goes before process.rlimits apply: under a low
   * RLIMIT_NOFILE no fd above it could be opened any more (exec.fifo). */
  int needed[] = {a->sync_fd, a->state_dirfd};
  cell_close_fds_from(3 + a->preserve_fds, needed, 2);
  if (personality_apply(s, &err) < 0 || drop_privileges(&c, &err) < 0)
    fail(&c, err);
  close_fds_on_exec(a);

  prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  if (sync_send(a->sync_fd, SYNC_CREATED, NULL, &err) < 0)
    fail(&c, err);
  if (wait_for_start(&c, &err) < 0)
    fail(&c, err);
  /* Close-on-exec is not enough: an exec path through /proc/self/fd/N
   * would still reach them (CVE-2024-21626).  Only the channel that
   * reports an exec failure stays, until the exec closes it. */
  int keep[] = {c.start_fd, a->sync_fd};
  cell_close_fds_from(3 + a->preserve_fds, keep, 2);
  if (hooks_run(&s->hooks.start_container, "startContainer", c.created_state_json,
                &err) < 0)
    fail(&c, err);
  execve(exe, p->args, p->env ? p->env : (char *[]){NULL});
  cell_fail_errno(&err, "exec `%s`", p->args[0]);
  fail(&c, err);
}
