#include "runtime/process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/procfs.h"
#include "base/syscalls.h"
#include "base/util.h"

int process_set_rlimits(const struct spec_process *p, cell_error **err) {
  for (size_t i = 0; i < p->n_rlimits; i++) {
    const struct spec_rlimit *r = &p->rlimits[i];
    struct rlimit lim = {.rlim_cur = r->soft, .rlim_max = r->hard};
    if (setrlimit(r->resource, &lim) < 0)
      return cell_fail_errno(err, "process.rlimits[%zu]: set %s to %llu/%llu",
                             i, r->type, (unsigned long long)r->soft,
                             (unsigned long long)r->hard);
  }
  return 0;
}

int process_set_oom_score_adj_of(int procfs, pid_t pid,
                                 const struct spec_process *p,
                                 cell_error **err) {
  if (p->oom_score_adj == NULL)
    return 0;
  char buf[16];
  int n = snprintf(buf, sizeof(buf), "%d", *p->oom_score_adj);
  if (procfs_write_pid_file(procfs, pid, "oom_score_adj", buf, (size_t)n,
                            err) < 0)
    return cell_error_wrap(err, "process.oomScoreAdj");
  return 0;
}

int process_set_user(const struct spec_process *p, cell_error **err) {
  const struct spec_user *u = &p->user;
  if (setgroups(u->n_additional_gids, (const gid_t *)u->additional_gids) < 0) {
    /* A user namespace whose gid map was written without privilege has
     * setgroups denied; that is fine when no groups were asked for. */
    if (!(errno == EPERM && u->n_additional_gids == 0))
      return cell_fail_errno(err, "process.user.additionalGids: setgroups");
  }
  if (setresgid(u->gid, u->gid, u->gid) < 0)
    return cell_fail_errno(err, "process.user.gid: setgid %u", u->gid);
  if (setresuid(u->uid, u->uid, u->uid) < 0)
    return cell_fail_errno(err, "process.user.uid: setuid %u", u->uid);
  umask(u->umask ? (mode_t)*u->umask : 022);
  return 0;
}

int process_set_no_new_privileges(const struct spec_process *p,
                                  cell_error **err) {
  if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return cell_fail_errno(err, "process.noNewPrivileges");
  return 0;
}

int process_chdir(const struct spec_process *p, cell_error **err) {
  const char *cwd = p->cwd ? p->cwd : "/";
  if (chdir(cwd) < 0)
    return cell_fail_errno(err, "process.cwd: chdir `%s`", cwd);
  /* After pivot_root every path is inside the container; still, a cwd that
   * is not reachable from our root (a leaked host directory, CVE-2024-21626)
   * shows up as "(unreachable)" or fails here. */
  char buf[4096];
  if (getcwd(buf, sizeof(buf)) == NULL || buf[0] != '/')
    return cell_fail(err, EPERM, "process.cwd: `%s` is outside the container", cwd);
  return 0;
}

static bool is_executable_file(const char *path, int *why) {
  struct stat st;
  if (stat(path, &st) < 0) {
    *why = errno;
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *why = S_ISDIR(st.st_mode) ? EISDIR : EACCES;
    return false;
  }
  if (access(path, X_OK) < 0) {
    *why = errno;
    return false;
  }
  return true;
}

static const char *env_path(char *const *env) {
  for (size_t i = 0; env && env[i]; i++)
    if (strncmp(env[i], "PATH=", 5) == 0)
      return env[i] + 5;
  return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/* execve resolves the path again, as the container process that still
 * holds the runtime's fds and whose /proc/self/exe is the runtime's binary:
 * a magic link on the way (/proc/self/exe, /proc/self/fd/N, or a symlink
 * of the image to them) would exec a file of the host (CVE-2019-5736,
 * CVE-2024-21626).  Kernels without openat2 go unchecked. */
static int check_no_magic_links(const char *name, const char *path,
                                cell_error **err) {
  struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                         .resolve = RESOLVE_NO_MAGICLINKS};
  int fd = sys_openat2(AT_FDCWD, path, &how);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  if (errno != ELOOP)
    return 0;
  if (strcmp(name, path) == 0)
    return cell_fail(err, 0,
                     "exec `%s`: goes through a /proc magic link, which could "
                     "lead out of the container: refused",
                     name);
  return cell_fail(err, 0,
                   "exec `%s`: `%s` goes through a /proc magic link, which "
                   "could lead out of the container: refused",
                   name, path);
}

int process_find_executable(const struct spec_process *p, char **path,
                            cell_error **err) {
  const char *name = p->args[0];
  int why = ENOENT;
  if (strchr(name, '/')) {
    if (!is_executable_file(name, &why))
      return cell_fail(err, why, "exec `%s`", name);
    if (check_no_magic_links(name, name, err) < 0)
      return -1;
    *path = xstrdup(name);
    return 0;
  }
  cleanup_free char *dirs = xstrdup(env_path(p->env));
  char *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    cleanup_free char *candidate = xasprintf("%s/%s", *d ? d : ".", name);
    int e;
    if (is_executable_file(candidate, &e)) {
      if (check_no_magic_links(name, candidate, err) < 0)
        return -1;
      *path = steal_pointer(&candidate);
      return 0;
    }
    if (e != ENOENT && e != ENOTDIR)
      why = e;
  }
  if (why == ENOENT)
    return cell_fail(err, 0, "exec `%s`: executable file not found in $PATH", name);
  return cell_fail(err, why, "exec `%s`", name);
}

int process_drop_privileges(const struct spec_process *p,
                            const struct caps_plan *caps,
                            const struct seccomp_program *seccomp,
                            int *notify_fd, cell_error **err) {
  bool early = seccomp && (!p->no_new_privileges ||
                           seccomp_program_notifies(seccomp));
  *notify_fd = -1;
  if (process_set_rlimits(p, err) < 0)
    return -1;
  if (early && !p->no_new_privileges &&
      seccomp_program_load(seccomp, notify_fd, err) < 0)
    return -1;
  if (caps_before_setuid(caps, err) < 0 || process_set_user(p, err) < 0 ||
      caps_after_setuid(caps, err) < 0 ||
      process_set_no_new_privileges(p, err) < 0)
    return -1;
  if (early && p->no_new_privileges &&
      seccomp_program_load(seccomp, notify_fd, err) < 0)
    return -1;
  return 0;
}

int process_load_late_seccomp(const struct spec_process *p,
                              const struct seccomp_program *seccomp,
                              cell_error **err) {
  if (seccomp == NULL || !p->no_new_privileges ||
      seccomp_program_notifies(seccomp))
    return 0;
  return seccomp_program_load(seccomp, NULL, err);
}
