#include "runtime/namespaces.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "base/procfs.h"
#include "base/syscalls.h"
#include "base/util.h"

int ns_plan_make(const struct spec *s, struct ns_plan *plan, cell_error **err) {
  memset(plan, 0, sizeof(*plan));
  for (int t = 0; t < SPEC_NS_COUNT; t++)
    plan->join_fds[t] = -1;
  const struct spec_linux *l = s->linux_;
  size_t n = l ? l->n_namespaces : 0;
  int new_flags = 0;
  for (size_t i = 0; i < n; i++) {
    const struct spec_namespace *ns = &l->namespaces[i];
    if (ns->path == NULL) {
      new_flags |= spec_ns_clone_flag(ns->type);
      continue;
    }
    int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      cell_fail_errno(err, "linux.namespaces[%zu].path: open `%s`", i, ns->path);
      ns_plan_close(plan);
      return -1;
    }
    plan->join_fds[ns->type] = fd;
  }
  plan->new_userns = (new_flags & CLONE_NEWUSER) != 0;
  /* The cgroup namespace is made by the container process once it is in its
   * cgroup, so that the cgroup is the namespace's root.  A time namespace
   * can only get offsets before its first process enters it: unshare, write
   * the offsets, then fork. */
  int late = new_flags & (CLONE_NEWCGROUP | CLONE_NEWTIME);
  /* ...and that first member must then be the pid namespace's init too,
   * or it would die with the process that forked it. */
  if (late & CLONE_NEWTIME)
    late |= new_flags & CLONE_NEWPID;
  if (plan->join_fds[SPEC_NS_USER] >= 0) {
    /* Namespaces created after joining a user namespace must be owned by it,
     * so none can be made by clone() in the runtime's user namespace. */
    late = new_flags;
  }
  plan->clone_flags = new_flags & ~late;
  plan->unshare_flags = late;
  plan->fork_after_unshare = (late & (CLONE_NEWPID | CLONE_NEWTIME)) != 0;
  return 0;
}

void ns_plan_close(struct ns_plan *plan) {
  for (int t = 0; t < SPEC_NS_COUNT; t++) {
    if (plan->join_fds[t] >= 0)
      close(plan->join_fds[t]);
    plan->join_fds[t] = -1;
  }
}

static int join_one(const struct ns_plan *plan, enum spec_ns_type t,
                    cell_error **err) {
  if (plan->join_fds[t] < 0)
    return 0;
  if (setns(plan->join_fds[t], spec_ns_clone_flag(t)) < 0)
    return cell_fail_errno(err, "join the %s namespace", spec_ns_type_name(t));
  return 0;
}

int ns_join_pid_for_children(const struct ns_plan *plan, cell_error **err) {
  return join_one(plan, SPEC_NS_PID, err);
}

int ns_join_user(const struct ns_plan *plan, cell_error **err) {
  return join_one(plan, SPEC_NS_USER, err);
}

int ns_join_others(const struct ns_plan *plan, cell_error **err) {
  /* The mount namespace last: joining it changes how later paths resolve. */
  static const enum spec_ns_type order[] = {SPEC_NS_IPC, SPEC_NS_UTS,
                                            SPEC_NS_NETWORK, SPEC_NS_CGROUP,
                                            SPEC_NS_TIME, SPEC_NS_MOUNT};
  for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
    if (join_one(plan, order[i], err) < 0)
      return -1;
  return 0;
}

static int write_time_offsets(const struct spec *s, int procfs,
                              cell_error **err) {
  const struct spec_linux *l = s->linux_;
  char buf[128];
  int n = 0;
  if (l->time_monotonic)
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "monotonic %lld %u\n",
                  (long long)l->time_monotonic->secs, l->time_monotonic->nanosecs);
  if (l->time_boottime)
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "boottime %lld %u\n",
                  (long long)l->time_boottime->secs, l->time_boottime->nanosecs);
  if (n == 0)
    return 0;
  /* One write per line: the kernel parses a single offset per write.
   * Through our own procfs: the mount namespace joined by now may be
   * another container's, with a /proc of its choice. */
  for (char *line = buf; *line;) {
    char *nl = strchr(line, '\n');
    if (procfs_write_pid_file(procfs, PROCFS_SELF, "timens_offsets", line,
                              (size_t)(nl - line + 1), err) < 0)
      return cell_error_wrap(err, "linux.timeOffsets");
    line = nl + 1;
  }
  return 0;
}

int ns_unshare(const struct ns_plan *plan, const struct spec *s, int procfs,
               cell_error **err) {
  if (plan->unshare_flags == 0)
    return 0;
  if (unshare(plan->unshare_flags) < 0)
    return cell_fail_errno(err, "unshare namespaces (flags 0x%x)",
                           plan->unshare_flags);
  if ((plan->unshare_flags & CLONE_NEWTIME) && s->linux_)
    return write_time_offsets(s, procfs, err);
  return 0;
}

char *ns_format_id_map(const struct spec_id_mapping *m, size_t n) {
  size_t cap = n * 36 + 1, len = 0;
  char *out = xmalloc(cap);
  out[0] = '\0';
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(out + len, cap - len, "%u %u %u\n",
                            m[i].container_id, m[i].host_id, m[i].size);
  return out;
}

static int write_map(int procfs, pid_t pid, const char *file,
                     const struct spec_id_mapping *m, size_t n,
                     cell_error **err) {
  if (n == 0)
    return 0;
  cleanup_free char *text = ns_format_id_map(m, n);
  return procfs_write_pid_file(procfs, pid, file, text, strlen(text), err);
}

int ns_write_id_maps(int procfs, pid_t pid, const struct spec *s,
                     cell_error **err) {
  const struct spec_linux *l = s->linux_;
  if (write_map(procfs, pid, "uid_map", l->uid_mappings, l->n_uid_mappings,
                err) < 0)
    return -1;
  return write_map(procfs, pid, "gid_map", l->gid_mappings, l->n_gid_mappings,
                   err);
}
