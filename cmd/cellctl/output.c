/* How cellctl prints celld's answers (output.h). */
#include "output.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/signals.h"
#include "base/util.h"
#include "client.h"

void print_json(const struct json_value *v) {
  struct json_gen *g = json_gen_new(true);
  json_gen_value(g, v);
  cleanup_free char *s = json_gen_finish(g, NULL);
  json_gen_free(g);
  fputs(s, stdout);
}

/* MEM/CPU/PIDS, each "-" when unlimited. */
static char *limits_text(const struct json_value *i) {
  long long mem = field_int(i, "memory", 0), cpu = field_int(i, "cpu_milli", 0),
            pids = field_int(i, "pids", 0);
  cleanup_free char *m = mem ? xasprintf("%lldM", mem >> 20) : xstrdup("-");
  cleanup_free char *c = cpu ? xasprintf("%lld.%02lld", cpu / 1000, cpu % 1000 / 10)
                             : xstrdup("-");
  cleanup_free char *p = pids ? xasprintf("%lld", pids) : xstrdup("-");
  return xasprintf("%s/%s/%s", m, c, p);
}

/* The first address of the first network (IPv4 before IPv6), or "-". */
static const char *address_text(const struct json_value *i) {
  const struct json_value *nets = json_object_get(i, "networks");
  if (!nets || nets->type != JSON_ARRAY || nets->u.array.len == 0)
    return "-";
  const struct json_value *n = nets->u.array.items[0];
  const char *v4 = field_string(n, "ipv4");
  return strcmp(v4, "-") != 0 ? v4 : field_string(n, "ipv6");
}

void print_instances(const struct json_value *list) {
  printf("%-20s %-10s %-8s %-10s %-5s %-18s %-16s %s\n", "NAME", "STATE", "PID",
         "IDS", "EXIT", "MEM/CPU/PIDS", "ADDRESS", "TEMPLATE");
  for (size_t k = 0; list && k < list->u.array.len; k++) {
    const struct json_value *i = list->u.array.items[k];
    long long code = field_int(i, "exit_code", -1);
    cleanup_free char *exit = code >= 0 ? xasprintf("%lld", code) : xstrdup("-");
    cleanup_free char *lim = limits_text(i);
    printf("%-20s %-10s %-8lld %-10lld %-5s %-18s %-16s %s\n",
           field_string(i, "name"), field_string(i, "state"),
           field_int(i, "pid", 0), field_int(i, "id_start", 0), exit, lim,
           address_text(i), field_string(i, "template"));
  }
}

void print_networks(const struct json_value *list) {
  printf("%-16s %-16s %-18s %-24s %-6s %s\n", "NAME", "BRIDGE", "IPV4", "IPV6",
         "MTU", "INSTANCES");
  for (size_t k = 0; list && list->type == JSON_ARRAY && k < list->u.array.len; k++) {
    const struct json_value *n = list->u.array.items[k];
    long long mtu = field_int(n, "mtu", 0);
    cleanup_free char *m = mtu ? xasprintf("%lld", mtu) : xstrdup("-");
    printf("%-16s %-16s %-18s %-24s %-6s %lld\n", field_string(n, "name"),
           field_string(n, "bridge"), field_string(n, "subnet4"),
           field_string(n, "subnet6"), m, field_int(n, "instances", 0));
  }
}

static void print_instance_networks(const struct json_value *i) {
  const struct json_value *nets = json_object_get(i, "networks");
  for (size_t k = 0; nets && nets->type == JSON_ARRAY && k < nets->u.array.len; k++) {
    const struct json_value *n = nets->u.array.items[k];
    printf("%-12s %s on %s:", "network", field_string(n, "interface"),
           field_string(n, "network"));
    for (const char *const *f = (const char *const[]){"ipv4", "ipv6", NULL}; *f; f++)
      if (strcmp(field_string(n, *f), "-") != 0)
        printf(" %s", field_string(n, *f));
    printf(" (host side %s)\n", field_string(n, "host_veth"));
  }
}

void print_instance(const struct json_value *i) {
  const char *keys[] = {"name", "state", "template", "hostname", "restart",
                        "created", "exit_time", "rootfs_mode", "proc_view"};
  for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++)
    printf("%-12s %s\n", keys[k], field_string(i, keys[k]));
  printf("%-12s %lld\n", "pid", field_int(i, "pid", 0));
  long long code = field_int(i, "exit_code", -1);
  if (code >= 0)
    printf("%-12s %lld\n", "exit_code", code);
  else
    printf("%-12s unknown\n", "exit_code");
  printf("%-12s %lld-%lld\n", "ids", field_int(i, "id_start", 0),
         field_int(i, "id_start", 0) + field_int(i, "id_count", 0) - 1);
  cleanup_free char *lim = limits_text(i);
  printf("%-12s %s\n", "limits", lim);
  printf("%-12s %lld\n", "owner", field_int(i, "owner", 0));
  printf("%-12s %lld\n", "restarts", field_int(i, "restarts", 0));
  print_instance_networks(i);
  const struct json_value *init = json_object_get(i, "init");
  printf("%-12s", "init");
  for (size_t k = 0; init && init->type == JSON_ARRAY && k < init->u.array.len; k++)
    printf(" %s", init->u.array.items[k]->u.string);
  printf("\n");
  char buf[32];
  const char *sig = signal_name((int)field_int(i, "halt_signal", SIGTERM), buf,
                                sizeof(buf));
  printf("%-12s %s\n", "halt_signal", sig ? sig : "?");
}

void print_event(const char *line, bool json) {
  if (json) {
    printf("%s\n", line);
    return;
  }
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(line, strlen(line), &v, &err) < 0) {
    cell_error_free(&err);
    return;
  }
  long long code = field_int(v, "exit_code", -1);
  printf("%s %-10s %s", field_string(v, "time"), field_string(v, "event"),
         field_string(v, "name"));
  if (strcmp(field_string(v, "event"), "died") == 0) {
    if (code >= 0)
      printf(" exit_code=%lld", code);
    else
      printf(" exit_code=unknown");
  }
  printf("\n");
}
