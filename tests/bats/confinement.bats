#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# Confinement seen from inside the container: capabilities, no_new_privs,
# seccomp (the default profile of `cell spec` too), maskedPaths and
# readonlyPaths, sysctl, oomScoreAdj, personality.

load helpers

# A static program the container runs from /host/probe: for each argument
# it makes that syscall and prints "NAME: ok" or "NAME: EPERM" (the errno's
# name), for the syscalls busybox has no applet for.
setup_file() {
  PROBE=$BATS_FILE_TMPDIR/probe
  export PROBE
  cat >"$BATS_FILE_TMPDIR/probe.c" <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    long r = -1;
    errno = ENOSYS;
    if (strcmp(argv[i], "keyctl") == 0)
      r = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    else if (strcmp(argv[i], "unshare") == 0)
      r = unshare(CLONE_NEWUTS);
    else if (strcmp(argv[i], "mount") == 0)
      r = mount("probe", "/mnt", "tmpfs", 0, "size=64k");
    else if (strcmp(argv[i], "getppid") == 0)
      r = getppid();
    printf("%s: %s\n", argv[i], r < 0 ? strerrorname_np(errno) : "ok");
  }
  return 0;
}
EOF
  "${CC:-cc}" -static -O -o "$PROBE" "$BATS_FILE_TMPDIR/probe.c" 2>/dev/null ||
    rm -f "$PROBE"
}

requires_probe() {
  [ -x "$PROBE" ] || skip "no C compiler with static libc to build the probe"
  cp "$PROBE" "$HOSTDIR/probe"
}

# status_field NAME: the value of NAME in $output (a copy of /proc/PID/status).
status_field() {
  awk -v f="$1:" '$1 == f { print $2 }' <<<"$output"
}

caps_of_status='grep -e ^CapInh -e ^CapPrm -e ^CapEff -e ^CapBnd -e ^CapAmb /proc/self/status'

# --- capabilities --------------------------------------------------------

@test "capabilities: root gets exactly the configured sets, ambient included" {
  setup_bundle sh -c "$caps_of_status"
  # Bits: CHOWN 0, DAC_OVERRIDE 1, KILL 5, NET_BIND_SERVICE 10, SYS_ADMIN 21.
  # (For root the kernel makes the effective set the permitted one at exec.)
  update_config '.process.noNewPrivileges = true
    | .process.capabilities = {
        bounding: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL",
                   "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"],
        effective: ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"],
        permitted: ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"],
        inheritable: ["CAP_KILL", "CAP_SYS_ADMIN"],
        ambient: ["CAP_KILL"]}'
  run -0 cell run "$CID"
  [ "$(status_field CapBnd)" = 0000000000200423 ]
  [ "$(status_field CapPrm)" = 0000000000200021 ]
  [ "$(status_field CapEff)" = 0000000000200021 ]
  [ "$(status_field CapInh)" = 0000000000200020 ]
  [ "$(status_field CapAmb)" = 0000000000000020 ]
}

@test "capabilities: a non-root user keeps its capabilities through ambient" {
  setup_bundle sh -c "$caps_of_status"'
    touch /run/f && chown 0 /run/f && echo chown-ok; id -u'
  update_config '.mounts += [{destination: "/run", type: "tmpfs", source: "tmpfs",
                              options: ["mode=1777"]}]
    | .process.user = {uid: 1000, gid: 1000}
    | .process.capabilities = {
        bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        effective: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        permitted: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        inheritable: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        ambient: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]}'
  run -0 cell run "$CID"
  [ "$(status_field CapBnd)" = 0000000000000421 ]
  [ "$(status_field CapPrm)" = 0000000000000401 ]
  [ "$(status_field CapEff)" = 0000000000000401 ]
  [ "$(status_field CapInh)" = 0000000000000401 ]
  [ "$(status_field CapAmb)" = 0000000000000401 ]
  [ "${lines[5]}" = chown-ok ]
  [ "${lines[6]}" = 1000 ]

  # Without ambient, the kernel clears a non-root user's sets at exec: the
  # same chown fails.
  update_config '.process.capabilities.ambient = []'
  run -0 cell run "$CID"
  [ "$(status_field CapPrm)" = 0000000000000000 ]
  [ "$(status_field CapEff)" = 0000000000000000 ]
  [ "$(status_field CapBnd)" = 0000000000000421 ]
  [[ "$output" == *"Operation not permitted"* ]]
  [[ "$output" != *chown-ok* ]]
}

@test "capabilities: an unknown name fails create, naming it" {
  cell_only
  setup_bundle true
  update_config '.process.capabilities.bounding += ["CAP_NOPE"]'
  run ! cell_detached create "$CID"
  expect_message 'process.capabilities.bounding[3]: unknown capability `CAP_NOPE`'
  run ! cell state "$CID"

  # Only the OCI spelling: libcap would take "cap_kill" or a number.
  update_config '.process.capabilities.bounding = ["CAP_KILL"]
                 | .process.capabilities.effective = ["cap_kill"]'
  run ! cell_detached create "$CID"
  expect_message 'process.capabilities.effective[0]: unknown capability `cap_kill`'
  run ! cell state "$CID"
}

@test "capabilities: effective beyond permitted is refused at create" {
  cell_only
  setup_bundle true
  update_config '.process.capabilities = {bounding: ["CAP_KILL", "CAP_CHOWN"],
                   permitted: ["CAP_KILL"], effective: ["CAP_KILL", "CAP_CHOWN"]}'
  run ! cell_detached create "$CID"
  expect_message 'process.capabilities.effective: `CAP_CHOWN` is not in the permitted set'
  run ! cell state "$CID"
}

# --- no_new_privs and seccomp ----------------------------------------------

@test "noNewPrivileges and the seccomp filter in /proc/self/status" {
  setup_bundle grep -e ^NoNewPrivs -e '^Seccomp:' /proc/self/status
  # The default config: no_new_privs and the default profile.
  run -0 cell run "$CID"
  [ "$(status_field NoNewPrivs)" = 1 ]
  [ "$(status_field Seccomp)" = 2 ]

  # Without no_new_privs the filter is loaded while the process still has
  # CAP_SYS_ADMIN.
  update_config '.process.noNewPrivileges = false'
  run -0 cell run "$CID"
  [ "$(status_field NoNewPrivs)" = 0 ]
  [ "$(status_field Seccomp)" = 2 ]

  update_config 'del(.linux.seccomp)'
  run -0 cell run "$CID"
  [ "$(status_field NoNewPrivs)" = 0 ]
  [ "$(status_field Seccomp)" = 0 ]
}

@test "seccomp: a blocked syscall fails with its errnoRet" {
  setup_bundle sh -c 'mkdir /host/blocked 2>&1; hostname blocked 2>&1; touch /host/allowed; echo end'
  # errno values the syscalls could never return on their own here.
  update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [
      {names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13},
      {names: ["sethostname"], action: "SCMP_ACT_ERRNO", errnoRet: 18}]}
    | .process.capabilities.bounding += ["CAP_SYS_ADMIN"]
    | .process.capabilities.effective += ["CAP_SYS_ADMIN"]
    | .process.capabilities.permitted += ["CAP_SYS_ADMIN"]'
  run -0 cell run "$CID"
  [[ "${lines[0]}" == *"Permission denied"* ]]
  [[ "${lines[1]}" == *"Invalid cross-device link"* ]]
  [ "${lines[2]}" = end ]
  [ ! -e "$HOSTDIR/blocked" ]
  [ -e "$HOSTDIR/allowed" ]

  # Without errnoRet: EPERM.
  update_config '.linux.seccomp.syscalls[0] |= del(.errnoRet)'
  run -0 cell run "$CID"
  [[ "${lines[0]}" == *"Operation not permitted"* ]]
  [ ! -e "$HOSTDIR/blocked" ]
}

@test "seccomp: an argument condition blocks only the matching calls" {
  # socket(AF_INET6, ...) refused, socket(AF_INET, ...) allowed.
  setup_bundle sh -c 'nc -w 1 ::1 9 2>&1 </dev/null; nc -w 1 127.0.0.1 9 2>&1 </dev/null; echo end'
  update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [
      {names: ["socket"], action: "SCMP_ACT_ERRNO", errnoRet: 97,
       args: [{index: 0, value: 10, op: "SCMP_CMP_EQ"}]}]}'
  run -0 cell run "$CID"
  # 97 is EAFNOSUPPORT; IPv4 gets as far as connect (lo is down).
  [[ "${lines[0]}" == *"socket: Address family not supported"* ]]
  [[ "${lines[1]}" == *"Network is unreachable"* ]]
  [ "${lines[2]}" = end ]

  update_config '.linux.seccomp.syscalls[0].args[0].op = "SCMP_CMP_NE"'
  run -0 cell run "$CID"
  [[ "${lines[0]}" != *"Address family not supported"* ]]
  [[ "${lines[1]}" == *"socket: Address family not supported"* ]]
}

@test "seccomp: KILL, KILL_PROCESS, KILL_THREAD and TRAP end the process with SIGSYS" {
  setup_bundle sh -c 'echo before; exec mkdir /host/killed'
  update_config '.process.rlimits += [{type: "RLIMIT_CORE", soft: 0, hard: 0}]'
  for action in SCMP_ACT_KILL SCMP_ACT_KILL_PROCESS SCMP_ACT_KILL_THREAD SCMP_ACT_TRAP; do
    update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [
        {names: ["mkdir", "mkdirat"], action: $a}]}' --arg a "$action"
    # 128 + SIGSYS (31)
    run -159 cell run "$CID"
    [ "$output" = before ]
    [ ! -e "$HOSTDIR/killed" ]
  done
}

# create_fails_naming MESSAGE: create fails, says MESSAGE, leaves nothing.
create_fails_naming() {
  run ! cell_detached create "$CID"
  expect_message "$1"
  run ! cell state "$CID"
  [ -z "$(state_entries)" ]
}

@test "seccomp: an unknown action or a malformed rule fails create, naming the field" {
  setup_bundle true
  update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [
      {names: ["mkdir"], action: "SCMP_ACT_ERRNO"},
      {names: ["getcwd"], action: "SCMP_ACT_EXPLODE"}]}'
  create_fails_naming 'linux.seccomp.syscalls[1].action: unknown action `SCMP_ACT_EXPLODE`'

  update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_NOPE"}'
  create_fails_naming 'linux.seccomp.defaultAction: unknown action `SCMP_ACT_NOPE`'

  update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [
      {names: ["socket"], action: "SCMP_ACT_ERRNO",
       args: [{index: 0, value: 10, op: "SCMP_CMP_SIMILAR"}]}]}'
  create_fails_naming 'linux.seccomp.syscalls[0].args[0].op: unknown operator `SCMP_CMP_SIMILAR`'

  update_config '.linux.seccomp.syscalls[0].args[0] = {index: 6, value: 1, op: "SCMP_CMP_EQ"}'
  create_fails_naming 'linux.seccomp.syscalls[0].args[0].index: 6 is not an argument'

  update_config '.linux.seccomp.syscalls[0] = {names: "socket", action: "SCMP_ACT_ERRNO"}'
  create_fails_naming 'linux.seccomp.syscalls[0].names'

  update_config '.linux.seccomp.syscalls[0] = {names: ["socket"], action: "SCMP_ACT_ALLOW",
                                               errnoRet: 1}'
  create_fails_naming 'linux.seccomp.syscalls[0].errnoRet'

  update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW",
                                   architectures: ["SCMP_ARCH_Z80"]}'
  create_fails_naming 'linux.seccomp.architectures[0]: unknown architecture `SCMP_ARCH_Z80`'

  update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW",
                                   flags: ["SECCOMP_FILTER_FLAG_MAGIC"]}'
  create_fails_naming 'linux.seccomp.flags[0]: unknown flag `SECCOMP_FILTER_FLAG_MAGIC`'
}

@test "seccomp: the default profile of cell spec blocks unshare, mount and keyctl" {
  setup_bundle sh -c '/host/probe unshare mount keyctl getppid
    ls /bin/busybox && cat /host/file && unshare -u true 2>&1; echo sh-ok'
  requires_probe
  echo content >"$HOSTDIR/file"
  # With CAP_SYS_ADMIN, so that only the filter can refuse.
  update_config '.process.capabilities.bounding += ["CAP_SYS_ADMIN"]
    | .process.capabilities.effective += ["CAP_SYS_ADMIN"]
    | .process.capabilities.permitted += ["CAP_SYS_ADMIN"]'
  [ "$(jq -r .linux.seccomp.defaultAction config.json)" = SCMP_ACT_ERRNO ]
  run -0 cell run "$CID"
  [ "${lines[0]}" = "unshare: EPERM" ]
  [ "${lines[1]}" = "mount: EPERM" ]
  [ "${lines[2]}" = "keyctl: EPERM" ]
  [ "${lines[3]}" = "getppid: ok" ]
  [ "${lines[4]}" = /bin/busybox ]
  [ "${lines[5]}" = content ]
  [[ "${lines[6]}" == *"Operation not permitted"* ]]
  [ "${lines[7]}" = sh-ok ]

  # The same without the profile: the capability alone lets them through.
  update_config 'del(.linux.seccomp)'
  run -0 cell run "$CID"
  [ "${lines[0]}" = "unshare: ok" ]
  [ "${lines[1]}" = "mount: ok" ]
  [ "${lines[2]}" != "keyctl: EPERM" ]
}

# --- maskedPaths, readonlyPaths ---------------------------------------------

@test "maskedPaths of the default config: files read empty, directories are empty" {
  [ -n "$(head -c 1 /proc/timer_list)" ] || skip "the host's /proc/timer_list is empty"
  [ -n "$(ls -A /sys/firmware)" ] || skip "the host's /sys/firmware is empty"
  setup_bundle sh -c 'wc -c < /proc/timer_list; wc -c < /proc/keys
    stat -c "%t:%T" /proc/timer_list; ls -A /sys/firmware | wc -l
    touch /sys/firmware/x 2>&1; echo x > /proc/timer_list 2>&1; echo end'
  update_config '.process.capabilities.bounding += ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"]
    | .process.capabilities.effective += ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"]
    | .process.capabilities.permitted += ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"]'
  jq -e '.linux.maskedPaths | index("/proc/timer_list") and index("/sys/firmware")' config.json
  run -0 cell run "$CID"
  [ "${lines[0]}" = 0 ]
  [ "${lines[1]}" = 0 ]
  # The null device (1:3) covers a file.
  [ "${lines[2]}" = 1:3 ]
  [ "${lines[3]}" = 0 ]
  # A read-only tmpfs covers a directory.
  [[ "${lines[4]}" == *"Read-only file system"* ]]
  [ "${lines[-1]}" = end ]
}

@test "readonlyPaths of the default config: writes fail with EROFS" {
  setup_bundle sh -c 'echo 1 > /proc/sys/kernel/ns_last_pid 2>&1
    echo 1 > /proc/sys/net/ipv4/ip_forward 2>&1; cat /proc/sys/kernel/ostype; echo end'
  update_config '.process.capabilities.bounding += ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    | .process.capabilities.effective += ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    | .process.capabilities.permitted += ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]'
  jq -e '.linux.readonlyPaths | index("/proc/sys")' config.json
  run -0 cell run "$CID"
  [[ "${lines[0]}" == *"Read-only file system"* ]]
  [[ "${lines[1]}" == *"Read-only file system"* ]]
  # Still readable.
  [ "${lines[2]}" = Linux ]
  [ "${lines[3]}" = end ]
}

# --- sysctl ----------------------------------------------------------------

@test "sysctl: net.ipv4.ip_forward in the container's network namespace only" {
  host_before=$(cat /proc/sys/net/ipv4/ip_forward)
  want=$((1 - host_before))
  setup_bundle cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/lo/forwarding
  update_config '.linux.sysctl = {"net.ipv4.ip_forward": $v,
                                  "net/ipv4/conf/lo/forwarding": $v}' --arg v "$want"
  run -0 cell run "$CID"
  [ "${lines[0]}" = "$want" ]
  [ "${lines[1]}" = "$want" ]
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$host_before" ]
}

@test "sysctl: kernel.shmmax in the container's ipc namespace only" {
  host_before=$(cat /proc/sys/kernel/shmmax)
  setup_bundle cat /proc/sys/kernel/shmmax
  update_config '.linux.sysctl = {"kernel.shmmax": "123456789"}'
  run -0 cell run "$CID"
  [ "$output" = 123456789 ]
  [ "$(cat /proc/sys/kernel/shmmax)" = "$host_before" ]
}

@test "sysctl: set under a host /proc whose sys/ is a read-only bind (the runtime nested in a container)" {
  # The runtime's /proc as a container engine leaves it: sys/ a read-only
  # bind over itself.  Its sysctl writes cannot pass that mount; they go
  # to a procfs instance of the runtime's own instead.
  setup_bundle cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax
  update_config '.linux.sysctl = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "7654321"}'
  run -0 unshare -m --propagation private sh -c '
    mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys /proc/sys &&
    ! touch /proc/sys/kernel/shmmax 2>/dev/null && exec "$@"' sh \
    "$CELL" --root "$ROOT" run "$CID"
  [ "${lines[0]}" = 1 ]
  [ "${lines[1]}" = 7654321 ]
}

@test "sysctl: a key no namespace of the container confines is refused, naming it" {
  swappiness=$(cat /proc/sys/vm/swappiness)
  setup_bundle true
  update_config '.linux.sysctl = {"vm.swappiness": "7"}'
  create_fails_naming '`vm.swappiness` cannot be set in a container'
  [ "$(cat /proc/sys/vm/swappiness)" = "$swappiness" ]

  update_config '.linux.sysctl = {"kernel.shmmax": "4096"}
                 | .linux.namespaces |= map(select(.type != "ipc"))'
  create_fails_naming '`kernel.shmmax` needs an ipc namespace'

  update_config '.linux.sysctl = {"net.ipv4.ip_forward": "1"}
                 | .linux.namespaces |= map(select(.type != "network"))'
  create_fails_naming '`net.ipv4.ip_forward` needs a network namespace'

  # A net.* key that would climb out of /proc/sys/net.
  update_config '.linux.sysctl = {"net/../vm/swappiness": "7"}
                 | .linux.namespaces += [{type: "network"}]'
  create_fails_naming '`net/../vm/swappiness` is not a valid key'
  [ "$(cat /proc/sys/vm/swappiness)" = "$swappiness" ]
}

# --- oomScoreAdj, personality ---------------------------------------------------

@test "oomScoreAdj: set for the container, not for the runtime" {
  ours=$(cat /proc/self/oom_score_adj)
  want=$((ours + 321 > 1000 ? 1000 : ours + 321))
  setup_bundle cat /proc/self/oom_score_adj
  update_config '.process.oomScoreAdj = $v' --argjson v "$want"
  run -0 cell run "$CID"
  [ "$output" = "$want" ]
  [ "$(cat /proc/self/oom_score_adj)" = "$ours" ]
}

@test "oomScoreAdj: a negative value, which the container cannot lower further" {
  # The runtime needs CAP_SYS_RESOURCE to set it (and to make it the
  # floor); some sandboxes run without.
  bash -c 'echo -1 > /proc/self/oom_score_adj' 2>/dev/null ||
    skip "no CAP_SYS_RESOURCE here: a negative oom_score_adj cannot be set"
  setup_bundle sh -c 'cat /proc/self/oom_score_adj
    echo -900 > /proc/self/oom_score_adj 2>&1; cat /proc/self/oom_score_adj'
  update_config '.process.oomScoreAdj = -500'
  run -0 cell run "$CID"
  [ "${lines[0]}" = -500 ]
  # Lowering it needs CAP_SYS_RESOURCE, which the default config lacks.
  [[ "${lines[1]}" == *"Permission denied"* ]]
  [ "${lines[2]}" = -500 ]
}

@test "linux.personality: LINUX32 makes uname say i686" {
  [ "$(uname -m)" = x86_64 ] || skip "an x86_64 host is needed"
  setup_bundle uname -m
  update_config '.linux.personality = {domain: "LINUX32"}'
  run -0 cell run "$CID"
  [ "$output" = i686 ]

  update_config '.linux.personality = {domain: "LINUX"}'
  run -0 cell run "$CID"
  [ "$output" = x86_64 ]

  cell_only
  update_config '.linux.personality = {domain: "LINUX", flags: ["ADDR_NO_RANDOMIZE"]}'
  create_fails_naming 'linux.personality.flags[0]: unknown flag `ADDR_NO_RANDOMIZE`'
}
