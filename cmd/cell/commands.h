/* The lifecycle commands and those that need no container (commands.c). */
#ifndef CELL_COMMANDS_H
#define CELL_COMMANDS_H

#include "global.h"

int cmd_create(const struct global *g, int argc, char **argv);
int cmd_start(const struct global *g, int argc, char **argv);
int cmd_run(const struct global *g, int argc, char **argv);
int cmd_state(const struct global *g, int argc, char **argv);
int cmd_kill(const struct global *g, int argc, char **argv);
int cmd_delete(const struct global *g, int argc, char **argv);
int cmd_list(const struct global *g, int argc, char **argv);
int cmd_spec(const struct global *g, int argc, char **argv);
int cmd_features(const struct global *g, int argc, char **argv);

#endif
