/* cellctl checkpoint NAME [SNAP] [--stop] (docs/api.md, "Checkpoints"). */
#include "checkpoint.h"

#include <stdio.h>
#include <string.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "output.h"

int cmd_checkpoint(const struct invocation *inv, cell_error **err) {
  const char *name = NULL, *snap = NULL;
  bool stop = false;
  for (int i = 1; i < inv->argc; i++) {
    const char *a = inv->argv[i];
    if (strcmp(a, "--stop") == 0)
      stop = true;
    else if (a[0] == '-')
      return usage_error(err, "checkpoint: unknown flag `%s` (NAME [SNAP] "
                         "[--stop])", a);
    else if (!name)
      name = a;
    else if (!snap)
      snap = a;
    else
      return usage_error(err, "checkpoint: NAME [SNAP] [--stop]");
  }
  if (!name)
    return usage_error(err, "checkpoint: NAME [SNAP] [--stop]");
  cleanup_json_gen struct json_gen *g = request_new("checkpoint", name);
  if (snap)
    json_gen_kv_string(g, "snapshot", snap);
  if (stop)
    json_gen_kv_bool(g, "stop", true);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  int rc = client_request(inv->socket, req, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  /* The snapshot's name for scripts; how long it was frozen for people. */
  printf("%s\n", field_string(answer, "snapshot"));
  fflush(stdout);
  fprintf(stderr, "frozen for %lld ms\n", field_int(answer, "frozen_ms", 0));
  return EXIT_OK;
}
