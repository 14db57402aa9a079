/* Shell-like word splitting without expansion (shell-words.h). */
#include "base/shell-words.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* A word being built: its bytes so far, and whether it exists at all
 * (`''` is an empty word, blanks alone are none). */
struct word {
  char *buf;
  size_t len;
  bool started;
};

static void word_add(struct word *w, char c) {
  w->buf = xrealloc(w->buf, w->len + 2);
  w->buf[w->len++] = c;
  w->buf[w->len] = '\0';
  w->started = true;
}

static void word_end(struct word *w, char ***words) {
  if (!w->started)
    return;
  cell_strv_push(words, w->buf ? w->buf : "");
  free(w->buf);
  *w = (struct word){0};
}

/* After a backslash inside double quotes, only these lose it. */
static bool dquote_escapable(char c) {
  return c == '\\' || c == '"' || c == '$' || c == '`' || c == '\n';
}

/* The quoted part that starts at *p (on its quote) into w; *p ends past
 * the closing quote.  -1 when it does not close. */
static int take_quoted(const char **p, struct word *w) {
  char quote = *(*p)++;
  w->started = true;
  for (; **p && **p != quote; (*p)++) {
    if (quote == '"' && **p == '\\' && dquote_escapable((*p)[1]))
      (*p)++;
    word_add(w, **p);
  }
  if (**p != quote)
    return -1;
  (*p)++;
  return 0;
}

int shell_words_split(const char *line, char ***words, cell_error **err) {
  cleanup_strv char **out = NULL;
  struct word w = {0};
  for (const char *p = line; *p;) {
    if (*p == ' ' || *p == '\t' || *p == '\n') {
      word_end(&w, &out);
      p++;
    } else if (*p == '\'' || *p == '"') {
      char quote = *p;
      if (take_quoted(&p, &w) < 0) {
        free(w.buf);
        return cell_fail(err, 0, "`%s`: the %s quote is not closed", line,
                         quote == '\'' ? "single" : "double");
      }
    } else if (*p == '\\') {
      if (p[1] == '\0') {
        free(w.buf);
        return cell_fail(err, 0, "`%s`: a backslash ends it (escape it: \\\\)",
                         line);
      }
      /* backslash-newline joins lines, as in a shell */
      if (p[1] != '\n')
        word_add(&w, p[1]);
      p += 2;
    } else {
      word_add(&w, *p++);
    }
  }
  word_end(&w, &out);
  if (!out)
    out = xcalloc(1, sizeof(*out));
  *words = steal_pointer(&out);
  return 0;
}
