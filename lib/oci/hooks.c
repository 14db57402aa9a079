#include "oci/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

/* ---- child side ----------------------------------------------------------- */


/* Only returns by _exit.  An exec failure is reported through errfd (which
 * closes by itself on a successful exec) so the parent can tell it from a
 * hook that exits with 127. */
static void __attribute__((noreturn))
exec_hook(const struct spec_hook *hook, int stdin_fd, int errfd) {
  int e;
  if (stdin_fd == STDIN_FILENO) {
    if (fcntl(stdin_fd, F_SETFD, 0) < 0)
      goto fail;
  } else if (dup2(stdin_fd, STDIN_FILENO) < 0) {
    goto fail;
  }
  cell_close_fds_from(3, &errfd, 1);
  cell_reset_signals();
  char *default_args[] = {hook->path, NULL};
  char *empty_env[] = {NULL};
  execve(hook->path, hook->args ? hook->args : default_args,
         hook->env ? hook->env : empty_env);
fail:
  e = errno;
  (void)cell_write_all(errfd, &e, sizeof(e));
  _exit(127);
}

/* ---- parent side ---------------------------------------------------------- */

struct hook_run {
  pid_t pid;
  int pidfd;      /* -1 when pidfd_open is not available: poll by waitpid */
  int stdin_fd;   /* write end of the hook's stdin, -1 once done */
  const char *data;
  size_t len, written;
  int status;
  bool exited;
};

static long long monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_stdin(struct hook_run *run) {
  if (run->stdin_fd >= 0)
    close(run->stdin_fd);
  run->stdin_fd = -1;
}

/* Non-blocking, so that a hook that never reads its stdin cannot keep us
 * past its timeout.  A hook that exits or closes stdin early is fine:
 * SIGPIPE is blocked around the whole run and EPIPE just ends the copy. */
static void feed_stdin(struct hook_run *run) {
  while (run->written < run->len) {
    ssize_t n = write(run->stdin_fd, run->data + run->written,
                      run->len - run->written);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN)
        return;
      break; /* EPIPE: the hook does not want it */
    }
    run->written += (size_t)n;
  }
  close_stdin(run);
}

static void try_reap(struct hook_run *run) {
  int status;
  pid_t r;
  do
    r = waitpid(run->pid, &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == run->pid) {
    run->status = status;
    run->exited = true;
  } else if (r < 0 && errno == ECHILD) {
    /* SIGCHLD ignored by our caller: the kernel reaped it, status lost. */
    run->status = 0;
    run->exited = true;
  }
}

static void kill_and_reap(struct hook_run *run) {
  kill(run->pid, SIGKILL);
  while (waitpid(run->pid, &run->status, 0) < 0 && errno == EINTR)
    ;
  run->exited = true;
}

/* Feed stdin and wait for the exit; false when the deadline (ms on the
 * monotonic clock, < 0 for none) passed and the hook was killed. */
static bool wait_hook(struct hook_run *run, long long deadline) {
  while (!run->exited) {
    struct pollfd fds[2];
    nfds_t n = 0;
    if (run->pidfd >= 0)
      fds[n++] = (struct pollfd){.fd = run->pidfd, .events = POLLIN};
    if (run->stdin_fd >= 0)
      fds[n++] = (struct pollfd){.fd = run->stdin_fd, .events = POLLOUT};
    int timeout = -1;
    if (deadline >= 0) {
      long long left = deadline - monotonic_ms();
      if (left <= 0) {
        kill_and_reap(run);
        return false;
      }
      timeout = left > 60000 ? 60000 : (int)left;
    }
    if (run->pidfd < 0 && (timeout < 0 || timeout > 10))
      timeout = 10;
    if (poll(fds, n, timeout) < 0 && errno != EINTR) {
      kill_and_reap(run);
      return true;
    }
    if (run->stdin_fd >= 0)
      feed_stdin(run);
    try_reap(run);
  }
  return true;
}

/* SIGPIPE blocked while we write to a hook that may not read; a SIGPIPE we
 * raised ourselves is consumed so it does not fire once unblocked. */
struct sigpipe_guard {
  sigset_t old_mask;
  bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g) {
  sigset_t pipe_set, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  g->was_pending = sigismember(&pending, SIGPIPE) == 1;
  sigprocmask(SIG_BLOCK, &pipe_set, &g->old_mask);
}

static void sigpipe_restore(struct sigpipe_guard *g) {
  sigset_t pipe_set, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  if (!g->was_pending && sigismember(&pending, SIGPIPE) == 1) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
      ;
  }
  sigprocmask(SIG_SETMASK, &g->old_mask, NULL);
}

static int hook_result(const char *prefix, const struct hook_run *run,
                       bool in_time, int timeout, int exec_errno,
                       cell_error **err) {
  if (!in_time)
    return cell_fail(err, 0, "%s: timed out after %d s", prefix, timeout);
  if (exec_errno != 0)
    return cell_fail(err, exec_errno, "%s: exec", prefix);
  if (WIFEXITED(run->status) && WEXITSTATUS(run->status) != 0)
    return cell_fail(err, 0, "%s: exited with status %d", prefix,
                     WEXITSTATUS(run->status));
  if (WIFSIGNALED(run->status))
    return cell_fail(err, 0, "%s: killed by signal %d", prefix,
                     WTERMSIG(run->status));
  return 0;
}

static int read_exec_errno(int fd) {
  int e = 0;
  if (cell_read_all(fd, &e, sizeof(e)) != (ssize_t)sizeof(e))
    return 0;
  return e;
}

static int run_one(const struct spec_hook *hook, const char *prefix,
                   const char *state_json, cell_error **err) {
  int in[2], ex[2];
  if (pipe2(in, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "%s: pipe", prefix);
  if (pipe2(ex, O_CLOEXEC) < 0) {
    int e = errno;
    close(in[0]);
    close(in[1]);
    return cell_fail(err, e, "%s: pipe", prefix);
  }
  cleanup_close int stdin_r = in[0], errpipe_r = ex[0], errpipe_w = ex[1];
  struct hook_run run = {.pidfd = -1, .stdin_fd = in[1],
                         .data = state_json ? state_json : "",
                         .len = state_json ? strlen(state_json) : 0};

  struct sigpipe_guard guard;
  sigpipe_block(&guard);
  run.pid = fork();
  if (run.pid < 0) {
    int e = errno;
    close_stdin(&run);
    sigpipe_restore(&guard);
    return cell_fail(err, e, "%s: fork", prefix);
  }
  if (run.pid == 0)
    exec_hook(hook, stdin_r, errpipe_w);

  close(steal_fd(&stdin_r));
  close(steal_fd(&errpipe_w));
  fcntl(run.stdin_fd, F_SETFL, O_NONBLOCK);
  run.pidfd = cell_pidfd_open(run.pid);
  long long deadline =
      hook->timeout ? monotonic_ms() + (long long)*hook->timeout * 1000 : -1;
  bool in_time = wait_hook(&run, deadline);
  close_stdin(&run);
  if (run.pidfd >= 0)
    close(run.pidfd);
  sigpipe_restore(&guard);

  int exec_errno = read_exec_errno(errpipe_r);
  return hook_result(prefix, &run, in_time, hook->timeout ? *hook->timeout : 0,
                     exec_errno, err);
}

static char *hook_prefix(const struct spec_hook *hook, const char *kind,
                         size_t i) {
  return xasprintf("%s hook %zu (`%s`)", kind, i,
                   hook->path ? hook->path : "");
}

int hooks_run(const struct spec_hook_list *hooks, const char *kind,
              const char *state_json, cell_error **err) {
  if (hooks == NULL)
    return 0;
  for (size_t i = 0; i < hooks->len; i++) {
    cleanup_free char *prefix = hook_prefix(&hooks->hooks[i], kind, i);
    if (run_one(&hooks->hooks[i], prefix, state_json, err) < 0)
      return -1;
  }
  return 0;
}

void hooks_run_warn(const struct spec_hook_list *hooks, const char *kind,
                    const char *state_json) {
  if (hooks == NULL)
    return;
  for (size_t i = 0; i < hooks->len; i++) {
    cleanup_free char *prefix = hook_prefix(&hooks->hooks[i], kind, i);
    cleanup_error cell_error *err = NULL;
    if (run_one(&hooks->hooks[i], prefix, state_json, &err) < 0)
      log_warn("%s", err->msg);
  }
}
