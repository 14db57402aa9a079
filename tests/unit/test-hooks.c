/* Hooks, and the log module they report warnings through. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "oci/hooks.h"
#include "unit.h"

static char tmpdir[] = "/tmp/cell-test-hooks-XXXXXX";

static char *tmp_path(const char *name) {
  return xasprintf("%s/%s", tmpdir, name);
}

/* A hook from literals: hook(path, timeout, env (NULL-terminated vector or
 * NULL), arg0, arg1, ..., NULL).  No args at all leaves args NULL. */
static struct spec_hook hook(const char *path, int timeout, char *const *env,
                             ...) {
  struct spec_hook h = {.path = xstrdup(path)};
  va_list ap;
  va_start(ap, env);
  for (const char *a = va_arg(ap, const char *); a; a = va_arg(ap, const char *))
    cell_strv_push(&h.args, a);
  va_end(ap);
  h.env = cell_strv_dup(env);
  if (timeout > 0) {
    h.timeout = xmalloc(sizeof(int));
    *h.timeout = timeout;
  }
  return h;
}

static void hook_list_free(struct spec_hook_list *l) {
  for (size_t i = 0; i < l->len; i++) {
    free(l->hooks[i].path);
    cell_strv_free(l->hooks[i].args);
    cell_strv_free(l->hooks[i].env);
    free(l->hooks[i].timeout);
  }
  free(l->hooks);
  l->hooks = NULL;
  l->len = 0;
}

static void add(struct spec_hook_list *l, struct spec_hook h) {
  l->hooks = xrealloc(l->hooks, (l->len + 1) * sizeof(*l->hooks));
  l->hooks[l->len++] = h;
}

/* Run one list; "" when it succeeded, else the error message. */
static char result[4096];
static const char *run(struct spec_hook_list *l, const char *kind,
                       const char *json) {
  cell_error *err = NULL;
  result[0] = '\0';
  if (hooks_run(l, kind, json, &err) < 0) {
    snprintf(result, sizeof(result), "%s", err ? err->msg : "(no error set)");
    cell_error_free(&err);
  }
  hook_list_free(l);
  return result;
}

static char *slurp(const char *path) {
  char *buf = NULL;
  cell_error *err = NULL;
  if (cell_read_file_at(AT_FDCWD, path, 0, &buf, NULL, &err) < 0) {
    cell_error_free(&err);
    return xstrdup("(unreadable)");
  }
  return buf;
}

static bool write_file(const char *path, const char *data, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return false;
  bool ok = cell_write_all(fd, data, strlen(data)) >= 0;
  return close(fd) == 0 && ok;
}

static const char *state_json =
    "{\"ociVersion\":\"1.2.0\",\"id\":\"c1\",\"status\":\"creating\","
    "\"pid\":42,\"bundle\":\"/b\"}";

TEST(state_on_stdin) {
  cleanup_free char *out = tmp_path("stdin");
  cleanup_free char *env_out = xasprintf("OUT=%s", out);
  char *env[] = {env_out, NULL};
  struct spec_hook_list l = {0};
  add(&l, hook("/bin/sh", 0, env, "sh", "-c", "cat > \"$OUT\"", NULL));
  CHECK_STR(run(&l, "createRuntime", state_json), "");
  cleanup_free char *got = slurp(out);
  CHECK_STR(got, state_json);
}

TEST(large_state_on_stdin) {
  /* Larger than a pipe buffer: the copy must go on while the hook reads. */
  size_t n = 1 << 20;
  cleanup_free char *big = xmalloc(n + 1);
  memset(big, 'x', n);
  big[n] = '\0';
  cleanup_free char *out = tmp_path("big");
  cleanup_free char *env_out = xasprintf("OUT=%s", out);
  char *env[] = {env_out, NULL};
  struct spec_hook_list l = {0};
  add(&l, hook("/bin/sh", 0, env, "sh", "-c", "cat > \"$OUT\"", NULL));
  CHECK_STR(run(&l, "prestart", big), "");
  struct stat st;
  CHECK(stat(out, &st) == 0 && (size_t)st.st_size == n);
}

TEST(hook_that_ignores_stdin) {
  size_t n = 1 << 20;
  cleanup_free char *big = xmalloc(n + 1);
  memset(big, 'y', n);
  big[n] = '\0';
  sigset_t before, after, pending;
  sigprocmask(SIG_SETMASK, NULL, &before);
  struct spec_hook_list l = {0};
  add(&l, hook("/bin/true", 0, NULL, "true", NULL));
  /* We survive the EPIPE (no SIGPIPE kills us) and report success. */
  CHECK_STR(run(&l, "poststart", big), "");
  sigprocmask(SIG_SETMASK, NULL, &after);
  sigpending(&pending);
  CHECK(sigismember(&after, SIGPIPE) == sigismember(&before, SIGPIPE));
  CHECK(sigismember(&pending, SIGPIPE) == 0);

  /* Not reading and not exiting: the timeout still applies. */
  add(&l, hook("/bin/sleep", 1, NULL, "sleep", "10", NULL));
  CHECK_STR(run(&l, "poststart", big),
            "poststart hook 0 (`/bin/sleep`): timed out after 1 s");
}

TEST(args_and_env) {
  cleanup_free char *out = tmp_path("args");
  cleanup_free char *env_out = xasprintf("OUT=%s", out);
  char *env[] = {env_out, "FOO=bar baz", NULL};
  struct spec_hook_list l = {0};
  add(&l, hook("/bin/sh", 0, env, "my-hook", "-c",
               "{ printf '%s|%s|%s|%s|' \"$0\" \"$1\" \"$FOO\" "
               "\"${HOME-unset}\"; /usr/bin/tr '\\0' ' ' < /proc/$$/cmdline; } "
               "> \"$OUT\"",
               "zero", "first arg", NULL));
  CHECK_STR(run(&l, "createContainer", state_json), "");
  cleanup_free char *got = slurp(out);
  CHECK_CONTAINS(got, "zero|first arg|bar baz|unset|my-hook -c ");
}

TEST(env_is_exactly_the_hooks) {
  /* Nothing of our environment leaks in, NULL env means empty. */
  setenv("CELL_TEST_LEAK", "1", 1);
  cleanup_free char *out = tmp_path("env");
  cleanup_free char *script = tmp_path("env.sh");
  cleanup_free char *body = xasprintf("#!/bin/sh\n/usr/bin/env > %s\n", out);
  CHECK(write_file(script, body, 0700));
  struct spec_hook_list l = {0};
  add(&l, hook(script, 0, NULL, NULL));
  CHECK_STR(run(&l, "prestart", state_json), "");
  cleanup_free char *got = slurp(out);
  /* dash exports PWD by itself; nothing else may be there. */
  CHECK(strstr(got, "CELL_TEST_LEAK") == NULL);
  CHECK(strstr(got, "PATH=") == NULL);

  char *env[] = {"ONLY=1", NULL};
  add(&l, hook("/usr/bin/env", 0, env, "env", NULL));
  int saved = dup(STDOUT_FILENO);
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  dup2(fd, STDOUT_FILENO);
  close(fd);
  CHECK_STR(run(&l, "prestart", state_json), "");
  dup2(saved, STDOUT_FILENO);
  close(saved);
  cleanup_free char *only = slurp(out);
  CHECK_STR(only, "ONLY=1\n");
}

TEST(args_default_to_path) {
  cleanup_free char *out = tmp_path("argv0");
  cleanup_free char *script = tmp_path("argv0.sh");
  cleanup_free char *body =
      xasprintf("#!/bin/sh\necho \"$0 $#\" > %s\n", out);
  CHECK(write_file(script, body, 0700));
  struct spec_hook_list l = {0};
  add(&l, hook(script, 0, NULL, NULL));
  CHECK_STR(run(&l, "prestart", state_json), "");
  cleanup_free char *got = slurp(out);
  cleanup_free char *want = xasprintf("%s 0\n", script);
  CHECK_STR(got, want);
}

TEST(failures) {
  struct spec_hook_list l = {0};
  add(&l, hook("/bin/sh", 0, NULL, "sh", "-c", "exit 3", NULL));
  CHECK_STR(run(&l, "createRuntime", state_json),
            "createRuntime hook 0 (`/bin/sh`): exited with status 3");

  add(&l, hook("/bin/sh", 0, NULL, "sh", "-c", "exit 127", NULL));
  CHECK_STR(run(&l, "createRuntime", state_json),
            "createRuntime hook 0 (`/bin/sh`): exited with status 127");

  add(&l, hook("/bin/sh", 0, NULL, "sh", "-c", "kill -9 $$", NULL));
  CHECK_STR(run(&l, "startContainer", state_json),
            "startContainer hook 0 (`/bin/sh`): killed by signal 9");

  add(&l, hook("/nonexistent/hook", 0, NULL, NULL));
  CHECK_STR(run(&l, "prestart", state_json),
            "prestart hook 0 (`/nonexistent/hook`): exec: No such file or "
            "directory");

  cleanup_free char *noexec = tmp_path("noexec");
  CHECK(write_file(noexec, "x", 0600));
  add(&l, hook(noexec, 0, NULL, NULL));
  cleanup_free char *want =
      xasprintf("prestart hook 0 (`%s`): exec: Permission denied", noexec);
  CHECK_STR(run(&l, "prestart", state_json), want);
}

TEST(timeout) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct spec_hook_list l = {0};
  add(&l, hook("/bin/sleep", 1, NULL, "sleep", "10", NULL));
  CHECK_STR(run(&l, "createRuntime", state_json),
            "createRuntime hook 0 (`/bin/sleep`): timed out after 1 s");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  CHECK(t1.tv_sec - t0.tv_sec < 8); /* killed, not waited for */

  /* A timeout that is not reached changes nothing. */
  add(&l, hook("/bin/sh", 5, NULL, "sh", "-c", "exit 0", NULL));
  CHECK_STR(run(&l, "createRuntime", state_json), "");
}

TEST(order_and_stop_at_first_failure) {
  cleanup_free char *out = tmp_path("order");
  cleanup_free char *env_out = xasprintf("OUT=%s", out);
  char *env[] = {env_out, NULL};
  struct spec_hook_list l = {0};
  add(&l, hook("/bin/sh", 0, env, "sh", "-c", "echo 0 >> \"$OUT\"", NULL));
  add(&l, hook("/bin/sh", 0, env, "sh", "-c", "echo 1 >> \"$OUT\"", NULL));
  add(&l, hook("/bin/sh", 0, env, "sh", "-c", "echo 2 >> \"$OUT\"; exit 4",
               NULL));
  add(&l, hook("/bin/sh", 0, env, "sh", "-c", "echo 3 >> \"$OUT\"", NULL));
  CHECK_STR(run(&l, "createRuntime", state_json),
            "createRuntime hook 2 (`/bin/sh`): exited with status 4");
  cleanup_free char *got = slurp(out);
  CHECK_STR(got, "0\n1\n2\n");

  struct spec_hook_list empty = {0};
  CHECK_STR(run(&empty, "createRuntime", state_json), "");
  cell_error *err = NULL;
  CHECK(hooks_run(NULL, "prestart", state_json, &err) == 0);
}

TEST(clean_process_state) {
  /* An fd without CLOEXEC, a blocked and an ignored signal: none of it may
   * reach the hook. */
  int leak = dup2(STDERR_FILENO, 57);
  CHECK(leak == 57);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &old);
  struct sigaction ign = {.sa_handler = SIG_IGN}, old_int;
  sigaction(SIGINT, &ign, &old_int);

  cleanup_free char *out = tmp_path("proc");
  cleanup_free char *env_out = xasprintf("OUT=%s", out);
  char *env[] = {env_out, NULL};
  struct spec_hook_list l = {0};
  add(&l, hook("/bin/sh", 0, env, "sh", "-c",
               "{ test -e /proc/self/fd/57 && echo fd57 || echo nofd;"
               "  /bin/grep -E '^Sig(Blk|Ign)' /proc/self/status; } > \"$OUT\"",
               NULL));
  CHECK_STR(run(&l, "createRuntime", state_json), "");
  close(leak);
  sigprocmask(SIG_SETMASK, &old, NULL);
  sigaction(SIGINT, &old_int, NULL);

  cleanup_free char *got = slurp(out);
  CHECK_CONTAINS(got, "nofd\n");
  CHECK_CONTAINS(got, "SigBlk:\t0000000000000000\n");
  CHECK_CONTAINS(got, "SigIgn:\t0000000000000000\n");
}

/* ---- log ------------------------------------------------------------------ */

static const char *log_init_error(const char *file, const char *format) {
  cell_error *err = NULL;
  result[0] = '\0';
  if (log_init("cell", file, format, false, &err) < 0) {
    snprintf(result, sizeof(result), "%s", err->msg);
    cell_error_free(&err);
  }
  return result;
}

/* Run fn with stderr going to a file; return what it wrote. */
static char *capture_stderr(void (*fn)(void)) {
  cleanup_free char *path = tmp_path("stderr");
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  close(fd);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  return slurp(path);
}

static void log_each_level(void) {
  log_error("an error: %d", 1);
  log_warn("a warning");
  log_info("some info");
  log_debug("a debug line");
}

TEST(log_to_stderr) {
  cell_error *err = NULL;
  CHECK(log_init("cell", NULL, "text", false, &err) == 0);
  CHECK(log_fd() == -1);
  CHECK(!log_debug_enabled());
  cleanup_free char *quiet = capture_stderr(log_each_level);
  CHECK_STR(quiet, "cell: an error: 1\ncell: a warning\n");

  /* With --debug, stderr gets runc's (logrus's) text lines, every level. */
  CHECK(log_init("mycell", NULL, NULL, true, &err) == 0);
  CHECK(log_debug_enabled());
  cleanup_free char *loud = capture_stderr(log_each_level);
  CHECK(strncmp(loud, "time=\"20", 8) == 0);
  CHECK_CONTAINS(loud, "Z\" level=error msg=\"an error: 1\"\n");
  CHECK_CONTAINS(loud, "Z\" level=warning msg=\"a warning\"\n");
  CHECK_CONTAINS(loud, "Z\" level=info msg=\"some info\"\n");
  CHECK_CONTAINS(loud, "Z\" level=debug msg=\"a debug line\"\n");
  CHECK(strstr(loud, "mycell:") == NULL);
  log_close();
}

/* logrus leaves a value unquoted when it needs no quoting; its timestamps
 * are RFC 3339 in seconds. */
static void log_plain_word(void) { log_error("plain-word_1.2/x@y^z+"); }

TEST(log_text_quotes_like_logrus) {
  cell_error *err = NULL;
  CHECK(log_init("cell", NULL, "text", true, &err) == 0);
  cleanup_free char *out = capture_stderr(log_plain_word);
  log_close();
  CHECK_CONTAINS(out, " level=error msg=plain-word_1.2/x@y^z+\n");
  /* time="YYYY-MM-DDTHH:MM:SSZ": the Z closes the 20 characters in quotes. */
  CHECK(strlen(out) > 26 && out[25] == 'Z' && out[26] == '"');
}

TEST(log_text_file) {
  cleanup_free char *path = tmp_path("log.txt");
  CHECK_STR(log_init_error(path, "text"), "");
  CHECK(log_fd() >= 0 && (fcntl(log_fd(), F_GETFD) & FD_CLOEXEC));
  cleanup_free char *err_out = capture_stderr(log_each_level);
  log_warn("quote \" backslash \\ newline \n end");
  log_close();
  CHECK(log_fd() == -1);
  CHECK_STR(err_out, "cell: an error: 1\n"); /* only errors also on stderr */

  mode_t mask = umask(0);
  umask(mask);
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == (0640 & ~mask));
  cleanup_free char *got = slurp(path);
  CHECK(strncmp(got, "time=\"20", 8) == 0);
  CHECK_CONTAINS(got, "Z\" level=error msg=\"an error: 1\"\n");
  CHECK_CONTAINS(got, " level=warning msg=\"a warning\"\n");
  CHECK_CONTAINS(got, " level=info msg=\"some info\"\n");
  CHECK(strstr(got, "debug") == NULL);
  CHECK_CONTAINS(got, "msg=\"quote \\\" backslash \\\\ newline \\n end\"\n");
  size_t lines = 0;
  for (const char *p = got; *p; p++)
    lines += *p == '\n';
  CHECK(lines == 4);

  /* Appends, does not truncate. */
  CHECK_STR(log_init_error(path, "text"), "");
  log_info("second run");
  log_close();
  cleanup_free char *again = slurp(path);
  CHECK(strncmp(again, got, strlen(got)) == 0);
  CHECK_CONTAINS(again + strlen(got), "msg=\"second run\"");
}

TEST(log_json_file) {
  cleanup_free char *path = tmp_path("log.json");
  cell_error *err = NULL;
  CHECK(log_init("cell", path, "json", true, &err) == 0);
  cleanup_free char *err_out = capture_stderr(log_each_level);
  log_close();
  CHECK_STR(err_out, "cell: an error: 1\n");
  cleanup_free char *got = slurp(path);
  CHECK(strncmp(got, "{\"level\":\"error\",\"msg\":\"an error: 1\",\"time\":\"20",
                47) == 0);
  CHECK_CONTAINS(got, "{\"level\":\"warning\",\"msg\":\"a warning\",\"time\":\"");
  CHECK_CONTAINS(got, "{\"level\":\"info\",\"msg\":\"some info\"");
  CHECK_CONTAINS(got, "{\"level\":\"debug\",\"msg\":\"a debug line\"");
  CHECK_CONTAINS(got, "Z\"}\n");
  size_t lines = 0;
  for (const char *p = got; *p; p++)
    lines += *p == '\n';
  CHECK(lines == 4);
}

TEST(log_init_errors) {
  CHECK_STR(log_init_error(NULL, "xml"),
            "--log-format: unknown format `xml` (text or json)");
  CHECK_STR(log_init_error("/nonexistent/dir/log", "json"),
            "open log file `/nonexistent/dir/log`: No such file or directory");
  CHECK(log_fd() == -1);
  log_close();
}

TEST(warn_runs_all_and_logs) {
  cleanup_free char *path = tmp_path("warn.json");
  cleanup_free char *out = tmp_path("warn-order");
  cleanup_free char *env_out = xasprintf("OUT=%s", out);
  char *env[] = {env_out, NULL};
  cell_error *err = NULL;
  CHECK(log_init("cell", path, "json", false, &err) == 0);
  struct spec_hook_list l = {0};
  add(&l, hook("/bin/sh", 0, env, "sh", "-c", "echo 0 >> \"$OUT\"; exit 1",
               NULL));
  add(&l, hook("/nonexistent/hook", 0, NULL, NULL));
  add(&l, hook("/bin/sh", 0, env, "sh", "-c", "echo 2 >> \"$OUT\"", NULL));
  hooks_run_warn(&l, "poststop", state_json);
  hook_list_free(&l);
  log_close();
  cleanup_free char *order = slurp(out);
  CHECK_STR(order, "0\n2\n");
  cleanup_free char *got = slurp(path);
  CHECK_CONTAINS(got, "\"level\":\"warning\",\"msg\":\"poststop hook 0 "
                      "(`/bin/sh`): exited with status 1\"");
  CHECK_CONTAINS(got, "\"msg\":\"poststop hook 1 (`/nonexistent/hook`): "
                      "exec: No such file or directory\"");
  CHECK(strstr(got, "hook 2") == NULL);
}

static void remove_tmpdir(void) {
  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, tmpdir, &err) < 0) {
    fprintf(stderr, "cleanup: %s\n", err->msg);
    cell_error_free(&err);
  }
}

int main(void) {
  alarm(120); /* a hung hook must fail the suite, not hang it */
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  RUN(state_on_stdin);
  RUN(large_state_on_stdin);
  RUN(hook_that_ignores_stdin);
  RUN(args_and_env);
  RUN(env_is_exactly_the_hooks);
  RUN(args_default_to_path);
  RUN(failures);
  RUN(timeout);
  RUN(order_and_stop_at_first_failure);
  RUN(clean_process_state);
  RUN(log_to_stderr);
  RUN(log_text_quotes_like_logrus);
  RUN(log_text_file);
  RUN(log_json_file);
  RUN(log_init_errors);
  RUN(warn_runs_all_and_logs);
  remove_tmpdir();
  UNIT_DONE();
}
