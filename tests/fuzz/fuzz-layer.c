/* A layer tarball as the image store will apply it: layer_extract with
 * a size limit onto a fresh directory, once applying OCI whiteouts and
 * once storing them as overlayfs's.  Whatever the
 * bytes, nothing may appear beside that directory: the scratch directory
 * holds root/ and outside/secret, and nothing else, after every input. */
#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/util.h"
#include "scratch.h"
#include "storage/layer-extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
  fprintf(stderr, "%s\n", what);
  abort();
}

static size_t entries_of(int dir, const char *name) {
  int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    fail("open a scratch directory");
  DIR *d = fdopendir(fd);
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

/* The archive in memfd archive, from its start, onto dir/root, checked and
 * removed. */
static void extract_once(int dir, int archive, enum layer_whiteouts mode) {
  if (lseek(archive, 0, SEEK_SET) < 0)
    fail("lseek");
  if (mkdirat(dir, "root", 0755) < 0)
    fail("mkdir root");
  cleanup_close int root =
      openat(dir, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    fail("open root");

  struct layer_limits lim = {.max_bytes = 16 << 20, .max_entries = 10000};
  struct layer_stats stats;
  cleanup_error cell_error *err = NULL;
  if (layer_extract(archive, root, &lim, mode, &stats, &err) < 0 &&
      (err == NULL || err->msg == NULL || err->msg[0] == '\0'))
    fail("layer_extract failed without a message");
  if (entries_of(dir, ".") != 2 || entries_of(dir, "outside") != 1)
    fail("something appeared outside the layer's directory");

  cell_error_free(&err);
  if (layer_remove_tree(dir, "root", &err) < 0)
    fail(err->msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int dir = scratch_dir();
  static bool ready;
  if (!ready) {
    if (mkdirat(dir, "outside", 0755) < 0)
      fail("mkdir outside");
    scratch_write("outside/secret", "secret", 6);
    ready = true;
  }
  cleanup_close int archive = memfd_create("layer", MFD_CLOEXEC);
  if (archive < 0 || (size > 0 && cell_write_all(archive, data, size) < 0))
    fail("memfd");
  extract_once(dir, archive, LAYER_WHITEOUTS_APPLY);
  extract_once(dir, archive, LAYER_WHITEOUTS_OVERLAY);
  return 0;
}
