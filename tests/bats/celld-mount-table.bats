# shellcheck shell=bash disable=SC2016
# celld's mount table stays as it was however many instances run: each
# instance's root (its idmapped layers, its idmapped disk, the overlay) is
# handed to its container as a detached mount and leaves nothing in the
# namespace that every new container copies (which made each start slower
# than the last).  The root lives in the container's namespace alone: it
# survives a kill -9 of celld, and a stop, start or destroy after that
# leaves nothing behind.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=72000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-mount-table-$$
  celld_files
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 2
cgroup_parent = $CGPARENT
lxcfs = off
EOF
  start_daemon
  ctl image import "$TEMPLATE" --name bb >/dev/null
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  ctl image rm bb >/dev/null 2>&1 || true
  celld_leaks
}

teardown() {
  destroy_all
}

SLEEP="/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"

# The mounts under the state dir in celld's own mount namespace.
celld_state_mounts() {
  grep -c " $STATE/" "/proc/$(cat "$D/celld.pid")/mountinfo" || true
}

@test "running instances leave no mount in celld's namespace, nor in each other's" {
  ctl create src --image bb --init "$SLEEP"
  for i in 1 2 3; do
    ctl clone src "c$i" --start
  done
  [ "$(ctl list --json | jq '[.[] | select(.state == "running")] | length')" = 3 ]
  [ "$(celld_state_mounts)" = 0 ]
  # Each has its root: an overlay, writable, its own.
  run -0 inside c2 sh -c 'echo two >/mine && cat /mine'
  [ "$output" = two ]
  run -1 inside c1 test -e /mine
  run -0 inside c2 awk '$5 == "/" {print $9}' /proc/self/mountinfo
  [ "$output" = overlay ]
  # and nothing of the others' mounts.
  run -0 inside c2 cat /proc/self/mountinfo
  [[ "$output" != *"/instances/c1/"* ]]
  [[ "$output" != *"/instances/c3/"* ]]
  ctl stop c2 --timeout 5
  ctl start c2
  [ "$(celld_state_mounts)" = 0 ]
  run -0 inside c2 cat /mine
  [ "$output" = two ]
}

@test "kill -9 of celld: the roots live on in the instances, and stop, start, destroy leave nothing" {
  ctl create a --image bb --init "$SLEEP"
  ctl start a
  inside a sh -c 'echo kept >/note'
  kill -9 "$(cat "$D/celld.pid")"
  start_daemon
  [ "$(field a .state)" = running ]
  [ "$(celld_state_mounts)" = 0 ]
  run -0 inside a cat /note
  [ "$output" = kept ]
  ctl stop a --timeout 5
  [ "$(celld_state_mounts)" = 0 ]
  ctl start a
  run -0 inside a cat /note
  [ "$output" = kept ]
  ctl destroy a -f
  [ "$(celld_state_mounts)" = 0 ]
  [ ! -e "$STATE/instances/a" ]
  [ -z "$(pool_pids)" ]
}

@test "attack: an instance's root remounts its root without nodev" {
  ctl create t --image bb --init "$SLEEP"
  ctl start t
  run inside t mount -o remount,bind,dev /
  [ "$status" -ne 0 ]
  run -0 inside t awk '$5 == "/" {print $6}' /proc/self/mountinfo
  [[ ",$output," == *",nodev,"* ]]
}
