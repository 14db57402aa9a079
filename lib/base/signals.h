/* Signal names and numbers as runc's `kill` accepts them. */
#ifndef CELL_SIGNALS_H
#define CELL_SIGNALS_H

#include "base/error.h"

/* "KILL", "SIGKILL", "sigkill", "9", "RTMIN+3", "SIGRTMAX-1" -> number.
 * Unknown names or out-of-range numbers are an error naming the input. */
int signal_parse(const char *s, int *signo, cell_error **err);
/* "SIGKILL" for 9; "SIGRTMIN+3" for real-time ones; NULL if invalid. */
const char *signal_name(int signo, char *buf, unsigned size);

#endif
