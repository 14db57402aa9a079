/* The pool of host uid/gid ranges that celld hands to instances: each
 * instance gets one aligned block of `size` ids, disjoint from every other.
 * The allocator keeps no state of its own: the instance records are the
 * source of truth, and the caller passes the blocks they hold. */
#ifndef CELL_IDRANGE_H
#define CELL_IDRANGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct idrange_pool {
  uint32_t start; /* first host id of the pool */
  uint32_t count; /* ids in the pool (a multiple of size is not required) */
  uint32_t size;  /* ids per instance, > 0 */
};

/* Check that a pool is usable: size > 0, at least one block, no wrap past
 * 2^32-1, and not touching ids 0..65535 (host users). */
int idrange_pool_check(const struct idrange_pool *p, cell_error **err);

/* The lowest free block's first id in *out, given the first ids of the
 * blocks in use (any order, duplicates allowed).  "id pool exhausted" when
 * every block is taken. */
int idrange_alloc(const struct idrange_pool *p, const uint32_t *used,
                  size_t n_used, uint32_t *out, cell_error **err);

/* Whether start is the first id of a block of the pool (what a record read
 * back from disk must hold). */
int idrange_check_block(const struct idrange_pool *p, uint32_t start,
                        cell_error **err);

#endif
