#include "base/signals.h"

#include <ctype.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

struct signal_entry {
  const char *name; /* without the SIG prefix */
  int signo;
};

/* The first entry for a number is its canonical name; later ones are
 * aliases accepted on input only.  Numbers come from <signal.h> so the
 * table is right on every architecture. */
static const struct signal_entry signal_table[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},       {"QUIT", SIGQUIT},
    {"ILL", SIGILL},       {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},
    {"IOT", SIGIOT},       {"BUS", SIGBUS},       {"FPE", SIGFPE},
    {"KILL", SIGKILL},     {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},
    {"TERM", SIGTERM},
#ifdef SIGSTKFLT
    {"STKFLT", SIGSTKFLT},
#endif
    {"CHLD", SIGCHLD},     {"CLD", SIGCHLD},      {"CONT", SIGCONT},
    {"STOP", SIGSTOP},     {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},     {"URG", SIGURG},       {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},   {"IO", SIGIO},         {"POLL", SIGPOLL},
#ifdef SIGPWR
    {"PWR", SIGPWR},
#endif
    {"SYS", SIGSYS},
};

#define N_SIGNALS (sizeof(signal_table) / sizeof(signal_table[0]))

static bool all_digits(const char *s) {
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s))
      return false;
  return true;
}

/* "RTMIN", "RTMIN+3", "RTMAX", "RTMAX-2" (prefix already stripped). */
static bool parse_realtime(const char *s, int *signo) {
  bool from_min;
  if (strncasecmp(s, "RTMIN", 5) == 0)
    from_min = true;
  else if (strncasecmp(s, "RTMAX", 5) == 0)
    from_min = false;
  else
    return false;
  const char *rest = s + 5;
  long long offset = 0;
  if (*rest != '\0') {
    if (*rest != (from_min ? '+' : '-') || !all_digits(rest + 1) ||
        !cell_parse_ll(rest + 1, 0, SIGRTMAX - SIGRTMIN, &offset))
      return false;
  }
  *signo = from_min ? SIGRTMIN + (int)offset : SIGRTMAX - (int)offset;
  return true;
}

int signal_parse(const char *s, int *signo, cell_error **err) {
  if (s == NULL)
    return cell_fail(err, 0, "unknown signal ``");
  if (all_digits(s)) {
    long long n;
    if (!cell_parse_ll(s, 1, SIGRTMAX, &n))
      return cell_fail(err, 0, "unknown signal `%s`: numbers go from 1 to %d",
                       s, SIGRTMAX);
    *signo = (int)n;
    return 0;
  }
  const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
  for (size_t i = 0; i < N_SIGNALS; i++) {
    if (strcasecmp(name, signal_table[i].name) == 0) {
      *signo = signal_table[i].signo;
      return 0;
    }
  }
  if (parse_realtime(name, signo))
    return 0;
  return cell_fail(err, 0, "unknown signal `%s`", s);
}

const char *signal_name(int signo, char *buf, unsigned size) {
  if (buf == NULL || size == 0 || signo < 1 || signo > SIGRTMAX)
    return NULL;
  const char *base = NULL;
  for (size_t i = 0; i < N_SIGNALS && base == NULL; i++)
    if (signal_table[i].signo == signo)
      base = signal_table[i].name;
  int n;
  if (base != NULL)
    n = snprintf(buf, size, "SIG%s", base);
  else if (signo == SIGRTMAX)
    n = snprintf(buf, size, "SIGRTMAX");
  else if (signo == SIGRTMIN)
    n = snprintf(buf, size, "SIGRTMIN");
  else if (signo > SIGRTMIN)
    n = snprintf(buf, size, "SIGRTMIN+%d", signo - SIGRTMIN);
  else /* reserved by the C library below SIGRTMIN; no standard name */
    n = snprintf(buf, size, "SIG%d", signo);
  if (n < 0 || (unsigned)n >= size)
    return NULL;
  return buf;
}
