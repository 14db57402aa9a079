/* The criu program, as checkpoint and restore drive it: found (PATH or
 * --criu), asked once per boot whether it can work on this kernel, and run
 * with its command line (not libcriu: the runtime stays one static
 * program, and a newer criu drops in without a rebuild). */
#ifndef CELL_CRIU_H
#define CELL_CRIU_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "cgroup/cgroup.h"
#include "oci/spec.h"

/* The criu to run: `given` (--criu) when set, which must be an executable,
 * else `criu` on PATH, then /usr/sbin and /sbin (root's usual places,
 * missing from many PATHs).  The caller frees *path. */
int criu_find(const char *given, char **path, cell_error **err);

/* Fail at once when criu cannot work here, with one line naming criu's
 * version, the kernel and the reason `criu check` gives.  The verdict is
 * kept in <root>/.criu-check, keyed by the criu binary, the kernel and the
 * boot, so a checkpoint pays for `criu check` once per boot.  `action`
 * ("checkpoint", "restore") starts the message. */
int criu_check_usable(const char *criu, int rootfd, const char *action,
                      cell_error **err);

/* The flags checkpoint and restore share, runc's. */
struct criu_opts {
  const char *criu;       /* --criu PATH; NULL: found on PATH */
  const char *image_path; /* NULL: ./checkpoint, as runc */
  const char *work_path;  /* NULL: the image path */
  bool tcp_established, ext_unix_sk, shell_job, file_locks, lazy_pages,
      auto_dedup;
  const char *manage_cgroups_mode; /* soft | full | strict | ignore */
  char **empty_ns;                 /* "network" */
};

/* The values of the shared flags: one line naming a bad one and what it
 * may be. */
int criu_opts_check(const struct criu_opts *o, cell_error **err);
/* Start criu's argv for action ("dump", "pre-dump", "restore"): the
 * directories (absolute), its log in work_dir, and the shared flags. */
void criu_args_begin(const struct criu_opts *o, const char *action,
                     const char *image_dir, const char *work_dir,
                     char ***argv);
/* The config's bind mounts are the host's: external to criu, by their
 * destination.  At dump they are recorded by destination, at restore that
 * destination is bound again from the source. */
void criu_args_bind_mounts(const struct spec *s, bool restore, char ***argv);

/* criu mounts the image's mounts by name under its copy of the rootfs, so
 * a symlink there would be followed as the host's: a destination that is
 * an absolute symlink, or leads out with "..", would have it mount over a
 * host path.  Refuse a rootfs where one of the config's mount destinations
 * does not resolve beneath it (openat2 RESOLVE_BENEATH); a relative link
 * that stays inside resolves the same way for criu as for cell, and a
 * missing one is made by criu inside.  `action` starts the message. */
int criu_check_mount_destinations(const char *rootfs, const struct spec *s,
                                  const char *action, cell_error **err);

/* The directory dirfd as criu is given it: "/proc/self/fd/N", valid in
 * criu because criu_exec keeps dirfd at its number (keep_fds).  criu opens
 * -D and chdirs to -W once, first thing: so it uses the directories cell
 * made and checked, never a name resolved twice. */
char *criu_dir_arg(int dirfd);

/* How to run one criu command. */
struct criu_exec {
  const char *const *argv;   /* argv[0] is ignored: criu's path is used */
  const char *log_path;      /* criu's -o log, quoted in the error */
  int stdio[3];              /* -1: /dev/null */
  const int *keep_fds;       /* passed on, at their numbers (--status-fd) */
  size_t n_keep;
  struct cgroup_join *join;  /* joined before exec (restore), or NULL */
};

/* Run criu and wait for it; on failure the error quotes the first error
 * of criu's log (the caller says where the log is, if it keeps it). */
int criu_run(const char *criu, const struct criu_exec *x, cell_error **err);

#endif
