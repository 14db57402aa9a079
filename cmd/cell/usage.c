/* How cell's commands end on an error (usage.h). */
#include "usage.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>

#include "base/log.h"

int report(cell_error *err) {
  log_error("%s", err ? err->msg : "unknown error");
  cell_error_free(&err);
  return 1;
}

int usage_error(const char *cmd, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  log_error("%s: %s (see cell %s --help)", cmd, msg, cmd);
  return 1;
}

int need_id(const char *cmd, int argc) {
  if (argc - optind == 1)
    return 0;
  usage_error(cmd, argc - optind < 1 ? "missing container id"
                                     : "too many arguments (expected an ID)");
  return -1;
}
