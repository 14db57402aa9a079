/* How cellctl prints celld's answers (output.h). */
#include "output.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/signals.h"
#include "base/util.h"
#include "client.h"
#include "usage.h"

static void print_json_as(const struct json_value *v, bool pretty) {
  struct json_gen *g = json_gen_new(pretty);
  json_gen_value(g, v);
  cleanup_free char *s = json_gen_finish(g, NULL);
  json_gen_free(g);
  fputs(s, stdout);
  if (!pretty)
    fputc('\n', stdout);
}

void print_json(const struct json_value *v) { print_json_as(v, true); }

void print_json_line(const struct json_value *v) { print_json_as(v, false); }

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

/* MEM and CPU% are what it uses now; MEM/CPU/PIDS its limits. */
void print_instances(const struct json_value *list) {
  printf("%-20s %-10s %-8s %-10s %-5s %-7s %-5s %-18s %-16s %s\n", "NAME",
         "STATE", "PID", "IDS", "EXIT", "MEM", "CPU%", "MEM/CPU/PIDS", "ADDRESS",
         "IMAGE");
  for (size_t k = 0; list && k < list->u.array.len; k++) {
    const struct json_value *i = list->u.array.items[k];
    long long code = field_int(i, "exit_code", -1);
    cleanup_free char *exit = code >= 0 ? xasprintf("%lld", code) : xstrdup("-");
    cleanup_free char *lim = limits_text(i);
    cleanup_free char *mem = usage_memory_text(i);
    cleanup_free char *cpu = usage_cpu_text(i);
    printf("%-20s %-10s %-8lld %-10lld %-5s %-7s %-5s %-18s %-16s %s\n",
           field_string(i, "name"), field_string(i, "state"),
           field_int(i, "pid", 0), field_int(i, "id_start", 0), exit, mem, cpu,
           lim,
           address_text(i), json_object_get(i, "image_name")
                                ? field_string(i, "image_name")
                                : field_string(i, "template"));
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

static char *size_text(long long bytes) {
  if (bytes >= 10LL << 30)
    return xasprintf("%lldG", bytes >> 30);
  if (bytes >= 10LL << 20)
    return xasprintf("%lldM", bytes >> 20);
  return xasprintf("%lldK", (bytes + 1023) >> 10);
}

/* Its pool, what its disk holds, and its limit. */
static void print_instance_disk(const struct json_value *i) {
  long long used = field_int(i, "disk_used", -1), limit = field_int(i, "disk", 0);
  cleanup_free char *u = used >= 0 ? size_text(used) : xstrdup("?");
  cleanup_free char *l = limit > 0 ? size_text(limit) : xstrdup("no limit");
  printf("%-12s %s\n", "pool", field_string(i, "pool"));
  printf("%-12s %s used, %s\n", "disk", u, l);
}

void print_pools(const struct json_value *list) {
  printf("%-16s %-8s %-14s %-8s %-8s %-30s %s\n", "NAME", "FS", "QUOTA", "SIZE",
         "USED", "PATH", "INSTANCES");
  for (size_t k = 0; list && list->type == JSON_ARRAY && k < list->u.array.len; k++) {
    const struct json_value *p = list->u.array.items[k];
    cleanup_free char *size = size_text(field_int(p, "size", 0));
    cleanup_free char *used = size_text(field_int(p, "used", 0));
    const struct json_value *insts = json_object_get(p, "instances");
    size_t n = insts && insts->type == JSON_ARRAY ? insts->u.array.len : 0;
    printf("%-16s %-8s %-14s %-8s %-8s %-30s %zu\n", field_string(p, "name"),
           field_string(p, "filesystem"), field_string(p, "quota"), size, used,
           field_string(p, "path"), n);
    if (json_object_get(p, "error"))
      printf("  %s\n", field_string(p, "error"));
  }
}

/* One line for each string of the array key (none: no line). */
static void print_string_list(const struct json_value *i, const char *key,
                              const char *label) {
  const struct json_value *a = json_object_get(i, key);
  for (size_t k = 0; a && a->type == JSON_ARRAY && k < a->u.array.len; k++)
    if (a->u.array.items[k]->type == JSON_STRING)
      printf("%-12s %s%s\n", label, a->u.array.items[k]->u.string,
             strcmp(key, "pending") == 0 ? " (at the next start)" : "");
}

void print_instance(const struct json_value *i) {
  const char *keys[] = {"name", "state", "hostname", "restart", "created",
                        "exit_time", "rootfs_mode", "proc_view"};
  for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++)
    printf("%-12s %s\n", keys[k], field_string(i, keys[k]));
  const struct json_value *busy = json_object_get(i, "busy");
  if (busy && busy->type == JSON_STRING)
    printf("%-12s %s (it takes only show, log, console and snapshots "
           "until that is done)\n", "busy", busy->u.string);
  if (json_object_get(i, "image"))
    printf("%-12s %s (%s)\n", "image", field_string(i, "image_name"),
           field_string(i, "image"));
  else
    printf("%-12s %s\n", "template", field_string(i, "template"));
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
  print_usage_lines(i);
  print_instance_disk(i);
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
  print_string_list(i, "profiles", "profiles");
  print_string_list(i, "settings", "setting");
  print_string_list(i, "pending", "pending");
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

/* The first name of an image, or <none>. */
static const char *image_name(const struct json_value *img) {
  const struct json_value *names = json_object_get(img, "names");
  if (names && names->type == JSON_ARRAY && names->u.array.len > 0 &&
      names->u.array.items[0]->type == JSON_STRING)
    return names->u.array.items[0]->u.string;
  return "<none>";
}

static size_t array_len(const struct json_value *v) {
  return v && v->type == JSON_ARRAY ? v->u.array.len : 0;
}

void print_images(const struct json_value *list) {
  printf("%-32s %-12s %-7s %-6s %-9s %s\n", "NAME", "ID", "SIZE", "LAYERS",
         "INSTANCES", "IMPORTED");
  for (size_t k = 0; k < array_len(list); k++) {
    const struct json_value *img = list->u.array.items[k];
    const char *id = field_string(img, "id");
    cleanup_free char *size = size_text(field_int(img, "size", 0));
    printf("%-32s %-12.12s %-7s %-6lld %-9zu %.19s\n", image_name(img),
           strncmp(id, "sha256:", 7) == 0 ? id + 7 : id, size,
           field_int(img, "n_layers", 0),
           array_len(json_object_get(img, "instances")),
           field_string(img, "imported"));
  }
}

static void print_strings(const char *label, const struct json_value *a) {
  if (!a)
    return;
  printf("%-13s", label);
  for (size_t i = 0; i < array_len(a); i++)
    if (a->u.array.items[i]->type == JSON_STRING)
      printf(" %s", a->u.array.items[i]->u.string);
  printf("\n");
}

void print_image(const struct json_value *img) {
  cleanup_free char *size = size_text(field_int(img, "size", 0));
  printf("%-13s %s\n", "id:", field_string(img, "id"));
  print_strings("names:", json_object_get(img, "names"));
  printf("%-13s %s\n", "size:", size);
  printf("%-13s %s\n", "architecture:", field_string(img, "architecture"));
  printf("%-13s %s\n", "created:", field_string(img, "created"));
  printf("%-13s %s\n", "imported:", field_string(img, "imported"));
  printf("%-13s %s\n", "source:", field_string(img, "source"));
  const struct json_value *cfg = json_object_get(img, "config");
  print_strings("entrypoint:", json_object_get(cfg, "entrypoint"));
  print_strings("cmd:", json_object_get(cfg, "cmd"));
  print_strings("env:", json_object_get(cfg, "env"));
  if (json_object_get(cfg, "working_dir"))
    printf("%-13s %s\n", "working dir:", field_string(cfg, "working_dir"));
  if (json_object_get(cfg, "user"))
    printf("%-13s %s\n", "user:", field_string(cfg, "user"));
  print_strings("instances:", json_object_get(img, "instances"));
  const struct json_value *layers = json_object_get(img, "layers");
  printf("layers:       %zu, bottom first\n", array_len(layers));
  for (size_t i = 0; i < array_len(layers); i++)
    printf("  %s\n", layers->u.array.items[i]->u.string);
}
