/* cellctl-tree: the tar streams of `cellctl file push -r` and `file pull
 * -r`, on the caller's side.  A program of its own so that cellctl, run for
 * every command, loads neither libarchive nor libcrypto: they cost more
 * than the rest of its start together (perf stat: 18 ms of CPU against
 * 2 ms on a loaded host).  cellctl runs it (tree-helper.c):
 *
 *   cellctl-tree pack     the directory at fd 3 as a stream on fd 1
 *   cellctl-tree unpack   the stream on fd 0 extracted into the directory
 *                         at fd 3
 *
 * Warnings (an entry left out) go to stderr.  A failure is written to fd 4
 * as "ERRNUM MESSAGE", for cellctl to report once, and the exit status is
 * 1. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/util.h"
#include "local-tree.h"
#include "storage/tree-archive.h"

enum { DIR_FD = 3, ERROR_FD = 4 };

static void skipped_file_warning(void *ctx, const char *path,
                                 const char *why) {
  (void)ctx;
  fprintf(stderr, "cellctl: warning: `%s` left out: %s\n", path, why);
}

static int pack(cell_error **err) {
  struct tree_archive_opts opts = {.plain_only = true,
                                   .no_hardlinks = true,
                                   .skipped = skipped_file_warning};
  return tree_archive_write_with(DIR_FD, STDOUT_FILENO, &opts, NULL, err);
}

int main(int argc, char **argv) {
  cleanup_error cell_error *err = NULL;
  /* A reader gone (celld stopped reading): an error to report, not a
   * silent death. */
  signal(SIGPIPE, SIG_IGN);
  int r;
  if (argc == 2 && strcmp(argv[1], "pack") == 0)
    r = pack(&err);
  else if (argc == 2 && strcmp(argv[1], "unpack") == 0)
    r = local_tree_extract(DIR_FD, STDIN_FILENO, &err);
  else
    r = cell_fail(&err, EINVAL, "cellctl-tree: pack or unpack (run by "
                  "cellctl file push -r and pull -r)");
  if (r == 0)
    return 0;
  dprintf(ERROR_FD, "%d %s", err->errnum, err->msg);
  return 1;
}
