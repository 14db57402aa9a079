/* The verbs about celld as a whole: list, networks, events, raw. */
#ifndef CELLCTL_CELLD_H
#define CELLCTL_CELLD_H

#include "cellctl.h"

verb_fn cmd_list, cmd_networks, cmd_pools, cmd_events, cmd_raw, cmd_wait_ready;

#endif
