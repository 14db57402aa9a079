/* The commands that work on a container's cgroup (cgroup-commands.c). */
#ifndef CELL_CGROUP_COMMANDS_H
#define CELL_CGROUP_COMMANDS_H

#include "global.h"

int cmd_pause(const struct global *g, int argc, char **argv);
int cmd_resume(const struct global *g, int argc, char **argv);
int cmd_ps(const struct global *g, int argc, char **argv);
int cmd_update(const struct global *g, int argc, char **argv);
int cmd_events(const struct global *g, int argc, char **argv);

#endif
