/* The one error style of libcell.
 *
 * A failing function returns a negative int and stores a heap-allocated
 * cell_error (errno + message) through its `cell_error **err` argument.
 * Callers either handle it (cell_error_free) or add context and pass it up
 * (cell_error_wrap).  Only the program's main prints it, once. */
#ifndef CELL_ERROR_H
#define CELL_ERROR_H

#include <stdarg.h>

typedef struct cell_error {
  int errnum;  /* errno value, 0 when the error is not a system error */
  char *msg;   /* full message, without the program name prefix */
} cell_error;

/* Set *err to a new error made of fmt; when errnum != 0 the message gets
 * ": strerror(errnum)" appended.  Returns -1 (so `return cell_fail(...)`). */
int cell_fail(cell_error **err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cell_vfail(cell_error **err, int errnum, const char *fmt, va_list ap);

/* Shorthand for cell_fail(err, errno, ...). */
#define cell_fail_errno(err, ...) cell_fail((err), errno, __VA_ARGS__)

/* Prefix an existing error with context: "<context>: <old message>".
 * Returns -1.  When *err is NULL it behaves as cell_fail(err, 0, ...). */
int cell_error_wrap(cell_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void cell_error_free(cell_error **err);

/* Used with __attribute__((cleanup)). */
static inline void cell_error_freep(cell_error **err) { cell_error_free(err); }
#define cleanup_error __attribute__((cleanup(cell_error_freep)))

#endif
