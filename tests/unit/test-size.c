/* SIZE arguments (cell_parse_size in lib/base/util.c): what --memory,
 * --disk, `set memory=` and celld.conf's sizes accept. */
#include <stdint.h>

#include "base/util.h"
#include "unit.h"

/* s parses, to want bytes. */
static int parses_to(const char *s, long long want) {
  long long got = -1;
  return cell_parse_size(s, &got) && got == want;
}

static int refused(const char *s) {
  long long got = -7;
  return !cell_parse_size(s, &got) && got == -7;
}

TEST(bytes_and_binary_units) {
  CHECK(parses_to("0", 0));
  CHECK(parses_to("4096", 4096));
  CHECK(parses_to("64K", 64LL << 10));
  CHECK(parses_to("64k", 64LL << 10));
  CHECK(parses_to("512M", 512LL << 20));
  CHECK(parses_to("2G", 2LL << 30));
  CHECK(parses_to("3T", 3LL << 40));
}

TEST(mb_and_mib_mean_the_same) {
  CHECK(parses_to("100MB", 100LL << 20));
  CHECK(parses_to("100MiB", 100LL << 20));
  CHECK(parses_to("100M", 100LL << 20));
  CHECK(parses_to("1GB", 1LL << 30));
  CHECK(parses_to("1GiB", 1LL << 30));
}

TEST(decimals_with_a_unit) {
  CHECK(parses_to("1.5G", 3LL << 29));
  CHECK(parses_to("0.5M", 512LL << 10));
  CHECK(parses_to("2.25GiB", 9LL << 28));
  CHECK(parses_to("1.5T", 3LL << 39));
  /* Rounded down to a byte. */
  CHECK(parses_to("0.001K", 1));
  CHECK(parses_to("1.999999999T", (1LL << 40) + 1099511626676LL));
}

TEST(garbage_is_refused) {
  CHECK(refused(""));
  CHECK(refused("M"));
  CHECK(refused("-1"));
  CHECK(refused("+5M"));
  CHECK(refused(" 5M"));
  CHECK(refused("5 M"));
  CHECK(refused("1.5"));
  CHECK(refused("1."));
  CHECK(refused(".5G"));
  CHECK(refused("5X"));
  CHECK(refused("5MBs"));
  CHECK(refused("5Mib"));
  CHECK(refused("1.0000000001G"));
  CHECK(refused("0x10"));
}

TEST(overflow_is_refused) {
  CHECK(parses_to("8388607T", 8388607LL << 40));
  CHECK(refused("8388608T"));
  CHECK(refused("9223372036854775808"));
  CHECK(parses_to("9223372036854775807", INT64_MAX));
}

int main(void) {
  RUN(bytes_and_binary_units);
  RUN(mb_and_mib_mean_the_same);
  RUN(decimals_with_a_unit);
  RUN(garbage_is_refused);
  RUN(overflow_is_refused);
  UNIT_DONE();
}
