/* celld's use of the runtime and the kernel for an instance: pids,
 * signals, runtime state, root mounts, the runtime's stdio. */
#include "daemon/daemon-runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/syscalls.h"
#include "base/util.h"
#include "daemon/daemon-config.h"
#include "daemon/daemon-records.h"
#include "daemon/instance-identity.h"
#include "daemon/instance-rootfs.h"
#include "storage/image-store.h"
#include "runtime/container.h"

int daemon_pidfd_signal(int pidfd, int sig) {
  return sys_pidfd_send_signal(pidfd, sig);
}

pid_t daemon_parent_of(pid_t pid) {
  cleanup_free char *path = xasprintf("/proc/%d/stat", (int)pid);
  cleanup_free char *text = NULL;
  size_t len = 0;
  cell_error *err = NULL;
  if (cell_read_file_at(AT_FDCWD, path, 4096, &text, &len, &err) < 0) {
    cell_error_free(&err);
    return -1;
  }
  const char *p = strrchr(text, ')');
  int ppid = -1;
  if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
    return -1;
  return ppid;
}

int daemon_runtime_pid(struct daemon *d, const char *name, pid_t *pid,
                       cell_error **err) {
  cleanup_free char *json = NULL;
  if (container_state_json(d->runroot, name, &json, err) < 0)
    return -1;
  cleanup_json struct json_value *v = NULL;
  if (json_parse(json, strlen(json), &v, err) < 0)
    return -1;
  int64_t p = 0;
  if (!json_get_int64(json_object_get(v, "pid"), &p) || p <= 0)
    return cell_fail(err, 0, "instance `%s`: no process", name);
  *pid = (pid_t)p;
  return 0;
}

void daemon_runtime_delete(struct daemon *d, const char *name) {
  cell_error *err = NULL;
  if (container_delete(d->runroot, name, true, &err) < 0) {
    if (!strstr(err->msg, "does not exist"))
      log_warn("%s: delete the container: %s", name, err->msg);
    cell_error_free(&err);
  }
}

void daemon_rootfs_umount(struct daemon *d, const char *name) {
  cleanup_free char *dir = daemon_inst_dir(d, name);
  cell_error *err = NULL;
  if (instance_rootfs_umount(dir, &err) < 0) {
    log_error("%s: %s", name, err->msg);
    cell_error_free(&err);
  }
}

/* The image's layers as the overlay takes them: their hex names, bottom
 * first, each once.  A layer an image holds twice (empty layers often are)
 * keeps its upper place: what it shows lower down, it shows again above,
 * over everything between. */
static char **overlay_layer_names(char *const *layers) {
  char **names = NULL;
  size_t n = cell_strv_len(layers);
  for (size_t i = 0; i < n; i++) {
    bool again_above = false;
    for (size_t j = i + 1; j < n && !again_above; j++)
      again_above = strcmp(layers[i], layers[j]) == 0;
    if (!again_above)
      cell_strv_push(&names, layers[i] + strlen("sha256:"));
  }
  return names;
}

static int mount_image_root(struct daemon *d, const char *dir,
                            const struct instance_record *r, const char **mode,
                            cell_error **err) {
  cleanup_strv char **stack = cell_strv_dup(r->layers);
  for (size_t i = 0; r->own_layers && r->own_layers[i]; i++)
    cell_strv_push(&stack, r->own_layers[i]);
  cleanup_strv char **names = overlay_layer_names(stack);
  cleanup_free char *layers_dir = xasprintf("%s/layers", d->store->dir);
  for (size_t i = 0; names && names[i]; i++) {
    struct stat st;
    if (fstatat(d->store->layersfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
      return cell_fail(err, 0, "instance `%s`: its image's layer %s is missing "
                       "from the image store", r->name, names[i]);
  }
  cleanup_free char *disk = daemon_inst_disk_dir(d, r, err);
  if (!disk)
    return -1;
  return instance_rootfs_mount_layers(dir, disk, r, layers_dir, names,
                                      d->cfg->force_copy, mode, err);
}

int inst_mount_root(struct daemon *d, struct instance *in, cell_error **err) {
  cleanup_free char *dir = daemon_inst_dir(d, in->rec->name);
  const char *mode = NULL;
  if (in->rec->image ? mount_image_root(d, dir, in->rec, &mode, err) < 0
                     : instance_rootfs_mount(dir, in->rec, d->cfg, &mode, err) < 0)
    return -1;
  if (!in->rec->rootfs_mode || strcmp(in->rec->rootfs_mode, mode) != 0) {
    free(in->rec->rootfs_mode);
    in->rec->rootfs_mode = xstrdup(mode);
  }
  return 0;
}

static int open_root(const char *dir, cell_error **err) {
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
  int fd = open(rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", rootfs);
  return fd;
}

#define NAMES_WRITTEN "hostname.written"

/* Durable, or left for the caller to sync (a create: before its record). */
static int note_names_written(const struct instance_record *r,
                              const char *dir, bool durable, cell_error **err) {
  cleanup_free char *text = identity_hostname_text(r->hostname);
  cleanup_free char *path = xasprintf("%s/" NAMES_WRITTEN, dir);
  return durable ? cell_write_file_atomic_at(AT_FDCWD, path, text,
                                             strlen(text), 0600, err)
                 : cell_replace_file_at(AT_FDCWD, path, text, strlen(text),
                                        0600, err);
}

/* The root is idmapped: the instance's root is its first id here. */
int inst_write_identity(struct daemon *d, const struct instance_record *r,
                        const char *dir, cell_error **err) {
  cleanup_close int rootfd = open_root(dir, err);
  if (rootfd < 0)
    return -1;
  const struct daemon_network *net =
      r->n_nets ? daemon_config_network(d->cfg, r->nets[0].network) : NULL;
  if (identity_write(rootfd, r,
                     r->n_nets ? daemon_config_dns(d->cfg, net) : NULL,
                     r->n_nets ? daemon_config_dns_search(d->cfg, net) : NULL,
                     r->id_start, err) < 0)
    return -1;
  return note_names_written(r, dir, false, err);
}

int inst_update_names(const struct instance_record *r, const char *dir,
                      cell_error **err) {
  cleanup_free char *path = xasprintf("%s/" NAMES_WRITTEN, dir);
  cleanup_free char *written = NULL;
  cleanup_free char *now = identity_hostname_text(r->hostname);
  size_t len = 0;
  cell_error *rerr = NULL;
  if (cell_read_file_at(AT_FDCWD, path, 4096, &written, &len, &rerr) < 0) {
    bool missing = rerr->errnum == ENOENT;
    cell_error_free(&rerr);
    /* An instance of a celld that kept no note: its files are taken to
     * say its name (they did, unless it changed since). */
    if (missing)
      return note_names_written(r, dir, true, err);
  } else if (strcmp(written, now) == 0) {
    return 0;
  }
  cleanup_close int rootfd = open_root(dir, err);
  if (rootfd < 0 || identity_write_names(rootfd, r, r->id_start, err) < 0)
    return cell_error_wrap(err, "its new host name `%s`", r->hostname);
  return note_names_written(r, dir, true, err);
}

/* The container's stdio: /dev/null in, <dir>/console.log out, so that an
 * instance never writes to (or dies with) our own stderr. */
int daemon_swap_stdio(const char *dir, int saved[3], cell_error **err) {
  cleanup_free char *logpath = xasprintf("%s/console.log", dir);
  cleanup_close int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  cleanup_close int logfd =
      open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null < 0 || logfd < 0)
    return cell_fail_errno(err, "open `%s`", logpath);
  for (int i = 0; i < 3; i++)
    saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
  dup2(null, 0);
  dup2(logfd, 1);
  dup2(logfd, 2);
  return 0;
}

void daemon_restore_stdio(int saved[3]) {
  for (int i = 0; i < 3; i++) {
    if (saved[i] >= 0) {
      dup2(saved[i], i);
      close(saved[i]);
    }
  }
}

int daemon_exit_code(const siginfo_t *si) {
  if (si->si_code == CLD_EXITED)
    return si->si_status & 0xff;
  return 128 + si->si_status;
}

/* Test-only (docs/api.md): CELLD_TEST_PAUSE=create stops celld for 60 s
 * in the middle of a create (directory made, root mounted, no record yet),
 * =destroy in the middle of a destroy (init killed, root unmounted, record
 * still there), so that a test can kill -9 it there; others in
 * docs/api.md. */
void daemon_test_pause(const char *where) {
  const char *want = getenv("CELLD_TEST_PAUSE");
  if (want && strcmp(want, where) == 0) {
    const char *s = getenv("CELLD_TEST_PAUSE_SECONDS");
    long long seconds = 60;
    if (s)
      cell_parse_ll(s, 1, 3600, &seconds);
    log_warn("CELLD_TEST_PAUSE=%s: pausing (pid %d)", where, (int)getpid());
    sleep((unsigned)seconds);
  }
}
