/* Seccomp: compile errors that name the JSON path, and filters loaded for
 * real in forked children (errno actions, argument conditions, kill,
 * notify with a listener), and the default profile config/seccomp.json. */
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "runtime/seccomp.h"
#include "unit.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* An errnoRet value, alive until the end of the enclosing block. */
#define ERRNO_PTR(v) (&(uint32_t){v})

/* ---- compile errors ------------------------------------------------------ */
static const char *compile_error(const struct spec_seccomp *s) {
  static char msg[512];
  struct seccomp_program *p = NULL;
  cell_error *err = NULL;
  CHECK(seccomp_compile(s, &p, &err) < 0);
  CHECK(p == NULL);
  snprintf(msg, sizeof(msg), "%s", err ? err->msg : "(no error)");
  seccomp_program_free(p);
  cell_error_free(&err);
  return msg;
}

static struct seccomp_program *compile_ok(const struct spec_seccomp *s) {
  struct seccomp_program *p = NULL;
  cell_error *err = NULL;
  int r = seccomp_compile(s, &p, &err);
  CHECK(r == 0);
  if (err)
    fprintf(stderr, "unexpected: %s\n", err->msg);
  cell_error_free(&err);
  return p;
}

TEST(absent_seccomp_is_nothing_to_load) {
  struct seccomp_program *p = (void *)1;
  cell_error *err = NULL;
  CHECK(seccomp_compile(NULL, &p, &err) == 0);
  CHECK(p == NULL);
  int fd = 7;
  CHECK(seccomp_program_load(NULL, &fd, &err) == 0);
  CHECK(fd == -1);
  CHECK(!seccomp_program_notifies(NULL));
}

TEST(unknown_actions_are_named_with_their_path) {
  struct spec_seccomp s = {.default_action = "SCMP_ACT_FOO"};
  CHECK_STR(compile_error(&s),
            "linux.seccomp.defaultAction: unknown action `SCMP_ACT_FOO`");

  char *names[] = {"getpid", NULL};
  struct spec_seccomp_syscall rules[] = {
      {.names = names, .action = "SCMP_ACT_ERRNO"},
      {.names = names, .action = "SCMP_ACT_KILL_ALL"},
  };
  s = (struct spec_seccomp){.default_action = "SCMP_ACT_ALLOW",
                            .syscalls = rules,
                            .n_syscalls = N(rules)};
  CHECK_STR(compile_error(&s),
            "linux.seccomp.syscalls[1].action: unknown action "
            "`SCMP_ACT_KILL_ALL`");
}

TEST(bad_arguments_are_named_with_their_path) {
  char *names[] = {"getpid", NULL};
  struct spec_seccomp_arg args[] = {
      {.index = 0, .value = 1, .op = "SCMP_CMP_EQ"},
      {.index = 1, .value = 1, .op = "SCMP_CMP_ALMOST"},
  };
  struct spec_seccomp_syscall rules[] = {
      {.names = names, .action = "SCMP_ACT_ERRNO", .args = args, .n_args = 2},
  };
  struct spec_seccomp s = {
      .default_action = "SCMP_ACT_ALLOW", .syscalls = rules, .n_syscalls = 1};
  CHECK_STR(compile_error(&s), "linux.seccomp.syscalls[0].args[1].op: unknown "
                               "operator `SCMP_CMP_ALMOST`");
  args[1] = (struct spec_seccomp_arg){.index = 6, .op = "SCMP_CMP_EQ"};
  CHECK_STR(compile_error(&s), "linux.seccomp.syscalls[0].args[1].index: 6 is "
                               "not an argument (0..5)");
}

TEST(bad_architectures_and_flags_are_named) {
  char *archs[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX", NULL};
  struct spec_seccomp s = {.default_action = "SCMP_ACT_ALLOW",
                           .architectures = archs};
  CHECK_STR(compile_error(&s), "linux.seccomp.architectures[1]: unknown "
                               "architecture `SCMP_ARCH_VAX`");
  char *bare[] = {"x86_64", NULL};
  s.architectures = bare;
  CHECK_STR(compile_error(&s),
            "linux.seccomp.architectures[0]: unknown architecture `x86_64`");

  char *flags[] = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FAST", NULL};
  s = (struct spec_seccomp){.default_action = "SCMP_ACT_ALLOW", .flags = flags};
  CHECK_STR(compile_error(&s), "linux.seccomp.flags[1]: unknown flag "
                               "`SECCOMP_FILTER_FLAG_FAST`");
}

TEST(errno_values_only_where_they_mean_something) {
  struct spec_seccomp s = {.default_action = "SCMP_ACT_ALLOW",
                           .default_errno_ret = ERRNO_PTR(1)};
  CHECK_STR(compile_error(&s), "linux.seccomp.defaultErrnoRet: "
                               "`SCMP_ACT_ALLOW` takes no errno value");

  char *names[] = {"getpid", NULL};
  struct spec_seccomp_syscall rules[] = {
      {.names = names, .action = "SCMP_ACT_KILL", .errno_ret = ERRNO_PTR(5)},
  };
  s = (struct spec_seccomp){
      .default_action = "SCMP_ACT_ALLOW", .syscalls = rules, .n_syscalls = 1};
  CHECK_STR(compile_error(&s), "linux.seccomp.syscalls[0].errnoRet: "
                               "`SCMP_ACT_KILL` takes no errno value");
  rules[0].action = "SCMP_ACT_ERRNO";
  rules[0].errno_ret = ERRNO_PTR(70000);
  CHECK_STR(compile_error(&s), "linux.seccomp.syscalls[0].errnoRet: 70000 is "
                               "out of range (0..65535)");
}

TEST(notify_needs_a_listener_and_safe_syscalls) {
  struct spec_seccomp s = {.default_action = "SCMP_ACT_NOTIFY"};
  CHECK_STR(compile_error(&s), "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY "
                               "cannot be the default action");

  char *names[] = {"getppid", NULL};
  struct spec_seccomp_syscall rules[] = {
      {.names = names, .action = "SCMP_ACT_NOTIFY"},
  };
  s = (struct spec_seccomp){
      .default_action = "SCMP_ACT_ALLOW", .syscalls = rules, .n_syscalls = 1};
  CHECK_STR(compile_error(&s), "linux.seccomp.listenerPath: required when a "
                               "rule uses SCMP_ACT_NOTIFY");

  char *write_too[] = {"getppid", "write", NULL};
  rules[0].names = write_too;
  s.listener_path = "/run/agent.sock";
  CHECK_CONTAINS(compile_error(&s), "linux.seccomp.syscalls[0]: "
                                    "SCMP_ACT_NOTIFY cannot be used for "
                                    "`write`");

  s = (struct spec_seccomp){.default_action = "SCMP_ACT_ALLOW",
                            .listener_metadata = "x"};
  CHECK_STR(compile_error(&s),
            "linux.seccomp.listenerMetadata: set without listenerPath");
}

TEST(unknown_syscalls_and_default_repeats_are_skipped) {
  char *unknown[] = {"no_such_syscall_at_all", NULL};
  char *getpid_[] = {"getpid", NULL};
  struct spec_seccomp_syscall rules[] = {
      {.names = unknown, .action = "SCMP_ACT_ERRNO"},
      {.names = getpid_, .action = "SCMP_ACT_ALLOW"}, /* = default */
  };
  struct spec_seccomp s = {.default_action = "SCMP_ACT_ALLOW",
                           .syscalls = rules,
                           .n_syscalls = N(rules)};
  struct seccomp_program *p = compile_ok(&s);
  CHECK(p != NULL);
  CHECK(!seccomp_program_notifies(p));
  seccomp_program_free(p);

  /* The same errno as the default is the same action, too. */
  struct spec_seccomp_syscall same[] = {
      {.names = getpid_, .action = "SCMP_ACT_ERRNO", .errno_ret = ERRNO_PTR(1)},
  };
  s = (struct spec_seccomp){
      .default_action = "SCMP_ACT_ERRNO", .syscalls = same, .n_syscalls = 1};
  p = compile_ok(&s);
  CHECK(p != NULL);
  seccomp_program_free(p);
}

/* ---- loaded for real ----------------------------------------------------- */
struct child_result {
  char out[4096];
  int status;
};

/* Append "name=<r>" (or "name=E<errno>" for -1) to the report. */
static void report(int fd, const char *name, long r) {
  char buf[128];
  int n = r == -1 ? snprintf(buf, sizeof(buf), "%s=E%d\n", name, errno)
                  : snprintf(buf, sizeof(buf), "%s=%ld\n", name, r);
  cell_write_all(fd, buf, (size_t)n);
}

typedef void (*child_fn)(int fd, void *arg);

/* Load p in a child (with no_new_privs), then run fn there. */
static void run_loaded(const struct seccomp_program *p, child_fn fn, void *arg,
                       struct child_result *res) {
  int pipefd[2];
  memset(res, 0, sizeof(*res));
  CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
  fflush(stdout); /* valgrind's exit flushes stdio even after _exit */
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    cell_error *err = NULL;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        seccomp_program_load(p, NULL, &err) < 0) {
      const char *m = err ? err->msg : "prctl";
      cell_write_all(pipefd[1], m, strlen(m));
      cell_error_free(&err);
      _exit(2);
    }
    fn(pipefd[1], arg);
    _exit(0);
  }
  close(pipefd[1]);
  size_t len = 0;
  ssize_t n;
  while ((n = read(pipefd[0], res->out + len, sizeof(res->out) - 1 - len)) > 0)
    len += (size_t)n;
  close(pipefd[0]);
  waitpid(pid, &res->status, 0);
}

static bool exited_cleanly(const struct child_result *r) {
  return WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

static void call_uname(int fd, void *arg) {
  struct utsname u;
  report(fd, "uname", uname(&u));
  report(fd, "getpid", getpid() > 0);
}

TEST(errno_action_returns_the_configured_errno) {
  char *names[] = {"no_such_syscall_at_all", "uname", NULL};
  struct spec_seccomp_syscall rules[] = {
      {.names = names, .action = "SCMP_ACT_ERRNO", .errno_ret = ERRNO_PTR(42)},
  };
  char *archs[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", NULL};
  struct spec_seccomp s = {.default_action = "SCMP_ACT_ALLOW",
                           .architectures = archs,
                           .syscalls = rules,
                           .n_syscalls = 1};
  struct seccomp_program *p = compile_ok(&s);
  struct child_result r;
  run_loaded(p, call_uname, NULL, &r);
  CHECK(exited_cleanly(&r));
  CHECK_CONTAINS(r.out, "uname=E42\n");
  CHECK_CONTAINS(r.out, "getpid=1\n");
  seccomp_program_free(p);

  /* Without errnoRet: EPERM. */
  rules[0].errno_ret = NULL;
  p = compile_ok(&s);
  run_loaded(p, call_uname, NULL, &r);
  CHECK_CONTAINS(r.out, "uname=E1\n");
  seccomp_program_free(p);
}

static void call_personality(int fd, void *arg) {
  report(fd, "query", personality(0xffffffff) >= 0);
  report(fd, "linux32", personality(PER_LINUX32));
}

TEST(argument_condition_selects_the_calls) {
  char *names[] = {"personality", NULL};
  struct spec_seccomp_arg not_query[] = {
      {.index = 0, .value = 0xffffffff, .op = "SCMP_CMP_NE"},
  };
  struct spec_seccomp_syscall rules[] = {
      {.names = names,
       .action = "SCMP_ACT_ERRNO",
       .errno_ret = ERRNO_PTR(13),
       .args = not_query,
       .n_args = 1},
  };
  struct spec_seccomp s = {
      .default_action = "SCMP_ACT_ALLOW", .syscalls = rules, .n_syscalls = 1};
  struct seccomp_program *p = compile_ok(&s);
  struct child_result r;
  run_loaded(p, call_personality, NULL, &r);
  CHECK(exited_cleanly(&r));
  CHECK_CONTAINS(r.out, "query=1\n");
  CHECK_CONTAINS(r.out, "linux32=E13\n");
  seccomp_program_free(p);
}

static void call_with_args(int fd, void *arg) {
  report(fd, "prio_user_4242", syscall(SYS_getpriority, PRIO_USER, 4242));
  report(fd, "prio_user_0", syscall(SYS_getpriority, PRIO_USER, 0) >= 0);
  report(fd, "prio_pgrp_4242", syscall(SYS_getpriority, PRIO_PGRP, 4242));
  report(fd, "pgid_11111", syscall(SYS_getpgid, 11111));
  report(fd, "pgid_22222", syscall(SYS_getpgid, 22222));
  report(fd, "pgid_0", syscall(SYS_getpgid, 0) > 0);
  report(fd, "masked_0x31", syscall(SYS_sched_get_priority_max, 0x31));
  report(fd, "masked_0x41", syscall(SYS_sched_get_priority_max, 0x41));
  report(fd, "masked_fifo", syscall(SYS_sched_get_priority_max, SCHED_FIFO));
}

TEST(several_conditions_and_on_different_args_or_on_the_same) {
  char *getpriority_[] = {"getpriority", NULL};
  char *getpgid_[] = {"getpgid", NULL};
  char *prio_max[] = {"sched_get_priority_max", NULL};
  struct spec_seccomp_arg both[] = {
      {.index = 0, .value = PRIO_USER, .op = "SCMP_CMP_EQ"},
      {.index = 1, .value = 4242, .op = "SCMP_CMP_EQ"},
  };
  struct spec_seccomp_arg either[] = {
      {.index = 0, .value = 11111, .op = "SCMP_CMP_EQ"},
      {.index = 0, .value = 22222, .op = "SCMP_CMP_EQ"},
  };
  struct spec_seccomp_arg masked[] = {
      {.index = 0,
       .value = 0xf0,
       .value_two = 0x30,
       .op = "SCMP_CMP_MASKED_EQ"},
  };
  struct spec_seccomp_syscall rules[] = {
      {.names = getpriority_,
       .action = "SCMP_ACT_ERRNO",
       .errno_ret = ERRNO_PTR(43),
       .args = both,
       .n_args = 2},
      {.names = getpgid_,
       .action = "SCMP_ACT_ERRNO",
       .errno_ret = ERRNO_PTR(44),
       .args = either,
       .n_args = 2},
      {.names = prio_max,
       .action = "SCMP_ACT_ERRNO",
       .errno_ret = ERRNO_PTR(45),
       .args = masked,
       .n_args = 1},
  };
  struct spec_seccomp s = {.default_action = "SCMP_ACT_ALLOW",
                           .syscalls = rules,
                           .n_syscalls = N(rules)};
  struct seccomp_program *p = compile_ok(&s);
  struct child_result r;
  run_loaded(p, call_with_args, NULL, &r);
  CHECK(exited_cleanly(&r));
  CHECK_CONTAINS(r.out, "prio_user_4242=E43\n");
  CHECK_CONTAINS(r.out, "prio_user_0=1\n");
  CHECK(strstr(r.out, "prio_pgrp_4242=E43") == NULL);
  CHECK_CONTAINS(r.out, "pgid_11111=E44\n");
  CHECK_CONTAINS(r.out, "pgid_22222=E44\n");
  CHECK_CONTAINS(r.out, "pgid_0=1\n");
  CHECK_CONTAINS(r.out, "masked_0x31=E45\n");
  CHECK_CONTAINS(r.out, "masked_0x41=E22\n"); /* EINVAL from the kernel */
  CHECK_CONTAINS(r.out, "masked_fifo=99\n");
  seccomp_program_free(p);
}

static void call_getppid(int fd, void *arg) {
  report(fd, "before", 1);
  report(fd, "getppid", getppid());
}

TEST(kill_actions_end_the_process_with_sigsys) {
  const char *actions[] = {"SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL",
                           "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"};
  char *names[] = {"getppid", NULL};
  for (size_t i = 0; i < N(actions); i++) {
    struct spec_seccomp_syscall rules[] = {
        {.names = names, .action = (char *)actions[i]},
    };
    struct spec_seccomp s = {
        .default_action = "SCMP_ACT_ALLOW", .syscalls = rules, .n_syscalls = 1};
    struct seccomp_program *p = compile_ok(&s);
    struct child_result r;
    run_loaded(p, call_getppid, NULL, &r);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSYS);
    CHECK_STR(r.out, "before=1\n");
    seccomp_program_free(p);
  }
}

/* ---- notify -------------------------------------------------------------- */
static int listen_unix(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
      listen(fd, 1) < 0)
    return -1;
  return fd;
}

/* One connection: the JSON text and the fd that came with it. */
static int receive_state(int listen_fd, char *buf, size_t size, int *fd) {
  int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0)
    return -1;
  size_t len = 0;
  *fd = -1;
  for (;;) {
    union {
      char b[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = buf + len, .iov_len = size - 1 - len};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.b,
                        .msg_controllen = sizeof(control.b)};
    ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
    if (n <= 0)
      break;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (c && c->cmsg_type == SCM_RIGHTS)
      memcpy(fd, CMSG_DATA(c), sizeof(int));
    len += (size_t)n;
  }
  buf[len] = '\0';
  close(conn);
  return 0;
}

static const char *state_doc =
    "{\"ociVersion\":\"1.2.0\",\"id\":\"box\",\"status\":\"creating\","
    "\"pid\":4321,\"bundle\":\"/b\"}";

TEST(notify_fd_goes_to_the_listener_with_the_process_state) {
  char dir[] = "/tmp/cell-test-seccomp-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  cleanup_free char *sock = xasprintf("%s/agent.sock", dir);
  int lfd = listen_unix(sock);
  CHECK(lfd >= 0);
  int pipefd[2];
  CHECK(pipe2(pipefd, O_CLOEXEC) == 0);

  struct spec_seccomp s = {.listener_path = sock,
                           .listener_metadata = "MKNOD=/dev/null"};
  cell_error *err = NULL;
  CHECK(seccomp_send_notify_fd(&s, pipefd[0], 0, state_doc, &err) == 0);
  CHECK(err == NULL);
  char buf[4096];
  int got = -1;
  CHECK(receive_state(lfd, buf, sizeof(buf), &got) == 0);
  CHECK(got >= 0);

  /* The fd is the pipe's read end: what goes in one end comes out. */
  CHECK(write(pipefd[1], "x", 1) == 1);
  char c = 0;
  CHECK(got >= 0 && read(got, &c, 1) == 1 && c == 'x');

  struct json_value *v = NULL;
  CHECK(json_parse(buf, strlen(buf), &v, &err) == 0);
  const struct json_value *fds = json_object_get(v, "fds");
  CHECK(fds && fds->type == JSON_ARRAY && fds->u.array.len == 1 &&
        strcmp(fds->u.array.items[0]->u.string, "seccompFd") == 0);
  int64_t pid = 0;
  CHECK(json_get_int64(json_object_get(v, "pid"), &pid) && pid == 4321);
  const struct json_value *md = json_object_get(v, "metadata");
  CHECK(md && md->type == JSON_STRING &&
        strcmp(md->u.string, "MKNOD=/dev/null") == 0);
  const struct json_value *ver = json_object_get(v, "ociVersion");
  CHECK(ver && ver->type == JSON_STRING);
  const struct json_value *id =
      json_object_get(json_object_get(v, "state"), "id");
  CHECK(id && id->type == JSON_STRING && strcmp(id->u.string, "box") == 0);
  json_free(v);

  /* Nobody listening: an error naming the path. */
  close(lfd);
  unlink(sock);
  CHECK(seccomp_send_notify_fd(&s, pipefd[0], 0, state_doc, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : NULL, "linux.seccomp.listenerPath: connect");
  CHECK_CONTAINS(err ? err->msg : NULL, sock);
  cell_error_free(&err);

  close(got);
  close(pipefd[0]);
  close(pipefd[1]);
  rmdir(dir);
}

struct notify_child {
  const struct seccomp_program *p;
  struct spec_seccomp *s;
};

static void notify_child_main(const struct notify_child *nc) {
  cell_error *err = NULL;
  int nfd = -1;
  if (seccomp_program_load(nc->p, &nfd, &err) < 0 ||
      seccomp_send_notify_fd(nc->s, nfd, 0, state_doc, &err) < 0) {
    cell_error_free(&err);
    _exit(2);
  }
  close(nfd);
  /* Answered by the agent (the parent), not by the kernel. */
  _exit(getppid() == 4242 ? 0 : 3);
}

/* Answer one notification with `val`; returns the syscall number. */
static int answer_one(int nfd, long val) {
  struct seccomp_notif req;
  struct seccomp_notif_resp resp;
  memset(&req, 0, sizeof(req));
  if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
    return -1;
  memset(&resp, 0, sizeof(resp));
  resp.id = req.id;
  resp.val = val;
  if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0)
    return -1;
  return req.data.nr;
}

TEST(notify_rule_lets_an_agent_answer) {
  char dir[] = "/tmp/cell-test-seccomp-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  cleanup_free char *sock = xasprintf("%s/agent.sock", dir);
  int lfd = listen_unix(sock);
  CHECK(lfd >= 0);

  char *names[] = {"getppid", NULL};
  struct spec_seccomp_syscall rules[] = {
      {.names = names, .action = "SCMP_ACT_NOTIFY"},
  };
  char *flags[] = {"SECCOMP_FILTER_FLAG_TSYNC", NULL};
  struct spec_seccomp s = {.default_action = "SCMP_ACT_ALLOW",
                           .flags = flags,
                           .listener_path = sock,
                           .syscalls = rules,
                           .n_syscalls = 1};
  struct seccomp_program *p = compile_ok(&s);
  CHECK(seccomp_program_notifies(p));

  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    struct notify_child nc = {p, &s};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    notify_child_main(&nc);
  }
  char buf[4096];
  int nfd = -1;
  CHECK(receive_state(lfd, buf, sizeof(buf), &nfd) == 0);
  CHECK(nfd >= 0);
  CHECK(answer_one(nfd, 4242) == __NR_getppid);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  if (nfd >= 0)
    close(nfd);
  close(lfd);
  unlink(sock);
  rmdir(dir);
  seccomp_program_free(p);
}

/* ---- the default profile ------------------------------------------------- */
static struct spec *load_default_profile(void) {
  char *profile = NULL;
  size_t len;
  cell_error *err = NULL;
  if (cell_read_file_at(AT_FDCWD, "config/seccomp.json", 0, &profile, &len,
                        &err) < 0) {
    fprintf(stderr, "%s (run the tests from the top directory)\n", err->msg);
    cell_error_free(&err);
    return NULL;
  }
  char *doc = xasprintf("{\"ociVersion\":\"1.2.0\",\"linux\":{\"seccomp\":%s}}",
                        profile);
  free(profile);
  struct spec *s = NULL;
  if (spec_parse(doc, strlen(doc), &s, &err) < 0) {
    fprintf(stderr, "config/seccomp.json: %s\n", err->msg);
    cell_error_free(&err);
  }
  free(doc);
  return s;
}

TEST(default_profile_compiles) {
  struct spec *s = load_default_profile();
  CHECK(s && s->linux_ && s->linux_->seccomp);
  if (!s || !s->linux_ || !s->linux_->seccomp) {
    spec_free(s);
    return;
  }
  const struct spec_seccomp *sc = s->linux_->seccomp;
  CHECK_STR(sc->default_action, "SCMP_ACT_ERRNO");
  CHECK(sc->default_errno_ret && *sc->default_errno_ret == EPERM);
  CHECK(sc->architectures && cell_strv_len(sc->architectures) == 3);
  struct seccomp_program *p = compile_ok(sc);
  CHECK(p != NULL && !seccomp_program_notifies(p));
  seccomp_program_free(p);
  spec_free(s);
}

static void *thread_main(void *arg) { return arg; }

static void exercise_default_profile(int fd, void *arg) {
  struct utsname u;
  report(fd, "uname", uname(&u));
  report(
      fd, "mount",
      syscall(SYS_mount, "none", "/nonexistent-cell-test", "tmpfs", 0, NULL));
  report(fd, "umount2", syscall(SYS_umount2, "/nonexistent-cell-test", 0));
  report(fd, "unshare", syscall(SYS_unshare, CLONE_NEWUSER));
  report(fd, "setns", syscall(SYS_setns, -1, 0));
  report(fd, "keyctl", syscall(SYS_keyctl, 0, -3, 0));
  report(fd, "bpf", syscall(SYS_bpf, 0, NULL, 0));
  report(fd, "perf_event_open",
         syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
  report(fd, "reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
  report(fd, "settimeofday", syscall(SYS_settimeofday, NULL, NULL));
  report(fd, "kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
  report(fd, "clone3", syscall(SYS_clone3, NULL, 0));
  long child = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
  if (child == 0)
    _exit(0);
  if (child > 0)
    waitpid((pid_t)child, NULL, 0);
  report(fd, "clone_newns", child > 0 ? 0 : child);
  report(fd, "personality_query", personality(0xffffffff) >= 0);
  report(fd, "personality_linux32", personality(PER_LINUX32) >= 0);
  report(fd, "personality_norandom", personality(ADDR_NO_RANDOMIZE));
  report(fd, "socket_vsock", socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
  int us = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  report(fd, "socket_unix", us >= 0);
  if (us >= 0)
    close(us);
  pid_t pid = fork();
  if (pid == 0)
    _exit(7);
  int status = 0;
  if (pid > 0)
    waitpid(pid, &status, 0);
  report(fd, "fork", pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -2);
  pthread_t t;
  int e = pthread_create(&t, NULL, thread_main, NULL);
  if (e == 0)
    pthread_join(t, NULL);
  report(fd, "pthread", e);
  pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c",
          "ls / >/dev/null && date >/dev/null && "
          "cat /proc/self/status | grep -q Seccomp",
          (char *)NULL);
    _exit(127);
  }
  status = 0;
  if (pid > 0)
    waitpid(pid, &status, 0);
  report(fd, "shell", WIFEXITED(status) ? WEXITSTATUS(status) : -2);
}

TEST(default_profile_allows_a_userland_and_blocks_the_dangerous) {
  struct spec *s = load_default_profile();
  CHECK(s && s->linux_ && s->linux_->seccomp);
  if (!s || !s->linux_ || !s->linux_->seccomp) {
    spec_free(s);
    return;
  }
  struct seccomp_program *p = compile_ok(s->linux_->seccomp);
  CHECK(p != NULL && !seccomp_program_notifies(p));
  struct child_result r;
  run_loaded(p, exercise_default_profile, NULL, &r);
  CHECK(exited_cleanly(&r));
  const char *expect[] = {
      "uname=0",
      "mount=E1",
      "umount2=E1",
      "unshare=E1",
      "setns=E1",
      "keyctl=E1",
      "bpf=E1",
      "perf_event_open=E1",
      "reboot=E1",
      "settimeofday=E1",
      "kexec_load=E1",
      "clone3=E38",
      "clone_newns=E1",
      "personality_query=1",
      "personality_linux32=1",
      "personality_norandom=E1",
      "socket_vsock=E1",
      "socket_unix=1",
      "fork=7",
      "pthread=0",
      "shell=0",
  };
  for (size_t i = 0; i < N(expect); i++) {
    cleanup_free char *line = xasprintf("%s\n", expect[i]);
    CHECK_CONTAINS(r.out, line);
  }
  seccomp_program_free(p);
  spec_free(s);
}

/* ---- syscalls the profile does not know ---------------------------------- */
#ifndef __NR_clone3
#define __NR_clone3 435
#endif

static void call_unknown_to_the_profile(int fd, void *arg) {
  report(fd, "clone3", syscall(__NR_clone3, NULL, 0));
  report(fd, "nr1000", syscall(1000));
  report(fd, "umask", syscall(__NR_umask, 022));
}

/* What a program needs to report (and the sanitizers' runtimes, in an
 * asan build), and close_range (436): a profile that names syscalls newer
 * than clone3 (435).  Not umask, the older syscall left to the default. */
static char *report_names[] = {
    "write",        "exit",        "exit_group", "close_range",  "read",
    "close",        "mmap",        "munmap",     "mprotect",     "madvise",
    "brk",          "sigaltstack", "rt_sigaction", "rt_sigprocmask",
    "rt_sigreturn", "getpid",      "gettid",     "tgkill",       "prctl",
    "futex",        "sched_yield", "openat",     "fstat",        "newfstatat",
    "readlink",     "readlinkat",  "getrlimit",  "prlimit64",    "sched_getaffinity",
    NULL};

TEST(syscalls_newer_than_the_profile_and_clone3_get_enosys) {
  struct spec_seccomp_syscall rules[] = {
      {.names = report_names, .action = "SCMP_ACT_ALLOW"},
  };
  struct spec_seccomp s = {.default_action = "SCMP_ACT_ERRNO",
                           .syscalls = rules,
                           .n_syscalls = 1};
  struct seccomp_program *p = compile_ok(&s);
  struct child_result r;
  run_loaded(p, call_unknown_to_the_profile, NULL, &r);
  CHECK(exited_cleanly(&r));
  CHECK_CONTAINS(r.out, "clone3=E38\n");
  CHECK_CONTAINS(r.out, "nr1000=E38\n");
  /* Older than what the profile names: the default's EPERM. */
  CHECK_CONTAINS(r.out, "umask=E1\n");
  seccomp_program_free(p);

  /* A profile that names clone3 keeps its answer. */
  char *clone3[] = {"clone3", NULL};
  struct spec_seccomp_syscall with_clone3[] = {
      {.names = report_names, .action = "SCMP_ACT_ALLOW"},
      {.names = clone3, .action = "SCMP_ACT_ERRNO", .errno_ret = ERRNO_PTR(13)},
  };
  s.syscalls = with_clone3;
  s.n_syscalls = 2;
  p = compile_ok(&s);
  run_loaded(p, call_unknown_to_the_profile, NULL, &r);
  CHECK_CONTAINS(r.out, "clone3=E13\n");
  CHECK_CONTAINS(r.out, "nr1000=E38\n");
  seccomp_program_free(p);
}

TEST(an_allowing_default_or_an_enosys_default_gets_no_stub) {
  char *umask_names[] = {"umask", NULL};
  struct spec_seccomp_syscall rules[] = {
      {.names = umask_names, .action = "SCMP_ACT_ERRNO",
       .errno_ret = ERRNO_PTR(13)},
  };
  /* The kernel answers for itself: EINVAL for clone3(NULL, 0). */
  struct spec_seccomp s = {.default_action = "SCMP_ACT_ALLOW",
                           .syscalls = rules,
                           .n_syscalls = 1};
  struct seccomp_program *p = compile_ok(&s);
  struct child_result r;
  run_loaded(p, call_unknown_to_the_profile, NULL, &r);
  CHECK(exited_cleanly(&r));
  CHECK_CONTAINS(r.out, "clone3=E22\n");
  CHECK_CONTAINS(r.out, "nr1000=E38\n");
  CHECK_CONTAINS(r.out, "umask=E13\n");
  seccomp_program_free(p);

  /* Every unnamed syscall already answers ENOSYS. */
  struct spec_seccomp_syscall allow[] = {
      {.names = report_names, .action = "SCMP_ACT_ALLOW"},
  };
  s = (struct spec_seccomp){.default_action = "SCMP_ACT_ERRNO",
                            .default_errno_ret = ERRNO_PTR(38),
                            .syscalls = allow,
                            .n_syscalls = 1};
  p = compile_ok(&s);
  run_loaded(p, call_unknown_to_the_profile, NULL, &r);
  CHECK_CONTAINS(r.out, "clone3=E38\n");
  CHECK_CONTAINS(r.out, "umask=E38\n");
  seccomp_program_free(p);
}

/* valgrind does not implement seccomp(2) (nor do some sandboxes): the
 * tests that load a filter can only run where the kernel is reachable. */
static bool seccomp_available(void) {
  uint32_t action = SECCOMP_RET_ALLOW;
  return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

int main(void) {
  RUN(absent_seccomp_is_nothing_to_load);
  RUN(unknown_actions_are_named_with_their_path);
  RUN(bad_arguments_are_named_with_their_path);
  RUN(bad_architectures_and_flags_are_named);
  RUN(errno_values_only_where_they_mean_something);
  RUN(notify_needs_a_listener_and_safe_syscalls);
  RUN(unknown_syscalls_and_default_repeats_are_skipped);
  RUN(notify_fd_goes_to_the_listener_with_the_process_state);
  RUN(default_profile_compiles);
  if (!seccomp_available()) {
    printf("skip (seccomp(2) unavailable here, e.g. under valgrind): the "
           "tests that load filters\n");
    UNIT_DONE();
  }
  RUN(errno_action_returns_the_configured_errno);
  RUN(argument_condition_selects_the_calls);
  RUN(several_conditions_and_on_different_args_or_on_the_same);
  RUN(kill_actions_end_the_process_with_sigsys);
  RUN(notify_rule_lets_an_agent_answer);
  RUN(default_profile_allows_a_userland_and_blocks_the_dangerous);
  RUN(syscalls_newer_than_the_profile_and_clone3_get_enosys);
  RUN(an_allowing_default_or_an_enosys_default_gets_no_stub);
  UNIT_DONE();
}
