/* The table of an instance's settings (lib/daemon/instance-settings.c) and
 * profiles (lib/daemon/profile.c): values checked and kept, read back as
 * set takes them, families added and removed, profiles under the keys an
 * instance sets itself. */
#include "daemon/instance-settings.h"
#include "daemon/profile.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "unit.h"

static struct instance_record *record(void) {
  struct instance_record *r = xcalloc(1, sizeof(*r));
  r->hostname = xstrdup("web1");
  cell_strv_push(&r->init, "/sbin/init");
  r->id_start = 100000;
  r->id_count = 65536;
  return r;
}

/* get after a set: the value as set would take it again. */
static void check_round_trip(const char *key, const char *value,
                             const char *expected) {
  struct instance_record *r = record();
  cell_error *err = NULL;
  CHECK(setting_put(r, key, value, &err) == 0);
  if (err)
    fprintf(stderr, "%s=%s: %s\n", key, value, err->msg);
  cell_error_free(&err);
  char *got = setting_get(r, key);
  CHECK_STR(got, expected);
  free(got);
  instance_record_free(r);
}

TEST(every_key_reads_back_what_was_set) {
  check_round_trip("restart", "on-failure:3", "on-failure:3");
  check_round_trip("autostart", "yes", "true");
  check_round_trip("autostart.priority", "50", "50");
  check_round_trip("autostart.delay", "5", "5");
  check_round_trip("hostname", "web-2.example", "web-2.example");
  check_round_trip("init", "/bin/sh -c 'sleep 1'", "/bin/sh -c 'sleep 1'");
  check_round_trip("halt_signal", "PWR", "SIGPWR");
  check_round_trip("memory", "64M", "67108864");
  check_round_trip("swap", "1G", "1073741824");
  check_round_trip("cpus", "1.5", "1.5");
  check_round_trip("cpuset", "0-1,3", "0-1,3");
  check_round_trip("pids", "100", "100");
  check_round_trip("disk", "10G", "10737418240");
  check_round_trip("blkio.weight", "500", "500");
  check_round_trip("blkio.read_bps.8:0", "1M", "1048576");
  check_round_trip("blkio.write_iops.254:0", "100", "100");
  check_round_trip("env.GREETING", "hello world", "hello world");
  check_round_trip("mount.data", "/srv/x:/data:ro", "/srv/x:/data:ro");
  check_round_trip("device.tun", "/dev/net/tun", "/dev/net/tun");
}

/* A bad value is one line naming the key and the form; r is unchanged. */
static void check_refused(const char *key, const char *value,
                          const char *says) {
  struct instance_record *r = record();
  cell_error *err = NULL;
  CHECK(setting_put(r, key, value, &err) < 0);
  CHECK(err != NULL);
  if (err) {
    CHECK_CONTAINS(err->msg, says);
    CHECK(strchr(err->msg, '\n') == NULL);
  }
  cell_error_free(&err);
  CHECK(r->settings == NULL);
  CHECK_STR(r->hostname, "web1");
  instance_record_free(r);
}

TEST(bad_values_name_the_key_and_the_form) {
  check_refused("colour", "blue", "`colour`: no such setting");
  check_refused("memory", "lots", "memory=lots: expected a size");
  check_refused("memory", "1M", "at least 4M");
  check_refused("memory", "", "memory=: expected");
  check_refused("restart", "sometimes", "no, on-failure[:N] or always");
  check_refused("hostname", "bad_name!", "a host name");
  check_refused("hostname", "-lead", "a host name");
  check_refused("init", "'unclosed", "a command line");
  check_refused("halt_signal", "SIGNOPE", "a signal");
  check_refused("cpuset", "1-0", "a CPU list");
  check_refused("cpuset", "0,", "a CPU list");
  check_refused("autostart.priority", "1001", "[0, 1000]");
  check_refused("env.1X", "v", "not a name");
  check_refused("blkio.weight", "5", "[10, 1000]");
  check_refused("blkio.read_bps.sda", "1M", "MAJOR:MINOR");
  check_refused("blkio.read_iops.8:0", "1M", "N per second");
  check_refused("env.A", "two\nlines", "env.A");
}

TEST(mounts_take_two_absolute_paths_without_dotdot) {
  check_refused("mount.d", "relative:/data", "/srv/x:/data[:ro]");
  check_refused("mount.d", "/srv/x:data", "/srv/x:/data[:ro]");
  check_refused("mount.d", "/srv/x:/", "/srv/x:/data[:ro]");
  check_refused("mount.d", "/srv/../etc:/data", "/srv/x:/data[:ro]");
  check_refused("mount.d", "/srv/x:/data/../..", "/srv/x:/data[:ro]");
  check_refused("mount.d", "/srv/x:/data:rx", "/srv/x:/data[:ro]");
  check_refused("mount.a/b", "/srv/x:/data", "not a name");
  char *src = NULL, *dst = NULL;
  bool ro = false;
  cell_error *err = NULL;
  CHECK(setting_parse_mount("/srv/a..b:/data:ro", &src, &dst, &ro, &err) == 0);
  CHECK_STR(src, "/srv/a..b");
  CHECK_STR(dst, "/data");
  CHECK(ro);
  free(src);
  free(dst);
}

TEST(devices_only_from_the_allow_list) {
  check_refused("device.d", "/dev/sda", "not on the allow list");
  check_refused("device.d", "/dev/mem", "not on the allow list");
  check_refused("device.d", "/dev/net/../sda", "not on the allow list");
  unsigned major = 0, minor = 0;
  cell_error *err = NULL;
  CHECK(setting_device_numbers("/dev/fuse", &major, &minor, &err) == 0);
  CHECK(major == 10 && minor == 229);
}

/* Two binds on one path would stack, and taking one away would leave the
 * other: a path is given once. */
TEST(a_device_path_is_given_once) {
  struct instance_record *r = record();
  cell_error *err = NULL;
  CHECK(setting_put_pair(r, "device.tun=/dev/net/tun", &err) == 0);
  CHECK(setting_put_pair(r, "device.tun=/dev/net/tun", &err) == 0);
  CHECK(setting_put_pair(r, "device.t2=/dev/net/tun", &err) < 0);
  CHECK(err && strstr(err->msg, "given already as device.tun") != NULL);
  cell_error_free(&err);
  CHECK(setting_put_pair(r, "device.fuse=/dev/fuse", &err) == 0);
  CHECK(setting_put_pair(r, "device.tun=", &err) == 0);
  CHECK(setting_put_pair(r, "device.t2=/dev/net/tun", &err) == 0);
  instance_record_free(r);
}

TEST(an_empty_family_member_removes_it) {
  struct instance_record *r = record();
  cell_error *err = NULL;
  CHECK(setting_put_pair(r, "env.A=1", &err) == 0);
  CHECK(setting_put_pair(r, "env.B=2", &err) == 0);
  CHECK(setting_put_pair(r, "env.A=3", &err) == 0);
  CHECK_STR(instance_setting(r, "env.A"), "3");
  CHECK(cell_strv_len(r->settings) == 2);
  CHECK(setting_put_pair(r, "env.A=", &err) == 0);
  CHECK(instance_setting(r, "env.A") == NULL);
  char **env = instance_settings_env(r);
  CHECK(env && cell_strv_len(env) == 1);
  if (env)
    CHECK_STR(env[0], "B=2");
  cell_strv_free(env);
  instance_record_free(r);
}

TEST(root_only_keys_are_the_host_mounts_and_devices) {
  const char *root[] = {"mount.x", "device.x"};
  const char *anyone[] = {"memory", "env.X", "hostname", "init", "restart"};
  for (size_t i = 0; i < 2; i++)
    CHECK(setting_root_only(setting_find(root[i], NULL)));
  for (size_t i = 0; i < 5; i++)
    CHECK(!setting_root_only(setting_find(anyone[i], NULL)));
  CHECK(setting_effect(setting_find("init", NULL)) == EFFECT_NEXT_START);
  CHECK(setting_effect(setting_find("memory", NULL)) == EFFECT_LIMITS);
}

TEST(a_profile_leaves_the_keys_the_instance_sets_itself) {
  struct profile p = {.name = "web"};
  cell_error *err = NULL;
  char *pairs[] = {"memory=64M", "hostname=from-profile", "env.ROLE=web", NULL};
  CHECK(profile_set(&p, pairs, &err) == 0);
  struct instance_record *r = record();
  settings_list_add(&r->own_keys, "hostname");
  CHECK(profile_apply(&p, r, &err) == 0);
  CHECK(r->memory == 64 << 20);
  CHECK_STR(r->hostname, "web1");
  CHECK_STR(instance_setting(r, "env.ROLE"), "web");
  /* A later edit replaces the key; an empty family member drops it. */
  char *edit[] = {"memory=96M", "env.ROLE=", NULL};
  CHECK(profile_set(&p, edit, &err) == 0);
  CHECK(cell_strv_len(p.settings) == 2);
  char *bad[] = {"memory=lots", NULL};
  CHECK(profile_set(&p, bad, &err) < 0);
  cell_error_free(&err);
  CHECK(cell_strv_len(p.settings) == 2);
  cell_strv_free(p.settings);
  instance_record_free(r);
}

int main(void) {
  RUN(every_key_reads_back_what_was_set);
  RUN(bad_values_name_the_key_and_the_form);
  RUN(mounts_take_two_absolute_paths_without_dotdot);
  RUN(devices_only_from_the_allow_list);
  RUN(a_device_path_is_given_once);
  RUN(an_empty_family_member_removes_it);
  RUN(root_only_keys_are_the_host_mounts_and_devices);
  RUN(a_profile_leaves_the_keys_the_instance_sets_itself);
  UNIT_DONE();
}
