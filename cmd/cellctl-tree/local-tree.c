/* A tree pulled out of an instance, extracted on the caller's side
 * (local-tree.h). */
#include "local-tree.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/util.h"

static void archive_freep(struct archive **a) {
  if (*a)
    archive_free(*a);
}
#define cleanup_archive __attribute__((cleanup(archive_freep)))

static int archive_fail(struct archive *ar, const char *what,
                        cell_error **err) {
  const char *why = archive_error_string(ar);
  return cell_fail(err, archive_errno(ar), "%s: %s", what,
                   why ? why : "libarchive failed");
}

/* The stream from celld broke off: its answer says why. */
static int stream_fail(struct archive *in, cell_error **err) {
  const char *why = archive_error_string(in);
  return cell_fail(err, EPIPE, "read the tree: %s",
                   why ? why : "libarchive failed");
}

static int copy_entry_data(struct archive *in, struct archive *out,
                           const char *name, cell_error **err) {
  for (;;) {
    const void *buf;
    size_t size;
    la_int64_t offset;
    int r = archive_read_data_block(in, &buf, &size, &offset);
    if (r == ARCHIVE_EOF)
      return 0;
    if (r < ARCHIVE_WARN)
      return stream_fail(in, err);
    if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
      return archive_fail(out, name, err);
  }
}

/* Every entry of the stream, written beneath the current directory (the
 * one being made). */
static int extract_entries(struct archive *in, struct archive *out,
                           cell_error **err) {
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(in, &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return stream_fail(in, err);
    const char *name = archive_entry_pathname(e);
    if (archive_write_header(out, e) < ARCHIVE_WARN)
      return archive_fail(out, name, err);
    if (archive_entry_size(e) > 0 && copy_entry_data(in, out, name, err) < 0)
      return -1;
    if (archive_write_finish_entry(out) < ARCHIVE_WARN)
      return archive_fail(out, name, err);
  }
  if (archive_write_close(out) != ARCHIVE_OK)
    return archive_fail(out, "finish the tree", err);
  return 0;
}

static int extract_stream(int fd, cell_error **err) {
  cleanup_archive struct archive *in = archive_read_new();
  cleanup_archive struct archive *out = archive_write_disk_new();
  if (!in || !out)
    return cell_fail(err, ENOMEM, "libarchive");
  archive_read_support_format_tar(in);
  archive_read_support_format_empty(in);
  int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
              ARCHIVE_EXTRACT_SECURE_SYMLINKS |
              ARCHIVE_EXTRACT_SECURE_NODOTDOT |
              ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
  /* Root keeps the instance's owners (its own ids, as cp -a would). */
  if (geteuid() == 0)
    flags |= ARCHIVE_EXTRACT_OWNER;
  archive_write_disk_set_options(out, flags);
  if (archive_read_open_fd(in, fd, 64 * 1024) != ARCHIVE_OK)
    return stream_fail(in, err);
  return extract_entries(in, out, err);
}

/* The extraction works beneath the current directory, which is dirfd
 * meanwhile. */
int local_tree_extract(int dirfd, int fd, cell_error **err) {
  cleanup_close int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (here < 0 || fchdir(dirfd) < 0)
    return cell_fail_errno(err, "enter the directory being made");
  int r = extract_stream(fd, err);
  if (fchdir(here) < 0 && r == 0)
    return cell_fail_errno(err, "leave the directory being made");
  return r;
}
