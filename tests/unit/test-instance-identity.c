/* An instance's identity files (lib/daemon/instance-identity.c): their
 * text, their writing into a root without following the template's
 * symlinks, and what an init is. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/instance-identity.h"
#include "unit.h"

static char tmpdir[] = "/tmp/cell-test-identity-XXXXXX";

static struct instance_record record(const char *hostname) {
  return (struct instance_record){.hostname = (char *)hostname};
}

TEST(hostname_is_the_name_and_a_newline) {
  cleanup_free char *t = identity_hostname_text("web1");
  CHECK_STR(t, "web1\n");
}

TEST(hosts_without_an_address_puts_the_name_on_127_0_1_1) {
  struct instance_record r = record("web1");
  cleanup_free char *t = identity_hosts_text(&r);
  CHECK_CONTAINS(t, "127.0.0.1\tlocalhost\n");
  CHECK_CONTAINS(t, "::1\tlocalhost ip6-localhost ip6-loopback\n");
  CHECK_CONTAINS(t, "127.0.1.1\tweb1\n");
}

TEST(hosts_names_each_static_address_and_the_short_name) {
  struct instance_record r = record("web1.example.org");
  r.n_nets = 2;
  r.nets[0] = (struct instance_net){.ipv4 = "10.210.0.5", .ipv6 = "fd00:ce11::5"};
  r.nets[1] = (struct instance_net){.ipv4 = "192.168.7.9/24"};
  cleanup_free char *t = identity_hosts_text(&r);
  CHECK_CONTAINS(t, "10.210.0.5\tweb1.example.org web1\n");
  CHECK_CONTAINS(t, "fd00:ce11::5\tweb1.example.org web1\n");
  CHECK_CONTAINS(t, "192.168.7.9\tweb1.example.org web1\n");
  CHECK(strstr(t, "127.0.1.1") == NULL);
}

TEST(resolv_conf_one_nameserver_per_address) {
  cleanup_free char *t = identity_resolv_text("10.0.0.1,fd00::53", NULL);
  CHECK_CONTAINS(t, "nameserver 10.0.0.1\nnameserver fd00::53\n");
}

TEST(resolv_conf_of_a_network_with_dnsmasq_searches_its_domain) {
  cleanup_free char *t = identity_resolv_text("10.0.0.1,fd00::1", "cell.test");
  CHECK_CONTAINS(t, "nameserver 10.0.0.1\nnameserver fd00::1\nsearch cell.test\n");
}

TEST(resolv_conf_without_dns_names_no_server) {
  cleanup_free char *none = identity_resolv_text(NULL, NULL);
  cleanup_free char *empty = identity_resolv_text("", NULL);
  CHECK(strstr(none, "nameserver") == NULL);
  CHECK_CONTAINS(none, "dns = ADDR");
  CHECK_STR(none, empty);
}

TEST(machine_id_is_32_hex_digits_a_version_4_uuid) {
  uint8_t zeros[16] = {0}, ones[16];
  memset(ones, 0xff, sizeof(ones));
  char a[34], b[34];
  identity_machine_id_text(zeros, a);
  identity_machine_id_text(ones, b);
  CHECK_STR(a, "00000000000040008000000000000000\n");
  CHECK_STR(b, "ffffffffffff4fffbfffffffffffffff\n");
  CHECK(strspn(a, "0123456789abcdef") == 32 && a[32] == '\n');
}

TEST(halt_signals_follow_the_init) {
  CHECK(identity_halt_signal(INIT_SYSTEMD) == SIGRTMIN + 3);
  CHECK(identity_halt_signal(INIT_BUSYBOX) == SIGUSR2);
  CHECK(identity_halt_signal(INIT_SYSVINIT) == SIGPWR);
  CHECK(identity_halt_signal(INIT_OTHER) == SIGTERM);
}

/* ---- in a root ----------------------------------------------------------- */

static int mkroot(const char *name) {
  cleanup_free char *root = xasprintf("%s/%s", tmpdir, name);
  cleanup_free char *cmd =
      xasprintf("mkdir -p %s/etc %s/sbin %s/bin %s/lib/systemd %s/usr/sbin", root,
                root, root, root, root);
  CHECK(system(cmd) == 0);
  return open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static void write_at(int rootfd, const char *path, const char *text) {
  int fd = openat(rootfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  CHECK(fd >= 0);
  CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
}

static char *read_at(int rootfd, const char *path) {
  char *text = NULL;
  size_t len = 0;
  cell_error *err = NULL;
  if (cell_read_file_at(rootfd, path, 1 << 16, &text, &len, &err) < 0) {
    cell_error_free(&err);
    return xstrdup("(unreadable)");
  }
  return text;
}

TEST(init_kind_follows_links_inside_the_root) {
  int root = mkroot("inits");
  write_at(root, "lib/systemd/systemd", "\177ELF systemd");
  write_at(root, "bin/busybox", "\177ELF busybox");
  write_at(root, "usr/sbin/sysv", "\177ELF ... INIT_VERSION=sysvinit-3.06 ...");
  write_at(root, "bin/sh", "\177ELF a shell");
  CHECK(symlinkat("../lib/systemd/systemd", root, "sbin/init") == 0);
  CHECK(identity_init_kind(root, "/sbin/init") == INIT_SYSTEMD);
  CHECK(unlinkat(root, "sbin/init", 0) == 0);
  /* absolute, and through a second link */
  CHECK(symlinkat("/bin/bb", root, "sbin/init") == 0);
  CHECK(symlinkat("busybox", root, "bin/bb") == 0);
  CHECK(identity_init_kind(root, "/sbin/init") == INIT_BUSYBOX);
  CHECK(identity_init_kind(root, "/usr/sbin/sysv") == INIT_SYSVINIT);
  /* busybox as sleep is not an init */
  CHECK(symlinkat("busybox", root, "bin/sleep") == 0);
  CHECK(identity_init_kind(root, "/bin/sleep") == INIT_OTHER);
  CHECK(identity_init_kind(root, "/bin/sh") == INIT_OTHER);
  CHECK(identity_init_kind(root, "/nowhere") == INIT_OTHER);
  /* a loop ends */
  CHECK(symlinkat("loop2", root, "bin/loop1") == 0);
  CHECK(symlinkat("loop1", root, "bin/loop2") == 0);
  CHECK(identity_init_kind(root, "/bin/loop1") == INIT_OTHER);
  close(root);
}

TEST(identity_files_replace_symlinks_never_follow_them) {
  int root = mkroot("hostile");
  cleanup_free char *victim = xasprintf("%s/victim", tmpdir);
  write_at(AT_FDCWD, victim, "precious\n");
  /* The template's etc/hostname leads to a host file, its hosts to a file
   * inside it. */
  CHECK(symlinkat(victim, root, "etc/hostname") == 0);
  CHECK(symlinkat("../etc/passwd", root, "etc/hosts") == 0);
  write_at(root, "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  struct instance_record r = record("guest");
  cell_error *err = NULL;
  CHECK(identity_write(root, &r, "10.0.0.1", NULL, getuid(), &err) == 0);
  if (err)
    fprintf(stderr, "  %s\n", err->msg);
  cell_error_free(&err);
  cleanup_free char *v = read_at(AT_FDCWD, victim);
  cleanup_free char *passwd = read_at(root, "etc/passwd");
  cleanup_free char *hostname = read_at(root, "etc/hostname");
  cleanup_free char *resolv = read_at(root, "etc/resolv.conf");
  cleanup_free char *id = read_at(root, "etc/machine-id");
  CHECK_STR(v, "precious\n");
  CHECK_STR(passwd, "root:x:0:0::/root:/bin/sh\n");
  CHECK_STR(hostname, "guest\n");
  CHECK_CONTAINS(resolv, "nameserver 10.0.0.1\n");
  CHECK(strlen(id) == 33 && strspn(id, "0123456789abcdef") == 32);
  struct stat st;
  CHECK(fstatat(root, "etc/hostname", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);
  /* no temporary file left behind */
  CHECK(faccessat(root, "etc/.hostname.celld-new", F_OK, AT_SYMLINK_NOFOLLOW) < 0);
  /* a second write gives another machine-id */
  CHECK(identity_write(root, &r, NULL, NULL, getuid(), &err) == 0);
  cell_error_free(&err);
  cleanup_free char *id2 = read_at(root, "etc/machine-id");
  CHECK(strcmp(id, id2) != 0);
  close(root);
}

TEST(a_directory_in_the_way_is_an_error_not_a_follow) {
  int root = mkroot("dir-in-way");
  CHECK(mkdirat(root, "etc/hostname", 0755) == 0);
  struct instance_record r = record("guest");
  cell_error *err = NULL;
  CHECK(identity_write(root, &r, NULL, NULL, getuid(), &err) < 0);
  CHECK(err && strstr(err->msg, "/etc/hostname"));
  cell_error_free(&err);
  close(root);
}

/* "UID:GID" of an image's User, or the error's text. */
static char *image_user(int rootfd, const char *spec) {
  char *out = NULL;
  cell_error *err = NULL;
  if (identity_image_user(rootfd, spec, 65536, &out, &err) < 0) {
    out = xstrdup(err->msg);
    cell_error_free(&err);
  }
  return out;
}

TEST(an_image_user_is_looked_up_in_the_image_not_the_host) {
  int root = mkroot("users");
  write_at(root, "etc/passwd",
           "root:x:0:0:root:/root:/bin/sh\n"
           "app:x:1000:1000::/srv:/bin/sh\n"
           "odd:x:2000\n");
  write_at(root, "etc/group", "root:x:0:\nstaff:x:50:app\n");
  struct {
    const char *spec, *want;
  } cases[] = {
      {"app", "1000:1000"},
      {"1000", "1000:1000"},     /* a numeric user takes its entry's group */
      {"4242", "4242:0"},        /* none: root's group, as docker does */
      {"app:staff", "1000:50"},
      {"app:7", "1000:7"},
      {"0:0", "0:0"},
      {"ghost", "its user `ghost` is not in its /etc/passwd"},
      {"app:nogroup", "its group `nogroup` is not in its /etc/group"},
      {"odd", "2000:0"}, /* a line without a group field */
      {"70000", "outside the instance's ids (0 to 65535)"},
      {"app:", "expected USER[:GROUP]"},
      {":50", "expected USER[:GROUP]"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    cleanup_free char *got = image_user(root, cases[i].spec);
    CHECK_CONTAINS(got, cases[i].want);
  }
  /* A passwd that links to a host file is that path inside the root:
   * here, none at all; the host's file is not read. */
  cleanup_free char *host = xasprintf("%s/host-passwd", tmpdir);
  int fd = open(host, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  CHECK(fd >= 0 && write(fd, "ghost:x:7:7::/:/bin/sh\n", 23) == 23);
  close(fd);
  CHECK(unlinkat(root, "etc/passwd", 0) == 0);
  CHECK(symlinkat(host, root, "etc/passwd") == 0);
  cleanup_free char *from_host = image_user(root, "ghost");
  CHECK_CONTAINS(from_host, "its user `ghost` is not in its /etc/passwd");
  close(root);
}

int main(void) {
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  RUN(hostname_is_the_name_and_a_newline);
  RUN(hosts_without_an_address_puts_the_name_on_127_0_1_1);
  RUN(hosts_names_each_static_address_and_the_short_name);
  RUN(resolv_conf_one_nameserver_per_address);
  RUN(resolv_conf_of_a_network_with_dnsmasq_searches_its_domain);
  RUN(resolv_conf_without_dns_names_no_server);
  RUN(machine_id_is_32_hex_digits_a_version_4_uuid);
  RUN(halt_signals_follow_the_init);
  RUN(init_kind_follows_links_inside_the_root);
  RUN(identity_files_replace_symlinks_never_follow_them);
  RUN(a_directory_in_the_way_is_an_error_not_a_follow);
  RUN(an_image_user_is_looked_up_in_the_image_not_the_host);
  cleanup_free char *rm = xasprintf("rm -rf %s", tmpdir);
  if (system(rm) != 0)
    perror(rm);
  UNIT_DONE();
}
