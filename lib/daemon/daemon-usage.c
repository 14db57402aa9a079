/* Live usage of celld's instances.  The cgroup numbers come from
 * cgroup_usage (v1, v2 or hybrid alike), NIC counters from rtnetlink
 * (IFLA_STATS64 of the host end, by name: no path to follow), the disk
 * from a walk of its files, which is kept for DISK_MAX_AGE_MS so that a
 * scrape stays cheap whatever the instance has written.  CPU share: the
 * CPU time between two samples at least CPU_MIN_INTERVAL_MS apart, over
 * the wall time between them; celld keeps the older sample (no timer). */
#include "daemon/daemon-usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cgroup/cgroup.h"
#include "daemon/daemon-records.h"
#include "net/netlink.h"
#include "storage/pool.h"

#define CPU_MIN_INTERVAL_MS 1000
#define DISK_MAX_AGE_MS 10000

struct nic_usage {
  const struct instance_net *net;
  bool known;
  /* As the instance sees them: what its host end received, it sent. */
  uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
};

struct usage {
  bool running;
  struct cgroup_usage cg;
  struct nic_usage *nics; /* one per record's net */
  size_t n_nics;
};

static void usage_clear(struct usage *u) { free(u->nics); }
#define cleanup_usage __attribute__((cleanup(usage_clear)))

/* The CPU share since the kept sample, once that is old enough to say
 * something; the current sample then begins the next interval. */
static void update_cpu_ratio(struct usage_keep *k, uint64_t cpu_ns,
                             uint64_t now_ms) {
  if (k->cpu_at_ms && cpu_ns < k->cpu_ns)
    k->cpu_at_ms = 0; /* a new cgroup: the instance restarted */
  if (!k->cpu_at_ms) {
    k->cpu_ns = cpu_ns;
    k->cpu_at_ms = now_ms;
    k->cpu_ratio_known = false;
    return;
  }
  uint64_t dt_ms = now_ms - k->cpu_at_ms;
  if (dt_ms < CPU_MIN_INTERVAL_MS)
    return;
  k->cpu_ratio = (double)(cpu_ns - k->cpu_ns) / ((double)dt_ms * 1e6);
  k->cpu_ratio_known = true;
  k->cpu_ns = cpu_ns;
  k->cpu_at_ms = now_ms;
}

static void sample_nics(const struct instance_record *r, struct nl_sock *nl,
                        struct usage *u) {
  u->nics = xcalloc(r->n_nets ? r->n_nets : 1, sizeof(*u->nics));
  u->n_nics = r->n_nets;
  for (size_t i = 0; i < r->n_nets; i++) {
    struct nic_usage *n = &u->nics[i];
    n->net = &r->nets[i];
    struct nl_link_info info;
    cleanup_error cell_error *err = NULL;
    if (!nl || !n->net->host_veth ||
        nl_link_get(nl, n->net->host_veth, &info, &err) < 0)
      continue;
    n->known = true;
    n->rx_bytes = info.tx_bytes;
    n->tx_bytes = info.rx_bytes;
    n->rx_packets = info.tx_packets;
    n->tx_packets = info.rx_packets;
  }
}

/* The disk's use, read again when the kept figure is old. */
static void sample_disk(struct daemon *d, struct instance *in, uint64_t now_ms) {
  struct usage_keep *k = &in->usage;
  if (k->disk_at_ms && now_ms - k->disk_at_ms < DISK_MAX_AGE_MS)
    return;
  const struct instance_record *r = in->rec;
  cleanup_error cell_error *err = NULL;
  cleanup_free char *dir = r->image ? daemon_inst_disk_dir(d, r, &err)
                                    : daemon_inst_dir(d, r->name);
  k->disk_known = dir && pool_disk_usage(dir, &k->disk_used, &err) == 0;
  k->disk_at_ms = now_ms;
}

/* Through the directories celld keeps while it runs; opened for this
 * sample only when there are none (no memory controller to watch). */
static void sample_cgroup(struct instance *in, struct cgroup_usage *u) {
  if (in->cgroup) {
    cgroup_usage(in->cgroup, u);
    return;
  }
  cleanup_error cell_error *err = NULL;
  struct cgroup *cg = NULL;
  if (cgroup_open(in->rec->cgroup, &cg, &err) == 0) {
    cgroup_usage(cg, u);
    cgroup_free(cg);
  } else {
    *u = (struct cgroup_usage){0};
  }
}

static void sample(struct daemon *d, struct instance *in, struct nl_sock *nl,
                   struct usage *u) {
  *u = (struct usage){.running = in->pidfd >= 0};
  uint64_t now = daemon_now_ms();
  if (u->running) {
    sample_cgroup(in, &u->cg);
    if (u->cg.has_cpu)
      update_cpu_ratio(&in->usage, u->cg.cpu_ns, now);
    sample_nics(in->rec, nl, u);
  } else {
    in->usage.cpu_at_ms = 0;
    in->usage.cpu_ratio_known = false;
  }
  sample_disk(d, in, now);
}

static struct nl_sock *open_netlink(void) {
  struct nl_sock *nl = NULL;
  cleanup_error cell_error *err = NULL;
  if (nl_open(-1, &nl, &err) < 0)
    return NULL;
  return nl;
}

/* ---- JSON ---------------------------------------------------------------- */

static void gen_nics_json(const struct usage *u, struct json_gen *g) {
  json_gen_key(g, "nics");
  json_gen_array_open(g);
  for (size_t i = 0; i < u->n_nics; i++) {
    const struct nic_usage *n = &u->nics[i];
    if (!n->known)
      continue;
    json_gen_object_open(g);
    json_gen_kv_string(g, "nic", n->net->ifname);
    json_gen_kv_string(g, "network", n->net->network);
    json_gen_kv_int(g, "rx_bytes", (int64_t)n->rx_bytes);
    json_gen_kv_int(g, "tx_bytes", (int64_t)n->tx_bytes);
    json_gen_kv_int(g, "rx_packets", (int64_t)n->rx_packets);
    json_gen_kv_int(g, "tx_packets", (int64_t)n->tx_packets);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
}

void usage_gen_json(struct daemon *d, struct instance *in, struct json_gen *g,
                    bool fresh_disk) {
  if (fresh_disk)
    in->usage.disk_at_ms = 0;
  cleanup_nl struct nl_sock *nl = in->pidfd >= 0 ? open_netlink() : NULL;
  cleanup_usage struct usage u;
  sample(d, in, nl, &u);
  const struct usage_keep *k = &in->usage;
  json_gen_key(g, "usage");
  json_gen_object_open(g);
  json_gen_kv_bool(g, "running", u.running);
  if (u.cg.has_memory) {
    json_gen_kv_int(g, "memory", (int64_t)u.cg.memory);
    json_gen_kv_int(g, "memory_peak", (int64_t)u.cg.memory_peak);
  }
  if (u.cg.has_cpu)
    json_gen_kv_int(g, "cpu_ns", (int64_t)u.cg.cpu_ns);
  if (u.running && k->cpu_ratio_known) {
    json_gen_key(g, "cpu_percent");
    json_gen_double(g, k->cpu_ratio * 100.0);
  }
  if (u.cg.has_pids)
    json_gen_kv_int(g, "pids", (int64_t)u.cg.pids);
  if (u.running)
    gen_nics_json(&u, g);
  json_gen_kv_int(g, "disk_used", k->disk_known ? (int64_t)k->disk_used : -1);
  if (in->rec->disk > 0)
    json_gen_kv_int(g, "disk_quota", in->rec->disk);
  json_gen_object_close(g);
}

/* ---- Prometheus -----------------------------------------------------------
 * One family at a time (HELP and TYPE once, then a sample per instance),
 * as the format asks: a family's samples must not be interleaved. */

enum family {
  F_RUNNING, F_MEMORY, F_MEMORY_PEAK, F_MEMORY_LIMIT, F_CPU, F_CPU_RATIO,
  F_PIDS, F_RX_BYTES, F_TX_BYTES, F_RX_PACKETS, F_TX_PACKETS, F_DISK,
  F_DISK_QUOTA, N_FAMILIES
};

static const struct {
  const char *name, *type, *help;
} families[N_FAMILIES] = {
    [F_RUNNING] = {"cell_instance_running", "gauge",
                   "1 when the instance runs, 0 when it is stopped."},
    [F_MEMORY] = {"cell_memory_usage_bytes", "gauge",
                  "Memory the instance's cgroup uses now."},
    [F_MEMORY_PEAK] = {"cell_memory_peak_bytes", "gauge",
                       "The most memory the instance's cgroup has used since it started."},
    [F_MEMORY_LIMIT] = {"cell_memory_limit_bytes", "gauge",
                        "The instance's memory limit (absent: none)."},
    [F_CPU] = {"cell_cpu_seconds_total", "counter",
               "CPU time the instance has used since it started."},
    [F_CPU_RATIO] = {"cell_cpu_usage_ratio", "gauge",
                     "CPUs the instance kept busy over the last interval (1: one CPU)."},
    [F_PIDS] = {"cell_pids", "gauge", "Tasks in the instance's cgroup."},
    [F_RX_BYTES] = {"cell_network_receive_bytes_total", "counter",
                    "Bytes the instance received on the NIC."},
    [F_TX_BYTES] = {"cell_network_transmit_bytes_total", "counter",
                    "Bytes the instance sent on the NIC."},
    [F_RX_PACKETS] = {"cell_network_receive_packets_total", "counter",
                      "Packets the instance received on the NIC."},
    [F_TX_PACKETS] = {"cell_network_transmit_packets_total", "counter",
                      "Packets the instance sent on the NIC."},
    [F_DISK] = {"cell_disk_used_bytes", "gauge",
                "Bytes the instance's own disk takes (its files, as du counts)."},
    [F_DISK_QUOTA] = {"cell_disk_quota_bytes", "gauge",
                      "What the instance's disk may hold (absent: no limit)."},
};

/* A label value with \, " and newline escaped, as the format wants. */
static void put_label(FILE *f, const char *key, const char *value) {
  fprintf(f, "%s=\"", key);
  for (const char *p = value; *p; p++) {
    if (*p == '\\' || *p == '"')
      fprintf(f, "\\%c", *p);
    else if (*p == '\n')
      fputs("\\n", f);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

static void put_u64(FILE *f, enum family fam, const char *inst,
                    const char *nic, uint64_t v) {
  fprintf(f, "%s{", families[fam].name);
  put_label(f, "instance", inst);
  if (nic) {
    fputc(',', f);
    put_label(f, "nic", nic);
  }
  fprintf(f, "} %llu\n", (unsigned long long)v);
}

static void put_double(FILE *f, enum family fam, const char *inst, double v) {
  fprintf(f, "%s{", families[fam].name);
  put_label(f, "instance", inst);
  fprintf(f, "} %.9g\n", v);
}

static void put_nics(FILE *f, enum family fam, const char *inst,
                     const struct usage *u) {
  for (size_t i = 0; i < u->n_nics; i++) {
    const struct nic_usage *n = &u->nics[i];
    if (!n->known)
      continue;
    uint64_t v = fam == F_RX_BYTES     ? n->rx_bytes
                 : fam == F_TX_BYTES   ? n->tx_bytes
                 : fam == F_RX_PACKETS ? n->rx_packets
                                       : n->tx_packets;
    put_u64(f, fam, inst, n->net->ifname, v);
  }
}

/* The instance's sample of one family, if it has one. */
static void put_sample(FILE *f, enum family fam, const struct instance *in,
                       const struct usage *u) {
  const char *name = in->rec->name;
  const struct cgroup_usage *c = &u->cg;
  switch (fam) {
  case F_RUNNING: put_u64(f, fam, name, NULL, u->running); break;
  case F_MEMORY: if (c->has_memory) put_u64(f, fam, name, NULL, c->memory); break;
  case F_MEMORY_PEAK:
    if (c->has_memory) put_u64(f, fam, name, NULL, c->memory_peak);
    break;
  case F_MEMORY_LIMIT:
    if (in->rec->memory > 0) put_u64(f, fam, name, NULL, (uint64_t)in->rec->memory);
    break;
  case F_CPU: if (c->has_cpu) put_double(f, fam, name, (double)c->cpu_ns / 1e9); break;
  case F_CPU_RATIO:
    if (u->running && in->usage.cpu_ratio_known)
      put_double(f, fam, name, in->usage.cpu_ratio);
    break;
  case F_PIDS: if (c->has_pids) put_u64(f, fam, name, NULL, c->pids); break;
  case F_RX_BYTES: case F_TX_BYTES: case F_RX_PACKETS: case F_TX_PACKETS:
    put_nics(f, fam, name, u);
    break;
  case F_DISK:
    if (in->usage.disk_known) put_u64(f, fam, name, NULL, in->usage.disk_used);
    break;
  case F_DISK_QUOTA:
    if (in->rec->disk > 0) put_u64(f, fam, name, NULL, (uint64_t)in->rec->disk);
    break;
  case N_FAMILIES: break;
  }
}

char *usage_prometheus(struct daemon *d,
                       bool (*may_see)(const void *ctx, const struct instance *in),
                       const void *ctx) {
  /* Sample each instance once, then write family by family. */
  struct instance **ins = xcalloc(d->n_inst ? d->n_inst : 1, sizeof(*ins));
  struct usage *us = xcalloc(d->n_inst ? d->n_inst : 1, sizeof(*us));
  size_t n = 0;
  cleanup_nl struct nl_sock *nl = open_netlink();
  for (size_t i = 0; i < d->n_inst; i++) {
    if (may_see && !may_see(ctx, d->inst[i]))
      continue;
    ins[n] = d->inst[i];
    sample(d, ins[n], nl, &us[n]);
    n++;
  }
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f)
    abort(); /* as xcalloc does: out of memory */
  for (int fam = 0; fam < N_FAMILIES; fam++) {
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", families[fam].name,
            families[fam].help, families[fam].name, families[fam].type);
    for (size_t i = 0; i < n; i++)
      put_sample(f, (enum family)fam, ins[i], &us[i]);
  }
  fclose(f);
  for (size_t i = 0; i < n; i++)
    usage_clear(&us[i]);
  free(us);
  free(ins);
  return text;
}
