/* linux.personality applied for real in forked children: uname's machine
 * is what the domain says, and unknown flags are refused. */
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "runtime/personality.h"
#include "unit.h"

/* Apply p in a child: "M<uname machine>" when it worked, "E<message>"
 * when personality_apply failed. */
static void apply_in_child(struct spec_personality *p, char out[512]) {
  struct spec_linux l = {.personality = p};
  struct spec s = {.linux_ = &l};
  int fds[2];
  out[0] = '\0';
  if (pipe(fds) < 0)
    return;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    cell_error *err = NULL;
    char buf[512];
    if (personality_apply(&s, &err) < 0) {
      snprintf(buf, sizeof(buf), "E%s", err->msg);
    } else {
      struct utsname u;
      uname(&u);
      snprintf(buf, sizeof(buf), "M%s", u.machine);
    }
    cell_write_all(fds[1], buf, strlen(buf));
    _exit(0);
  }
  close(fds[1]);
  ssize_t n = cell_read_all(fds[0], out, 511);
  close(fds[0]);
  waitpid(pid, NULL, 0);
  out[n > 0 ? n : 0] = '\0';
}

TEST(linux32_and_linux) {
  struct utsname host;
  uname(&host);
  char out[512];
  struct spec_personality p32 = {.domain = "LINUX32"};
  apply_in_child(&p32, out);
  if (strcmp(host.machine, "x86_64") == 0)
    CHECK_STR(out, "Mi686");
  else if (strcmp(host.machine, "aarch64") == 0)
    CHECK_STR(out, "Marmv8l");
  else
    CHECK(out[0] == 'M');

  struct spec_personality p = {.domain = "LINUX"};
  apply_in_child(&p, out);
  CHECK(out[0] == 'M' && strcmp(out + 1, host.machine) == 0);
}

TEST(absent_personality_changes_nothing) {
  struct spec s = {0};
  cell_error *err = NULL;
  CHECK(personality_apply(&s, &err) == 0);
  CHECK(err == NULL);
}

TEST(flags_and_unknown_domains_are_refused) {
  char out[512];
  char *flags[] = {"ADDR_NO_RANDOMIZE", NULL};
  struct spec_personality p = {.domain = "LINUX", .flags = flags};
  apply_in_child(&p, out);
  CHECK_STR(out, "Elinux.personality.flags[0]: unknown flag `ADDR_NO_RANDOMIZE`");

  struct spec_personality bad = {.domain = "SVR4"};
  apply_in_child(&bad, out);
  CHECK_STR(out, "Elinux.personality.domain: unknown domain `SVR4`");
}

int main(void) {
  RUN(linux32_and_linux);
  RUN(absent_personality_changes_nothing);
  RUN(flags_and_unknown_domains_are_refused);
  UNIT_DONE();
}
