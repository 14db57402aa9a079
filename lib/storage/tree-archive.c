/* A directory tree as a deterministic tar stream, walked through fds (see
 * the header for the rules and why). */
#include "storage/tree-archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "storage/layer-extract.h"

#define COPY_BUF_SIZE (256 * 1024)
/* What the writer hands write_out at a time (a pipe's default size). */
#define OUT_BLOCK_SIZE (64 * 1024)

/* ---- inodes already written (for hardlinks) ---------------------------- */

struct inode_name {
  dev_t dev;
  ino_t ino;
  char *path; /* the first name it was written under; NULL: free slot */
};

/* An open-addressing map from (dev, ino) to the first name written. */
struct inode_map {
  struct inode_name *slots;
  size_t cap, len;
};

static struct inode_name *inode_slot(const struct inode_map *m, dev_t dev,
                                     ino_t ino) {
  uint64_t h = ((uint64_t)ino * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)dev;
  size_t i = (size_t)h & (m->cap - 1);
  while (m->slots[i].path != NULL &&
         (m->slots[i].dev != dev || m->slots[i].ino != ino))
    i = (i + 1) & (m->cap - 1);
  return &m->slots[i];
}

static void inode_map_grow(struct inode_map *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  struct inode_map bigger = {xcalloc(cap, sizeof(struct inode_name)), cap,
                             m->len};
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].path != NULL)
      *inode_slot(&bigger, m->slots[i].dev, m->slots[i].ino) = m->slots[i];
  free(m->slots);
  *m = bigger;
}

/* The name st was first written under, or NULL after recording path as
 * that name. */
static const char *inode_seen(struct inode_map *m, const struct stat *st,
                              const char *path) {
  if ((m->len + 1) * 2 > m->cap)
    inode_map_grow(m);
  struct inode_name *slot = inode_slot(m, st->st_dev, st->st_ino);
  if (slot->path != NULL)
    return slot->path;
  *slot = (struct inode_name){st->st_dev, st->st_ino, xstrdup(path)};
  m->len++;
  return NULL;
}

static void inode_map_free(struct inode_map *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->slots[i].path);
  free(m->slots);
}

/* ---- the writer --------------------------------------------------------- */

struct tree_writer {
  struct archive *ar;
  int out_fd;
  int write_errno; /* of the write to out_fd that failed */
  bool failed;     /* out_fd gets nothing more */
  uint64_t bytes;
  bool oci; /* whiteouts in the OCI form, owners container-relative */
  struct inode_map inodes;
  char *copy_buf;
  const struct tree_archive_opts *opts; /* never NULL */
};

/* libarchive writes through here; a failed write (EPIPE: the reader is
 * gone) fails the archive call that caused it. */
static la_ssize_t write_out(struct archive *ar, void *data, const void *buf,
                            size_t len) {
  struct tree_writer *w = data;
  if (w->failed)
    return (la_ssize_t)len;
  if (cell_write_all(w->out_fd, buf, len) < 0) {
    w->write_errno = errno;
    archive_set_error(ar, errno, "write the archive");
    return -1;
  }
  return (la_ssize_t)len;
}

static int fail_archive(struct tree_writer *w, const char *what,
                        cell_error **err) {
  const char *why = archive_error_string(w->ar);
  return cell_fail(err, w->write_errno, "%s: %s", what,
                   why ? why : "libarchive failed");
}

static int open_writer(struct tree_writer *w, cell_error **err) {
  w->ar = archive_write_new();
  if (w->ar == NULL)
    return cell_fail(err, ENOMEM, "libarchive");
  /* ustar unless an entry needs more (long names, xattrs): the same
   * tree, the same bytes, without a pax header per entry. */
  archive_write_set_format_pax_restricted(w->ar);
  archive_write_set_bytes_per_block(w->ar, OUT_BLOCK_SIZE);
  /* No padding after the end-of-archive blocks. */
  archive_write_set_bytes_in_last_block(w->ar, 1);
  if (archive_write_open(w->ar, w, NULL, write_out, NULL) != ARCHIVE_OK)
    return fail_archive(w, "start the archive", err);
  return 0;
}

/* ---- entries ------------------------------------------------------------ */

static void entry_freep(struct archive_entry **e) {
  if (*e)
    archive_entry_free(*e);
}
#define cleanup_entry __attribute__((cleanup(entry_freep)))

/* An entry of st, with only what the header promises (no atime, ctime,
 * names, inode numbers): the same inode, the same entry. */
static struct archive_entry *entry_of(const char *path, const struct stat *st) {
  struct archive_entry *e = archive_entry_new();
  if (e == NULL)
    abort(); /* as xmalloc does */
  archive_entry_set_pathname(e, path);
  archive_entry_set_filetype(e, st->st_mode & S_IFMT);
  archive_entry_set_perm(e, st->st_mode & 07777);
  archive_entry_set_uid(e, st->st_uid);
  archive_entry_set_gid(e, st->st_gid);
  /* Whole seconds: sub-second times would cost a pax header per entry. */
  archive_entry_set_mtime(e, st->st_mtim.tv_sec, 0);
  archive_entry_set_size(e, 0);
  if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
    archive_entry_set_rdevmajor(e, major(st->st_rdev));
    archive_entry_set_rdevminor(e, minor(st->st_rdev));
  }
  return e;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The kept xattr names of fd, sorted, NULL-terminated (flistxattr's order
 * is the filesystem's). */
static char **xattr_names(int fd, cell_error **err) {
  ssize_t len = flistxattr(fd, NULL, 0);
  if (len < 0)
    return cell_fail_errno(err, "list its xattrs"), NULL;
  cleanup_free char *list = xmalloc((size_t)len + 1);
  len = flistxattr(fd, list, (size_t)len);
  if (len < 0)
    return cell_fail_errno(err, "list its xattrs"), NULL;
  size_t n = 0;
  char **names = xcalloc((size_t)len + 1, sizeof(char *));
  for (char *p = list; p < list + len; p += strlen(p) + 1)
    if (layer_xattr_kept(p))
      names[n++] = xstrdup(p);
  qsort(names, n, sizeof(char *), cmp_names);
  return names;
}

static int add_xattrs(struct archive_entry *e, int fd, cell_error **err) {
  cleanup_strv char **names = xattr_names(fd, err);
  if (names == NULL)
    return -1;
  for (char **n = names; *n; n++) {
    ssize_t size = fgetxattr(fd, *n, NULL, 0);
    if (size < 0)
      return cell_fail_errno(err, "read xattr %s", *n);
    cleanup_free char *value = xmalloc((size_t)size + 1);
    size = fgetxattr(fd, *n, value, (size_t)size);
    if (size < 0)
      return cell_fail_errno(err, "read xattr %s", *n);
    archive_entry_xattr_add_entry(e, *n, value, (size_t)size);
  }
  return 0;
}

/* An owner as opts say it is written: shifted into the range's view. */
static la_int64_t mapped_id(const struct tree_archive_opts *o, la_int64_t id) {
  if (o->id_count == 0)
    return id;
  if (id < (la_int64_t)o->id_base ||
      id - (la_int64_t)o->id_base >= (la_int64_t)o->id_count)
    return 65534;
  return id - (la_int64_t)o->id_base;
}

static int write_header(struct tree_writer *w, struct archive_entry *e,
                        cell_error **err) {
  archive_entry_set_uid(e, mapped_id(w->opts, archive_entry_uid(e)));
  archive_entry_set_gid(e, mapped_id(w->opts, archive_entry_gid(e)));
  if (w->opts->drop_setid && archive_entry_filetype(e) != AE_IFDIR)
    archive_entry_set_perm(e, archive_entry_perm(e) & ~(mode_t)06000);
  if (archive_write_header(w->ar, e) < ARCHIVE_WARN)
    return fail_archive(w, "write its header", err);
  return 0;
}

/* fd, opened from the name that fstatat gave st for, must still be that
 * inode: a name replaced in between is not archived as a mix of both. */
static int check_same_inode(int fd, const struct stat *st, struct stat *now,
                            cell_error **err) {
  if (fstat(fd, now) < 0)
    return cell_fail_errno(err, "stat it");
  if (now->st_dev != st->st_dev || now->st_ino != st->st_ino ||
      (now->st_mode & S_IFMT) != (st->st_mode & S_IFMT))
    return cell_fail(err, 0, "it was replaced while being archived");
  return 0;
}

/* ---- the OCI form of overlayfs's whiteouts ------------------------------ */

static bool is_overlay_whiteout(const struct stat *st) {
  return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

/* An id above the range cannot be mapped into an instance: such an entry
 * in a tree meant to be container-relative is a tree in host ids (a
 * copy-mode layer), which must not travel as one. */
static int check_oci_ids(const struct tree_writer *w, const struct stat *st,
                         cell_error **err) {
  if (w->oci && (st->st_uid > LAYER_MAX_ID || st->st_gid > LAYER_MAX_ID))
    return cell_fail(err, 0,
                     "owned by %u:%u, beyond the container's ids (0..%d)",
                     (unsigned int)st->st_uid, (unsigned int)st->st_gid,
                     LAYER_MAX_ID);
  return 0;
}

/* An empty regular file owned by 0:0: what OCI whiteouts are made of.
 * It has the mtime of what it stands for (layer_extract gives it back to
 * the whiteout it makes), so that the same tree gives the same bytes. */
static int write_marker(struct tree_writer *w, const char *path,
                        time_t mtime, cell_error **err) {
  struct stat st = {.st_mode = S_IFREG | 0644};
  st.st_mtim.tv_sec = mtime;
  cleanup_entry struct archive_entry *e = entry_of(path, &st);
  return write_header(w, e, err);
}

/* The whiteout NAME (a 0:0 char device) as ".wh.NAME" beside it.  Its
 * owner is whatever overlayfs gave it (not an id of the instance), so it
 * is not looked at. */
static int write_oci_whiteout(struct tree_writer *w, const char *name,
                              const char *path, const struct stat *st,
                              cell_error **err) {
  size_t dir_len = strlen(path) - strlen(name);
  cleanup_free char *marker =
      xasprintf("%.*s.wh.%s", (int)dir_len, path, name);
  return write_marker(w, marker, st->st_mtim.tv_sec, err);
}

/* What overlayfs says of a directory in xattrs we cannot carry: a
 * redirect (a renamed lower directory) or a metacopy (contents still in
 * the lower layer).  Written as they are, they would lose data. */
static int check_overlay_xattrs(int fd, cell_error **err) {
  static const char *const refused[] = {"trusted.overlay.redirect",
                                        "trusted.overlay.metacopy"};
  for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
    if (fgetxattr(fd, refused[i], NULL, 0) >= 0)
      return cell_fail(err, 0, "it has %s, which a layer cannot carry",
                       refused[i]);
  return 0;
}

/* A directory overlayfs made opaque gets ".wh..wh..opq", right after it. */
static int write_oci_opaque(struct tree_writer *w, int fd, const char *path,
                            cell_error **err) {
  if (!w->oci)
    return 0;
  if (check_overlay_xattrs(fd, err) < 0)
    return -1;
  char value[2];
  ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", value, sizeof(value));
  if (n != 1 || value[0] != 'y')
    return 0;
  const char *sep = path[strlen(path) - 1] == '/' ? "" : "/";
  cleanup_free char *marker = xasprintf("%s%s.wh..wh..opq", path, sep);
  return write_marker(w, marker, 0, err);
}

/* ---- the walk ----------------------------------------------------------- */

static int report_skipped(const struct tree_writer *w, const char *path,
                          const char *why) {
  if (w->opts->skipped)
    w->opts->skipped(w->opts->ctx, path, why);
  return 0;
}

/* Why opts leave out an entry of this type, or NULL. */
static const char *special_left_out(const struct tree_writer *w,
                                    const struct stat *st) {
  if (!w->opts->plain_only)
    return NULL;
  switch (st->st_mode & S_IFMT) {
  case S_IFCHR:
  case S_IFBLK:
    return "a device";
  case S_IFIFO:
    return "a FIFO";
  case S_IFSOCK:
    return "a socket";
  }
  return NULL;
}

static int write_dir_contents(struct tree_writer *w, int dirfd,
                              const char *path, unsigned int depth,
                              cell_error **err);

static int copy_contents(struct tree_writer *w, int fd, off_t size,
                         cell_error **err) {
  off_t done = 0;
  while (done < size) {
    size_t want = (size_t)(size - done) < COPY_BUF_SIZE ? (size_t)(size - done)
                                                        : COPY_BUF_SIZE;
    ssize_t n = read(fd, w->copy_buf, want);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return cell_fail_errno(err, "read it");
    if (n == 0)
      return cell_fail(err, 0, "it shrank while being archived");
    if (archive_write_data(w->ar, w->copy_buf, (size_t)n) != n)
      return fail_archive(w, "write its contents", err);
    done += n;
  }
  w->bytes += (uint64_t)size;
  return 0;
}

static int write_file(struct tree_writer *w, int dirfd, const char *name,
                      const char *path, const struct stat *st,
                      cell_error **err) {
  /* O_NONBLOCK: should a FIFO have taken the name, open must not wait. */
  cleanup_close int fd =
      openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open it");
  struct stat now;
  if (check_same_inode(fd, st, &now, err) < 0)
    return -1;
  if (w->oci && check_overlay_xattrs(fd, err) < 0)
    return -1;
  cleanup_entry struct archive_entry *e = entry_of(path, &now);
  archive_entry_set_size(e, now.st_size);
  if (add_xattrs(e, fd, err) < 0 || write_header(w, e, err) < 0)
    return -1;
  return copy_contents(w, fd, now.st_size, err);
}

static int write_dir(struct tree_writer *w, int dirfd, const char *name,
                     const char *path, const struct stat *st,
                     unsigned int depth, cell_error **err) {
  cleanup_close int fd =
      openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open it");
  struct stat now;
  if (check_same_inode(fd, st, &now, err) < 0)
    return -1;
  const char *why = w->opts->skip_dir ? w->opts->skip_dir(w->opts->ctx, fd)
                                      : NULL;
  if (why)
    return report_skipped(w, path, why);
  cleanup_entry struct archive_entry *e = entry_of(path, &now);
  if (add_xattrs(e, fd, err) < 0 || write_header(w, e, err) < 0 ||
      write_oci_opaque(w, fd, path, err) < 0)
    return -1;
  return write_dir_contents(w, fd, path, depth, err);
}

static int write_symlink(struct tree_writer *w, int dirfd, const char *name,
                         const char *path, const struct stat *st,
                         cell_error **err) {
  char target[PATH_MAX];
  ssize_t n = readlinkat(dirfd, name, target, sizeof(target));
  if (n < 0)
    return cell_fail_errno(err, "read the symlink");
  if ((size_t)n >= sizeof(target))
    return cell_fail(err, 0, "its target is longer than %d bytes", PATH_MAX);
  target[n] = '\0';
  cleanup_entry struct archive_entry *e = entry_of(path, st);
  archive_entry_set_symlink(e, target);
  return write_header(w, e, err);
}

/* A second name of an inode already written: a hardlink to the first. */
static int write_hardlink(struct tree_writer *w, const char *path,
                          const char *first, const struct stat *st,
                          cell_error **err) {
  cleanup_entry struct archive_entry *e = entry_of(path, st);
  archive_entry_set_hardlink(e, first);
  return write_header(w, e, err);
}

/* One name of a directory, written as what it is. */
static int write_node(struct tree_writer *w, int dirfd, const char *name,
                      const char *path, unsigned int depth, cell_error **err) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return cell_fail_errno(err, "stat it");
  const char *why = special_left_out(w, &st);
  if (why)
    return report_skipped(w, path, why);
  if (S_ISSOCK(st.st_mode))
    return 0; /* a socket means nothing without its process */
  if (depth > LAYER_MAX_DEPTH)
    return cell_fail(err, 0, "it is deeper than %d components",
                     LAYER_MAX_DEPTH);
  /* Before the hardlink check: overlayfs makes its whiteouts as links
   * of one inode. */
  if (w->oci && is_overlay_whiteout(&st))
    return write_oci_whiteout(w, name, path, &st, err);
  if (check_oci_ids(w, &st, err) < 0)
    return -1;
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !w->opts->no_hardlinks) {
    const char *first = inode_seen(&w->inodes, &st, path);
    if (first != NULL)
      return write_hardlink(w, path, first, &st, err);
  }
  switch (st.st_mode & S_IFMT) {
  case S_IFREG:
    return write_file(w, dirfd, name, path, &st, err);
  case S_IFDIR:
    return write_dir(w, dirfd, name, path, &st, depth, err);
  case S_IFLNK:
    return write_symlink(w, dirfd, name, path, &st, err);
  case S_IFCHR:
  case S_IFBLK:
  case S_IFIFO: {
    cleanup_entry struct archive_entry *e = entry_of(path, &st);
    return write_header(w, e, err);
  }
  default:
    return cell_fail(err, 0, "file type 0%o cannot be archived",
                     (unsigned int)(st.st_mode & S_IFMT));
  }
}

/* The names in dirfd but "." and "..", sorted by strcmp,
 * NULL-terminated. */
static char **sorted_names(int dirfd, cell_error **err) {
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open the directory"), NULL;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return cell_fail_errno(err, "read the directory"), NULL;
  }
  size_t n = 0, cap = 16;
  char **names = xcalloc(cap, sizeof(char *));
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (n + 1 == cap) {
      cap *= 2;
      names = xrealloc(names, cap * sizeof(char *));
    }
    names[n++] = xstrdup(de->d_name);
    names[n] = NULL;
  }
  int read_errno = errno;
  closedir(d);
  if (read_errno != 0) {
    cell_strv_free(names);
    return cell_fail(err, read_errno, "read the directory"), NULL;
  }
  qsort(names, n, sizeof(char *), cmp_names);
  return names;
}

static int write_dir_contents(struct tree_writer *w, int dirfd,
                              const char *path, unsigned int depth,
                              cell_error **err) {
  cleanup_strv char **names = sorted_names(dirfd, err);
  if (names == NULL)
    return cell_error_wrap(err, "\"%s\"", path);
  const char *sep = path[strlen(path) - 1] == '/' ? "" : "/";
  for (char **n = names; *n; n++) {
    cleanup_free char *child = xasprintf("%s%s%s", path, sep, *n);
    if (write_node(w, dirfd, *n, child, depth + 1, err) < 0)
      return cell_error_wrap(err, "\"%s\"", child);
  }
  return 0;
}

/* The directory itself as "./" (its owner, mode and xattrs), then all it
 * holds. */
static int write_root(struct tree_writer *w, int dirfd, cell_error **err) {
  /* Opened again: dirfd may be O_PATH, which cannot list xattrs. */
  cleanup_close int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0)
    return cell_fail_errno(err, "open the directory");
  cleanup_entry struct archive_entry *e = entry_of("./", &st);
  if (check_oci_ids(w, &st, err) < 0 || add_xattrs(e, fd, err) < 0 ||
      write_header(w, e, err) < 0 || write_oci_opaque(w, fd, "./", err) < 0)
    return cell_error_wrap(err, "\"./\"");
  return write_dir_contents(w, fd, "./", 0, err);
}

static int write_tree(int dirfd, int out_fd, bool oci,
                      const struct tree_archive_opts *opts,
                      uint64_t *bytes_out, cell_error **err) {
  static const struct tree_archive_opts none;
  struct tree_writer w = {.out_fd = out_fd,
                          .oci = oci,
                          .copy_buf = xmalloc(COPY_BUF_SIZE),
                          .opts = opts ? opts : &none};
  int r = open_writer(&w, err);
  if (r == 0)
    r = write_root(&w, dirfd, err);
  /* Close writes the end-of-archive blocks: only after a whole tree.
   * After a failure out_fd gets nothing more, so that a reader sees a
   * truncated stream, not a shorter tree that looks whole. */
  if (r == 0 && archive_write_close(w.ar) != ARCHIVE_OK)
    r = fail_archive(&w, "finish the archive", err);
  w.failed = r < 0;
  if (w.ar)
    archive_write_free(w.ar);
  inode_map_free(&w.inodes);
  free(w.copy_buf);
  if (r == 0 && bytes_out)
    *bytes_out = w.bytes;
  return r < 0 ? cell_error_wrap(err, "archive the tree") : 0;
}

int tree_archive_write(int dirfd, int out_fd, uint64_t *bytes_out,
                       cell_error **err) {
  return write_tree(dirfd, out_fd, false, NULL, bytes_out, err);
}

int tree_archive_write_with(int dirfd, int out_fd,
                            const struct tree_archive_opts *opts,
                            uint64_t *bytes_out, cell_error **err) {
  return write_tree(dirfd, out_fd, false, opts, bytes_out, err);
}

int tree_archive_write_oci(int dirfd, int out_fd, uint64_t *bytes_out,
                           cell_error **err) {
  return write_tree(dirfd, out_fd, true, NULL, bytes_out, err);
}
