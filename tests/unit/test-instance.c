/* celld's instance records (lib/daemon/instance.c): name and restart-policy
 * validation, the JSON form and its checks, durable storage in a
 * directory, and the OCI config made for an instance (lib/daemon/instance-spec.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "daemon/instance-lxcfs.h"
#include "daemon/instance-spec.h"
#include "daemon/instance.h"
#include "unit.h"

static char tmpdir[] = "/tmp/cell-test-instance-XXXXXX";

/* The error message of a failed call, "" when it succeeded. */
static char last_msg[2048];
static const char *msg_of(int r, cell_error **err) {
  last_msg[0] = '\0';
  if (r < 0)
    snprintf(last_msg, sizeof(last_msg), "%s",
             *err ? (*err)->msg : "(failed without an error)");
  cell_error_free(err);
  return last_msg;
}

static const char *check_name(const char *name) {
  cell_error *err = NULL;
  return msg_of(instance_check_name(name, &err), &err);
}

/* ---- names ---------------------------------------------------------------- */

TEST(valid_names) {
  char longest[INSTANCE_NAME_MAX + 1];
  memset(longest, 'a', INSTANCE_NAME_MAX);
  longest[INSTANCE_NAME_MAX] = '\0';
  const char *good[] = {"a", "web", "Web-1", "0", "9lives", "a.b", "a_b-c.d",
                        "x..y", "a-", "a.", longest};
  for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
    const char *m = check_name(good[i]);
    if (*m)
      fprintf(stderr, "  rejected `%s`: %s\n", good[i], m);
    CHECK_STR(m, "");
  }
}

TEST(invalid_names) {
  CHECK_CONTAINS(check_name(""), "must not be empty");

  char too_long[INSTANCE_NAME_MAX + 2];
  memset(too_long, 'a', INSTANCE_NAME_MAX + 1);
  too_long[INSTANCE_NAME_MAX + 1] = '\0';
  CHECK_CONTAINS(check_name(too_long), "longer than 63 bytes");

  /* A leading dot would hide the record file (and `.`/`..` are paths);
   * a leading dash would read as an option. */
  const char *bad_start[] = {".", "..", ".hidden", "-rf", "_x"};
  for (size_t i = 0; i < sizeof(bad_start) / sizeof(*bad_start); i++)
    CHECK_CONTAINS(check_name(bad_start[i]), "must start with a letter or digit");

  /* Names become file and cgroup names: no separators, no blanks. */
  CHECK_STR(check_name("a/b"),
            "name `a/b`: `/` is not allowed (letters, digits, `_.-`)");
  const char *bad_char[] = {"a/b", "a/..", "a b", "a\tb", "a\nb",
                            "a:b", "a*", "a\\b", "caf\xc3\xa9", "a+b"};
  for (size_t i = 0; i < sizeof(bad_char) / sizeof(*bad_char); i++)
    CHECK_CONTAINS(check_name(bad_char[i]), "is not allowed");
  CHECK_CONTAINS(check_name("../etc"), "must start with a letter or digit");
}

/* ---- restart policies ----------------------------------------------------- */

TEST(restart_round_trip) {
  struct {
    const char *text;
    enum restart_policy p;
    int max;
  } cases[] = {
      {"no", RESTART_NO, 0},
      {"always", RESTART_ALWAYS, 0},
      {"on-failure", RESTART_ON_FAILURE, 0},
      {"on-failure:1", RESTART_ON_FAILURE, 1},
      {"on-failure:3", RESTART_ON_FAILURE, 3},
      {"on-failure:1000000", RESTART_ON_FAILURE, 1000000},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    enum restart_policy p = (enum restart_policy)-1;
    int max = -1;
    cell_error *err = NULL;
    CHECK_STR(msg_of(instance_parse_restart(cases[i].text, &p, &max, &err), &err),
              "");
    CHECK(p == cases[i].p);
    CHECK(max == cases[i].max);
    cleanup_free char *back = instance_restart_string(p, max);
    CHECK_STR(back, cases[i].text);
  }
}

TEST(restart_resets_max) {
  /* A policy without a bound must not keep a bound from before. */
  enum restart_policy p;
  int max = 7;
  cell_error *err = NULL;
  CHECK(instance_parse_restart("always", &p, &max, &err) == 0);
  CHECK(max == 0);
  max = 7;
  CHECK(instance_parse_restart("on-failure", &p, &max, &err) == 0);
  CHECK(max == 0);
  cell_error_free(&err);
}

TEST(bad_restart_policies) {
  const char *bad[] = {"sometimes",      "",          "No",
                       "always:3",       "on-failure:", "on-failure:-1",
                       "on-failure:0",   "on-failure:x", "on-failure:3x",
                       "on-failure:1000001", "on-failure3", "on-failures",
                       "on-failure:99999999999999999999", " no"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    enum restart_policy p;
    int max;
    cell_error *err = NULL;
    const char *m = msg_of(instance_parse_restart(bad[i], &p, &max, &err), &err);
    if (!*m)
      fprintf(stderr, "  accepted `%s`\n", bad[i]);
    CHECK_CONTAINS(m, "restart policy");
  }
  enum restart_policy p;
  int max;
  cell_error *err = NULL;
  CHECK_STR(msg_of(instance_parse_restart("on-failure:-1", &p, &max, &err), &err),
            "restart policy `on-failure:-1`: expected no, on-failure[:N] or always");
}

/* ---- records as JSON ------------------------------------------------------ */

static struct instance_record *full_record(void) {
  struct instance_record *r = xcalloc(1, sizeof(*r));
  r->name = xstrdup("web-1");
  r->template_dir = xstrdup("/srv/templates/debian \"bookworm\"");
  r->owner = 1000;
  r->id_start = 200000 + 3 * 65536;
  r->id_count = 131072; /* not the default range size, so a constant would show */
  r->memory = 512LL << 20;
  r->cpu_milli = 1500;
  r->pids = 4096;
  r->restart = RESTART_ON_FAILURE;
  r->restart_max = 3;
  r->restarts = 2;
  r->autostart = true;
  r->hostname = xstrdup("web1.example");
  cell_strv_push(&r->init, "/sbin/init");
  cell_strv_push(&r->init, "--log-level=\"debug\"");
  cell_strv_push(&r->init, "caf\xc3\xa9 \\ tab\t");
  r->halt_signal = 37; /* SIGRTMIN+3 with glibc: any number, kept as it is */
  r->state = xstrdup("stopped");
  r->exit_code = 137;
  r->exit_time = xstrdup("2024-05-01T12:00:00.000000001Z");
  r->created = xstrdup("2024-04-30T08:15:00.5Z");
  r->rootfs_mode = xstrdup("copy");
  r->cgroup = xstrdup("/my-parent/web-1");
  r->nets[0] = (struct instance_net){xstrdup("default"), xstrdup("eth0"),
                                     xstrdup("cv0a1b2c3d"), xstrdup("10.210.0.7"),
                                     xstrdup("fd00:ce11::7")};
  r->nets[1] = (struct instance_net){xstrdup("v4only"), xstrdup("eth1"),
                                     xstrdup("cv99887766"), xstrdup("10.78.0.2"),
                                     NULL};
  r->n_nets = 2;
  return r;
}

static void check_same(const struct instance_record *a,
                       const struct instance_record *b) {
  CHECK_STR(a->name, b->name);
  CHECK_STR(a->template_dir, b->template_dir);
  CHECK(a->owner == b->owner);
  CHECK(a->id_start == b->id_start);
  CHECK(a->id_count == b->id_count);
  CHECK(a->memory == b->memory);
  CHECK(a->cpu_milli == b->cpu_milli);
  CHECK(a->pids == b->pids);
  CHECK(a->restart == b->restart);
  CHECK(a->restart_max == b->restart_max);
  CHECK(a->restarts == b->restarts);
  CHECK(a->autostart == b->autostart);
  CHECK(a->halt_signal == b->halt_signal);
  CHECK_STR(a->hostname, b->hostname);
  CHECK(cell_strv_len(a->init) == cell_strv_len(b->init));
  for (size_t i = 0; a->init && b->init && a->init[i] && b->init[i]; i++)
    CHECK_STR(a->init[i], b->init[i]);
  CHECK_STR(a->state, b->state);
  CHECK(a->exit_code == b->exit_code);
  if (a->exit_time || b->exit_time)
    CHECK_STR(a->exit_time, b->exit_time);
  CHECK_STR(a->created, b->created);
  CHECK_STR(a->rootfs_mode, b->rootfs_mode);
  CHECK_STR(a->cgroup, b->cgroup);
  CHECK(a->n_nets == b->n_nets);
  for (size_t i = 0; i < a->n_nets && i < b->n_nets; i++) {
    CHECK_STR(a->nets[i].network, b->nets[i].network);
    CHECK_STR(a->nets[i].ifname, b->nets[i].ifname);
    CHECK_STR(a->nets[i].host_veth, b->nets[i].host_veth);
    CHECK_STR(a->nets[i].ipv4, b->nets[i].ipv4);
    CHECK((a->nets[i].ipv6 == NULL) == (b->nets[i].ipv6 == NULL));
    if (a->nets[i].ipv6 && b->nets[i].ipv6)
      CHECK_STR(a->nets[i].ipv6, b->nets[i].ipv6);
  }
}

/* Text -> record, NULL (and the message in last_msg) when refused. */
static struct instance_record *from_text(const char *text) {
  struct instance_record *r = NULL;
  cell_error *err = NULL;
  int rc = instance_record_from_json(text, strlen(text), &r, &err);
  msg_of(rc, &err);
  if (rc < 0)
    return NULL;
  CHECK(r != NULL);
  return r;
}

TEST(record_round_trip) {
  struct instance_record *r = full_record();
  for (int pretty = 0; pretty <= 1; pretty++) {
    cleanup_free char *text = instance_record_to_json(r, pretty);
    CHECK(text != NULL);
    if (!pretty)
      CHECK(strchr(text, '\n') == NULL); /* one line, as the header says */
    struct instance_record *back = from_text(text);
    CHECK_STR(last_msg, "");
    if (back) {
      check_same(r, back);
      /* And writing it again gives the same text. */
      cleanup_free char *again = instance_record_to_json(back, pretty);
      CHECK_STR(again, text);
    }
    instance_record_free(back);
  }
  instance_record_free(r);
}

TEST(record_exit_code_and_time) {
  struct instance_record *r = full_record();
  /* Never exited: exit_code and exit_time are null in the JSON. */
  r->exit_code = -1;
  free(r->exit_time);
  r->exit_time = NULL;
  r->restart = RESTART_ALWAYS;
  r->restart_max = 0;
  r->autostart = false;
  cleanup_free char *text = instance_record_to_json(r, false);
  CHECK_CONTAINS(text, "\"exit_code\":null");
  CHECK_CONTAINS(text, "\"exit_time\":null");
  CHECK_CONTAINS(text, "\"restart\":\"always\"");
  struct instance_record *back = from_text(text);
  CHECK_STR(last_msg, "");
  if (back) {
    CHECK(back->exit_code == -1);
    CHECK(back->exit_time == NULL);
    check_same(r, back);
  }
  instance_record_free(back);

  /* Exit code 0 is a number, not "unknown". */
  r->exit_code = 0;
  cleanup_free char *zero = instance_record_to_json(r, false);
  CHECK_CONTAINS(zero, "\"exit_code\":0");
  back = from_text(zero);
  CHECK(back && back->exit_code == 0);
  instance_record_free(back);
  instance_record_free(r);
}

/* The JSON of full_record() with member `key` replaced by the JSON text
 * `value`, or removed when value is NULL. */
static char *mutate(const char *key, const char *value) {
  struct instance_record *r = full_record();
  cleanup_free char *text = instance_record_to_json(r, false);
  instance_record_free(r);
  cleanup_json struct json_value *doc = NULL;
  cleanup_json struct json_value *repl = NULL;
  cell_error *err = NULL;
  if (json_parse(text, strlen(text), &doc, &err) < 0 ||
      (value && json_parse(value, strlen(value), &repl, &err) < 0)) {
    fprintf(stderr, "mutate: %s\n", err->msg);
    cell_error_free(&err);
    abort();
  }
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  bool found = false;
  for (size_t i = 0; i < doc->u.object.len; i++) {
    if (strcmp(doc->u.object.keys[i], key) == 0) {
      found = true;
      if (!repl)
        continue;
      json_gen_key(g, key);
      json_gen_value(g, repl);
      continue;
    }
    json_gen_key(g, doc->u.object.keys[i]);
    json_gen_value(g, doc->u.object.values[i]);
  }
  if (!found) {
    fprintf(stderr, "mutate: the record has no `%s`\n", key);
    abort();
  }
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}

/* The record with key set to value (NULL: removed) is refused with a
 * message containing msg. */
static void refused(const char *key, const char *value, const char *msg) {
  cleanup_free char *text = mutate(key, value);
  struct instance_record *r = from_text(text);
  int before = unit_failures;
  CHECK(r == NULL);
  CHECK_CONTAINS(last_msg, msg);
  if (unit_failures != before)
    fprintf(stderr, "  (the record with %s = %s)\n", key,
            value ? value : "(absent)");
  instance_record_free(r);
}

TEST(bad_records_name_the_field) {
  refused("name", NULL, "name: must be a string");
  refused("name", "7", "name: must be a string");
  refused("name", "\"../../etc/passwd\"", "name `../../etc/passwd`");
  refused("name", "\"a/b\"", "`/` is not allowed");
  refused("name", "\"\"", "name: must not be empty");
  refused("template", NULL, "template or image: one is required");
  refused("template", "7", "template: must be a string");
  refused("owner", "-1", "owner: must be an integer");
  refused("id_start", "4294967296", "id_start: must be an integer");
  refused("id_start", "\"200000\"", "id_start: must be an integer");
  refused("id_count", "0", "id_count: must be an integer in [1,");
  refused("id_count", NULL, "id_count");
  refused("memory", "-1", "memory: must be an integer");
  refused("memory", "1.5", "memory: must be an integer");
  refused("cpu_milli", "null", "cpu_milli");
  refused("pids", "-5", "pids");
  refused("restart", "\"sometimes\"", "restart policy `sometimes`");
  refused("restart", "\"on-failure:-1\"", "restart policy");
  refused("restarts", "-1", "restarts");
  refused("autostart", "\"yes\"", "autostart: must be a boolean");
  refused("autostart", NULL, "autostart: must be a boolean");
  refused("hostname", NULL, "hostname: must be a string");
  refused("init", "\"/sbin/init\"", "init: must be a non-empty array of strings");
  refused("init", "[]", "init: must be a non-empty array of strings");
  refused("init", NULL, "init: must be a non-empty array of strings");
  refused("init", "[1]", "init[0]: must be a string");
  refused("init", "[null]", "init[0]: must be a string");
  refused("init", "[\"/sbin/init\", {}]", "init[1]: must be a string");
  refused("state", "null", "state: must be a string");
  refused("exit_code", "256", "exit_code: must be an integer in [0, 255]");
  refused("exit_code", "-1", "exit_code");
  refused("exit_code", "\"137\"", "exit_code");
  refused("exit_time", "0", "exit_time: must be a string");
  refused("created", NULL, "created: must be a string");
  refused("cgroup", "\"cell-instances/web-1\"", "cgroup: must be an absolute path");
  refused("cgroup", "\"\"", "cgroup: must be an absolute path");
  refused("cgroup", "5", "cgroup: must be a string");
  refused("networks", "{}", "networks: must be an array");
  refused("networks", "[1]", "networks[0]: must be an object");
  refused("networks", "[{\"network\":\"a\",\"interface\":\"eth0\",\"ipv4\":null,\"ipv6\":null}]",
          "networks[0]: host_veth: must be a string");
  refused("networks", "[{},{},{},{},{},{},{},{},{}]", "at most 8");
}

TEST(not_a_record) {
  CHECK(from_text("[]") == NULL);
  CHECK_STR(last_msg, "not a JSON object");
  CHECK(from_text("{\"name\": ") == NULL);
  CHECK(last_msg[0] != '\0');
  CHECK(from_text("") == NULL);
  CHECK(last_msg[0] != '\0');
}

TEST(old_record_gets_default_cgroup) {
  /* Records written before `cgroup` existed had their cgroup under the
   * fixed parent; reading one must give that path back, not a new one. */
  cleanup_free char *text = mutate("cgroup", NULL);
  CHECK(strstr(text, "\"cgroup\"") == NULL);
  struct instance_record *r = from_text(text);
  CHECK_STR(last_msg, "");
  if (r)
    CHECK_STR(r->cgroup, "/cell-instances/web-1");
  instance_record_free(r);

  cleanup_free char *null_cgroup = mutate("cgroup", "null");
  r = from_text(null_cgroup);
  CHECK(r && r->cgroup && strcmp(r->cgroup, "/cell-instances/web-1") == 0);
  instance_record_free(r);

  /* Optional fields may be absent: exit_time, exit_code, rootfs_mode. */
  cleanup_free char *no_time = mutate("exit_time", NULL);
  r = from_text(no_time);
  CHECK(r && r->exit_time == NULL);
  instance_record_free(r);
  cleanup_free char *no_code = mutate("exit_code", NULL);
  r = from_text(no_code);
  CHECK(r && r->exit_code == -1);
  instance_record_free(r);
  /* Records from before halt_signal: none (stop sends SIGTERM then). */
  cleanup_free char *no_halt = mutate("halt_signal", NULL);
  CHECK(strstr(no_halt, "halt_signal") == NULL);
  r = from_text(no_halt);
  CHECK(r && r->halt_signal == 0);
  instance_record_free(r);
  cleanup_free char *bad_halt = mutate("halt_signal", "99");
  r = from_text(bad_halt);
  CHECK(r == NULL);
  CHECK_CONTAINS(last_msg, "halt_signal");
  instance_record_free(r);
}

/* ---- storage -------------------------------------------------------------- */

static int warnings;
static char warned_files[8][256];
static char warned_msgs[8][512];

static void record_warning(const char *file, const char *msg) {
  if (warnings < 8) {
    snprintf(warned_files[warnings], sizeof(warned_files[0]), "%s", file);
    snprintf(warned_msgs[warnings], sizeof(warned_msgs[0]), "%s", msg);
  }
  warnings++;
}

/* The warning about file, NULL when there was none. */
static const char *warning_for(const char *file) {
  for (int i = 0; i < warnings && i < 8; i++)
    if (strcmp(warned_files[i], file) == 0)
      return warned_msgs[i];
  return NULL;
}

static void write_file(int dirfd, const char *name, const char *text) {
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  CHECK(cell_write_all(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
}

static void free_records(struct instance_record **list, size_t n) {
  for (size_t i = 0; i < n; i++)
    instance_record_free(list[i]);
  free(list);
}

static const struct instance_record *find(struct instance_record **list,
                                          size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i]->name, name) == 0)
      return list[i];
  return NULL;
}

TEST(save_and_load_all) {
  cleanup_free char *dir = xasprintf("%s/records", tmpdir);
  CHECK(mkdir(dir, 0700) == 0);
  cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(dirfd >= 0);
  if (dirfd < 0)
    return;
  cell_error *err = NULL;

  struct instance_record *a = full_record();
  struct instance_record *b = full_record();
  free(b->name);
  b->name = xstrdup("db");
  free(b->cgroup);
  b->cgroup = xstrdup("/my-parent/db");
  b->exit_code = -1;
  free(b->exit_time);
  b->exit_time = NULL;
  CHECK_STR(msg_of(instance_record_save(dirfd, a, &err), &err), "");
  CHECK_STR(msg_of(instance_record_save(dirfd, b, &err), &err), "");

  /* The record is <name>.json, private, and the temp file is gone. */
  struct stat st;
  CHECK(fstatat(dirfd, "web-1.json", &st, 0) == 0 && S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(fstatat(dirfd, "db.json", &st, 0) == 0);
  CHECK(fstatat(dirfd, ".web-1.json.tmp", &st, 0) < 0 && errno == ENOENT);
  CHECK(fstatat(dirfd, ".db.json.tmp", &st, 0) < 0 && errno == ENOENT);

  /* Saving again replaces the record. */
  free(a->state);
  a->state = xstrdup("running");
  a->restarts = 0;
  CHECK_STR(msg_of(instance_record_save(dirfd, a, &err), &err), "");

  /* Files load_all must skip silently or report and skip. */
  write_file(dirfd, "broken.json", "{\"name\": \"broken\", ");
  write_file(dirfd, "bad.json", "{\"name\": \"bad\"}");
  write_file(dirfd, "empty.json", "");
  write_file(dirfd, "notes.txt", "not a record");
  write_file(dirfd, ".hidden.json", "{");
  write_file(dirfd, ".web-1.json.tmp", "{"); /* a crash mid-save */
  write_file(dirfd, ".json", "{");
  CHECK(mkdirat(dirfd, "web-1", 0700) == 0); /* the instance's own dir */

  struct instance_record **list = NULL;
  size_t n = 0;
  warnings = 0;
  CHECK_STR(msg_of(instance_record_load_all(dirfd, &list, &n, record_warning,
                                            &err),
                   &err),
            "");
  CHECK(n == 2);
  const struct instance_record *la = find(list, n, "web-1");
  const struct instance_record *lb = find(list, n, "db");
  CHECK(la != NULL);
  CHECK(lb != NULL);
  if (la) {
    check_same(a, la);
    CHECK_STR(la->state, "running");
  }
  if (lb) {
    check_same(b, lb);
    CHECK(lb->exit_code == -1 && lb->exit_time == NULL);
  }
  /* The three broken .json files, and nothing else, were reported. */
  CHECK(warnings == 3);
  CHECK(warning_for("broken.json") != NULL);
  CHECK_CONTAINS(warning_for("bad.json"), "must be");
  CHECK(warning_for("empty.json") != NULL);
  CHECK(warning_for(".hidden.json") == NULL);
  CHECK(warning_for("notes.txt") == NULL);
  free_records(list, n);

  /* Without a warn callback the bad files are still skipped. */
  list = NULL;
  n = 0;
  CHECK(instance_record_load_all(dirfd, &list, &n, NULL, &err) == 0);
  CHECK(n == 2);
  free_records(list, n);

  /* Remove: the record goes; removing it twice is no error. */
  CHECK_STR(msg_of(instance_record_remove(dirfd, "db", &err), &err), "");
  CHECK(fstatat(dirfd, "db.json", &st, 0) < 0 && errno == ENOENT);
  CHECK_STR(msg_of(instance_record_remove(dirfd, "db", &err), &err), "");
  list = NULL;
  n = 0;
  warnings = 0;
  CHECK(instance_record_load_all(dirfd, &list, &n, record_warning, &err) == 0);
  CHECK(n == 1 && find(list, n, "web-1") != NULL);
  free_records(list, n);

  instance_record_free(a);
  instance_record_free(b);
  cell_error_free(&err);
}

TEST(load_all_empty_dir) {
  cleanup_free char *dir = xasprintf("%s/empty", tmpdir);
  CHECK(mkdir(dir, 0700) == 0);
  cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct instance_record **list = (struct instance_record **)&list;
  size_t n = 99;
  cell_error *err = NULL;
  CHECK(instance_record_load_all(dirfd, &list, &n, record_warning, &err) == 0);
  CHECK(n == 0);
  free_records(list, n);
  cell_error_free(&err);
}

/* ---- the OCI config ------------------------------------------------------- */

/* v.key1.key2...: members by dotted path; NULL when one is missing. */
static const struct json_value *at(const struct json_value *v, const char *path) {
  cleanup_free char *copy = xstrdup(path);
  char *save = NULL;
  for (char *k = strtok_r(copy, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
    v = json_object_get(v, k);
  return v;
}

static bool int_at(const struct json_value *v, const char *path, int64_t want) {
  int64_t got;
  const struct json_value *m = at(v, path);
  if (m == NULL || !json_get_int64(m, &got)) {
    fprintf(stderr, "  %s: missing or not an integer\n", path);
    return false;
  }
  if (got != want)
    fprintf(stderr, "  %s: %lld, expected %lld\n", path, (long long)got,
            (long long)want);
  return got == want;
}

static const char *str_at(const struct json_value *v, const char *path) {
  const struct json_value *m = at(v, path);
  return m && m->type == JSON_STRING ? m->u.string : NULL;
}

static struct json_value *spec_with_lxcfs(const struct instance_record *r,
                                          const char *rootfs,
                                          const char *lxcfs_dir) {
  cell_error *err = NULL;
  cleanup_free char *text = instance_spec_json(r, rootfs, lxcfs_dir, &err);
  CHECK_STR(msg_of(text ? 0 : -1, &err), "");
  if (!text)
    return NULL;
  struct json_value *spec = NULL;
  CHECK_STR(msg_of(json_parse(text, strlen(text), &spec, &err), &err), "");
  return spec;
}

static struct json_value *spec_of(const struct instance_record *r,
                                  const char *rootfs) {
  return spec_with_lxcfs(r, rootfs, NULL);
}

static void check_mapping(const struct json_value *spec, const char *key,
                          const struct instance_record *r) {
  const struct json_value *m = at(spec, key);
  CHECK(m && m->type == JSON_ARRAY && m->u.array.len == 1);
  if (!m || m->type != JSON_ARRAY || m->u.array.len != 1)
    return;
  const struct json_value *e = m->u.array.items[0];
  CHECK(int_at(e, "containerID", 0));
  CHECK(int_at(e, "hostID", r->id_start));
  CHECK(int_at(e, "size", r->id_count));
}

TEST(spec_of_an_instance) {
  struct instance_record *r = full_record();
  cleanup_json struct json_value *spec = spec_of(r, "/var/lib/cell/instances/web-1/rootfs");
  CHECK(spec != NULL);
  if (!spec) {
    instance_record_free(r);
    return;
  }
  check_mapping(spec, "linux.uidMappings", r);
  check_mapping(spec, "linux.gidMappings", r);
  CHECK_STR(str_at(spec, "hostname"), "web1.example");
  CHECK_STR(str_at(spec, "root.path"), "/var/lib/cell/instances/web-1/rootfs");
  CHECK_STR(str_at(spec, "linux.cgroupsPath"), "/my-parent/web-1");
  CHECK(str_at(spec, "ociVersion") != NULL);

  const struct json_value *args = at(spec, "process.args");
  CHECK(args && args->type == JSON_ARRAY &&
        args->u.array.len == cell_strv_len(r->init));
  for (size_t i = 0; args && args->type == JSON_ARRAY && i < args->u.array.len &&
                     r->init[i];
       i++) {
    CHECK(args->u.array.items[i]->type == JSON_STRING);
    CHECK_STR(args->u.array.items[i]->u.string, r->init[i]);
  }
  /* The init runs on a pty: the instance's console (celld's keeper). */
  const struct json_value *term = at(spec, "process.terminal");
  CHECK(term && term->type == JSON_BOOL && term->u.boolean);
  /* Its own network namespace, for its networks or loopback alone. */
  bool netns = false;
  const struct json_value *nss = at(spec, "linux.namespaces");
  for (size_t i = 0; nss && nss->type == JSON_ARRAY && i < nss->u.array.len; i++) {
    const char *t = str_at(nss->u.array.items[i], "type");
    netns |= t && strcmp(t, "network") == 0 &&
             !json_object_get(nss->u.array.items[i], "path");
  }
  CHECK(netns);

  /* Limits. */
  CHECK(int_at(spec, "linux.resources.memory.limit", 512LL << 20));
  CHECK(int_at(spec, "linux.resources.cpu.period", 100000));
  CHECK(int_at(spec, "linux.resources.cpu.quota", 150000));
  CHECK(int_at(spec, "linux.resources.pids.limit", 4096));
  /* The default device rules stay. */
  CHECK(at(spec, "linux.resources.devices") != NULL);

  /* Exactly one user namespace, the other namespaces kept. */
  const struct json_value *ns = at(spec, "linux.namespaces");
  CHECK(ns && ns->type == JSON_ARRAY);
  int users = 0, pids = 0, mounts = 0;
  for (size_t i = 0; ns && ns->type == JSON_ARRAY && i < ns->u.array.len; i++) {
    const char *t = str_at(ns->u.array.items[i], "type");
    users += t && strcmp(t, "user") == 0;
    pids += t && strcmp(t, "pid") == 0;
    mounts += t && strcmp(t, "mount") == 0;
    /* A path would join a namespace instead of making the instance's own. */
    CHECK(at(ns->u.array.items[i], "path") == NULL);
  }
  CHECK(users == 1);
  CHECK(pids == 1);
  CHECK(mounts == 1);
  instance_record_free(r);
}

TEST(an_image_users_groups_are_kept_and_given_to_its_init) {
  struct instance_record *r = full_record();
  r->init_user = xstrdup("1000:100");
  r->init_groups = xcalloc(3, sizeof(*r->init_groups));
  r->init_groups[r->n_init_groups++] = 100;
  r->init_groups[r->n_init_groups++] = 29;
  cleanup_free char *text = instance_record_to_json(r, false);
  CHECK(strstr(text, "\"init_groups\":[100,29]") != NULL);
  struct instance_record *back = from_text(text);
  CHECK(back && back->n_init_groups == 2 && back->init_groups[0] == 100 &&
        back->init_groups[1] == 29);
  instance_record_free(back);
  cleanup_json struct json_value *spec = spec_of(r, "/x/rootfs");
  CHECK(int_at(spec, "process.user.uid", 1000));
  CHECK(int_at(spec, "process.user.gid", 100));
  const struct json_value *gids = at(spec, "process.user.additionalGids");
  CHECK(gids && gids->type == JSON_ARRAY && gids->u.array.len == 2);
  int64_t g0 = 0, g1 = 0;
  CHECK(gids && gids->type == JSON_ARRAY && gids->u.array.len == 2 &&
        json_get_int64(gids->u.array.items[0], &g0) &&
        json_get_int64(gids->u.array.items[1], &g1) && g0 == 100 && g1 == 29);
  instance_record_free(r);
  /* A group id that is not one is refused, naming the field. */
  char *bad = strstr(text, "[100,29]");
  CHECK(bad != NULL);
  if (bad)
    memcpy(bad, "[100,-1]", 8);
  CHECK(from_text(text) == NULL);
  CHECK_CONTAINS(last_msg, "init_groups[1]: must be an id");
}

TEST(spec_without_limits) {
  struct instance_record *r = full_record();
  r->memory = 0;
  r->cpu_milli = 0;
  r->pids = 0;
  r->id_start = 4294901760u - 65536; /* a high range must not wrap or go negative */
  cleanup_json struct json_value *spec = spec_of(r, "/x/rootfs");
  CHECK(spec != NULL);
  if (spec) {
    CHECK(at(spec, "linux.resources") != NULL);
    CHECK(at(spec, "linux.resources.memory") == NULL);
    CHECK(at(spec, "linux.resources.cpu") == NULL);
    CHECK(at(spec, "linux.resources.pids") == NULL);
    check_mapping(spec, "linux.uidMappings", r);
    check_mapping(spec, "linux.gidMappings", r);
  }
  instance_record_free(r);
}

static const char *mount_dest(const struct json_value *mounts, size_t i) {
  return str_at(mounts->u.array.items[i], "destination");
}

TEST(spec_with_lxcfs_binds_its_files_after_the_defaults) {
  struct instance_record *r = full_record();
  cleanup_json struct json_value *plain = spec_of(r, "/x/rootfs");
  cleanup_json struct json_value *spec =
      spec_with_lxcfs(r, "/x/rootfs", "/var/lib/cell/lxcfs");
  instance_record_free(r);
  const struct json_value *pm = plain ? at(plain, "mounts") : NULL;
  const struct json_value *m = spec ? at(spec, "mounts") : NULL;
  CHECK(pm && m && pm->type == JSON_ARRAY && m->type == JSON_ARRAY);
  if (!pm || !m || pm->type != JSON_ARRAY || m->type != JSON_ARRAY)
    return;
  size_t n_plain = pm->u.array.len, n_files = 0;
  while (instance_lxcfs_files[n_files])
    n_files++;
  CHECK(n_files == 8);
  CHECK(m->u.array.len == n_plain + n_files);
  /* The defaults first and unchanged: /proc and /sys are mounted before
   * the binds over their files. */
  for (size_t i = 0; i < n_plain && i < m->u.array.len; i++)
    CHECK_STR(mount_dest(m, i), mount_dest(pm, i));
  for (size_t i = 0; i < n_files && n_plain + i < m->u.array.len; i++) {
    const struct json_value *b = m->u.array.items[n_plain + i];
    cleanup_free char *dest = xasprintf("/%s", instance_lxcfs_files[i]);
    cleanup_free char *src = xasprintf("/var/lib/cell/lxcfs/%s", instance_lxcfs_files[i]);
    CHECK_STR(str_at(b, "destination"), dest);
    CHECK_STR(str_at(b, "source"), src);
    CHECK_STR(str_at(b, "type"), "bind");
  }
  CHECK_STR(mount_dest(m, n_plain + 3), "/proc/meminfo");
  CHECK_STR(mount_dest(m, n_plain + 7), "/sys/devices/system/cpu/online");
}

/* ---- templates ------------------------------------------------------------ */

/* <tmpdir>/tpl: templates/ (the allowed directory) holding a minimal root
 * filesystem `good` (bin/sh, etc/), and outside/ beside it. */
static char *tpl_path(const char *rel) {
  return xasprintf("%s/tpl/%s", tmpdir, rel);
}

static void tpl_mkdir(const char *rel) {
  cleanup_free char *p = tpl_path(rel);
  cell_error *err = NULL;
  if (cell_mkdir_p(p, 0755, &err) < 0) {
    fprintf(stderr, "%s\n", err->msg);
    abort();
  }
}

static void tpl_file(const char *rel) {
  cleanup_free char *p = tpl_path(rel);
  cleanup_close int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
  CHECK(fd >= 0);
}

static void tpl_symlink(const char *target, const char *rel) {
  cleanup_free char *p = tpl_path(rel);
  CHECK(symlink(target, p) == 0);
}

static void make_templates(void) {
  tpl_mkdir("templates/good/bin");
  tpl_mkdir("templates/good/etc");
  tpl_file("templates/good/bin/sh");
  tpl_mkdir("outside");
}

/* Open path as a member would (the allowed directory: templates/); the
 * error message, "" when it opened; errnum in *errnum. */
static const char *open_as_member(const char *path, int *errnum) {
  cleanup_free char *allowed_dir = tpl_path("templates");
  char *allowed[] = {allowed_dir, NULL};
  cell_error *err = NULL;
  int fd = instance_template_open(path, allowed, NULL, &err);
  *errnum = err ? err->errnum : 0;
  if (fd >= 0)
    close(fd);
  return msg_of(fd, &err);
}

TEST(member_cannot_use_root_or_a_symlink_to_it_as_template) {
  make_templates();
  tpl_symlink("/", "templates/host");
  tpl_symlink("../../../../../..", "templates/up");
  tpl_symlink("good", "templates/alias");
  tpl_symlink("/", "outside/host");
  cleanup_free char *host = tpl_path("templates/host");
  cleanup_free char *below_host = tpl_path("templates/host/etc");
  cleanup_free char *up = tpl_path("templates/up");
  cleanup_free char *alias = tpl_path("templates/alias");
  cleanup_free char *dotdot = tpl_path("templates/good/../../../..");
  cleanup_free char *outside = tpl_path("outside/host");
  cleanup_free char *itself = tpl_path("templates");
  int e;
  CHECK_CONTAINS(open_as_member("/", &e), "not in a template directory");
  CHECK(e == EACCES);
  const char *through_symlinks[] = {host, below_host, up, alias};
  for (size_t i = 0; i < 4; i++) {
    CHECK_CONTAINS(open_as_member(through_symlinks[i], &e),
                   "reached through a symlink");
    CHECK(e == EACCES);
  }
  CHECK_CONTAINS(open_as_member(dotdot, &e), "`..` are not allowed");
  CHECK(e == EACCES);
  CHECK_CONTAINS(open_as_member(outside, &e), "not in a template directory");
  CHECK_CONTAINS(open_as_member(itself, &e), "not in a template directory");
  CHECK_CONTAINS(open_as_member("relative/path", &e), "must be an absolute path");
  /* A template directory that turns out to be / (a symlink to it) is no
   * template directory. */
  tpl_symlink("/", "rootlink");
  cleanup_free char *rootlink = tpl_path("rootlink");
  char *to_root[] = {rootlink, NULL};
  cell_error *lerr = NULL;
  CHECK(instance_template_open("/etc", to_root, NULL, &lerr) < 0);
  CHECK_CONTAINS(msg_of(-1, &lerr), "not in a template directory");
  cleanup_free char *via_link = xasprintf("%s/etc", rootlink);
  CHECK(instance_template_open(via_link, to_root, NULL, &lerr) < 0);
  CHECK_CONTAINS(msg_of(-1, &lerr), "not in a template directory");
  /* No template directories at all: members may use none. */
  cleanup_free char *good = tpl_path("templates/good");
  char *none[] = {NULL};
  cell_error *err = NULL;
  CHECK(instance_template_open(good, none, NULL, &err) < 0);
  CHECK_CONTAINS(msg_of(-1, &err), "only root may create");
}

TEST(member_template_in_an_allowed_directory_opens) {
  cleanup_free char *good = tpl_path("templates/good");
  cleanup_free char *allowed_dir = tpl_path("templates");
  cleanup_free char *slashed = xasprintf("%s//", allowed_dir);
  char *allowed[] = {tpl_path("nosuch"), slashed, NULL};
  cell_error *err = NULL;
  cleanup_free char *canonical = NULL;
  cleanup_close int fd = instance_template_open(good, allowed, &canonical, &err);
  CHECK_STR(msg_of(fd, &err), "");
  cleanup_free char *real = realpath(good, NULL);
  CHECK_STR(canonical, real);
  CHECK(instance_check_template(fd, good, &err) == 0);
  cell_error_free(&err);
  free(allowed[0]);
}

TEST(root_may_name_any_directory_symlinks_followed) {
  cleanup_free char *link = tpl_path("outside/to-good");
  cleanup_free char *good = tpl_path("templates/good");
  tpl_symlink(good, "outside/to-good");
  cell_error *err = NULL;
  cleanup_free char *canonical = NULL;
  cleanup_close int fd = instance_template_open(link, NULL, &canonical, &err);
  CHECK_STR(msg_of(fd, &err), "");
  cleanup_free char *real = realpath(good, NULL);
  CHECK_STR(canonical, real);
}

static const char *check_template_at(const char *rel) {
  cleanup_free char *p = tpl_path(rel);
  cell_error *err = NULL;
  cleanup_close int fd = instance_template_open(p, NULL, NULL, &err);
  if (fd < 0)
    return msg_of(fd, &err);
  return msg_of(instance_check_template(fd, p, &err), &err);
}

TEST(template_whose_etc_and_sh_link_to_the_host_is_not_a_root_filesystem) {
  /* The host has /etc and /bin/sh; the template only links to them: they
   * are looked up inside the template, where there is nothing. */
  tpl_mkdir("templates/links/bin");
  tpl_symlink("/bin/sh", "templates/links/bin/sh");
  tpl_symlink("/etc", "templates/links/etc");
  CHECK_CONTAINS(check_template_at("templates/links"), "not a root filesystem");
  /* Links that stay inside the template are followed there. */
  tpl_mkdir("templates/links/usr/bin");
  tpl_file("templates/links/usr/bin/sh");
  tpl_mkdir("templates/links/etc.real");
  cleanup_free char *etc = tpl_path("templates/links/etc");
  CHECK(unlink(etc) == 0);
  tpl_symlink("/etc.real", "templates/links/etc");
  cleanup_free char *sh = tpl_path("templates/links/bin/sh");
  CHECK(unlink(sh) == 0);
  tpl_symlink("../usr/bin/sh", "templates/links/bin/sh");
  CHECK_STR(check_template_at("templates/links"), "");
}

static void remove_tmpdir(void) {
  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, tmpdir, &err) < 0) {
    fprintf(stderr, "cleanup: %s\n", err->msg);
    cell_error_free(&err);
  }
}

/* A migrated instance gets a new host end but keeps its address: its
 * neighbours must find it at the MAC they know. */
TEST(a_nics_mac_follows_its_addresses_not_its_host_end) {
  struct instance_net here = {.host_veth = "cv00000001", .ipv4 = "10.5.0.2"};
  struct instance_net there = {.host_veth = "cv0000beef", .ipv4 = "10.5.0.2"};
  struct instance_net other = {.host_veth = "cv00000001", .ipv4 = "10.5.0.3"};
  struct instance_net six = {.host_veth = "cv00000001", .ipv4 = "10.5.0.2",
                             .ipv6 = "fd05::2"};
  uint8_t a[6], b[6], c[6], d[6];
  instance_net_mac(&here, a);
  instance_net_mac(&there, b);
  instance_net_mac(&other, c);
  instance_net_mac(&six, d);
  CHECK(memcmp(a, b, 6) == 0);
  CHECK(memcmp(a, c, 6) != 0);
  CHECK(memcmp(a, d, 6) != 0);
  /* Locally administered, unicast. */
  CHECK((a[0] & 0x03) == 0x02);
}

int main(void) {
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  RUN(valid_names);
  RUN(invalid_names);
  RUN(restart_round_trip);
  RUN(restart_resets_max);
  RUN(bad_restart_policies);
  RUN(record_round_trip);
  RUN(record_exit_code_and_time);
  RUN(bad_records_name_the_field);
  RUN(not_a_record);
  RUN(old_record_gets_default_cgroup);
  RUN(save_and_load_all);
  RUN(load_all_empty_dir);
  RUN(spec_of_an_instance);
  RUN(an_image_users_groups_are_kept_and_given_to_its_init);
  RUN(spec_without_limits);
  RUN(spec_with_lxcfs_binds_its_files_after_the_defaults);
  RUN(member_cannot_use_root_or_a_symlink_to_it_as_template);
  RUN(member_template_in_an_allowed_directory_opens);
  RUN(root_may_name_any_directory_symlinks_followed);
  RUN(template_whose_etc_and_sh_link_to_the_host_is_not_a_root_filesystem);
  RUN(a_nics_mac_follows_its_addresses_not_its_host_end);
  remove_tmpdir();
  UNIT_DONE();
}
