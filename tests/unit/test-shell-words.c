/* Shell-like word splitting for `cellctl create --init` (lib/base/shell-words.c). */
#include <stdlib.h>

#include "base/shell-words.h"
#include "base/util.h"
#include "unit.h"

/* The words of line joined by `|`, or "error: MSG". */
static char *split(const char *line) {
  char **words = NULL;
  cell_error *err = NULL;
  if (shell_words_split(line, &words, &err) < 0) {
    char *msg = xasprintf("error: %s", err->msg);
    cell_error_free(&err);
    return msg;
  }
  char *out = xstrdup("");
  for (char **w = words; *w; w++) {
    char *more = xasprintf("%s%s%s", out, w == words ? "" : "|", *w);
    free(out);
    out = more;
  }
  cell_strv_free(words);
  return out;
}

#define SPLITS(line, want)                                                     \
  do {                                                                         \
    cleanup_free char *_got = split(line);                                     \
    CHECK_STR(_got, want);                                                     \
  } while (0)

TEST(blanks_separate_words) {
  SPLITS("/bin/sleep 100", "/bin/sleep|100");
  SPLITS("  a \t b\n c  ", "a|b|c");
  SPLITS("", "");
  SPLITS("   ", "");
}

TEST(single_quotes_keep_everything) {
  SPLITS("/bin/sh -c 'echo hi; exit 3'", "/bin/sh|-c|echo hi; exit 3");
  SPLITS("'a\\b \"c\"'", "a\\b \"c\"");
  SPLITS("''", "");
  SPLITS("x'' y", "x|y");
  SPLITS("a'b c'd", "ab cd");
}

TEST(double_quotes_keep_all_but_some_backslashes) {
  SPLITS("\"a b\" c", "a b|c");
  SPLITS("\"say \\\"hi\\\"\"", "say \"hi\"");
  SPLITS("\"\\$HOME \\n\"", "$HOME \\n");
  SPLITS("\"\"", "");
}

TEST(backslash_keeps_the_next_character) {
  SPLITS("a\\ b c", "a b|c");
  SPLITS("\\'x\\'", "'x'");
  SPLITS("a\\\nb", "ab");
}

TEST(nothing_is_expanded) {
  SPLITS("echo $HOME * ~ `id` ; | &", "echo|$HOME|*|~|`id`|;|||&");
}

TEST(unterminated_input_is_an_error) {
  cleanup_free char *s = split("sh -c 'echo");
  CHECK_CONTAINS(s, "single quote is not closed");
  cleanup_free char *d = split("sh -c \"echo");
  CHECK_CONTAINS(d, "double quote is not closed");
  cleanup_free char *b = split("echo \\");
  CHECK_CONTAINS(b, "backslash ends it");
}

int main(void) {
  RUN(blanks_separate_words);
  RUN(single_quotes_keep_everything);
  RUN(double_quotes_keep_all_but_some_backslashes);
  RUN(backslash_keeps_the_next_character);
  RUN(nothing_is_expanded);
  RUN(unterminated_input_is_an_error);
  UNIT_DONE();
}
