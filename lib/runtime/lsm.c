#include "runtime/lsm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "base/procfs.h"
#include "base/util.h"

#define SELINUX_MAGIC 0xf97cff8c

/* As runc's apparmor.IsEnabled: the module is on and its securityfs is
 * there. */
static bool apparmor_enabled(void) {
  char *text = NULL;
  cell_error *ignored = NULL;
  bool on = cell_read_file_at(AT_FDCWD, "/sys/module/apparmor/parameters/enabled",
                              16, &text, NULL, &ignored) == 0 &&
            text[0] == 'Y' && access("/sys/kernel/security/apparmor", F_OK) == 0;
  cell_error_free(&ignored);
  free(text);
  return on;
}

/* As go-selinux's GetEnabled: a selinuxfs mounted at its place. */
static bool selinux_enabled(void) {
  struct statfs sfs;
  return statfs("/sys/fs/selinux", &sfs) == 0 &&
         (unsigned long)sfs.f_type == SELINUX_MAGIC;
}

int lsm_validate(const struct spec_process *p, cell_error **err) {
  if (p->apparmor_profile && p->apparmor_profile[0] && !apparmor_enabled())
    return cell_fail(err, 0,
                     "process.apparmorProfile: AppArmor is not enabled on "
                     "this host: enable it, or remove the setting");
  if (p->selinux_label && p->selinux_label[0] && !selinux_enabled())
    return cell_fail(err, 0,
                     "process.selinuxLabel: SELinux is not enabled on this "
                     "host: enable it, or remove the setting");
  return 0;
}

static int write_exec_attr(int procfs, const char *file, const char *what,
                           const char *text, cell_error **err) {
  cleanup_close int fd = procfs_open_thread_file(procfs, file, O_WRONLY, err);
  if (fd < 0)
    return -1;
  ssize_t n = write(fd, text, strlen(text));
  if (n < 0)
    return cell_fail_errno(err, "%s: write `/proc/thread-self/%s`", what, file);
  return 0;
}

/* Kernels with stacked LSMs have AppArmor's own attr/apparmor/exec; older
 * ones only the shared attr/exec. */
static int apply_apparmor(int procfs, const char *profile, cell_error **err) {
  cleanup_free char *text = xasprintf("exec %s", profile);
  cell_error *e = NULL;
  if (write_exec_attr(procfs, "attr/apparmor/exec", "process.apparmorProfile",
                      text, &e) == 0)
    return 0;
  if (e->errnum != ENOENT) {
    *err = e;
    return -1;
  }
  cell_error_free(&e);
  return write_exec_attr(procfs, "attr/exec", "process.apparmorProfile", text,
                         err);
}

int lsm_apply_on_exec(int procfs, const struct spec_process *p,
                      cell_error **err) {
  if (p->apparmor_profile && p->apparmor_profile[0] &&
      apply_apparmor(procfs, p->apparmor_profile, err) < 0)
    return -1;
  if (p->selinux_label && p->selinux_label[0] &&
      write_exec_attr(procfs, "attr/exec", "process.selinuxLabel",
                      p->selinux_label, err) < 0)
    return -1;
  return 0;
}
