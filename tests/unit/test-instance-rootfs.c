/* An instance's root on an image's layers (instance_rootfs_mount_layers):
 * the merged view, owners shifted to the instance's range, the writable
 * layer in container ids on disk, idempotence, unmounting, the copy
 * fallback and an image with too many layers.  Runs as root.
 *
 * Each test gets a fresh <base> (a temp directory): <base>/layers holds the
 * store's two layers, <base>/inst the instance's directory; the fixture's
 * cleanup unmounts and removes it whatever the checks said. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/instance-rootfs.h"
#include "unit.h"

#define ID_START 3000000u

static const char bottom_id[] =
    "1111111111111111111111111111111111111111111111111111111111111111";
static const char top_id[] =
    "2222222222222222222222222222222222222222222222222222222222222222";

static void must(int r, const char *what) {
  if (r < 0) {
    perror(what);
    exit(2);
  }
}

struct fixture {
  char base[PATH_MAX];
  char *layers; /* <base>/layers */
  char *inst;   /* <base>/inst */
};

static void fixture_done(struct fixture *f) {
  cleanup_error cell_error *err = NULL;
  if (f->inst && instance_rootfs_umount(f->inst, &err) < 0)
    fprintf(stderr, "umount: %s\n", err->msg);
  cleanup_close int basefd = open(f->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_error cell_error *rmerr = NULL;
  if (basefd >= 0) {
    if (cell_rm_rf_at(basefd, "inst", &rmerr) < 0 ||
        cell_rm_rf_at(basefd, "layers", &rmerr) < 0)
      fprintf(stderr, "cleanup: %s\n", rmerr->msg);
    rmdir(f->base);
  }
  free(f->layers);
  free(f->inst);
}
#define cleanup_fixture __attribute__((cleanup(fixture_done)))

static void put_file(int dirfd, const char *name, uid_t uid) {
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  must(fd, name);
  must(cell_write_all(fd, name, strlen(name)) < 0 ? -1 : 0, name);
  must(fchown(fd, uid, uid), name);
  close(fd);
}

static int open_dir(int dirfd, const char *name) {
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fd, name);
  return fd;
}

/* bottom: etc/a, etc/b, d/old (0:0), etc/five (5:5).  top: etc/a a
 * whiteout, d opaque holding new. */
static void make_layers(int layersfd) {
  must(mkdirat(layersfd, bottom_id, 0755), "mkdir bottom");
  cleanup_close int bottom = open_dir(layersfd, bottom_id);
  must(mkdirat(bottom, "etc", 0755), "mkdir etc");
  must(mkdirat(bottom, "d", 0755), "mkdir d");
  cleanup_close int etc = open_dir(bottom, "etc");
  cleanup_close int d = open_dir(bottom, "d");
  put_file(etc, "a", 0);
  put_file(etc, "b", 0);
  put_file(etc, "five", 5);
  put_file(d, "old", 0);

  must(mkdirat(layersfd, top_id, 0755), "mkdir top");
  cleanup_close int top = open_dir(layersfd, top_id);
  must(mkdirat(top, "etc", 0755), "mkdir top etc");
  must(mkdirat(top, "d", 0755), "mkdir top d");
  cleanup_close int top_etc = open_dir(top, "etc");
  must(mknodat(top_etc, "a", S_IFCHR | 0600, makedev(0, 0)), "whiteout");
  cleanup_close int top_d = open_dir(top, "d");
  must(fsetxattr(top_d, "trusted.overlay.opaque", "y", 1, 0), "opaque");
  put_file(top_d, "new", 0);
}

static void fixture_init(struct fixture *f) {
  snprintf(f->base, sizeof(f->base), "/tmp/cell-irootfs-XXXXXX");
  must(mkdtemp(f->base) ? 0 : -1, "mkdtemp");
  f->layers = xasprintf("%s/layers", f->base);
  f->inst = xasprintf("%s/inst", f->base);
  must(mkdir(f->layers, 0755), "mkdir layers");
  must(mkdir(f->inst, 0700), "mkdir inst");
  cleanup_close int layersfd = open_dir(AT_FDCWD, f->layers);
  make_layers(layersfd);
}

static struct instance_record record(void) {
  return (struct instance_record){
      .name = "t", .id_start = ID_START, .id_count = 65536};
}

static int mount_image(struct fixture *f, bool force_copy, const char **mode,
                       cell_error **err) {
  struct instance_record r = record();
  char *ids[] = {(char *)bottom_id, (char *)top_id, NULL};
  return instance_rootfs_mount_layers(f->inst, NULL, &r, f->layers, ids, force_copy,
                                      mode, err);
}

/* How many mounts lie at or under prefix (mountinfo's 5th field). */
static int mounts_under(const char *prefix) {
  FILE *fp = fopen("/proc/self/mountinfo", "re");
  must(fp ? 0 : -1, "mountinfo");
  char line[8192], mnt[4096];
  int n = 0;
  size_t len = strlen(prefix);
  while (fgets(line, sizeof(line), fp))
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 &&
        strncmp(mnt, prefix, len) == 0 && (mnt[len] == '\0' || mnt[len] == '/'))
      n++;
  fclose(fp);
  return n;
}

static bool owned(const char *dir, const char *name, uid_t uid) {
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  struct stat st;
  if (lstat(path, &st) < 0) {
    fprintf(stderr, "stat %s: %s\n", path, strerror(errno));
    return false;
  }
  if (st.st_uid != uid || st.st_gid != uid)
    fprintf(stderr, "%s: %u:%u, not %u\n", path, st.st_uid, st.st_gid, uid);
  return st.st_uid == uid && st.st_gid == uid;
}

static bool exists(const char *dir, const char *name) {
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  struct stat st;
  return lstat(path, &st) == 0;
}

/* The names in dir/name, sorted, joined by spaces. */
static char *listing(const char *dir, const char *name) {
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  struct dirent **ents;
  int n = scandir(path, &ents, NULL, alphasort);
  if (n < 0)
    return xstrdup("(unreadable)");
  cleanup_free char *out = xstrdup("");
  for (int i = 0; i < n; i++) {
    if (ents[i]->d_name[0] != '.') {
      char *next = xasprintf("%s%s%s", out, *out ? " " : "", ents[i]->d_name);
      free(out);
      out = next;
    }
    free(ents[i]);
  }
  free(ents);
  return steal_pointer(&out);
}

static bool is_whiteout(const char *dir, const char *name) {
  cleanup_free char *path = xasprintf("%s/%s", dir, name);
  struct stat st;
  return lstat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0;
}

/* The merged view both modes must give. */
static void check_merged_view(const char *inst) {
  cleanup_free char *rootfs = xasprintf("%s/rootfs", inst);
  CHECK(exists(rootfs, "etc/b"));
  CHECK(!exists(rootfs, "etc/a"));
  cleanup_free char *d = listing(rootfs, "d");
  CHECK_STR(d, "new");
  CHECK(owned(rootfs, "etc/b", ID_START));
  CHECK(owned(rootfs, "etc/five", ID_START + 5));
  CHECK(owned(rootfs, "d/new", ID_START));
}

/* In a user namespace mapping 0..65535 to ID_START.., as the container's
 * root: create new-file and seven (chowned to 7:7), remove etc/b.  Through
 * rootfd: the temp directory above is host root's, closed to the
 * namespace.  0 when every step worked. */
static int write_as_container_root(int rootfd) {
  int go[2];
  must(pipe2(go, O_CLOEXEC), "pipe");
  pid_t pid = fork();
  must(pid, "fork");
  if (pid == 0) {
    close(go[1]);
    char c;
    if (unshare(CLONE_NEWUSER) < 0)
      _exit(10);
    if (read(go[0], &c, 1) != 1)
      _exit(11);
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
      _exit(12);
    int fd = openat(rootfd, "new-file", O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
      _exit(13);
    close(fd);
    fd = openat(rootfd, "seven", O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 || fchown(fd, 7, 7) < 0)
      _exit(14);
    close(fd);
    if (unlinkat(rootfd, "etc/b", 0) < 0)
      _exit(15);
    _exit(0);
  }
  close(go[0]);
  /* The child unshares before it reads: wait until its namespace is not
   * ours any more, then write its maps. */
  cleanup_free char *ns = xasprintf("/proc/%d/ns/user", (int)pid);
  struct stat self, child;
  must(stat("/proc/self/ns/user", &self), "stat ns");
  for (int i = 0; i < 5000; i++) {
    if (stat(ns, &child) == 0 && child.st_ino != self.st_ino)
      break;
    usleep(1000);
  }
  cleanup_error cell_error *err = NULL;
  cleanup_free char *uid_map = xasprintf("/proc/%d/uid_map", (int)pid);
  cleanup_free char *gid_map = xasprintf("/proc/%d/gid_map", (int)pid);
  cleanup_free char *map = xasprintf("0 %u 65536\n", ID_START);
  if (cell_write_knob(uid_map, map, strlen(map), &err) < 0 ||
      cell_write_knob(gid_map, map, strlen(map), &err) < 0)
    fprintf(stderr, "maps: %s\n", err->msg);
  must(write(go[1], "g", 1) == 1 ? 0 : -1, "go");
  close(go[1]);
  int status = 0;
  must(waitpid(pid, &status, 0), "waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fprintf(stderr, "container root: status %d\n", status);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int open_rootfs(const char *inst) {
  cleanup_free char *rootfs = xasprintf("%s/rootfs", inst);
  return open_dir(AT_FDCWD, rootfs);
}

TEST(idmapped_layers_merged_and_shifted) {
  cleanup_fixture struct fixture f = {0};
  fixture_init(&f);
  cleanup_error cell_error *err = NULL;
  const char *mode = NULL;
  CHECK(mount_image(&f, false, &mode, &err) == 0);
  if (err)
    fprintf(stderr, "%s\n", err->msg);
  CHECK_STR(mode, "idmap");
  check_merged_view(f.inst);
}

TEST(idmapped_disk_holds_container_ids) {
  cleanup_fixture struct fixture f = {0};
  fixture_init(&f);
  cleanup_error cell_error *err = NULL;
  const char *mode = NULL;
  CHECK(mount_image(&f, false, &mode, &err) == 0);
  if (err)
    return (void)fprintf(stderr, "%s\n", err->msg);
  cleanup_close int rootfd = open_rootfs(f.inst);
  CHECK(write_as_container_root(rootfd) == 0);
  cleanup_free char *upper = xasprintf("%s/disk/upper", f.inst);
  CHECK(owned(upper, "new-file", 0));
  CHECK(owned(upper, "seven", 7));
  CHECK(is_whiteout(upper, "etc/b"));
  /* overlayfs's own files are host root's, on disk the id past the
   * container's (disk_map). */
  CHECK(owned(upper, "etc/b", 65536));
  cleanup_free char *work = xasprintf("%s/disk/work", f.inst);
  CHECK(owned(work, "work", 65536));
  /* Through the overlay the same files are the instance's host ids. */
  cleanup_free char *rootfs = xasprintf("%s/rootfs", f.inst);
  CHECK(owned(rootfs, "new-file", ID_START));
  CHECK(owned(rootfs, "seven", ID_START + 7));
  CHECK(!exists(rootfs, "etc/b"));
  /* The layers are untouched. */
  cleanup_free char *bottom = xasprintf("%s/%s", f.layers, bottom_id);
  CHECK(owned(bottom, "etc/b", 0));
  CHECK(owned(bottom, "etc/five", 5));
  CHECK(!exists(bottom, "new-file"));
}

TEST(mount_layers_is_idempotent_and_umount_leaves_nothing) {
  cleanup_fixture struct fixture f = {0};
  fixture_init(&f);
  cleanup_error cell_error *err = NULL;
  const char *mode = NULL;
  CHECK(mount_image(&f, false, &mode, &err) == 0);
  int first = mounts_under(f.inst);
  CHECK(first == 3); /* layers, disk.idmapped, rootfs */
  CHECK(mount_image(&f, false, &mode, &err) == 0);
  if (err)
    fprintf(stderr, "%s\n", err->msg);
  CHECK(mounts_under(f.inst) == first);
  check_merged_view(f.inst);
  CHECK(instance_rootfs_umount(f.inst, &err) == 0);
  CHECK(mounts_under(f.inst) == 0);
  /* Unmounting what is not mounted is no error. */
  CHECK(instance_rootfs_umount(f.inst, &err) == 0);
}

TEST(copy_fallback_same_view_host_ids) {
  cleanup_fixture struct fixture f = {0};
  fixture_init(&f);
  cleanup_error cell_error *err = NULL;
  const char *mode = NULL;
  CHECK(mount_image(&f, true, &mode, &err) == 0);
  if (err)
    return (void)fprintf(stderr, "%s\n", err->msg);
  CHECK_STR(mode, "copy");
  CHECK(mounts_under(f.inst) == 1); /* the overlay alone */
  check_merged_view(f.inst);
  /* The copies on disk are in host ids, the whiteout and the opaque
   * directory kept. */
  cleanup_free char *copy = xasprintf("%s/lower.copy", f.inst);
  cleanup_free char *bottom = xasprintf("%s/%s", copy, bottom_id);
  cleanup_free char *top = xasprintf("%s/%s", copy, top_id);
  CHECK(owned(bottom, "etc/b", ID_START));
  CHECK(owned(bottom, "etc/five", ID_START + 5));
  CHECK(is_whiteout(top, "etc/a"));
  cleanup_free char *top_d = xasprintf("%s/d", top);
  char v[8] = "";
  CHECK(getxattr(top_d, "trusted.overlay.opaque", v, sizeof(v)) == 1 &&
        v[0] == 'y');
  cleanup_close int rootfd = open_rootfs(f.inst);
  CHECK(write_as_container_root(rootfd) == 0);
  cleanup_free char *upper = xasprintf("%s/disk/upper", f.inst);
  CHECK(owned(f.inst, "disk/upper", ID_START));
  CHECK(owned(upper, "new-file", ID_START));
  CHECK(owned(upper, "seven", ID_START + 7));
  CHECK(is_whiteout(upper, "etc/b"));
  /* Again: the copies are not made twice (the stamp), nothing stacked. */
  cleanup_free char *stamp = xasprintf("%s/%s.copied", copy, bottom_id);
  struct stat before, after;
  CHECK(stat(stamp, &before) == 0);
  CHECK(mount_image(&f, true, &mode, &err) == 0);
  CHECK(stat(stamp, &after) == 0);
  CHECK(before.st_ino == after.st_ino);
  CHECK(mounts_under(f.inst) == 1);
}

TEST(too_many_layers_refused_nothing_mounted) {
  cleanup_fixture struct fixture f = {0};
  fixture_init(&f);
  /* 70 ids of 65 bytes each pass a page of options. */
  char *ids[71];
  for (int i = 0; i < 70; i++)
    ids[i] = xasprintf("%064x", i);
  ids[70] = NULL;
  struct instance_record r = record();
  cleanup_error cell_error *err = NULL;
  const char *mode = NULL;
  CHECK(instance_rootfs_mount_layers(f.inst, NULL, &r, f.layers, ids, false, &mode,
                                     &err) < 0);
  CHECK_CONTAINS(err ? err->msg : NULL, "image has 70 layers");
  CHECK_CONTAINS(err ? err->msg : NULL, "flatten it");
  CHECK(mounts_under(f.inst) == 0);
  for (int i = 0; i < 70; i++)
    free(ids[i]);
}

TEST(missing_layer_refused_nothing_mounted) {
  cleanup_fixture struct fixture f = {0};
  fixture_init(&f);
  char missing[65];
  memset(missing, 'f', 64);
  missing[64] = '\0';
  char *ids[] = {(char *)bottom_id, missing, NULL};
  struct instance_record r = record();
  cleanup_error cell_error *err = NULL;
  const char *mode = NULL;
  CHECK(instance_rootfs_mount_layers(f.inst, NULL, &r, f.layers, ids, false, &mode,
                                     &err) < 0);
  CHECK_CONTAINS(err ? err->msg : NULL, missing);
  CHECK(mounts_under(f.inst) == 0);
}

TEST(recorded_mode_kept) {
  cleanup_fixture struct fixture f = {0};
  fixture_init(&f);
  char *ids[] = {(char *)bottom_id, (char *)top_id, NULL};
  struct instance_record r = record();
  cleanup_error cell_error *err = NULL;
  const char *mode = NULL;
  /* A disk in container ids is never mounted as a copy. */
  r.rootfs_mode = "idmap";
  CHECK(instance_rootfs_mount_layers(f.inst, NULL, &r, f.layers, ids, true, &mode,
                                     &err) < 0);
  CHECK_CONTAINS(err ? err->msg : NULL, "cannot be mounted as a copy");
  CHECK(mounts_under(f.inst) == 0);
  cell_error_free(&err);
  /* A disk in host ids stays a copy, asked or not. */
  r.rootfs_mode = "copy";
  CHECK(instance_rootfs_mount_layers(f.inst, NULL, &r, f.layers, ids, false, &mode,
                                     &err) == 0);
  CHECK_STR(mode, "copy");
  CHECK(owned(f.inst, "disk/upper", ID_START));
}

TEST(bad_layer_id_refused) {
  cleanup_fixture struct fixture f = {0};
  fixture_init(&f);
  char *ids[] = {(char *)bottom_id, "../../etc", NULL};
  struct instance_record r = record();
  cleanup_error cell_error *err = NULL;
  const char *mode = NULL;
  CHECK(instance_rootfs_mount_layers(f.inst, NULL, &r, f.layers, ids, false, &mode,
                                     &err) < 0);
  CHECK_CONTAINS(err ? err->msg : NULL, "is not a layer id");
  CHECK(mounts_under(f.inst) == 0);
}

/* ---- instance_layer_merge ----------------------------------------------- */

static void put(int dirfd, const char *name, const char *text) {
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  must(fd, name);
  must((int)write(fd, text, strlen(text)), name);
  close(fd);
}

static char *get(int dirfd, const char *name) {
  char *text = NULL;
  cleanup_error cell_error *err = NULL;
  return cell_read_file_at(dirfd, name, 0, &text, NULL, &err) == 0 ? text : NULL;
}

static bool whiteout_at(int dirfd, const char *name) {
  struct stat st;
  return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISCHR(st.st_mode) && st.st_rdev == 0;
}

static bool opaque_at(int dirfd, const char *name) {
  cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char v[2];
  return fd >= 0 && fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) == 1 &&
         v[0] == 'y';
}

static int sub(int dirfd, const char *name) {
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(fd, name);
  return fd;
}

/* Three layers as overlayfs would stack them, merged bottom first into one
 * that shows the same above the image's layers. */
TEST(layers_merged_as_overlayfs_stacks_them) {
  char base[] = "/tmp/cell-merge-XXXXXX";
  must(mkdtemp(base) ? 0 : -1, "mkdtemp");
  cleanup_close int b = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  must(b, base);
  const char *names[] = {"l1", "l2", "l3", "merged"};
  for (size_t i = 0; i < 4; i++)
    must(mkdirat(b, names[i], 0755), names[i]);
  cleanup_close int l1 = sub(b, "l1"), l2 = sub(b, "l2"), l3 = sub(b, "l3"),
                    m = sub(b, "merged");
  /* l1: files, a directory, a file later deleted. */
  put(l1, "a", "1");
  must(mkdirat(l1, "d", 0755), "d");
  cleanup_close int l1d = sub(l1, "d");
  put(l1d, "x", "1");
  put(l1d, "y", "1");
  put(l1, "gone", "1");
  /* l2: a rewritten, d/y deleted, gone deleted, a file of the image
   * deleted, a new directory. */
  put(l2, "a", "2");
  must(mkdirat(l2, "d", 0755), "d");
  cleanup_close int l2d = sub(l2, "d");
  must(mknodat(l2d, "y", S_IFCHR, 0), "whiteout");
  must(mknodat(l2, "gone", S_IFCHR, 0), "whiteout");
  must(mknodat(l2, "image-file", S_IFCHR, 0), "whiteout");
  must(mkdirat(l2, "o", 0755), "o");
  cleanup_close int l2o = sub(l2, "o");
  put(l2o, "p", "1");
  /* l3: d replaced by an opaque directory, o deleted, a directory where
   * gone's whiteout was. */
  must(mkdirat(l3, "d", 0700), "d");
  cleanup_close int l3d = sub(l3, "d");
  must(fsetxattr(l3d, "trusted.overlay.opaque", "y", 1, 0), "opaque");
  put(l3d, "z", "3");
  must(mknodat(l3, "o", S_IFCHR, 0), "whiteout");
  must(mkdirat(l3, "gone", 0755), "gone");

  cleanup_error cell_error *err = NULL;
  CHECK(instance_layer_merge(l1, m, &err) == 0);
  CHECK(instance_layer_merge(l2, m, &err) == 0);
  CHECK(instance_layer_merge(l3, m, &err) == 0);
  if (err)
    fprintf(stderr, "merge: %s\n", err->msg);
  cleanup_free char *a = get(m, "a");
  CHECK_STR(a, "2");
  cleanup_close int md = openat(m, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_free char *z = md >= 0 ? get(md, "z") : NULL;
  CHECK_STR(z, "3");
  CHECK(md >= 0 && faccessat(md, "x", F_OK, AT_SYMLINK_NOFOLLOW) < 0);
  CHECK(md >= 0 && faccessat(md, "y", F_OK, AT_SYMLINK_NOFOLLOW) < 0);
  CHECK(opaque_at(m, "d"));
  struct stat st;
  CHECK(fstatat(m, "d", &st, 0) == 0 && (st.st_mode & 07777) == 0700);
  CHECK(whiteout_at(m, "o"));
  CHECK(whiteout_at(m, "image-file"));
  CHECK(opaque_at(m, "gone"));
  cleanup_error cell_error *rmerr = NULL;
  char *tail = strrchr(base, '/');
  *tail = '\0';
  cleanup_close int tmp = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(cell_rm_rf_at(tmp, tail + 1, &rmerr) == 0);
}

int main(void) {
  if (geteuid() != 0) {
    printf("skip: not root\n");
    return 0;
  }
  RUN(idmapped_layers_merged_and_shifted);
  RUN(idmapped_disk_holds_container_ids);
  RUN(mount_layers_is_idempotent_and_umount_leaves_nothing);
  RUN(copy_fallback_same_view_host_ids);
  RUN(too_many_layers_refused_nothing_mounted);
  RUN(missing_layer_refused_nothing_mounted);
  RUN(recorded_mode_kept);
  RUN(bad_layer_id_refused);
  RUN(layers_merged_as_overlayfs_stacks_them);
  UNIT_DONE();
}
