/* Splitting a command line into words as a POSIX shell would, with no
 * expansion: blanks separate words; '...' keeps everything literally;
 * "..." keeps everything but a backslash before \ " $ ` or a newline;
 * outside quotes a backslash keeps the next character.  No $VAR, no
 * globbing, no ~, no operators: `;`, `|` and `*` are plain characters. */
#ifndef CELL_SHELL_WORDS_H
#define CELL_SHELL_WORDS_H

#include "base/error.h"

/* The words of line, a new NULL-terminated list (cell_strv_free).  An
 * unterminated quote or a trailing backslash is an error naming it. */
int shell_words_split(const char *line, char ***words, cell_error **err);

#endif
