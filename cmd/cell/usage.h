/* How cell's commands end on an error: the error's message, or a usage
 * error that says where the usage is, logged once; exit status 1. */
#ifndef CELL_CMD_USAGE_H
#define CELL_CMD_USAGE_H

#include "base/error.h"

/* Log err's message (err is freed); returns 1. */
int report(cell_error *err);

/* Log "CMD: MESSAGE (see cell CMD --help)"; returns 1. */
int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Exactly one argument (the container's ID) after the options: 0, or -1
 * with the usage error logged. */
int need_id(const char *cmd, int argc);

#endif
