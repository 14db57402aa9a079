/* The OCI state file (<root>/<id>/state.json) as every cell command that
 * opens a container reads it: state_read.  A state it accepts must come
 * back the same through state_write and state_read, or a container would
 * change (or be lost) between two commands. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/util.h"
#include "oci/state.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, cell_error *err) {
  fprintf(stderr, "%s: %s\n", what, err ? err->msg : "");
  abort();
}

/* What state.json holds now. */
static char *file_text(int dir) {
  cleanup_error cell_error *err = NULL;
  char *text = NULL;
  size_t len;
  if (cell_read_file_at(dir, CELL_STATE_FILE, 0, &text, &len, &err) < 0)
    fail("read state.json", err);
  return text;
}

/* Write st, then read it back and write that: the two texts. */
static void write_twice(int dir, const struct cell_state *st, char **first,
                        char **second) {
  cleanup_error cell_error *err = NULL;
  if (state_write(dir, st, &err) < 0)
    fail("state_write", err);
  *first = file_text(dir);
  cleanup_state struct cell_state *back = NULL;
  if (state_read(dir, &back, &err) < 0)
    fail("a state written cannot be read back", err);
  if (state_write(dir, back, &err) < 0)
    fail("state_write", err);
  *second = file_text(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int dir = scratch_dir();
  scratch_write(CELL_STATE_FILE, data, size);
  cleanup_error cell_error *err = NULL;
  cleanup_state struct cell_state *st = NULL;
  if (state_read(dir, &st, &err) < 0)
    return 0;
  cleanup_free char *first = NULL, *second = NULL;
  write_twice(dir, st, &first, &second);
  if (strcmp(first, second) != 0) {
    fprintf(stderr, "a state changes when read back:\n%s\n%s\n", first,
            second);
    abort();
  }
  return 0;
}
