#include <sys/mount.h>

#include "base/util.h"
#include "runtime/rootfs.h"
#include "unit.h"

static void parse(char *const *options, struct mount_options *o) {
  cell_error *err = NULL;
  CHECK(mount_options_parse(options, o, &err) == 0);
  CHECK(err == NULL);
  cell_error_free(&err);
}

TEST(no_options) {
  struct mount_options o;
  parse(NULL, &o);
  CHECK(o.flags == 0);
  CHECK(o.clear_flags == 0);
  CHECK(o.propagation == 0);
  CHECK(o.data == NULL);
  CHECK(!o.idmap);
  mount_options_free(&o);
}

TEST(runc_proc_and_sys_options) {
  char *opts[] = {"nosuid", "noexec", "nodev", "ro", NULL};
  struct mount_options o;
  parse(opts, &o);
  CHECK(o.flags == (MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY));
  CHECK(o.clear_flags == 0);
  CHECK(o.data == NULL);
  mount_options_free(&o);
}

TEST(tmpfs_data_is_joined_in_order) {
  char *opts[] = {"nosuid", "strictatime", "mode=755", "size=65536k", NULL};
  struct mount_options o;
  parse(opts, &o);
  CHECK(o.flags == (MS_NOSUID | MS_STRICTATIME));
  CHECK_STR(o.data, "mode=755,size=65536k");
  mount_options_free(&o);
  CHECK(o.data == NULL);
}

TEST(devpts_options) {
  char *opts[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                  "mode=0620", "gid=5", NULL};
  struct mount_options o;
  parse(opts, &o);
  CHECK(o.flags == (MS_NOSUID | MS_NOEXEC));
  CHECK_STR(o.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  mount_options_free(&o);
}

TEST(overlay_data) {
  char *opts[] = {"lowerdir=/l1:/l2", "upperdir=/u", "workdir=/w", "ro", NULL};
  struct mount_options o;
  parse(opts, &o);
  CHECK(o.flags == MS_RDONLY);
  CHECK_STR(o.data, "lowerdir=/l1:/l2,upperdir=/u,workdir=/w");
  mount_options_free(&o);
}

TEST(bind_and_rbind) {
  char *bind[] = {"bind", "ro", NULL};
  char *rbind[] = {"rbind", "rprivate", "nosuid", NULL};
  struct mount_options o;
  parse(bind, &o);
  CHECK(o.flags == (MS_BIND | MS_RDONLY));
  CHECK(o.propagation == 0);
  mount_options_free(&o);
  parse(rbind, &o);
  CHECK(o.flags == (MS_BIND | MS_REC | MS_NOSUID));
  CHECK(o.propagation == (MS_PRIVATE | MS_REC));
  CHECK(o.data == NULL);
  mount_options_free(&o);
}

TEST(later_option_wins) {
  char *ro_rw[] = {"ro", "rw", NULL};
  char *rw_ro[] = {"rw", "ro", NULL};
  struct mount_options o;
  parse(ro_rw, &o);
  CHECK(o.flags == 0);
  CHECK(o.clear_flags == MS_RDONLY);
  mount_options_free(&o);
  parse(rw_ro, &o);
  CHECK(o.flags == MS_RDONLY);
  CHECK(o.clear_flags == 0);
  mount_options_free(&o);
}

TEST(clearing_options) {
  char *opts[] = {"suid", "dev", "exec", "async", "atime", "diratime",
                  "norelatime", "nostrictatime", "nolazytime", "loud",
                  "nomand", NULL};
  struct mount_options o;
  parse(opts, &o);
  CHECK(o.flags == 0);
  CHECK(o.clear_flags == (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_SYNCHRONOUS |
                          MS_NOATIME | MS_NODIRATIME | MS_RELATIME |
                          MS_STRICTATIME | MS_LAZYTIME | MS_SILENT |
                          MS_MANDLOCK));
  CHECK(o.data == NULL);
  mount_options_free(&o);
}

TEST(setting_options) {
  char *opts[] = {"sync", "dirsync", "remount", "mand", "noatime",
                  "nodiratime", "relatime", "lazytime", "silent", "defaults",
                  NULL};
  struct mount_options o;
  parse(opts, &o);
  CHECK(o.flags == (MS_SYNCHRONOUS | MS_DIRSYNC | MS_REMOUNT | MS_MANDLOCK |
                    MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_LAZYTIME |
                    MS_SILENT));
  CHECK(o.clear_flags == 0);
  CHECK(o.data == NULL);
  mount_options_free(&o);
}

TEST(propagation_options) {
  static const struct {
    const char *name;
    unsigned long flags;
  } cases[] = {
      {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
      {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *opts[] = {(char *)cases[i].name, NULL};
    struct mount_options o;
    parse(opts, &o);
    CHECK(o.propagation == cases[i].flags);
    CHECK(o.flags == 0);
    CHECK(o.data == NULL);
    mount_options_free(&o);
  }
}

TEST(idmap) {
  char *opts[] = {"rbind", "idmap", NULL};
  struct mount_options o;
  parse(opts, &o);
  CHECK(o.idmap);
  CHECK(o.flags == (MS_BIND | MS_REC));
  CHECK(o.data == NULL);
  mount_options_free(&o);
}

TEST(recursive_options_are_mount_attrs_not_data) {
  char *opts[] = {"rbind", "rro", "rnosuid", "rnodev", "rnoexec",
                  "rnosymfollow", "rnodiratime", NULL};
  struct mount_options o;
  parse(opts, &o);
  CHECK(o.flags == (MS_BIND | MS_REC));
  CHECK(o.rec_attr_set == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                           MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC |
                           MOUNT_ATTR_NOSYMFOLLOW | MOUNT_ATTR_NODIRATIME));
  CHECK(o.rec_attr_clr == 0);
  CHECK(o.data == NULL);
  mount_options_free(&o);
}

TEST(recursive_clearing_options) {
  char *opts[] = {"rrw", "rsuid", "rdev", "rexec", "rsymfollow", "rdiratime",
                  NULL};
  struct mount_options o;
  parse(opts, &o);
  CHECK(o.rec_attr_set == 0);
  CHECK(o.rec_attr_clr == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                           MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC |
                           MOUNT_ATTR_NOSYMFOLLOW | MOUNT_ATTR_NODIRATIME));
  CHECK(o.flags == 0);
  CHECK(o.data == NULL);
  mount_options_free(&o);
}

TEST(later_recursive_option_wins) {
  char *ro_rw[] = {"rro", "rrw", NULL};
  char *rw_ro[] = {"rrw", "rro", NULL};
  struct mount_options o;
  parse(ro_rw, &o);
  CHECK(o.rec_attr_set == 0);
  CHECK(o.rec_attr_clr == MOUNT_ATTR_RDONLY);
  mount_options_free(&o);
  parse(rw_ro, &o);
  CHECK(o.rec_attr_set == MOUNT_ATTR_RDONLY);
  CHECK(o.rec_attr_clr == 0);
  mount_options_free(&o);
}

/* The atime modes are one field: each option clears the whole of it (the
 * kernel requires that to change it) and sets its mode, the last wins. */
TEST(recursive_atime_modes) {
  static const struct {
    const char *name;
    unsigned long long mode;
  } cases[] = {
      {"rnoatime", MOUNT_ATTR_NOATIME},
      {"rstrictatime", MOUNT_ATTR_STRICTATIME},
      {"rrelatime", MOUNT_ATTR_RELATIME},
      {"ratime", MOUNT_ATTR_RELATIME},
      {"rnostrictatime", MOUNT_ATTR_RELATIME},
      {"rnorelatime", MOUNT_ATTR_STRICTATIME},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *opts[] = {"rnoatime", (char *)cases[i].name, "rnodiratime", NULL};
    struct mount_options o;
    parse(opts, &o);
    CHECK((o.rec_attr_set & MOUNT_ATTR__ATIME) == cases[i].mode);
    CHECK(o.rec_attr_set & MOUNT_ATTR_NODIRATIME);
    CHECK((o.rec_attr_clr & MOUNT_ATTR__ATIME) == MOUNT_ATTR__ATIME);
    CHECK(o.flags == 0);
    CHECK(o.data == NULL);
    mount_options_free(&o);
  }
}

TEST(non_recursive_options_leave_the_tree_alone) {
  char *opts[] = {"rbind", "ro", "nosuid", "noatime", NULL};
  struct mount_options o;
  parse(opts, &o);
  CHECK(o.rec_attr_set == 0);
  CHECK(o.rec_attr_clr == 0);
  mount_options_free(&o);
}

TEST(rootfs_propagation) {
  cell_error *err = NULL;
  unsigned long f = 123;
  CHECK(rootfs_propagation_flags(NULL, &f, &err) == 0);
  CHECK(f == 0);
  CHECK(rootfs_propagation_flags("rslave", &f, &err) == 0);
  CHECK(f == (MS_SLAVE | MS_REC));
  CHECK(rootfs_propagation_flags("private", &f, &err) == 0);
  CHECK(f == MS_PRIVATE);
  CHECK(rootfs_propagation_flags("rshared", &f, &err) == 0);
  CHECK(f == (MS_SHARED | MS_REC));
  CHECK(rootfs_propagation_flags("runbindable", &f, &err) == 0);
  CHECK(f == (MS_UNBINDABLE | MS_REC));
  CHECK(err == NULL);

  CHECK(rootfs_propagation_flags("sideways", &f, &err) < 0);
  CHECK(err != NULL);
  if (err) {
    CHECK_CONTAINS(err->msg, "rootfsPropagation");
    CHECK_CONTAINS(err->msg, "`sideways`");
  }
  cell_error_free(&err);
  /* A mount option, but not a propagation. */
  CHECK(rootfs_propagation_flags("rbind", &f, &err) < 0);
  cell_error_free(&err);
}

int main(void) {
  RUN(no_options);
  RUN(runc_proc_and_sys_options);
  RUN(tmpfs_data_is_joined_in_order);
  RUN(devpts_options);
  RUN(overlay_data);
  RUN(bind_and_rbind);
  RUN(later_option_wins);
  RUN(clearing_options);
  RUN(setting_options);
  RUN(propagation_options);
  RUN(idmap);
  RUN(recursive_options_are_mount_attrs_not_data);
  RUN(recursive_clearing_options);
  RUN(later_recursive_option_wins);
  RUN(recursive_atime_modes);
  RUN(non_recursive_options_leave_the_tree_alone);
  RUN(rootfs_propagation);
  UNIT_DONE();
}
