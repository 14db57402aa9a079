#!/usr/bin/env bats
# shellcheck disable=SC2016 # container scripts are single-quoted on purpose
# cell exec: a new process in a running container, seen from inside it and
# from the host.

load helpers

# A running container: its init leaves a mark in its own /dev/shm (a tmpfs
# only the container sees), says it is ready, and sleeps as pid 1.
start_container() {
  setup_bundle sh -c 'echo from-init > /dev/shm/mark; touch /host/ready; exec sleep 1000'
  "$@"
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/ready"
  INIT_PID=$(container_pid "$CID")
}

# The namespaces a process can be in, as the host's kernel has them.
namespace_types() {
  local n
  for n in cgroup ipc mnt net pid time user uts; do
    [ -e "/proc/self/ns/$n" ] && echo "$n"
  done
}

expect_same_namespaces() {
  local pid=$1 n
  for n in $(namespace_types); do
    [ "$(ns_of "$pid" "$n")" = "$(ns_of "$INIT_PID" "$n")" ] || {
      echo "$n of $pid: $(ns_of "$pid" "$n"), of the init: $(ns_of "$INIT_PID" "$n")" >&2
      return 1
    }
  done
}

@test "exec runs in every namespace of the container" {
  start_container
  # The container has namespaces of its own, so the comparison can fail.
  [ "$(ns_of "$INIT_PID" net)" != "$(ns_of $$ net)" ]
  [ "$(ns_of "$INIT_PID" mnt)" != "$(ns_of $$ mnt)" ]
  # shellcheck disable=SC2046 # one word per namespace type
  run -0 cell exec "$CID" sh -c 'for n in "$@"; do echo "$n $(readlink /proc/self/ns/$n)"; done' \
    sh $(namespace_types)
  [ "${#lines[@]}" -ge 7 ]
  for line in "${lines[@]}"; do
    n=${line%% *}
    [ "${line#* }" = "$(ns_of "$INIT_PID" "$n")" ]
  done
}

@test "exec sees the container's filesystem and is not its pid 1" {
  start_container
  run -0 cell exec "$CID" sh -c 'cat /dev/shm/mark; echo $$; tr "\0" " " </proc/1/cmdline; echo; test -d /host && echo host-mounted'
  [ "${lines[0]}" = from-init ]
  [ "${lines[1]}" -gt 1 ]
  [ "${lines[2]}" = "sleep 1000 " ]
  [ "${lines[3]}" = host-mounted ]
  # The host's view: the mark is not on our /dev/shm.
  [ ! -e /dev/shm/mark ] || [ "$(cat /dev/shm/mark)" != from-init ]
}

@test "exec exits with the process's exit code" {
  start_container
  run -3 cell exec "$CID" sh -c 'echo out; echo err >&2; exit 3'
  [[ "$output" == *out* ]]
  [[ "$output" == *err* ]]
  run -0 cell exec "$CID" true
  # The container goes on running.
  [ "$(container_status "$CID")" = running ]
}

@test "exec exits with 128+N when the process is killed by signal N" {
  start_container
  run -137 cell exec "$CID" sh -c 'kill -KILL $$'
  run -143 cell exec "$CID" sh -c 'kill -TERM $$'
}

@test "exec: SIGTERM to cell exec reaches the process" {
  start_container
  "$CELL" --root "$ROOT" exec "$CID" sh -c \
    'trap "echo trapped; exit 7" TERM; touch /host/exec-ready; while :; do sleep 0.05; done' \
    </dev/null >"$BATS_TEST_TMPDIR/out" 2>&1 3>&- &
  runner=$!
  wait_for_file "$HOSTDIR/exec-ready"
  kill -TERM "$runner"
  rc=0
  wait "$runner" || rc=$?
  [ "$rc" -eq 7 ]
  [ "$(cat "$BATS_TEST_TMPDIR/out")" = trapped ]
}

@test "exec does not pass the runtime's fds to the process" {
  start_container
  # fds 3 (bats') and 5 (ours) are open in the runtime.  (The shell
  # lists its own fds: `exit` keeps it from exec'ing ls.)
  run -0 cell exec "$CID" sh -c 'ls /proc/$$/fd; exit 0' 5<"$BUNDLE/config.json"
  [ "$(xargs <<<"$output")" = "0 1 2" ]
}

@test "exec --preserve-fds 1 passes fd 3 and only it" {
  start_container
  echo "through fd 3" >"$BATS_TEST_TMPDIR/three"
  run -0 cell exec --preserve-fds 1 "$CID" sh -c 'cat <&3; ls /proc/$$/fd; exit 0' \
    3<"$BATS_TEST_TMPDIR/three" 4<"$BUNDLE/config.json"
  [ "${lines[0]}" = "through fd 3" ]
  [ "$(xargs <<<"${lines[*]:1}")" = "0 1 2 3" ]
}

@test "exec -e adds and overrides variables of process.env" {
  start_container
  run -0 cell exec -e FOO=bar -e PATH=/bin:/sbin -e 'SPACED=a b' "$CID" \
    sh -c 'echo "$FOO|$PATH|$SPACED|$TERM|${CELL_TEST_MARK:+marked}"'
  [ "$output" = "bar|/bin:/sbin|a b|xterm|marked" ]
  # (runc refuses -e and --env in one command line.)
  run -0 cell exec --env FOO=long "$CID" sh -c 'echo "$FOO|$PATH"'
  [ "$output" = "long|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" ]
}

@test "exec --cwd sets the working directory" {
  start_container
  run -0 cell exec --cwd /usr/bin "$CID" pwd
  [ "$output" = /usr/bin ]
  run -0 cell exec "$CID" pwd
  [ "$output" = / ]
}

@test "exec -u uid:gid and --additional-gids" {
  start_container
  run -0 cell exec -u 1000:100 --additional-gids 5 --additional-gids 1001 "$CID" \
    sh -c 'id -u; id -g; grep "^Groups:" /proc/self/status'
  [ "${lines[0]}" = 1000 ]
  [ "${lines[1]}" = 100 ]
  read -ra groups <<<"${lines[2]#Groups:}"
  [ "${groups[*]}" = "5 1001" ]
  run -0 cell exec --user 4242 "$CID" sh -c 'id -u; id -g'
  [ "${lines[0]}" = 4242 ]
  [ "${lines[1]}" = 0 ]
}

cap_sys_admin_effective() {
  local hex
  hex=$(cell exec "$@" "$CID" sh -c 'grep "^CapEff:" /proc/self/status') || return 2
  hex=${hex##*[[:space:]]}
  (((0x$hex >> 21) & 1))
}

@test "exec --cap adds a capability" {
  start_container
  run ! cap_sys_admin_effective
  [ "$status" -eq 1 ]
  cap_sys_admin_effective --cap CAP_SYS_ADMIN
}

@test "exec --no-new-privs sets no_new_privs" {
  start_container update_config '.process.noNewPrivileges = false'
  run -0 cell exec "$CID" grep '^NoNewPrivs:' /proc/self/status
  [ "$(xargs <<<"$output")" = "NoNewPrivs: 0" ]
  run -0 cell exec --no-new-privs "$CID" grep '^NoNewPrivs:' /proc/self/status
  [ "$(xargs <<<"$output")" = "NoNewPrivs: 1" ]
}

@test "exec -d --pid-file: the process runs on, in the container's cgroup" {
  start_container
  [ "$(cat "/proc/$INIT_PID/cgroup")" != "$(cat /proc/self/cgroup)" ]
  cell_detached exec -d --pid-file "$BATS_TEST_TMPDIR/exec.pid" "$CID" sleep 999
  pid=$(cat "$BATS_TEST_TMPDIR/exec.pid")
  [ "$pid" -gt 0 ]
  kill -0 "$pid"
  [ "$(tr '\0' ' ' <"/proc/$pid/cmdline")" = "sleep 999 " ]
  [ "$(cat "/proc/$pid/cgroup")" = "$(cat "/proc/$INIT_PID/cgroup")" ]
  expect_same_namespaces "$pid"
  # cell ps lists it among the container's processes.
  run -0 cell ps --format json "$CID"
  jq -e --argjson pid "$pid" 'index($pid)' <<<"$output"
}

@test "exec --cgroup: the process joins an existing sub-cgroup of the container" {
  cell_only
  start_container
  # The container's cgroup in every hierarchy, as its init sees it from the
  # host; make the sub-cgroup "sub" below each.
  while IFS=: read -r _ ctl path; do
    dir=/sys/fs/cgroup/${ctl#name=}
    [ -z "$ctl" ] && dir=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
    [ -d "$dir$path" ] || continue
    mkdir -p "$dir$path/sub"
    # a v1 cpuset cgroup takes no task before it has cpus and mems
    for f in cpuset.cpus cpuset.mems; do
      [ -f "$dir$path/sub/$f" ] && cat "$dir$path/$f" >"$dir$path/sub/$f"
    done
  done <"/proc/$INIT_PID/cgroup"
  cell_detached exec -d --cgroup sub --pid-file "$BATS_TEST_TMPDIR/exec.pid" "$CID" sleep 999
  pid=$(cat "$BATS_TEST_TMPDIR/exec.pid")
  # Every hierarchy of the exec'd process ends in /sub, under the init's.
  paste -d' ' "/proc/$INIT_PID/cgroup" "/proc/$pid/cgroup" | while read -r init exec; do
    [ "$exec" = "$init/sub" ] || [ "$exec" = "${init%/}/sub" ]
  done
  # A sub-cgroup that does not exist is a clear error.
  run ! cell exec --cgroup nosuch "$CID" true
  expect_message "nosuch"
  run ! cell exec --cgroup ../escape "$CID" true
}

@test "exec --process FILE: args, env, cwd and user from a process JSON" {
  start_container
  cat >"$BATS_TEST_TMPDIR/process.json" <<'EOF'
{
  "terminal": false,
  "user": {"uid": 1234, "gid": 567},
  "args": ["sh", "-c", "echo \"$(id -u):$(id -g) $(pwd) $GREETING\""],
  "env": ["PATH=/bin:/usr/bin", "GREETING=hello from json"],
  "cwd": "/etc"
}
EOF
  run -0 cell exec --process "$BATS_TEST_TMPDIR/process.json" "$CID"
  [ "$output" = "1234:567 /etc hello from json" ]
}

@test "exec into a user-namespaced container is root of its user namespace" {
  requires_namespace user
  start_container use_user_namespace
  run -0 cell exec "$CID" sh -c 'id -u; id -g; cat /proc/self/uid_map; readlink /proc/self/ns/user'
  [ "${lines[0]}" = 0 ]
  [ "${lines[1]}" = 0 ]
  [ "$(xargs <<<"${lines[2]}")" = "0 100000 65536" ]
  [ "${lines[3]}" = "$(ns_of "$INIT_PID" user)" ]
  cell_detached exec -d --pid-file "$BATS_TEST_TMPDIR/exec.pid" "$CID" sleep 999
  pid=$(cat "$BATS_TEST_TMPDIR/exec.pid")
  # Seen from the host, it runs as the mapped uid.
  [ "$(stat -c %u "/proc/$pid")" = 100000 ]
  expect_same_namespaces "$pid"
}

@test "exec in an unknown container fails" {
  setup_bundle true
  run ! cell exec "$CID-nope" true
  expect_message "$CID-nope"
}

@test "exec in a stopped container fails" {
  setup_bundle true
  cell_detached create "$CID"
  cell start "$CID"
  wait_for_status "$CID" stopped
  run ! cell exec "$CID" true
  expect_message stopped
}

@test "exec of a missing command fails with a message" {
  start_container
  run ! cell exec "$CID" /no/such/program
  expect_message /no/such/program
  run ! cell exec "$CID" no-such-program
  expect_message no-such-program
  run ! cell exec "$CID"
  expect_message "missing command"
  # The container is unharmed.
  run -0 cell exec "$CID" cat /dev/shm/mark
}

@test "exec in a paused container fails" {
  "$CELL" pause --help >/dev/null 2>&1 || skip "$(basename "$CELL") has no pause"
  start_container
  cell pause "$CID"
  run ! cell exec "$CID" true
  expect_message paused
  cell resume "$CID"
  run -0 cell exec "$CID" true
}
