/* celld's side of the instance consoles (console-keeper.h): the console
 * keeper that holds the pty master of every running instance, fed at each
 * start and told at each destroy, and that attaches clients to one (for
 * the `console` op of daemon-exec.c). */
#include "daemon/daemon-console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon/console-keeper.h"
#include "daemon/daemon-records.h"
#include "runtime/terminal.h"

static size_t running_instances(struct daemon *d) {
  size_t n = 0;
  for (size_t i = 0; i < d->n_inst; i++)
    n += d->inst[i]->pidfd >= 0;
  return n;
}

/* The keeper already running for our state dir, or a new one. */
static int keeper_connect(struct daemon *d, cell_error **err) {
  bool spawned = false;
  pid_t pid = 0;
  int fd = console_keeper_connect(d->cfg->state_dir, &spawned, &pid, err);
  if (fd < 0)
    return -1;
  d->keeperfd = fd;
  if (!spawned) {
    log_info("console keeper: found running");
    return 0;
  }
  size_t lost = running_instances(d);
  if (lost)
    log_warn("console keeper: none answered, started a new one (pid %d): the "
             "consoles of the %zu running instances are lost until they start "
             "again", (int)pid, lost);
  else
    log_info("console keeper: started (pid %d)", (int)pid);
  return 0;
}

void daemon_console_init(struct daemon *d) {
  cell_error *err = NULL;
  /* Already connected: the startup saved the console of an instance that
   * died while celld was away. */
  if (d->keeperfd >= 0)
    return;
  if (keeper_connect(d, &err) < 0) {
    log_error("no consoles: %s", err->msg);
    cell_error_free(&err);
  }
}

void daemon_console_close(struct daemon *d) {
  if (d->keeperfd >= 0)
    close(d->keeperfd);
  d->keeperfd = -1;
}

/* One request to the keeper; a keeper gone since the last one (killed, or
 * it left when it held nothing) is replaced once. */
static int keeper_send(struct daemon *d, char type, const char *name, int fd,
                       cell_error **err) {
  for (int attempt = 0; attempt < 2; attempt++) {
    if (d->keeperfd < 0 && keeper_connect(d, err) < 0)
      return -1;
    if (console_send(d->keeperfd, type, name, strlen(name), fd, 0) == 0)
      return 0;
    int e = errno;
    daemon_console_close(d);
    if (e != EPIPE && e != ECONNRESET && e != ENOTCONN)
      return cell_fail(err, e, "console keeper");
    log_warn("console keeper: gone (%s)", strerror(e));
  }
  return cell_fail(err, 0, "console keeper: does not answer");
}

int daemon_pty_listener(const char *path, cell_error **err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path))
    return cell_fail(err, ENAMETOOLONG, "console socket `%s`", path);
  strcpy(sa.sun_path, path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return cell_fail_errno(err, "socket");
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
    cell_fail_errno(err, "console socket `%s`", path);
    close(fd);
    return -1;
  }
  return fd;
}

int daemon_console_listen(struct daemon *d, struct instance *in, char **path,
                          cell_error **err) {
  /* Short (sun_path is 108 bytes) and unique among running instances. */
  cleanup_free char *p = xasprintf("%s/console-%u.sock", d->execdir,
                                   (unsigned)in->rec->id_start);
  int fd = daemon_pty_listener(p, err);
  if (fd >= 0)
    *path = steal_pointer(&p);
  return fd;
}

void daemon_console_take(struct daemon *d, struct instance *in, int listener,
                         const char *path, bool created) {
  if (path)
    unlink(path);
  if (listener < 0 || !created)
    return;
  const char *name = in->rec->name;
  cell_error *err = NULL;
  int master = -1;
  /* The init connected and sent its master before it reached "created". */
  cleanup_close int peer = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  if (peer < 0) {
    log_warn("%s: no console: the init did not send its terminal: %s", name,
             strerror(errno));
    return;
  }
  struct timeval tv = {.tv_sec = 2};
  setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (terminal_recv_fd(peer, &master, &err) < 0 ||
      keeper_send(d, CONSOLE_CTL_ADD, name, master, &err) < 0) {
    log_warn("%s: no console: %s", name, err->msg);
    cell_error_free(&err);
  }
  /* The keeper has its own copy now: the instance must not depend on ours. */
  if (master >= 0)
    close(master);
}

int daemon_console_give(struct daemon *d, struct instance *in, int master,
                        cell_error **err) {
  return keeper_send(d, CONSOLE_CTL_ADD, in->rec->name, master, err);
}

void daemon_console_hangup(struct daemon *d, const char *name) {
  cell_error *err = NULL;
  if (keeper_send(d, CONSOLE_CTL_HANGUP, name, -1, &err) < 0) {
    log_debug("%s: hang up its console: %s", name, err->msg);
    cell_error_free(&err);
  }
}

void daemon_console_remove(struct daemon *d, const char *name) {
  cell_error *err = NULL;
  if (keeper_send(d, CONSOLE_CTL_REMOVE, name, -1, &err) < 0) {
    log_debug("%s: remove its console: %s", name, err->msg);
    cell_error_free(&err);
  }
}

int daemon_console_attach(struct daemon *d, const char *name, int fd,
                          cell_error **err) {
  return keeper_send(d, CONSOLE_CTL_ATTACH, name, fd, err);
}

#define CONSOLE_SAVED "console.saved"

/* <instance dir>/console.saved, opened with flags; the instance directory
 * is celld's own (the instance writes only below its rootfs). */
static int console_log_open(struct daemon *d, const char *name, int flags,
                            cell_error **err) {
  cleanup_free char *dir = daemon_inst_dir(d, name);
  cleanup_close int dirfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0)
    return cell_fail_errno(err, "open `%s`", dir);
  int fd = openat(dirfd, CONSOLE_SAVED, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return cell_fail_errno(err, "`%s/%s`", dir, CONSOLE_SAVED);
  return fd;
}

void daemon_console_save(struct daemon *d, const char *name) {
  cell_error *err = NULL;
  cleanup_close int fd =
      console_log_open(d, name, O_WRONLY | O_CREAT, &err);
  if (fd < 0 || keeper_send(d, CONSOLE_CTL_SAVE, name, fd, &err) < 0) {
    log_warn("%s: keep its console: %s", name, err->msg);
    cell_error_free(&err);
  }
}

int daemon_console_load(struct daemon *d, const char *name, cell_error **err) {
  cleanup_close int fd = console_log_open(d, name, O_RDONLY, err);
  if (fd < 0)
    return -1;
  return keeper_send(d, CONSOLE_CTL_LOAD, name, fd, err);
}
