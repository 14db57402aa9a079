/* The uid/gid range allocator of celld (lib/daemon/idrange.c). */
#include "daemon/idrange.h"

#include "unit.h"

static const struct idrange_pool pool = {200000, 65536 * 4, 65536};

TEST(first_block_when_empty) {
  uint32_t out = 0;
  cell_error *err = NULL;
  CHECK(idrange_alloc(&pool, NULL, 0, &out, &err) == 0);
  CHECK(out == 200000);
}

TEST(lowest_gap_is_reused) {
  uint32_t used[] = {200000 + 2 * 65536, 200000};
  uint32_t out = 0;
  cell_error *err = NULL;
  CHECK(idrange_alloc(&pool, used, 2, &out, &err) == 0);
  CHECK(out == 200000 + 65536);
}

TEST(never_hands_out_a_used_block) {
  uint32_t used[4];
  size_t n = 0;
  cell_error *err = NULL;
  for (int i = 0; i < 4; i++) {
    uint32_t out = 0;
    CHECK(idrange_alloc(&pool, used, n, &out, &err) == 0);
    for (size_t j = 0; j < n; j++) {
      /* Disjoint: no block starts inside another. */
      CHECK(out >= used[j] + pool.size || used[j] >= out + pool.size);
    }
    used[n++] = out;
  }
  uint32_t out = 0;
  CHECK(idrange_alloc(&pool, used, n, &out, &err) < 0);
  CHECK(err != NULL);
  if (err)
    CHECK_CONTAINS(err->msg, "id pool exhausted");
  cell_error_free(&err);
}

TEST(freed_block_comes_back) {
  uint32_t used[] = {200000, 200000 + 65536, 200000 + 3 * 65536};
  uint32_t out = 0;
  cell_error *err = NULL;
  CHECK(idrange_alloc(&pool, used, 3, &out, &err) == 0);
  CHECK(out == 200000 + 2 * 65536);
}

TEST(pool_without_a_whole_block) {
  struct idrange_pool small = {200000, 1000, 65536};
  uint32_t out = 0;
  cell_error *err = NULL;
  CHECK(idrange_alloc(&small, NULL, 0, &out, &err) < 0);
  if (err)
    CHECK_CONTAINS(err->msg, "holds no range");
  cell_error_free(&err);
}

TEST(pool_checks) {
  cell_error *err = NULL;
  struct idrange_pool host = {1000, 65536, 65536};
  CHECK(idrange_pool_check(&host, &err) < 0);
  if (err)
    CHECK_CONTAINS(err->msg, "host users");
  cell_error_free(&err);
  struct idrange_pool wrap = {4294000000u, 65536 * 100, 65536};
  CHECK(idrange_pool_check(&wrap, &err) < 0);
  cell_error_free(&err);
  struct idrange_pool zero = {200000, 65536, 0};
  CHECK(idrange_pool_check(&zero, &err) < 0);
  cell_error_free(&err);
  CHECK(idrange_pool_check(&pool, &err) == 0);
}

TEST(block_check) {
  cell_error *err = NULL;
  CHECK(idrange_check_block(&pool, 200000 + 65536, &err) == 0);
  CHECK(idrange_check_block(&pool, 200001, &err) < 0);
  cell_error_free(&err);
  CHECK(idrange_check_block(&pool, 200000 + 4 * 65536, &err) < 0);
  cell_error_free(&err);
  CHECK(idrange_check_block(&pool, 100000, &err) < 0);
  cell_error_free(&err);
}

int main(void) {
  RUN(first_block_when_empty);
  RUN(lowest_gap_is_reused);
  RUN(never_hands_out_a_used_block);
  RUN(freed_block_comes_back);
  RUN(pool_without_a_whole_block);
  RUN(pool_checks);
  RUN(block_check);
  UNIT_DONE();
}
