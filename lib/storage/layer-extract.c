/* A layer's tar stream applied onto a directory through fds.  libarchive
 * parses; every path is resolved and every file created here (see the
 * header for the rules and why). */
#include "storage/layer-extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/syscalls.h"
#include "base/util.h"

#define READ_BUF_SIZE (256 * 1024)
#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define OVERLAY_OPAQUE_XATTR "trusted.overlay.opaque"

/* ---- the paths this layer made (for opaque whiteouts) ------------------ */

/* An open-addressing set of strings: an opaque whiteout removes what lower
 * layers put in its directory, and must keep what this layer already
 * wrote there (the marker may come after its siblings). */
struct path_set {
  char **slots;
  size_t cap, len;
};

static size_t path_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)h;
}

static char **path_set_slot(const struct path_set *set, const char *p) {
  size_t i = path_hash(p) & (set->cap - 1);
  while (set->slots[i] != NULL && strcmp(set->slots[i], p) != 0)
    i = (i + 1) & (set->cap - 1);
  return &set->slots[i];
}

static void path_set_grow(struct path_set *set) {
  struct path_set bigger = {xcalloc(set->cap ? set->cap * 2 : 64,
                                    sizeof(char *)),
                            set->cap ? set->cap * 2 : 64, set->len};
  for (size_t i = 0; i < set->cap; i++)
    if (set->slots[i] != NULL)
      *path_set_slot(&bigger, set->slots[i]) = set->slots[i];
  free(set->slots);
  *set = bigger;
}

static void path_set_add(struct path_set *set, const char *p) {
  if ((set->len + 1) * 2 > set->cap)
    path_set_grow(set);
  char **slot = path_set_slot(set, p);
  if (*slot == NULL) {
    *slot = xstrdup(p);
    set->len++;
  }
}

static bool path_set_has(const struct path_set *set, const char *p) {
  return set->cap > 0 && *path_set_slot(set, p) != NULL;
}

/* path and its ancestors: an opaque marker in "a" must keep "a/b" when
 * this layer wrote "a/b/c" into a lower "a/b" without an entry for it. */
static void path_set_add_with_parents(struct path_set *set, const char *p) {
  cleanup_free char *copy = xstrdup(p);
  for (;;) {
    if (path_set_has(set, copy))
      return; /* its ancestors are in already */
    path_set_add(set, copy);
    char *slash = strrchr(copy, '/');
    if (slash == NULL)
      return;
    *slash = '\0';
  }
}

static void path_set_free(struct path_set *set) {
  for (size_t i = 0; i < set->cap; i++)
    free(set->slots[i]);
  free(set->slots);
}

/* ---- the extraction's state -------------------------------------------- */

/* A directory's times, set once the whole layer is in (creating entries
 * in it afterwards would change its mtime). */
struct dir_time {
  char *path;
  struct timespec times[2];
};

struct extract {
  struct archive *raw; /* the stream as read from archive_fd, decompressed */
  bool raw_done;       /* raw has no more data */
  struct archive *ar;  /* the tar read from raw */
  int archive_fd;
  layer_read_fn read_fn; /* instead of archive_fd, when set */
  void *read_ctx;
  int dirfd;
  uint64_t max_bytes, max_entries;
  enum layer_whiteouts whiteouts;
  struct layer_stats stats;
  digest_ctx *digest;      /* of the bytes read from archive_fd */
  digest_ctx *diff_digest; /* of the decompressed bytes, when compressed */
  unsigned char *read_buf;
  struct path_set made;
  struct dir_time *dirs;
  size_t ndirs, dirs_cap;
};

static void extract_free(struct extract *x) {
  if (x->ar)
    archive_read_free(x->ar);
  if (x->raw)
    archive_read_free(x->raw);
  digest_free(x->digest);
  digest_free(x->diff_digest);
  free(x->read_buf);
  path_set_free(&x->made);
  for (size_t i = 0; i < x->ndirs; i++)
    free(x->dirs[i].path);
  free(x->dirs);
}

static ssize_t read_source(struct extract *x) {
  if (x->read_fn)
    return x->read_fn(x->read_ctx, x->read_buf, READ_BUF_SIZE);
  return read(x->archive_fd, x->read_buf, READ_BUF_SIZE);
}

/* libarchive reads through here so that the digest sees every byte once. */
static la_ssize_t read_archive(struct archive *ar, void *data,
                               const void **buf) {
  struct extract *x = data;
  ssize_t n;
  do
    n = read_source(x);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    archive_set_error(ar, errno, "read the layer");
    return -1;
  }
  if (x->digest)
    digest_update(x->digest, x->read_buf, (size_t)n);
  *buf = x->read_buf;
  return n;
}

/* The tar reader reads through here: the decompressed stream, straight
 * from the raw reader's buffer (no copy), hashed once for the diff_id. */
static la_ssize_t read_decompressed(struct archive *ar, void *data,
                                    const void **buf) {
  struct extract *x = data;
  if (x->raw_done)
    return 0;
  size_t len;
  la_int64_t off;
  int r = archive_read_data_block(x->raw, buf, &len, &off);
  if (r == ARCHIVE_EOF) {
    x->raw_done = true;
    return 0;
  }
  if (r < ARCHIVE_WARN) {
    archive_set_error(ar, archive_errno(x->raw), "%s",
                      archive_error_string(x->raw));
    return -1;
  }
  if (x->diff_digest)
    digest_update(x->diff_digest, *buf, len);
  return (la_ssize_t)len;
}

/* The bytes after the tar end-of-archive blocks are part of the blob and
 * of its digests: the rest of the decompressed stream, then what the
 * decompressor left unread in archive_fd. */
static int digest_rest(struct extract *x, cell_error **err) {
  if (x->digest == NULL)
    return 0;
  const void *buf;
  la_ssize_t n;
  while ((n = read_decompressed(x->ar, x, &buf)) > 0)
    ;
  if (n < 0)
    return cell_fail(err, 0, "read the end of the layer: %s",
                     archive_error_string(x->ar));
  for (;;) {
    n = read_source(x);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return cell_fail_errno(err, "read the end of the layer");
    if (n == 0)
      return 0;
    digest_update(x->digest, x->read_buf, (size_t)n);
  }
}

/* ---- paths -------------------------------------------------------------- */

/* raw made relative to the layer's root: leading "/" stripped as tar does,
 * "." and empty components dropped; ".." refused.  "" is the root. */
static int clean_path(const char *raw, char **out, cell_error **err) {
  cleanup_free char *copy = xstrdup(raw);
  cleanup_free char *clean = xcalloc(1, strlen(raw) + 1);
  size_t depth = 0;
  char *save = NULL;
  for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0)
      continue;
    if (strcmp(c, "..") == 0)
      return cell_fail(err, 0,
                       "the path has a \"..\" component, which would leave "
                       "the layer (refused: rebuild the archive without it)");
    if (++depth > LAYER_MAX_DEPTH)
      return cell_fail(err, 0,
                       "the path is deeper than %d components (refused)",
                       LAYER_MAX_DEPTH);
    if (clean[0] != '\0')
      strcat(clean, "/");
    strcat(clean, c);
  }
  *out = steal_pointer(&clean);
  return 0;
}

/* Split path (clean, not "") into its parent ("" for the root) and its
 * last component, both pointing into path, which is modified. */
static void split_path(char *path, const char **parent, const char **base) {
  char *slash = strrchr(path, '/');
  if (slash == NULL) {
    *parent = "";
    *base = path;
    return;
  }
  *slash = '\0';
  *parent = path;
  *base = slash + 1;
}

/* openat2 beneath fd, no symlink anywhere on the way (nor magic links). */
static int open_beneath(int fd, const char *path, int flags) {
  struct open_how how = {
      .flags = (uint64_t)(flags | O_CLOEXEC),
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  int r;
  do
    r = sys_openat2(fd, path, &how);
  while (r < 0 && (errno == EAGAIN || errno == EINTR));
  return r;
}

static int fail_open_parent(const char *parent, cell_error **err) {
  if (errno == ELOOP)
    return cell_fail(err, 0,
                     "its parent \"%s\" is or goes through a symlink; writing "
                     "through a link is refused (the archive is not a safe "
                     "layer)",
                     parent);
  if (errno == ENOTDIR)
    return cell_fail(err, 0, "its parent \"%s\" is not a directory", parent);
  return cell_fail_errno(err, "open its parent \"%s\"", parent);
}

/* One missing parent, 0755 whatever the umask (a layer's tree must not
 * depend on the daemon's).  Returns its fd. */
static int make_parent(struct extract *x, int cur, const char *name,
                       const char *path, cell_error **err) {
  if (mkdirat(cur, name, 0700) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "create its parent \"%s\"", path);
  cleanup_close int fd = open_beneath(cur, name, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return fail_open_parent(path, err);
  if (fchmod(fd, 0755) < 0)
    return cell_fail_errno(err, "chmod its parent \"%s\"", path);
  if (x->whiteouts == LAYER_WHITEOUTS_APPLY)
    path_set_add_with_parents(&x->made, path);
  return steal_fd(&fd);
}

/* The parent directory, created (0755, as tar does) where missing.  Each
 * missing component is made and opened one at a time, never following a
 * symlink. */
static int make_parents(struct extract *x, const char *parent,
                        cell_error **err) {
  cleanup_free char *copy = xstrdup(parent);
  cleanup_free char *sofar = xcalloc(1, strlen(parent) + 1);
  cleanup_close int cur = fcntl(x->dirfd, F_DUPFD_CLOEXEC, 3);
  if (cur < 0)
    return cell_fail_errno(err, "dup the layer's directory fd");
  char *save = NULL;
  for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (sofar[0] != '\0')
      strcat(sofar, "/");
    strcat(sofar, c);
    int next = open_beneath(cur, c, O_PATH | O_DIRECTORY);
    if (next < 0 && errno == ENOENT)
      next = make_parent(x, cur, c, sofar, err);
    else if (next < 0)
      return fail_open_parent(sofar, err);
    if (next < 0)
      return -1;
    close(cur);
    cur = next;
  }
  return steal_fd(&cur);
}

static int open_parent(struct extract *x, const char *parent, bool create,
                       cell_error **err) {
  if (parent[0] == '\0') {
    int fd = fcntl(x->dirfd, F_DUPFD_CLOEXEC, 3);
    return fd < 0 ? cell_fail_errno(err, "dup the layer's directory fd") : fd;
  }
  int fd = open_beneath(x->dirfd, parent, O_PATH | O_DIRECTORY);
  if (fd >= 0)
    return fd;
  if (errno == ENOENT && create)
    return make_parents(x, parent, err);
  return fail_open_parent(parent, err);
}

/* ---- making room, removing --------------------------------------------- */

int layer_remove_tree(int parentfd, const char *name, cell_error **err) {
  /* cell_rm_rf_at works through fds and never follows a symlink. */
  if (cell_rm_rf_at(parentfd, name, err) < 0)
    return cell_error_wrap(err, "remove \"%s\"", name);
  return 0;
}

/* Remove what is at parentfd/name so that the entry can take its place,
 * as tar does; a directory stays when keep_dir.  Returns 1 when a
 * directory was kept, 0 when the name is free. */
static int clear_slot(int parentfd, const char *name, bool keep_dir,
                      cell_error **err) {
  struct stat st;
  if (fstatat(parentfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT)
      return 0;
    return cell_fail_errno(err, "stat what is there");
  }
  if (S_ISDIR(st.st_mode)) {
    if (keep_dir)
      return 1;
    return layer_remove_tree(parentfd, name, err);
  }
  if (unlinkat(parentfd, name, 0) < 0 && errno != ENOENT)
    return cell_fail_errno(err, "remove what is there");
  return 0;
}

/* What an entry becomes: one *at() call in its parent. */
struct node_spec {
  enum { MK_FILE, MK_DIR, MK_SYMLINK, MK_NODE, MK_LINK } kind;
  const char *what;   /* for the message: "the file", ... */
  const char *target; /* MK_SYMLINK */
  mode_t mode;        /* MK_NODE: type and permissions */
  dev_t dev;          /* MK_NODE */
  int tparentfd;      /* MK_LINK: the target's parent and name */
  const char *tbase;
};

static int create_at(int parentfd, const char *base,
                     const struct node_spec *n) {
  switch (n->kind) {
  case MK_FILE:
    return openat(parentfd, base,
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  case MK_DIR:
    return mkdirat(parentfd, base, 0700);
  case MK_SYMLINK:
    /* Whatever it points to: it is never followed while extracting. */
    return symlinkat(n->target, parentfd, base);
  case MK_NODE:
    return mknodat(parentfd, base, n->mode, n->dev);
  case MK_LINK:
    /* No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink. */
    return linkat(n->tparentfd, n->tbase, parentfd, base, 0);
  }
  errno = EINVAL;
  return -1;
}

/* Create the entry; when the name is taken, replace what is there as tar
 * does (a directory stays for a directory) and create once more.  Trying
 * first spares a stat per entry on a fresh tree.  Returns the fd for
 * MK_FILE, 0 for the others. */
static int create_replacing(int parentfd, const char *base,
                            const struct node_spec *n, cell_error **err) {
  int r = create_at(parentfd, base, n);
  if (r < 0 && errno == EEXIST) {
    int kept = clear_slot(parentfd, base, n->kind == MK_DIR, err);
    if (kept < 0)
      return -1;
    if (kept)
      return 0;
    r = create_at(parentfd, base, n);
  }
  if (r < 0)
    return cell_fail_errno(err, "create %s", n->what);
  return r;
}

/* ---- metadata ----------------------------------------------------------- */

static int check_ids(struct archive_entry *e, cell_error **err) {
  la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
  if (uid < 0 || uid > LAYER_MAX_ID || gid < 0 || gid > LAYER_MAX_ID)
    return cell_fail(err, 0,
                     "owner %lld:%lld is beyond %d, which no instance can map "
                     "(refused: rebuild the image with ids 0-%d)",
                     (long long)uid, (long long)gid, LAYER_MAX_ID,
                     LAYER_MAX_ID);
  return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2]) {
  ts[1].tv_sec = archive_entry_mtime(e);
  ts[1].tv_nsec = archive_entry_mtime_nsec(e);
  if (archive_entry_atime_is_set(e)) {
    ts[0].tv_sec = archive_entry_atime(e);
    ts[0].tv_nsec = archive_entry_atime_nsec(e);
  } else {
    ts[0] = ts[1];
  }
}

bool layer_xattr_kept(const char *name) {
  return strcmp(name, "security.capability") == 0 ||
         (strncmp(name, "user.", 5) == 0 &&
          strncmp(name, "user.overlay.", 13) != 0);
}

/* Owner, then mode (chown clears setuid/setgid), then xattrs (chown
 * clears security.capability too), on an fd of a file or directory. */
static int set_owner_mode_xattrs(int fd, struct archive_entry *e,
                                 cell_error **err) {
  if (fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
    return cell_fail_errno(err, "chown");
  if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
    return cell_fail_errno(err, "chmod");
  const char *name;
  const void *value;
  size_t size;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (!layer_xattr_kept(name))
      continue;
    if (fsetxattr(fd, name, value, size, 0) < 0)
      return cell_fail_errno(err, "set xattr %s", name);
  }
  return 0;
}

/* Owner, mode and times of a node that cannot be opened for them (FIFO,
 * device): by name in its parent, which we just created it in. */
static int set_node_metadata(int parentfd, const char *base,
                             struct archive_entry *e, bool chmod,
                             cell_error **err) {
  if (fchownat(parentfd, base, (uid_t)archive_entry_uid(e),
               (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "chown");
  if (chmod && fchmodat(parentfd, base, archive_entry_perm(e) & 07777, 0) < 0)
    return cell_fail_errno(err, "chmod");
  struct timespec ts[2];
  entry_times(e, ts);
  if (utimensat(parentfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "set times");
  return 0;
}

/* ---- entries ------------------------------------------------------------ */

static int check_size(struct extract *x, struct archive_entry *e,
                      cell_error **err) {
  la_int64_t size = archive_entry_size(e);
  if (size < 0)
    return cell_fail(err, 0, "negative size");
  if (x->max_bytes != 0 &&
      (uint64_t)size > x->max_bytes - x->stats.bytes)
    return cell_fail(err, 0,
                     "its %lld bytes take the layer past its limit of %llu "
                     "bytes (%llu already written): raise image_max_size "
                     "in celld.conf if the image is genuine",
                     (long long)size, (unsigned long long)x->max_bytes,
                     (unsigned long long)x->stats.bytes);
  x->stats.bytes += (uint64_t)size;
  return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    p += n;
    len -= (size_t)n;
    off += n;
  }
  return 0;
}

/* The contents, block by block; libarchive gives a sparse entry's data
 * with its offsets, the holes stay holes. */
static int write_contents(struct extract *x, int fd, la_int64_t size,
                          cell_error **err) {
  for (;;) {
    const void *buf;
    size_t len;
    la_int64_t off;
    int r = archive_read_data_block(x->ar, &buf, &len, &off);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return cell_fail(err, 0, "read its contents: %s",
                       archive_error_string(x->ar));
    if (off < 0 || off > size || (la_int64_t)len > size - off)
      return cell_fail(err, 0, "its data goes past its declared size");
    if (pwrite_all(fd, buf, len, (off_t)off) < 0)
      return cell_fail_errno(err, "write its contents");
  }
  if (ftruncate(fd, (off_t)size) < 0)
    return cell_fail_errno(err, "set its size");
  return 0;
}

static int make_file(struct extract *x, int parentfd, const char *base,
                     struct archive_entry *e, cell_error **err) {
  if (check_size(x, e, err) < 0)
    return -1;
  struct node_spec n = {.kind = MK_FILE, .what = "the file"};
  cleanup_close int fd = create_replacing(parentfd, base, &n, err);
  if (fd < 0)
    return -1;
  if (write_contents(x, fd, archive_entry_size(e), err) < 0 ||
      set_owner_mode_xattrs(fd, e, err) < 0)
    return -1;
  struct timespec ts[2];
  entry_times(e, ts);
  if (futimens(fd, ts) < 0)
    return cell_fail_errno(err, "set times");
  return 0;
}

static void defer_dir_times(struct extract *x, const char *path,
                            struct archive_entry *e) {
  if (x->ndirs == x->dirs_cap) {
    x->dirs_cap = x->dirs_cap ? x->dirs_cap * 2 : 64;
    x->dirs = xrealloc(x->dirs, x->dirs_cap * sizeof(*x->dirs));
  }
  x->dirs[x->ndirs].path = xstrdup(path);
  entry_times(e, x->dirs[x->ndirs].times);
  x->ndirs++;
}

static int make_dir(struct extract *x, int parentfd, const char *base,
                    const char *path, struct archive_entry *e,
                    cell_error **err) {
  struct node_spec n = {.kind = MK_DIR, .what = "the directory"};
  if (create_replacing(parentfd, base, &n, err) < 0)
    return -1;
  cleanup_close int fd = open_beneath(parentfd, base, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return cell_fail_errno(err, "open the directory");
  if (set_owner_mode_xattrs(fd, e, err) < 0)
    return -1;
  defer_dir_times(x, path, e);
  return 0;
}

static int make_symlink(int parentfd, const char *base,
                        struct archive_entry *e, cell_error **err) {
  const char *target = archive_entry_symlink(e);
  if (target == NULL || target[0] == '\0')
    return cell_fail(err, 0, "a symlink without a target");
  struct node_spec n = {.kind = MK_SYMLINK, .what = "the symlink",
                        .target = target};
  if (create_replacing(parentfd, base, &n, err) < 0)
    return -1;
  return set_node_metadata(parentfd, base, e, false, err);
}

/* The char devices a container gets by default (docker, the OCI
 * runtime-spec's default devices), and 0:0, overlayfs's whiteout. */
static bool device_allowed(unsigned int maj, unsigned int min) {
  static const unsigned int allowed[][2] = {
      {0, 0}, {1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2},
  };
  for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
    if (allowed[i][0] == maj && allowed[i][1] == min)
      return true;
  return false;
}

static int make_node(int parentfd, const char *base, struct archive_entry *e,
                     mode_t type, cell_error **err) {
  dev_t dev = 0;
  if (type == S_IFCHR) {
    unsigned int maj = (unsigned int)archive_entry_rdevmajor(e);
    unsigned int min = (unsigned int)archive_entry_rdevminor(e);
    if (!device_allowed(maj, min))
      return cell_fail(err, 0,
                       "char device %u:%u is not one a container may have "
                       "(refused; allowed: null, zero, full, random, urandom, "
                       "tty, console, ptmx)",
                       maj, min);
    dev = makedev(maj, min);
  }
  struct node_spec n = {.kind = MK_NODE, .what = "the node",
                        .mode = type | 0600, .dev = dev};
  if (create_replacing(parentfd, base, &n, err) < 0)
    return -1;
  return set_node_metadata(parentfd, base, e, true, err);
}

static int make_hardlink(struct extract *x, int parentfd, const char *base,
                         const char *path, const char *raw_target,
                         cell_error **err) {
  cleanup_free char *target = NULL;
  if (clean_path(raw_target, &target, err) < 0)
    return cell_error_wrap(err, "hardlink target \"%s\"", raw_target);
  if (target[0] == '\0' || strcmp(target, path) == 0)
    return cell_fail(err, 0, "a hardlink to \"%s\", itself or the root",
                     raw_target);
  const char *tparent, *tbase;
  split_path(target, &tparent, &tbase);
  cleanup_close int tparentfd = open_parent(x, tparent, false, err);
  struct stat st;
  if (tparentfd < 0 && (*err)->errnum != ENOENT)
    return cell_error_wrap(err, "hardlink target \"%s\"", raw_target);
  if (tparentfd < 0 || fstatat(tparentfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    cell_error_free(err);
    return cell_fail(err, 0,
                     "hardlink target \"%s\" is not in the layer (refused: "
                     "a layer's hardlinks point to its own files)",
                     raw_target);
  }
  if (S_ISDIR(st.st_mode))
    return cell_fail(err, 0, "a hardlink to the directory \"%s\"", raw_target);
  struct node_spec n = {.kind = MK_LINK, .what = "the hardlink",
                        .tparentfd = tparentfd, .tbase = tbase};
  return create_replacing(parentfd, base, &n, err) < 0 ? -1 : 0;
}

static int clear_lower(struct extract *x, int dirfd, const char *dir,
                       cell_error **err);

/* One entry of a directory being made opaque: removed when this layer
 * did not make it, looked into when it is a directory this layer made or
 * wrote into (it may hold lower entries too). */
static int clear_lower_entry(struct extract *x, int dirfd, const char *dir,
                             const char *name, cell_error **err) {
  cleanup_free char *path =
      dir[0] ? xasprintf("%s/%s", dir, name) : xstrdup(name);
  if (!path_set_has(&x->made, path))
    return layer_remove_tree(dirfd, name, err);
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "stat \"%s\"", path);
  if (!S_ISDIR(st.st_mode))
    return 0;
  cleanup_close int sub = open_beneath(dirfd, name, O_PATH | O_DIRECTORY);
  if (sub < 0)
    return cell_fail_errno(err, "open \"%s\"", path);
  return clear_lower(x, sub, path, err);
}

/* ".wh..wh..opq": hide what lower layers put in dir (dirfd), keeping what
 * this layer made, before the marker or inside directories. */
static int clear_lower(struct extract *x, int dirfd, const char *dir,
                       cell_error **err) {
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open the opaque directory");
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return cell_fail_errno(err, "read the opaque directory");
  }
  int ret = 0;
  struct dirent *de;
  while (ret == 0 && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      ret = clear_lower_entry(x, fd, dir, de->d_name, err);
  }
  closedir(d);
  return ret;
}

/* overlayfs's whiteout of parentfd/name: a char device 0:0, mode 0, owned
 * by 0:0, in place of whatever this layer put there.  It takes the times
 * of its ".wh." entry e, so that the same layer gives the same tree. */
static int make_overlay_whiteout(int parentfd, const char *name,
                                 struct archive_entry *e, cell_error **err) {
  struct node_spec n = {.kind = MK_NODE,
                        .what = "the whiteout",
                        .mode = S_IFCHR,
                        .dev = makedev(0, 0)};
  if (create_replacing(parentfd, name, &n, err) < 0)
    return -1;
  if (fchownat(parentfd, name, 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "chown the whiteout");
  /* mknod's mode went through the umask; 0 it is, whatever that was. */
  if (fchmodat(parentfd, name, 0, 0) < 0)
    return cell_fail_errno(err, "chmod the whiteout");
  struct timespec ts[2];
  entry_times(e, ts);
  if (utimensat(parentfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "set the whiteout's times");
  return 0;
}

/* overlayfs's opaque directory: the xattr on the directory itself, set
 * through an fd of it (parentfd is O_PATH, which fsetxattr refuses). */
static int make_overlay_opaque(int parentfd, cell_error **err) {
  cleanup_close int fd = open_beneath(parentfd, ".", O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return cell_fail_errno(err, "open the opaque directory");
  if (fsetxattr(fd, OVERLAY_OPAQUE_XATTR, "y", 1, 0) < 0)
    return cell_fail_errno(err, "set %s", OVERLAY_OPAQUE_XATTR);
  return 0;
}

/* A whiteout entry: returns 1 when base was one (and is applied or
 * stored), 0 when it is an ordinary name. */
static int apply_whiteout(struct extract *x, int parentfd, const char *parent,
                          const char *base, struct archive_entry *e,
                          cell_error **err) {
  if (x->whiteouts == LAYER_WHITEOUTS_NONE ||
      strncmp(base, WHITEOUT_PREFIX, 4) != 0)
    return 0;
  bool overlay = x->whiteouts == LAYER_WHITEOUTS_OVERLAY;
  if (strcmp(base, WHITEOUT_OPAQUE) == 0) {
    int r = overlay ? make_overlay_opaque(parentfd, err)
                    : clear_lower(x, parentfd, parent, err);
    return r < 0 ? -1 : 1;
  }
  const char *victim = base + strlen(WHITEOUT_PREFIX);
  if (victim[0] == '\0' || strcmp(victim, ".") == 0 ||
      strcmp(victim, "..") == 0)
    return cell_fail(err, 0, "a whiteout of \"%s\" (refused)", victim);
  int r = overlay ? make_overlay_whiteout(parentfd, victim, e, err)
                  : layer_remove_tree(parentfd, victim, err);
  return r < 0 ? -1 : 1;
}

/* The entry whose clean path is "": the layer's root itself.  Only a
 * directory makes sense there; it takes the entry's owner and mode. */
static int apply_root(struct extract *x, struct archive_entry *e,
                      cell_error **err) {
  if (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e))
    return cell_fail(err, 0, "the layer's root must be a directory");
  if (set_owner_mode_xattrs(x->dirfd, e, err) < 0)
    return -1;
  defer_dir_times(x, "", e);
  return 0;
}

static int apply_entry(struct extract *x, struct archive_entry *e,
                       const char *raw, cell_error **err) {
  cleanup_free char *path = NULL;
  if (clean_path(raw, &path, err) < 0 || check_ids(e, err) < 0)
    return -1;
  if (path[0] == '\0')
    return apply_root(x, e, err);
  cleanup_free char *full = xstrdup(path);
  const char *parent, *base;
  split_path(path, &parent, &base);
  cleanup_close int parentfd = open_parent(x, parent, true, err);
  if (parentfd < 0)
    return -1;
  int wh = apply_whiteout(x, parentfd, parent, base, e, err);
  if (wh != 0)
    return wh < 0 ? -1 : 0;
  if (x->whiteouts == LAYER_WHITEOUTS_APPLY)
    path_set_add_with_parents(&x->made, full);
  const char *hardlink = archive_entry_hardlink(e);
  if (hardlink != NULL)
    return make_hardlink(x, parentfd, base, full, hardlink, err);
  switch (archive_entry_filetype(e)) {
  case AE_IFREG:
    return make_file(x, parentfd, base, e, err);
  case AE_IFDIR:
    return make_dir(x, parentfd, base, full, e, err);
  case AE_IFLNK:
    return make_symlink(parentfd, base, e, err);
  case AE_IFCHR:
    return make_node(parentfd, base, e, S_IFCHR, err);
  case AE_IFIFO:
    return make_node(parentfd, base, e, S_IFIFO, err);
  case AE_IFBLK:
    return cell_fail(err, 0,
                     "block device %u:%u: a container may have none "
                     "(refused; the archive is not a safe layer)",
                     (unsigned int)archive_entry_rdevmajor(e),
                     (unsigned int)archive_entry_rdevminor(e));
  default:
    return cell_fail(err, 0, "file type 0%o is not one a layer may hold",
                     (unsigned int)archive_entry_filetype(e));
  }
}

/* Directories' times, now that nothing more is created in them.  One
 * removed since (by a whiteout, or replaced by a file) is skipped. */
static int apply_dir_times(struct extract *x, cell_error **err) {
  for (size_t i = 0; i < x->ndirs; i++) {
    const char *p = x->dirs[i].path;
    cleanup_close int fd = p[0] ? open_beneath(x->dirfd, p, O_RDONLY | O_DIRECTORY)
                                : fcntl(x->dirfd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP))
      continue;
    if (fd < 0)
      return cell_fail_errno(err, "open \"%s\" to set its times", p);
    if (futimens(fd, x->dirs[i].times) < 0)
      return cell_fail_errno(err, "set the times of \"%s\"", p);
  }
  return 0;
}

/* The first of two readers: archive_fd's bytes (hashed as they are read)
 * through whichever filter libarchive recognises, as one raw entry; the
 * tar reader reads that.  Two readers rather than one so that the
 * decompressed stream passes through our hands once, for the diff_id,
 * without decompressing twice. */
static int open_raw_reader(struct extract *x, cell_error **err) {
  x->raw = archive_read_new();
  if (x->raw == NULL)
    return cell_fail(err, ENOMEM, "libarchive");
  /* The filters libarchive does itself; none that would run a program. */
  archive_read_support_filter_gzip(x->raw);
  archive_read_support_filter_xz(x->raw);
  archive_read_support_filter_zstd(x->raw);
  archive_read_support_filter_bzip2(x->raw);
  archive_read_support_format_raw(x->raw);
  archive_read_support_format_empty(x->raw);
  struct archive_entry *e;
  int r = ARCHIVE_FATAL;
  if (archive_read_open(x->raw, x, NULL, read_archive, NULL) == ARCHIVE_OK)
    r = archive_read_next_header(x->raw, &e);
  if (r == ARCHIVE_EOF) { /* an empty stream */
    x->raw_done = true;
    return 0;
  }
  if (r < ARCHIVE_WARN)
    return cell_fail(err, 0, "the layer cannot be read: %s",
                     archive_error_string(x->raw));
  /* Filter 0 is the outermost; "none" when the stream is not compressed,
   * and then the diff_id is the digest. */
  if (x->digest && archive_filter_code(x->raw, 0) != ARCHIVE_FILTER_NONE)
    x->diff_digest = digest_new();
  return 0;
}

static int open_reader(struct extract *x, cell_error **err) {
  if (open_raw_reader(x, err) < 0)
    return -1;
  x->ar = archive_read_new();
  if (x->ar == NULL)
    return cell_fail(err, ENOMEM, "libarchive");
  archive_read_support_format_tar(x->ar);
  archive_read_support_format_empty(x->ar);
  if (archive_read_open(x->ar, x, NULL, read_decompressed, NULL) != ARCHIVE_OK)
    return cell_fail(err, 0, "the layer is not a tar archive: %s",
                     archive_error_string(x->ar));
  return 0;
}

static int extract_all(struct extract *x, cell_error **err) {
  if (open_reader(x, err) < 0)
    return -1;
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(x->ar, &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return cell_fail(err, 0,
                       "the layer is not a valid tar archive after %llu "
                       "entries: %s",
                       (unsigned long long)x->stats.entries,
                       archive_error_string(x->ar));
    if (x->max_entries != 0 && x->stats.entries == x->max_entries)
      return cell_fail(err, 0,
                       "the layer has more than %llu entries, its limit: "
                       "raise image_max_entries in celld.conf if the image "
                       "is genuine",
                       (unsigned long long)x->max_entries);
    const char *raw = archive_entry_pathname(e);
    if (raw == NULL || raw[0] == '\0')
      return cell_fail(err, 0, "entry %llu of the layer has no name",
                       (unsigned long long)x->stats.entries + 1);
    if (apply_entry(x, e, raw, err) < 0)
      return cell_error_wrap(err, "layer entry \"%s\"", raw);
    x->stats.entries++;
  }
  return apply_dir_times(x, err) < 0 ? -1 : digest_rest(x, err);
}

static int extract_with(struct extract *src, int dirfd,
                        const struct layer_limits *lim,
                        enum layer_whiteouts whiteouts,
                        struct layer_stats *stats, cell_error **err) {
  struct extract x = {
      .archive_fd = src->archive_fd,
      .read_fn = src->read_fn,
      .read_ctx = src->read_ctx,
      .dirfd = dirfd,
      .max_bytes = lim ? lim->max_bytes : 0,
      .max_entries = lim ? lim->max_entries : 0,
      .whiteouts = whiteouts,
      /* The digest costs as much CPU as the rest: only when asked. */
      .digest = stats ? digest_new() : NULL,
      .read_buf = xmalloc(READ_BUF_SIZE),
  };
  int r = extract_all(&x, err);
  if (r == 0 && stats) {
    digest_final(x.digest, x.stats.digest);
    if (x.diff_digest)
      digest_final(x.diff_digest, x.stats.diff_id);
    else
      memcpy(x.stats.diff_id, x.stats.digest, DIGEST_STR_LEN);
    *stats = x.stats;
  }
  extract_free(&x);
  return r;
}

int layer_extract(int archive_fd, int dirfd, const struct layer_limits *lim,
                  enum layer_whiteouts whiteouts, struct layer_stats *stats,
                  cell_error **err) {
  struct extract src = {.archive_fd = archive_fd};
  return extract_with(&src, dirfd, lim, whiteouts, stats, err);
}

int layer_extract_from(layer_read_fn read_fn, void *ctx, int dirfd,
                       const struct layer_limits *lim,
                       enum layer_whiteouts whiteouts,
                       struct layer_stats *stats, cell_error **err) {
  struct extract src = {.archive_fd = -1, .read_fn = read_fn, .read_ctx = ctx};
  return extract_with(&src, dirfd, lim, whiteouts, stats, err);
}
