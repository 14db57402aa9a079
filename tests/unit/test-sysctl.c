/* linux.sysctl: which keys each namespace makes safe, and writing them in
 * a child that has its own network and ipc namespaces. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/procfs.h"
#include "base/util.h"
#include "runtime/sysctl.h"
#include "unit.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum ns_set { NO_NS = 0, NET = 1, IPC = 2, NET_IPC = 3, HOST_NET_PATH = 4 };

/* Validate one key under a namespace set; the error message or "ok". */
static char *validate(const char *key, enum ns_set nss) {
  struct spec_namespace ns[2];
  size_t n = 0;
  if (nss & NET)
    ns[n++] = (struct spec_namespace){.type = SPEC_NS_NETWORK};
  if (nss & IPC)
    ns[n++] = (struct spec_namespace){.type = SPEC_NS_IPC};
  if (nss & HOST_NET_PATH)
    ns[n++] = (struct spec_namespace){.type = SPEC_NS_NETWORK,
                                      .path = "/proc/self/ns/net"};
  struct spec_kv kv = {.key = (char *)key, .value = "1"};
  struct spec_linux l = {
      .namespaces = ns, .n_namespaces = n, .sysctl = &kv, .n_sysctl = 1};
  struct spec s = {.linux_ = &l};
  cell_error *err = NULL;
  char *out =
      sysctl_validate(&s, &err) == 0 ? xstrdup("ok") : xstrdup(err->msg);
  cell_error_free(&err);
  return out;
}

static const struct {
  const char *key;
  enum ns_set ns;
  const char *expect;
} validation_table[] = {
    {"net.ipv4.ip_forward", NET, "ok"},
    {"net.core.somaxconn", NET_IPC, "ok"},
    {"net/ipv4/conf/eth0.100/forwarding", NET, "ok"},
    {"net.ipv4.ip_forward", NO_NS,
     "linux.sysctl: `net.ipv4.ip_forward` needs a network namespace"},
    {"net.ipv4.ip_forward", IPC,
     "linux.sysctl: `net.ipv4.ip_forward` needs a network namespace"},
    {"net.ipv4.ip_forward", HOST_NET_PATH,
     "linux.sysctl: `net.ipv4.ip_forward` needs a network namespace of the "
     "container's own, `/proc/self/ns/net` is the runtime's"},
    {"kernel.shmmax", IPC, "ok"},
    {"kernel.shmall", IPC, "ok"},
    {"kernel.shmmni", IPC, "ok"},
    {"kernel.shm_rmid_forced", IPC, "ok"},
    {"kernel.msgmax", IPC, "ok"},
    {"kernel.msgmnb", IPC, "ok"},
    {"kernel.msgmni", IPC, "ok"},
    {"kernel.sem", IPC, "ok"},
    {"kernel/sem", IPC, "ok"},
    {"fs.mqueue.msg_max", IPC, "ok"},
    {"fs/mqueue/queues_max", IPC, "ok"},
    {"kernel.shmmax", NET,
     "linux.sysctl: `kernel.shmmax` needs an ipc namespace"},
    {"fs.mqueue.msg_max", NO_NS,
     "linux.sysctl: `fs.mqueue.msg_max` needs an ipc namespace"},
    {"kernel.domainname", NET_IPC,
     "linux.sysctl: `kernel.domainname` cannot be set in a container"},
    {"kernel.hostname", NET_IPC,
     "linux.sysctl: `kernel.hostname` cannot be set in a container"},
    {"vm.swappiness", NET_IPC,
     "linux.sysctl: `vm.swappiness` cannot be set in a container"},
    {"kernel.shmmax.extra", NET_IPC,
     "linux.sysctl: `kernel.shmmax.extra` cannot be set in a container"},
    {"net", NET, "linux.sysctl: `net` cannot be set in a container"},
    {"fs.mqueue.", IPC, "linux.sysctl: `fs.mqueue.` is not a valid key"},
    {"net..ipv4", NET, "linux.sysctl: `net..ipv4` is not a valid key"},
    {"net/../kernel/hostname", NET,
     "linux.sysctl: `net/../kernel/hostname` is not a valid key"},
    {"net/./ipv4/ip_forward", NET,
     "linux.sysctl: `net/./ipv4/ip_forward` is not a valid key"},
    {"/net/ipv4/ip_forward", NET,
     "linux.sysctl: `/net/ipv4/ip_forward` is not a valid key"},
    {"", NET, "linux.sysctl: `` is not a valid key"},
};

TEST(validation_table) {
  for (size_t i = 0; i < N(validation_table); i++) {
    char *got = validate(validation_table[i].key, validation_table[i].ns);
    CHECK_STR(got, validation_table[i].expect);
    free(got);
  }
}

TEST(nothing_to_validate) {
  struct spec s = {0};
  cell_error *err = NULL;
  CHECK(sysctl_validate(&s, &err) == 0);
  CHECK(sysctl_apply(&s, -1, &err) == 0);
  struct spec_linux l = {0};
  s.linux_ = &l;
  CHECK(sysctl_validate(&s, &err) == 0);
  CHECK(sysctl_apply(&s, -1, &err) == 0);
  CHECK(err == NULL);
}

/* The first error is reported as "ERR: msg"; else each key's value. */
static void child_apply(struct spec_kv *kv, size_t n,
                        const char *const *readback, int fd) {
  struct spec_linux l = {.sysctl = kv, .n_sysctl = n};
  struct spec s = {.linux_ = &l};
  cell_error *err = NULL;
  if (unshare(CLONE_NEWNET | CLONE_NEWIPC) < 0) {
    cell_write_all(fd, "ERR: unshare", 12);
    return;
  }
  cleanup_close int procfs = procfs_open_root(&err);
  if (procfs < 0 || sysctl_apply(&s, procfs, &err) < 0) {
    char *m = xasprintf("ERR: %s", err->msg);
    cell_write_all(fd, m, strlen(m));
    free(m);
    cell_error_free(&err);
    return;
  }
  for (size_t i = 0; readback && readback[i]; i++) {
    char *path = xasprintf("/proc/sys/%s", readback[i]);
    char *value = NULL;
    size_t len;
    if (cell_read_file_at(AT_FDCWD, path, 0, &value, &len, &err) == 0) {
      char *line = xasprintf("%s=%s", readback[i], value);
      cell_write_all(fd, line, strlen(line));
      free(line);
      free(value);
    }
    cell_error_free(&err);
    free(path);
  }
}

static char *apply_in_child(struct spec_kv *kv, size_t n,
                            const char *const *readback) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0)
    return xstrdup("ERR: pipe");
  fflush(stdout); /* valgrind's exit flushes stdio even after _exit */
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    child_apply(kv, n, readback, pipefd[1]);
    _exit(0);
  }
  close(pipefd[1]);
  char buf[4096];
  size_t len = 0;
  ssize_t r;
  while ((r = read(pipefd[0], buf + len, sizeof(buf) - 1 - len)) > 0)
    len += (size_t)r;
  buf[len] = '\0';
  close(pipefd[0]);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return xstrdup(buf);
}

/* Into a caller's buffer: the heap would be inherited by the children and
 * show up as theirs in valgrind. */
static void host_value(const char *key, char *buf, size_t size) {
  char *path = xasprintf("/proc/sys/%s", key);
  char *value = NULL;
  size_t len;
  cell_error *err = NULL;
  if (cell_read_file_at(AT_FDCWD, path, 0, &value, &len, &err) < 0)
    value = xstrdup("?");
  snprintf(buf, size, "%s", value);
  free(value);
  cell_error_free(&err);
  free(path);
}

TEST(apply_writes_in_the_containers_namespaces) {
  struct spec_kv kv[] = {
      {"net.ipv4.ip_forward", "1"}, {"net/ipv4/conf/lo/forwarding", "1"},
      {"kernel.shmmni", "1234"},    {"kernel.sem", "250 32000 32 200"},
      {"fs.mqueue.msg_max", "20"},
  };
  const char *const readback[] = {
      "net/ipv4/ip_forward", "net/ipv4/conf/lo/forwarding", "kernel/shmmni",
      "kernel/sem",          "fs/mqueue/msg_max",           NULL,
  };
  char host_shmmni[64], host_msg_max[64], after[64];
  host_value("kernel/shmmni", host_shmmni, sizeof(host_shmmni));
  host_value("fs/mqueue/msg_max", host_msg_max, sizeof(host_msg_max));
  char *out = apply_in_child(kv, N(kv), readback);
  CHECK_CONTAINS(out, "net/ipv4/ip_forward=1\n");
  CHECK_CONTAINS(out, "net/ipv4/conf/lo/forwarding=1\n");
  CHECK_CONTAINS(out, "kernel/shmmni=1234\n");
  CHECK_CONTAINS(out, "kernel/sem=250\t32000\t32\t200\n");
  CHECK_CONTAINS(out, "fs/mqueue/msg_max=20\n");
  free(out);
  /* The host's own values did not move. */
  host_value("kernel/shmmni", after, sizeof(after));
  CHECK_STR(after, host_shmmni);
  host_value("fs/mqueue/msg_max", after, sizeof(after));
  CHECK_STR(after, host_msg_max);
}

TEST(apply_errors_name_the_key_or_path) {
  /* A dot inside a level of the slash form stays a dot. */
  struct spec_kv vlan[] = {{"net/ipv4/conf/eth0.100/forwarding", "1"}};
  char *out = apply_in_child(vlan, 1, NULL);
  CHECK_STR(out, "ERR: linux.sysctl: open "
                 "`/proc/sys/net/ipv4/conf/eth0.100/forwarding`: No such file "
                 "or directory");
  free(out);

  struct spec_kv missing[] = {{"net.ipv4.no_such_knob", "1"}};
  out = apply_in_child(missing, 1, NULL);
  CHECK_STR(out, "ERR: linux.sysctl: open `/proc/sys/net/ipv4/no_such_knob`: "
                 "No such file or directory");
  free(out);

  struct spec_kv bad_value[] = {{"net.ipv4.ip_forward", "abc"}};
  out = apply_in_child(bad_value, 1, NULL);
  CHECK_STR(out, "ERR: linux.sysctl: set `net.ipv4.ip_forward` to `abc`: "
                 "Invalid argument");
  free(out);

  struct spec_kv escape[] = {{"net/../kernel/hostname", "evil"}};
  out = apply_in_child(escape, 1, NULL);
  CHECK_STR(out, "ERR: linux.sysctl: `net/../kernel/hostname` is not a valid "
                 "key");
  free(out);

  /* A directory is not a knob. */
  struct spec_kv dir[] = {{"net.ipv4", "1"}};
  out = apply_in_child(dir, 1, NULL);
  CHECK_CONTAINS(out, "ERR: linux.sysctl: open `/proc/sys/net/ipv4`");
  free(out);
}

int main(void) {
  RUN(validation_table);
  RUN(nothing_to_validate);
  if (geteuid() != 0) {
    printf("skip (needs root): the tests that apply sysctls\n");
    UNIT_DONE();
  }
  RUN(apply_writes_in_the_containers_namespaces);
  RUN(apply_errors_name_the_key_or_path);
  UNIT_DONE();
}
