/* The table of an instance's settings (instance-settings.h). */
#include "daemon/instance-settings.h"

#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/shell-words.h"
#include "base/signals.h"
#include "base/util.h"

typedef int put_fn(struct instance_record *r, const char *key,
                   const char *value, cell_error **err);
typedef char *get_fn(const struct instance_record *r, const char *key);

struct setting {
  const char *key;     /* a family's ends with '.' */
  const char *form;    /* what a value looks like, for errors and help */
  enum setting_effect effect;
  bool root_only;
  const char *create_field;
  put_fn *put;
  get_fn *get;
};

/* ---- the keys the record keeps in `settings` -------------------------- */

const char *instance_setting(const struct instance_record *r, const char *key) {
  size_t n = strlen(key);
  for (size_t i = 0; r->settings && r->settings[i]; i++)
    if (strncmp(r->settings[i], key, n) == 0 && r->settings[i][n] == '=')
      return r->settings[i] + n + 1;
  return NULL;
}

char **instance_settings_env(const struct instance_record *r) {
  char **out = NULL;
  for (size_t i = 0; r->settings && r->settings[i]; i++)
    if (strncmp(r->settings[i], "env.", 4) == 0)
      cell_strv_push(&out, r->settings[i] + 4);
  return out;
}

/* Replace key's value; NULL removes it. */
static void keep(struct instance_record *r, const char *key, const char *value) {
  size_t n = strlen(key), out = 0;
  for (size_t i = 0; r->settings && r->settings[i]; i++) {
    if (strncmp(r->settings[i], key, n) == 0 && r->settings[i][n] == '=')
      free(r->settings[i]);
    else
      r->settings[out++] = r->settings[i];
  }
  if (r->settings)
    r->settings[out] = NULL;
  if (value) {
    cleanup_free char *pair = xasprintf("%s=%s", key, value);
    cell_strv_push(&r->settings, pair);
  }
}

static char *get_kept(const struct instance_record *r, const char *key) {
  const char *v = instance_setting(r, key);
  return v ? xstrdup(v) : NULL;
}

/* ---- values ------------------------------------------------------------ */

/* One line: a value is shown up to a newline it holds. */
static int bad(cell_error **err, const char *key, const char *value,
               const char *form) {
  int shown = (int)strcspn(value, "\n");
  return cell_fail(err, EINVAL, "%s=%.*s%s: expected %s", key, shown, value,
                   value[shown] ? "..." : "", form);
}

static const struct setting *row_of(const char *key);

static int bad_form(cell_error **err, const char *key, const char *value) {
  return bad(err, key, value, row_of(key)->form);
}

static char *int_string(int64_t n) { return xasprintf("%lld", (long long)n); }

static int put_restart(struct instance_record *r, const char *key,
                       const char *value, cell_error **err) {
  enum restart_policy p;
  int max;
  cleanup_error cell_error *why = NULL;
  if (instance_parse_restart(value, &p, &max, &why) < 0)
    return bad_form(err, key, value);
  r->restart = p;
  r->restart_max = max;
  return 0;
}

static char *get_restart(const struct instance_record *r, const char *key) {
  (void)key;
  return instance_restart_string(r->restart, r->restart_max);
}

static int parse_bool(const char *s, bool *out) {
  if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "1"))
    *out = true;
  else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "0"))
    *out = false;
  else
    return -1;
  return 0;
}

static int put_autostart(struct instance_record *r, const char *key,
                         const char *value, cell_error **err) {
  if (parse_bool(value, &r->autostart) < 0)
    return bad_form(err, key, value);
  return 0;
}

static char *get_autostart(const struct instance_record *r, const char *key) {
  (void)key;
  return xstrdup(r->autostart ? "true" : "false");
}

/* An integer in [lo, hi] kept in `settings`. */
static int put_kept_int(struct instance_record *r, const char *key,
                        const char *value, long long lo, long long hi,
                        cell_error **err) {
  long long n;
  if (!cell_parse_ll(value, lo, hi, &n))
    return bad_form(err, key, value);
  cleanup_free char *s = int_string(n);
  keep(r, key, s);
  return 0;
}

static int put_priority(struct instance_record *r, const char *key,
                        const char *value, cell_error **err) {
  return put_kept_int(r, key, value, 0, 1000, err);
}

static int put_delay(struct instance_record *r, const char *key,
                     const char *value, cell_error **err) {
  return put_kept_int(r, key, value, 0, 3600, err);
}

/* The rule create has always applied: RFC 1123 letters, digits, `-.`. */
static int put_hostname(struct instance_record *r, const char *key,
                        const char *value, cell_error **err) {
  size_t n = strlen(value);
  if (n == 0 || n > 64 || value[0] == '-' || value[0] == '.' ||
      strspn(value, "abcdefghijklmnopqrstuvwxyz"
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != n)
    return bad_form(err, key, value);
  free(r->hostname);
  r->hostname = xstrdup(value);
  return 0;
}

static char *get_hostname(const struct instance_record *r, const char *key) {
  (void)key;
  return xstrdup(r->hostname);
}

static int put_init(struct instance_record *r, const char *key,
                    const char *value, cell_error **err) {
  cleanup_strv char **words = NULL;
  cleanup_error cell_error *why = NULL;
  if (shell_words_split(value, &words, &why) < 0 || !words[0])
    return bad_form(err, key, value);
  cell_strv_free(r->init);
  r->init = steal_pointer(&words);
  /* The image's User was for its entrypoint, not for an init of one's own. */
  free(steal_pointer(&r->init_user));
  return 0;
}

/* The words again, each quoted where a shell would need it. */
static char *get_init(const struct instance_record *r, const char *key) {
  (void)key;
  char *out = xstrdup("");
  for (char **w = r->init; w && *w; w++) {
    bool plain = **w && strspn(*w, "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                   "/._-=:,+@%") == strlen(*w);
    char *next = xasprintf(plain ? "%s%s%s" : "%s%s'%s'", out,
                           w == r->init ? "" : " ", *w);
    free(out);
    out = next;
  }
  return out;
}

static int put_halt_signal(struct instance_record *r, const char *key,
                           const char *value, cell_error **err) {
  int signo;
  cleanup_error cell_error *why = NULL;
  if (signal_parse(value, &signo, &why) < 0)
    return bad_form(err, key, value);
  r->halt_signal = signo;
  return 0;
}

static char *get_halt_signal(const struct instance_record *r, const char *key) {
  (void)key;
  char buf[32];
  const char *name = signal_name(r->halt_signal > 0 ? r->halt_signal : 15,
                                 buf, sizeof(buf));
  return xstrdup(name ? name : "SIGTERM");
}

/* A size (512M, 2G) or 0 for none, at least min when there is one. */
static int parse_limit(const char *key, const char *value, long long min,
                       int64_t *out, cell_error **err) {
  long long n;
  if (!cell_parse_size(value, &n) || n < 0 || (n > 0 && n < min))
    return bad_form(err, key, value);
  *out = n;
  return 0;
}

static int put_memory(struct instance_record *r, const char *key,
                      const char *value, cell_error **err) {
  return parse_limit(key, value, 4 << 20, &r->memory, err);
}

static char *get_memory(const struct instance_record *r, const char *key) {
  (void)key;
  return int_string(r->memory);
}

static int put_swap(struct instance_record *r, const char *key,
                    const char *value, cell_error **err) {
  int64_t n = 0;
  if (parse_limit(key, value, 0, &n, err) < 0)
    return -1;
  cleanup_free char *s = int_string(n);
  keep(r, key, n ? s : NULL);
  return 0;
}

static char *get_swap(const struct instance_record *r, const char *key) {
  const char *v = instance_setting(r, key);
  return xstrdup(v ? v : "0");
}

int instance_cpus_fit_host(int64_t milli, cell_error **err) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) < 0)
    return 0;
  int host = CPU_COUNT(&set);
  if (milli <= (int64_t)host * 1000)
    return 0;
  return cell_fail(err, 0, "cpus %g: more than the %d CPU%s this host runs "
                   "instances on (at most %d)", (double)milli / 1000, host,
                   host == 1 ? "" : "s", host);
}

static int put_cpus(struct instance_record *r, const char *key,
                    const char *value, cell_error **err) {
  char *end;
  errno = 0;
  double d = strtod(value, &end);
  if (errno || end == value || *end || d < 0 || d > 4096)
    return bad_form(err, key, value);
  int64_t milli = (int64_t)(d * 1000 + 0.5);
  if (instance_cpus_fit_host(milli, err) < 0)
    return -1;
  r->cpu_milli = milli;
  return 0;
}

static char *get_cpus(const struct instance_record *r, const char *key) {
  (void)key;
  return xasprintf("%g", (double)r->cpu_milli / 1000);
}

/* A CPU list as cpuset.cpus takes it: 0-3,6; empty: back to the CPUs the
 * cpus limit picks. */
static int put_cpuset(struct instance_record *r, const char *key,
                      const char *value, cell_error **err) {
  const char *p = value;
  while (*p) {
    char *end;
    long a = strtol(p, &end, 10), b = a;
    if (end == p || a < 0 || a > 4095)
      return bad_form(err, key, value);
    if (*end == '-') {
      p = end + 1;
      b = strtol(p, &end, 10);
      if (end == p || b < a || b > 4095)
        return bad_form(err, key, value);
    }
    if (*end && (*end != ',' || !end[1]))
      return bad_form(err, key, value);
    p = *end ? end + 1 : end;
  }
  keep(r, key, *value ? value : NULL);
  return 0;
}

static int put_pids(struct instance_record *r, const char *key,
                    const char *value, cell_error **err) {
  long long n;
  if (!cell_parse_ll(value, 0, INT32_MAX, &n))
    return bad_form(err, key, value);
  r->pids = n;
  return 0;
}

static char *get_pids(const struct instance_record *r, const char *key) {
  (void)key;
  return int_string(r->pids);
}

static int put_disk(struct instance_record *r, const char *key,
                    const char *value, cell_error **err) {
  return parse_limit(key, value, 1 << 20, &r->disk, err);
}

static char *get_disk(const struct instance_record *r, const char *key) {
  (void)key;
  return int_string(r->disk);
}

/* ---- families: env.KEY, mount.NAME, device.NAME ----------------------- */

/* What follows the family's dot: a name of letters, digits and `_`
 * (env) or an instance-like name (mount, device). */
static int check_member(const char *key, bool env, cell_error **err) {
  const char *m = strchr(key, '.') + 1;
  size_t n = strlen(m);
  bool ok = n > 0 && n <= 63 && !isdigit((unsigned char)m[0]);
  for (const char *p = m; ok && *p; p++)
    ok = isalnum((unsigned char)*p) || *p == '_' || (!env && *p == '-');
  if (!ok)
    return cell_fail(err, EINVAL, "%s: `%s` is not a name (letters, digits, "
                     "`_`%s)", key, m, env ? "" : ", `-`");
  return 0;
}

static int put_env(struct instance_record *r, const char *key,
                   const char *value, cell_error **err) {
  if (check_member(key, true, err) < 0)
    return -1;
  if (strchr(value, '\n'))
    return bad_form(err, key, value);
  keep(r, key, *value ? value : NULL);
  return 0;
}

/* An absolute path without `..` and without a newline or `:`. */
static bool plain_absolute(const char *p) {
  if (p[0] != '/' || strpbrk(p, ":\n"))
    return false;
  for (const char *s = p; (s = strstr(s, "..")); s += 2)
    if (s[-1] == '/' && (s[2] == '/' || s[2] == '\0'))
      return false;
  return true;
}

int setting_parse_mount(const char *value, char **src, char **dst, bool *ro,
                        cell_error **err) {
  const char *c1 = strchr(value, ':');
  const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
  cleanup_free char *s = c1 ? xstrndup(value, (size_t)(c1 - value)) : NULL;
  cleanup_free char *d = !c1 ? NULL
                         : c2 ? xstrndup(c1 + 1, (size_t)(c2 - c1 - 1))
                              : xstrdup(c1 + 1);
  if (!s || !plain_absolute(s) || !plain_absolute(d) || strcmp(d, "/") == 0 ||
      (c2 && strcmp(c2 + 1, "ro") != 0 && strcmp(c2 + 1, "rw") != 0))
    return cell_fail(err, EINVAL, "`%s`: expected a host directory and a "
                     "path inside, both absolute: /srv/x:/data[:ro]", value);
  *ro = c2 && strcmp(c2 + 1, "ro") == 0;
  *src = steal_pointer(&s);
  *dst = steal_pointer(&d);
  return 0;
}

static int put_mount(struct instance_record *r, const char *key,
                     const char *value, cell_error **err) {
  if (check_member(key, false, err) < 0)
    return -1;
  cleanup_free char *src = NULL, *dst = NULL;
  bool ro;
  if (*value && setting_parse_mount(value, &src, &dst, &ro, err) < 0)
    return cell_error_wrap(err, "%s", key);
  keep(r, key, *value ? value : NULL);
  return 0;
}

/* The devices an instance may be given: character devices whose use the
 * kernel confines to the user's own namespaces (docs/security.md). */
static const struct {
  const char *path;
  unsigned major, minor;
} allowed_devices[] = {
    {"/dev/net/tun", 10, 200},
    {"/dev/fuse", 10, 229},
};

int setting_device_numbers(const char *path, unsigned *major, unsigned *minor,
                           cell_error **err) {
  for (size_t i = 0; i < sizeof(allowed_devices) / sizeof(*allowed_devices); i++)
    if (strcmp(path, allowed_devices[i].path) == 0) {
      *major = allowed_devices[i].major;
      *minor = allowed_devices[i].minor;
      return 0;
    }
  return cell_fail(err, EPERM, "device `%s`: not on the allow list (/dev/net/tun, "
                   "/dev/fuse)", path);
}

static int put_device(struct instance_record *r, const char *key,
                      const char *value, cell_error **err) {
  unsigned major, minor;
  if (check_member(key, false, err) < 0)
    return -1;
  if (*value && setting_device_numbers(value, &major, &minor, err) < 0)
    return cell_error_wrap(err, "%s", key);
  /* One bind a path: a second would stack on the first, and taking one
   * away would leave the other. */
  for (size_t i = 0; *value && r->settings && r->settings[i]; i++) {
    const char *s = r->settings[i], *eq = strchr(s, '=');
    size_t n = (size_t)(eq - s);
    if (strncmp(s, "device.", 7) == 0 && strcmp(eq + 1, value) == 0 &&
        (strlen(key) != n || strncmp(s, key, n) != 0))
      return cell_fail(err, EINVAL, "%s: %s is given already as %.*s", key,
                       value, (int)n, s);
  }
  keep(r, key, *value ? value : NULL);
  return 0;
}

/* ---- networks: NETWORK[:ADDRESS],... in interface order ---------------- */

/* none, or up to INSTANCE_MAX_NETS names each with an optional address
 * (an IPv6 one keeps its own colons: the name has none). */
static int put_networks(struct instance_record *r, const char *key,
                        const char *value, cell_error **err) {
  if (strcmp(value, "none") != 0) {
    cleanup_free char *copy = xstrdup(value);
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save), n++) {
      tok[strcspn(tok, ":")] = '\0';
      cleanup_error cell_error *why = NULL;
      if (instance_check_name(tok, &why) < 0 || n >= INSTANCE_MAX_NETS)
        return bad_form(err, key, value);
    }
    if (n == 0 || value[strlen(value) - 1] == ',' || strstr(value, ",,"))
      return bad_form(err, key, value);
  }
  keep(r, key, value);
  return 0;
}

/* What a start will give it: the planned change, else its networks now. */
static char *get_networks(const struct instance_record *r, const char *key) {
  const char *planned = instance_setting(r, key);
  if (planned)
    return xstrdup(planned);
  if (r->n_nets == 0)
    return xstrdup("none");
  char *out = xstrdup("");
  for (size_t i = 0; i < r->n_nets; i++) {
    const char *addr = r->nets[i].ipv4 ? r->nets[i].ipv4 : r->nets[i].ipv6;
    char *next = xasprintf("%s%s%s%s%s", out, i ? "," : "", r->nets[i].network,
                           addr ? ":" : "", addr ? addr : "");
    free(out);
    out = next;
  }
  return out;
}

char *settings_networks_json(const char *value) {
  struct json_gen *g = json_gen_new(false);
  json_gen_array_open(g);
  cleanup_free char *copy = xstrdup(strcmp(value, "none") == 0 ? "" : value);
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    char *colon = strchr(tok, ':');
    if (colon)
      *colon = '\0';
    json_gen_object_open(g);
    json_gen_kv_string(g, "network", tok);
    if (colon)
      json_gen_kv_string(g, "address", colon + 1);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}

void instance_setting_drop(struct instance_record *r, const char *key) {
  keep(r, key, NULL);
}

/* ---- block I/O: a weight, and limits per device (MAJ:MIN) ------------- */

static int put_blkio_weight(struct instance_record *r, const char *key,
                            const char *value, cell_error **err) {
  long long n;
  if (!cell_parse_ll(value, 0, 1000, &n) || (n > 0 && n < 10))
    return bad_form(err, key, value);
  cleanup_free char *s = int_string(n);
  keep(r, key, n ? s : NULL);
  return 0;
}

/* blkio.read_bps.MAJ:MIN and the like: the member a device's numbers. */
static int check_device_member(const char *key, cell_error **err) {
  const char *m = strrchr(key, '.') + 1;
  unsigned major, minor;
  char end;
  if (sscanf(m, "%u:%u%c", &major, &minor, &end) != 2)
    return cell_fail(err, EINVAL, "%s: `%s` is not a device's MAJOR:MINOR "
                     "(ls -l /dev/vda shows them)", key, m);
  return 0;
}

/* A rate: bytes (a size, 10M) or operations per second; 0: no limit. */
static int put_blkio_rate(struct instance_record *r, const char *key,
                          const char *value, cell_error **err) {
  long long n;
  if (check_device_member(key, err) < 0)
    return -1;
  bool bytes = strstr(key, "_bps.") != NULL;
  if (bytes ? !cell_parse_size(value, &n) || n < 0
            : !cell_parse_ll(value, 0, INT64_MAX, &n))
    return bad_form(err, key, value);
  cleanup_free char *s = int_string(n);
  keep(r, key, s);
  return 0;
}

static char *get_blkio(const struct instance_record *r, const char *key) {
  const char *v = instance_setting(r, key);
  return xstrdup(v ? v : "0");
}

static const struct {
  const char *prefix, *oci;
} throttles[] = {
    {"blkio.read_bps.", "throttleReadBpsDevice"},
    {"blkio.write_bps.", "throttleWriteBpsDevice"},
    {"blkio.read_iops.", "throttleReadIOPSDevice"},
    {"blkio.write_iops.", "throttleWriteIOPSDevice"},
};

static void gen_throttle(struct json_gen *g, const struct instance_record *r,
                         const char *prefix, const char *oci) {
  size_t n = strlen(prefix);
  bool open = false;
  for (size_t i = 0; r->settings && r->settings[i]; i++) {
    unsigned major, minor;
    unsigned long long rate;
    if (strncmp(r->settings[i], prefix, n) != 0 ||
        sscanf(r->settings[i] + n, "%u:%u=%llu", &major, &minor, &rate) != 3)
      continue;
    if (!open) {
      json_gen_key(g, oci);
      json_gen_array_open(g);
      open = true;
    }
    json_gen_object_open(g);
    json_gen_kv_int(g, "major", major);
    json_gen_kv_int(g, "minor", minor);
    json_gen_kv_int(g, "rate", (int64_t)rate);
    json_gen_object_close(g);
  }
  if (open)
    json_gen_array_close(g);
}

void settings_gen_block_io(struct json_gen *g, const struct instance_record *r) {
  bool any = false;
  for (size_t i = 0; r->settings && r->settings[i]; i++)
    any |= strncmp(r->settings[i], "blkio.", 6) == 0;
  if (!any)
    return;
  json_gen_key(g, "blockIO");
  json_gen_object_open(g);
  const char *weight = instance_setting(r, "blkio.weight");
  if (weight)
    json_gen_kv_int(g, "weight", strtoll(weight, NULL, 10));
  for (size_t i = 0; i < sizeof(throttles) / sizeof(*throttles); i++)
    gen_throttle(g, r, throttles[i].prefix, throttles[i].oci);
  json_gen_object_close(g);
}

/* ---- the table ---------------------------------------------------------- */

static const struct setting table[] = {
    {"restart", "no, on-failure[:N] or always", EFFECT_AT_ONCE, false,
     "restart", put_restart, get_restart},
    {"autostart", "true or false", EFFECT_AT_ONCE, false, "autostart",
     put_autostart, get_autostart},
    {"autostart.priority", "an integer in [0, 1000] (higher starts first)",
     EFFECT_AT_ONCE, false, NULL, put_priority, get_kept},
    {"autostart.delay", "seconds in [0, 3600] to wait after its start",
     EFFECT_AT_ONCE, false, NULL, put_delay, get_kept},
    {"hostname", "a host name: letters, digits, `-` and `.`", EFFECT_HOSTNAME,
     false, "hostname", put_hostname, get_hostname},
    {"init", "a command line, as a shell splits it", EFFECT_NEXT_START, false,
     "init", put_init, get_init},
    {"halt_signal", "a signal: SIGPWR, RTMIN+3, 15", EFFECT_AT_ONCE, false,
     "halt_signal", put_halt_signal, get_halt_signal},
    {"networks", "NETWORK[:ADDRESS],... (eth0, eth1, ... in order), or none",
     EFFECT_NETWORKS, false, "networks", put_networks, get_networks},
    {"memory", "a size like 512M (at least 4M), or 0 for no limit",
     EFFECT_LIMITS, false, "memory", put_memory, get_memory},
    {"swap", "a size like 1G of swap besides memory, or 0 for none",
     EFFECT_LIMITS, false, NULL, put_swap, get_swap},
    {"cpus", "a number of CPUs like 1.5, or 0 for no limit", EFFECT_LIMITS,
     false, "cpus", put_cpus, get_cpus},
    {"cpuset", "a CPU list like 0-1,3, or empty for the ones cpus picks",
     EFFECT_LIMITS, false, NULL, put_cpuset, get_kept},
    {"pids", "an integer, or 0 for no limit", EFFECT_LIMITS, false, "pids",
     put_pids, get_pids},
    {"disk", "a size like 10G (at least 1M), or 0 for no limit", EFFECT_DISK,
     false, "disk", put_disk, get_disk},
    {"blkio.weight", "an integer in [10, 1000], or 0 for the default",
     EFFECT_LIMITS, false, NULL, put_blkio_weight, get_blkio},
    {"blkio.read_bps.", "blkio.read_bps.MAJ:MIN=SIZE per second (0: none)",
     EFFECT_LIMITS, false, NULL, put_blkio_rate, get_blkio},
    {"blkio.write_bps.", "blkio.write_bps.MAJ:MIN=SIZE per second (0: none)",
     EFFECT_LIMITS, false, NULL, put_blkio_rate, get_blkio},
    {"blkio.read_iops.", "blkio.read_iops.MAJ:MIN=N per second (0: none)",
     EFFECT_LIMITS, false, NULL, put_blkio_rate, get_blkio},
    {"blkio.write_iops.", "blkio.write_iops.MAJ:MIN=N per second (0: none)",
     EFFECT_LIMITS, false, NULL, put_blkio_rate, get_blkio},
    {"env.", "env.KEY=VALUE (empty: removed)", EFFECT_ENV, false, NULL, put_env,
     get_kept},
    {"mount.", "mount.NAME=/srv/x:/data[:ro] (empty: removed)", EFFECT_MOUNT,
     true, NULL, put_mount, get_kept},
    {"device.", "device.NAME=/dev/net/tun or /dev/fuse (empty: removed)",
     EFFECT_DEVICE, true, NULL, put_device, get_kept},
};

static const struct setting *row_of(const char *key) {
  for (size_t i = 0; i < sizeof(table) / sizeof(*table); i++) {
    size_t n = strlen(table[i].key);
    if (table[i].key[n - 1] == '.' ? strncmp(key, table[i].key, n) == 0
                                   : strcmp(key, table[i].key) == 0)
      return &table[i];
  }
  return NULL;
}

static char *known_keys(void) {
  char *out = xstrdup("");
  for (size_t i = 0; i < sizeof(table) / sizeof(*table); i++) {
    size_t n = strlen(table[i].key);
    char *next = xasprintf("%s%s%s%s", out, i ? ", " : "", table[i].key,
                           table[i].key[n - 1] == '.' ? "NAME" : "");
    free(out);
    out = next;
  }
  return out;
}

const struct setting *setting_find(const char *key, cell_error **err) {
  const struct setting *s = row_of(key);
  if (!s) {
    cleanup_free char *keys = known_keys();
    cell_fail(err, EINVAL, "`%s`: no such setting (%s)", key, keys);
  }
  return s;
}

enum setting_effect setting_effect(const struct setting *s) { return s->effect; }
bool setting_root_only(const struct setting *s) { return s->root_only; }
const char *setting_create_field(const struct setting *s) {
  return s->create_field;
}

int setting_put(struct instance_record *r, const char *key, const char *value,
                cell_error **err) {
  const struct setting *s = setting_find(key, err);
  if (!s)
    return -1;
  bool family = s->key[strlen(s->key) - 1] == '.';
  if (!family && !*value)
    return bad(err, key, value, s->form);
  return s->put(r, key, value, err);
}

int setting_put_pair(struct instance_record *r, const char *pair,
                     cell_error **err) {
  const char *eq = strchr(pair, '=');
  if (!eq || eq == pair)
    return cell_fail(err, EINVAL, "`%s`: expected KEY=VALUE", pair);
  cleanup_free char *key = xstrndup(pair, (size_t)(eq - pair));
  return setting_put(r, key, eq + 1, err);
}

char *setting_get(const struct instance_record *r, const char *key) {
  const struct setting *s = row_of(key);
  return s ? s->get(r, key) : NULL;
}

char *settings_forms(void) {
  char *out = xstrdup("");
  for (size_t i = 0; i < sizeof(table) / sizeof(*table); i++) {
    size_t n = strlen(table[i].key);
    char *next = table[i].key[n - 1] == '.'
                     ? xasprintf("%s  %s\n", out, table[i].form)
                     : xasprintf("%s  %s=%s\n", out, table[i].key, table[i].form);
    free(out);
    out = next;
  }
  return out;
}

/* ---- lists of keys ------------------------------------------------------ */

bool settings_list_has(char *const *list, const char *key) {
  for (size_t i = 0; list && list[i]; i++)
    if (strcmp(list[i], key) == 0)
      return true;
  return false;
}

void settings_list_add(char ***list, const char *key) {
  if (!settings_list_has(*list, key))
    cell_strv_push(list, key);
}

void settings_list_remove(char **list, const char *key) {
  size_t out = 0;
  for (size_t i = 0; list && list[i]; i++) {
    if (strcmp(list[i], key) == 0)
      free(list[i]);
    else
      list[out++] = list[i];
  }
  if (list)
    list[out] = NULL;
}
