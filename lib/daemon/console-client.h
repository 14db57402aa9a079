/* cellctl's end of an instance console: the socket celld hands it (already
 * attached by the console keeper, console-keeper.h) relayed to and from
 * our terminal. */
#ifndef CELL_CONSOLE_CLIENT_H
#define CELL_CONSOLE_CLIENT_H

#include "base/error.h"

enum console_end {
  CONSOLE_DETACHED,   /* the detach key, or a signal */
  CONSOLE_CLOSED,     /* the console went away */
  CONSOLE_INPUT_DONE, /* input was not a terminal and ended; output settled */
};

/* Relay stdin/stdout to an attached socket: raw mode and the window size
 * (SIGWINCH) when stdin is a terminal, the detach key (Ctrl-]).  With
 * stdin not a terminal, its end detaches once the console has been quiet
 * for a second.  The keeper's refusal is an error. */
int console_client(int sock, enum console_end *end, cell_error **err);

#endif
