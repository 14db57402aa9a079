/* oci-archive: unpack the few names an OCI layout has, nothing else, then
 * read the layout.  See oci-archive.h. */
#include "storage/oci-archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

/* oci-layout is a one-line JSON; index.json is bounded like every JSON. */
#define OCI_LAYOUT_FILE_MAX 4096

static void archive_freep(struct archive **a) {
  if (*a)
    archive_read_free(*a);
}

static bool is_blob_name(const char *name) {
  static const char prefix[] = "blobs/sha256/";
  if (strncmp(name, prefix, sizeof(prefix) - 1) != 0)
    return false;
  const char *hex = name + sizeof(prefix) - 1;
  if (strlen(hex) != 64)
    return false;
  for (; *hex; hex++)
    if (!((*hex >= '0' && *hex <= '9') || (*hex >= 'a' && *hex <= 'f')))
      return false;
  return true;
}

/* The most bytes an entry of this name may have; 0 when the name is not
 * one of a layout's (the entry is skipped). */
static int64_t wanted_entry_max(const char *name) {
  if (strcmp(name, "oci-layout") == 0)
    return OCI_LAYOUT_FILE_MAX;
  if (strcmp(name, "index.json") == 0)
    return OCI_IMAGE_MAX_JSON;
  if (is_blob_name(name))
    return INT64_MAX;
  return 0;
}

/* Copy the current entry's data into a new file name beneath dirfd.
 * O_EXCL: a second entry of the same name is an error, not a replacement. */
static int unpack_entry(struct archive *a, int dirfd, const char *name,
                        cell_error **err) {
  cleanup_close int fd = openat(dirfd, name,
                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                    O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST)
    return cell_fail(err, EEXIST, "`%s` is in the archive twice", name);
  if (fd < 0)
    return cell_fail_errno(err, "create `%s`", name);
  const void *buf;
  size_t len;
  int64_t offset;
  int r;
  while ((r = archive_read_data_block(a, &buf, &len, &offset)) == ARCHIVE_OK) {
    if (pwrite(fd, buf, len, offset) != (ssize_t)len)
      return cell_fail_errno(err, "write `%s`", name);
  }
  if (r != ARCHIVE_EOF)
    return cell_fail(err, EIO, "`%s`: %s", name, archive_error_string(a));
  return 0;
}

static const char *entry_name(struct archive_entry *e) {
  const char *name = archive_entry_pathname(e);
  while (name && strncmp(name, "./", 2) == 0)
    name += 2;
  return name;
}

static int unpack_layout(int archive_fd, int dirfd, cell_error **err) {
  __attribute__((cleanup(archive_freep))) struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  archive_read_support_filter_gzip(a);
  if (archive_read_open_fd(a, archive_fd, 1 << 16) != ARCHIVE_OK)
    return cell_fail(err, EINVAL, "not a tar archive: %s",
                     archive_error_string(a));
  struct archive_entry *e;
  int r;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *name = entry_name(e);
    int64_t max = name ? wanted_entry_max(name) : 0;
    if (max == 0 || archive_entry_filetype(e) != AE_IFREG)
      continue; /* directories, links, anything else: not needed */
    if (archive_entry_size(e) > max)
      return cell_fail(err, EFBIG, "`%s` in the archive: %lld bytes, more "
                       "than the %lld allowed", name,
                       (long long)archive_entry_size(e), (long long)max);
    if (unpack_entry(a, dirfd, name, err) < 0)
      return cell_error_wrap(err, "oci-archive");
  }
  if (r != ARCHIVE_EOF)
    return cell_fail(err, EINVAL, "oci-archive: %s", archive_error_string(a));
  return 0;
}

/* mkdir a fresh 0700 directory beneath dirfd; its name goes to name. */
static int make_private_dir(int dirfd, char name[64], cell_error **err) {
  static unsigned counter;
  for (int tries = 0; tries < 100; tries++) {
    snprintf(name, 64, ".oci-archive-%d-%lx-%u", (int)getpid(),
             (unsigned long)time(NULL), counter++);
    if (mkdirat(dirfd, name, 0700) == 0)
      return 0;
    if (errno != EEXIST)
      return cell_fail_errno(err, "make a directory to unpack the archive");
  }
  return cell_fail(err, EEXIST, "make a directory to unpack the archive: "
                   "every name taken");
}

static int read_unpacked(int archive_fd, int dirfd, const char *ref,
                         struct oci_image **out, cell_error **err) {
  if (mkdirat(dirfd, "blobs", 0700) < 0 ||
      mkdirat(dirfd, "blobs/sha256", 0700) < 0)
    return cell_fail_errno(err, "make blobs/sha256 to unpack the archive");
  if (unpack_layout(archive_fd, dirfd, err) < 0)
    return -1;
  return oci_image_read_layout(dirfd, ref, out, err);
}

int oci_image_read_oci_archive(int archive_fd, int work_dirfd, const char *ref,
                               struct oci_image **out, cell_error **err) {
  char name[64];
  if (make_private_dir(work_dirfd, name, err) < 0)
    return -1;
  int dirfd = openat(work_dirfd, name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int r = dirfd < 0 ? cell_fail_errno(err, "open `%s`", name)
                    : read_unpacked(archive_fd, dirfd, ref, out, err);
  if (dirfd >= 0)
    close(dirfd);
  /* The layer fds hold their blobs; the names are no longer needed. */
  cleanup_error cell_error *rm_err = NULL;
  if (cell_rm_rf_at(work_dirfd, name, &rm_err) < 0 && r == 0) {
    oci_image_free(*out);
    *out = NULL;
    *err = steal_pointer(&rm_err);
    return cell_error_wrap(err, "remove the unpacked archive");
  }
  return r;
}
