/* Finding a helper program (libexec.h). */
#include "libexec.h"

#include <libgen.h>
#include <limits.h>
#include <unistd.h>

#include "util.h"

#ifndef CELL_LIBEXECDIR
#define CELL_LIBEXECDIR "/usr/local/libexec/cell"
#endif

char *cell_libexec_path(const char *name) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    char *beside = xasprintf("%s/%s", dirname(self), name);
    if (access(beside, X_OK) == 0)
      return beside;
    free(beside);
  }
  return xasprintf("%s/%s", CELL_LIBEXECDIR, name);
}
