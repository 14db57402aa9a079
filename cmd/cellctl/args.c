/* Argument helpers the verbs share (args.h). */
#include "args.h"

#include <stdarg.h>
#include <string.h>

#include "base/util.h"

int usage_error(cell_error **err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cell_vfail(err, 0, fmt, ap);
  va_end(ap);
  return EXIT_USAGE;
}

int verb_name(const struct invocation *inv, const char **name, cell_error **err) {
  if (inv->argc < 2 || inv->argv[1][0] == '-')
    return usage_error(err, "%s: NAME is needed", inv->verb->name);
  *name = inv->argv[1];
  return EXIT_OK;
}

static bool is_flag(const char *arg, const char *short_form, const char *long_form) {
  return (short_form && strcmp(arg, short_form) == 0) || strcmp(arg, long_form) == 0;
}

int verb_flags(const struct invocation *inv, int first, unsigned allowed,
               struct verb_flags *out, cell_error **err) {
  *out = (struct verb_flags){.timeout = -1};
  char **argv = inv->argv;
  for (int k = first; k < inv->argc; k++) {
    if ((allowed & FLAG_JSON) && is_flag(argv[k], NULL, "--json")) {
      out->json = true;
    } else if ((allowed & FLAG_FORCE) && is_flag(argv[k], "-f", "--force")) {
      out->force = true;
    } else if ((allowed & FLAG_TIMEOUT) && is_flag(argv[k], NULL, "--timeout") &&
               k + 1 < inv->argc) {
      long long n;
      if (!cell_parse_ll(argv[++k], 0, 3600, &n))
        return usage_error(err, "--timeout `%s`: expected seconds (0-3600)", argv[k]);
      out->timeout = (int)n;
    } else {
      return usage_error(err, "unexpected argument `%s`", argv[k]);
    }
  }
  return EXIT_OK;
}
