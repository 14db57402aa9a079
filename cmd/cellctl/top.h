/* The usage verbs: top (a table of every instance's use, refreshed in
 * place on a terminal) and metrics (the Prometheus text celld renders). */
#ifndef CELLCTL_TOP_H
#define CELLCTL_TOP_H

#include "cellctl.h"

verb_fn cmd_top, cmd_metrics;

#endif
