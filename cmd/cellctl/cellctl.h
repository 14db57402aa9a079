/* What the files of cellctl share: its exit statuses and the shape of a
 * verb (one entry of main.c's table, one function in a verbs file).
 * Types and inline helpers only. */
#ifndef CELLCTL_H
#define CELLCTL_H

#include "base/error.h"
#include "base/json.h"

/* Documented by `cellctl --help` (main.c's exit_statuses[]).  exec and
 * enter exit with the command's own status instead of EXIT_OK. */
enum cellctl_exit {
  EXIT_OK = 0,
  EXIT_FAILED = 1,      /* celld failed or refused for no reason below */
  EXIT_USAGE = 2,       /* cellctl's own argument errors */
  EXIT_CONNECT = 3,     /* no celld answers at the socket, or it went */
  EXIT_NOT_FOUND = 4,   /* "not-found" */
  EXIT_PERMISSION = 5,  /* "permission-denied" */
  EXIT_EXISTS = 6,      /* "exists" */
  EXIT_WRONG_STATE = 7, /* "wrong-state" */
  EXIT_INVALID = 8,     /* "invalid-request", "unknown-op" */
  EXIT_EXEC = 125,      /* exec/enter: the command could not run */
};

struct verb;

/* One run of a verb: argv[0] is the verb's name, then its arguments. */
struct invocation {
  const struct verb *verb;
  const char *socket; /* --socket, or NULL */
  int argc;
  char **argv;
};

/* A verb returns an exit status; when it is not EXIT_OK (nor, for exec,
 * the command's own) *err says why, and main prints it once. */
typedef int verb_fn(const struct invocation *inv, cell_error **err);

struct verb {
  const char *name;
  verb_fn *run;
  const char *usage;   /* its arguments; a '\n' continues on the next line */
  const char *summary; /* one line */
};

static inline void cellctl_json_gen_freep(struct json_gen **g) {
  json_gen_free(*g);
}
#define cleanup_json_gen __attribute__((cleanup(cellctl_json_gen_freep)))

#endif
