/* cellctl export NAME FILE|- and cellctl import FILE|- [--name NEW]: an
 * instance shipped between hosts as one stream. */
#ifndef CELLCTL_TRANSFER_H
#define CELLCTL_TRANSFER_H

#include "cellctl.h"

int cmd_export(const struct invocation *inv, cell_error **err);
int cmd_import(const struct invocation *inv, cell_error **err);

#endif
