/* cellctl migrate and receive: a running instance moved to another celld
 * over a two-way stream (docs/api.md, "Migration"). */
#ifndef CELLCTL_MIGRATE_H
#define CELLCTL_MIGRATE_H

#include "cellctl.h"

int cmd_migrate(const struct invocation *inv, cell_error **err);
int cmd_receive(const struct invocation *inv, cell_error **err);

#endif
