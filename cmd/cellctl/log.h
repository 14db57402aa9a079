/* The log verb: an instance's own log, the last lines. */
#ifndef CELLCTL_LOG_H
#define CELLCTL_LOG_H

#include "cellctl.h"

verb_fn cmd_log;

#endif
