/* The verbs on one instance (instance.h). */
#include "instance.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "base/shell-words.h"
#include "base/signals.h"
#include "base/util.h"
#include "client.h"
#include "image.h"
#include "output.h"

static bool parse_cpus(const char *s, double *out) {
  char *end;
  errno = 0;
  double d = strtod(s, &end);
  if (errno || end == s || *end || d < 0 || d > 4096)
    return false;
  *out = d;
  return true;
}

/* --init "CMD ARGS": split as a shell would, without expansion
 * (base/shell-words.h): quotes and backslashes keep blanks in a word. */
static int gen_init(struct json_gen *g, const char *cmd, cell_error **err) {
  cleanup_strv char **words = NULL;
  cleanup_error cell_error *why = NULL;
  if (shell_words_split(cmd, &words, &why) < 0)
    return usage_error(err, "--init %s", why->msg);
  if (!words[0])
    return usage_error(err, "--init `%s`: no command", cmd);
  json_gen_key(g, "init");
  json_gen_array_open(g);
  for (char **w = words; *w; w++)
    json_gen_string(g, *w);
  json_gen_array_close(g);
  return EXIT_OK;
}

/* --halt-signal SIG: a name (SIGPWR, PWR, RTMIN+3) or a number, checked
 * here so that a typo is a usage error; celld gets it as it was typed. */
static int gen_halt_signal(struct json_gen *g, const char *arg, cell_error **err) {
  int signo;
  cleanup_error cell_error *why = NULL;
  if (signal_parse(arg, &signo, &why) < 0)
    return usage_error(err, "--halt-signal: %s", why->msg);
  json_gen_kv_string(g, "halt_signal", arg);
  return EXIT_OK;
}

/* --net NAME[:ADDR], in order: eth0, eth1, ...  NAME has no `:`, so an
 * IPv6 ADDR keeps all of its own. */
static void gen_networks(struct json_gen *g, const char *const *nets, size_t n) {
  json_gen_key(g, "networks");
  json_gen_array_open(g);
  for (size_t i = 0; i < n; i++) {
    const char *colon = strchr(nets[i], ':');
    cleanup_free char *name =
        colon ? xstrndup(nets[i], (size_t)(colon - nets[i])) : xstrdup(nets[i]);
    json_gen_object_open(g);
    json_gen_kv_string(g, "network", name);
    if (colon)
      json_gen_kv_string(g, "address", colon + 1);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
}

static const struct option create_options[] = {
    {"template", required_argument, NULL, 't'},
    {"image", required_argument, NULL, 'I'},
    {"memory", required_argument, NULL, 'm'},
    {"cpus", required_argument, NULL, 'c'},
    {"pids", required_argument, NULL, 'p'},
    {"init", required_argument, NULL, 'i'},
    {"autostart", no_argument, NULL, 'a'},
    {"restart", required_argument, NULL, 'r'},
    {"hostname", required_argument, NULL, 'H'},
    {"net", required_argument, NULL, 'n'},
    {"halt-signal", required_argument, NULL, 's'},
    {"pool", required_argument, NULL, 'P'},
    {"disk", required_argument, NULL, 'd'},
    {"profile", required_argument, NULL, 'F'},
    {NULL, 0, NULL, 0},
};

/* One option of create (o as getopt_long returned it) into the request. */
static int gen_create_option(struct json_gen *g, int o, const char *arg,
                             cell_error **err) {
  long long n;
  double d;
  switch (o) {
  case 'I': json_gen_kv_string(g, "image", arg); return EXIT_OK;
  case 'm':
    if (!cell_parse_size(arg, &n))
      return usage_error(err, "--memory `%s`: expected a size like 256M", arg);
    json_gen_key(g, "memory");
    json_gen_int(g, n);
    return EXIT_OK;
  case 'c':
    if (!parse_cpus(arg, &d))
      return usage_error(err, "--cpus `%s`: expected a number like 0.5", arg);
    json_gen_key(g, "cpus");
    json_gen_double(g, d);
    return EXIT_OK;
  case 'p':
    if (!cell_parse_ll(arg, 1, INT32_MAX, &n))
      return usage_error(err, "--pids `%s`: expected a positive integer", arg);
    json_gen_key(g, "pids");
    json_gen_int(g, n);
    return EXIT_OK;
  case 'd':
    if (!cell_parse_size(arg, &n) || n <= 0)
      return usage_error(err, "--disk `%s`: expected a size like 10G", arg);
    json_gen_key(g, "disk");
    json_gen_int(g, n);
    return EXIT_OK;
  case 'P': json_gen_kv_string(g, "pool", arg); return EXIT_OK;
  case 'i': return gen_init(g, arg, err);
  case 's': return gen_halt_signal(g, arg, err);
  case 'a': json_gen_kv_bool(g, "autostart", true); return EXIT_OK;
  case 'r': json_gen_kv_string(g, "restart", arg); return EXIT_OK;
  case 'H': json_gen_kv_string(g, "hostname", arg); return EXIT_OK;
  }
  return usage_error(err, "create: unknown option");
}

/* create's options after NAME (argv[1]) into the request. */
static int gen_create(const struct invocation *inv, struct json_gen *g,
                      const char **template_dir, cell_error **err) {
  /* getopt sees NAME as its argv[0]; it reports nothing itself. */
  int argc = inv->argc - 1;
  char **argv = inv->argv + 1;
  const char *nets[16], *profiles[16];
  size_t n_nets = 0, n_profiles = 0;
  optind = 0;
  opterr = 0;
  int o;
  while ((o = getopt_long(argc, argv, "+:", create_options, NULL)) != -1) {
    int rc = EXIT_OK;
    if (o == '?')
      rc = usage_error(err, "create: unknown option `%s`", argv[optind - 1]);
    else if (o == ':')
      rc = usage_error(err, "create: `%s` needs a value", argv[optind - 1]);
    else if (o == 'n' && n_nets == sizeof(nets) / sizeof(*nets))
      rc = usage_error(err, "--net `%s`: too many networks", optarg);
    else if (o == 'n')
      nets[n_nets++] = optarg;
    else if (o == 'F' && n_profiles == sizeof(profiles) / sizeof(*profiles))
      rc = usage_error(err, "--profile `%s`: too many profiles", optarg);
    else if (o == 'F')
      profiles[n_profiles++] = optarg;
    else if (o == 't')
      *template_dir = optarg;
    else
      rc = gen_create_option(g, o, optarg, err);
    if (rc != EXIT_OK)
      return rc;
  }
  if (optind != argc)
    return usage_error(err, "create: unexpected `%s`", argv[optind]);
  if (n_nets)
    gen_networks(g, nets, n_nets);
  if (n_profiles) {
    json_gen_key(g, "profiles");
    json_gen_array_open(g);
    for (size_t i = 0; i < n_profiles; i++)
      json_gen_string(g, profiles[i]);
    json_gen_array_close(g);
  }
  return EXIT_OK;
}

/* A create that failed leaves no image of its --template behind: our
 * name for it goes (the image stays when another name or an instance
 * holds it). */
static void forget_import(const char *socket, const char *id) {
  cleanup_json_gen struct json_gen *g = request_new("image.rm", NULL);
  json_gen_kv_string(g, "image", id);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  cleanup_error cell_error *ignored = NULL;
  client_request(socket, req, &answer, &ignored);
}

int cmd_create(const struct invocation *inv, cell_error **err) {
  const char *name;
  int rc = verb_name(inv, &name, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_json_gen struct json_gen *g = request_new("create", name);
  const char *template_dir = NULL;
  rc = gen_create(inv, g, &template_dir, err);
  if (rc != EXIT_OK)
    return rc;
  if (template_dir) {
    /* A template is imported: the instance is on an image, which neither
     * a change to the directory nor its removal reaches. */
    cleanup_free char *id = NULL;
    rc = image_import_source(inv->socket, template_dir, NULL, false, &id, err);
    if (rc != EXIT_OK)
      return rc;
    json_gen_kv_string(g, "image", id);
    cleanup_free char *req = request_finish(g);
    cleanup_json struct json_value *answer = NULL;
    rc = client_request(inv->socket, req, &answer, err);
    if (rc != EXIT_OK)
      forget_import(inv->socket, id);
    else
      fprintf(stderr, "cellctl: --template %s: imported as image %.19s (a "
              "copy; cellctl image list)\n", template_dir, id);
    return rc;
  }
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  return client_request(inv->socket, req, &answer, err);
}

/* A verb whose request is its name and flags (the allowed ones), and
 * whose answer is only ok. */
static int plain_verb(const struct invocation *inv, unsigned allowed,
                      cell_error **err) {
  const char *name;
  struct verb_flags flags;
  int rc = verb_name(inv, &name, err);
  if (rc == EXIT_OK)
    rc = verb_flags(inv, 2, allowed, &flags, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_json_gen struct json_gen *g = request_new(inv->verb->name, name);
  if (flags.force)
    json_gen_kv_bool(g, "force", true);
  if (flags.timeout >= 0)
    json_gen_kv_int(g, "timeout", flags.timeout);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  return client_request(inv->socket, req, &answer, err);
}

int cmd_start(const struct invocation *inv, cell_error **err) {
  return plain_verb(inv, 0, err);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What stop is about to do, from the instance's record: its halt signal
 * and how long celld waits before SIGKILL.  Nothing when it is not
 * running, or when an operation holds it (celld's answer says so). */
static void say_stopping(const struct invocation *inv, const char *name,
                         int timeout) {
  cleanup_json_gen struct json_gen *g = request_new("show", name);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  cleanup_error cell_error *ignored = NULL;
  if (client_request(inv->socket, req, &answer, &ignored) != EXIT_OK)
    return;
  const struct json_value *inst = json_object_get(answer, "instance");
  const struct json_value *busy = json_object_get(inst, "busy");
  if (strcmp(field_string(inst, "state"), "running") != 0 ||
      (busy && busy->type == JSON_STRING))
    return;
  char buf[32];
  const char *sig = signal_name((int)field_int(inst, "halt_signal", SIGTERM),
                                buf, sizeof(buf));
  if (timeout < 0)
    timeout = (int)field_int(answer, "stop_timeout", 10);
  printf("stopping %s: sent %s to its init, waiting up to %d s\n", name,
         sig ? sig : "SIGTERM", timeout);
  fflush(stdout);
}

int cmd_stop(const struct invocation *inv, cell_error **err) {
  const char *name;
  struct verb_flags flags;
  int rc = verb_name(inv, &name, err);
  if (rc == EXIT_OK)
    rc = verb_flags(inv, 2, FLAG_TIMEOUT, &flags, err);
  if (rc != EXIT_OK)
    return rc;
  say_stopping(inv, name, flags.timeout);
  double start = now_seconds();
  rc = plain_verb(inv, FLAG_TIMEOUT, err);
  if (rc == EXIT_OK)
    printf("stopped %s in %.2f s\n", name, now_seconds() - start);
  return rc;
}

int cmd_pause(const struct invocation *inv, cell_error **err) {
  return plain_verb(inv, 0, err);
}

int cmd_resume(const struct invocation *inv, cell_error **err) {
  return plain_verb(inv, 0, err);
}

int cmd_restart(const struct invocation *inv, cell_error **err) {
  return plain_verb(inv, FLAG_TIMEOUT, err);
}

int cmd_destroy(const struct invocation *inv, cell_error **err) {
  return plain_verb(inv, FLAG_FORCE, err);
}

int cmd_show(const struct invocation *inv, cell_error **err) {
  const char *name;
  struct verb_flags flags;
  int rc = verb_name(inv, &name, err);
  if (rc == EXIT_OK)
    rc = verb_flags(inv, 2, FLAG_JSON, &flags, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_json_gen struct json_gen *g = request_new("show", name);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  rc = client_request(inv->socket, req, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  const struct json_value *inst = json_object_get(answer, "instance");
  if (flags.json)
    print_json(inst);
  else if (inst)
    print_instance(inst);
  return EXIT_OK;
}

int cmd_set(const struct invocation *inv, cell_error **err) {
  const char *name;
  int rc = verb_name(inv, &name, err);
  if (rc != EXIT_OK)
    return rc;
  if (inv->argc < 3)
    return usage_error(err, "set: NAME KEY=VALUE... (cellctl help lists the "
                       "keys)");
  cleanup_json_gen struct json_gen *g = request_new("set", name);
  json_gen_key(g, "settings");
  json_gen_array_open(g);
  for (int k = 2; k < inv->argc; k++) {
    /* The values are celld's to check, against its table of settings. */
    if (!strchr(inv->argv[k], '=') || inv->argv[k][0] == '=')
      return usage_error(err, "set: `%s`: expected KEY=VALUE", inv->argv[k]);
    json_gen_string(g, inv->argv[k]);
  }
  json_gen_array_close(g);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  return client_request(inv->socket, req, &answer, err);
}

int cmd_get(const struct invocation *inv, cell_error **err) {
  if (inv->argc != 3)
    return usage_error(err, "get: NAME KEY");
  cleanup_json_gen struct json_gen *g = request_new("get", inv->argv[1]);
  json_gen_kv_string(g, "key", inv->argv[2]);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  int rc = client_request(inv->socket, req, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  const struct json_value *value = json_object_get(answer, "value");
  if (value && value->type == JSON_STRING)
    printf("%s\n", value->u.string);
  const struct json_value *pending = json_object_get(answer, "pending");
  if (pending && pending->type == JSON_BOOL && pending->u.boolean)
    fprintf(stderr, "cellctl: %s: pending, applies at the next start\n",
            inv->argv[2]);
  return EXIT_OK;
}
