/* celld's readiness (daemon-ready.h). */
#include "daemon/daemon-ready.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sd-notify.h"
#include "base/util.h"

static int write_pidfile(const char *path, cell_error **err) {
  char text[32];
  snprintf(text, sizeof(text), "%d\n", (int)getpid());
  return cell_write_file_atomic_at(AT_FDCWD, path, text, strlen(text), 0644,
                                   err);
}

int daemon_announce_ready(struct daemon *d, cell_error **err) {
  const struct daemon_config *c = d->cfg;
  if (c->pidfile && write_pidfile(c->pidfile, err) < 0)
    return cell_error_wrap(err, "--pidfile");
  char state[64];
  snprintf(state, sizeof(state), "READY=1\nMAINPID=%d", (int)getpid());
  cell_error *e = NULL;
  if (sd_notify_send(state, &e) < 0) {
    log_warn("%s", e->msg);
    cell_error_free(&e);
  }
  if (d->ready_fd >= 0) {
    cell_write_all(d->ready_fd, "READY\n", 6);
    close(d->ready_fd);
    d->ready_fd = -1;
  }
  return 0;
}

/* The pid file names us: another celld may have taken the state dir
 * since and written its own. */
static bool pidfile_is_ours(const char *path) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  cell_error *e = NULL;
  if (cell_read_file_at(AT_FDCWD, path, 64, &text, &len, &e) < 0) {
    cell_error_free(&e);
    return false;
  }
  return atoi(text) == (int)getpid();
}

void daemon_announce_stopping(struct daemon *d) {
  cell_error *e = NULL;
  if (sd_notify_send("STOPPING=1", &e) < 0)
    cell_error_free(&e);
  const char *pidfile = d->cfg->pidfile;
  if (pidfile && pidfile_is_ours(pidfile))
    unlink(pidfile);
}

void daemon_announce_failure(int ready_fd, const char *why) {
  if (ready_fd < 0)
    return;
  cleanup_free char *line = xasprintf("%s\n", why);
  cell_write_all(ready_fd, line, strlen(line));
  close(ready_fd);
}
