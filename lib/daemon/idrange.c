#include "daemon/idrange.h"

#include <errno.h>
#include <stdlib.h>

#include "base/util.h"

int idrange_pool_check(const struct idrange_pool *p, cell_error **err) {
  if (p->size == 0)
    return cell_fail(err, 0, "id pool: range size must be > 0");
  if (p->count < p->size)
    return cell_fail(err, 0,
                     "id pool: count %u holds no range of %u ids", p->count,
                     p->size);
  if ((uint64_t)p->start + p->count > UINT32_MAX)
    return cell_fail(err, 0, "id pool: %u + %u passes the largest id",
                     p->start, p->count);
  if (p->start < 65536)
    return cell_fail(err, 0,
                     "id pool: start %u overlaps host users (below 65536)",
                     p->start);
  return 0;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int idrange_alloc(const struct idrange_pool *p, const uint32_t *used,
                  size_t n_used, uint32_t *out, cell_error **err) {
  if (idrange_pool_check(p, err) < 0)
    return -1;
  uint32_t *sorted = xcalloc(n_used ? n_used : 1, sizeof(*sorted));
  for (size_t i = 0; i < n_used; i++)
    sorted[i] = used[i];
  qsort(sorted, n_used, sizeof(*sorted), cmp_u32);
  uint64_t blocks = p->count / p->size;
  size_t i = 0;
  int r = -1;
  /* Both sequences ascend: walk them side by side to the first gap. */
  for (uint64_t b = 0; b < blocks; b++) {
    uint64_t start = (uint64_t)p->start + b * p->size;
    while (i < n_used && sorted[i] < start)
      i++;
    if (i < n_used && sorted[i] == start)
      continue;
    *out = (uint32_t)start;
    r = 0;
    break;
  }
  free(sorted);
  if (r < 0)
    cell_fail(err, 0, "id pool exhausted: all %llu ranges of %u ids are in use",
              (unsigned long long)blocks, p->size);
  return r;
}

int idrange_check_block(const struct idrange_pool *p, uint32_t start,
                        cell_error **err) {
  uint64_t blocks = p->size ? p->count / p->size : 0;
  if (start < p->start || (start - p->start) % p->size != 0 ||
      (start - p->start) / p->size >= blocks)
    return cell_fail(err, 0,
                     "id range %u is not a block of the pool %u+%u (size %u)",
                     start, p->start, p->count, p->size);
  return 0;
}
