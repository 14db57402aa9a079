/* OCI hooks: each runs with its args and env, the state JSON on stdin,
 * killed after its timeout. */
#ifndef CELL_HOOKS_H
#define CELL_HOOKS_H

#include "base/error.h"
#include "oci/spec.h"

/* Run the hooks of one kind in order and stop at the first failure, with
 * an error like "createRuntime hook 0 (`/usr/bin/x`): exited with status 3"
 * or "...: timed out after 2 s".  kind is the spec's name ("prestart",
 * "createRuntime", ...).  stdout/stderr of the hook are the caller's. */
int hooks_run(const struct spec_hook_list *hooks, const char *kind,
              const char *state_json, cell_error **err);

/* For poststart/poststop: run all, log a warning for each failure. */
void hooks_run_warn(const struct spec_hook_list *hooks, const char *kind,
                    const char *state_json);

#endif
