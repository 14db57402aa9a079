/* The ring buffer of an instance's console: the last `max` bytes written
 * to it.  Memory grows with what was written, up to max: a quiet instance
 * costs little.  The console keeper (console-keeper.c) holds one per
 * console. */
#ifndef CELL_CONSOLE_RING_H
#define CELL_CONSOLE_RING_H

#include <stddef.h>

struct console_ring {
  char *buf;
  size_t cap;   /* allocated, <= max */
  size_t max;
  size_t start; /* index of the oldest byte */
  size_t len;   /* bytes held */
};

void console_ring_init(struct console_ring *r, size_t max);
void console_ring_append(struct console_ring *r, const void *data, size_t n);
/* The bytes held, oldest first, as one or two spans (the second may be
 * empty). */
void console_ring_spans(const struct console_ring *r, const char *span[2],
                        size_t len[2]);
/* Copy the bytes held, oldest first, into out (r->len bytes). */
size_t console_ring_copy(const struct console_ring *r, char *out);
void console_ring_free(struct console_ring *r);

#endif
