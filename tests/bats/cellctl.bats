# shellcheck shell=bash disable=SC2016
# cellctl's exit statuses (cellctl --help): one per reason celld gives for
# a refusal (its "code"), and its own for usage and connection errors;
# against a private celld (its own state dir, socket, id pool and cgroup
# parent), started once for this file.

bats_require_minimum_version 1.5.0

load celld-helpers
# Clear of the other celld test files' pools (celld-net.bats ends below
# 24000000), whose processes the leak check would otherwise take for ours.
POOL_START=30000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-cellctl-$$
  celld_files
  cat >"$D/celld.conf" <<EOF
socket_mode = 0600
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 5
cgroup_parent = $CGPARENT
EOF
  start_daemon
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  celld_leaks
}

# A refusal is one line on stderr: "cellctl: <why>".
one_error_line() {
  [ "${#lines[@]}" -eq 1 ]
  [[ "${lines[0]}" == "cellctl: "* ]]
}

@test "--help documents the exit statuses" {
  run -0 ctl --help
  for s in 0 1 2 3 4 5 6 7 8 125; do
    [[ "$output" == *$'\n'"  $s "* ]]
  done
  [[ "$output" == *"not found"* ]]
  [[ "$output" == *"wrong state"* ]]
}

@test "an instance that does not exist: 4" {
  run -4 ctl show nosuch
  one_error_line
  run -4 ctl start nosuch
  one_error_line
}

@test "a name that is taken: 6" {
  run -0 ctl create taken --template "$TEMPLATE"
  run -6 ctl create taken --template "$TEMPLATE"
  one_error_line
  run -0 ctl destroy taken
}

@test "destroying a running instance without -f: 7" {
  run -0 ctl create busy --template "$TEMPLATE" --init "/bin/sleep 100000"
  run -0 ctl start busy
  run -7 ctl destroy busy
  one_error_line
  [ "$(field busy .state)" = running ]
  run -0 ctl destroy busy -f
}

@test "cellctl's own argument errors: 2, before any request" {
  run -2 ctl create x --memory lots --template "$TEMPLATE"
  [[ "${lines[0]}" == 'cellctl: --memory `lots`'* ]]
  run -2 ctl show
  run -2 ctl stop x --timeout forever
  run -2 ctl exec x
  run -2 ctl console x extra
  # No daemon is asked: none is needed.
  run -2 "$CELLCTL" --socket "$D/nosocket" start
}

@test "no celld at the socket: 3" {
  run -3 "$CELLCTL" --socket "$D/nosocket" list
  one_error_line
  [[ "$output" == *"$D/nosocket"* ]]
  # A file that is not a socket.
  touch "$D/notasocket"
  run -3 "$CELLCTL" --socket "$D/notasocket" show x
  one_error_line
}

@test "an unknown verb: 2 and one line naming it" {
  run -2 ctl frobnicate x
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "cellctl: "*"frobnicate"* ]]
}
