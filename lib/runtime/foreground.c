#include "runtime/foreground.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

int foreground_begin(struct foreground *f, cell_error **err) {
  memset(f, 0, sizeof(*f));
  f->master = -1;
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &f->old_mask);
  f->sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
  if (f->sfd < 0) {
    sigprocmask(SIG_SETMASK, &f->old_mask, NULL);
    return cell_fail_errno(err, "signalfd");
  }
  return 0;
}

bool foreground_has_terminal(void) { return isatty(STDIN_FILENO) == 1; }

/* A terminal without a size (0x0, as script's pty is when script's own
 * stdin is no terminal) leaves process.consoleSize in place. */
static void copy_window_size(int master) {
  struct winsize ws;
  if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
    ioctl(master, TIOCSWINSZ, &ws);
}

void foreground_size_process(struct spec_process *p) {
  struct winsize ws;
  if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0)
    return;
  if (p->console_size == NULL)
    p->console_size = xcalloc(1, sizeof(*p->console_size));
  p->console_size->height = ws.ws_row;
  p->console_size->width = ws.ws_col;
}

int foreground_attach_terminal(struct foreground *f, int master,
                               cell_error **err) {
  f->master = master;
  if (!foreground_has_terminal())
    return 0;
  if (tcgetattr(STDIN_FILENO, &f->saved) < 0)
    return cell_fail_errno(err, "tcgetattr");
  /* Output processing too: the container's pty already did its own, and
   * doing it again turns its "\n" into "\r\r\n" (or breaks programs that
   * turned onlcr off). */
  struct termios raw = f->saved;
  cfmakeraw(&raw);
  if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
    return cell_fail_errno(err, "tcsetattr");
  f->raw = true;
  copy_window_size(master);
  return 0;
}

bool foreground_pump(int from, int to) {
  char buf[16384];
  ssize_t n = read(from, buf, sizeof(buf));
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  if (n <= 0)
    return false;
  return cell_write_all(to, buf, (size_t)n) >= 0;
}

static int exit_code_of(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return 255;
}

/* Reap what has exited; true once pid has been.  We may reap others too
 * (we are a subreaper for run's grandchild). */
static bool reap(pid_t pid, int *exit_code) {
  bool done = false;
  int status;
  pid_t r;
  while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
    if (r == pid) {
      *exit_code = exit_code_of(status);
      done = true;
    }
  }
  return done;
}

/* Handle pending signals; true once pid has been reaped. */
static bool handle_signals(struct foreground *f, pid_t pid, int *exit_code) {
  struct signalfd_siginfo si;
  while (read(f->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    if (si.ssi_signo == SIGWINCH && f->master >= 0) {
      copy_window_size(f->master);
    } else if (si.ssi_signo != SIGCHLD) {
      kill(pid, (int)si.ssi_signo);
    }
  }
  return reap(pid, exit_code);
}

/* What the process wrote last.  Its last bytes may still be on their way
 * when it has exited (the kernel moves a pty's output to the master from a
 * work queue, later under load), so a short silence ends the drain, not
 * the first empty poll; the end of the terminal (all its fds closed) ends
 * it at once.  Bounded: a child it left behind may hold the terminal open,
 * and even keep writing. */
#define DRAIN_QUIET_MS 50
#define DRAIN_MAX_MS 1000
static void drain_terminal(struct foreground *f) {
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (f->master >= 0) {
    struct pollfd q = {f->master, POLLIN, 0};
    if (poll(&q, 1, DRAIN_QUIET_MS) <= 0 ||
        !foreground_pump(f->master, STDOUT_FILENO))
      return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000 +
            (now.tv_nsec - start.tv_nsec) / 1000000 > DRAIN_MAX_MS)
      return;
  }
}

int foreground_wait(struct foreground *f, pid_t pid, int *exit_code,
                    cell_error **err) {
  bool stdin_open = f->master >= 0;
  /* A process that exited before foreground_begin blocked SIGCHLD (run's
   * does not wait for a start) sent its SIGCHLD to nobody: look first. */
  bool exited = reap(pid, exit_code);
  while (!exited) {
    struct pollfd p[3] = {{f->sfd, POLLIN, 0},
                          {f->master, POLLIN, 0},
                          {stdin_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      return cell_fail_errno(err, "poll");
    }
    if ((p[1].revents & (POLLIN | POLLHUP)) &&
        !foreground_pump(f->master, STDOUT_FILENO)) {
      close(f->master);
      f->master = -1;
      stdin_open = false;
    }
    if ((p[2].revents & (POLLIN | POLLHUP)) &&
        !foreground_pump(STDIN_FILENO, f->master))
      stdin_open = false;
    if (p[0].revents & POLLIN)
      exited = handle_signals(f, pid, exit_code);
  }
  drain_terminal(f);
  return 0;
}

void foreground_end(struct foreground *f) {
  if (f->raw)
    tcsetattr(STDIN_FILENO, TCSANOW, &f->saved);
  if (f->master >= 0)
    close(f->master);
  if (f->sfd >= 0)
    close(f->sfd);
  sigprocmask(SIG_SETMASK, &f->old_mask, NULL);
  f->master = f->sfd = -1;
}
