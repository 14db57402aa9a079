/* An instance record (<state-dir>/instances/NAME.json) as celld reads it
 * at startup: instance_record_from_json.  A record it accepts must also
 * survive the trip celld makes with it, written (instance_record_to_json)
 * and read back to the same record: one that does not would lose the
 * instance at the next restart. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/util.h"
#include "daemon/instance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const struct instance_record *r) {
  cleanup_free char *once = instance_record_to_json(r, true);
  cleanup_error cell_error *err = NULL;
  struct instance_record *back = NULL;
  if (instance_record_from_json(once, strlen(once), &back, &err) < 0) {
    fprintf(stderr, "a record read cannot be read back: %s\n%s\n", err->msg,
            once);
    abort();
  }
  cleanup_free char *twice = instance_record_to_json(back, true);
  instance_record_free(back);
  if (strcmp(once, twice) != 0) {
    fprintf(stderr, "a record changes when read back:\n%s\n%s\n", once, twice);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cleanup_error cell_error *err = NULL;
  struct instance_record *r = NULL;
  if (instance_record_from_json((const char *)data, size, &r, &err) < 0)
    return 0;
  round_trip(r);
  instance_record_free(r);
  return 0;
}
