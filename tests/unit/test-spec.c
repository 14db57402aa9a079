/* config.json parsing: every field into its struct, every error with the
 * JSON path of the culprit, and the compiled-in default configs. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/util.h"
#include "oci/spec-default.h"
#include "oci/spec.h"
#include "unit.h"

/* Test documents are written with ' for " to keep them readable. */
static char *dq(const char *s) {
  char *out = xstrdup(s);
  for (char *p = out; *p; p++)
    if (*p == '\'')
      *p = '"';
  return out;
}

static struct spec *parse_ok(const char *doc_sq) {
  cleanup_free char *doc = dq(doc_sq);
  struct spec *s = NULL;
  cleanup_error cell_error *err = NULL;
  int r = spec_parse(doc, strlen(doc), &s, &err);
  CHECK(r == 0);
  if (r < 0)
    fprintf(stderr, "  unexpected error: %s\n", err->msg);
  return s;
}

/* Parse doc and check the error message is exactly msg (NULL: the
 * document must parse). */
static void expect_error(const char *doc_sq, const char *msg) {
  if (msg == NULL) {
    spec_free(parse_ok(doc_sq));
    return;
  }
  cleanup_free char *doc = dq(doc_sq);
  struct spec *s = NULL;
  cleanup_error cell_error *err = NULL;
  int r = spec_parse(doc, strlen(doc), &s, &err);
  CHECK(r < 0);
  CHECK(s == NULL);
  CHECK_STR(err ? err->msg : NULL, msg);
  spec_free(s);
}

/* Parse doc (which must parse) and check spec_validate_for_create. */
static void expect_create_error(const char *doc_sq, const char *msg) {
  cleanup_spec struct spec *s = parse_ok(doc_sq);
  if (s == NULL)
    return;
  cleanup_error cell_error *err = NULL;
  CHECK(spec_validate_for_create(s, &err) < 0);
  CHECK_STR(err ? err->msg : NULL, msg);
}

static char *data_path(const char *name) {
  const char *slash = strrchr(__FILE__, '/');
  int dirlen = slash ? (int)(slash - __FILE__) : 1;
  return xasprintf("%.*s/data/%s", dirlen, slash ? __FILE__ : ".", name);
}

/* Errors in a member of the document, of process, of linux. */
static void doc_error(const char *members, const char *msg) {
  cleanup_free char *doc = xasprintf("{'ociVersion':'1.2.0',%s}", members);
  expect_error(doc, msg);
}

static void process_error(const char *members, const char *msg) {
  cleanup_free char *doc = xasprintf(
      "{'ociVersion':'1.2.0','process':{'args':['sh'],'cwd':'/',%s}}", members);
  expect_error(doc, msg);
}

static void linux_error(const char *members, const char *msg) {
  cleanup_free char *doc =
      xasprintf("{'ociVersion':'1.2.0','linux':{%s}}", members);
  expect_error(doc, msg);
}

/* ---- the full document ---- */

static struct spec *load_full(void) {
  cleanup_free char *path = data_path("full-config.json");
  struct spec *s = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(spec_load(path, &s, &err) == 0);
  if (err)
    fprintf(stderr, "  %s\n", err->msg);
  return s;
}

TEST(full_process) {
  cleanup_spec struct spec *s = load_full();
  if (s == NULL)
    return;
  CHECK_STR(s->oci_version, "1.2.0");
  struct spec_process *p = s->process;
  CHECK(p != NULL);
  if (p == NULL)
    return;
  CHECK(p->terminal);
  CHECK(p->console_size && p->console_size->height == 25 &&
        p->console_size->width == 80);
  CHECK(p->user.uid == 1000 && p->user.gid == 1001);
  CHECK(p->user.umask && *p->user.umask == 18);
  CHECK(p->user.n_additional_gids == 3);
  CHECK(p->user.additional_gids[0] == 5 && p->user.additional_gids[1] == 6 &&
        p->user.additional_gids[2] == UINT32_MAX);
  CHECK_STR(p->user.username, "someone");
  CHECK(cell_strv_len(p->args) == 3);
  CHECK_STR(p->args[0], "/bin/app");
  CHECK_STR(p->args[2], "value");
  CHECK_STR(p->command_line, "app --flag value");
  CHECK(cell_strv_len(p->env) == 2);
  CHECK_STR(p->env[1], "TERM=xterm");
  CHECK_STR(p->cwd, "/srv");
  CHECK(p->capabilities != NULL);
  CHECK(cell_strv_len(p->capabilities->bounding) == 2);
  CHECK_STR(p->capabilities->bounding[1], "CAP_CHOWN");
  CHECK_STR(p->capabilities->effective[0], "CAP_KILL");
  CHECK(p->capabilities->inheritable != NULL &&
        p->capabilities->inheritable[0] == NULL);
  CHECK(cell_strv_len(p->capabilities->permitted) == 2);
  CHECK_STR(p->capabilities->ambient[0], "CAP_NET_RAW");
  CHECK(p->n_rlimits == 2);
  CHECK_STR(p->rlimits[0].type, "RLIMIT_NOFILE");
  CHECK(p->rlimits[0].resource == RLIMIT_NOFILE);
  CHECK(p->rlimits[0].soft == 1024 && p->rlimits[0].hard == 4096);
  CHECK(p->rlimits[1].resource == RLIMIT_CORE);
  CHECK(p->rlimits[1].soft == UINT64_MAX && p->rlimits[1].hard == UINT64_MAX);
  CHECK(p->no_new_privileges);
  CHECK_STR(p->apparmor_profile, "cell-default");
  CHECK(p->oom_score_adj && *p->oom_score_adj == -500);
  CHECK_STR(p->selinux_label, "system_u:system_r:container_t:s0");
  CHECK(p->scheduler != NULL);
  CHECK_STR(p->scheduler->policy, "SCHED_DEADLINE");
  CHECK(p->scheduler->nice == -5 && p->scheduler->priority == 7);
  CHECK_STR(p->scheduler->flags[0], "SCHED_FLAG_RESET_ON_FORK");
  CHECK(p->scheduler->runtime == 10000000 &&
        p->scheduler->deadline == 20000000 && p->scheduler->period == 30000000);
  CHECK(p->io_priority != NULL);
  CHECK_STR(p->io_priority->class_, "IOPRIO_CLASS_BE");
  CHECK(p->io_priority->priority == 4);
  CHECK(p->exec_cpu_affinity != NULL);
  CHECK_STR(p->exec_cpu_affinity->initial, "0-1");
  CHECK_STR(p->exec_cpu_affinity->final, "2,3");
}

TEST(full_root_mounts_hooks_annotations) {
  cleanup_spec struct spec *s = load_full();
  if (s == NULL)
    return;
  CHECK(s->root && s->root->readonly);
  CHECK_STR(s->root->path, "rootfs");
  CHECK_STR(s->hostname, "box");
  CHECK_STR(s->domainname, "example.org");
  CHECK(s->n_mounts == 2);
  CHECK_STR(s->mounts[0].destination, "/proc");
  CHECK_STR(s->mounts[0].type, "proc");
  CHECK(s->mounts[0].options == NULL);
  CHECK_STR(s->mounts[1].source, "/srv/data");
  CHECK(cell_strv_len(s->mounts[1].options) == 2);
  CHECK_STR(s->mounts[1].options[1], "ro");
  CHECK(s->mounts[1].n_uid_mappings == 1 &&
        s->mounts[1].uid_mappings[0].host_id == 100000 &&
        s->mounts[1].uid_mappings[0].size == 65536);
  CHECK(s->mounts[1].n_gid_mappings == 1 &&
        s->mounts[1].gid_mappings[0].host_id == 200000);

  CHECK(s->hooks.prestart.len == 1);
  CHECK_STR(s->hooks.prestart.hooks[0].path, "/usr/bin/pre");
  CHECK_STR(s->hooks.prestart.hooks[0].args[1], "x");
  CHECK_STR(s->hooks.prestart.hooks[0].env[0], "A=1");
  CHECK(s->hooks.prestart.hooks[0].timeout &&
        *s->hooks.prestart.hooks[0].timeout == 5);
  CHECK(s->hooks.create_runtime.len == 2);
  CHECK_STR(s->hooks.create_runtime.hooks[1].path, "/usr/bin/cr2");
  CHECK(s->hooks.create_runtime.hooks[1].timeout == NULL);
  CHECK(s->hooks.create_container.len == 1);
  CHECK_STR(s->hooks.start_container.hooks[0].path, "/usr/bin/sc");
  CHECK_STR(s->hooks.poststart.hooks[0].path, "/usr/bin/ps");
  CHECK(*s->hooks.poststop.hooks[0].timeout == 30);

  CHECK(s->n_annotations == 2);
  CHECK_STR(spec_annotation(s, "org.example.key"), "value");
  CHECK_STR(spec_annotation(s, "other"), "");
  CHECK(spec_annotation(s, "missing") == NULL);
}

TEST(full_linux) {
  cleanup_spec struct spec *s = load_full();
  if (s == NULL)
    return;
  struct spec_linux *l = s->linux_;
  CHECK(l != NULL);
  if (l == NULL)
    return;
  CHECK(l->n_namespaces == 8);
  for (int t = 0; t < SPEC_NS_COUNT; t++)
    CHECK(spec_find_namespace(s, (enum spec_ns_type)t) != NULL);
  CHECK_STR(spec_find_namespace(s, SPEC_NS_NETWORK)->path, "/var/run/netns/x");
  CHECK(spec_find_namespace(s, SPEC_NS_PID)->path == NULL);
  CHECK(l->n_uid_mappings == 1 && l->uid_mappings[0].container_id == 0 &&
        l->uid_mappings[0].host_id == 1000 && l->uid_mappings[0].size == 32000);
  CHECK(l->n_gid_mappings == 2 && l->gid_mappings[1].container_id == 1 &&
        l->gid_mappings[1].host_id == 4294967294u);
  CHECK(l->time_monotonic && l->time_monotonic->secs == -86400 &&
        l->time_monotonic->nanosecs == 999999999);
  CHECK(l->time_boottime && l->time_boottime->secs == 172800 &&
        l->time_boottime->nanosecs == 0);
  CHECK(l->n_devices == 2);
  CHECK_STR(l->devices[0].type, "c");
  CHECK_STR(l->devices[0].path, "/dev/fuse");
  CHECK(l->devices[0].major == 10 && l->devices[0].minor == 229);
  CHECK(l->devices[0].file_mode && *l->devices[0].file_mode == 438);
  CHECK(l->devices[0].uid && *l->devices[0].uid == 0);
  CHECK(l->devices[0].gid && *l->devices[0].gid == 5);
  CHECK_STR(l->devices[1].type, "p");
  CHECK(l->devices[1].file_mode == NULL && l->devices[1].uid == NULL);
  CHECK_STR(l->cgroups_path, "/cell/box");
  CHECK(l->n_sysctl == 2);
  CHECK_STR(l->sysctl[0].key, "net.ipv4.ip_forward");
  CHECK_STR(l->sysctl[0].value, "1");
  CHECK_STR(l->rootfs_propagation, "rslave");
  CHECK(cell_strv_len(l->masked_paths) == 2);
  CHECK_STR(l->masked_paths[1], "/sys/firmware");
  CHECK_STR(l->readonly_paths[0], "/proc/sys");
  CHECK_STR(l->mount_label, "system_u:object_r:container_file_t:s0");
  CHECK(l->personality != NULL);
  CHECK_STR(l->personality->domain, "LINUX32");
  CHECK(l->personality->flags && l->personality->flags[0] == NULL);
  CHECK(l->n_net_devices == 2);
  CHECK_STR(l->net_devices[0].host_name, "eth1");
  CHECK_STR(l->net_devices[0].name, "ctr1");
  CHECK_STR(l->net_devices[1].host_name, "eth2");
  CHECK(l->net_devices[1].name == NULL);
  CHECK(l->intel_rdt != NULL);
  CHECK_STR(l->intel_rdt->clos_id, "guaranteed");
  CHECK_STR(l->intel_rdt->l3_cache_schema, "L3:0=7f0");
  CHECK_STR(l->intel_rdt->mem_bw_schema, "MB:0=20");
}

TEST(full_resources) {
  cleanup_spec struct spec *s = load_full();
  if (s == NULL || s->linux_ == NULL || s->linux_->resources == NULL) {
    CHECK(!"resources parsed");
    return;
  }
  struct spec_resources *r = s->linux_->resources;
  CHECK(r->n_devices == 2);
  CHECK(!r->devices[0].allow && r->devices[0].type == NULL &&
        r->devices[0].major == NULL && r->devices[0].minor == NULL);
  CHECK_STR(r->devices[0].access, "rwm");
  CHECK(r->devices[1].allow);
  CHECK_STR(r->devices[1].type, "c");
  CHECK(r->devices[1].major && *r->devices[1].major == 10);
  CHECK(r->devices[1].minor && *r->devices[1].minor == 229);
  CHECK_STR(r->devices[1].access, "rw");

  struct spec_memory *m = r->memory;
  CHECK(m != NULL);
  if (m) {
    CHECK(m->limit && *m->limit == 536870912);
    CHECK(m->reservation && *m->reservation == 268435456);
    CHECK(m->swap && *m->swap == -1);
    CHECK(m->kernel && *m->kernel == -1);
    CHECK(m->kernel_tcp && *m->kernel_tcp == 1048576);
    CHECK(m->swappiness && *m->swappiness == 60);
    CHECK(m->disable_oom_killer && !*m->disable_oom_killer);
    CHECK(m->use_hierarchy && *m->use_hierarchy);
    CHECK(m->check_before_update && *m->check_before_update);
  }
  struct spec_cpu *c = r->cpu;
  CHECK(c != NULL);
  if (c) {
    CHECK(c->shares && *c->shares == 1024);
    CHECK(c->quota && *c->quota == 100000);
    CHECK(c->burst && *c->burst == 50000);
    CHECK(c->period && *c->period == 200000);
    CHECK(c->realtime_runtime && *c->realtime_runtime == 950000);
    CHECK(c->realtime_period && *c->realtime_period == 1000000);
    CHECK_STR(c->cpus, "0-3");
    CHECK_STR(c->mems, "0");
    CHECK(c->idle && *c->idle == 1);
  }
  CHECK(r->pids_limit && *r->pids_limit == 32771);
  struct spec_block_io *b = r->block_io;
  CHECK(b != NULL);
  if (b) {
    CHECK(b->weight && *b->weight == 10);
    CHECK(b->leaf_weight && *b->leaf_weight == 20);
    CHECK(b->n_weight_device == 2);
    CHECK(b->weight_device[0].major == 8 && b->weight_device[0].minor == 0 &&
          *b->weight_device[0].weight == 500 &&
          *b->weight_device[0].leaf_weight == 300);
    CHECK(b->weight_device[1].minor == 16 &&
          b->weight_device[1].leaf_weight == NULL);
    CHECK(b->n_throttle_read_bps_device == 1 &&
          b->throttle_read_bps_device[0].rate == 600);
    CHECK(b->n_throttle_write_bps_device == 1 &&
          b->throttle_write_bps_device[0].minor == 1 &&
          b->throttle_write_bps_device[0].rate == 700);
    CHECK(b->n_throttle_read_iops_device == 1 &&
          b->throttle_read_iops_device[0].rate == 800);
    CHECK(b->n_throttle_write_iops_device == 1 &&
          b->throttle_write_iops_device[0].minor == 3 &&
          b->throttle_write_iops_device[0].rate == 900);
  }
  CHECK(r->n_hugepage_limits == 1);
  CHECK_STR(r->hugepage_limits[0].page_size, "2MB");
  CHECK(r->hugepage_limits[0].limit == 209715200);
  CHECK(r->network && r->network->class_id && *r->network->class_id == 1048577);
  CHECK(r->network && r->network->n_priorities == 1 &&
        r->network->priorities[0].priority == 500);
  CHECK_STR(r->network ? r->network->priorities[0].name : NULL, "eth0");
  CHECK(r->n_rdma == 1);
  CHECK_STR(r->rdma[0].device, "mlx5_1");
  CHECK(r->rdma[0].hca_handles && *r->rdma[0].hca_handles == 3);
  CHECK(r->rdma[0].hca_objects && *r->rdma[0].hca_objects == 10000);
  CHECK(r->n_unified == 2);
  CHECK_STR(r->unified[0].key, "io.max");
  CHECK_STR(r->unified[0].value, "259:0 rbps=2097152");
  CHECK_STR(r->unified[1].value, "max");
}

TEST(full_seccomp) {
  cleanup_spec struct spec *s = load_full();
  if (s == NULL || s->linux_ == NULL || s->linux_->seccomp == NULL) {
    CHECK(!"seccomp parsed");
    return;
  }
  struct spec_seccomp *sc = s->linux_->seccomp;
  CHECK_STR(sc->default_action, "SCMP_ACT_ERRNO");
  CHECK(sc->default_errno_ret && *sc->default_errno_ret == 38);
  CHECK(cell_strv_len(sc->architectures) == 2);
  CHECK_STR(sc->architectures[1], "SCMP_ARCH_X86");
  CHECK_STR(sc->flags[0], "SECCOMP_FILTER_FLAG_LOG");
  CHECK_STR(sc->listener_path, "/run/agent.sock");
  CHECK_STR(sc->listener_metadata, "meta");
  CHECK(sc->n_syscalls == 2);
  CHECK(cell_strv_len(sc->syscalls[0].names) == 2);
  CHECK_STR(sc->syscalls[0].names[1], "write");
  CHECK_STR(sc->syscalls[0].action, "SCMP_ACT_ALLOW");
  CHECK(sc->syscalls[0].errno_ret == NULL && sc->syscalls[0].n_args == 0);
  CHECK(sc->syscalls[1].errno_ret && *sc->syscalls[1].errno_ret == 1);
  CHECK(sc->syscalls[1].n_args == 1);
  CHECK(sc->syscalls[1].args[0].index == 0);
  CHECK(sc->syscalls[1].args[0].value == UINT64_MAX);
  CHECK(sc->syscalls[1].args[0].value_two == 3);
  CHECK_STR(sc->syscalls[1].args[0].op, "SCMP_CMP_MASKED_EQ");
}

TEST(full_validates_for_create) {
  cleanup_spec struct spec *s = load_full();
  cleanup_error cell_error *err = NULL;
  CHECK(s != NULL && spec_validate_for_create(s, &err) == 0);
  if (err)
    fprintf(stderr, "  %s\n", err->msg);
}

/* ---- minimal documents, absent vs zero ---- */

TEST(minimal_document) {
  cleanup_spec struct spec *s = parse_ok("{'ociVersion':'1.0.0'}");
  CHECK(s != NULL);
  if (s == NULL)
    return;
  CHECK(s->process == NULL && s->root == NULL && s->linux_ == NULL);
  CHECK(s->hostname == NULL && s->n_mounts == 0 && s->n_annotations == 0);
  CHECK(spec_find_namespace(s, SPEC_NS_PID) == NULL);
}

TEST(null_is_absent_and_empty_string_is_a_value) {
  cleanup_spec struct spec *s = parse_ok(
      "{'ociVersion':'1.2.0','hostname':'','domainname':null,"
      "'process':{'args':['sh'],'cwd':'/','terminal':null,'oomScoreAdj':null,"
      "'user':{'uid':0,'gid':0,'umask':0}},"
      "'mounts':null,'hooks':null,'linux':{'resources':{'memory':{'limit':0,"
      "'swap':null}}}}");
  if (s == NULL)
    return;
  CHECK_STR(s->hostname, "");
  CHECK(s->domainname == NULL);
  CHECK(s->process->oom_score_adj == NULL);
  CHECK(s->process->user.umask && *s->process->user.umask == 0);
  CHECK(!s->process->terminal);
  CHECK(s->linux_->resources->memory->limit &&
        *s->linux_->resources->memory->limit == 0);
  CHECK(s->linux_->resources->memory->swap == NULL);
  CHECK(s->linux_->resources->cpu == NULL);
}

TEST(unknown_fields_ignored) {
  cleanup_spec struct spec *s = parse_ok(
      "{'ociVersion':'1.2.0','x':{'y':[1,2,{}]},'process':{'args':['a'],"
      "'cwd':'/','futureField':true},'linux':{'newThing':'z',"
      "'namespaces':[{'type':'pid','extra':1}]},'solaris':{},"
      "'vm':{'hypervisor':{'path':'relative'}}}");
  CHECK(s != NULL);
  CHECK(s && s->linux_ && s->linux_->n_namespaces == 1);
}

TEST(empty_access_means_all) {
  cleanup_spec struct spec *s =
      parse_ok("{'ociVersion':'1.2.0','linux':{'resources':{'devices':"
               "[{'allow':true,'access':''}]}}}");
  CHECK(s && s->linux_->resources->devices[0].access == NULL);
}

/* Found by fuzz-spec: a rule without "access" was read through NULL. */
TEST(missing_access_means_all) {
  cleanup_spec struct spec *s =
      parse_ok("{'ociVersion':'1.2.0','linux':{'resources':{'devices':"
               "[{'allow':false,'type':'c','major':1}]}}}");
  CHECK(s && s->linux_->resources->devices[0].access == NULL);
}

/* runc reads r, w and m and ignores other letters ("rwa" in its tests). */
TEST(access_letters_beyond_rwm_are_ignored) {
  cleanup_spec struct spec *s =
      parse_ok("{'ociVersion':'1.2.0','linux':{'resources':{'devices':"
               "[{'allow':true,'access':'rwa'},{'allow':false,'access':'wxmw'}]}}}");
  CHECK(s && s->linux_->resources->n_devices == 2);
  CHECK_STR(s ? s->linux_->resources->devices[0].access : NULL, "rw");
  CHECK_STR(s ? s->linux_->resources->devices[1].access : NULL, "wm");
}

TEST(duplicate_json_key_keeps_last) {
  cleanup_spec struct spec *s =
      parse_ok("{'ociVersion':'1.2.0','hostname':'a','hostname':'b'}");
  CHECK_STR(s ? s->hostname : NULL, "b");
}

/* ---- ociVersion ---- */

TEST(oci_versions) {
  const char *good[] = {"1.0.0", "1.0.2", "1.0.2-dev", "1.0.0-rc5",    "1.1.0",
                        "1.2.0", "1.3.0", "1.3.1",     "1.10.20+build"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    cleanup_free char *doc = xasprintf("{'ociVersion':'%s'}", good[i]);
    cleanup_spec struct spec *s = parse_ok(doc);
    CHECK_STR(s ? s->oci_version : NULL, good[i]);
  }
  expect_error("{'ociVersion':'2.0.0'}",
               "ociVersion: unsupported version `2.0.0` (cell supports 1.x)");
  expect_error("{'ociVersion':'0.6.0'}",
               "ociVersion: unsupported version `0.6.0` (cell supports 1.x)");
  expect_error("{'ociVersion':'1'}",
               "ociVersion: unsupported version `1` (cell supports 1.x)");
  expect_error("{'ociVersion':'1.x.0'}",
               "ociVersion: unsupported version `1.x.0` (cell supports 1.x)");
  expect_error("{'ociVersion':'10.0.0'}",
               "ociVersion: unsupported version `10.0.0` (cell supports 1.x)");
  expect_error("{'hostname':'x'}", "ociVersion: is required");
  expect_error("{'ociVersion':null}", "ociVersion: is required");
  expect_error("{'ociVersion':1.2}", "ociVersion: must be a string");
}

/* ---- error messages ---- */

TEST(malformed_json) {
  expect_error(
      "{\n  'ociVersion': '1.2.0',\n  'process': {\n    'args' ['sh']\n",
      "line 4, column 12: parse error: object key and value must be "
      "separated by a colon (':')");
  expect_error("[1]", "the document must be a JSON object, not an array");
  expect_error("\"x\"", "the document must be a JSON object, not a string");
}

TEST(process_errors) {
  doc_error("'process':{'cwd':'/'}",
            "process.args: must be a non-empty array of strings");
  doc_error("'process':{'args':[],'cwd':'/'}",
            "process.args: must be a non-empty array of strings");
  doc_error("'process':{'args':['a',1],'cwd':'/'}",
            "process.args: must be a non-empty array of strings");
  doc_error("'process':{'args':'sh','cwd':'/'}",
            "process.args: must be a non-empty array of strings");
  doc_error("'process':{'args':['a']}", "process.cwd: is required");
  doc_error("'process':{'args':['a'],'cwd':'tmp'}",
            "process.cwd: must be an absolute path");
  doc_error("'process':'sh'", "process: must be an object");
  process_error("'terminal':'yes'", "process.terminal: must be a boolean");
  process_error("'noNewPrivileges':1",
                "process.noNewPrivileges: must be a boolean");
  process_error("'env':['A=1',2]", "process.env: must be an array of strings");
  process_error("'user':{'uid':-1}",
                "process.user.uid: must be a number between 0 and 4294967295");
  process_error("'user':{'gid':4294967296}",
                "process.user.gid: must be a number between 0 and 4294967295");
  process_error("'user':{'uid':1.5}",
                "process.user.uid: must be a number between 0 and 4294967295");
  process_error(
      "'user':{'additionalGids':[1,'x']}",
      "process.user.additionalGids[1]: must be a number between 0 and "
      "4294967295");
  process_error("'consoleSize':{'height':1}",
                "process.consoleSize.width: is required");
  process_error("'oomScoreAdj':1001",
                "process.oomScoreAdj: must be a number between -1000 and 1000");
  process_error("'capabilities':{'bounding':'CAP_KILL'}",
                "process.capabilities.bounding: must be an array of strings");
  process_error("'capabilities':[]", "process.capabilities: must be an object");
  process_error("'scheduler':{'nice':1}",
                "process.scheduler.policy: is required");
  process_error("'scheduler':{'policy':'SCHED_FAST'}",
                "process.scheduler.policy: unknown policy `SCHED_FAST`");
  process_error("'ioPriority':{'class':'IOPRIO_CLASS_X'}",
                "process.ioPriority.class: unknown class `IOPRIO_CLASS_X`");
  process_error("'execCPUAffinity':{'initial':0}",
                "process.execCPUAffinity.initial: must be a string");
}

TEST(rlimit_errors) {
  process_error("'rlimits':[{'type':'RLIMIT_FOO','soft':1,'hard':1}]",
                "process.rlimits[0].type: unknown rlimit `RLIMIT_FOO`");
  process_error("'rlimits':[{'type':'RLIMIT_NOFILE','soft':1,'hard':1},"
                "{'type':'RLIMIT_BAR','soft':1,'hard':1}]",
                "process.rlimits[1].type: unknown rlimit `RLIMIT_BAR`");
  process_error("'rlimits':[{'type':'RLIMIT_NOFILE','soft':1,'hard':1},"
                "{'type':'RLIMIT_NOFILE','soft':2,'hard':2}]",
                "process.rlimits: duplicate rlimit `RLIMIT_NOFILE`");
  process_error("'rlimits':[{'type':'RLIMIT_NOFILE','soft':2048,'hard':1024}]",
                "process.rlimits[0].soft: 2048 is greater than the hard limit "
                "1024");
  process_error("'rlimits':[{'type':'RLIMIT_NOFILE','soft':1}]",
                "process.rlimits[0].hard: is required");
  process_error("'rlimits':[{'soft':1,'hard':1}]",
                "process.rlimits[0].type: is required");
  process_error("'rlimits':[{'type':'RLIMIT_NOFILE','soft':-1,'hard':1}]",
                "process.rlimits[0].soft: must be a number between 0 and "
                "18446744073709551615");
  process_error("'rlimits':['RLIMIT_NOFILE']",
                "process.rlimits[0]: must be an object");
  process_error("'rlimits':{}", "process.rlimits: must be an array of objects");
}

TEST(mount_errors) {
  doc_error("'mounts':[{'destination':'/a'},{'destination':'/b'},"
            "{'destination':'c'}]",
            "mounts[2].destination: must be an absolute path");
  doc_error("'mounts':[{'type':'tmpfs'}]",
            "mounts[0].destination: is required");
  doc_error("'mounts':[{'destination':'/a','options':'ro'}]",
            "mounts[0].options: must be an array of strings");
  doc_error("'mounts':[{'destination':'/a','uidMappings':[{'containerID':0,"
            "'hostID':0,'size':-1}]}]",
            "mounts[0].uidMappings[0].size: must be a number between 0 and "
            "4294967295");
  doc_error("'root':{'path':1}", "root.path: must be a string");
  doc_error("'root':{'path':'r','readonly':'true'}",
            "root.readonly: must be a boolean");
  doc_error("'hostname':7", "hostname: must be a string");
  doc_error("'annotations':{'a':'1','b':2}", "annotations.b: must be a string");
  doc_error("'annotations':[]", "annotations: must be an object");
}

TEST(hook_errors) {
  doc_error("'hooks':{'prestart':[{'path':'hook'}]}",
            "hooks.prestart[0].path: must be an absolute path");
  doc_error("'hooks':{'poststop':[{'path':'/a'},{'args':['x']}]}",
            "hooks.poststop[1].path: is required");
  doc_error("'hooks':{'createRuntime':[{'path':'/a','timeout':0}]}",
            "hooks.createRuntime[0].timeout: must be a number between 1 and "
            "2147483647");
  doc_error("'hooks':{'startContainer':[{'path':'/a','timeout':-3}]}",
            "hooks.startContainer[0].timeout: must be a number between 1 and "
            "2147483647");
  doc_error("'hooks':{'createContainer':[{'path':'/a','env':'A=1'}]}",
            "hooks.createContainer[0].env: must be an array of strings");
  doc_error("'hooks':{'poststart':{}}",
            "hooks.poststart: must be an array of objects");
}

TEST(namespace_errors) {
  linux_error("'namespaces':[{'type':'pid'},{'type':'foo'}]",
              "linux.namespaces[1].type: unknown namespace type `foo`");
  linux_error("'namespaces':[{'type':'pid'},{'type':'mount'},{'type':'pid'}]",
              "linux.namespaces: duplicate namespace `pid`");
  linux_error("'namespaces':[{'path':'/proc/1/ns/pid'}]",
              "linux.namespaces[0].type: is required");
  linux_error("'namespaces':[{'type':'net'}]",
              "linux.namespaces[0].type: unknown namespace type `net`");
  linux_error("'namespaces':[{'type':'user','path':5}]",
              "linux.namespaces[0].path: must be a string");
  linux_error("'uidMappings':[{'containerID':0,'hostID':0,'size':4294967296}]",
              "linux.uidMappings[0].size: must be a number between 0 and "
              "4294967295");
  linux_error("'gidMappings':[{'containerID':0,'size':1}]",
              "linux.gidMappings[0].hostID: is required");
  linux_error("'timeOffsets':{'realtime':{'secs':1}}",
              "linux.timeOffsets: unknown clock `realtime` (monotonic or "
              "boottime)");
  linux_error("'timeOffsets':{'monotonic':{'nanosecs':1000000000}}",
              "linux.timeOffsets.monotonic.nanosecs: must be a number between "
              "0 and 999999999");
  linux_error("'timeOffsets':{'boottime':5}",
              "linux.timeOffsets.boottime: must be an object");
}

TEST(device_errors) {
  linux_error("'devices':[{'type':'x','path':'/dev/x','major':1,'minor':1}]",
              "linux.devices[0].type: unknown device type `x` (c, b, u or p)");
  linux_error("'devices':[{'type':'c','path':'dev/x','major':1,'minor':1}]",
              "linux.devices[0].path: must be an absolute path");
  linux_error("'devices':[{'type':'b','path':'/dev/x','major':1}]",
              "linux.devices[0].minor: is required");
  linux_error("'devices':[{'path':'/dev/x'}]",
              "linux.devices[0].type: is required");
  linux_error("'devices':[{'type':'u','path':'/dev/x','major':1,'minor':1,"
              "'fileMode':-1}]",
              "linux.devices[0].fileMode: must be a number between 0 and "
              "4294967295");
  linux_error("'resources':{'devices':[{'allow':true,'access':'ax'}]}",
              "linux.resources.devices[0].access: `ax` names none of r, w and "
              "m (use \"rwm\" for all)");
  linux_error("'resources':{'devices':[{'allow':true,'type':'p'}]}",
              "linux.resources.devices[0].type: unknown device type `p` (a, c "
              "or b)");
  linux_error("'resources':{'devices':[{'access':'rwm'}]}",
              "linux.resources.devices[0].allow: is required");
  linux_error("'resources':{'devices':[{'allow':'no'}]}",
              "linux.resources.devices[0].allow: must be a boolean");
  linux_error("'resources':{'devices':[{'allow':true,'major':'8'}]}",
              "linux.resources.devices[0].major: must be a number between "
              "-9223372036854775808 and 9223372036854775807");
}

TEST(resource_errors) {
  linux_error("'resources':{'memory':{'limit':'1G'}}",
              "linux.resources.memory.limit: must be a number between "
              "-9223372036854775808 and 9223372036854775807");
  linux_error("'resources':{'memory':{'disableOOMKiller':1}}",
              "linux.resources.memory.disableOOMKiller: must be a boolean");
  linux_error("'resources':{'cpu':{'shares':-2}}",
              "linux.resources.cpu.shares: must be a number between 0 and "
              "18446744073709551615");
  linux_error("'resources':{'pids':{}}",
              "linux.resources.pids.limit: is required");
  linux_error("'resources':{'blockIO':{'weight':65536}}",
              "linux.resources.blockIO.weight: must be a number between 0 and "
              "65535");
  linux_error("'resources':{'blockIO':{'throttleReadIOPSDevice':[{'major':8,"
              "'minor':0}]}}",
              "linux.resources.blockIO.throttleReadIOPSDevice[0].rate: is "
              "required");
  linux_error("'resources':{'hugepageLimits':[{'limit':1}]}",
              "linux.resources.hugepageLimits[0].pageSize: is required");
  linux_error("'resources':{'network':{'priorities':[{'name':'eth0'}]}}",
              "linux.resources.network.priorities[0].priority: is required");
  linux_error("'resources':{'rdma':{'mlx':{'hcaHandles':'3'}}}",
              "linux.resources.rdma.mlx.hcaHandles: must be a number between "
              "0 and 4294967295");
  linux_error("'resources':{'unified':{'memory.max':100}}",
              "linux.resources.unified.memory.max: must be a string");
  linux_error("'resources':[]", "linux.resources: must be an object");
}

TEST(linux_misc_errors) {
  linux_error("'rootfsPropagation':'rshared'", NULL);
  linux_error("'rootfsPropagation':'everywhere'",
              "linux.rootfsPropagation: unknown propagation `everywhere` "
              "(shared, slave, private or unbindable)");
  linux_error("'personality':{'domain':'LINUX64'}",
              "linux.personality.domain: unknown domain `LINUX64` (LINUX or "
              "LINUX32)");
  linux_error("'personality':{}", "linux.personality.domain: is required");
  linux_error("'sysctl':{'a.b':1}", "linux.sysctl.a.b: must be a string");
  linux_error("'maskedPaths':[null]",
              "linux.maskedPaths: must be an array of strings");
  linux_error("'netDevices':{'eth0':{'name':1}}",
              "linux.netDevices.eth0.name: must be a string");
  linux_error("'intelRdt':{'closID':1}",
              "linux.intelRdt.closID: must be a string");
  linux_error("'seccomp':{}", "linux.seccomp.defaultAction: is required");
  linux_error("'seccomp':{'defaultAction':'SCMP_ACT_ALLOW','syscalls':[{"
              "'action':'SCMP_ACT_ERRNO'}]}",
              "linux.seccomp.syscalls[0].names: is required");
  linux_error("'seccomp':{'defaultAction':'SCMP_ACT_ALLOW','syscalls':[{"
              "'names':['read'],'action':'SCMP_ACT_ERRNO','args':[{'index':0,"
              "'op':'SCMP_CMP_EQ'}]}]}",
              "linux.seccomp.syscalls[0].args[0].value: is required");
  linux_error("'cgroupsPath':false", "linux.cgroupsPath: must be a string");
}

/* ---- spec_validate_for_create ---- */

#define MNT_NS "'namespaces':[{'type':'mount'}"

static void create_linux_error(const char *linux_members, const char *msg);

TEST(validate_for_create) {
  expect_create_error("{'ociVersion':'1.2.0','root':{'path':'r'},"
                      "'linux':{'namespaces':[{'type':'mount'}]}}",
                      "process: is required");
  expect_create_error(
      "{'ociVersion':'1.2.0','process':{'args':['a'],'cwd':'/'},"
      "'linux':{'namespaces':[{'type':'mount'}]}}",
      "root.path: is required");
  expect_create_error(
      "{'ociVersion':'1.2.0','process':{'args':['a'],'cwd':'/'},"
      "'root':{'path':''},"
      "'linux':{'namespaces':[{'type':'mount'}]}}",
      "root.path: is required");
  /* Without a mount namespace the container shares the runtime's: fine,
   * as long as nothing would be mounted in it. */
  expect_create_error(
      "{'ociVersion':'1.2.0','process':{'args':['a'],'cwd':'/'},"
      "'root':{'path':'r'},'mounts':[{'destination':'/proc','type':'proc',"
      "'source':'proc'}],'linux':{'namespaces':[{'type':'pid'}]}}",
      "mounts: needs a mount namespace of the container's own, or it would "
      "change the host's: add {\"type\": \"mount\"} to linux.namespaces, "
      "or leave mounts out");
  expect_create_error(
      "{'ociVersion':'1.2.0','process':{'args':['a'],'cwd':'/'},"
      "'root':{'path':'r'},'linux':{'maskedPaths':['/proc/kcore']}}",
      "linux.maskedPaths: needs a mount namespace of the container's own, or "
      "it would change the host's: add {\"type\": \"mount\"} to "
      "linux.namespaces, or leave linux.maskedPaths out");
  create_linux_error("'namespaces':[{'type':'pid'}]", NULL);
}

static void create_linux_error(const char *linux_members, const char *msg) {
  cleanup_free char *doc =
      xasprintf("{'ociVersion':'1.2.0','process':{'args':['a'],'cwd':'/'},"
                "'root':{'path':'rootfs'},'linux':{%s}}",
                linux_members);
  if (msg) {
    expect_create_error(doc, msg);
    return;
  }
  cleanup_spec struct spec *s = parse_ok(doc);
  cleanup_error cell_error *err = NULL;
  CHECK(s && spec_validate_for_create(s, &err) == 0);
  if (err)
    fprintf(stderr, "  unexpected: %s\n", err->msg);
}

#define MAP "[{'containerID':0,'hostID':1000,'size':1}]"

TEST(validate_user_and_time_namespaces) {
  create_linux_error(MNT_NS "],'uidMappings':" MAP,
                     "linux.uidMappings: requires a user namespace");
  create_linux_error(MNT_NS "],'gidMappings':" MAP,
                     "linux.gidMappings: requires a user namespace");
  create_linux_error(MNT_NS ",{'type':'user'}],'gidMappings':" MAP,
                     "linux.uidMappings: required with a new user namespace");
  create_linux_error(MNT_NS ",{'type':'user'}],'uidMappings':" MAP,
                     "linux.gidMappings: required with a new user namespace");
  create_linux_error(MNT_NS ",{'type':'user'}],'uidMappings':" MAP
                            ",'gidMappings':" MAP,
                     NULL);
  /* Joining an existing user namespace: its mappings are already set. */
  create_linux_error(MNT_NS ",{'type':'user','path':'/proc/1/ns/user'}]", NULL);
  create_linux_error(MNT_NS ",{'type':'user','path':'proc/1/ns/user'}]",
                     "linux.namespaces[1].path: must be an absolute path");
  create_linux_error(MNT_NS "],'timeOffsets':{'monotonic':{'secs':1}}",
                     "linux.timeOffsets: requires a new time namespace");
  create_linux_error(MNT_NS ",{'type':'time','path':'/proc/1/ns/time'}],"
                            "'timeOffsets':{'boottime':{'secs':1}}",
                     "linux.timeOffsets: requires a new time namespace");
  create_linux_error(MNT_NS ",{'type':'time'}],'timeOffsets':{'boottime':"
                            "{'secs':1}}",
                     NULL);
}

/* ---- helpers ---- */

TEST(namespace_names_and_flags) {
  CHECK_STR(spec_ns_type_name(SPEC_NS_PID), "pid");
  CHECK_STR(spec_ns_type_name(SPEC_NS_NETWORK), "network");
  CHECK_STR(spec_ns_type_name(SPEC_NS_MOUNT), "mount");
  CHECK_STR(spec_ns_type_name(SPEC_NS_IPC), "ipc");
  CHECK_STR(spec_ns_type_name(SPEC_NS_UTS), "uts");
  CHECK_STR(spec_ns_type_name(SPEC_NS_USER), "user");
  CHECK_STR(spec_ns_type_name(SPEC_NS_CGROUP), "cgroup");
  CHECK_STR(spec_ns_type_name(SPEC_NS_TIME), "time");
  CHECK(spec_ns_clone_flag(SPEC_NS_PID) == CLONE_NEWPID);
  CHECK(spec_ns_clone_flag(SPEC_NS_NETWORK) == CLONE_NEWNET);
  CHECK(spec_ns_clone_flag(SPEC_NS_MOUNT) == CLONE_NEWNS);
  CHECK(spec_ns_clone_flag(SPEC_NS_IPC) == CLONE_NEWIPC);
  CHECK(spec_ns_clone_flag(SPEC_NS_UTS) == CLONE_NEWUTS);
  CHECK(spec_ns_clone_flag(SPEC_NS_USER) == CLONE_NEWUSER);
  CHECK(spec_ns_clone_flag(SPEC_NS_CGROUP) == CLONE_NEWCGROUP);
  CHECK(spec_ns_clone_flag(SPEC_NS_TIME) == 0x80);
}

/* ---- spec_load ---- */

static char *write_temp(const char *dir, const char *name, const char *text) {
  char *path = xasprintf("%s/%s", dir, name);
  FILE *f = fopen(path, "we");
  CHECK(f != NULL);
  if (f) {
    fputs(text, f);
    fclose(f);
  }
  return path;
}

TEST(load_errors_name_the_file) {
  char dir[] = "/tmp/cell-test-spec-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  cleanup_free char *bad = write_temp(dir, "config.json",
                                      "{\n  \"ociVersion\": \"1.2.0\",\n"
                                      "  \"process\": {\"args\": []}\n}\n");
  struct spec *s = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(spec_load(bad, &s, &err) < 0);
  CHECK_STR(err ? err->msg : NULL,
            "config.json: process.args: must be a non-empty array of strings");
  cell_error_free(&err);

  cleanup_free char *broken = write_temp(dir, "other.json",
                                         "{\n  \"ociVersion\": \"1.2.0\",\n"
                                         "  \"hostname\": x\n}\n");
  CHECK(spec_load(broken, &s, &err) < 0);
  CHECK_STR(err ? err->msg : NULL,
            "other.json: line 3, column 15: lexical error: invalid char in "
            "json text.");
  cell_error_free(&err);

  unlink(bad);
  CHECK(spec_load(bad, &s, &err) < 0);
  cleanup_free char *expect =
      xasprintf("config.json: open `%s`: No such file or directory", bad);
  CHECK_STR(err ? err->msg : NULL, expect);
  CHECK(err && err->errnum == ENOENT);
  cell_error_free(&err);
  CHECK(s == NULL);

  unlink(broken);
  rmdir(dir);
}

/* ---- the default configs ---- */

TEST(default_spec) {
  cleanup_free char *json = spec_default_json(false, 1234, 5678);
  cleanup_spec struct spec *s = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(spec_parse(json, strlen(json), &s, &err) == 0);
  if (err)
    fprintf(stderr, "  %s\n", err->msg);
  if (s == NULL)
    return;
  CHECK(spec_validate_for_create(s, &err) == 0);
  CHECK_STR(s->oci_version, CELL_OCI_VERSION);
  CHECK(s->process->terminal);
  CHECK_STR(s->process->args[0], "sh");
  CHECK(s->process->args[1] == NULL);
  CHECK_STR(s->process->cwd, "/");
  CHECK(s->process->no_new_privileges);
  CHECK(s->process->n_rlimits == 1 &&
        s->process->rlimits[0].resource == RLIMIT_NOFILE);
  CHECK(cell_strv_len(s->process->capabilities->bounding) == 3);
  CHECK_STR(s->hostname, "cell");
  CHECK(s->root->readonly);
  CHECK_STR(s->root->path, "rootfs");
  CHECK(s->n_mounts == 7);
  CHECK(spec_find_namespace(s, SPEC_NS_NETWORK) != NULL);
  CHECK(spec_find_namespace(s, SPEC_NS_CGROUP) != NULL);
  CHECK(spec_find_namespace(s, SPEC_NS_USER) == NULL);
  CHECK(s->linux_->resources && s->linux_->resources->n_devices == 1 &&
        !s->linux_->resources->devices[0].allow);
  CHECK(cell_strv_len(s->linux_->masked_paths) == 10);
  CHECK(cell_strv_len(s->linux_->readonly_paths) == 5);
  /* Confined out of the box: config/seccomp.json is linux.seccomp. */
  CHECK(s->linux_->seccomp && s->linux_->seccomp->n_syscalls > 0 &&
        s->linux_->seccomp->default_action &&
        strcmp(s->linux_->seccomp->default_action, "SCMP_ACT_ERRNO") == 0);
  /* The uid and gid only matter to the rootless variant. */
  CHECK(strstr(json, "1234") == NULL);
}

TEST(default_rootless_spec) {
  cleanup_free char *json = spec_default_json(true, 1234, 5678);
  CHECK(strstr(json, "@UID@") == NULL && strstr(json, "@GID@") == NULL);
  cleanup_spec struct spec *s = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(spec_parse(json, strlen(json), &s, &err) == 0);
  if (err)
    fprintf(stderr, "  %s\n", err->msg);
  if (s == NULL)
    return;
  CHECK(spec_validate_for_create(s, &err) == 0);
  CHECK(spec_find_namespace(s, SPEC_NS_USER) != NULL);
  CHECK(spec_find_namespace(s, SPEC_NS_NETWORK) == NULL);
  CHECK(s->linux_->n_uid_mappings == 1 &&
        s->linux_->uid_mappings[0].host_id == 1234 &&
        s->linux_->uid_mappings[0].container_id == 0 &&
        s->linux_->uid_mappings[0].size == 1);
  CHECK(s->linux_->n_gid_mappings == 1 &&
        s->linux_->gid_mappings[0].host_id == 5678);
  CHECK(s->linux_->resources == NULL);
  CHECK(s->linux_->seccomp && s->linux_->seccomp->default_action &&
        strcmp(s->linux_->seccomp->default_action, "SCMP_ACT_ERRNO") == 0);
  for (size_t i = 0; i < s->n_mounts; i++) {
    for (char **o = s->mounts[i].options; o && *o; o++)
      CHECK(strncmp(*o, "gid=", 4) != 0);
    if (strcmp(s->mounts[i].destination, "/sys") == 0) {
      CHECK_STR(s->mounts[i].source, "/sys");
      CHECK_STR(s->mounts[i].options[0], "rbind");
    }
  }

  cleanup_free char *other = spec_default_json(true, 0, 4294967294u);
  CHECK_CONTAINS(other, "4294967294");
}

int main(void) {
  RUN(full_process);
  RUN(full_root_mounts_hooks_annotations);
  RUN(full_linux);
  RUN(full_resources);
  RUN(full_seccomp);
  RUN(full_validates_for_create);
  RUN(minimal_document);
  RUN(null_is_absent_and_empty_string_is_a_value);
  RUN(unknown_fields_ignored);
  RUN(empty_access_means_all);
  RUN(missing_access_means_all);
  RUN(access_letters_beyond_rwm_are_ignored);
  RUN(duplicate_json_key_keeps_last);
  RUN(oci_versions);
  RUN(malformed_json);
  RUN(process_errors);
  RUN(rlimit_errors);
  RUN(mount_errors);
  RUN(hook_errors);
  RUN(namespace_errors);
  RUN(device_errors);
  RUN(resource_errors);
  RUN(linux_misc_errors);
  RUN(validate_for_create);
  RUN(validate_user_and_time_namespaces);
  RUN(namespace_names_and_flags);
  RUN(load_errors_name_the_file);
  RUN(default_spec);
  RUN(default_rootless_spec);
  UNIT_DONE();
}
