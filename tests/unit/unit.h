/* A minimal unit-test harness: TEST(name) { ... } functions registered
 * with RUN(name) from main, CHECK* macros that report file:line and keep
 * going, and an exit status that counts failures. */
#ifndef CELL_UNIT_H
#define CELL_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failures;
static int unit_checks;

#define CHECK(cond)                                                            \
  do {                                                                         \
    unit_checks++;                                                             \
    if (!(cond)) {                                                             \
      unit_failures++;                                                         \
      fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECK_STR(a, b)                                                        \
  do {                                                                         \
    const char *_a = (a), *_b = (b);                                           \
    unit_checks++;                                                             \
    if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0) {                     \
      unit_failures++;                                                         \
      fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,         \
              _a ? _a : "(null)", _b ? _b : "(null)");                         \
    }                                                                          \
  } while (0)

/* The string a contains b. */
#define CHECK_CONTAINS(a, b)                                                   \
  do {                                                                         \
    const char *_a = (a), *_b = (b);                                           \
    unit_checks++;                                                             \
    if (_a == NULL || strstr(_a, _b) == NULL) {                                \
      unit_failures++;                                                         \
      fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,     \
              __LINE__, _a ? _a : "(null)", _b);                               \
    }                                                                          \
  } while (0)

#define TEST(name) static void test_##name(void)
#define RUN(name)                                                              \
  do {                                                                         \
    int _before = unit_failures;                                               \
    test_##name();                                                             \
    printf("%s %s\n", unit_failures == _before ? "ok  " : "FAIL", #name);      \
  } while (0)

#define UNIT_DONE()                                                            \
  do {                                                                         \
    printf("%d checks, %d failed\n", unit_checks, unit_failures);              \
    return unit_failures ? 1 : 0;                                              \
  } while (0)

#endif
