/* cellctl profile create|set|show|list|rm: named sets of settings. */
#ifndef CELLCTL_PROFILE_H
#define CELLCTL_PROFILE_H

#include "cellctl.h"

int cmd_profile(const struct invocation *inv, cell_error **err);

#endif
