/* cell exec (exec.c). */
#ifndef CELL_CMD_EXEC_H
#define CELL_CMD_EXEC_H

#include "global.h"

int cmd_exec(const struct global *g, int argc, char **argv);

#endif
