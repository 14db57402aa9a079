/* `cell features`: what this build of cell supports, as the OCI
 * runtime-spec features document (features.md) describes it. */
#ifndef CELL_OCI_FEATURES_H
#define CELL_OCI_FEATURES_H

char *features_json(void);

#endif
