/* What cellctl prints of an instance's usage (usage.h). */
#include "usage.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"
#include "client.h"

static const struct json_value *usage_of(const struct json_value *inst) {
  return json_object_get(inst, "usage");
}

char *usage_size_text(long long bytes) {
  if (bytes < 0)
    return xstrdup("-");
  if (bytes < 1024)
    return xasprintf("%lldB", bytes);
  const char *units = "KMGTP";
  double v = (double)bytes / 1024;
  for (; v >= 1024 && units[1]; units++)
    v /= 1024;
  return xasprintf("%.1f%c", v, *units);
}

char *usage_memory_text(const struct json_value *inst) {
  return usage_size_text(field_int(usage_of(inst), "memory", -1));
}

char *usage_cpu_text(const struct json_value *inst) {
  const struct json_value *v = json_object_get(usage_of(inst), "cpu_percent");
  if (!v || v->type != JSON_NUMBER)
    return xstrdup("-");
  return xasprintf("%.1f", strtod(v->u.number, NULL));
}

char *usage_pids_text(const struct json_value *inst) {
  long long n = field_int(usage_of(inst), "pids", -1);
  return n >= 0 ? xasprintf("%lld", n) : xstrdup("-");
}

/* The sum of key over the NICs; -1 when there is none. */
static long long nics_sum(const struct json_value *inst, const char *key) {
  const struct json_value *nics = json_object_get(usage_of(inst), "nics");
  if (!nics || nics->type != JSON_ARRAY || nics->u.array.len == 0)
    return -1;
  long long sum = 0;
  for (size_t k = 0; k < nics->u.array.len; k++)
    sum += field_int(nics->u.array.items[k], key, 0);
  return sum;
}

char *usage_rx_text(const struct json_value *inst) {
  return usage_size_text(nics_sum(inst, "rx_bytes"));
}

char *usage_tx_text(const struct json_value *inst) {
  return usage_size_text(nics_sum(inst, "tx_bytes"));
}

char *usage_disk_text(const struct json_value *inst) {
  return usage_size_text(field_int(usage_of(inst), "disk_used", -1));
}

static void print_nics(const struct json_value *u) {
  const struct json_value *nics = json_object_get(u, "nics");
  for (size_t k = 0; nics && nics->type == JSON_ARRAY && k < nics->u.array.len; k++) {
    const struct json_value *n = nics->u.array.items[k];
    cleanup_free char *rx = usage_size_text(field_int(n, "rx_bytes", 0));
    cleanup_free char *tx = usage_size_text(field_int(n, "tx_bytes", 0));
    printf("%-12s %s: rx %s (%lld packets), tx %s (%lld packets)\n", "traffic",
           field_string(n, "nic"), rx, field_int(n, "rx_packets", 0), tx,
           field_int(n, "tx_packets", 0));
  }
}

void print_usage_lines(const struct json_value *inst) {
  const struct json_value *u = usage_of(inst);
  if (!u || field_int(u, "memory", -1) < 0) {
    printf("%-12s - (not running)\n", "usage");
    return;
  }
  cleanup_free char *mem = usage_memory_text(inst);
  cleanup_free char *peak = usage_size_text(field_int(u, "memory_peak", -1));
  cleanup_free char *cpu = usage_cpu_text(inst);
  cleanup_free char *pids = usage_pids_text(inst);
  printf("%-12s %s now, %s at most\n", "memory", mem, peak);
  printf("%-12s %.2f s used, %s%% over the last interval\n", "cpu",
         (double)field_int(u, "cpu_ns", 0) / 1e9, cpu);
  printf("%-12s %s\n", "pids", pids);
  print_nics(u);
}
