/* config.json, as `cell create` reads it before it touches the system:
 * spec_parse, spec_validate_for_create, and the checks the runtime makes
 * on the parsed spec (mount options, propagation, capabilities, sysctls,
 * the seccomp profile compiled to BPF but never loaded).  The same bytes
 * also go to spec_parse_resources, the parser of `cell update -r`.
 *
 * Left out on purpose: ns_plan_make opens linux.namespaces[].path (a FIFO
 * there would block the fuzzer), network_check_devices asks the kernel
 * over netlink. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/error.h"
#include "oci/spec.h"
#include "runtime/capabilities.h"
#include "runtime/namespaces.h"
#include "runtime/rootfs.h"
#include "runtime/seccomp.h"
#include "runtime/selfexe.h"
#include "runtime/sysctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An error is an answer like any other: free it and go on. */
static void drop(cell_error **err) { cell_error_free(err); }

static void check_mounts(const struct spec *s) {
  for (size_t i = 0; i < s->n_mounts; i++) {
    cleanup_error cell_error *err = NULL;
    struct mount_options o;
    if (mount_options_parse(s->mounts[i].options, &o, &err) == 0)
      mount_options_free(&o);
  }
}

static void check_linux(const struct spec *s) {
  const struct spec_linux *l = s->linux_;
  if (l == NULL)
    return;
  cleanup_error cell_error *err = NULL;
  unsigned long flags;
  if (rootfs_propagation_flags(l->rootfs_propagation, &flags, &err) < 0)
    drop(&err);
  free(ns_format_id_map(l->uid_mappings, l->n_uid_mappings));
  free(ns_format_id_map(l->gid_mappings, l->n_gid_mappings));
  struct seccomp_program *prog = NULL;
  if (seccomp_compile(l->seccomp, &prog, &err) < 0)
    drop(&err);
  seccomp_program_free(prog);
}

/* What create_container does with a spec that passed validation. */
static void check_for_create(struct spec *s) {
  cleanup_error cell_error *err = NULL;
  if (rootfs_bind_sources_in_bundle(s, "/run/bundle", &err) < 0)
    return;
  (void)selfexe_needs_sealed_copy(s);
  struct caps_plan *caps = NULL;
  if (caps_plan_make(s->process, &caps, &err) < 0)
    drop(&err);
  caps_plan_free(caps);
  if (sysctl_validate(s, &err) < 0)
    drop(&err);
  check_mounts(s);
  check_linux(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  cleanup_error cell_error *err = NULL;
  struct spec_resources *r = NULL;
  if (spec_parse_resources(text, size, &r, &err) < 0)
    drop(&err);
  spec_resources_free(r);

  cleanup_spec struct spec *s = NULL;
  if (spec_parse(text, size, &s, &err) < 0)
    return 0;
  if (spec_validate_for_create(s, &err) < 0)
    return 0;
  check_for_create(s);
  return 0;
}
