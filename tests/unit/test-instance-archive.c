/* instance_archive_write and instance_archive_read: an instance's stream
 * read back gives its record, its image, its layer (unless the store has
 * it) and its disk, whiteouts and all; a stream cut short, one whose part
 * differs from its digest and one whose parts come out of order are
 * refused.  A migration's stream with its layers apart carries the disk
 * alone: its layer must be in the store or read apart first. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "storage/instance-archive.h"
#include "unit.h"

#define LAYER_HEX "1111111111111111111111111111111111111111111111111111111111111111"
#define LAYER_NAME "sha256:" LAYER_HEX

#define ZERO_SHA \
  "sha256:0000000000000000000000000000000000000000000000000000000000000000"

static char base[PATH_MAX];
static int basefd = -1;

static void must(int r, const char *what) {
  if (r < 0) {
    perror(what);
    exit(2);
  }
}

static int fresh_dir(int parent, const char *name) {
  cell_error *err = NULL;
  if (layer_remove_tree(parent, name, &err) < 0) {
    fprintf(stderr, "%s\n", err->msg);
    exit(2);
  }
  must(mkdirat(parent, name, 0755), name);
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fd, name);
  return fd;
}

static void put_file(int dirfd, const char *rel, const char *data) {
  int fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  must(fd, rel);
  must((int)cell_write_all(fd, data, strlen(data)), rel);
  close(fd);
}

static char *read_text(int dirfd, const char *rel) {
  char *text = NULL;
  size_t len = 0;
  cleanup_error cell_error *err = NULL;
  if (cell_read_file_at(dirfd, rel, 0, &text, &len, &err) < 0)
    return xstrdup("");
  return text;
}

/* The sender: store/layers/<hex>/ (a file, a whiteout) and upper/ (a
 * file, an opaque directory, a whiteout as overlayfs makes them). */
static void build_sender(int *layersfd, int *upperfd, int *spoolfd) {
  cleanup_close int store = fresh_dir(basefd, "store");
  *layersfd = fresh_dir(store, "layers");
  cleanup_close int layer = fresh_dir(*layersfd, LAYER_HEX);
  must(mkdirat(layer, "etc", 0755), "etc");
  put_file(layer, "etc/os", "busybox\n");
  must(mknodat(layer, "etc/gone", S_IFCHR, makedev(0, 0)), "whiteout");
  *upperfd = fresh_dir(basefd, "upper");
  must(mkdirat(*upperfd, "root", 0700), "root");
  put_file(*upperfd, "root/note", "shipped\n");
  must(mkdirat(*upperfd, "data", 0755), "data");
  int fd = openat(*upperfd, "data", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0), "opaque");
  close(fd);
  must(mknodat(*upperfd, "motd", S_IFCHR, makedev(0, 0)), "whiteout");
  must(fchownat(*upperfd, "motd", 65536, 65536, AT_SYMLINK_NOFOLLOW), "chown");
  *spoolfd = fresh_dir(basefd, "spool");
}

static int export_to_memfd_apart(bool layers_apart) {
  int layersfd, upperfd, spoolfd;
  build_sender(&layersfd, &upperfd, &spoolfd);
  char *layers[] = {LAYER_NAME, NULL};
  struct image img = {.id = "sha256:" LAYER_HEX, .layers = layers,
                      .architecture = "amd64"};
  struct instance_export x = {.record_json = "{\"name\":\"web1\"}",
                              .image = &img, .layersfd = layersfd,
                              .upperfd = upperfd, .spoolfd = spoolfd,
                              .layers_apart = layers_apart};
  int out = memfd_create("stream", MFD_CLOEXEC);
  must(out, "memfd");
  uint64_t size = 0;
  cleanup_error cell_error *err = NULL;
  CHECK(instance_archive_write(&x, out, &size, &err) == 0);
  if (err)
    fprintf(stderr, "instance_archive_write: %s\n", err->msg);
  struct stat st;
  must(fstat(out, &st), "fstat");
  CHECK(size == (uint64_t)st.st_size && size > 0);
  must((int)lseek(out, 0, SEEK_SET), "lseek");
  close(layersfd);
  close(upperfd);
  close(spoolfd);
  return out;
}

static int export_to_memfd(void) {
  return export_to_memfd_apart(false);
}

/* Read in into a fresh work/; the target store's layers/ has the layer
 * when have_layer. */
static int import_from(int in, bool have_layer, int *workfd, cell_error **err) {
  cleanup_close int target = fresh_dir(basefd, "target");
  cleanup_close int layersfd = fresh_dir(target, "layers");
  if (have_layer)
    must(mkdirat(layersfd, LAYER_HEX, 0755), "layer");
  *workfd = fresh_dir(basefd, "work");
  struct instance_import_opts o = {.layersfd = layersfd};
  return instance_archive_read(in, *workfd, &o, err);
}

static bool is_whiteout(int dirfd, const char *rel) {
  struct stat st;
  return fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0) && st.st_uid == 0;
}

TEST(a_stream_read_back_gives_the_record_the_layer_and_the_disk) {
  cleanup_close int in = export_to_memfd();
  cleanup_close int work = -1;
  cleanup_error cell_error *err = NULL;
  CHECK(import_from(in, false, &work, &err) == 0);
  if (err)
    fprintf(stderr, "instance_archive_read: %s\n", err->msg);
  cleanup_free char *os = read_text(work, "layers/" LAYER_HEX "/etc/os");
  CHECK_STR(os, "busybox\n");
  CHECK(is_whiteout(work, "layers/" LAYER_HEX "/etc/gone"));
  cleanup_free char *note = read_text(work, "upper/root/note");
  CHECK_STR(note, "shipped\n");
  CHECK(is_whiteout(work, "upper/motd"));
  int fd = openat(work, "upper/data", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char v[2] = "";
  CHECK(fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y');
  close(fd);

  cleanup_instance_import struct instance_import *im = NULL;
  CHECK(instance_import_load(work, &im, &err) == 0);
  CHECK_STR(im ? im->record_json : "", "{\"name\":\"web1\"}");
  CHECK(im && cell_strv_len(im->layers) == 1);
  CHECK_STR(im && im->layers ? im->layers[0] : "", LAYER_NAME);
  CHECK_STR(im && im->image->architecture ? im->image->architecture : "",
            "amd64");
}

TEST(a_layer_the_store_has_is_checked_not_extracted) {
  cleanup_close int in = export_to_memfd();
  cleanup_close int work = -1;
  cleanup_error cell_error *err = NULL;
  CHECK(import_from(in, true, &work, &err) == 0);
  struct stat st;
  CHECK(fstatat(work, "layers/" LAYER_HEX, &st, 0) < 0 && errno == ENOENT);
  CHECK(fstatat(work, "upper/root/note", &st, 0) == 0);
}

TEST(a_stream_cut_short_is_refused_as_truncated) {
  cleanup_close int full = export_to_memfd();
  struct stat st;
  must(fstat(full, &st), "fstat");
  for (off_t cut = st.st_size / 4; cut < st.st_size; cut += st.st_size / 4) {
    int part = memfd_create("cut", MFD_CLOEXEC);
    char *buf = xmalloc((size_t)cut);
    must((int)pread(full, buf, (size_t)cut, 0), "pread");
    must((int)cell_write_all(part, buf, (size_t)cut), "write");
    free(buf);
    must((int)lseek(part, 0, SEEK_SET), "lseek");
    cleanup_close int work = -1;
    cleanup_error cell_error *err = NULL;
    CHECK(import_from(part, false, &work, &err) < 0);
    CHECK_CONTAINS(err ? err->msg : "", "truncated");
    close(part);
  }
}

/* ---- a migration's layers, apart ---------------------------------------- */

/* The sender's layer spooled as a migration sends it apart. */
static int spool_sender_layer(uint64_t *size, char sha256[DIGEST_STR_LEN]) {
  int layersfd, upperfd, spoolfd, fd = -1;
  build_sender(&layersfd, &upperfd, &spoolfd);
  cleanup_error cell_error *err = NULL;
  CHECK(instance_archive_spool_layer(layersfd, spoolfd, LAYER_NAME, &fd, size,
                                     sha256, &err) == 0);
  if (err)
    fprintf(stderr, "instance_archive_spool_layer: %s\n", err->msg);
  close(layersfd);
  close(upperfd);
  close(spoolfd);
  return fd;
}

struct bounded {
  int fd;
  uint64_t left;
};

static ssize_t read_bounded(void *ctx, void *buf, size_t len) {
  struct bounded *b = ctx;
  if (len > b->left)
    len = (size_t)b->left;
  ssize_t n = len ? read(b->fd, buf, len) : 0;
  if (n > 0)
    b->left -= (uint64_t)n;
  return n;
}

static int read_layer_apart(int fd, uint64_t size, const char *sha256,
                            int workfd, cell_error **err) {
  struct bounded b = {fd, size};
  struct instance_import_opts o = {.layersfd = -1};
  return instance_archive_read_layer(read_bounded, &b, LAYER_NAME, sha256,
                                     workfd, &o, err);
}

TEST(a_stream_with_its_layers_apart_carries_the_disk_alone) {
  cleanup_close int full = export_to_memfd();
  cleanup_close int thin = export_to_memfd_apart(true);
  struct stat a, b;
  must(fstat(full, &a), "fstat");
  must(fstat(thin, &b), "fstat");
  CHECK(b.st_size < a.st_size);
  /* The target store has the layer: the disk comes, no layer. */
  cleanup_close int work = -1;
  cleanup_error cell_error *err = NULL;
  CHECK(import_from(thin, true, &work, &err) == 0);
  if (err)
    fprintf(stderr, "instance_archive_read: %s\n", err->msg);
  cleanup_free char *note = read_text(work, "upper/root/note");
  CHECK_STR(note, "shipped\n");
  cleanup_instance_import struct instance_import *im = NULL;
  CHECK(instance_import_load(work, &im, &err) == 0);
  CHECK_STR(im && im->layers ? im->layers[0] : "", LAYER_NAME);
}

TEST(a_layer_apart_neither_in_the_store_nor_received_is_refused) {
  cleanup_close int thin = export_to_memfd_apart(true);
  cleanup_close int work = -1;
  cleanup_error cell_error *err = NULL;
  CHECK(import_from(thin, false, &work, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "layer " LAYER_NAME ": sent apart "
                 "from the stream, but neither in this store nor received");
}

TEST(a_layer_read_apart_first_completes_the_stream) {
  uint64_t size = 0;
  char sha256[DIGEST_STR_LEN] = "";
  cleanup_close int layer = spool_sender_layer(&size, sha256);
  cleanup_close int thin = export_to_memfd_apart(true);
  cleanup_close int target = fresh_dir(basefd, "target");
  cleanup_close int layersfd = fresh_dir(target, "layers");
  cleanup_close int work = fresh_dir(basefd, "work");
  cleanup_error cell_error *err = NULL;
  CHECK(read_layer_apart(layer, size, sha256, work, &err) == 0);
  if (err)
    fprintf(stderr, "instance_archive_read_layer: %s\n", err->msg);
  cleanup_free char *os = read_text(work, "layers/" LAYER_HEX "/etc/os");
  CHECK_STR(os, "busybox\n");
  CHECK(is_whiteout(work, "layers/" LAYER_HEX "/etc/gone"));
  struct instance_import_opts o = {.layersfd = layersfd};
  CHECK(instance_archive_read(thin, work, &o, &err) == 0);
  if (err)
    fprintf(stderr, "instance_archive_read: %s\n", err->msg);
  cleanup_free char *note = read_text(work, "upper/root/note");
  CHECK_STR(note, "shipped\n");
}

TEST(a_layer_apart_damaged_or_sent_twice_is_refused) {
  uint64_t size = 0;
  char sha256[DIGEST_STR_LEN] = "";
  cleanup_close int layer = spool_sender_layer(&size, sha256);
  cleanup_close int work = fresh_dir(basefd, "work");
  cleanup_error cell_error *err = NULL;
  CHECK(read_layer_apart(layer, size, ZERO_SHA, work, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "the stream is damaged");
  cell_error_free(&err);
  must((int)lseek(layer, 0, SEEK_SET), "lseek");
  CHECK(read_layer_apart(layer, size, sha256, work, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "mkdir " LAYER_HEX);
}

/* ---- streams made by hand ----------------------------------------------- */

struct hand_part {
  const char *name;
  const char *data;
};

static int hand_stream(const struct hand_part *parts, size_t n) {
  int out = memfd_create("hand", MFD_CLOEXEC);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_zstd(a);
  must(archive_write_open_fd(a, out) == ARCHIVE_OK ? 0 : -1, "open");
  for (size_t i = 0; i < n; i++) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, parts[i].name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, (la_int64_t)strlen(parts[i].data));
    archive_write_header(a, e);
    archive_write_data(a, parts[i].data, strlen(parts[i].data));
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  must((int)lseek(out, 0, SEEK_SET), "lseek");
  return out;
}

/* An empty tar (two zero blocks) and its sha256. */
static char empty_tar[1024];
#define EMPTY_TAR_SHA \
  "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

#define LAYER_ENTRY "layers/" LAYER_HEX ".tar"

/* The JSON of an instance of one layer; both parts are empty tars. */
static char *manifest(const char *layer_sha, const char *disk_sha) {
  return xasprintf("{\"format\":1,\"instance\":{\"name\":\"x\"},"
                   "\"image_id\":\"sha256:" LAYER_HEX "\","
                   "\"image\":{\"layers\":[\"" LAYER_NAME "\"]},"
                   "\"layers\":[{\"name\":\"" LAYER_NAME "\","
                   "\"sha256\":\"%s\",\"size\":%zu}],"
                   "\"disk\":{\"sha256\":\"%s\",\"size\":%zu}}",
                   layer_sha, sizeof(empty_tar), disk_sha, sizeof(empty_tar));
}

/* The JSON, then an empty tar under each of names. */
static int stream_of(const char *json, const char *const *names) {
  int out = memfd_create("hand", MFD_CLOEXEC);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_zstd(a);
  must(archive_write_open_fd(a, out) == ARCHIVE_OK ? 0 : -1, "open");
  for (size_t i = 0; i == 0 || names[i - 1]; i++) {
    const char *name = i == 0 ? INSTANCE_ARCHIVE_JSON : names[i - 1];
    const void *data = i == 0 ? (const void *)json : empty_tar;
    size_t size = i == 0 ? strlen(json) : sizeof(empty_tar);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_write_header(a, e);
    archive_write_data(a, data, size);
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  must((int)lseek(out, 0, SEEK_SET), "lseek");
  return out;
}

static char *refusal(const char *json, const char *const *names) {
  cleanup_close int in = stream_of(json, names);
  cleanup_close int work = -1;
  cleanup_error cell_error *err = NULL;
  if (import_from(in, false, &work, &err) == 0)
    return xstrdup("(accepted)");
  return xstrdup(err->msg);
}

TEST(a_hand_made_stream_of_empty_parts_is_read) {
  cleanup_free char *json = manifest(EMPTY_TAR_SHA, EMPTY_TAR_SHA);
  const char *names[] = {LAYER_ENTRY, "disk.tar", NULL};
  cleanup_free char *r = refusal(json, names);
  CHECK_STR(r, "(accepted)");
}

TEST(a_part_that_differs_from_its_digest_is_refused_as_damaged) {
  const char *names[] = {LAYER_ENTRY, "disk.tar", NULL};
  cleanup_free char *json = manifest(EMPTY_TAR_SHA, ZERO_SHA);
  cleanup_free char *r = refusal(json, names);
  CHECK_CONTAINS(r, "`disk.tar`: its sha256 is " EMPTY_TAR_SHA);
  CHECK_CONTAINS(r, "the stream is damaged");
  cleanup_free char *json2 = manifest(ZERO_SHA, EMPTY_TAR_SHA);
  cleanup_free char *r2 = refusal(json2, names);
  CHECK_CONTAINS(r2, "`" LAYER_ENTRY "`: its sha256");
}

TEST(a_part_missing_out_of_order_or_extra_is_refused) {
  cleanup_free char *json = manifest(EMPTY_TAR_SHA, EMPTY_TAR_SHA);
  const char *swapped[] = {"disk.tar", LAYER_ENTRY, NULL};
  cleanup_free char *r = refusal(json, swapped);
  CHECK_CONTAINS(r, "entry `disk.tar` where `" LAYER_ENTRY "` was due");
  const char *no_disk[] = {LAYER_ENTRY, NULL};
  cleanup_free char *r2 = refusal(json, no_disk);
  CHECK_CONTAINS(r2, "ends before `disk.tar`");
  const char *extra[] = {LAYER_ENTRY, "disk.tar", "more.tar", NULL};
  cleanup_free char *r3 = refusal(json, extra);
  CHECK_CONTAINS(r3, "an entry `more.tar` after the last one");
}

TEST(what_is_not_an_export_is_refused) {
  struct hand_part parts[] = {{"etc/passwd", "root:x:0:0\n"}};
  cleanup_close int in = hand_stream(parts, 1);
  cleanup_close int work = -1;
  cleanup_error cell_error *err = NULL;
  CHECK(import_from(in, false, &work, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "not an export of cell");

  struct hand_part future[] = {{INSTANCE_ARCHIVE_JSON, "{\"format\":2}"}};
  cleanup_close int in2 = hand_stream(future, 1);
  cleanup_close int work2 = -1;
  cell_error_free(&err);
  CHECK(import_from(in2, false, &work2, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : "", "format 2: not supported");
}

int main(void) {
  umask(022);
  const char *tmp = getenv("TMPDIR");
  snprintf(base, sizeof(base), "%s/cell-instance-archive-XXXXXX",
           tmp ? tmp : "/tmp");
  if (mkdtemp(base) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(basefd, base);

  RUN(a_stream_read_back_gives_the_record_the_layer_and_the_disk);
  RUN(a_layer_the_store_has_is_checked_not_extracted);
  RUN(a_stream_cut_short_is_refused_as_truncated);
  RUN(a_stream_with_its_layers_apart_carries_the_disk_alone);
  RUN(a_layer_apart_neither_in_the_store_nor_received_is_refused);
  RUN(a_layer_read_apart_first_completes_the_stream);
  RUN(a_layer_apart_damaged_or_sent_twice_is_refused);
  RUN(a_hand_made_stream_of_empty_parts_is_read);
  RUN(a_part_that_differs_from_its_digest_is_refused_as_damaged);
  RUN(a_part_missing_out_of_order_or_extra_is_refused);
  RUN(what_is_not_an_export_is_refused);

  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, base, &err) < 0)
    cell_error_free(&err);
  UNIT_DONE();
}
