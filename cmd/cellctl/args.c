/* Argument helpers the verbs share (args.h). */
#include "args.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
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

/* Whether FLAG takes a value, as the verb's synopsis writes it: "--flag
 * VALUE" (or "-f VALUE"); "[--flag]" and "--flag=..." take none. */
static bool takes_value(const char *synopsis, const char *flag) {
  size_t len = strlen(flag);
  for (const char *p = strstr(synopsis, flag); p; p = strstr(p + 1, flag)) {
    bool starts = p == synopsis || strchr(" [|\n", p[-1]);
    if (!starts || p[len] != ' ')
      continue;
    char next = p[len + 1];
    return next != '[' && next != '|' && next != '-' && next != '\0' &&
           !isspace((unsigned char)next);
  }
  return false;
}

void verb_args_in_order(const char *synopsis, int argc, char **argv) {
  /* argv[0] is the verb; "--" ends what is ours (exec's command). */
  int end = 1;
  while (end < argc && strcmp(argv[end], "--") != 0)
    end++;
  cleanup_free char **flags = xcalloc((size_t)argc, sizeof(*flags));
  int n_flags = 0, n_pos = 0;
  for (int k = 1; k < end; k++) {
    if (argv[k][0] != '-' || argv[k][1] == '\0') {
      argv[1 + n_pos++] = argv[k];
      continue;
    }
    flags[n_flags++] = argv[k];
    if (!strchr(argv[k], '=') && takes_value(synopsis, argv[k]) && k + 1 < end)
      flags[n_flags++] = argv[++k];
  }
  memcpy(argv + 1 + n_pos, flags, (size_t)n_flags * sizeof(*flags));
}
