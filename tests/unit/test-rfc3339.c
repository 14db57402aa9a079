/* RFC 3339 times of the state file (lib/base/util.c's cell_rfc3339), made
 * without gmtime_r: they must be what gmtime_r says. */
#include <stdlib.h>
#include <time.h>

#include "base/util.h"
#include "unit.h"

static char *with_gmtime(time_t t, long nsec) {
  struct tm tm;
  gmtime_r(&t, &tm);
  char date[64];
  strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  return xasprintf("%s.%09ldZ", date, nsec);
}

static void check_at(time_t t, long nsec) {
  struct timespec ts = {.tv_sec = t, .tv_nsec = nsec};
  char *ours = cell_rfc3339(&ts), *theirs = with_gmtime(t, nsec);
  CHECK_STR(ours, theirs);
  free(ours);
  free(theirs);
}

TEST(known_dates) {
  struct timespec epoch = {0, 0};
  char *s = cell_rfc3339(&epoch);
  CHECK_STR(s, "1970-01-01T00:00:00.000000000Z");
  free(s);
  struct timespec leap = {.tv_sec = 951782400, .tv_nsec = 123456789};
  s = cell_rfc3339(&leap); /* 2000 is a leap year (divisible by 400) */
  CHECK_STR(s, "2000-02-29T00:00:00.123456789Z");
  free(s);
}

TEST(agrees_with_gmtime_across_four_centuries) {
  /* Every ~3.7 days (with a changing time of day) from 1901 to 2300:
   * leap days, century years that are not leap years (2100, 2200), month
   * and year ends. */
  for (time_t t = -2145916800; t < 10413792000; t += 317903)
    check_at(t, t % 1000000000 < 0 ? 0 : t % 1000000000);
  check_at(4107542399, 0);  /* 2100-02-28T23:59:59 */
  check_at(4107542400, 7);  /* 2100-03-01: no 29 February */
  check_at(1709164800, 0);  /* 2024-02-29 */
  check_at(1735689599, 999999999); /* 2024-12-31T23:59:59 */
  check_at(-1, 5);          /* 1969-12-31T23:59:59 */
}

int main(void) {
  RUN(known_dates);
  RUN(agrees_with_gmtime_across_four_centuries);
  UNIT_DONE();
}
