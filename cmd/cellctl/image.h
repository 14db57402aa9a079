/* cellctl image import|list|show|tag|rm, and the import create --template
 * does first. */
#ifndef CELLCTL_IMAGE_H
#define CELLCTL_IMAGE_H

#include <stdbool.h>

#include "cellctl.h"

int cmd_image(const struct invocation *inv, cell_error **err);
/* Import source (a path, -, or a skopeo transport) as as (NAME[:TAG], or
 * NULL for none); *id gets its id.  quiet: no progress line. */
int image_import_source(const char *socket, const char *source, const char *as,
                        bool quiet, char **id, cell_error **err);

#endif
