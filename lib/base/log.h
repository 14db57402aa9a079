/* Diagnostics: --log FILE, --log-format text|json, --debug.
 * Lines are runc's (logrus): text `time="..." level=debug msg="..."`, or
 * json {"level","msg","time"} as containerd's shim reads them.
 * Without --log, messages go to stderr as "cell: msg", or as log lines with
 * --debug or --log-format json.  With --log, they go to the file, and
 * errors also to stderr as "cell: msg". */
#ifndef CELL_LOG_H
#define CELL_LOG_H

#include <stdbool.h>

#include "base/error.h"

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Configure once from the global flags.  file may be NULL; format is
 * "text" or "json" (anything else is an error). */
int log_init(const char *program, const char *file, const char *format,
             bool debug, cell_error **err);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
bool log_debug_enabled(void);
/* The fd of the log file (-1 when none), so a child can keep it open. */
int log_fd(void);
void log_close(void);

#endif
