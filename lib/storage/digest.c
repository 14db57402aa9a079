/* sha256 digests through OpenSSL's EVP API. */
#include "storage/digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

struct digest_ctx {
  EVP_MD_CTX *md;
};

/* OpenSSL fails here only when out of memory, as xmalloc aborts. */
static void must_openssl(int ok, const char *what) {
  if (ok != 1) {
    fprintf(stderr, "cell: OpenSSL %s failed\n", what);
    abort();
  }
}

digest_ctx *digest_new(void) {
  digest_ctx *ctx = xcalloc(1, sizeof(*ctx));
  ctx->md = EVP_MD_CTX_new();
  must_openssl(ctx->md != NULL, "EVP_MD_CTX_new");
  must_openssl(EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL), "sha256 init");
  return ctx;
}

void digest_update(digest_ctx *ctx, const void *buf, size_t len) {
  must_openssl(EVP_DigestUpdate(ctx->md, buf, len), "sha256 update");
}

void digest_final(digest_ctx *ctx, char out[static DIGEST_STR_LEN]) {
  unsigned char raw[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  must_openssl(EVP_DigestFinal_ex(ctx->md, raw, &n), "sha256 final");
  static const char hex[] = "0123456789abcdef";
  memcpy(out, "sha256:", 7);
  for (unsigned int i = 0; i < n && i < 32; i++) {
    out[7 + 2 * i] = hex[raw[i] >> 4];
    out[8 + 2 * i] = hex[raw[i] & 0xf];
  }
  out[DIGEST_STR_LEN - 1] = '\0';
}

void digest_free(digest_ctx *ctx) {
  if (ctx == NULL)
    return;
  EVP_MD_CTX_free(ctx->md);
  free(ctx);
}

int digest_fd(int fd, char out[static DIGEST_STR_LEN], cell_error **err) {
  cleanup_digest digest_ctx *ctx = digest_new();
  char buf[128 * 1024];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return cell_fail_errno(err, "read the blob to digest it");
    if (n == 0)
      break;
    digest_update(ctx, buf, (size_t)n);
  }
  digest_final(ctx, out);
  return 0;
}

bool digest_is_valid(const char *expected) {
  if (expected == NULL || strncmp(expected, "sha256:", 7) != 0 ||
      strlen(expected) != DIGEST_STR_LEN - 1)
    return false;
  return strspn(expected + 7, "0123456789abcdef") == 64;
}

int digest_verify(int fd, const char *expected, cell_error **err) {
  if (!digest_is_valid(expected))
    return cell_fail(err, 0,
                     "digest \"%s\" is not \"sha256:\" and 64 lowercase hex "
                     "digits (the only form cell checks)",
                     expected ? expected : "");
  char got[DIGEST_STR_LEN];
  if (digest_fd(fd, got, err) < 0)
    return -1;
  if (strcmp(got, expected) != 0)
    return cell_fail(err, 0,
                     "digest mismatch: expected %s, the content is %s "
                     "(the blob is corrupt or not the one named; fetch it again)",
                     expected, got);
  return 0;
}
