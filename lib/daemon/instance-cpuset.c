/* An instance's CPUs (instance-cpuset.h). */
#include "daemon/instance-cpuset.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "daemon/instance-settings.h"

/* celld's own CPUs, in order; their number. */
static int allowed_cpus(int cpus[CPU_SETSIZE]) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) < 0)
    return 0;
  int n = 0;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &set))
      cpus[n++] = c;
  return n;
}

static char *join(const int *cpus, int n) {
  char *out = xstrdup("");
  for (int i = 0; i < n; i++) {
    char *next = xasprintf("%s%s%d", out, i ? "," : "", cpus[i]);
    free(out);
    out = next;
  }
  return out;
}

char *instance_cpuset(const struct instance_record *r) {
  /* Chosen by hand (cpuset=): those, whatever the limit. */
  const char *set = instance_setting(r, "cpuset");
  if (set)
    return xstrdup(set);
  if (r->cpu_milli <= 0)
    return NULL;
  int cpus[CPU_SETSIZE];
  int n = allowed_cpus(cpus);
  int64_t want = (r->cpu_milli + 999) / 1000;
  if (n == 0 || want >= n)
    return NULL;
  int first = (int)((r->id_start / (r->id_count ? r->id_count : 65536)) % (uint32_t)n);
  int chosen[CPU_SETSIZE];
  for (int i = 0; i < want; i++)
    chosen[i] = cpus[(first + i) % n];
  /* In order: "1,0" would read oddly in show and in the cgroup file. */
  for (int i = 1; i < want; i++)
    for (int j = i; j > 0 && chosen[j - 1] > chosen[j]; j--) {
      int t = chosen[j];
      chosen[j] = chosen[j - 1];
      chosen[j - 1] = t;
    }
  return join(chosen, (int)want);
}

char *instance_cpuset_all(void) {
  int cpus[CPU_SETSIZE];
  int n = allowed_cpus(cpus);
  return n ? join(cpus, n) : NULL;
}
