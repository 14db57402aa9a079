# shellcheck shell=bash disable=SC2016
# Deep stacks of snapshots: past 16 layers of its own, a stopped
# instance's layers are flattened into one before its next snapshot
# (whiteouts and opaque directories kept), its older snapshots keep the
# layers they name; and once every instance, snapshot and image is gone,
# the store and the pool are empty.

bats_require_minimum_version 1.5.0

load celld-helpers
# (tests/fault/celld-crash.bats has the same pool: bats files run one at
# a time.)
POOL_START=74000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-deep-$$
  celld_files
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
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
  celld_leaks
}

SLEEP="/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"
own_layers() { jq '.own_layers | length' "$STATE/instances/$1.json"; }

@test "thirty snapshots in a row: at most 16 layers of its own, the instance starts with its files right, an old snapshot restores" {
  ctl create d --image bb --init "$SLEEP"
  up=$STATE/instances/d/disk/upper
  # Between snapshots, what the instance would write, straight into its
  # writable layer (it is stopped): a new file each time, one file
  # rewritten, every third time the file before deleted (a whiteout).
  for i in $(seq 1 30); do
    echo "$i" >"$up/n$i"
    echo "$i" >"$up/last"
    if [ $((i % 3)) = 0 ]; then
      rm -f "$up/n$((i - 1))"
      mknod "$up/n$((i - 1))" c 0 0
    fi
    if [ "$i" = 20 ]; then
      # A file of the image deleted, a directory of it replaced (opaque).
      mknod "$up/linuxrc" c 0 0
      mkdir "$up/home"
      python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")' "$up/home"
      echo mine >"$up/home/only"
    fi
    ctl snapshot d "s$i" >/dev/null
    [ "$(own_layers d)" -le 16 ]
  done
  grep -q "flattened into one" "$D/celld.log"
  ctl start d
  run -0 inside d cat /last
  [ "$output" = 30 ]
  expected=$(for i in $(seq 1 30); do [ $((i % 3)) = 2 ] || echo "n$i"; done | LC_ALL=C sort | xargs)
  run -0 inside d sh -c 'cd / && ls -d n* | sort | xargs'
  [ "$output" = "$expected" ]
  run -0 inside d ls /home
  [ "$output" = only ]
  run -1 inside d test -e /linuxrc
  run -0 inside d cat /etc/passwd
  ctl stop d --timeout 5
  # A snapshot from before the flattening keeps its own layers.
  ctl restore d s5
  ctl start d
  run -0 inside d cat /last
  [ "$output" = 5 ]
  run -0 inside d sh -c 'cd / && ls -d n* | sort | xargs'
  [ "$output" = "n1 n3 n4 n5" ]
  run -0 inside d ls /home
  [ "$output" = user ]
  ctl stop d --timeout 5
}

@test "once every instance, snapshot and image is destroyed, the pool and the store are empty" {
  ctl create e --image bb
  echo one >"$STATE/instances/e/disk/upper/note"
  ctl snapshot e s1
  ctl clone e e2
  ctl start e2
  ctl snapshot e2 running-snap
  ctl stop e2 --timeout 5
  ctl rename e2 e3
  destroy_all
  ctl image rm bb
  [ -z "$(ls -A "$STATE/instances")" ]
  [ -z "$(ls -A "$STATE/images/layers")" ]
  [ -z "$(ls -A "$STATE/images/images")" ]
  [ -z "$(ls -A "$STATE/images/tmp")" ]
  ! grep -q " $STATE/" /proc/self/mountinfo
  ctl image import "$TEMPLATE" --name bb >/dev/null
}
