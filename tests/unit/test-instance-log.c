/* celld's log lines (lib/daemon/daemon-log.c) and an instance's own log
 * (lib/daemon/instance-log.c): the format, quoting of what a client
 * chose, rotation at the cap, and the tail. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/daemon-log.h"
#include "daemon/instance-log.h"
#include "unit.h"

static const char *T = "2026-12-06T16:52:24.123Z";

TEST(an_ok_op_is_one_line_with_uid_pid_op_name) {
  struct op_log_entry e = {.uid = 1000, .pid = 42, .op = "start", .name = "web1"};
  cleanup_free char *l = daemon_log_format(&e, T);
  CHECK_STR(l, "2026-12-06T16:52:24.123Z uid=1000 pid=42 op=start name=web1 ok\n");
}

TEST(a_failed_op_has_its_error_quoted_and_its_code) {
  struct op_log_entry e = {.uid = 0, .pid = 7, .op = "stop", .name = "x",
                           .error = "instance `x` does not exist",
                           .code = "not-found"};
  cleanup_free char *l = daemon_log_format(&e, T);
  CHECK_STR(l, "2026-12-06T16:52:24.123Z uid=0 pid=7 op=stop name=x "
               "error=\"instance `x` does not exist\" code=not-found\n");
}

TEST(attack_a_newline_in_the_op_cannot_start_a_forged_line) {
  struct op_log_entry e = {.uid = 1000, .pid = 1,
                           .op = "list\n2026-01-01T00:00:00.000Z uid=0 op=destroy ok",
                           .error = "op: unknown\x01\"", .code = "unknown-op"};
  cleanup_free char *l = daemon_log_format(&e, T);
  CHECK(strchr(l, '\n') == l + strlen(l) - 1);
  CHECK_CONTAINS(l, "op=\"list\\n2026-01-01T00:00:00.000Z uid=0 op=destroy ok\"");
  CHECK_CONTAINS(l, "error=\"op: unknown\\x01\\\"\"");
}

TEST(a_long_value_is_cut) {
  char big[2000];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  struct op_log_entry e = {.uid = 0, .pid = 1, .op = big};
  cleanup_free char *l = daemon_log_format(&e, T);
  CHECK(strlen(l) < 400);
  CHECK_CONTAINS(l, "...\" ok\n");
}

TEST(the_time_has_milliseconds_in_utc) {
  cleanup_free char *t = daemon_log_time();
  CHECK(strlen(t) == strlen(T));
  CHECK(t[19] == '.' && t[23] == 'Z');
}

static int temp_dir(char *tmpl) {
  CHECK(mkdtemp(tmpl) != NULL);
  return open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

TEST(the_log_rotates_at_its_cap_keeping_one_old_file) {
  char dir[] = "/tmp/cell-test-ilog-XXXXXX";
  cleanup_close int fd = temp_dir(dir);
  for (int i = 0; i < 30; i++) {
    cleanup_free char *text = xasprintf("event %02d", i);
    instance_log_append(fd, text, 200);
  }
  struct stat st;
  CHECK(fstatat(fd, "log", &st, 0) == 0 && st.st_size <= 200 + 40);
  CHECK(fstatat(fd, "log.1", &st, 0) == 0);
  cleanup_strv char **lines = NULL;
  cell_error *err = NULL;
  CHECK(instance_log_tail(fd, 3, 1 << 20, &lines, &err) == 0);
  CHECK(lines && lines[0] && lines[1] && lines[2] && !lines[3]);
  if (lines && lines[2]) {
    CHECK_CONTAINS(lines[0], " event 27");
    CHECK_CONTAINS(lines[2], " event 29");
  }
  cleanup_strv char **all = NULL;
  CHECK(instance_log_tail(fd, 0, 1 << 20, &all, &err) == 0);
  size_t n = 0;
  while (all && all[n])
    n++;
  CHECK(n > 3 && n < 30); /* what is older than log.1 is gone */
  cell_error_free(&err);
  cell_rm_rf_at(AT_FDCWD, dir, &err);
  cell_error_free(&err);
}

TEST(attack_a_log_that_is_a_symlink_is_not_followed) {
  char dir[] = "/tmp/cell-test-ilog-XXXXXX";
  cleanup_close int fd = temp_dir(dir);
  cleanup_free char *target = xasprintf("%s/target", dir);
  CHECK(symlinkat(target, fd, "log") == 0);
  instance_log_append(fd, "event", 1 << 20);
  CHECK(access(target, F_OK) < 0);
  cell_error *err = NULL;
  cell_rm_rf_at(AT_FDCWD, dir, &err);
  cell_error_free(&err);
}

int main(void) {
  RUN(an_ok_op_is_one_line_with_uid_pid_op_name);
  RUN(a_failed_op_has_its_error_quoted_and_its_code);
  RUN(attack_a_newline_in_the_op_cannot_start_a_forged_line);
  RUN(a_long_value_is_cut);
  RUN(the_time_has_milliseconds_in_utc);
  RUN(the_log_rotates_at_its_cap_keeping_one_old_file);
  RUN(attack_a_log_that_is_a_symlink_is_not_followed);
  UNIT_DONE();
}
