/* criu's command line as checkpoint and restore build it: the shared
 * flags, their checks, and the config's bind mounts made external (by
 * destination at dump, bound again from their source at restore). */
#include <string.h>

#include "base/util.h"
#include "runtime/criu.h"
#include "unit.h"

/* The argv joined with spaces, for comparisons. */
static char *joined(char **argv) {
  char *s = xstrdup("");
  for (char **a = argv; a && *a; a++) {
    char *more = xasprintf("%s%s%s", s, s[0] ? " " : "", *a);
    free(s);
    s = more;
  }
  return s;
}

TEST(defaults_give_soft_cgroups_and_the_log_in_the_work_dir) {
  struct criu_opts o = {0};
  cleanup_strv char **argv = NULL;
  criu_args_begin(&o, "dump", "/img", "/work", &argv);
  cleanup_free char *line = joined(argv);
  CHECK_STR(line, "criu dump -D /img -W /work -v4 -o dump.log --manage-cgroups=soft");
}

TEST(flags_become_criu_options) {
  char *empty[] = {"network", NULL};
  struct criu_opts o = {.tcp_established = true, .ext_unix_sk = true,
                        .shell_job = true, .file_locks = true,
                        .manage_cgroups_mode = "ignore", .empty_ns = empty};
  cleanup_strv char **argv = NULL;
  criu_args_begin(&o, "restore", "/img", "/img", &argv);
  cleanup_free char *line = joined(argv);
  CHECK_CONTAINS(line, "--tcp-established --ext-unix-sk --shell-job --file-locks");
  CHECK_CONTAINS(line, "--empty-ns=net");
  CHECK_CONTAINS(line, "--manage-cgroups=ignore");
  CHECK_CONTAINS(line, "-o restore.log");
}

TEST(bad_values_are_refused_naming_the_flag) {
  cleanup_error cell_error *err = NULL;
  struct criu_opts o = {.manage_cgroups_mode = "sometimes"};
  CHECK(criu_opts_check(&o, &err) < 0);
  CHECK_STR(err ? err->msg : NULL,
            "--manage-cgroups-mode `sometimes`: not soft, full, strict or ignore");
  cell_error_free(&err);
  char *empty[] = {"pid", NULL};
  struct criu_opts p = {.empty_ns = empty};
  CHECK(criu_opts_check(&p, &err) < 0);
  CHECK_STR(err ? err->msg : NULL, "--empty-ns `pid`: only `network` can be left empty");
  cell_error_free(&err);
  struct criu_opts q = {.manage_cgroups_mode = "full"};
  CHECK(criu_opts_check(&q, &err) == 0);
}

TEST(bind_mounts_are_external_by_destination) {
  char *rbind[] = {"rbind", "rw", NULL};
  char *plain[] = {"nosuid", NULL};
  struct spec_mount mounts[] = {
      {.destination = "/proc", .type = "proc", .source = "proc"},
      {.destination = "/host", .type = "none", .source = "/srv/data", .options = rbind},
      {.destination = "/etc/hosts", .type = "bind", .source = "/run/hosts"},
      {.destination = "/run", .type = "tmpfs", .source = "tmpfs", .options = plain},
  };
  struct spec s = {.mounts = mounts, .n_mounts = 4};
  cleanup_strv char **dump = NULL, **restore = NULL;
  criu_args_bind_mounts(&s, false, &dump);
  criu_args_bind_mounts(&s, true, &restore);
  cleanup_free char *d = joined(dump), *r = joined(restore);
  CHECK_STR(d, "--ext-mount-map /host:/host --ext-mount-map /etc/hosts:/etc/hosts");
  CHECK_STR(r, "--ext-mount-map /host:/srv/data --ext-mount-map /etc/hosts:/run/hosts");
}

TEST(a_missing_criu_names_the_way_out) {
  cleanup_error cell_error *err = NULL;
  char *path = NULL;
  CHECK(criu_find("/nonexistent/criu", &path, &err) < 0);
  CHECK_CONTAINS(err ? err->msg : NULL, "--criu `/nonexistent/criu`: not an executable");
  CHECK(path == NULL);
}

int main(void) {
  RUN(defaults_give_soft_cgroups_and_the_log_in_the_work_dir);
  RUN(flags_become_criu_options);
  RUN(bad_values_are_refused_naming_the_flag);
  RUN(bind_mounts_are_external_by_destination);
  RUN(a_missing_criu_names_the_way_out);
  UNIT_DONE();
}
