/* The ring buffer of an instance's console: the last bytes of its output,
 * kept by the console keeper (console-keeper.c) for a client that attaches
 * later.  A pure data structure: no I/O. */
#include "daemon/console-ring.h"

#include <string.h>

#include "base/util.h"

/* The first allocation; then it doubles up to max. */
#define RING_MIN 1024

void console_ring_init(struct console_ring *r, size_t max) {
  memset(r, 0, sizeof(*r));
  r->max = max;
}

void console_ring_spans(const struct console_ring *r, const char *span[2],
                        size_t len[2]) {
  span[0] = span[1] = r->buf;
  len[0] = len[1] = 0;
  if (r->len == 0)
    return;
  size_t first = r->cap - r->start;
  if (first > r->len)
    first = r->len;
  span[0] = r->buf + r->start;
  len[0] = first;
  len[1] = r->len - first;
}

size_t console_ring_copy(const struct console_ring *r, char *out) {
  const char *span[2];
  size_t len[2];
  console_ring_spans(r, span, len);
  if (len[0])
    memcpy(out, span[0], len[0]);
  if (len[1])
    memcpy(out + len[0], span[1], len[1]);
  return r->len;
}

static void ring_grow(struct console_ring *r, size_t need) {
  size_t cap = r->cap ? r->cap : RING_MIN;
  while (cap < need && cap < r->max)
    cap *= 2;
  if (cap > r->max)
    cap = r->max;
  if (cap <= r->cap)
    return;
  char *buf = xmalloc(cap);
  console_ring_copy(r, buf);
  free(r->buf);
  r->buf = buf;
  r->cap = cap;
  r->start = 0;
}

void console_ring_append(struct console_ring *r, const void *data, size_t n) {
  const char *p = data;
  if (n == 0 || r->max == 0)
    return;
  if (n >= r->max) {
    /* Only its tail survives, and nothing older. */
    p += n - r->max;
    n = r->max;
    r->start = 0;
    r->len = 0;
  }
  if (r->len + n > r->cap)
    ring_grow(r, r->len + n);
  if (r->len + n > r->cap) {
    /* Full at max: the oldest bytes make room. */
    size_t drop = r->len + n - r->cap;
    r->start = (r->start + drop) % r->cap;
    r->len -= drop;
  }
  size_t end = (r->start + r->len) % r->cap;
  size_t first = r->cap - end < n ? r->cap - end : n;
  memcpy(r->buf + end, p, first);
  memcpy(r->buf, p + first, n - first);
  r->len += n;
}

void console_ring_free(struct console_ring *r) {
  free(r->buf);
  console_ring_init(r, r->max);
}
