#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# runc drop-in, config level: what runc accepts in config.json and how it
# sets the process up, which runc's users and scripts rely on.

load helpers

RUNC=/usr/sbin/runc

# The value of FIELD (CapAmb, ...) in the /proc/self/status lines of $output.
status_field() {
  printf '%s\n' "$output" | awk -v f="$1:" '$1 == f { print $2 }'
}

# --- runc spec's own config.json ------------------------------------------

# The bundle of setup_bundle, its config.json replaced by `runc spec`'s,
# pointed at the test rootfs and made to run ARGS.
runc_spec_bundle() {
  [ -x "$RUNC" ] || skip "no $RUNC to write its default config"
  setup_bundle "$@"
  rm config.json
  "$RUNC" spec
  update_config '.root.path = $rootfs
    | .process.terminal = false
    | .process.args = $ARGS.positional
    | .process.env += [$mark]' \
    --arg rootfs "$TEST_ROOTFS" --arg mark "$TEST_MARK" --args -- "$@"
}

@test "runc spec's config.json runs: ambient capabilities the kernel refuses are left out" {
  runc_spec_bundle grep -e ^CapPrm -e ^CapAmb /proc/self/status
  # runc spec lists ambient capabilities but no inheritable set; the kernel
  # raises an ambient capability only when it is inheritable too.
  [ "$(jq -r '.process.capabilities.inheritable // "none"' config.json)" = none ]
  [ "$(jq -r '.process.capabilities.ambient | length' config.json)" -gt 0 ]
  run -0 cell run "$CID"
  # AUDIT_WRITE 29, KILL 5, NET_BIND_SERVICE 10.
  [ "$(status_field CapPrm)" = 0000000020000420 ]
  [ "$(status_field CapAmb)" = 0000000000000000 ]

  # With the inheritable set the kernel allows them all.
  update_config '.process.capabilities.inheritable = .process.capabilities.ambient'
  run -0 cell run "$CID"
  [ "$(status_field CapAmb)" = 0000000020000420 ]
}

@test "runc spec's config.json: the ambient capability left out is named in the debug log" {
  cell_only
  runc_spec_bundle true
  run -0 cell --debug run "$CID"
  [[ "$output" == *'ambient: `CAP_KILL` is not in both the permitted and the inheritable set'* ]]
  run -0 cell run "$CID"
  [ -z "$output" ]
}

# --- device rules ------------------------------------------------------------

@test "devices: an access string with letters beyond r, w and m (\"rwa\") is accepted, its r, w and m apply" {
  # /dev/kmsg (c 1:11) is not among the devices every container gets.
  # Opening it write-only needs no privilege beyond the device cgroup's.
  setup_bundle sh -c ': >/dev/kmsg && echo write-ok; head -c 0 </dev/kmsg && echo read-ok; echo end'
  update_config '.linux.devices += [{path: "/dev/kmsg", type: "c", major: 1, minor: 11,
                                      fileMode: 438, uid: 0, gid: 0}]
    | .linux.resources.devices += [{allow: true, type: "c", major: 1, minor: 11, access: "wa"}]'
  run -0 cell run "$CID"
  [[ "$output" == *write-ok* ]]
  [[ "$output" != *read-ok* ]]
  [[ "$output" == *end* ]]

  # runc's own tests write "rwa" for everything.
  update_config '.linux.resources.devices[-1].access = "rwa"
    | .process.args = ["sh", "-c", ": >/dev/kmsg && echo write-ok"]'
  run -0 cell run "$CID"
  [ "$output" = write-ok ]
}

# --- hooks -------------------------------------------------------------------

@test "hooks: createContainer hooks run with the container's rootfs as their working directory" {
  setup_bundle true
  update_config '.hooks.createContainer = [{path: "/bin/sh",
      args: ["sh", "-c", "pwd >\"$0\"/cwd && test -x bin/busybox && echo found >\"$0\"/relative", $host]}]' \
    --arg host "$HOSTDIR"
  run -0 cell run "$CID"
  [ "$(cat "$HOSTDIR/cwd")" = "$TEST_ROOTFS" ]
  [ "$(cat "$HOSTDIR/relative")" = found ]
}

@test "noNewPrivileges: startContainer hooks run under the seccomp filter, one it blocks fails the start" {
  setup_bundle sh -c 'touch /host/ran'
  update_config '.process.noNewPrivileges = true
    | .linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [
        {names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1}]}
    | .hooks.startContainer = [{path: "/bin/mkdir", args: ["mkdir", "/host/by-hook"]}]'
  cell_detached create "$CID"
  run cell start "$CID"
  # (runc 1.1 reports no error: the hook fails in the container's init.)
  is_runc || [ "$status" -ne 0 ]
  wait_for_status "$CID" stopped
  [ ! -e "$HOSTDIR/by-hook" ]
  [ ! -e "$HOSTDIR/ran" ]

  # The same hook without the rule: it runs, and so does the program.
  cell delete -f "$CID"
  update_config '.linux.seccomp.syscalls = []'
  cell_detached create "$CID"
  run -0 cell start "$CID"
  wait_for_file "$HOSTDIR/ran"
  [ -d "$HOSTDIR/by-hook" ]
}

# --- seccomp: syscalls the profile does not know --------------------------------

# The static syscall-probe (tests/helpers) into HOSTDIR, /host in the
# container: the busybox rootfs has no libc for it.
use_syscall_probe() {
  local bin=${CELL_TEST_HELPERS:-$REPO/build/tests}/syscall-probe
  [ -x "$bin" ] || {
    echo "no $bin: make $REPO/build/tests/syscall-probe" >&2
    return 1
  }
  cp "$bin" "$HOSTDIR/syscall-probe"
}

# The repository's default profile (docker's shape) with defaultAction
# SCMP_ACT_ERRNO (EPERM), and without clone3, which it denies with ENOSYS
# on purpose: the profile of someone who did not think of clone3.
profile_without_clone3() {
  jq '.defaultAction = "SCMP_ACT_ERRNO" | .defaultErrnoRet = 1
      | .syscalls |= map(.names -= ["clone3"] | select(.names | length > 0))' \
    "$REPO/config/seccomp.json"
}

@test "seccomp: a syscall newer than the profile gets ENOSYS, not the default errno" {
  setup_bundle /host/syscall-probe nr:1000 nr:165
  use_syscall_probe
  update_config '.linux.seccomp = $profile' --argjson profile "$(profile_without_clone3)"
  run -0 cell run "$CID"
  [ "${lines[0]}" = "nr:1000: ENOSYS" ]
  # mount (165), older and left to the default: the default's EPERM.
  [ "${lines[1]}" = "nr:165: EPERM" ]
}

@test "seccomp: a syscall the profile allows but this libseccomp does not know (mseal) gets ENOSYS, not the default errno" {
  [ "$(uname -m)" = x86_64 ] || skip "mseal's number (462) is x86_64's"
  setup_bundle /host/syscall-probe nr:462
  use_syscall_probe
  update_config '.linux.seccomp = $profile' --argjson profile "$(profile_without_clone3)"
  [ "$(jq '[.linux.seccomp.syscalls[] | select(.action == "SCMP_ACT_ALLOW") | .names[]] | index("mseal")' config.json)" != null ]
  run -0 cell run "$CID"
  # A libseccomp that knows mseal allows it, and the kernel answers the
  # empty call itself (EINVAL, or ENOSYS before 6.10); one that does not
  # cannot add the rule, and the syscall is newer than every one the
  # profile could name: ENOSYS.  Never the default's EPERM, which a
  # program would take for a refusal instead of falling back.
  [[ "$output" == "nr:462: ENOSYS" || "$output" == "nr:462: EINVAL" ]]
}

@test "seccomp: a profile that does not name clone3 gives ENOSYS for it, so threads fall back to clone" {
  if is_runc; then
    skip "runc 1.1.5 gives clone3 the default errno when the profile names a newer syscall (close_range ...)"
  fi
  setup_bundle /host/syscall-probe clone3 thread
  use_syscall_probe
  update_config '.linux.seccomp = $profile' --argjson profile "$(profile_without_clone3)"
  [ "$(jq '[.linux.seccomp.syscalls[].names[]] | index("clone3")' config.json)" = null ]
  [ "$(jq '[.linux.seccomp.syscalls[].names[]] | index("close_range")' config.json)" != null ]
  run -0 cell run "$CID"
  [ "${lines[0]}" = "clone3: ENOSYS" ]
  [ "${lines[1]}" = "thread: ok" ]
}

@test "seccomp: a profile that names clone3 keeps its choice for it" {
  setup_bundle /host/syscall-probe clone3
  use_syscall_probe
  update_config '.linux.seccomp = $profile
    | .linux.seccomp.syscalls += [{names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 1}]' \
    --argjson profile "$(profile_without_clone3)"
  run -0 cell run "$CID"
  [ "$output" = "clone3: EPERM" ]
}

@test "seccomp: syscall names this libseccomp does not know warn nobody, --debug names them" {
  setup_bundle true
  update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [
      {names: ["no_such_syscall_cell_test", "mkdir"], action: "SCMP_ACT_ERRNO"}]}'
  # Each run below is the first of its state root: it compiles the
  # profile, where the names are read (later runs read the program from a
  # cache in the root and would say nothing either way).
  run -0 --separate-stderr cell run "$CID"
  [ -z "$stderr" ]
  [ -z "$output" ]
  if ! is_runc; then
    run -0 --separate-stderr "$CELL" --root "$BATS_TEST_TMPDIR/root-debug" --debug run "$CID"
    [[ "$stderr" == *'unknown syscall `no_such_syscall_cell_test`'* ]]
  fi
}

# --- exec with a seccomp notify profile -----------------------------------------

# Start tests/helpers/seccomp-agent on $HOSTDIR/agent.sock: it writes each
# connection's state to $HOSTDIR/state-N.json and answers every notified
# syscall with EXDEV (18), an errno mkdir never gives here by itself.
start_seccomp_agent() {
  local bin=${CELL_TEST_HELPERS:-$REPO/build/tests}/seccomp-agent
  [ -x "$bin" ] || {
    echo "no $bin: make $REPO/build/tests/seccomp-agent" >&2
    return 1
  }
  "$bin" "$HOSTDIR/agent.sock" "$HOSTDIR" 18 3>&- &
  local pid=$!
  on_teardown "kill $pid; wait $pid"
  wait_for_file "$HOSTDIR/agent.sock"
}

@test "exec: a SCMP_ACT_NOTIFY profile sends the exec'd process's listener fd to listenerPath" {
  setup_bundle sleep 1000
  start_seccomp_agent
  update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW",
      listenerPath: $sock, listenerMetadata: "from-the-test",
      syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_NOTIFY"}]}' \
    --arg sock "$HOSTDIR/agent.sock"
  cell_detached create "$CID"
  cell start "$CID"
  wait_for_file "$HOSTDIR/state-1.json"

  # The agent answers the exec'd process's mkdir.
  run -0 cell exec "$CID" sh -c 'mkdir /tmp/by-exec 2>&1; test -d /tmp/by-exec || echo absent'
  [[ "${lines[0]}" == *"Invalid cross-device link"* ]]
  [ "${lines[1]}" = absent ]

  # The state it got, as for create: this process's pid, the container's.
  cell_detached exec -d --pid-file "$BATS_TEST_TMPDIR/exec.pid" "$CID" sleep 1000
  wait_for_file "$HOSTDIR/state-3.json"
  local state=$HOSTDIR/state-3.json
  [ "$(jq -r .pid "$state")" = "$(cat "$BATS_TEST_TMPDIR/exec.pid")" ]
  [ "$(jq -r .state.pid "$state")" = "$(container_pid "$CID")" ]
  [ "$(jq -r .state.status "$state")" = running ]
  [ "$(jq -r .state.id "$state")" = "$CID" ]
  [ "$(jq -c .fds "$state")" = '["seccompFd"]' ]
  [ "$(jq -r .metadata "$state")" = from-the-test ]
}

@test "exec: with a notify profile and no agent on listenerPath, exec fails and the program never runs" {
  setup_bundle sleep 1000
  start_seccomp_agent
  update_config '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", listenerPath: $sock,
      syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_NOTIFY"}]}' \
    --arg sock "$HOSTDIR/agent.sock"
  cell_detached create "$CID"
  cell start "$CID"
  rm "$HOSTDIR/agent.sock"
  run ! cell exec "$CID" touch /host/ran
  [ ! -e "$HOSTDIR/ran" ]
  status_is "$CID" running
}
