/* timeit: run a command N times and print its wall time (median, p90) and
 * peak RSS.  "{}" in an argument is replaced by the iteration number, so
 * that each run can use its own container id.  A benchmark helper: it
 * measures, it asserts nothing.
 *
 *   timeit N LABEL CMD [ARG...]
 * prints: LABEL median_ms p90_ms median_peak_rss_kib failures
 * (the median of each run's peak RSS: a first run that fills a cache is
 * not what the runtime usually costs)
 *
 * With TIMEIT_RAW set in the environment it prints one line per run
 * instead, "ms peak_rss_kib exit_status", and the caller makes the
 * figures: a bench that interleaves short batches of several commands (so
 * that a busy host disturbs them alike) pools the lines of each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static char **expand(char **argv, int argc, int iteration) {
  char **out = calloc((size_t)argc + 1, sizeof(char *));
  char num[16];
  snprintf(num, sizeof(num), "%d", iteration);
  for (int i = 0; i < argc; i++) {
    const char *p = strstr(argv[i], "{}");
    if (p == NULL) {
      out[i] = strdup(argv[i]);
      continue;
    }
    size_t len = strlen(argv[i]) + strlen(num);
    out[i] = malloc(len + 1);
    snprintf(out[i], len + 1, "%.*s%s%s", (int)(p - argv[i]), argv[i], num, p + 2);
  }
  return out;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: timeit N LABEL CMD [ARG...]\n");
    return 2;
  }
  int n = atoi(argv[1]);
  const char *label = argv[2];
  double *ms = calloc((size_t)n, sizeof(double));
  double *rss = calloc((size_t)n, sizeof(double));
  int failures = 0;
  int raw = getenv("TIMEIT_RAW") != NULL;
  for (int i = 0; i < n; i++) {
    char **args = expand(argv + 3, argc - 3, i);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
      execvp(args[0], args);
      _exit(127);
    }
    int status;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    ms[i] = now_ms() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      failures++;
    rss[i] = (double)ru.ru_maxrss;
    if (raw)
      printf("%.3f %ld %d\n", ms[i], ru.ru_maxrss,
             WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    for (char **a = args; *a; a++)
      free(*a);
    free(args);
  }
  if (raw) {
    free(ms);
    free(rss);
    return 0;
  }
  qsort(ms, (size_t)n, sizeof(double), cmp_double);
  qsort(rss, (size_t)n, sizeof(double), cmp_double);
  printf("%s %.2f %.2f %.0f %d\n", label, ms[n / 2], ms[(n * 9) / 10],
         rss[n / 2], failures);
  free(ms);
  free(rss);
  return 0;
}
