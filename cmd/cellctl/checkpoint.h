/* cellctl checkpoint: a stateful snapshot (its disk and its processes). */
#ifndef CELLCTL_CHECKPOINT_H
#define CELLCTL_CHECKPOINT_H

#include "cellctl.h"

int cmd_checkpoint(const struct invocation *inv, cell_error **err);

#endif
