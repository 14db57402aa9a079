/* checkpoint and restore, with runc's flags (checkpoint-commands.c). */
#ifndef CELL_CHECKPOINT_COMMANDS_H
#define CELL_CHECKPOINT_COMMANDS_H

#include "global.h"

int cmd_checkpoint(const struct global *g, int argc, char **argv);
int cmd_restore(const struct global *g, int argc, char **argv);

#endif
