/* Whole trees into and out of an instance's root, as one tar stream
 * (instance-tree-files.h). */
#include "daemon/instance-tree-files.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/resolve.h"
#include "base/util.h"
#include "daemon/instance-files.h"
#include "storage/tree-archive.h"

#define READ_BLOCK (64 * 1024)

/* ---- into the instance -------------------------------------------------- */

/* A directory whose mtime is set at the end, once nothing more is made in
 * it; "" is the target itself. */
struct dir_time {
  char *path;
  struct timespec mtime;
};

struct tree_push {
  struct archive *ar;
  int destfd;
  uid_t uid;
  gid_t gid;
  int file_mode;
  /* The last parent opened: entries come grouped by directory. */
  char *parent;
  int parentfd;
  struct dir_time *dirs;
  size_t n_dirs, cap_dirs;
  struct tree_push_stats *stats;
  char *buf;
};

static void tree_push_free(struct tree_push *t) {
  if (t->ar)
    archive_read_free(t->ar);
  if (t->parentfd >= 0)
    close(t->parentfd);
  free(t->parent);
  for (size_t i = 0; i < t->n_dirs; i++)
    free(t->dirs[i].path);
  free(t->dirs);
  free(t->buf);
}

/* The entry's path, relative and clean ("a/b", "" for the target itself):
 * an absolute path or a ".." would land outside the target, and is refused
 * rather than rewritten. */
static int clean_entry_path(const char *raw, char **out, cell_error **err) {
  if (raw[0] == '/')
    return cell_fail(err, EINVAL, "entry `%s`: an absolute path, refused "
                     "(entries are relative to the target directory)", raw);
  size_t len = strlen(raw);
  char *clean = xmalloc(len + 1);
  size_t n = 0;
  for (const char *p = raw; *p;) {
    const char *end = strchrnul(p, '/');
    size_t part = (size_t)(end - p);
    if (part == 2 && p[0] == '.' && p[1] == '.') {
      free(clean);
      return cell_fail(err, EINVAL, "entry `%s`: a `..` component, refused "
                       "(nothing lands outside the target directory)", raw);
    }
    if (part > 0 && !(part == 1 && p[0] == '.')) {
      if (n > 0)
        clean[n++] = '/';
      memcpy(clean + n, p, part);
      n += part;
    }
    p = *end ? end + 1 : end;
  }
  clean[n] = '\0';
  *out = clean;
  return 0;
}

/* The parent of the entry at rel (its last name in *base), opened beneath
 * the target with no symlink in the way, not on a kernel filesystem. */
static int open_entry_parent(struct tree_push *t, char *rel, const char **base,
                             cell_error **err) {
  char *slash = strrchr(rel, '/');
  if (!slash) {
    *base = rel;
    return t->destfd;
  }
  *slash = '\0';
  *base = slash + 1;
  if (t->parent && strcmp(t->parent, rel) == 0)
    return t->parentfd;
  if (t->parentfd >= 0)
    close(t->parentfd);
  free(t->parent);
  t->parent = NULL;
  t->parentfd = resolve_open_no_symlinks(t->destfd, rel,
                                         O_RDONLY | O_DIRECTORY, err);
  if (t->parentfd < 0)
    return cell_error_wrap(err, "directory `%s` of the tree", rel);
  if (instance_check_not_kernel_fs(t->parentfd, rel, err) < 0)
    return -1;
  t->parent = xstrdup(rel);
  return t->parentfd;
}

static struct timespec entry_mtime(struct archive_entry *e) {
  return (struct timespec){.tv_sec = archive_entry_mtime(e),
                           .tv_nsec = archive_entry_mtime_nsec(e)};
}

static void defer_dir_time(struct tree_push *t, const char *rel,
                           struct archive_entry *e) {
  if (t->n_dirs == t->cap_dirs) {
    t->cap_dirs = t->cap_dirs ? t->cap_dirs * 2 : 64;
    t->dirs = xrealloc(t->dirs, t->cap_dirs * sizeof(*t->dirs));
  }
  t->dirs[t->n_dirs++] = (struct dir_time){xstrdup(rel), entry_mtime(e)};
}

static int own_and_mode(int fd, const struct tree_push *t, mode_t mode,
                        const char *rel, cell_error **err) {
  /* chmod after chown, which clears set-id bits. */
  if (fchown(fd, t->uid, t->gid) < 0 || fchmod(fd, mode) < 0)
    return cell_fail_errno(err, "chown or chmod `%s`", rel);
  return 0;
}

static int push_dir(struct tree_push *t, int parentfd, const char *base,
                    const char *rel, struct archive_entry *e,
                    cell_error **err) {
  if (mkdirat(parentfd, base, 0700) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", rel);
  /* An existing one is used if it is a directory, never through a link. */
  cleanup_close int fd =
      openat(parentfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "`%s` in the instance: not a directory", rel);
  if (own_and_mode(fd, t, archive_entry_perm(e) & 07777, rel, err) < 0)
    return -1;
  defer_dir_time(t, rel, e);
  return 0;
}

static int copy_entry_data(struct tree_push *t, int fd, const char *rel,
                           cell_error **err) {
  for (;;) {
    la_ssize_t n = archive_read_data(t->ar, t->buf, READ_BLOCK);
    if (n < 0)
      return cell_fail(err, archive_errno(t->ar), "read `%s` from the "
                       "stream: %s", rel, archive_error_string(t->ar));
    if (n == 0)
      return 0;
    if (cell_write_all(fd, t->buf, (size_t)n) < 0)
      return cell_fail_errno(err, "write `%s`", rel);
    t->stats->bytes += (uint64_t)n;
  }
}

static int fill_file(struct tree_push *t, int fd, const char *rel,
                     struct archive_entry *e, cell_error **err) {
  mode_t mode = t->file_mode >= 0 ? (mode_t)t->file_mode
                                  : archive_entry_perm(e) & 0777;
  struct timespec times[2] = {entry_mtime(e), entry_mtime(e)};
  if (copy_entry_data(t, fd, rel, err) < 0 ||
      own_and_mode(fd, t, mode, rel, err) < 0)
    return -1;
  if (futimens(fd, times) < 0)
    return cell_fail_errno(err, "set the mtime of `%s`", rel);
  return 0;
}

static int push_file(struct tree_push *t, int parentfd, const char *base,
                     const char *rel, struct archive_entry *e,
                     cell_error **err) {
  struct stat st;
  if (fstatat(parentfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISDIR(st.st_mode))
    return cell_fail(err, EISDIR, "`%s` is a directory in the instance, a "
                     "file in the tree", rel);
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = instance_make_temp(parentfd, &tmp, err);
  if (fd < 0)
    return -1;
  if (fill_file(t, fd, rel, e, err) < 0 ||
      renameat(parentfd, tmp, parentfd, base) < 0) {
    if (!*err)
      cell_fail_errno(err, "rename into `%s`", rel);
    unlinkat(parentfd, tmp, 0);
    return -1;
  }
  return 0;
}

/* Made beside it and renamed over: what was there is replaced, never
 * followed.  The link is only text: it resolves inside the instance. */
static int push_symlink(struct tree_push *t, int parentfd, const char *base,
                        const char *rel, struct archive_entry *e,
                        cell_error **err) {
  const char *target = archive_entry_symlink(e);
  if (!target || !*target)
    return cell_fail(err, EINVAL, "entry `%s`: a symlink to nothing", rel);
  cleanup_free char *tmp = NULL;
  for (int tries = 0;; tries++) {
    free(tmp);
    tmp = xasprintf(".cell-push.%d.%d", (int)getpid(), rand());
    if (symlinkat(target, parentfd, tmp) == 0)
      break;
    if (errno != EEXIST || tries == 100)
      return cell_fail_errno(err, "symlink `%s`", rel);
  }
  struct timespec times[2] = {entry_mtime(e), entry_mtime(e)};
  if (fchownat(parentfd, tmp, t->uid, t->gid, AT_SYMLINK_NOFOLLOW) < 0 ||
      utimensat(parentfd, tmp, times, AT_SYMLINK_NOFOLLOW) < 0 ||
      renameat(parentfd, tmp, parentfd, base) < 0) {
    cell_fail_errno(err, "symlink `%s`", rel);
    unlinkat(parentfd, tmp, 0);
    return -1;
  }
  return 0;
}

/* The target itself ("./"): its owner, mode and mtime. */
static int push_root(struct tree_push *t, struct archive_entry *e,
                     cell_error **err) {
  if (archive_entry_filetype(e) != AE_IFDIR)
    return cell_fail(err, EINVAL, "entry `%s`: the target itself, and not a "
                     "directory", archive_entry_pathname(e));
  if (own_and_mode(t->destfd, t, archive_entry_perm(e) & 07777, ".", err) < 0)
    return -1;
  defer_dir_time(t, "", e);
  return 0;
}

static int push_entry(struct tree_push *t, struct archive_entry *e,
                      cell_error **err) {
  const char *raw = archive_entry_pathname(e);
  cleanup_free char *rel = NULL;
  if (!raw || clean_entry_path(raw, &rel, err) < 0)
    return raw ? -1 : cell_fail(err, EINVAL, "an entry with no name");
  if (archive_entry_hardlink(e))
    return cell_fail(err, EINVAL, "entry `%s`: a hardlink; a push takes "
                     "files, directories and symlinks (tar "
                     "--hard-dereference)", raw);
  if (!*rel)
    return push_root(t, e, err);
  /* Kept whole for the messages: open_entry_parent splits rel. */
  cleanup_free char *shown = xstrdup(rel);
  const char *base;
  int parentfd = open_entry_parent(t, rel, &base, err);
  if (parentfd < 0)
    return -1;
  switch (archive_entry_filetype(e)) {
  case AE_IFDIR:
    return push_dir(t, parentfd, base, shown, e, err);
  case AE_IFREG:
    return push_file(t, parentfd, base, shown, e, err);
  case AE_IFLNK:
    return push_symlink(t, parentfd, base, shown, e, err);
  default:
    return cell_fail(err, EINVAL, "entry `%s`: not a file, a directory nor a "
                     "symlink: a push takes only these", raw);
  }
}

static int apply_dir_times(struct tree_push *t, cell_error **err) {
  for (size_t i = 0; i < t->n_dirs; i++) {
    const struct dir_time *dt = &t->dirs[i];
    cleanup_close int fd =
        *dt->path ? resolve_open_no_symlinks(t->destfd, dt->path,
                                             O_RDONLY | O_DIRECTORY, err)
                  : -1;
    if (*dt->path && fd < 0)
      return cell_error_wrap(err, "directory `%s` of the tree", dt->path);
    struct timespec times[2] = {dt->mtime, dt->mtime};
    if (futimens(*dt->path ? fd : t->destfd, times) < 0)
      return cell_fail_errno(err, "set the mtime of `%s`", dt->path);
  }
  return 0;
}

static int extract_stream(struct tree_push *t, int srcfd, cell_error **err) {
  t->ar = archive_read_new();
  if (!t->ar)
    return cell_fail(err, ENOMEM, "libarchive");
  archive_read_support_format_tar(t->ar);
  if (archive_read_open_fd(t->ar, srcfd, READ_BLOCK) != ARCHIVE_OK)
    return cell_fail(err, archive_errno(t->ar), "read the tree: %s",
                     archive_error_string(t->ar));
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(t->ar, &e);
    if (r == ARCHIVE_EOF)
      return apply_dir_times(t, err);
    if (r < ARCHIVE_WARN)
      return cell_fail(err, archive_errno(t->ar), "read the tree: %s",
                       archive_error_string(t->ar));
    if (push_entry(t, e, err) < 0)
      return -1;
    t->stats->entries++;
  }
}

/* The target directory: made when missing (0755, owned by uid:gid), an
 * existing one used as it is if it is a directory, never through a link
 * at its last name. */
static int open_target(int rootfd, const char *path, uid_t uid, gid_t gid,
                       cell_error **err) {
  cleanup_free char *base = NULL;
  cleanup_close int dirfd = instance_open_parent(rootfd, path, &base, err);
  if (dirfd < 0)
    return -1;
  bool made = mkdirat(dirfd, base, 0700) == 0;
  if (!made && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", path);
  cleanup_close int fd =
      openat(dirfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "`%s` in the instance: not a directory", path);
  /* The entries' parents are checked as they are opened; those right in
   * the target, here. */
  if (instance_check_not_kernel_fs(fd, path, err) < 0)
    return -1;
  if (made && (fchown(fd, uid, gid) < 0 || fchmod(fd, 0755) < 0))
    return cell_fail_errno(err, "chown or chmod `%s`", path);
  return steal_fd(&fd);
}

int instance_tree_push(int rootfd, const char *path, int srcfd, uid_t uid,
                       gid_t gid, int file_mode, struct tree_push_stats *stats,
                       cell_error **err) {
  *stats = (struct tree_push_stats){0};
  cleanup_close int destfd = open_target(rootfd, path, uid, gid, err);
  if (destfd < 0)
    return -1;
  struct tree_push t = {.destfd = destfd, .uid = uid, .gid = gid,
                        .file_mode = file_mode, .parentfd = -1,
                        .stats = stats, .buf = xmalloc(READ_BLOCK)};
  int r = extract_stream(&t, srcfd, err);
  tree_push_free(&t);
  return r < 0 ? cell_error_wrap(err, "push into `%s`", path) : 0;
}

/* ---- out of the instance ------------------------------------------------ */

struct tree_pull {
  const char *path; /* the directory pulled, inside the instance */
  tree_skipped_fn skipped;
  void *ctx;
};

static const char *skip_kernel_dir(void *ctx, int fd) {
  (void)ctx;
  return instance_kernel_fs(fd) ? "a kernel filesystem (/proc, /sys, ...)"
                                : NULL;
}

/* "./dev/null" of the stream, told as the instance's "/dev/null". */
static void report_skipped(void *ctx, const char *rel, const char *why) {
  const struct tree_pull *p = ctx;
  if (!p->skipped)
    return;
  if (strncmp(rel, "./", 2) == 0)
    rel += 2;
  const char *sep = p->path[strlen(p->path) - 1] == '/' ? "" : "/";
  cleanup_free char *full = xasprintf("%s%s%s", p->path, sep, rel);
  p->skipped(p->ctx, full, why);
}

int instance_tree_pull(int rootfd, const char *path, int dstfd,
                       uint32_t id_base, uint32_t id_count,
                       tree_skipped_fn skipped, void *ctx, uint64_t *bytes,
                       cell_error **err) {
  if (path[0] != '/')
    return cell_fail(err, EINVAL, "path `%s`: give the absolute path of a "
                     "directory inside the instance", path);
  /* O_PATH first: opening a device or a FIFO could act or wait. */
  cleanup_close int pathfd = resolve_open(rootfd, path, O_PATH, err);
  if (pathfd < 0)
    return cell_error_wrap(err, "`%s` in the instance", path);
  struct stat st;
  if (fstat(pathfd, &st) < 0)
    return cell_fail_errno(err, "stat `%s`", path);
  if (!S_ISDIR(st.st_mode))
    return cell_fail(err, ENOTDIR, "`%s` is not a directory in the instance: "
                     "pull -r takes a directory (a file: without -r)", path);
  if (instance_check_not_kernel_fs(pathfd, path, err) < 0)
    return -1;
  char buf[32];
  cleanup_close int fd =
      open(resolve_fd_path(pathfd, buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", path);
  struct tree_pull p = {.path = path, .skipped = skipped, .ctx = ctx};
  struct tree_archive_opts opts = {.plain_only = true,
                                   .no_hardlinks = true,
                                   .drop_setid = true,
                                   .id_base = id_base,
                                   .id_count = id_count,
                                   .skip_dir = skip_kernel_dir,
                                   .skipped = report_skipped,
                                   .ctx = &p};
  if (tree_archive_write_with(fd, dstfd, &opts, bytes, err) < 0)
    return cell_error_wrap(err, "pull `%s`", path);
  return 0;
}
