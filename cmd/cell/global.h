/* What every command of cell gets: the global flags, and the shape of an
 * entry in main.c's command table. */
#ifndef CELL_CMD_GLOBAL_H
#define CELL_CMD_GLOBAL_H

#include <stdbool.h>

struct global {
  const char *root;
  const char *log_format;
  bool debug;
  const char *criu; /* --criu PATH; NULL: criu on PATH */
};

struct command {
  const char *name;
  int (*fn)(const struct global *g, int argc, char **argv);
  const char *summary;
};

#endif
