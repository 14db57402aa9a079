/* Whole trees into and out of an instance's root as one tar stream
 * (lib/daemon/instance-tree-files.c): a root in a temporary directory,
 * streams a hostile client or instance would send. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/instance-tree-files.h"
#include "unit.h"

static char base[] = "/tmp/cell-test-tree-XXXXXX";
static int rootfd = -1;

/* One entry of a stream: a name, a type (AE_IFREG, AE_IFDIR, AE_IFLNK or
 * a hardlink with `hardlink`), the content or the link's target. */
struct entry {
  const char *name;
  unsigned int type;
  const char *text;
  const char *hardlink;
};

static int stream_of(const struct entry *entries, size_t n) {
  int fd = memfd_create("stream", MFD_CLOEXEC);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  CHECK(archive_write_open_fd(a, fd) == ARCHIVE_OK);
  for (size_t i = 0; i < n; i++) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, entries[i].name);
    archive_entry_set_filetype(e, entries[i].type);
    archive_entry_set_perm(e, entries[i].type == AE_IFDIR ? 0755 : 0640);
    archive_entry_set_mtime(e, 1000000000, 0);
    if (entries[i].hardlink)
      archive_entry_set_hardlink(e, entries[i].hardlink);
    else if (entries[i].type == AE_IFLNK)
      archive_entry_set_symlink(e, entries[i].text);
    else if (entries[i].type == AE_IFREG)
      archive_entry_set_size(e, (la_int64_t)strlen(entries[i].text));
    CHECK(archive_write_header(a, e) == ARCHIVE_OK);
    if (entries[i].type == AE_IFREG && !entries[i].hardlink)
      archive_write_data(a, entries[i].text, strlen(entries[i].text));
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  lseek(fd, 0, SEEK_SET);
  return fd;
}

static int push(const struct entry *entries, size_t n, const char *path,
                cell_error **err) {
  cleanup_close int fd = stream_of(entries, n);
  struct tree_push_stats stats;
  return instance_tree_push(rootfd, path, fd, getuid(), getgid(), -1, &stats,
                            err);
}

static void setup(void) {
  CHECK(mkdtemp(base) != NULL);
  cleanup_free char *root = xasprintf("%s/root", base);
  CHECK(mkdir(root, 0755) == 0);
  rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(mkdirat(rootfd, "etc", 0755) == 0);
}

static bool host_has(const char *name) {
  cleanup_free char *path = xasprintf("%s/%s", base, name);
  return access(path, F_OK) == 0;
}

TEST(a_tree_is_extracted_with_modes_mtimes_and_links) {
  const struct entry tree[] = {
      {"./", AE_IFDIR, NULL, NULL},
      {"./d", AE_IFDIR, NULL, NULL},
      {"./d/f", AE_IFREG, "hello", NULL},
      {"./d/l", AE_IFLNK, "/etc/shadow", NULL},
  };
  cell_error *err = NULL;
  CHECK(push(tree, 4, "/t", &err) == 0);
  cell_error_free(&err);
  struct stat st;
  CHECK(fstatat(rootfd, "t/d/f", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (st.st_mode & 0777) == 0640 && st.st_size == 5 &&
        st.st_mtim.tv_sec == 1000000000);
  CHECK(fstatat(rootfd, "t/d", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_mtim.tv_sec == 1000000000);
  char target[64] = "";
  CHECK(readlinkat(rootfd, "t/d/l", target, sizeof(target) - 1) == 11);
  CHECK_STR(target, "/etc/shadow");
}

TEST(attack_dotdot_and_absolute_entries_are_refused) {
  const char *names[] = {"../escaped", "d/../../escaped", "/escaped",
                         "../../../../../../../../tmp/escaped"};
  for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
    const struct entry bad[] = {{names[i], AE_IFREG, "pwned", NULL}};
    cell_error *err = NULL;
    CHECK(push(bad, 1, "/t2", &err) < 0);
    CHECK(err && strstr(err->msg, "refused"));
    cell_error_free(&err);
    CHECK(!host_has("escaped"));
  }
  CHECK(faccessat(rootfd, "escaped", F_OK, AT_SYMLINK_NOFOLLOW) != 0);
}

TEST(attack_a_file_through_a_link_the_stream_made_is_refused) {
  const struct entry bad[] = {{"l", AE_IFLNK, base, NULL},
                              {"l/planted", AE_IFREG, "pwned", NULL}};
  cell_error *err = NULL;
  CHECK(push(bad, 2, "/t3", &err) < 0);
  CHECK(err && strstr(err->msg, "symlink"));
  cell_error_free(&err);
  CHECK(!host_has("planted"));
}

TEST(attack_a_target_that_is_a_link_to_the_host_stays_inside) {
  /* An absolute link in the instance: resolved inside its root, where it
   * is missing. */
  cleanup_free char *link = xasprintf("%s/hostdir", base);
  CHECK(mkdir(link, 0755) == 0);
  CHECK(symlinkat(link, rootfd, "hostlink") == 0);
  const struct entry tree[] = {{"f", AE_IFREG, "pwned", NULL}};
  cell_error *err = NULL;
  CHECK(push(tree, 1, "/hostlink/sub", &err) < 0);
  cell_error_free(&err);
  CHECK(!host_has("hostdir/sub"));
}

TEST(hardlinks_and_devices_are_refused) {
  const struct entry hard[] = {{"h", AE_IFREG, "", "/etc/shadow"}};
  cell_error *err = NULL;
  CHECK(push(hard, 1, "/t4", &err) < 0);
  CHECK(err && strstr(err->msg, "hardlink"));
  cell_error_free(&err);
  const struct entry fifo[] = {{"p", AE_IFIFO, NULL, NULL}};
  CHECK(push(fifo, 1, "/t4", &err) < 0);
  CHECK(err && strstr(err->msg, "only these"));
  cell_error_free(&err);
}

static int n_skipped;
static void count_skipped(void *ctx, const char *path, const char *why) {
  (void)ctx;
  CHECK_STR(path, "/t/d/fifo");
  CHECK_STR(why, "a FIFO");
  n_skipped++;
}

/* Names, owners and modes of a pulled stream, "name uid:gid mode\n"
 * each. */
static char *describe(int fd) {
  lseek(fd, 0, SEEK_SET);
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  CHECK(archive_read_open_fd(a, fd, 4096) == ARCHIVE_OK);
  char *out = xstrdup("");
  struct archive_entry *e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    char *more = xasprintf("%s%s %lld:%lld %o\n", out,
                           archive_entry_pathname(e),
                           (long long)archive_entry_uid(e),
                           (long long)archive_entry_gid(e),
                           (unsigned int)archive_entry_perm(e));
    free(out);
    out = more;
  }
  archive_read_free(a);
  return out;
}

TEST(a_pull_maps_owners_into_the_instance_and_leaves_out_fifos) {
  CHECK(mkfifoat(rootfd, "t/d/fifo", 0644) == 0);
  /* A setuid file of the instance: not one once out. */
  CHECK(fchmodat(rootfd, "t/d/f", 04750, 0) == 0);
  cleanup_close int fd = memfd_create("pulled", MFD_CLOEXEC);
  uint64_t bytes = 0;
  cell_error *err = NULL;
  /* The range is the caller's own id alone: it is 0 inside. */
  CHECK(instance_tree_pull(rootfd, "/t", fd, getuid(), 1, count_skipped, NULL,
                           &bytes, &err) == 0);
  cell_error_free(&err);
  CHECK(bytes == 5 && n_skipped == 1);
  cleanup_free char *seen = describe(fd);
  CHECK_STR(seen, "./ 0:0 755\n./d/ 0:0 755\n./d/f 0:0 750\n./d/l 0:0 777\n");
  /* An owner outside the range: nobody, as the kernel shows it. */
  cleanup_close int fd2 = memfd_create("pulled", MFD_CLOEXEC);
  CHECK(instance_tree_pull(rootfd, "/t", fd2, getuid() + 1, 10, NULL, NULL,
                           &bytes, &err) == 0);
  cell_error_free(&err);
  cleanup_free char *outside = describe(fd2);
  CHECK_CONTAINS(outside, "./d/f 65534:");
}

TEST(a_pull_of_a_file_or_of_proc_is_refused) {
  cleanup_close int fd = memfd_create("pulled", MFD_CLOEXEC);
  uint64_t bytes;
  cell_error *err = NULL;
  CHECK(instance_tree_pull(rootfd, "/t/d/f", fd, 0, 0, NULL, NULL, &bytes,
                           &err) < 0);
  CHECK(err && strstr(err->msg, "not a directory"));
  cell_error_free(&err);
  cleanup_close int procfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  CHECK(instance_tree_pull(procfd, "/proc/self", fd, 0, 0, NULL, NULL, &bytes,
                           &err) < 0);
  CHECK(err && strstr(err->msg, "kernel filesystem"));
  cell_error_free(&err);
}

int main(void) {
  setup();
  RUN(a_tree_is_extracted_with_modes_mtimes_and_links);
  RUN(attack_dotdot_and_absolute_entries_are_refused);
  RUN(attack_a_file_through_a_link_the_stream_made_is_refused);
  RUN(attack_a_target_that_is_a_link_to_the_host_stays_inside);
  RUN(hardlinks_and_devices_are_refused);
  RUN(a_pull_maps_owners_into_the_instance_and_leaves_out_fifos);
  RUN(a_pull_of_a_file_or_of_proc_is_refused);
  close(rootfd);
  cell_error *err = NULL;
  cell_rm_rf_at(AT_FDCWD, base, &err);
  cell_error_free(&err);
  UNIT_DONE();
}
