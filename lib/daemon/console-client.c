/* cellctl's end of an attached console: our terminal relayed to the
 * socket the keeper attached (the protocol in console-keeper.h). */
#include "daemon/console-client.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/console-keeper.h"

/* Quiet time after the end of a non-terminal input. */
#define QUIET_MS 1000

static void send_winsize(int sock) {
  struct winsize ws;
  if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
    console_send(sock, CONSOLE_MSG_WINSIZE, &ws, sizeof(ws), -1, 0);
}

/* Our stdin to the console, up to the detach key.  False: detach. */
static bool relay_input(int sock, bool *in_open) {
  char buf[CONSOLE_MSG_MAX];
  ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  if (n <= 0) {
    *in_open = false;
    return true;
  }
  char *key = memchr(buf, CONSOLE_DETACH_KEY, (size_t)n);
  size_t len = key ? (size_t)(key - buf) : (size_t)n;
  /* A failed send: the console went; the socket's EOF says so next. */
  if (len)
    console_send(sock, CONSOLE_MSG_DATA, buf, len, -1, 0);
  return key == NULL;
}

int console_client(int sock, enum console_end *end, cell_error **err) {
  bool tty = isatty(STDIN_FILENO) == 1;
  struct termios saved;
  bool raw = false;
  int rc = 0;
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGWINCH);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGQUIT);
  sigprocmask(SIG_BLOCK, &set, &old);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    rc = cell_fail_errno(err, "signalfd");
    goto out;
  }
  if (tty) {
    if (tcgetattr(STDIN_FILENO, &saved) < 0) {
      rc = cell_fail_errno(err, "tcgetattr");
      goto out;
    }
    /* Output processing off too: the instance's pty did its own. */
    struct termios t = saved;
    cfmakeraw(&t);
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0) {
      rc = cell_fail_errno(err, "tcsetattr");
      goto out;
    }
    raw = true;
    send_winsize(sock);
  }
  bool in_open = true;
  *end = CONSOLE_CLOSED;
  char buf[1 + CONSOLE_MSG_MAX];
  for (;;) {
    struct pollfd p[3] = {{.fd = sock, .events = POLLIN},
                          {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN},
                          {.fd = sfd, .events = POLLIN}};
    int n = poll(p, 3, in_open ? -1 : QUIET_MS);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = cell_fail_errno(err, "poll");
      break;
    }
    if (n == 0) {
      *end = CONSOLE_INPUT_DONE;
      break;
    }
    if (p[2].revents & POLLIN) {
      struct signalfd_siginfo si;
      bool quit = false;
      while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGWINCH && tty)
          send_winsize(sock);
        else if (si.ssi_signo != SIGWINCH)
          quit = true;
      }
      if (quit) {
        *end = CONSOLE_DETACHED;
        break;
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = console_recv(sock, buf, sizeof(buf), NULL, 0);
      if (r < 0) {
        rc = cell_fail_errno(err, "console: receive");
        break;
      }
      if (r == 0)
        break; /* CONSOLE_CLOSED */
      if (buf[0] == CONSOLE_MSG_DATA && r > 1 &&
          cell_write_all(STDOUT_FILENO, buf + 1, (size_t)r - 1) < 0) {
        rc = cell_fail_errno(err, "console: write to stdout");
        break;
      }
      if (buf[0] == CONSOLE_MSG_ERROR) {
        rc = cell_fail(err, 0, "%.*s", (int)(r - 1), buf + 1);
        break;
      }
    }
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !relay_input(sock, &in_open)) {
      *end = CONSOLE_DETACHED;
      break;
    }
  }
out:
  if (raw)
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  if (sfd >= 0)
    close(sfd);
  sigprocmask(SIG_SETMASK, &old, NULL);
  return rc;
}
