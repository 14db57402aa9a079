#include "base/resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/syscalls.h"
#include "base/util.h"

/* Linux gives up after 40 symlinks in one lookup; do the same. */
#define RESOLVE_MAX_SYMLINKS 40
/* openat2 returns EAGAIN when a rename or mount raced with a ".." step. */
#define RESOLVE_OPENAT2_RETRIES 32

/* -1 unknown, 0 use openat2, 1 use the manual walk. */
static int use_manual_walk = -1;

static bool manual_walk_wanted(void) {
  if (use_manual_walk < 0) {
    const char *v = getenv("CELL_RESOLVE_NO_OPENAT2");
    use_manual_walk = v != NULL && strcmp(v, "1") == 0;
  }
  return use_manual_walk == 1;
}

const char *resolve_fd_path(int fd, char buf[static 32]) {
  snprintf(buf, 32, "/proc/self/fd/%d", fd);
  return buf;
}

/* ---- openat2 --------------------------------------------------------------- */

/* Returns the fd, or -1 with errno set; ENOSYS means "no openat2 here". */
static int openat2_in_root(int rootfd, const char *path, int flags) {
  struct open_how how = {
      .flags = (unsigned long long)(flags | O_CLOEXEC),
      .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  for (int i = 0; i < RESOLVE_OPENAT2_RETRIES; i++) {
    int fd = sys_openat2(rootfd, path, &how);
    if (fd >= 0 || (errno != EAGAIN && errno != EINTR))
      return fd;
  }
  return -1;
}

/* ---- the manual walk ------------------------------------------------------- */

/* The directories walked through so far, each an O_PATH fd; dirs[0] is the
 * caller's rootfd (not ours to close).  ".." pops, so it can never climb
 * above the root, and every entry is the real parent of the next one. */
struct dir_stack {
  int *dirs;
  size_t len, cap;
};

static void dir_stack_init(struct dir_stack *s, int rootfd) {
  s->cap = 16;
  s->dirs = xmalloc(s->cap * sizeof(int));
  s->dirs[0] = rootfd;
  s->len = 1;
}

static int dir_stack_top(const struct dir_stack *s) { return s->dirs[s->len - 1]; }

static void dir_stack_push(struct dir_stack *s, int fd) {
  if (s->len == s->cap) {
    s->cap *= 2;
    s->dirs = xrealloc(s->dirs, s->cap * sizeof(int));
  }
  s->dirs[s->len++] = fd;
}

static void dir_stack_pop(struct dir_stack *s) {
  if (s->len > 1)
    close(s->dirs[--s->len]);
}

static void dir_stack_reset(struct dir_stack *s) {
  while (s->len > 1)
    dir_stack_pop(s);
}

static void dir_stack_free(struct dir_stack *s) {
  dir_stack_reset(s);
  free(s->dirs);
  s->dirs = NULL;
}

/* The path still to walk: a heap string consumed from the front. */
struct walk {
  struct dir_stack stack;
  char *rest;   /* remaining components */
  size_t pos;   /* start of the next component in rest */
  int symlinks; /* followed so far */
};

/* Copy the next non-empty, non-"." component into name; false at the end. */
static bool next_component(struct walk *w, char name[static NAME_MAX + 2],
                           bool *is_last) {
  for (;;) {
    const char *p = w->rest + w->pos;
    while (*p == '/')
      p++;
    if (*p == '\0') {
      w->pos = (size_t)(p - w->rest);
      return false;
    }
    size_t n = strcspn(p, "/");
    const char *after = p + n;
    while (*after == '/')
      after++;
    w->pos = (size_t)(after - w->rest);
    if (n == 1 && p[0] == '.')
      continue;
    if (n > NAME_MAX) {
      errno = ENAMETOOLONG;
      name[0] = '\0';
      return true;
    }
    memcpy(name, p, n);
    name[n] = '\0';
    *is_last = *after == '\0';
    return true;
  }
}

/* Splice a symlink's target in front of what remains of the walk. */
static int follow_symlink(struct walk *w, int linkfd) {
  if (++w->symlinks > RESOLVE_MAX_SYMLINKS) {
    errno = ELOOP;
    return -1;
  }
  char target[PATH_MAX + 1];
  ssize_t n = readlinkat(linkfd, "", target, sizeof(target) - 1);
  if (n < 0)
    return -1;
  if (n == 0) {
    errno = ENOENT;
    return -1;
  }
  target[n] = '\0';
  /* Absolute targets mean the container's /, as they would after chroot. */
  if (target[0] == '/')
    dir_stack_reset(&w->stack);
  char *rest = xasprintf("%s/%s", target, w->rest + w->pos);
  free(w->rest);
  w->rest = rest;
  w->pos = 0;
  return 0;
}

/* Create the missing component name in dirfd: a directory, or for the
 * last component of resolve_create(as_file) an empty file.  Losing a race
 * with someone else creating it is fine: the caller looks it up again. */
static int create_component(int dirfd, const char *name, bool as_file) {
  if (as_file) {
    int fd = openat(dirfd, name,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0)
      close(fd);
    return fd < 0 && errno != EEXIST ? -1 : 0;
  }
  return mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* The final open of a walk that ended on a directory ("/", "a/..", "."). */
static int open_current_dir(struct walk *w, int flags) {
  return openat(dir_stack_top(&w->stack), ".", flags | O_CLOEXEC);
}

/* Walk path inside rootfd without ever leaving it.  With create, missing
 * components are made (directories, and the last one as a file when
 * as_file) and the result is an O_PATH fd.  Returns the fd, or -1 with
 * errno set. */
static int walk_in_root(int rootfd, const char *path, int flags, bool create,
                        bool as_file) {
  if (*path == '\0') {
    errno = ENOENT; /* as open("") */
    return -1;
  }
  struct walk w = {.rest = xstrdup(path)};
  dir_stack_init(&w.stack, rootfd);
  bool nofollow_last = (flags & O_NOFOLLOW) != 0;
  bool want_dir = (flags & O_DIRECTORY) != 0;
  int result = -1;
  char name[NAME_MAX + 2];
  bool is_last = false;

  for (;;) {
    if (!next_component(&w, name, &is_last)) {
      result = open_current_dir(&w, create ? O_PATH : flags);
      break;
    }
    if (name[0] == '\0')
      break; /* ENAMETOOLONG */
    if (strcmp(name, "..") == 0) {
      dir_stack_pop(&w.stack);
      if (is_last) {
        result = open_current_dir(&w, create ? O_PATH : flags);
        break;
      }
      continue;
    }
    int dirfd = dir_stack_top(&w.stack);
    int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT || !create)
        break;
      if (create_component(dirfd, name, is_last && as_file) < 0)
        break;
      fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        break;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
      close(fd);
      break;
    }
    if (S_ISLNK(st.st_mode) && !(is_last && nofollow_last)) {
      int r = follow_symlink(&w, fd);
      close(fd);
      if (r < 0)
        break;
      continue;
    }
    if (!is_last) {
      if (!S_ISDIR(st.st_mode)) {
        close(fd);
        errno = ENOTDIR;
        break;
      }
      dir_stack_push(&w.stack, fd);
      continue;
    }
    /* The last component, and not a symlink to follow. */
    if (want_dir && !S_ISDIR(st.st_mode)) {
      close(fd);
      errno = ENOTDIR;
      break;
    }
    if (create || (flags & O_PATH)) {
      result = fd;
      break;
    }
    /* Reopen with the real flags; O_NOFOLLOW makes a symlink swapped in
     * since the check fail instead of being followed. */
    result = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    if (result >= 0) {
      struct stat now;
      if (fstat(result, &now) < 0 || now.st_dev != st.st_dev ||
          now.st_ino != st.st_ino) {
        close(result);
        result = -1;
        e = EAGAIN; /* replaced while we looked at it */
      }
    }
    close(fd);
    errno = e;
    break;
  }

  int e = errno;
  dir_stack_free(&w.stack);
  free(w.rest);
  errno = e;
  return result;
}

/* ---- public ---------------------------------------------------------------- */

static int open_in_root(int rootfd, const char *path, int flags) {
  if (!manual_walk_wanted()) {
    int fd = openat2_in_root(rootfd, path, flags);
    if (fd >= 0 || errno != ENOSYS)
      return fd;
    use_manual_walk = 1;
  }
  return walk_in_root(rootfd, path, flags, false, false);
}

int resolve_open(int rootfd, const char *path, int flags, cell_error **err) {
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
    return cell_fail(err, EINVAL, "open `%s` in the rootfs", path);
  int fd = open_in_root(rootfd, path, flags);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s` in the rootfs", path);
  return fd;
}

/* The manual walk for resolve_open_no_symlinks: each component opened
 * O_NOFOLLOW and refused if it is a symlink; ".." is refused too, since a
 * path that needs it is not an ordinary one. */
static int walk_no_symlinks(int rootfd, const char *path, int flags) {
  cleanup_free char *copy = xstrdup(path);
  cleanup_close int dir = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
  if (dir < 0)
    return -1;
  char *save = NULL;
  char *next = strtok_r(copy, "/", &save);
  while (next) {
    char *name = next;
    next = strtok_r(NULL, "/", &save);
    if (strcmp(name, ".") == 0)
      continue;
    if (strcmp(name, "..") == 0) {
      errno = ELOOP;
      return -1;
    }
    int fd = openat(dir, name, (next ? O_PATH : flags) | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) {
      close(fd);
      errno = ELOOP;
      return -1;
    }
    close(dir);
    dir = fd;
  }
  return steal_fd(&dir);
}

int resolve_open_no_symlinks(int rootfd, const char *path, int flags,
                             cell_error **err) {
  int fd = -1;
  if (!manual_walk_wanted()) {
    struct open_how how = {
        .flags = (unsigned long long)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    for (int i = 0; i < RESOLVE_OPENAT2_RETRIES; i++) {
      fd = sys_openat2(rootfd, path, &how);
      if (fd >= 0 || (errno != EAGAIN && errno != EINTR))
        break;
    }
  }
  if (fd < 0 && (manual_walk_wanted() || errno == ENOSYS))
    fd = walk_no_symlinks(rootfd, path, flags);
  if (fd < 0 && errno == ELOOP)
    return cell_fail(err, ELOOP, "`%s` is reached through a symlink", path);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s` in the rootfs", path);
  return fd;
}

int resolve_create(int rootfd, const char *path, bool as_file,
                   cell_error **err) {
  /* The common case: it is already there. */
  int fd = open_in_root(rootfd, path, O_PATH);
  if (fd >= 0)
    return fd;
  if (errno != ENOENT)
    return cell_fail_errno(err, "create `%s` in the rootfs", path);
  fd = walk_in_root(rootfd, path, O_PATH, true, as_file);
  if (fd < 0)
    return cell_fail_errno(err, "create `%s` in the rootfs", path);
  return fd;
}
