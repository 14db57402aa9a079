/* The verbs on one instance: create, start, stop, restart, destroy, show,
 * set, get, pause, resume.  Each builds its request from the arguments and prints the answer. */
#ifndef CELLCTL_INSTANCE_H
#define CELLCTL_INSTANCE_H

#include "cellctl.h"

verb_fn cmd_create, cmd_start, cmd_stop, cmd_restart, cmd_destroy, cmd_show,
    cmd_set, cmd_get, cmd_pause, cmd_resume;

#endif
