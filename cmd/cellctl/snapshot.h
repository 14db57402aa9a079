/* cellctl snapshot, snapshots, restore, clone and rename. */
#ifndef CELLCTL_SNAPSHOT_H
#define CELLCTL_SNAPSHOT_H

#include "cellctl.h"

int cmd_snapshot(const struct invocation *inv, cell_error **err);
int cmd_snapshots(const struct invocation *inv, cell_error **err);
int cmd_restore(const struct invocation *inv, cell_error **err);
int cmd_clone(const struct invocation *inv, cell_error **err);
int cmd_rename(const struct invocation *inv, cell_error **err);

#endif
