/* The console ring buffer, packets and keeper of celld's consoles
 * (lib/daemon/console-ring.c, lib/daemon/console-keeper.c). */
#include "daemon/console-keeper.h"
#include "daemon/console-ring.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

/* The ring's bytes, oldest first, NUL-terminated. */
static char *contents(const struct console_ring *r) {
  char *s = malloc(r->len + 1);
  size_t n = console_ring_copy(r, s);
  s[n] = '\0';
  return s;
}

TEST(empty) {
  struct console_ring r;
  console_ring_init(&r, 16);
  char *s = contents(&r);
  CHECK_STR(s, "");
  CHECK(r.len == 0);
  /* Nothing is allocated before the first byte. */
  CHECK(r.cap == 0 && r.buf == NULL);
  const char *span[2];
  size_t len[2];
  console_ring_spans(&r, span, len);
  CHECK(len[0] == 0 && len[1] == 0);
  console_ring_append(&r, "", 0);
  CHECK(r.len == 0 && r.buf == NULL);
  free(s);
  console_ring_free(&r);
}

TEST(appends_in_order_below_the_cap) {
  struct console_ring r;
  console_ring_init(&r, 64);
  console_ring_append(&r, "hello ", 6);
  console_ring_append(&r, "console", 7);
  char *s = contents(&r);
  CHECK_STR(s, "hello console");
  free(s);
  console_ring_free(&r);
}

TEST(keeps_the_last_max_bytes_when_it_wraps) {
  struct console_ring r;
  console_ring_init(&r, 8);
  console_ring_append(&r, "abcdef", 6);
  console_ring_append(&r, "ghij", 4);
  char *s = contents(&r);
  CHECK_STR(s, "cdefghij");
  free(s);
  console_ring_append(&r, "k", 1);
  s = contents(&r);
  CHECK_STR(s, "defghijk");
  free(s);
  CHECK(r.len == 8 && r.cap == 8);
  /* Two spans once it wrapped, oldest first. */
  const char *span[2];
  size_t len[2];
  console_ring_spans(&r, span, len);
  CHECK(len[0] + len[1] == 8);
  CHECK(len[1] > 0);
  CHECK(len[0] > 0 && span[0][0] == 'd');
  console_ring_free(&r);
}

TEST(a_write_larger_than_max_keeps_its_tail) {
  struct console_ring r;
  console_ring_init(&r, 4);
  console_ring_append(&r, "xy", 2);
  console_ring_append(&r, "0123456789", 10);
  char *s = contents(&r);
  CHECK_STR(s, "6789");
  free(s);
  console_ring_append(&r, "AB", 2);
  s = contents(&r);
  CHECK_STR(s, "89AB");
  free(s);
  console_ring_free(&r);
}

TEST(grows_lazily_up_to_max) {
  struct console_ring r;
  console_ring_init(&r, 64 * 1024);
  console_ring_append(&r, "login: ", 7);
  /* A quiet console costs far less than the cap. */
  CHECK(r.cap > 0 && r.cap <= 4096);
  char big[5000];
  memset(big, 'z', sizeof(big));
  console_ring_append(&r, big, sizeof(big));
  CHECK(r.cap >= 5007 && r.cap < 64 * 1024);
  char *s = contents(&r);
  CHECK(strncmp(s, "login: zzz", 10) == 0);
  CHECK(strlen(s) == 5007);
  free(s);
  for (int i = 0; i < 100; i++)
    console_ring_append(&r, big, sizeof(big));
  CHECK(r.cap == 64 * 1024);
  CHECK(r.len == 64 * 1024);
  console_ring_free(&r);
}

/* Random writes against a model: the ring always holds the last
 * min(total, max) bytes of everything written, in order. */
TEST(matches_a_model_under_random_writes) {
  enum { MAX = 1000, TOTAL = 200000 };
  static char stream[TOTAL];
  struct console_ring r;
  console_ring_init(&r, MAX);
  srand(42);
  size_t written = 0;
  bool ok = true;
  while (written < TOTAL) {
    size_t n = (size_t)(rand() % 1500);
    if (n > TOTAL - written)
      n = TOTAL - written;
    for (size_t i = 0; i < n; i++)
      stream[written + i] = (char)('a' + rand() % 26);
    console_ring_append(&r, stream + written, n);
    written += n;
    size_t want = written < MAX ? written : MAX;
    char out[MAX];
    if (r.len != want || console_ring_copy(&r, out) != want ||
        memcmp(out, stream + written - want, want) != 0 || r.cap > MAX) {
      ok = false;
      break;
    }
  }
  CHECK(ok);
  console_ring_free(&r);
}

TEST(packets_carry_type_payload_and_fd) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
  int pipefd[2];
  CHECK(pipe(pipefd) == 0);
  CHECK(console_send(sv[0], CONSOLE_CTL_ADD, "web1", 4, pipefd[1], 0) == 0);
  CHECK(console_send(sv[0], CONSOLE_MSG_DATA, "ab", 2, -1, 0) == 0);
  char buf[64];
  int fd = -1;
  ssize_t n = console_recv(sv[1], buf, sizeof(buf), &fd, 0);
  CHECK(n == 5);
  CHECK(buf[0] == CONSOLE_CTL_ADD && memcmp(buf + 1, "web1", 4) == 0);
  CHECK(fd >= 0);
  /* It is the pipe's write end: what goes in comes out of ours. */
  CHECK(fd >= 0 && write(fd, "x", 1) == 1);
  char c = 0;
  CHECK(read(pipefd[0], &c, 1) == 1 && c == 'x');
  int got = fd;
  n = console_recv(sv[1], buf, sizeof(buf), &fd, 0);
  CHECK(n == 3 && buf[0] == CONSOLE_MSG_DATA && fd == -1);
  /* A packet larger than the buffer is an error, not a silent cut. */
  char big[100];
  memset(big, 'q', sizeof(big));
  CHECK(console_send(sv[0], CONSOLE_MSG_DATA, big, sizeof(big), -1, 0) == 0);
  CHECK(console_recv(sv[1], buf, sizeof(buf), &fd, 0) < 0);
  CHECK(errno == EMSGSIZE);
  close(sv[0]);
  CHECK(console_recv(sv[1], buf, sizeof(buf), &fd, 0) == 0);
  close(sv[1]);
  close(pipefd[0]);
  close(pipefd[1]);
  if (got >= 0)
    close(got);
}

/* ---- the keeper, with real ptys (no root needed) ---------------------------- */

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Packets from an attached socket until `want` shows in their data, or
 * EOF, or 5 s; the data seen, NUL-terminated.  *eof: the keeper closed. */
static char *read_until(int sock, const char *want, bool *eof, char *type) {
  size_t cap = 1 << 20, len = 0;
  char *seen = calloc(1, cap + 1);
  long end = now_ms() + 5000;
  *eof = false;
  *type = 0;
  while (now_ms() < end && !(want && strstr(seen, want))) {
    struct pollfd p = {.fd = sock, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0)
      continue;
    char buf[1 + CONSOLE_MSG_MAX];
    ssize_t n = console_recv(sock, buf, sizeof(buf), NULL, 0);
    if (n <= 0) {
      *eof = true;
      break;
    }
    *type = buf[0];
    if (len + (size_t)n - 1 <= cap) {
      memcpy(seen + len, buf + 1, (size_t)n - 1);
      len += (size_t)n - 1;
    }
  }
  return seen;
}

static int open_pty(int *slave) {
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
    return -1;
  *slave = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
  struct termios t;
  /* Raw: bytes cross unchanged, so that the test sees what it wrote. */
  tcgetattr(*slave, &t);
  cfmakeraw(&t);
  tcsetattr(*slave, TCSANOW, &t);
  return m;
}

static int attach(int ctl, const char *name) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return -1;
  console_send(ctl, CONSOLE_CTL_ATTACH, name, strlen(name), sv[0], 0);
  close(sv[0]);
  return sv[1];
}

TEST(keeper_end_to_end) {
  char dir[] = "/tmp/test-console-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  cell_error *err = NULL;
  bool spawned = false;
  pid_t pid = 0;
  int ctl = console_keeper_connect(dir, &spawned, &pid, &err);
  CHECK(ctl >= 0 && spawned && pid > 0);
  char sockpath[64];
  snprintf(sockpath, sizeof(sockpath), "%s/%s", dir, CONSOLE_SOCKET);
  struct stat st;
  CHECK(stat(sockpath, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
  /* A second celld finds the same keeper. */
  bool again = true;
  pid_t pid2 = 0;
  int ctl2 = console_keeper_connect(dir, &again, &pid2, &err);
  CHECK(ctl2 >= 0 && !again);

  int slave = -1;
  int master = open_pty(&slave);
  CHECK(master >= 0 && slave >= 0);
  CHECK(console_send(ctl, CONSOLE_CTL_ADD, "t1", 2, master, 0) == 0);
  close(master);
  CHECK(write(slave, "boot-message\n", 13) == 13);

  /* Nobody attached: the instance's writes never block (1 MiB through a
   * pty whose own buffer is a few KiB). */
  int fl = fcntl(slave, F_GETFL);
  fcntl(slave, F_SETFL, fl | O_NONBLOCK);
  static char chunk[4096];
  memset(chunk, 'y', sizeof(chunk));
  size_t written = 0;
  long end = now_ms() + 10000;
  while (written < (1 << 20) && now_ms() < end) {
    ssize_t n = write(slave, chunk, sizeof(chunk));
    if (n > 0)
      written += (size_t)n;
    else
      poll(&(struct pollfd){.fd = slave, .events = POLLOUT}, 1, 100);
  }
  CHECK(written >= (1 << 20));
  fcntl(slave, F_SETFL, fl);
  CHECK(write(slave, "after-flood\n", 12) == 12);

  /* Attach: the buffer (the last 64 KiB: the flood's tail, not the boot
   * message), then live output. */
  int a = attach(ctl, "t1");
  bool eof;
  char type;
  char *seen = read_until(a, "after-flood", &eof, &type);
  CHECK(strstr(seen, "after-flood") != NULL);
  CHECK(strstr(seen, "boot-message") == NULL);
  /* The flood (1 MiB) is capped: the buffer, then at most what the pty
   * still held for the keeper at the attach, which comes live after it
   * (under load the keeper lags: up to the tty layer's 64 KiB of flip
   * buffers and n_tty's 4 KiB). */
  CHECK(strlen(seen) <= CONSOLE_RING_MAX + 65536 + 4096);
  free(seen);
  CHECK(write(slave, "live-line\n", 10) == 10);
  seen = read_until(a, "live-line", &eof, &type);
  CHECK_CONTAINS(seen, "live-line");
  free(seen);

  /* Input reaches the instance's side; a window size too. */
  CHECK(console_send(a, CONSOLE_MSG_DATA, "typed", 5, -1, 0) == 0);
  char in[16] = {0};
  struct pollfd p = {.fd = slave, .events = POLLIN};
  CHECK(poll(&p, 1, 5000) == 1 && read(slave, in, sizeof(in) - 1) == 5);
  CHECK_STR(in, "typed");
  struct winsize ws = {.ws_row = 42, .ws_col = 101};
  CHECK(console_send(a, CONSOLE_MSG_WINSIZE, &ws, sizeof(ws), -1, 0) == 0);
  struct winsize got = {0};
  for (int i = 0; i < 50 && got.ws_row != 42; i++) {
    usleep(20000);
    ioctl(slave, TIOCGWINSZ, &got);
  }
  CHECK(got.ws_row == 42 && got.ws_col == 101);

  /* A second client at once. */
  int b = attach(ctl, "t1");
  seen = read_until(b, "live-line", &eof, &type);
  CHECK_CONTAINS(seen, "live-line");
  free(seen);

  /* An unknown console: a reason, then EOF. */
  int u = attach(ctl, "nope");
  seen = read_until(u, NULL, &eof, &type);
  CHECK(eof && type == CONSOLE_MSG_ERROR);
  CHECK_CONTAINS(seen, "no console for `nope`");
  free(seen);
  close(u);

  /* The instance closes every fd of its console: the keeper holds the
   * pty (an init may open it again, as systemd does at start)... */
  close(slave);
  struct pollfd pa = {.fd = a, .events = POLLIN};
  CHECK(poll(&pa, 1, 200) == 0);
  /* ... until celld says the instance stopped: its clients see EOF. */
  CHECK(console_send(ctl, CONSOLE_CTL_HANGUP, "t1", 2, -1, 0) == 0);
  seen = read_until(a, NULL, &eof, &type);
  CHECK(eof);
  free(seen);
  close(a);
  close(b);

  /* Stopped: an attach gets the buffer, then EOF (no error). */
  int c = attach(ctl, "t1");
  seen = read_until(c, NULL, &eof, &type);
  CHECK(eof && type == CONSOLE_MSG_DATA);
  CHECK_CONTAINS(seen, "live-line");
  free(seen);
  close(c);

  /* celld saves it into a file; the keeper fills the file (what was there
   * goes), and a new console made from such a file (a new keeper's) gives
   * it back.  Requests on one socket are handled in order: the attach's
   * answer says the save is done. */
  char saved[128];
  snprintf(saved, sizeof(saved), "%s/saved", dir);
  int f = open(saved, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CHECK(f >= 0 && write(f, "stale-stale-stale-stale-stale-stale", 35) == 35);
  CHECK(console_send(ctl, CONSOLE_CTL_SAVE, "t1", 2, f, 0) == 0);
  c = attach(ctl, "t1");
  free(read_until(c, NULL, &eof, &type));
  close(c);
  static char text[CONSOLE_RING_MAX + 64];
  ssize_t got_len = pread(f, text, sizeof(text), 0);
  CHECK(got_len > 0 && got_len <= CONSOLE_RING_MAX);
  CHECK(got_len > 0 && memmem(text, (size_t)got_len, "live-line", 9) != NULL);
  CHECK(got_len > 0 && memmem(text, (size_t)got_len, "stale", 5) == NULL);
  CHECK(console_send(ctl, CONSOLE_CTL_LOAD, "t2", 2, f, 0) == 0);
  close(f);
  c = attach(ctl, "t2");
  seen = read_until(c, NULL, &eof, &type);
  CHECK(eof && type == CONSOLE_MSG_DATA);
  CHECK_CONTAINS(seen, "live-line");
  free(seen);
  close(c);
  unlink(saved);

  /* No live console, nothing unsaved and no celld: the keeper leaves, and
   * its name. */
  close(ctl);
  close(ctl2);
  int status = -1;
  pid_t w = 0;
  for (int i = 0; i < 100 && w == 0; i++) {
    w = waitpid(pid, &status, WNOHANG);
    if (w == 0)
      usleep(20000);
  }
  CHECK(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (w == 0)
    kill(pid, SIGKILL), waitpid(pid, NULL, 0);
  CHECK(access(sockpath, F_OK) < 0);
  rmdir(dir);
  cell_error_free(&err);
}

int main(void) {
  RUN(empty);
  RUN(appends_in_order_below_the_cap);
  RUN(keeps_the_last_max_bytes_when_it_wraps);
  RUN(a_write_larger_than_max_keeps_its_tail);
  RUN(grows_lazily_up_to_max);
  RUN(matches_a_model_under_random_writes);
  RUN(packets_carry_type_payload_and_fd);
  RUN(keeper_end_to_end);
  UNIT_DONE();
}
