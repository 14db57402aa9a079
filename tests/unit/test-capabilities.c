/* Capability plans: name resolution, the plan's sets, and the sets a
 * process really ends with after caps_before_setuid / setresuid /
 * caps_after_setuid (in a forked child; the tests run as root). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "runtime/capabilities.h"
#include "unit.h"

#define BIT(cap) (UINT64_C(1) << (cap))

static struct spec_capabilities caps_of(char **bounding, char **effective,
                                        char **inheritable, char **permitted,
                                        char **ambient) {
  return (struct spec_capabilities){bounding, effective, inheritable, permitted,
                                    ambient};
}

/* Make a plan, expecting failure; returns the message (static buffer). */
static const char *plan_error(struct spec_capabilities *c) {
  static char msg[512];
  struct spec_process p = {.capabilities = c};
  struct caps_plan *plan = NULL;
  cell_error *err = NULL;
  int r = caps_plan_make(&p, &plan, &err);
  CHECK(r < 0);
  CHECK(plan == NULL);
  snprintf(msg, sizeof(msg), "%s", err ? err->msg : "(no error)");
  caps_plan_free(plan);
  cell_error_free(&err);
  return msg;
}

TEST(resolves_names_into_sets) {
  char *bounding[] = {"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN",
                      NULL};
  char *effective[] = {"CAP_NET_BIND_SERVICE", NULL};
  char *permitted[] = {"CAP_NET_BIND_SERVICE", "CAP_KILL", NULL};
  char *inheritable[] = {"CAP_NET_BIND_SERVICE", NULL};
  char *ambient[] = {"CAP_NET_BIND_SERVICE", NULL};
  struct spec_capabilities c =
      caps_of(bounding, effective, inheritable, permitted, ambient);
  struct spec_process p = {.capabilities = &c};
  struct caps_plan *plan = NULL;
  cell_error *err = NULL;
  CHECK(caps_plan_make(&p, &plan, &err) == 0);
  CHECK(err == NULL);
  CHECK(caps_plan_mask(plan, CAPS_BOUNDING) ==
        (BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_SYS_ADMIN)));
  CHECK(caps_plan_mask(plan, CAPS_EFFECTIVE) == BIT(CAP_NET_BIND_SERVICE));
  CHECK(caps_plan_mask(plan, CAPS_PERMITTED) ==
        (BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_KILL)));
  CHECK(caps_plan_mask(plan, CAPS_INHERITABLE) == BIT(CAP_NET_BIND_SERVICE));
  CHECK(caps_plan_mask(plan, CAPS_AMBIENT) == BIT(CAP_NET_BIND_SERVICE));
  caps_plan_free(plan);
}

TEST(absent_capabilities_mean_nothing) {
  struct spec_process p = {0};
  struct caps_plan *plan = NULL;
  cell_error *err = NULL;
  CHECK(caps_plan_make(&p, &plan, &err) == 0);
  for (int s = 0; s < CAPS_SET_COUNT; s++)
    CHECK(caps_plan_mask(plan, (enum caps_set)s) == 0);
  caps_plan_free(plan);

  /* An object with only some lists: the others are empty. */
  char *bounding[] = {"CAP_CHOWN", NULL};
  struct spec_capabilities c = caps_of(bounding, NULL, NULL, NULL, NULL);
  p.capabilities = &c;
  CHECK(caps_plan_make(&p, &plan, &err) == 0);
  CHECK(caps_plan_mask(plan, CAPS_BOUNDING) == BIT(CAP_CHOWN));
  CHECK(caps_plan_mask(plan, CAPS_EFFECTIVE) == 0);
  CHECK(caps_plan_mask(plan, CAPS_AMBIENT) == 0);
  caps_plan_free(plan);
}

TEST(unknown_names_are_errors_naming_the_json_path) {
  char *bounding[] = {"CAP_KILL", "CAP_CHOWN", "CAP_FOO", NULL};
  struct spec_capabilities c = caps_of(bounding, NULL, NULL, NULL, NULL);
  CHECK_STR(plan_error(&c),
            "process.capabilities.bounding[2]: unknown capability `CAP_FOO`");

  /* Spellings libcap would accept but the spec does not. */
  char *lower[] = {"cap_kill", NULL};
  c = caps_of(NULL, lower, NULL, NULL, NULL);
  CHECK_STR(plan_error(&c),
            "process.capabilities.effective[0]: unknown capability `cap_kill`");
  char *number[] = {"12", NULL};
  c = caps_of(NULL, NULL, number, NULL, NULL);
  CHECK_STR(plan_error(&c),
            "process.capabilities.inheritable[0]: unknown capability `12`");
  char *list[] = {"CAP_CHOWN,CAP_KILL", NULL};
  c = caps_of(NULL, NULL, NULL, list, NULL);
  CHECK_STR(plan_error(&c), "process.capabilities.permitted[0]: unknown "
                            "capability `CAP_CHOWN,CAP_KILL`");
  char *bare[] = {"CAP_", NULL};
  c = caps_of(NULL, NULL, NULL, NULL, bare);
  CHECK_STR(plan_error(&c),
            "process.capabilities.ambient[0]: unknown capability `CAP_`");
}

TEST(impossible_combinations_are_refused_at_create) {
  char *kill[] = {"CAP_KILL", NULL};
  char *both[] = {"CAP_KILL", "CAP_NET_BIND_SERVICE", NULL};

  struct spec_capabilities c = caps_of(both, both, NULL, kill, NULL);
  CHECK_STR(plan_error(&c),
            "process.capabilities.effective: "
            "`CAP_NET_BIND_SERVICE` is not in the permitted set");
}

/* The kernel raises an ambient capability only when it is permitted and
 * inheritable; runc ignores its refusal (`runc spec` has no inheritable
 * set), so the plan leaves such a capability out instead of failing. */
static uint64_t ambient_of(struct spec_capabilities *c) {
  struct spec_process p = {.capabilities = c};
  struct caps_plan *plan = NULL;
  cell_error *err = NULL;
  CHECK(caps_plan_make(&p, &plan, &err) == 0);
  uint64_t mask = caps_plan_mask(plan, CAPS_AMBIENT);
  caps_plan_free(plan);
  cell_error_free(&err);
  return mask;
}

TEST(ambient_the_kernel_would_refuse_is_left_out) {
  char *kill[] = {"CAP_KILL", NULL};
  char *nbs[] = {"CAP_NET_BIND_SERVICE", NULL};
  char *both[] = {"CAP_KILL", "CAP_NET_BIND_SERVICE", NULL};

  struct spec_capabilities c = caps_of(both, NULL, nbs, kill, nbs);
  CHECK(ambient_of(&c) == 0);
  c = caps_of(both, NULL, kill, nbs, nbs);
  CHECK(ambient_of(&c) == 0);
  /* runc spec's shape: no inheritable set at all. */
  c = caps_of(both, both, NULL, both, both);
  CHECK(ambient_of(&c) == 0);
  c = caps_of(both, NULL, both, both, both);
  CHECK(ambient_of(&c) ==
        ((UINT64_C(1) << CAP_KILL) | (UINT64_C(1) << CAP_NET_BIND_SERVICE)));
  c = caps_of(both, NULL, kill, both, both);
  CHECK(ambient_of(&c) == (UINT64_C(1) << CAP_KILL));
}

/* ---- applying, in a child ------------------------------------------------ */
struct apply_case {
  struct spec_capabilities *caps;
  uid_t uid;
  bool drop_syslog_first; /* make the runtime lack CAP_SYSLOG */
  char *const *exec_argv; /* exec this after applying, stdout to the pipe */
};

static void child_report(int fd, const char *msg) {
  cell_write_all(fd, msg, strlen(msg));
}

/* The Cap* lines of /proc/self/status. */
static void child_report_status(int fd) {
  char *status = NULL;
  size_t len;
  cell_error *err = NULL;
  if (cell_read_file_at(AT_FDCWD, "/proc/self/status", 0, &status, &len, &err) <
      0) {
    child_report(fd, "ERR: read status");
    return;
  }
  for (char *line = strtok(status, "\n"); line; line = strtok(NULL, "\n"))
    if (strncmp(line, "Cap", 3) == 0 || strncmp(line, "Uid:", 4) == 0) {
      child_report(fd, line);
      child_report(fd, "\n");
    }
  free(status);
}

static int drop_syslog_from_permitted(void) {
  cap_t c = cap_get_proc();
  cap_value_t v = CAP_SYSLOG;
  int r = c ? cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_CLEAR) : -1;
  if (r == 0)
    r = cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR);
  if (r == 0)
    r = cap_set_proc(c);
  cap_free(c);
  return r;
}

static void child_apply_plan(const struct apply_case *tc,
                             const struct caps_plan *plan, int fd) {
  cell_error *err = NULL;
  if (caps_before_setuid(plan, &err) < 0) {
    child_report(fd, "ERR: ");
    child_report(fd, err->msg);
  } else if (setresgid(tc->uid, tc->uid, tc->uid) < 0 ||
             setresuid(tc->uid, tc->uid, tc->uid) < 0) {
    child_report(fd, "ERR: setresuid");
  } else if (caps_after_setuid(plan, &err) < 0) {
    child_report(fd, "ERR: ");
    child_report(fd, err->msg);
  } else if (tc->exec_argv) {
    dup2(fd, STDOUT_FILENO);
    execv(tc->exec_argv[0], tc->exec_argv);
    child_report(fd, "ERR: exec");
  } else {
    child_report_status(fd);
  }
  cell_error_free(&err);
}

static void child_apply(const struct apply_case *tc, int fd) {
  struct spec_process p = {.capabilities = tc->caps};
  struct caps_plan *plan = NULL;
  cell_error *err = NULL;
  if (tc->drop_syslog_first && drop_syslog_from_permitted() < 0) {
    child_report(fd, "ERR: drop CAP_SYSLOG");
    return;
  }
  if (caps_plan_make(&p, &plan, &err) < 0) {
    child_report(fd, "ERR: ");
    child_report(fd, err->msg);
    cell_error_free(&err);
    return;
  }
  child_apply_plan(tc, plan, fd);
  caps_plan_free(plan);
}

/* Runs tc in a child; returns what it reported (caller frees). */
static char *apply_in_child(const struct apply_case *tc) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0)
    return xstrdup("ERR: pipe");
  fflush(stdout); /* valgrind's exit flushes stdio even after _exit */
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    child_apply(tc, pipefd[1]);
    _exit(0);
  }
  close(pipefd[1]);
  char buf[4096];
  size_t len = 0;
  ssize_t n;
  while ((n = read(pipefd[0], buf + len, sizeof(buf) - 1 - len)) > 0)
    len += (size_t)n;
  buf[len] = '\0';
  close(pipefd[0]);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return xstrdup(buf);
}

TEST(non_root_user_ends_with_exactly_the_configured_sets) {
  char *nbs[] = {"CAP_NET_BIND_SERVICE", NULL};
  char *bounding[] = {"CAP_NET_BIND_SERVICE", "CAP_KILL", NULL};
  struct spec_capabilities c = caps_of(bounding, nbs, nbs, nbs, nbs);
  struct apply_case tc = {.caps = &c, .uid = 1000};
  char *out = apply_in_child(&tc);
  CHECK_CONTAINS(out, "Uid:\t1000\t1000\t1000\t1000");
  CHECK_CONTAINS(out, "CapInh:\t0000000000000400");
  CHECK_CONTAINS(out, "CapPrm:\t0000000000000400");
  CHECK_CONTAINS(out, "CapEff:\t0000000000000400");
  CHECK_CONTAINS(out, "CapBnd:\t0000000000000420");
  CHECK_CONTAINS(out, "CapAmb:\t0000000000000400");
  free(out);
}

TEST(ambient_capability_survives_exec_as_non_root) {
  char *nbs[] = {"CAP_NET_BIND_SERVICE", NULL};
  char *bounding[] = {"CAP_NET_BIND_SERVICE", "CAP_KILL", NULL};
  char *kill_nbs[] = {"CAP_NET_BIND_SERVICE", "CAP_KILL", NULL};
  /* CAP_KILL permitted but not ambient: exec drops it. */
  struct spec_capabilities c = caps_of(bounding, kill_nbs, nbs, kill_nbs, nbs);
  char *const argv[] = {"/bin/grep", "-E", "^(Uid|Cap)", "/proc/self/status",
                        NULL};
  struct apply_case tc = {.caps = &c, .uid = 1000, .exec_argv = argv};
  char *out = apply_in_child(&tc);
  CHECK_CONTAINS(out, "Uid:\t1000\t1000\t1000\t1000");
  CHECK_CONTAINS(out, "CapPrm:\t0000000000000400");
  CHECK_CONTAINS(out, "CapEff:\t0000000000000400");
  CHECK_CONTAINS(out, "CapBnd:\t0000000000000420");
  CHECK_CONTAINS(out, "CapAmb:\t0000000000000400");
  free(out);
}

TEST(no_capabilities_drops_everything_even_for_root) {
  struct apply_case tc = {.caps = NULL, .uid = 0};
  char *out = apply_in_child(&tc);
  CHECK_CONTAINS(out, "Uid:\t0\t0\t0\t0");
  CHECK_CONTAINS(out, "CapInh:\t0000000000000000");
  CHECK_CONTAINS(out, "CapPrm:\t0000000000000000");
  CHECK_CONTAINS(out, "CapEff:\t0000000000000000");
  CHECK_CONTAINS(out, "CapBnd:\t0000000000000000");
  CHECK_CONTAINS(out, "CapAmb:\t0000000000000000");
  free(out);
}

TEST(root_keeps_its_configured_sets) {
  char *some[] = {"CAP_CHOWN", "CAP_KILL", "CAP_SETUID", NULL};
  char *eff[] = {"CAP_KILL", NULL};
  struct spec_capabilities c = caps_of(some, eff, NULL, some, NULL);
  struct apply_case tc = {.caps = &c, .uid = 0};
  char *out = apply_in_child(&tc);
  CHECK_CONTAINS(out, "CapPrm:\t00000000000000a1");
  CHECK_CONTAINS(out, "CapEff:\t0000000000000020");
  CHECK_CONTAINS(out, "CapBnd:\t00000000000000a1");
  CHECK_CONTAINS(out, "CapInh:\t0000000000000000");
  free(out);
}

TEST(capability_the_runtime_lacks_is_named) {
  char *syslog[] = {"CAP_SYSLOG", NULL};
  struct spec_capabilities c = caps_of(syslog, syslog, NULL, syslog, NULL);
  struct apply_case tc = {.caps = &c, .uid = 1000, .drop_syslog_first = true};
  char *out = apply_in_child(&tc);
  CHECK_STR(out, "ERR: process.capabilities.permitted: `CAP_SYSLOG` is not in "
                 "the runtime's permitted set");
  free(out);
}

int main(void) {
  if (geteuid() != 0) {
    printf("skipped: needs root\n");
    return 0;
  }
  RUN(resolves_names_into_sets);
  RUN(absent_capabilities_mean_nothing);
  RUN(unknown_names_are_errors_naming_the_json_path);
  RUN(impossible_combinations_are_refused_at_create);
  RUN(non_root_user_ends_with_exactly_the_configured_sets);
  RUN(ambient_capability_survives_exec_as_non_root);
  RUN(ambient_the_kernel_would_refuse_is_left_out);
  RUN(no_capabilities_drops_everything_even_for_root);
  RUN(root_keeps_its_configured_sets);
  RUN(capability_the_runtime_lacks_is_named);
  UNIT_DONE();
}
