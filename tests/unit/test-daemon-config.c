/* celld.conf (lib/daemon/daemon-config.c): the defaults, every key, and
 * errors that point at the file, the line and the key. */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/daemon-config.h"
#include "unit.h"

static char tmpdir[] = "/tmp/cell-test-daemon-config-XXXXXX";
static int file_seq;

/* A new config file holding text; the caller frees the path. */
static char *conf_file(const char *text) {
  char *path = xasprintf("%s/celld-%d.conf", tmpdir, ++file_seq);
  cell_error *err = NULL;
  if (cell_write_file_atomic_at(AT_FDCWD, path, text, strlen(text), 0600,
                                &err) < 0) {
    fprintf(stderr, "write %s: %s\n", path, err->msg);
    abort();
  }
  return path;
}

/* Load text over the defaults into *c; the error message, "" on success.
 * The message is kept in a static buffer; *path_out gets the file's path
 * when asked for. */
static char last_msg[2048];
static const char *load(const char *text, struct daemon_config *c,
                        char **path_out) {
  char *path = conf_file(text);
  cell_error *err = NULL;
  daemon_config_defaults(c);
  last_msg[0] = '\0';
  if (daemon_config_load(c, path, &err) < 0)
    snprintf(last_msg, sizeof(last_msg), "%s",
             err ? err->msg : "(failed without an error)");
  cell_error_free(&err);
  if (path_out)
    *path_out = path;
  else
    free(path);
  return last_msg;
}

/* Load text, expect a failure whose message is exactly
 * "<file>: <want>", and leave nothing allocated. */
static void fails_with_at(int caller, const char *text, const char *want) {
  struct daemon_config c;
  cleanup_free char *path = NULL;
  const char *m = load(text, &c, &path);
  cleanup_free char *full = xasprintf("%s: %s", path, want);
  int before = unit_failures;
  CHECK_STR(m, full);
  if (unit_failures != before)
    fprintf(stderr, "  (the case at line %d)\n", caller);
  daemon_config_clear(&c);
}
#define fails_with(text, want) fails_with_at(__LINE__, text, want)

static void check_defaults(const struct daemon_config *c) {
  CHECK_STR(c->state_dir, "/var/lib/cell");
  CHECK_STR(c->socket_path, "/run/cell/celld.sock");
  CHECK(c->socket_mode == 0660);
  CHECK(c->group == NULL);
  CHECK(c->pool.start == 200000);
  CHECK(c->pool.count == 65536u * 1000);
  CHECK(c->pool.size == 65536);
  CHECK(c->stop_timeout == 10);
  CHECK(!c->force_copy);
  CHECK(!c->autostart);
  CHECK_STR(c->cgroup_parent, "/cell-instances");
  CHECK(c->template_dirs == NULL);
  CHECK_STR(c->lxcfs, "auto");
}

TEST(defaults) {
  struct daemon_config c;
  daemon_config_defaults(&c);
  check_defaults(&c);
  /* The default pool is usable as it is. */
  cell_error *err = NULL;
  CHECK(idrange_pool_check(&c.pool, &err) == 0);
  cell_error_free(&err);
  daemon_config_clear(&c);
  CHECK(c.state_dir == NULL && c.socket_path == NULL && c.group == NULL &&
        c.cgroup_parent == NULL);
  /* Clearing twice is harmless (main clears on every path out). */
  daemon_config_clear(&c);
}

TEST(empty_and_comment_only_files) {
  struct daemon_config c;
  CHECK_STR(load("", &c, NULL), "");
  check_defaults(&c);
  daemon_config_clear(&c);
  CHECK_STR(load("# nothing here\n\n   \n\t# indented comment\n", &c, NULL), "");
  check_defaults(&c);
  daemon_config_clear(&c);
}

TEST(every_key) {
  struct daemon_config c;
  const char *text =
      "# celld for the tests\n"
      "\n"
      "state_dir = /srv/cell state\n"
      "socket=/run/other/celld.sock\n"
      "   socket_mode\t=\t0600   # owner only\n"
      "group = wheel\n"
      "\n"
      "pool_start = 1000000\n"
      "pool_count = 1310720   \n"
      "range_size = 131072\n"
      "stop_timeout = 3600\n"
      "idmap = copy\n"
      "cgroup_parent = /system.slice/celld-test\r\n"
      "template_dirs = /srv/templates:/var/lib/cell tmpl\n"
      "lxcfs = /opt/lxcfs/bin/lxcfs\n"
      "# trailing comment without newline";
  CHECK_STR(load(text, &c, NULL), "");
  CHECK_STR(c.state_dir, "/srv/cell state");
  CHECK_STR(c.socket_path, "/run/other/celld.sock");
  CHECK(c.socket_mode == 0600);
  CHECK_STR(c.group, "wheel");
  CHECK(c.pool.start == 1000000);
  CHECK(c.pool.count == 1310720);
  CHECK(c.pool.size == 131072);
  CHECK(c.stop_timeout == 3600);
  CHECK(c.force_copy);
  CHECK(!c.autostart); /* a command-line flag, never from the file */
  CHECK_STR(c.cgroup_parent, "/system.slice/celld-test");
  CHECK_STR(c.template_dirs, "/srv/templates:/var/lib/cell tmpl");
  CHECK_STR(c.lxcfs, "/opt/lxcfs/bin/lxcfs");
  daemon_config_clear(&c);
}

TEST(dns_global_and_per_network) {
  struct daemon_config c;
  CHECK_STR(load("dns = 10.0.0.1,fd00::53\n"
                 "network.lan.bridge = lan0\n"
                 "network.lan.subnet4 = 192.168.7.0/24\n"
                 "network.lan.dns = 192.168.7.1\n",
                 &c, NULL),
            "");
  CHECK_STR(c.dns, "10.0.0.1,fd00::53");
  CHECK_STR(daemon_config_dns(&c, NULL), "10.0.0.1,fd00::53");
  /* The default network's dnsmasq serves its instances, and asks the
   * global servers what it does not know. */
  CHECK_STR(daemon_config_dns(&c, daemon_config_network(&c, "default")),
            "10.210.0.1,fd00:ce11::1");
  CHECK_STR(daemon_config_dns_upstream(&c, daemon_config_network(&c, "default")),
            "10.0.0.1,fd00::53");
  CHECK_STR(daemon_config_dns(&c, daemon_config_network(&c, "lan")),
            "192.168.7.1");
  daemon_config_clear(&c);
  CHECK_STR(load("dns = 10.0.0.1\ndns = none\n", &c, NULL), "");
  CHECK(daemon_config_dns(&c, NULL) == NULL);
  daemon_config_clear(&c);
}

TEST(later_lines_win) {
  struct daemon_config c;
  CHECK_STR(load("group = wheel\nidmap = copy\ngroup =\nidmap = auto\n"
                 "state_dir = /a\nstate_dir = /b\n",
                 &c, NULL),
            "");
  CHECK(c.group == NULL); /* empty: root only */
  CHECK(!c.force_copy);
  CHECK_STR(c.state_dir, "/b");
  daemon_config_clear(&c);
}

TEST(value_may_hold_equals) {
  struct daemon_config c;
  CHECK_STR(load("state_dir = /srv/a=b\n", &c, NULL), "");
  CHECK_STR(c.state_dir, "/srv/a=b");
  daemon_config_clear(&c);
}

TEST(edge_values_accepted) {
  struct daemon_config c;
  CHECK_STR(load("socket_mode = 0\nstop_timeout = 1\npool_start = 65536\n"
                 "pool_count = 65536\ncgroup_parent = /c\n",
                 &c, NULL),
            "");
  CHECK(c.socket_mode == 0);
  CHECK(c.stop_timeout == 1);
  CHECK(c.pool.start == 65536);
  CHECK(c.pool.count == 65536);
  CHECK_STR(c.cgroup_parent, "/c");
  daemon_config_clear(&c);
  CHECK_STR(load("socket_mode = 777\n", &c, NULL), "");
  CHECK(c.socket_mode == 0777); /* octal without the leading 0 */
  daemon_config_clear(&c);
}

TEST(shipped_config_is_the_defaults) {
  /* config/celld.conf documents the defaults: loading it must change
   * nothing. */
  const char *slash = strrchr(__FILE__, '/');
  int dirlen = slash ? (int)(slash - __FILE__) : 1;
  cleanup_free char *path = xasprintf("%.*s/../../config/celld.conf", dirlen,
                                      slash ? __FILE__ : ".");
  struct daemon_config c;
  daemon_config_defaults(&c);
  cell_error *err = NULL;
  CHECK(daemon_config_load(&c, path, &err) == 0);
  if (err)
    fprintf(stderr, "  %s\n", err->msg);
  cell_error_free(&err);
  check_defaults(&c);
  daemon_config_clear(&c);
}

TEST(unknown_key) {
  fails_with("# a comment\nsocket_mode = 0660\ncolour = blue\n",
             "line 3: unknown key `colour`");
  fails_with("Socket_Mode = 0660\n", "line 1: unknown key `Socket_Mode`");
  fails_with("= 5\n", "line 1: unknown key ``");
  /* No silent acceptance of keys from the command line. */
  fails_with("autostart = yes\n", "line 1: unknown key `autostart`");
}

TEST(line_without_equals) {
  fails_with("state_dir /srv\n", "line 1: expected `key = value`");
}

TEST(line_numbers_count_blank_lines) {
  /* The number must be the one an editor shows, blank lines included. */
  fails_with("\n\nsocket_mode = 0660\n\n\ncolour = blue\n",
             "line 6: unknown key `colour`");
  fails_with("# one\n\n# three\n\nstop_timeout = 0\n",
             "line 5: stop_timeout: bad value `0`");
}

TEST(bad_values) {
  struct {
    const char *line, *key, *value;
  } cases[] = {
      {"socket_mode = 999", "socket_mode", "999"},
      {"socket_mode = 1000", "socket_mode", "1000"},
      {"socket_mode = 0o660", "socket_mode", "0o660"},
      {"socket_mode = rw", "socket_mode", "rw"},
      {"socket_mode =", "socket_mode", ""},
      {"socket_mode = -1", "socket_mode", "-1"},
      {"pool_start = 65535", "pool_start", "65535"},
      {"pool_start = 0", "pool_start", "0"},
      {"pool_start = -200000", "pool_start", "-200000"},
      {"pool_start = 4294967296", "pool_start", "4294967296"},
      {"pool_start = 200k", "pool_start", "200k"},
      {"pool_count = 0", "pool_count", "0"},
      {"range_size = 0", "range_size", "0"},
      {"range_size =", "range_size", ""},
      {"stop_timeout = 0", "stop_timeout", "0"},
      {"stop_timeout = -3", "stop_timeout", "-3"},
      {"stop_timeout = 3601", "stop_timeout", "3601"},
      {"stop_timeout = 10s", "stop_timeout", "10s"},
      {"idmap = maybe", "idmap", "maybe"},
      {"idmap = Copy", "idmap", "Copy"},
      {"idmap =", "idmap", ""},
      {"cgroup_parent = cell-instances", "cgroup_parent", "cell-instances"},
      {"cgroup_parent = /a/../b", "cgroup_parent", "/a/../b"},
      {"cgroup_parent = /..", "cgroup_parent", "/.."},
      {"cgroup_parent = /a/./b", "cgroup_parent", "/a/./b"},
      {"cgroup_parent = /cell-instances/", "cgroup_parent", "/cell-instances/"},
      {"cgroup_parent = /", "cgroup_parent", "/"},
      {"lxcfs = yes", "lxcfs", "yes"},
      {"lxcfs = lxcfs", "lxcfs", "lxcfs"},
      {"lxcfs = /usr/bin/../bin/lxcfs", "lxcfs", "/usr/bin/../bin/lxcfs"},
      {"lxcfs =", "lxcfs", ""},
      {"cgroup_parent = /a//b", "cgroup_parent", "/a//b"},
      {"cgroup_parent =", "cgroup_parent", ""},
      /* `/` would hand members the whole host; relative, dotted or empty
       * entries would mean something else than they seem. */
      {"template_dirs = /", "template_dirs", "/"},
      {"template_dirs = /srv:/", "template_dirs", "/srv:/"},
      {"template_dirs = templates", "template_dirs", "templates"},
      {"template_dirs = /srv/../etc", "template_dirs", "/srv/../etc"},
      {"template_dirs = /srv/./t", "template_dirs", "/srv/./t"},
      {"template_dirs = /srv//t", "template_dirs", "/srv//t"},
      {"template_dirs = /srv/t/", "template_dirs", "/srv/t/"},
      {"template_dirs = /a::/b", "template_dirs", "/a::/b"},
      {"template_dirs = :/a", "template_dirs", ":/a"},
      {"template_dirs = /a:", "template_dirs", "/a:"},
      /* Name servers: addresses only, at most the 3 the resolver reads. */
      {"dns = resolver.example", "dns", "resolver.example"},
      {"dns = 10.0.0.1,", "dns", "10.0.0.1,"},
      {"dns = 10.0.0.1,,10.0.0.2", "dns", "10.0.0.1,,10.0.0.2"},
      {"dns = 10.0.0.1, 10.0.0.2", "dns", "10.0.0.1, 10.0.0.2"},
      {"dns = 1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4", "dns", "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4"},
      {"network.default.dns = 10.0.0.300", "network.default.dns", "10.0.0.300"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    /* On line 2, after a valid line, so the number is checked too. */
    cleanup_free char *text = xasprintf("stop_timeout = 5\n%s\n", cases[i].line);
    cleanup_free char *want =
        xasprintf("line 2: %s: bad value `%s`", cases[i].key, cases[i].value);
    fails_with(text, want);
  }
}

TEST(pool_check_failure) {
  /* Each value is fine alone; the pool they make is not. */
  fails_with("pool_start = 4294000000\npool_count = 6553600\n",
             "id pool: 4294000000 + 6553600 passes the largest id");
  fails_with("pool_count = 65536\nrange_size = 131072\n",
             "id pool: count 65536 holds no range of 131072 ids");
}

TEST(missing_file) {
  cleanup_free char *path = xasprintf("%s/no-such.conf", tmpdir);
  struct daemon_config c;
  daemon_config_defaults(&c);
  cell_error *err = NULL;
  CHECK(daemon_config_load(&c, path, &err) < 0);
  CHECK(err != NULL);
  if (err) {
    CHECK(err->errnum == ENOENT);
    CHECK_CONTAINS(err->msg, "config");
    CHECK_CONTAINS(err->msg, path);
  }
  cell_error_free(&err);
  check_defaults(&c);
  daemon_config_clear(&c);
}

TEST(template_dirs_default_follows_the_state_dir) {
  struct daemon_config c;
  daemon_config_defaults(&c);
  free(c.state_dir);
  c.state_dir = xstrdup("/srv/state"); /* as --state-dir does, after loading */
  cleanup_strv char **dirs = daemon_config_template_dirs(&c);
  CHECK(cell_strv_len(dirs) == 1);
  CHECK_STR(dirs[0], "/srv/state/templates");
  daemon_config_clear(&c);
}

TEST(template_dirs_listed_or_none) {
  struct daemon_config c;
  CHECK_STR(load("template_dirs = /srv/t:/data/more t\n", &c, NULL), "");
  cleanup_strv char **dirs = daemon_config_template_dirs(&c);
  CHECK(cell_strv_len(dirs) == 2);
  CHECK_STR(dirs[0], "/srv/t");
  CHECK_STR(dirs[1], "/data/more t");
  daemon_config_clear(&c);
  /* Empty: none at all, which is not the default (members use nothing). */
  CHECK_STR(load("template_dirs =\n", &c, NULL), "");
  cleanup_strv char **none = daemon_config_template_dirs(&c);
  CHECK(none != NULL && none[0] == NULL);
  daemon_config_clear(&c);
}

static void remove_tmpdir(void) {
  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, tmpdir, &err) < 0) {
    fprintf(stderr, "cleanup: %s\n", err->msg);
    cell_error_free(&err);
  }
}

TEST(default_network) {
  struct daemon_config c;
  daemon_config_defaults(&c);
  const struct daemon_network *n = daemon_config_network(&c, "default");
  CHECK(n != NULL);
  CHECK_STR(n->bridge, "cell0");
  CHECK(n->has4 && n->has6);
  char buf[64];
  CHECK_STR(net_subnet_to_string(&n->subnet4, buf, sizeof(buf)), "10.210.0.0/16");
  CHECK_STR(net_subnet_to_string(&n->subnet6, buf, sizeof(buf)), "fd00:ce11::/64");
  CHECK(daemon_config_network(&c, "nosuch") == NULL);
  daemon_config_clear(&c);
}

TEST(networks_defined_and_changed) {
  struct daemon_config c;
  const char *m = load("network.default.subnet6 = none\n"
                       "network.default.subnet4 = 10.77.0.0/16\n"
                       "network.be.bridge = cellbe0\n"
                       "network.be.subnet4 = 10.78.0.0/24\n"
                       "network.be.subnet6 = fd00:78::/64\n"
                       "network.be.mtu = 9000\n"
                       "network.be.keep_bridge = yes\n",
                       &c, NULL);
  CHECK_STR(m, "");
  CHECK(c.n_networks == 2);
  const struct daemon_network *d = daemon_config_network(&c, "default");
  const struct daemon_network *b = daemon_config_network(&c, "be");
  char buf[64];
  CHECK(d && d->has4 && !d->has6);
  CHECK_STR(net_subnet_to_string(&d->subnet4, buf, sizeof(buf)), "10.77.0.0/16");
  CHECK(b && b->has4 && b->has6 && b->mtu == 9000 && b->keep_bridge);
  CHECK_STR(b->bridge, "cellbe0");
  CHECK(!d->keep_bridge && d->mtu == 0);
  daemon_config_clear(&c);
}

TEST(dnsmasq_of_a_network) {
  struct daemon_config c;
  CHECK_STR(load("dns = 10.0.0.1\n"
                 "network.lan.bridge = lan0\n"
                 "network.lan.subnet4 = 192.168.7.0/24\n"
                 "network.lan.domain = lan.example\n"
                 "network.lan.dns_upstream = 9.9.9.9,2620:fe::fe\n"
                 "network.off.bridge = off0\n"
                 "network.off.subnet6 = fd07::/64\n"
                 "network.off.dnsmasq = no\n",
                 &c, NULL),
            "");
  const struct daemon_network *lan = daemon_config_network(&c, "lan");
  const struct daemon_network *off = daemon_config_network(&c, "off");
  CHECK(lan->dnsmasq);
  CHECK(!off->dnsmasq);
  /* The bridge's address; the domain to search; its own upstream. */
  CHECK_STR(daemon_config_dns(&c, lan), "192.168.7.1");
  CHECK_STR(daemon_config_dns_search(&c, lan), "lan.example");
  CHECK_STR(daemon_config_dns_upstream(&c, lan), "9.9.9.9,2620:fe::fe");
  /* Without dnsmasq: as before, the global servers and no domain. */
  CHECK_STR(daemon_config_dns(&c, off), "10.0.0.1");
  CHECK(daemon_config_dns_search(&c, off) == NULL);
  daemon_config_clear(&c);
}

TEST(bad_networks) {
  fails_with("network.x.dnsmasq = on\n",
             "line 1: network.x.dnsmasq: bad value `on`");
  fails_with("network.x.domain = a..b\n",
             "line 1: network.x.domain: bad value `a..b`");
  fails_with("network.x.domain = -a.b\n",
             "line 1: network.x.domain: bad value `-a.b`");
  /* Nothing that dnsmasq's command line would take for more. */
  fails_with("network.x.domain = a/b\n",
             "line 1: network.x.domain: bad value `a/b`");
  fails_with("network.x.dns_upstream = 10.0.0.300\n",
             "line 1: network.x.dns_upstream: bad value `10.0.0.300`");
  fails_with("network.x.dns_upstream = 1.1.1.1,--port=0\n",
             "line 1: network.x.dns_upstream: bad value `1.1.1.1,--port=0`");
  /* Per line: a bad value or key names the line. */
  fails_with("network.x.bridge = averyveryverylongname\n",
             "line 1: network.x.bridge: bad value `averyveryverylongname`");
  fails_with("network.x.subnet4 = 10.1.0.1/24\n",
             "line 1: network.x.subnet4: bad value `10.1.0.1/24`");
  fails_with("network.x.subnet4 = fd00::/64\n",
             "line 1: network.x.subnet4: bad value `fd00::/64`");
  fails_with("network.x.subnet4 = 10.1.0.0/31\n",
             "line 1: network.x.subnet4: bad value `10.1.0.0/31`");
  fails_with("network.x.mtu = 10\n", "line 1: network.x.mtu: bad value `10`");
  fails_with("network.x.keep_bridge = maybe\n",
             "line 1: network.x.keep_bridge: bad value `maybe`");
  fails_with("network.x.colour = red\n", "line 1: unknown key `network.x.colour`");
  fails_with("network.a:b.bridge = br\n", "line 1: unknown key `network.a:b.bridge`");
  /* The whole: complete, distinct bridges, no overlap. */
  fails_with("network.x.bridge = brx\n",
             "network `x`: no subnet (network.x.subnet4 or .subnet6)");
  fails_with("network.x.subnet4 = 10.1.0.0/24\n",
             "network `x`: no bridge (network.x.bridge)");
  fails_with("network.x.bridge = cell0\nnetwork.x.subnet4 = 10.1.0.0/24\n",
             "networks `default` and `x`: the same bridge `cell0`");
  struct daemon_config c;
  const char *m = load("network.x.bridge = brx\nnetwork.x.subnet4 = 10.210.4.0/24\n",
                       &c, NULL);
  CHECK(strstr(m, "overlaps") != NULL);
  CHECK(strstr(m, "`x`") != NULL && strstr(m, "`default`") != NULL);
  daemon_config_clear(&c);
}

/* The key a line of celld.conf shows, set (`key = value`) or commented
 * out (`# key = value`); NULL when the line shows none (prose). */
static char *shown_key(const char *line) {
  line += strspn(line, " \t");
  if (*line == '#')
    line += 1 + strspn(line + 1, " \t");
  size_t len = strcspn(line, " \t=\n");
  const char *after = line + len + strspn(line + len, " \t");
  return len > 0 && *after == '=' ? xstrndup(line, len) : NULL;
}

/* Whether shown is key; for a key of a table (family "network." or
 * "pool."), FAMILY.NAME.key, any NAME. */
static bool is_key(const char *shown, const char *key, const char *family) {
  if (!family)
    return strcmp(shown, key) == 0;
  size_t prefix = strlen(family), len = strlen(shown), klen = strlen(key);
  return strncmp(shown, family, prefix) == 0 && len > prefix + klen + 1 &&
         shown[len - klen - 1] == '.' && strcmp(shown + len - klen, key) == 0;
}

/* The keys the lines of text show; NULL when none. */
static char **shown_keys(const char *text) {
  char **keys = NULL;
  for (const char *line = text; line; line = strchr(line, '\n')) {
    line += *line == '\n';
    cleanup_free char *key = shown_key(line);
    if (key)
      cell_strv_push(&keys, key);
  }
  return keys;
}

static void check_documented(char *const *shown, const char *key,
                             const char *family) {
  bool found = false;
  for (size_t i = 0; shown && shown[i] && !found; i++)
    found = is_key(shown[i], key, family);
  CHECK(found);
  if (!found)
    fprintf(stderr, "  config/celld.conf: no `%s%s%s =` nor `# %s%s%s =` line\n",
            family ? family : "", family ? "NAME." : "", key,
            family ? family : "", family ? "NAME." : "", key);
}

TEST(every_key_documented) {
  /* make unit runs from the top of the tree. */
  cleanup_free char *text = NULL;
  size_t len = 0;
  cell_error *err = NULL;
  if (cell_read_file_at(AT_FDCWD, "config/celld.conf", 1 << 20, &text, &len,
                        &err) < 0) {
    fprintf(stderr, "  %s\n", err->msg);
    cell_error_free(&err);
    CHECK(!"config/celld.conf is readable");
    return;
  }
  cleanup_strv char **shown = shown_keys(text);
  size_t n = 0, n_network = 0, n_pool = 0;
  for (const char *key; (key = daemon_config_key(n)); n++)
    check_documented(shown, key, NULL);
  for (const char *key; (key = daemon_config_network_key(n_network));
       n_network++)
    check_documented(shown, key, "network.");
  for (const char *key; (key = daemon_config_pool_key(n_pool)); n_pool++)
    check_documented(shown, key, "pool.");
  CHECK(n > 0 && n_network > 0 && n_pool > 0);
}

TEST(pools_defined) {
  struct daemon_config c;
  CHECK_STR(load("state_dir = /var/lib/x\n"
                 "pool.fast.path = /srv/fast\n"
                 "pool.big.disk.path = /mnt/big\n",
                 &c, NULL),
            "");
  CHECK(c.n_pools == 2);
  CHECK_STR(daemon_config_pool_path(&c, "default"), "/var/lib/x");
  CHECK_STR(daemon_config_pool_path(&c, "fast"), "/srv/fast");
  CHECK_STR(daemon_config_pool_path(&c, "big.disk"), "/mnt/big");
  CHECK(daemon_config_pool_path(&c, "nosuch") == NULL);
  daemon_config_clear(&c);
}

TEST(bad_pools) {
  struct daemon_config c;
  /* `default` is the state directory; paths are plain absolute ones. */
  CHECK(strstr(load("pool.default.path = /srv/x\n", &c, NULL), "bad value"));
  daemon_config_clear(&c);
  CHECK(strstr(load("pool.a.path = srv/x\n", &c, NULL), "bad value"));
  daemon_config_clear(&c);
  CHECK(strstr(load("pool.a.path = /srv/../x\n", &c, NULL), "bad value"));
  daemon_config_clear(&c);
  CHECK(strstr(load("pool.a.path = /srv/a,b\n", &c, NULL), "bad value"));
  daemon_config_clear(&c);
  CHECK(strstr(load("pool.a.size = 1\n", &c, NULL), "unknown key"));
  daemon_config_clear(&c);
}

TEST(metrics_listen_ipv4_ipv6_and_off) {
  struct daemon_config c;
  CHECK_STR(load("", &c, NULL), "");
  CHECK(!c.metrics_listen.on); /* off unless asked for */
  daemon_config_clear(&c);

  CHECK_STR(load("metrics_listen = 127.0.0.1:9477\n", &c, NULL), "");
  const struct sockaddr_in *a4 = (const void *)&c.metrics_listen.addr;
  CHECK(c.metrics_listen.on && a4->sin_family == AF_INET);
  CHECK(ntohs(a4->sin_port) == 9477 && ntohl(a4->sin_addr.s_addr) == 0x7f000001);
  CHECK(c.metrics_listen.len == sizeof(*a4));
  CHECK_STR(c.metrics_listen.text, "127.0.0.1:9477");
  daemon_config_clear(&c);

  CHECK_STR(load("metrics_listen = [::1]:65535\n", &c, NULL), "");
  const struct sockaddr_in6 *a6 = (const void *)&c.metrics_listen.addr;
  CHECK(c.metrics_listen.on && a6->sin6_family == AF_INET6);
  CHECK(ntohs(a6->sin6_port) == 65535 && IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr));
  daemon_config_clear(&c);

  /* A later `off` turns it off again. */
  CHECK_STR(load("metrics_listen = 0.0.0.0:1\nmetrics_listen = off\n", &c, NULL), "");
  CHECK(!c.metrics_listen.on);
  daemon_config_clear(&c);
}

TEST(bad_metrics_listen_says_what_is_expected) {
  const char *bad[] = {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                       "localhost:9477", "::1:9477", "[::1]", "[127.0.0.1]:80",
                       "1.2.3.4:80x", ":9477", "on"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    cleanup_free char *text = xasprintf("metrics_listen = %s\n", bad[i]);
    cleanup_free char *want = xasprintf(
        "line 1: metrics_listen: bad value `%s`: expected ADDRESS:PORT, "
        "[IPV6]:PORT or off, as 127.0.0.1:9477", bad[i]);
    fails_with(text, want);
  }
}

TEST(metrics_token_file_absolute_or_none) {
  struct daemon_config c;
  CHECK_STR(load("", &c, NULL), "");
  CHECK(c.metrics_token_file == NULL); /* no token unless asked for */
  daemon_config_clear(&c);
  CHECK_STR(load("metrics_token_file = /etc/cell/metrics.token\n", &c, NULL), "");
  CHECK_STR(c.metrics_token_file, "/etc/cell/metrics.token");
  daemon_config_clear(&c);
  CHECK_STR(load("metrics_token_file = /x\nmetrics_token_file = none\n", &c, NULL),
            "");
  CHECK(c.metrics_token_file == NULL);
  daemon_config_clear(&c);
  fails_with("metrics_token_file = metrics.token\n",
             "line 1: metrics_token_file: bad value `metrics.token`: expected "
             "an absolute path, or none");
}

int main(void) {
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  RUN(defaults);
  RUN(empty_and_comment_only_files);
  RUN(every_key);
  RUN(dns_global_and_per_network);
  RUN(later_lines_win);
  RUN(value_may_hold_equals);
  RUN(edge_values_accepted);
  RUN(shipped_config_is_the_defaults);
  RUN(unknown_key);
  RUN(line_without_equals);
  RUN(line_numbers_count_blank_lines);
  RUN(bad_values);
  RUN(pool_check_failure);
  RUN(missing_file);
  RUN(default_network);
  RUN(networks_defined_and_changed);
  RUN(dnsmasq_of_a_network);
  RUN(bad_networks);
  RUN(template_dirs_default_follows_the_state_dir);
  RUN(template_dirs_listed_or_none);
  RUN(every_key_documented);
  RUN(pools_defined);
  RUN(bad_pools);
  RUN(metrics_listen_ipv4_ipv6_and_off);
  RUN(metrics_token_file_absolute_or_none);
  RUN(bad_metrics_listen_says_what_is_expected);
  remove_tmpdir();
  UNIT_DONE();
}
