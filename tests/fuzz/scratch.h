/* A scratch directory on tmpfs for the targets whose code reads a file:
 * they get the fuzzer's bytes as that file, through the same read the
 * programs do.  tmpfs: an fsync there costs nothing. */
#ifndef CELL_FUZZ_SCRATCH_H
#define CELL_FUZZ_SCRATCH_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/util.h"

static char scratch_path[] = "/dev/shm/cell-fuzz-XXXXXX";
static int scratch_fd = -1;

static void scratch_remove(void) {
  if (scratch_fd < 0)
    return;
  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, scratch_path, &err) < 0)
    cell_error_free(&err);
}

/* The directory's fd; it goes away when the fuzzer exits normally. */
static int scratch_dir(void) {
  if (scratch_fd >= 0)
    return scratch_fd;
  if (mkdtemp(scratch_path) == NULL) {
    perror("mkdtemp /dev/shm/cell-fuzz-XXXXXX");
    abort();
  }
  scratch_fd = open(scratch_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (scratch_fd < 0) {
    perror(scratch_path);
    abort();
  }
  atexit(scratch_remove);
  return scratch_fd;
}

/* name under the scratch directory, holding exactly data. */
static void scratch_write(const char *name, const void *data, size_t size) {
  int fd = openat(scratch_dir(), name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0600);
  if (fd < 0 || (size > 0 && cell_write_all(fd, data, size) < 0)) {
    perror(name);
    abort();
  }
  close(fd);
}

#endif
