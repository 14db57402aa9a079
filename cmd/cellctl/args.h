/* Argument helpers the verbs share: the NAME they act on, the few flags
 * of the simple verbs, and the usage error. */
#ifndef CELLCTL_ARGS_H
#define CELLCTL_ARGS_H

#include <stdbool.h>

#include "cellctl.h"

/* Set *err to the message and return EXIT_USAGE; main adds the verb's
 * usage line. */
int usage_error(cell_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* argv[1], the instance the verb acts on: EXIT_OK or a usage error. */
int verb_name(const struct invocation *inv, const char **name, cell_error **err);

/* Put the verb's positional arguments (NAME, SRC DST, KEY=VALUE...) first,
 * in their order, and its flags after them, each with its value, so that
 * `create --image X web1` is `create web1 --image X`.  Which flags take a
 * value is read from the verb's synopsis (struct verb's usage).  What
 * follows "--" stays where it is. */
void verb_args_in_order(const char *synopsis, int argc, char **argv);

enum verb_flag { FLAG_JSON = 1, FLAG_FORCE = 2, FLAG_TIMEOUT = 4 };

struct verb_flags {
  bool json;   /* --json */
  bool force;  /* -f, --force */
  int timeout; /* --timeout S; -1 when not given */
};

/* The flags in argv[first..], each one of `allowed` (enum verb_flag):
 * EXIT_OK or a usage error. */
int verb_flags(const struct invocation *inv, int first, unsigned allowed,
               struct verb_flags *out, cell_error **err);

#endif
