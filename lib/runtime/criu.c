/* The criu program: see criu.h. */
#include "runtime/criu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/resolve.h"
#include "base/syscalls.h"
#include "base/util.h"

#define CRIU_CHECK_CACHE ".criu-check"
/* More than criu prints for --version or check is a runaway. */
#define CRIU_OUTPUT_MAX (256u << 10)

/* ---- finding it ------------------------------------------------------------ */

static bool is_executable(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

static char *search_dirs(const char *dirs) {
  cleanup_free char *copy = xstrdup(dirs);
  char *save = NULL;
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    if (d[0] != '/')
      continue; /* a relative PATH entry would depend on the cwd */
    char *p = xasprintf("%s/criu", d);
    if (is_executable(p))
      return p;
    free(p);
  }
  return NULL;
}

int criu_find(const char *given, char **path, cell_error **err) {
  if (given) {
    if (!is_executable(given))
      return cell_fail(err, 0,
                       "--criu `%s`: not an executable file (give the path "
                       "of the criu program)",
                       given);
    *path = xstrdup(given);
    return 0;
  }
  const char *env = getenv("PATH");
  *path = search_dirs(env ? env : "");
  if (*path == NULL)
    *path = search_dirs("/usr/sbin:/sbin");
  if (*path == NULL)
    return cell_fail(err, 0,
                     "criu not found on PATH, in /usr/sbin or /sbin: install "
                     "it (Debian: apt-get install criu) or give its path "
                     "with --criu PATH");
  return 0;
}

/* ---- asking it ---------------------------------------------------------------- */

/* Run `criu ARG`, its stdout and stderr together into *out. */
static int run_capture(const char *criu, const char *arg, char **out,
                       int *status, cell_error **err) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe");
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return cell_fail_errno(err, "fork");
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
      _exit(127);
    execl(criu, criu, arg, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  size_t cap = 4096, used = 0;
  char *buf = xmalloc(cap);
  ssize_t r;
  while ((r = read(p[0], buf + used, cap - used - 1)) != 0) {
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      break;
    used += (size_t)r;
    if (cap - used < 1024 && cap < CRIU_OUTPUT_MAX)
      buf = xrealloc(buf, cap *= 2);
    if (cap - used <= 1)
      break;
  }
  buf[used] = '\0';
  close(p[0]);
  while (waitpid(pid, status, 0) < 0)
    if (errno != EINTR) {
      free(buf);
      return cell_fail_errno(err, "wait for `%s %s`", criu, arg);
    }
  *out = buf;
  return 0;
}

/* "3.17.1" from "Version: 3.17.1\n...". */
static char *criu_version(const char *criu) {
  cleanup_free char *out = NULL;
  cell_error *e = NULL;
  int status = 0;
  if (run_capture(criu, "--version", &out, &status, &e) < 0) {
    cell_error_free(&e);
    return xstrdup("(version unknown)");
  }
  const char *v = strstr(out, "Version: ");
  if (v == NULL)
    return xstrdup("(version unknown)");
  v += strlen("Version: ");
  return xstrndup(v, strcspn(v, "\n"));
}

/* The first error `criu check` printed, without its source location:
 * "Error (criu/vdso.c:381): vdso: Unexpected ..." -> "vdso: Unexpected ...". */
static char *check_reason(const char *out) {
  const char *line = strstr(out, "Error");
  if (line == NULL)
    line = out;
  const char *rest = strstr(line, "): ");
  if (rest && rest < line + strcspn(line, "\n"))
    line = rest + 3;
  size_t n = strcspn(line, "\n");
  while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\r'))
    n--;
  return n ? xstrndup(line, n) : xstrdup("no reason given");
}

/* What the verdict depends on: this criu binary, this kernel, this boot. */
static char *cache_key(const char *criu) {
  struct stat sb;
  struct utsname u;
  cleanup_free char *boot = NULL;
  size_t len = 0;
  cell_error *e = NULL;
  if (stat(criu, &sb) < 0 || uname(&u) < 0)
    return NULL;
  if (cell_read_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", 64,
                        &boot, &len, &e) < 0) {
    cell_error_free(&e);
    return NULL;
  }
  boot[strcspn(boot, "\n")] = '\0';
  return xasprintf("%s %llu %lld.%09ld %s %s\n", criu,
                   (unsigned long long)sb.st_ino, (long long)sb.st_mtim.tv_sec,
                   sb.st_mtim.tv_nsec, u.release, boot);
}

/* The verdict stored for key: "" when criu works, the reason when it does
 * not, NULL when none is stored for this key. */
static char *cached_verdict(int rootfd, const char *key) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  cell_error *e = NULL;
  if (cell_read_file_at(rootfd, CRIU_CHECK_CACHE, 4096, &text, &len, &e) < 0) {
    cell_error_free(&e);
    return NULL;
  }
  size_t klen = strlen(key);
  if (len < klen || memcmp(text, key, klen) != 0)
    return NULL;
  const char *verdict = text + klen;
  return xstrndup(verdict, strcspn(verdict, "\n"));
}

static void store_verdict(int rootfd, const char *key, const char *verdict) {
  cleanup_free char *text = xasprintf("%s%s\n", key, verdict);
  cell_error *e = NULL;
  /* An optimisation: a root that cannot keep it costs a `criu check`. */
  if (cell_write_file_atomic_at(rootfd, CRIU_CHECK_CACHE, text, strlen(text),
                                0600, &e) < 0) {
    log_debug("criu check verdict not kept: %s", e->msg);
    cell_error_free(&e);
  }
}

/* "" when `criu check` passes, else the message's end. */
static char *fresh_verdict(const char *criu, cell_error **err) {
  cleanup_free char *out = NULL;
  int status = 0;
  if (run_capture(criu, "check", &out, &status, err) < 0)
    return NULL;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return xstrdup("");
  cleanup_free char *reason = check_reason(out);
  cleanup_free char *version = criu_version(criu);
  struct utsname u;
  if (uname(&u) < 0)
    strcpy(u.release, "(unknown)");
  return xasprintf("criu %s cannot work on kernel %s: `criu check` says "
                   "\"%s\" (a newer criu may know this kernel; give one "
                   "with --criu PATH)",
                   version, u.release, reason);
}

int criu_check_usable(const char *criu, int rootfd, const char *action,
                      cell_error **err) {
  cleanup_free char *key = cache_key(criu);
  cleanup_free char *verdict = key ? cached_verdict(rootfd, key) : NULL;
  if (verdict == NULL) {
    verdict = fresh_verdict(criu, err);
    if (verdict == NULL)
      return cell_error_wrap(err, "%s", action);
    if (key)
      store_verdict(rootfd, key, verdict);
  }
  if (verdict[0] != '\0')
    return cell_fail(err, 0, "%s: %s", action, verdict);
  return 0;
}

/* ---- its command line ------------------------------------------------------- */

static bool is_one_of(const char *s, const char *const *set) {
  for (; *set; set++)
    if (strcmp(s, *set) == 0)
      return true;
  return false;
}

int criu_opts_check(const struct criu_opts *o, cell_error **err) {
  static const char *const modes[] = {"soft", "full", "strict", "ignore", NULL};
  const char *mode = o->manage_cgroups_mode;
  if (mode && !is_one_of(mode, modes))
    return cell_fail(err, 0,
                     "--manage-cgroups-mode `%s`: not soft, full, strict or "
                     "ignore",
                     mode);
  for (char **ns = o->empty_ns; ns && *ns; ns++)
    if (strcmp(*ns, "network") != 0)
      return cell_fail(err, 0,
                       "--empty-ns `%s`: only `network` can be left empty", *ns);
  return 0;
}

void criu_args_begin(const struct criu_opts *o, const char *action,
                     const char *image_dir, const char *work_dir,
                     char ***argv) {
  const char *mode = o->manage_cgroups_mode;
  cell_strv_push(argv, "criu");
  cell_strv_push(argv, action);
  const char *fixed[] = {"-D", image_dir, "-W", work_dir, "-v4", NULL};
  for (const char *const *a = fixed; *a; a++)
    cell_strv_push(argv, *a);
  cleanup_free char *log = xasprintf("%s.log", action);
  cell_strv_push(argv, "-o");
  cell_strv_push(argv, log);
  const struct {
    bool on;
    const char *flag;
  } flags[] = {
      {o->tcp_established, "--tcp-established"},
      {o->ext_unix_sk, "--ext-unix-sk"},
      {o->shell_job, "--shell-job"},
      {o->file_locks, "--file-locks"},
      {o->lazy_pages, "--lazy-pages"},
      {o->auto_dedup, "--auto-dedup"},
      {o->empty_ns && o->empty_ns[0], "--empty-ns=net"},
  };
  for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
    if (flags[i].on)
      cell_strv_push(argv, flags[i].flag);
  cleanup_free char *manage =
      xasprintf("--manage-cgroups=%s", mode ? mode : "soft");
  cell_strv_push(argv, manage);
}

static bool is_bind_mount(const struct spec_mount *m) {
  if (m->type && strcmp(m->type, "bind") == 0)
    return true;
  for (char **o = m->options; o && *o; o++)
    if (strcmp(*o, "bind") == 0 || strcmp(*o, "rbind") == 0)
      return true;
  return false;
}

void criu_args_bind_mounts(const struct spec *s, bool restore, char ***argv) {
  for (size_t i = 0; i < s->n_mounts; i++) {
    const struct spec_mount *m = &s->mounts[i];
    if (!is_bind_mount(m) || m->source == NULL)
      continue;
    cleanup_free char *map = xasprintf(
        "%s:%s", m->destination, restore ? m->source : m->destination);
    cell_strv_push(argv, "--ext-mount-map");
    cell_strv_push(argv, map);
  }
}

/* ---- what it is given by name --------------------------------------------- */

static int destination_beneath(int rootfd, const char *dest) {
  struct open_how how = {
      .flags = O_PATH | O_CLOEXEC,
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
  };
  const char *rel = dest + strspn(dest, "/");
  int fd = sys_openat2(rootfd, *rel ? rel : ".", &how);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
}

int criu_check_mount_destinations(const char *rootfs, const struct spec *s,
                                  const char *action, cell_error **err) {
  cleanup_close int rootfd =
      open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return cell_fail_errno(err, "%s: rootfs `%s`", action, rootfs);
  for (size_t i = 0; i < s->n_mounts; i++) {
    const char *dest = s->mounts[i].destination;
    if (dest == NULL || destination_beneath(rootfd, dest) == 0)
      continue;
    if (errno == EXDEV || errno == ELOOP)
      return cell_fail(err, 0,
                       "%s: mount destination `%s` leads out of the rootfs "
                       "`%s` through a symlink, and criu mounts by name: "
                       "make it a directory (or a link that stays inside)",
                       action, dest, rootfs);
    return cell_fail_errno(err, "%s: mount destination `%s` in `%s`", action,
                           dest, rootfs);
  }
  return 0;
}

char *criu_dir_arg(int dirfd) {
  char buf[32];
  return xstrdup(resolve_fd_path(dirfd, buf));
}

/* ---- running it ------------------------------------------------------------- */

/* The first error in criu's log (what went wrong; the later ones follow
 * from it), NULL when there is none. */
static char *first_log_error(const char *log_path) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  cell_error *e = NULL;
  if (cell_read_file_at(AT_FDCWD, log_path, 0, &text, &len, &e) < 0) {
    cell_error_free(&e);
    return NULL;
  }
  for (const char *p = text; (p = strstr(p, "Error (")) != NULL; p++)
    if (p == text || p[-1] == '\n' || p[-1] == ' ')
      return check_reason(p);
  return NULL;
}

static void exec_criu(const char *criu, const struct criu_exec *x) {
  cell_error *e = NULL;
  cell_reset_signals();
  if (x->join && cgroup_join_self(x->join, &e) < 0)
    _exit(126);
  int null = open("/dev/null", O_RDWR);
  for (int i = 0; i < 3; i++) {
    int fd = x->stdio[i] >= 0 ? x->stdio[i] : null;
    if (fd < 0 || dup2(fd, i) < 0)
      _exit(126);
  }
  for (size_t i = 0; i < x->n_keep; i++) {
    int flags = fcntl(x->keep_fds[i], F_GETFD);
    if (flags < 0 || fcntl(x->keep_fds[i], F_SETFD, flags & ~FD_CLOEXEC) < 0)
      _exit(126);
  }
  cell_close_fds_from(3, x->keep_fds, x->n_keep);
  execv(criu, (char *const *)x->argv);
  _exit(127);
}

int criu_run(const char *criu, const struct criu_exec *x, cell_error **err) {
  if (log_debug_enabled()) {
    cleanup_free char *line = xstrdup(criu);
    for (size_t i = 1; x->argv[i]; i++) {
      char *more = xasprintf("%s %s", line, x->argv[i]);
      free(line);
      line = more;
    }
    log_debug("run %s", line);
  }
  pid_t pid = fork();
  if (pid < 0)
    return cell_fail_errno(err, "fork for criu");
  if (pid == 0)
    exec_criu(criu, x);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return cell_fail_errno(err, "wait for criu");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  const char *action = x->argv[1];
  if (WIFEXITED(status) && WEXITSTATUS(status) >= 126)
    return cell_fail(err, 0, "criu %s: could not run `%s` (exit %d)", action,
                     criu, WEXITSTATUS(status));
  cleanup_free char *why = first_log_error(x->log_path);
  if (WIFSIGNALED(status))
    return cell_fail(err, 0, "criu %s killed by signal %d", action,
                     WTERMSIG(status));
  return cell_fail(err, 0, "criu %s failed: %s", action,
                   why ? why : "no error in its log");
}
