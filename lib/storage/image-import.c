/* An image imported into the store (image-import.h): the source's kind
 * found, its layers extracted and verified in a private directory, then
 * moved into the store under their digests, the description last. */
#include "storage/image-import.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "storage/oci-archive.h"
#include "storage/oci-image.h"
#include "storage/tree-archive.h"

enum source_kind { SOURCE_ROOTFS_TAR, SOURCE_OCI_ARCHIVE, SOURCE_DOCKER_ARCHIVE };

/* The private directory of one import, beneath the store's tmp/. */
struct import_job {
  struct image_store *s;
  const struct image_import_opts *o;
  char *name;     /* beneath tmp/ */
  int dirfd;      /* tmp/<name> */
  uint64_t bytes_left, entries_left; /* of the image's limits; 0: none */
  struct image_import_progress p;
};

static void job_end(struct import_job *j) {
  if (j->dirfd >= 0)
    close(j->dirfd);
  if (j->name) {
    cleanup_error cell_error *ignored = NULL;
    cell_rm_rf_at(j->s->tmpfd, j->name, &ignored);
  }
  free(j->name);
}

static int job_start(struct import_job *j, cell_error **err) {
  for (int tries = 0; tries < 100; tries++) {
    free(j->name);
    j->name = xasprintf("import-%d-%d", (int)getpid(), tries);
    if (mkdirat(j->s->tmpfd, j->name, 0700) == 0)
      break;
    if (errno != EEXIST) {
      free(steal_pointer(&j->name));
      return cell_fail_errno(err, "mkdir %s/tmp", j->s->dir);
    }
  }
  j->dirfd = openat(j->s->tmpfd, j->name,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (j->dirfd < 0)
    return cell_fail_errno(err, "open %s/tmp/%s", j->s->dir, j->name);
  return 0;
}

static void report(struct import_job *j, const char *step) {
  j->p.step = step;
  if (j->o->progress)
    j->o->progress(j->o->progress_ctx, &j->p);
}

/* ---- the source's kind -------------------------------------------------- */

/* An entry name of an OCI layout or a docker-archive at the archive's top
 * (docker's per-layer directories are 64 hex digits). */
static bool image_archive_name(const char *n, bool *oci, bool *docker) {
  while (n[0] == '.' && n[1] == '/')
    n += 2;
  if (n[0] == '\0' || strcmp(n, ".") == 0)
    return true;
  if (strcmp(n, "oci-layout") == 0)
    return *oci = true;
  if (strcmp(n, "manifest.json") == 0)
    return *docker = true;
  if (strcmp(n, "index.json") == 0 || strcmp(n, "repositories") == 0 ||
      strncmp(n, "blobs/", 6) == 0 || strcmp(n, "blobs") == 0)
    return true;
  size_t hex = strspn(n, "0123456789abcdef");
  return hex == 64 && (n[64] == '\0' || n[64] == '/' || n[64] == '.');
}

/* Which kind of archive fd holds: the names of its first entries tell,
 * and a root filesystem shows a name no image archive has at once. */
static int detect_archive(int fd, enum source_kind *kind, cell_error **err) {
  struct archive *a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
    int rc = cell_fail(err, 0, "not an archive libarchive can read: %s "
                       "(a directory, a tarball, an oci-archive or a "
                       "docker-archive)", archive_error_string(a));
    archive_read_free(a);
    return rc;
  }
  bool oci = false, docker = false, image_names = true;
  struct archive_entry *e;
  int r = ARCHIVE_OK;
  while (image_names && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK)
    image_names = image_archive_name(archive_entry_pathname(e), &oci, &docker);
  const char *why = r == ARCHIVE_FATAL ? archive_error_string(a) : NULL;
  cleanup_free char *msg = why ? xstrdup(why) : NULL;
  archive_read_free(a);
  if (msg && image_names)
    return cell_fail(err, 0, "read the archive: %s", msg);
  *kind = !image_names ? SOURCE_ROOTFS_TAR
          : oci        ? SOURCE_OCI_ARCHIVE
          : docker     ? SOURCE_DOCKER_ARCHIVE
                       : SOURCE_ROOTFS_TAR;
  if (lseek(fd, 0, SEEK_SET) < 0)
    return cell_fail_errno(err, "rewind the archive");
  return 0;
}

/* A pipe or another stream cannot be read twice: copy it to a file of
 * the import's own first (within the size limit). */
static int spool(struct import_job *j, int fd, cell_error **err) {
  cleanup_close int out = openat(j->dirfd, "source",
                                 O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0)
    return cell_fail_errno(err, "create the import's spool file");
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return cell_fail_errno(err, "read the source");
    if (n == 0)
      break;
    j->p.bytes += (uint64_t)n;
    if (j->o->lim.max_bytes && j->p.bytes > j->o->lim.max_bytes)
      return cell_fail(err, 0, "the source is larger than the image size "
                       "limit (%llu bytes, image_max_size in celld.conf)",
                       (unsigned long long)j->o->lim.max_bytes);
    if (cell_write_all(out, buf, (size_t)n) < 0)
      return cell_fail_errno(err, "write the import's spool file");
    if ((j->p.bytes & ((64u << 20) - 1)) < (uint64_t)n)
      report(j, "read");
  }
  if (lseek(out, 0, SEEK_SET) < 0)
    return cell_fail_errno(err, "rewind the spool file");
  j->p.total = j->p.bytes;
  j->p.bytes = 0;
  return steal_fd(&out);
}

/* ---- layers ------------------------------------------------------------- */

/* A layer is most of an import (a Debian rootfs is one layer): its bytes
 * are reported as they are read, at most every REPORT_NS, so that the
 * progress line moves and can tell a rate and the time left. */
#define REPORT_NS 100000000LL

struct layer_reader {
  struct import_job *j;
  int fd;
  uint64_t base;    /* the source's bytes before this layer */
  uint64_t read;    /* of this layer so far */
  long long last;   /* when the last report went, ns */
};

static long long monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static ssize_t read_layer(void *ctx, void *buf, size_t len) {
  struct layer_reader *r = ctx;
  ssize_t n = read(r->fd, buf, len);
  if (n <= 0)
    return n;
  r->read += (uint64_t)n;
  r->j->p.bytes = r->base + r->read;
  long long now = monotonic_ns();
  if (now - r->last >= REPORT_NS) {
    r->last = now;
    report(r->j, "layer");
  }
  return n;
}

static int extract_layer(struct import_job *j, int fd, unsigned index,
                         enum layer_whiteouts whiteouts,
                         struct layer_stats *stats, cell_error **err) {
  cleanup_free char *name = xasprintf("%u", index);
  if (mkdirat(j->dirfd, name, 0755) < 0)
    return cell_fail_errno(err, "mkdir a layer directory");
  cleanup_close int dirfd =
      openat(j->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0)
    return cell_fail_errno(err, "open a layer directory");
  struct layer_limits lim = {j->bytes_left, j->entries_left};
  j->p.layer = index + 1;
  report(j, "layer");
  struct layer_reader r = {.j = j, .fd = fd, .base = j->p.bytes,
                           .last = monotonic_ns()};
  if (layer_extract_from(read_layer, &r, dirfd, &lim, whiteouts, stats, err) < 0)
    return j->p.layers > 1
               ? cell_error_wrap(err, "layer %u of %u", index + 1, j->p.layers)
               : -1;
  if (j->bytes_left)
    j->bytes_left = stats->bytes >= j->bytes_left ? 1 : j->bytes_left - stats->bytes;
  if (j->entries_left)
    j->entries_left =
        stats->entries >= j->entries_left ? 1 : j->entries_left - stats->entries;
  return 0;
}

/* Move the extracted layers into the store under their digests (a layer
 * the store has already stays, ours goes with tmp/), then write the image:
 * its description only once every layer it names is there, on disk. */
static int commit_image(struct import_job *j, struct image *img,
                        cell_error **err) {
  for (size_t i = 0; img->layers[i]; i++) {
    cleanup_free char *from = xasprintf("%zu", i);
    const char *hex = image_id_hex(img->layers[i]);
    if (renameat(j->dirfd, from, j->s->layersfd, hex) < 0 &&
        errno != EEXIST && errno != ENOTEMPTY)
      return cell_fail_errno(err, "move layer %s into the store", hex);
  }
  if (syncfs(j->s->layersfd) < 0)
    return cell_fail_errno(err, "sync the store's layers");
  return image_store_write(j->s, img, err);
}

static char *machine_architecture(void) {
  struct utsname u;
  uname(&u);
  if (strcmp(u.machine, "x86_64") == 0)
    return xstrdup("amd64");
  if (strcmp(u.machine, "aarch64") == 0)
    return xstrdup("arm64");
  return xstrdup(u.machine);
}

static struct image *new_image(const struct import_job *j) {
  struct image *img = xcalloc(1, sizeof(*img));
  img->imported = cell_rfc3339_now();
  img->source = j->o->source ? xstrdup(j->o->source) : NULL;
  return img;
}

/* One layer: a root filesystem's tar stream, read to its end, extracted
 * (not yet in the store). */
static int extract_rootfs_stream(struct import_job *j, int fd,
                                 struct layer_stats *stats, cell_error **err) {
  j->p.layers = 1;
  return extract_layer(j, fd, 0, LAYER_WHITEOUTS_NONE, stats, err);
}

static int commit_rootfs(struct import_job *j, const struct layer_stats *stats,
                         char **id_out, cell_error **err) {
  cleanup_image struct image *img = new_image(j);
  cell_strv_push(&img->layers, stats->diff_id);
  img->size = stats->bytes;
  img->architecture = machine_architecture();
  if (commit_image(j, img, err) < 0)
    return -1;
  *id_out = xstrdup(img->id);
  return 0;
}

static int import_rootfs_stream(struct import_job *j, int fd, char **id_out,
                                cell_error **err) {
  struct layer_stats stats = {0};
  if (extract_rootfs_stream(j, fd, &stats, err) < 0)
    return -1;
  return commit_rootfs(j, &stats, id_out, err);
}

static int import_oci(struct import_job *j, const struct oci_image *oci,
                      char **id_out, cell_error **err) {
  /* An image is at least one layer (the store refuses a description of
   * none). */
  if (oci->n_layers == 0)
    return cell_fail(err, 0, "the image has no layers");
  /* Each layer is checked against its diff_id: a config without them
   * would let any content in. */
  if (!oci->config.diff_ids)
    return cell_fail(err, 0, "the image config has no rootfs.diff_ids: "
                     "its layers cannot be verified");
  cleanup_image struct image *img = new_image(j);
  j->p.layers = (unsigned)oci->n_layers;
  j->p.total = 0;
  for (size_t i = 0; i < oci->n_layers; i++)
    j->p.total += oci->layers[i].size;
  j->p.bytes = 0;
  for (size_t i = 0; i < oci->n_layers; i++) {
    struct layer_stats stats = {0};
    if (extract_layer(j, oci->layers[i].fd, (unsigned)i,
                      LAYER_WHITEOUTS_OVERLAY, &stats, err) < 0)
      return -1;
    /* The config names each layer's content; the manifest's digest covers
     * the config: a layer that is not what it names is refused. */
    if (strcmp(stats.diff_id, oci->config.diff_ids[i]) != 0)
      return cell_fail(err, 0, "layer %zu of %zu: its content is %s, but the "
                       "image config says %s: the image is corrupt or forged",
                       i + 1, oci->n_layers, stats.diff_id,
                       oci->config.diff_ids[i]);
    cell_strv_push(&img->layers, stats.diff_id);
    img->size += stats.bytes;
  }
  const struct oci_image_config *c = &oci->config;
  img->entrypoint = cell_strv_dup(c->entrypoint);
  img->cmd = cell_strv_dup(c->cmd);
  img->env = cell_strv_dup(c->env);
  img->working_dir = c->working_dir ? xstrdup(c->working_dir) : NULL;
  img->user = c->user && c->user[0] ? xstrdup(c->user) : NULL;
  img->created = c->created ? xstrdup(c->created) : NULL;
  img->architecture = c->architecture ? xstrdup(c->architecture)
                                      : machine_architecture();
  if (commit_image(j, img, err) < 0)
    return -1;
  *id_out = xstrdup(img->id);
  return 0;
}

static int import_archive(struct import_job *j, int fd, char **id_out,
                          cell_error **err) {
  enum source_kind kind = SOURCE_ROOTFS_TAR;
  if (detect_archive(fd, &kind, err) < 0)
    return -1;
  if (kind == SOURCE_ROOTFS_TAR)
    return import_rootfs_stream(j, fd, id_out, err);
  cleanup_oci_image struct oci_image *oci = NULL;
  int rc = kind == SOURCE_OCI_ARCHIVE
               ? oci_image_read_oci_archive(fd, j->dirfd, NULL, &oci, err)
               : oci_image_read_docker_archive(fd, j->dirfd, NULL, &oci, err);
  if (rc < 0)
    return -1;
  return import_oci(j, oci, id_out, err);
}

/* ---- directories -------------------------------------------------------- */

/* The child that writes a directory as a tar stream, with the importer's
 * ids only: a member's directory is read with the member's rights, so an
 * import can never take in what its owner could not read. */
static void tree_writer(int dirfd, int out, int errfd,
                        const struct image_import_opts *o) {
  cleanup_error cell_error *err = NULL;
  signal(SIGPIPE, SIG_IGN);
  if (o->read_uid != 0 &&
      (setgroups(0, NULL) < 0 || setresgid(o->read_gid, o->read_gid, o->read_gid) < 0 ||
       setresuid(o->read_uid, o->read_uid, o->read_uid) < 0))
    cell_fail_errno(&err, "take the importer's ids");
  else
    tree_archive_write(dirfd, out, NULL, &err);
  /* EPIPE: the reader stopped (a limit, a bad entry); its own error says
   * why, not this one. */
  if (err && err->errnum != EPIPE)
    cell_write_all(errfd, err->msg, strlen(err->msg));
  _exit(err ? 1 : 0);
}

/* Run tree_writer in a child; *pid and the read end of its stream (and of
 * its error pipe) for the caller. */
static int spawn_tree_writer(int dirfd, const struct image_import_opts *o,
                             int *stream, int *errpipe, pid_t *pid,
                             cell_error **err) {
  int data[2], errp[2];
  if (pipe2(data, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "pipe");
  if (pipe2(errp, O_CLOEXEC) < 0) {
    close(data[0]);
    close(data[1]);
    return cell_fail_errno(err, "pipe");
  }
  *pid = fork();
  if (*pid == 0) {
    close(data[0]);
    close(errp[0]);
    tree_writer(dirfd, data[1], errp[1], o);
  }
  close(data[1]);
  close(errp[1]);
  if (*pid < 0) {
    close(data[0]);
    close(errp[0]);
    return cell_fail_errno(err, "fork");
  }
  *stream = data[0];
  *errpipe = errp[0];
  return 0;
}

/* The writer's verdict: its own error first (a read it was refused says
 * more than the extraction's broken stream); a writer that only lost its
 * reader says nothing, and the extraction's error stands. */
static int reap_tree_writer(pid_t pid, int errpipe, int extract_rc,
                            cell_error **err) {
  int status = 0;
  char msg[1024];
  ssize_t n = cell_read_all(errpipe, msg, sizeof(msg) - 1);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (n > 0) {
    msg[n] = '\0';
    cell_error_free(err);
    return cell_fail(err, 0, "read the directory: %s", msg);
  }
  if (extract_rc < 0)
    return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return cell_fail(err, 0, "read the directory: the reader failed");
  return 0;
}

/* A directory as one layer: its tar stream, written by a child with the
 * importer's rights, is the layer (and its digest). */
static int import_rootfs_dir(struct import_job *j, int dirfd, char **id_out,
                             cell_error **err) {
  cleanup_close int stream = -1, errpipe = -1;
  pid_t pid;
  if (spawn_tree_writer(dirfd, j->o, &stream, &errpipe, &pid, err) < 0)
    return -1;
  struct layer_stats stats = {0};
  int rc = extract_rootfs_stream(j, stream, &stats, err);
  /* A reader that stopped early must not leave the writer blocked. */
  close(steal_fd(&stream));
  /* Only a stream the writer finished is the directory: a writer that
   * failed half-way wrote a shorter, valid-looking archive. */
  if (reap_tree_writer(pid, errpipe, rc, err) < 0)
    return -1;
  return commit_rootfs(j, &stats, id_out, err);
}

/* A member's OCI layout: tarred with the member's rights, then read as an
 * oci-archive (root's layout is read in place). */
static int import_layout_as_archive(struct import_job *j, int dirfd,
                                    char **id_out, cell_error **err) {
  cleanup_close int stream = -1, errpipe = -1;
  pid_t pid;
  if (spawn_tree_writer(dirfd, j->o, &stream, &errpipe, &pid, err) < 0)
    return -1;
  cleanup_close int file = spool(j, stream, err);
  close(steal_fd(&stream));
  if (reap_tree_writer(pid, errpipe, file < 0 ? -1 : 0, err) < 0)
    return -1;
  return import_archive(j, file, id_out, err);
}

static int import_dir(struct import_job *j, int dirfd, char **id_out,
                      cell_error **err) {
  struct stat st;
  bool layout = fstatat(dirfd, "oci-layout", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(st.st_mode);
  if (!layout)
    return import_rootfs_dir(j, dirfd, id_out, err);
  if (j->o->read_uid != 0)
    return import_layout_as_archive(j, dirfd, id_out, err);
  cleanup_oci_image struct oci_image *oci = NULL;
  if (oci_image_read_layout(dirfd, NULL, &oci, err) < 0)
    return -1;
  return import_oci(j, oci, id_out, err);
}

int image_import(struct image_store *s, int srcfd,
                 const struct image_import_opts *o, char **id_out,
                 cell_error **err) {
  __attribute__((cleanup(job_end))) struct import_job j = {
      .s = s, .o = o, .dirfd = -1,
      .bytes_left = o->lim.max_bytes, .entries_left = o->lim.max_entries};
  if (job_start(&j, err) < 0)
    return -1;
  struct stat st;
  if (fstat(srcfd, &st) < 0)
    return cell_fail_errno(err, "stat the source");
  int rc;
  if (S_ISDIR(st.st_mode)) {
    rc = import_dir(&j, srcfd, id_out, err);
  } else if (S_ISREG(st.st_mode)) {
    j.p.total = (uint64_t)st.st_size;
    rc = import_archive(&j, srcfd, id_out, err);
  } else {
    cleanup_close int file = spool(&j, srcfd, err);
    rc = file < 0 ? -1 : import_archive(&j, file, id_out, err);
  }
  if (rc == 0) {
    j.p.bytes = j.p.total;
    report(&j, "done");
  }
  return rc;
}
