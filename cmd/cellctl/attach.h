/* The verbs that attach us to a running instance: exec and enter (a
 * command in it, with our stdio or a terminal) and console (its console,
 * through the console keeper). */
#ifndef CELLCTL_ATTACH_H
#define CELLCTL_ATTACH_H

#include "cellctl.h"

verb_fn cmd_exec, cmd_enter, cmd_console;

#endif
