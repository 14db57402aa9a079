/* linux.resources applied to a container's cgroup, at create and by
 * `cell update`: which resources a config sets, the device rules it
 * amounts to (runc's defaults included), and for each controller the call
 * through the table of the version whose directory serves it
 * (cgroup-dirs.c chooses).  Apart from the interface (cgroup.c) because it
 * is the one part that follows the spec's resources field by field. */
#include "cgroup/cgroup-resources.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/util.h"
#include "cgroup/bpf-devices.h"
#include "cgroup/cgroup-common.h"
#include "cgroup/cgroup-dirs.h"
#include "cgroup/cgroup-v1.h"
#include "cgroup/cgroup-v2.h"

/* ---- resources ----------------------------------------------------------- */

static bool memory_is_set(const struct spec_memory *m) {
  return m &&
         (m->limit || m->reservation || m->swap || m->kernel || m->kernel_tcp ||
          m->swappiness || m->disable_oom_killer || m->use_hierarchy);
}

static bool cpu_is_set(const struct spec_cpu *c) {
  return c && (c->shares || c->quota || c->burst || c->period ||
               c->realtime_runtime || c->realtime_period || c->idle);
}

/* An empty string is "not set" (as in runc): an empty cpuset takes no
 * task at all. */
static bool cpuset_is_set(const struct spec_cpu *c) {
  return c && ((c->cpus && *c->cpus) || (c->mems && *c->mems));
}

static bool blkio_is_set(const struct spec_block_io *b) {
  return b &&
         (b->weight || b->leaf_weight || b->n_weight_device ||
          b->n_throttle_read_bps_device || b->n_throttle_write_bps_device ||
          b->n_throttle_read_iops_device || b->n_throttle_write_iops_device);
}

static bool rdma_is_set(const struct spec_resources *r) {
  for (size_t i = 0; i < r->n_rdma; i++)
    if (r->rdma[i].hca_handles || r->rdma[i].hca_objects)
      return true;
  return false;
}

static int apply_cpuset(const struct cgroup *cg, const struct spec_cpu *c,
                        cell_error **err) {
  struct cgroup_target t;
  if (cgroup_dirs_target(cg, "cpuset", "cpuset", "linux.resources.cpu.cpus", &t,
                         err) < 0)
    return -1;
  return t.ops->set_cpuset(t.fd, c, err);
}

static int apply_memory(const struct cgroup *cg, const struct spec_memory *m,
                        bool update, cell_error **err) {
  struct cgroup_target t;
  if (cgroup_dirs_target(cg, "memory", "memory", "linux.resources.memory", &t,
                         err) < 0)
    return -1;
  return t.ops->set_memory(t.fd, m, update, err);
}

static int apply_cpu(const struct cgroup *cg, const struct spec_cpu *c,
                     bool update, cell_error **err) {
  struct cgroup_target t;
  if (cgroup_dirs_target(cg, "cpu", "cpu", "linux.resources.cpu", &t, err) < 0)
    return -1;
  return t.ops->set_cpu(t.fd, c, update, err);
}

static int apply_pids(const struct cgroup *cg, int64_t limit,
                      cell_error **err) {
  struct cgroup_target t;
  if (cgroup_dirs_target(cg, "pids", "pids", "linux.resources.pids", &t, err) <
      0)
    return -1;
  return t.ops->set_pids(t.fd, limit, err);
}

static int apply_blkio(const struct cgroup *cg, const struct spec_block_io *b,
                       cell_error **err) {
  struct cgroup_target t;
  if (cgroup_dirs_target(cg, "blkio", "io", "linux.resources.blockIO", &t,
                         err) < 0)
    return -1;
  return t.ops->set_blkio(t.fd, b, err);
}

static int apply_hugetlb(const struct cgroup *cg,
                         const struct spec_resources *r, cell_error **err) {
  for (size_t i = 0; i < r->n_hugepage_limits; i++)
    if (!cg_valid_page_size(r->hugepage_limits[i].page_size))
      return cell_fail(err, EINVAL,
                       "linux.resources.hugepageLimits[%zu].pageSize: `%s` is "
                       "not a page size like 2MB",
                       i, r->hugepage_limits[i].page_size);
  struct cgroup_target t;
  if (cgroup_dirs_target(cg, "hugetlb", "hugetlb",
                         "linux.resources.hugepageLimits", &t, err) < 0)
    return -1;
  return t.ops->set_hugetlb(t.fd, r->hugepage_limits, r->n_hugepage_limits,
                            err);
}

/* net_cls and net_prio exist only as v1 hierarchies.  A config that asks
 * for them on a host without them is refused, as runc refuses it: the
 * traffic class or priority a caller relies on must not silently go. */
static int apply_network(const struct cgroup *cg, const struct spec_network *n,
                         cell_error **err) {
  struct cgroup_hier *cls =
      cg->layout == CGROUP_UNIFIED ? NULL : cgroup_dirs_find_v1(cg, "net_cls");
  struct cgroup_hier *prio =
      cg->layout == CGROUP_UNIFIED ? NULL : cgroup_dirs_find_v1(cg, "net_prio");
  if (n->class_id) {
    if (cls == NULL)
      return cell_fail(err, 0,
                       "linux.resources.network.classID: this host has no "
                       "net_cls cgroup controller (cgroup v2 has none): "
                       "remove the setting");
    if (cgv1_set_net_cls(cls->fd, *n->class_id, err) < 0)
      return -1;
  }
  if (n->n_priorities) {
    if (prio == NULL)
      return cell_fail(err, 0,
                       "linux.resources.network.priorities: this host has no "
                       "net_prio cgroup controller (cgroup v2 has none): "
                       "remove the setting");
    if (cgv1_set_net_prio(prio->fd, n->priorities, n->n_priorities, err) < 0)
      return -1;
  }
  return 0;
}

static int apply_rdma(const struct cgroup *cg, const struct spec_resources *r,
                      cell_error **err) {
  struct cgroup_target t;
  if (cgroup_dirs_target(cg, "rdma", "rdma", "linux.resources.rdma", &t, err) <
      0)
    return -1;
  return t.ops->set_rdma(t.fd, r->rdma, r->n_rdma, err);
}

static int apply_unified(const struct cgroup *cg,
                         const struct spec_resources *r, cell_error **err) {
  if (cg->layout != CGROUP_UNIFIED)
    return cell_fail(err, EINVAL,
                     "linux.resources.unified: needs a cgroup v2 host (this "
                     "one has its controllers in cgroup v1)");
  if (cg->v2_fd < 0)
    return cell_fail(err, ENOENT,
                     "linux.resources.unified: cgroup `%s%s` does not exist",
                     cg->v2_mount, cg->v2_path);
  return cgv2_set_unified(cg->v2_fd, r->unified, r->n_unified, err);
}

/* ---- devices ------------------------------------------------------------- */

/* What every container may use unless its rules say otherwise about that
 * very device (runc's list: mknod of anything, the /dev nodes every
 * container gets, the ptys, ptmx and /dev/net/tun). */
static const struct dev_rule default_devices[] = {
    {true, 'c', DEV_ANY, DEV_ANY, DEV_ACCESS_MKNOD},
    {true, 'b', DEV_ANY, DEV_ANY, DEV_ACCESS_MKNOD},
    {true, 'c', 1, 3, DEV_ACCESS_ALL},         /* null */
    {true, 'c', 1, 8, DEV_ACCESS_ALL},         /* random */
    {true, 'c', 1, 7, DEV_ACCESS_ALL},         /* full */
    {true, 'c', 5, 0, DEV_ACCESS_ALL},         /* tty */
    {true, 'c', 1, 5, DEV_ACCESS_ALL},         /* zero */
    {true, 'c', 1, 9, DEV_ACCESS_ALL},         /* urandom */
    {true, 'c', 136, DEV_ANY, DEV_ACCESS_ALL}, /* pts */
    {true, 'c', 5, 2, DEV_ACCESS_ALL},         /* ptmx */
    {true, 'c', 10, 200, DEV_ACCESS_ALL},      /* net/tun */
};

static int device_number(const int64_t *v, size_t i, const char *what,
                         int64_t *out, cell_error **err) {
  if (v == NULL || *v == -1) {
    *out = DEV_ANY;
    return 0;
  }
  if (*v < 0 || *v > UINT32_MAX)
    return cell_fail(err, EINVAL,
                     "linux.resources.devices[%zu].%s: invalid number %lld", i,
                     what, (long long)*v);
  *out = *v;
  return 0;
}

static int convert_rule(const struct spec_device_rule *s, size_t i,
                        struct dev_rule *out, cell_error **err) {
  out->allow = s->allow;
  out->type = s->type ? s->type[0] : 'a';
  if (out->type != 'a' && out->type != 'c' && out->type != 'b')
    return cell_fail(
        err, EINVAL,
        "linux.resources.devices[%zu].type: unknown device type `%s`", i,
        s->type);
  if (device_number(s->major, i, "major", &out->major, err) < 0 ||
      device_number(s->minor, i, "minor", &out->minor, err) < 0)
    return -1;
  out->access = s->access ? 0 : DEV_ACCESS_ALL;
  for (const char *a = s->access; a && *a; a++) {
    if (*a == 'r')
      out->access |= DEV_ACCESS_READ;
    else if (*a == 'w')
      out->access |= DEV_ACCESS_WRITE;
    else if (*a == 'm')
      out->access |= DEV_ACCESS_MKNOD;
    else
      return cell_fail(err, EINVAL,
                       "linux.resources.devices[%zu].access: `%s` is not a "
                       "combination of r, w and m",
                       i, s->access);
  }
  if (out->access == 0)
    out->access = DEV_ACCESS_ALL;
  return 0;
}

static bool mentioned(const struct dev_rule *rules, size_t n,
                      const struct dev_rule *d) {
  for (size_t i = 0; i < n; i++)
    if (rules[i].type == d->type && rules[i].major == d->major &&
        rules[i].minor == d->minor)
      return true;
  return false;
}

/* Deny everything, the config's rules in order, then the defaults the
 * config does not itself decide about (runc appends them unconditionally,
 * which makes "deny /dev/null" impossible; here an explicit rule for a
 * device wins). */
static int device_rules(const struct spec_resources *r, struct dev_rule **out,
                        size_t *n, cell_error **err) {
  size_t n_cfg = r ? r->n_devices : 0;
  size_t n_def = sizeof(default_devices) / sizeof(default_devices[0]);
  struct dev_rule *rules = xcalloc(1 + n_cfg + n_def, sizeof(*rules));
  size_t len = 0;
  rules[len++] =
      (struct dev_rule){false, 'a', DEV_ANY, DEV_ANY, DEV_ACCESS_ALL};
  for (size_t i = 0; i < n_cfg; i++) {
    if (convert_rule(&r->devices[i], i, &rules[len++], err) < 0) {
      free(rules);
      return -1;
    }
  }
  for (size_t i = 0; i < n_def; i++)
    if (!mentioned(rules + 1, n_cfg, &default_devices[i]))
      rules[len++] = default_devices[i];
  *out = rules;
  *n = len;
  return 0;
}

static int apply_devices(const struct cgroup *cg,
                         const struct spec_resources *r, cell_error **err) {
  cleanup_free struct dev_rule *rules = NULL;
  size_t n = 0;
  if (device_rules(r, &rules, &n, err) < 0)
    return -1;
  struct cgroup_target t;
  if (cgroup_dirs_target(cg, "devices", NULL, "linux.resources.devices", &t,
                         err) < 0)
    return -1;
  return t.ops->set_devices(t.fd, rules, n, err);
}

static int apply_resources(const struct cgroup *cg,
                           const struct spec_resources *r, bool update,
                           cell_error **err) {
  if (r == NULL)
    return update ? 0 : apply_devices(cg, NULL, err);
  /* cpuset first: a v1 cpuset cgroup takes no task before it has cpus. */
  if (cpuset_is_set(r->cpu) && apply_cpuset(cg, r->cpu, err) < 0)
    return -1;
  if (memory_is_set(r->memory) && apply_memory(cg, r->memory, update, err) < 0)
    return -1;
  if (cpu_is_set(r->cpu) && apply_cpu(cg, r->cpu, update, err) < 0)
    return -1;
  if (r->pids_limit && apply_pids(cg, *r->pids_limit, err) < 0)
    return -1;
  if (blkio_is_set(r->block_io) && apply_blkio(cg, r->block_io, err) < 0)
    return -1;
  if (r->n_hugepage_limits && apply_hugetlb(cg, r, err) < 0)
    return -1;
  if (r->network && apply_network(cg, r->network, err) < 0)
    return -1;
  if (rdma_is_set(r) && apply_rdma(cg, r, err) < 0)
    return -1;
  if (r->n_unified && apply_unified(cg, r, err) < 0)
    return -1;
  /* An update without device rules leaves the container's devices alone. */
  if ((!update || r->n_devices > 0) && apply_devices(cg, r, err) < 0)
    return -1;
  return 0;
}

int cgroup_apply_resources(const struct cgroup *cg,
                           const struct spec_resources *r, cell_error **err) {
  return apply_resources(cg, r, false, err);
}

int cgroup_update(const struct cgroup *cg, const struct spec_resources *r,
                  cell_error **err) {
  return apply_resources(cg, r, true, err);
}
