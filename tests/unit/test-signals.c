#include <signal.h>

#include "base/signals.h"
#include "unit.h"

static int parsed(const char *s) {
  int signo = -1;
  cell_error *err = NULL;
  if (signal_parse(s, &signo, &err) < 0) {
    cell_error_free(&err);
    return -1;
  }
  return signo;
}

static char *parse_error(const char *s) {
  static char msg[256];
  int signo = -1;
  cell_error *err = NULL;
  msg[0] = '\0';
  if (signal_parse(s, &signo, &err) < 0) {
    snprintf(msg, sizeof(msg), "%s", err->msg);
    cell_error_free(&err);
  }
  return msg;
}

TEST(names_with_and_without_prefix) {
  CHECK(parsed("KILL") == SIGKILL);
  CHECK(parsed("SIGKILL") == SIGKILL);
  CHECK(parsed("sigkill") == SIGKILL);
  CHECK(parsed("kill") == SIGKILL);
  CHECK(parsed("SigTerm") == SIGTERM);
  CHECK(parsed("HUP") == SIGHUP);
  CHECK(parsed("SIGSYS") == SIGSYS);
  CHECK(parsed("WINCH") == SIGWINCH);
  CHECK(parsed("USR1") == SIGUSR1);
  CHECK(parsed("SIGUSR2") == SIGUSR2);
  CHECK(parsed("CHLD") == SIGCHLD);
  CHECK(parsed("CLD") == SIGCHLD);
  CHECK(parsed("IOT") == SIGABRT);
  CHECK(parsed("POLL") == SIGIO);
  CHECK(parsed("PWR") == SIGPWR);
}

TEST(every_classic_signal_round_trips) {
  for (int sig = 1; sig < SIGRTMIN; sig++) {
    char buf[32];
    const char *name = signal_name(sig, buf, sizeof(buf));
    CHECK(name != NULL);
    if (name == NULL || sig == 32 || sig == 33)
      continue; /* glibc-reserved numbers have no name to parse */
    CHECK(parsed(name) == sig);
    CHECK(parsed(name + 3) == sig);
  }
}

TEST(numbers) {
  CHECK(parsed("9") == 9);
  CHECK(parsed("1") == 1);
  CHECK(parsed("15") == SIGTERM);
  char max[16];
  snprintf(max, sizeof(max), "%d", SIGRTMAX);
  CHECK(parsed(max) == SIGRTMAX);
  CHECK(parsed("0") == -1);
  CHECK(parsed("-9") == -1);
  CHECK(parsed("+9") == -1);
  CHECK(parsed(" 9") == -1);
  CHECK(parsed("9x") == -1);
  char over[16];
  snprintf(over, sizeof(over), "%d", SIGRTMAX + 1);
  CHECK(parsed(over) == -1);
  CHECK(parsed("99999999999999999999") == -1);
  CHECK_CONTAINS(parse_error(over), over);
}

TEST(realtime) {
  CHECK(parsed("RTMIN") == SIGRTMIN);
  CHECK(parsed("SIGRTMIN") == SIGRTMIN);
  CHECK(parsed("RTMIN+3") == SIGRTMIN + 3);
  CHECK(parsed("sigrtmin+3") == SIGRTMIN + 3);
  CHECK(parsed("RTMAX") == SIGRTMAX);
  CHECK(parsed("SIGRTMAX-1") == SIGRTMAX - 1);
  CHECK(parsed("RTMAX-0") == SIGRTMAX);
  char top[32];
  snprintf(top, sizeof(top), "RTMIN+%d", SIGRTMAX - SIGRTMIN);
  CHECK(parsed(top) == SIGRTMAX);
  snprintf(top, sizeof(top), "RTMIN+%d", SIGRTMAX - SIGRTMIN + 1);
  CHECK(parsed(top) == -1);
  snprintf(top, sizeof(top), "RTMAX-%d", SIGRTMAX - SIGRTMIN + 1);
  CHECK(parsed(top) == -1);
  CHECK(parsed("RTMIN-1") == -1);
  CHECK(parsed("RTMAX+1") == -1);
  CHECK(parsed("RTMIN+") == -1);
  CHECK(parsed("RTMIN+x") == -1);
  CHECK(parsed("RTMIN+-1") == -1);

  char buf[32];
  CHECK_STR(signal_name(SIGRTMIN, buf, sizeof(buf)), "SIGRTMIN");
  CHECK_STR(signal_name(SIGRTMIN + 3, buf, sizeof(buf)), "SIGRTMIN+3");
  CHECK_STR(signal_name(SIGRTMAX, buf, sizeof(buf)), "SIGRTMAX");
  for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
    CHECK(parsed(signal_name(sig, buf, sizeof(buf))) == sig);
}

TEST(unknown) {
  CHECK_STR(parse_error("FOO"), "unknown signal `FOO`");
  CHECK_STR(parse_error("SIGFOO"), "unknown signal `SIGFOO`");
  CHECK_STR(parse_error(""), "unknown signal ``");
  CHECK_STR(parse_error("SIG"), "unknown signal `SIG`");
  CHECK(parsed("SIGSIGKILL") == -1);
  CHECK(parsed("KILL ") == -1);
}

TEST(names) {
  char buf[32];
  CHECK_STR(signal_name(SIGKILL, buf, sizeof(buf)), "SIGKILL");
  CHECK_STR(signal_name(SIGABRT, buf, sizeof(buf)), "SIGABRT");
  CHECK_STR(signal_name(SIGCHLD, buf, sizeof(buf)), "SIGCHLD");
  CHECK_STR(signal_name(SIGIO, buf, sizeof(buf)), "SIGIO");
  CHECK(signal_name(0, buf, sizeof(buf)) == NULL);
  CHECK(signal_name(-1, buf, sizeof(buf)) == NULL);
  CHECK(signal_name(SIGRTMAX + 1, buf, sizeof(buf)) == NULL);
  char tiny[4];
  CHECK(signal_name(SIGKILL, tiny, sizeof(tiny)) == NULL);
}

int main(void) {
  RUN(names_with_and_without_prefix);
  RUN(every_classic_signal_round_trips);
  RUN(numbers);
  RUN(realtime);
  RUN(unknown);
  RUN(names);
  UNIT_DONE();
}
