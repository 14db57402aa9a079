#include "runtime/selfexe.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

extern char **environ;

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static bool has_cap(char *const *set, const char *name) {
  for (size_t i = 0; set && set[i]; i++)
    if (strcmp(set[i], name) == 0)
      return true;
  return false;
}

bool selfexe_needs_sealed_copy(const struct spec *s) {
  if (spec_find_namespace(s, SPEC_NS_USER))
    return false; /* the kernel checks ptrace against our (host) user ns */
  const struct spec_capabilities *c = s->process ? s->process->capabilities : NULL;
  return c && has_cap(c->bounding, "CAP_SYS_PTRACE");
}

static bool running_sealed(void) {
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  int seals = fcntl(fd, F_GET_SEALS);
  close(fd);
  return seals >= 0 && (seals & SEALS) == SEALS;
}

static char **read_argv(void) {
  cleanup_free char *buf = NULL;
  size_t len = 0;
  cell_error *e = NULL;
  if (cell_read_file_at(AT_FDCWD, "/proc/self/cmdline", 1 << 20, &buf, &len,
                        &e) < 0) {
    cell_error_free(&e);
    return NULL;
  }
  char **argv = NULL;
  for (size_t off = 0; off < len; off += strlen(buf + off) + 1)
    cell_strv_push(&argv, buf + off);
  return argv;
}

int selfexe_reexec_sealed(cell_error **err) {
  if (running_sealed())
    return 0;
  cleanup_close int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (src < 0)
    return cell_fail_errno(err, "open /proc/self/exe");
  struct stat st;
  if (fstat(src, &st) < 0)
    return cell_fail_errno(err, "stat /proc/self/exe");
  cleanup_close int mem = memfd_create("cell", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mem < 0)
    return cell_fail_errno(err, "memfd_create");
  for (off_t done = 0; done < st.st_size;) {
    ssize_t n = sendfile(mem, src, NULL, (size_t)(st.st_size - done));
    if (n <= 0)
      return cell_fail_errno(err, "copy the runtime into memory");
    done += n;
  }
  if (fcntl(mem, F_ADD_SEALS, SEALS) < 0)
    return cell_fail_errno(err, "seal the runtime's copy");
  cleanup_strv char **argv = read_argv();
  if (argv == NULL)
    return cell_fail(err, 0, "read /proc/self/cmdline");
  fexecve(mem, argv, environ);
  return cell_fail_errno(err, "re-execute from the sealed copy");
}
