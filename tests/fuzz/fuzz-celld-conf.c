/* celld.conf as celld reads it at startup: daemon_config_load on the
 * defaults, the bytes written to a file first so that the real read
 * (size limit, NUL bytes and all) is part of what is fuzzed. */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"
#include "daemon/daemon-config.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[PATH_MAX];
  if (path[0] == '\0') {
    scratch_dir();
    snprintf(path, sizeof(path), "%s/celld.conf", scratch_path);
  }
  scratch_write("celld.conf", data, size);
  struct daemon_config c;
  daemon_config_defaults(&c);
  cleanup_error cell_error *err = NULL;
  if (daemon_config_load(&c, path, &err) == 0)
    (void)daemon_config_network(&c, DAEMON_DEFAULT_NETWORK);
  daemon_config_clear(&c);
  return 0;
}
