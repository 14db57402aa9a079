/* Content digests of layers and blobs: "sha256:<64 hex digits>", the form
 * OCI image manifests use.  OpenSSL's libcrypto (EVP) does the hashing;
 * this is the only file that knows it. */
#ifndef CELL_DIGEST_H
#define CELL_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

/* "sha256:" + 64 hex digits + NUL. */
#define DIGEST_STR_LEN (7 + 64 + 1)

/* A running sha256, for a stream read once for several purposes (the
 * layer extractor hashes the compressed bytes as it reads them). */
typedef struct digest_ctx digest_ctx;

digest_ctx *digest_new(void);
void digest_update(digest_ctx *ctx, const void *buf, size_t len);
/* Write "sha256:<hex>" to out; ctx may not be updated after. */
void digest_final(digest_ctx *ctx, char out[static DIGEST_STR_LEN]);
void digest_free(digest_ctx *ctx);
static inline void digest_freep(digest_ctx **ctx) { digest_free(*ctx); }
#define cleanup_digest __attribute__((cleanup(digest_freep)))

/* sha256 of what fd holds from its current position to EOF. */
int digest_fd(int fd, char out[static DIGEST_STR_LEN], cell_error **err);

/* True when expected is well formed: "sha256:" and 64 lowercase hex. */
bool digest_is_valid(const char *expected);

/* Read fd to EOF and compare its sha256 with expected ("sha256:<hex>").
 * Fails with a message naming both digests when they differ, and when
 * expected is malformed or of another algorithm. */
int digest_verify(int fd, const char *expected, cell_error **err);

#endif
