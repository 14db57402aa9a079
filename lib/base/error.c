#include "base/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *format_message(int errnum, const char *fmt, va_list ap) {
  char *base = NULL;
  if (vasprintf(&base, fmt, ap) < 0)
    return NULL;
  if (errnum == 0)
    return base;
  char *full = NULL;
  if (asprintf(&full, "%s: %s", base, strerror(errnum)) < 0)
    full = NULL;
  free(base);
  return full;
}

int cell_vfail(cell_error **err, int errnum, const char *fmt, va_list ap) {
  if (err == NULL)
    return -1;
  cell_error_free(err);
  cell_error *e = calloc(1, sizeof(*e));
  if (e == NULL)
    abort(); /* no way to report anything without memory */
  e->errnum = errnum;
  e->msg = format_message(errnum, fmt, ap);
  if (e->msg == NULL)
    abort();
  *err = e;
  return -1;
}

int cell_fail(cell_error **err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cell_vfail(err, errnum, fmt, ap);
  va_end(ap);
  return -1;
}

int cell_error_wrap(cell_error **err, const char *fmt, ...) {
  if (err == NULL)
    return -1;
  char *ctx = NULL;
  va_list ap;
  va_start(ap, fmt);
  int r = vasprintf(&ctx, fmt, ap);
  va_end(ap);
  if (r < 0)
    abort();
  if (*err == NULL) {
    cell_fail(err, 0, "%s", ctx);
    free(ctx);
    return -1;
  }
  char *full = NULL;
  if (asprintf(&full, "%s: %s", ctx, (*err)->msg) < 0)
    abort();
  free(ctx);
  free((*err)->msg);
  (*err)->msg = full;
  return -1;
}

void cell_error_free(cell_error **err) {
  if (err == NULL || *err == NULL)
    return;
  free((*err)->msg);
  free(*err);
  *err = NULL;
}
