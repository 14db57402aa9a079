/* The default config.json that `cell spec` writes, from the files of
 * config/ compiled into libcell (config-data.S). */
#ifndef CELL_SPEC_DEFAULT_H
#define CELL_SPEC_DEFAULT_H

#include <stdbool.h>
#include <sys/types.h>

/* config/spec.json, or the rootless variant mapping the caller's uid/gid
 * to root.  The caller frees it. */
char *spec_default_json(bool rootless, uid_t uid, gid_t gid);

#endif
