/* The verbs that hand celld an fd and wait while it works on it (image
 * import, export, import): the request sent with the fd, then progress
 * lines until the answer, shown as one line on a terminal or passed on as
 * JSON lines; Ctrl-C cancels (celld drops the work when the connection
 * goes). */
#ifndef CELLCTL_PROGRESS_H
#define CELLCTL_PROGRESS_H

#include "base/json.h"
#include "cellctl.h"

enum progress_mode { PROGRESS_TTY, PROGRESS_JSON, PROGRESS_NONE };

/* "auto" (a line when stderr is a terminal, else nothing), "tty", "json",
 * "none"; -1 for anything else. */
int progress_mode_parse(const char *s);

/* From now on SIGINT and SIGTERM end cellctl with "cellctl: WHAT
 * cancelled", removing partial_file (may be NULL: a file being made). */
void progress_cancel_on_signals(const char *what, const char *partial_file);

/* Dial celld, send req with fd riding along, then show its progress as
 * verb ("importing") says until the answer, parsed into *answer. */
int progress_call_with_fd(const char *socket, const char *req, int fd,
                          const char *verb, enum progress_mode mode,
                          struct json_value **answer, cell_error **err);

#endif
