/* recvtty: the far end of --console-socket, for the end-to-end tests.
 *
 *   recvtty [-i TEXT] [-n NAMEFILE] [-s SIZEFILE] [-t SECONDS] SOCKET
 *
 * Listens on the unix socket SOCKET, accepts one connection and receives
 * the pty master the runtime sends with SCM_RIGHTS (the message's data is
 * a name: cell sends the slave's, runc "/dev/ptmx").  It checks that the
 * fd really is a pty master, writes the name to NAMEFILE and the window
 * size ("ROWS COLS") to SIZEFILE, writes TEXT to the terminal as if typed,
 * then copies everything the container writes to stdout until the last
 * slave is closed.  Gives up after SECONDS (30) with status 124, so that a
 * runtime that never connects fails the test instead of hanging it.
 * Exit status: 0 done, 1 usage or system error, 2 protocol error. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "recvtty: timed out\n";
  (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
  _exit(124);
}

static int die(int code, const char *what, const char *arg) {
  fprintf(stderr, "recvtty: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "",
          errno ? strerror(errno) : "failed");
  exit(code);
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "we");
  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
    die(1, "write", path);
}

static int listen_on(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    die(1, "socket path", path);
  }
  strcpy(addr.sun_path, path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    die(1, "socket", NULL);
  unlink(path);
  /* Bind under a temporary name and rename: the socket appears, ready to
   * accept, at once, so the test can wait for the path to exist. */
  char tmp[sizeof(addr.sun_path) + 8];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  if (strlen(tmp) >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    die(1, "socket path", tmp);
  }
  strcpy(addr.sun_path, tmp);
  unlink(tmp);
  if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
    die(1, "bind", tmp);
  if (listen(s, 1) < 0)
    die(1, "listen", path);
  if (rename(tmp, path) < 0)
    die(1, "rename to", path);
  return s;
}

/* One message: the slave's name as data, the master as SCM_RIGHTS. */
static int receive_master(int conn, char *name, size_t name_size) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof(control));
  struct iovec iov = {name, name_size - 1};
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = control.buf,
                      .msg_controllen = sizeof(control.buf)};
  ssize_t n;
  do
    n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    die(1, "recvmsg", NULL);
  name[n] = '\0';
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  if (n == 0 || c == NULL || c->cmsg_level != SOL_SOCKET ||
      c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
    errno = 0;
    die(2, "no fd in the message from the runtime", NULL);
  }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof(fd));
  return fd;
}

int main(int argc, char **argv) {
  const char *input = NULL, *name_file = NULL, *size_file = NULL;
  unsigned timeout = 30;
  int opt;
  while ((opt = getopt(argc, argv, "i:n:s:t:")) != -1) {
    switch (opt) {
    case 'i': input = optarg; break;
    case 'n': name_file = optarg; break;
    case 's': size_file = optarg; break;
    case 't': timeout = (unsigned)strtoul(optarg, NULL, 10); break;
    default: goto usage;
    }
  }
  if (optind != argc - 1)
    goto usage;
  signal(SIGALRM, on_alarm);
  alarm(timeout);

  int s = listen_on(argv[optind]);
  int conn;
  do
    conn = accept4(s, NULL, NULL, SOCK_CLOEXEC);
  while (conn < 0 && errno == EINTR);
  if (conn < 0)
    die(1, "accept", NULL);
  close(s);
  unlink(argv[optind]);

  char name[256];
  int master = receive_master(conn, name, sizeof(name));
  close(conn);
  unsigned ptn;
  if (ioctl(master, TIOCGPTN, &ptn) < 0) {
    errno = 0;
    die(2, "the fd received is not a pty master", NULL);
  }
  if (name_file)
    write_file(name_file, name);
  if (size_file) {
    struct winsize ws;
    char text[64];
    if (ioctl(master, TIOCGWINSZ, &ws) < 0)
      die(1, "TIOCGWINSZ", NULL);
    snprintf(text, sizeof(text), "%u %u\n", ws.ws_row, ws.ws_col);
    write_file(size_file, text);
  }
  if (input && write_all(master, input, strlen(input)) < 0)
    die(1, "write to the terminal", NULL);

  /* EIO once no slave is open any more: the container is gone. */
  char buf[4096];
  for (;;) {
    ssize_t n = read(master, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EIO)
      break;
    if (n < 0)
      die(1, "read the terminal", NULL);
    if (n == 0)
      break;
    if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
      die(1, "write stdout", NULL);
  }
  close(master);
  return 0;

usage:
  fprintf(stderr, "usage: recvtty [-i TEXT] [-n NAMEFILE] [-s SIZEFILE] "
                  "[-t SECONDS] SOCKET\n");
  return 1;
}
