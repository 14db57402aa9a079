/* Counting the OOM kills of celld's running instances. */
#include "daemon/daemon-oom.h"

#include <errno.h>
#include <time.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/log.h"
#include "cgroup/cgroup.h"

/* Start counting the instance's OOM kills from what they are now, and
 * listen for the kernel's notice of the next one (read the count on it:
 * no polling).  Without a notice fd the 500 ms tick reads the count. */
void oom_watch(struct daemon *d, struct instance *in) {
  oom_unwatch(d, in);
  cell_error *err = NULL;
  /* Also what daemon-usage reads at each scrape: no cgroup_open (a look
   * at every hierarchy) per instance per scrape. */
  if (cgroup_open(in->rec->cgroup, &in->cgroup, &err) == 0)
    cgroup_keep_controllers(in->cgroup,
                            (const char *const[]){"memory", "cpuacct", "pids", NULL});
  if (!in->cgroup ||
      cgroup_oom_count(in->cgroup, &in->oom_kills, &err) < 0) {
    log_debug("%s: no OOM events: %s", in->rec->name, err->msg);
    cell_error_free(&err);
    cgroup_free(in->cgroup);
    in->cgroup = NULL;
    return;
  }
  in->oom_fd = cgroup_oom_watch(in->cgroup, &err);
  if (in->oom_fd < 0) {
    log_debug("%s: OOM kill count polled: %s", in->rec->name, err->msg);
    cell_error_free(&err);
  } else {
    daemon_watch(d, in->oom_fd, TAG_OOM_EVENT, EPOLLIN);
  }
}

void oom_unwatch(struct daemon *d, struct instance *in) {
  if (in->oom_fd >= 0) {
    daemon_unwatch(d, in->oom_fd);
    close(in->oom_fd);
  }
  in->oom_fd = -1;
  in->oom_recheck = 0;
  cgroup_free(in->cgroup);
  in->cgroup = NULL;
}

void oom_check(struct daemon *d, struct instance *in) {
  unsigned long long n = 0;
  cell_error *err = NULL;
  if (!in->cgroup || cgroup_oom_count(in->cgroup, &n, &err) < 0) {
    cell_error_free(&err);
    return;
  }
  if (n > in->oom_kills) {
    in->oom_kills = n;
    in->oom_recheck = 0;
    daemon_emit(d, in, "oom");
  }
}

/* The kernel's notice.  On cgroup v1 it comes as the cgroup runs out of
 * memory, maybe before the killer has counted its kill: the next ticks
 * read the count again. */
void oom_on_event(struct daemon *d, int fd) {
  cgroup_oom_watch_ack(fd);
  for (size_t i = 0; i < d->n_inst; i++) {
    struct instance *in = d->inst[i];
    if (in->oom_fd != fd)
      continue;
    in->oom_recheck = 4;
    oom_check(d, in);
    return;
  }
}

void oom_on_tick(struct daemon *d) {
  uint64_t ticks;
  if (read(d->oomfd, &ticks, sizeof(ticks)) < 0)
    return;
  for (size_t i = 0; i < d->n_inst; i++) {
    struct instance *in = d->inst[i];
    if (in->oom_fd >= 0 && in->oom_recheck == 0)
      continue;
    if (in->oom_recheck > 0)
      in->oom_recheck--;
    oom_check(d, in);
  }
}

int oom_open_timer(struct daemon *d, cell_error **err) {
  d->oomfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (d->oomfd < 0)
    return cell_fail_errno(err, "timerfd_create");
  struct timespec every = {OOM_POLL_MS / 1000, (OOM_POLL_MS % 1000) * 1000000L};
  struct itimerspec its = {.it_interval = every, .it_value = every};
  if (timerfd_settime(d->oomfd, 0, &its, NULL) < 0)
    return cell_fail_errno(err, "timerfd_settime");
  return daemon_watch(d, d->oomfd, TAG_OOM, EPOLLIN) < 0
             ? cell_fail_errno(err, "epoll_ctl") : 0;
}
