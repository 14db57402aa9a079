/* runc parses a command's arguments with urfave/cli v1, which reorders them
 * before parsing: every flag goes in front, and the argument right after a
 * flag written without "=" goes with it (it may be that flag's value).
 * Scripts written for runc put flags after the container id
 * (`runc delete ID --force`, `runc update ID --pids-limit 10`), so cell
 * reorders the same way, which also reproduces runc's one surprise:
 * `kill ID --all KILL` takes KILL for the flag's value and moves it before
 * the ID, exactly as runc does. */
#include "args.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static bool is_flag(const char *arg) {
  return arg[0] == '-' && arg[1] != '\0';
}

void args_flags_first(int argc, char **argv) {
  if (argc < 2)
    return;
  cleanup_free char **flags = xcalloc((size_t)argc, sizeof(char *));
  cleanup_free char **rest = xcalloc((size_t)argc, sizeof(char *));
  int nflags = 0, nrest = 0;
  bool may_be_value = false;
  int i;
  for (i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--") == 0)
      break;
    /* "-" is a value (`update ID -r -` reads stdin), never a flag. */
    if (may_be_value && (arg[0] != '-' || strcmp(arg, "-") == 0)) {
      flags[nflags++] = argv[i];
      may_be_value = false;
    } else if (is_flag(arg)) {
      flags[nflags++] = argv[i];
      may_be_value = strchr(arg, '=') == NULL;
    } else {
      rest[nrest++] = argv[i];
      may_be_value = false;
    }
  }
  for (; i < argc; i++)
    rest[nrest++] = argv[i];
  memcpy(argv + 1, flags, (size_t)nflags * sizeof(char *));
  memcpy(argv + 1 + nflags, rest, (size_t)nrest * sizeof(char *));
}
