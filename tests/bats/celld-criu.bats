# shellcheck shell=bash disable=SC2016
# Stateful snapshots of instances (cellctl checkpoint, restore).  Where
# criu works (the VM of `make check-criu`: Debian 12's kernel 6.1 and criu
# 3.17) a counter in an instance is checkpointed and restored; where it
# cannot (kernels from 6.13 on with criu 3.17), checkpoint and restore must
# refuse at once with the runtime's one line and touch nothing.  The tests
# of each kind skip on the other, saying why.

bats_require_minimum_version 1.5.0

load celld-helpers
load criu-helpers
POOL_START=158000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || return 0
  export CGPARENT=/cell-test-criu-$$ BRG=ctc$$
  criu_probe
  celld_files
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 2
cgroup_parent = $CGPARENT
lxcfs = off
network.c.bridge = $BRG
network.c.subnet4 = 10.97.58.0/24
network.c.subnet6 = none
EOF
  # A btrfs pool (where mkfs.btrfs is): its disks are subvolumes, whose
  # writable layer a rename cannot move into the store.
  if command -v mkfs.btrfs >/dev/null; then
    export MNT=$D/btrfs
    truncate -s 1G "$D/pool.img"
    mkfs.btrfs -q "$D/pool.img"
    losetup -f --show "$D/pool.img" >"$D/loop"
    mkdir -p "$MNT"
    mount "$(cat "$D/loop")" "$MNT"
    echo "pool.fast.path = $MNT/cell" >>"$D/celld.conf"
  fi
  start_daemon
  ctl image import "$TEMPLATE" --name bb >/dev/null
}

teardown_file() {
  [ -n "${D:-}" ] || return 0
  celld_stop
  ctl image rm bb >/dev/null 2>&1 || true
  celld_leaks
  ip link del "$BRG" 2>/dev/null || true
  if [ -f "$D/loop" ]; then
    umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
    losetup -d "$(cat "$D/loop")" 2>/dev/null || true
    rm -f "$D/pool.img"
  fi
}

setup() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
}

teardown() {
  # A failed test's criu stopped at its gate lets go.
  rm -f "$D/late-core-gate"
  # What a failed pause test left: its paused child holds the instance,
  # and celld pauses each checkpoint.
  if [ -f "$D/paused" ]; then
    kill -9 "$(cat "$D/paused")" 2>/dev/null || true
    rm -f "$D/paused"
    restart_celld
  fi
  destroy_all
}

count() {
  inside "$1" cat /count 2>/dev/null || echo 0
}

count_passes() { # name N
  [ "$(count "$1")" -gt "$2" ]
}

# Each look is an exec, slow in the emulated VM: a deadline, not a count.
wait_count_passes() { # name N
  local end=$((SECONDS + 120))
  while [ "$SECONDS" -lt "$end" ]; do
    count_passes "$1" "$2" && return 0
    sleep 0.1
  done
  echo "the counter of $1 stays at $(count "$1")" >&2
  return 1
}

@test "checkpoint where criu cannot work fails at once naming criu, the kernel and why, and touches nothing" {
  needs_failing_criu
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  wait_count_passes k 2
  local version pid
  version=$("$CRIU_BIN" --version | sed -n 's/^Version: //p')
  pid=$(field k .pid)
  run -1 ctl checkpoint k
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"checkpoint: criu $version cannot work on kernel $(uname -r)"* ]]
  [[ "$output" == *"$CRIU_REASON"* ]]
  # Running as it was, not frozen (still counting); no snapshot, no images.
  [ "$(field k .state)" = running ]
  [ "$(field k .pid)" = "$pid" ]
  local at
  at=$(count k)
  wait_count_passes k "$at"
  [ "$(ctl snapshots k --json | jq length)" = 0 ]
  [ ! -e "$STATE/instances/k/checkpoints" ] ||
    [ -z "$(ls -A "$STATE/instances/k/checkpoints")" ]
  # --stop too: it goes on running.
  run -1 ctl checkpoint k --stop
  [[ "$output" == *"kernel $(uname -r)"* ]]
  [ "$(field k .state)" = running ]
  [ "$(field k .pid)" = "$pid" ]
}

@test "restore of a checkpoint where criu cannot work fails at once and leaves the disk as it was" {
  needs_failing_criu
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  inside k sh -c 'echo before > /note'
  ctl stop k --timeout 5
  ctl snapshot k s1 >/dev/null
  ctl start k
  inside k sh -c 'echo after > /note'
  ctl stop k --timeout 5
  # A checkpoint made where criu works (this one cannot make it): its
  # images, as celld keeps them.
  mkdir -p "$STATE/instances/k/checkpoints/s1"
  run -0 ctl snapshots k --json
  [ "$(echo "$output" | jq -r '.[0].stateful')" = true ]
  run -1 ctl restore k s1
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"restore: criu "*"cannot work on kernel $(uname -r)"* ]]
  # The newest snapshot by default: the same refusal.
  run -1 ctl restore k
  [[ "$output" == *"restore: criu "* ]]
  [ "$(field k .state)" = stopped ]
  ctl start k
  run -0 inside k cat /note
  [ "$output" = after ]
}

# The action script of celld's restores (cmd/celld-criu-action), as criu
# runs it: by the path of a link in the restore's work directory, with the
# step in CRTOOLS_SCRIPT_ACTION.  Here, where criu need not work, celld's
# side of the two fifos is played by the test.
@test "the restore's action script passes criu's other steps at once, and at post-setup-namespaces hands over the init's pid and returns celld's verdict" {
  local work=$BATS_TEST_TMPDIR/restore-work step
  mkdir "$work"
  ln -s "$(dirname "$CELLD")/celld-criu-action" "$work/net-hook"
  # No fifos yet: no other step looks for them.
  for step in pre-restore setup-namespaces post-restore network-unlock pre-resume post-resume; do
    CRTOOLS_SCRIPT_ACTION=$step CRTOOLS_INIT_PID=4242 timeout 10 "$work/net-hook"
  done
  [ "$(ls "$work")" = net-hook ]
  mkfifo "$work/net-request" "$work/net-answer"
  local verdict
  for verdict in ok failed; do
    (read -r pid <"$work/net-request" && echo "$pid" >"$work/got" &&
      echo "$verdict" >"$work/net-answer") &
    local celld_side=$!
    run timeout 10 env CRTOOLS_SCRIPT_ACTION=post-setup-namespaces \
      CRTOOLS_INIT_PID=4242 "$work/net-hook"
    wait "$celld_side"
    [ "$(cat "$work/got")" = 4242 ]
    if [ "$verdict" = ok ]; then
      [ "$status" -eq 0 ]
      [ -z "$output" ]
    else
      [ "$status" -eq 1 ]
      [ "$output" = "celld-criu-action: celld could not make the restored instance's network (its log says why)" ]
    fi
  done
  # celld's fifos gone: one line naming the one missing, at once.
  rm "$work/net-request"
  run timeout 10 env CRTOOLS_SCRIPT_ACTION=post-setup-namespaces \
    CRTOOLS_INIT_PID=4242 "$work/net-hook"
  [ "$status" -eq 1 ]
  [[ "$output" == "celld-criu-action: open \`$work/net-request\`"*"No such file"* ]]
  [ ! -e "$work/net-request" ]
}

@test "checkpoint of a stopped instance, of a nonexistent one, and with a taken name are refused" {
  ctl create k --image bb --init "$COUNTER"
  run -7 ctl checkpoint k
  [[ "$output" == *"not running"*"cellctl snapshot k"* ]]
  run -4 ctl checkpoint nosuch
  ctl snapshot k s1 >/dev/null
  ctl start k
  run -6 ctl checkpoint k s1
  [[ "$output" == *"exists"* ]]
  run -2 ctl checkpoint k --bogus
  [ "$(ctl snapshots k --json | jq length)" = 1 ]
}

@test "a counter in an instance keeps counting after checkpoint and restore" {
  needs_working_criu
  ctl create k --image bb --init "$COUNTER" --net c
  ctl start k
  wait_count_passes k 5
  local ip
  ip=$(field k '.networks[0].ipv4')
  # Without --stop it goes on running.
  run -0 ctl checkpoint k live
  [ "${lines[0]}" = live ]
  [[ "$output" == *"frozen for "*" ms"* ]]
  local at
  at=$(count k)
  wait_count_passes k "$at"
  run -0 ctl checkpoint k c1 --stop
  [ "$(field k .state)" = stopped ]
  [ "$(ctl snapshots k --json | jq -r '.[] | select(.name == "c1") | .stateful')" = true ]
  ctl restore k c1
  [ "$(field k .state)" = running ]
  at=$(count k)
  # Counting on from where it was (a new init would start at 1).
  [ "$at" -gt 5 ]
  wait_count_passes k "$at"
  # Its images, which criu reads as host root, are root's again: the
  # instance's root had them only while criu restored it.
  [ -z "$(find "$STATE/instances/k/checkpoints/c1" ! -uid 0)" ]
  [ "$(stat -c %a "$STATE/instances/k/checkpoints/c1")" = 700 ]
  [ "$(field k '.networks[0].ipv4')" = "$ip" ]
  run -0 inside k ip -4 addr show
  [[ "$output" == *"$ip"* ]]
}

# criu's root task looks up its first image (timens-0.img, absent here)
# in its new user namespace before criu has written that namespace's id
# maps: still host root there, with no rights over what the instance's
# root owns.  A loaded machine makes that order now and then; the preload
# (tests/helpers/late-open.c) makes it every time.
@test "a restore whose id maps criu writes late still finds its images (criu's root task looks them up before its maps)" {
  needs_working_criu
  local wrap=$D/late-open
  late_id_map_criu "$wrap"
  ctl create k --image bb --init "$COUNTER" --net c
  ctl start k
  wait_count_passes k 5
  ctl checkpoint k c1 --stop
  PATH="$wrap:$PATH" restart_celld
  run ctl restore k c1
  local at
  at=$(count k)
  ctl destroy k -f
  restart_celld
  [ "$status" -eq 0 ] || {
    echo "$output"
    false
  }
  # The restore was the preloaded criu's.
  grep -qx restore "$wrap/ran"
  # Counting on from where it was (a new init would start at 1).
  [ "$at" -gt 5 ]
}

# The pid of the process CELLD_TEST_PAUSE=WHERE paused (waited for).
paused_pid() { # WHERE
  local pid
  for _ in $(seq 300); do
    pid=$(sed -n "s/.*CELLD_TEST_PAUSE=$1: pausing (pid \([0-9]*\)).*/\1/p" "$D/celld.log" | tail -n1)
    if [ -n "$pid" ]; then
      echo "$pid"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

@test "attack: a resume, stop, exec or other op while criu dumps an instance is refused in one line; the dump's child killed leaves it counting" {
  needs_working_criu
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  wait_count_passes k 3
  # The dump's child pauses once criu has dumped the instance, which stays
  # frozen under it until its disk is copied.
  CELLD_TEST_PAUSE=checkpoint-dumped restart_celld
  : >"$D/celld.log"
  (exec "$CELLCTL" --socket "$SOCK" checkpoint k c1 >"$D/ck.out" 2>&1) &
  local client=$! child
  child=$(paused_pid checkpoint-dumped)
  echo "$child" >"$D/paused"
  [ "$child" != "$(cat "$D/celld.pid")" ]
  [ "$(ctl show k --json | jq -r .busy)" = checkpoint ]
  run -0 ctl show k
  [[ "$output" == *"busy         checkpoint"* ]]
  local op
  for op in "resume k" "pause k" "stop k" "restart k" "exec k -- true" \
    "snapshot k s" "clone k k2" "set k cpus=1" "rename k k3" "destroy k -f"; do
    # shellcheck disable=SC2086 # the op's words
    run --separate-stderr ctl $op
    # wrong-state; exec's own status when its command could not be run
    if [[ "$op" == exec* ]]; then [ "$status" -eq 125 ]; else [ "$status" -eq 7 ]; fi
    [ "${#stderr_lines[@]}" -eq 1 ]
    [ "$stderr" = "cellctl: instance \`k\`: criu is checkpointing it: try again when \`cellctl checkpoint\` has answered" ]
    # (and stop does not say it is stopping)
    [ -z "$output" ]
  done
  # Still frozen under the dump: the resume did not thaw it.
  local at
  at=$(cat "$STATE/instances/k/disk/upper/count")
  sleep 1
  [ "$(cat "$STATE/instances/k/disk/upper/count")" = "$at" ]
  # The child killed: the client hears, nothing is recorded, the instance
  # is thawed and takes ops again.
  kill -9 "$child"
  local status=0
  wait "$client" || status=$?
  [ "$status" -ne 0 ]
  [ "$(cat "$D/ck.out")" = "cellctl: checkpoint c1 of \`k\` failed: its process died" ]
  [ "$(ctl show k --json | jq -r .busy)" = null ]
  [ -z "$(ctl snapshots k --json | jq -r '.[].name')" ]
  [ -z "$(ls -A "$STATE/instances/k/checkpoints" 2>/dev/null)" ]
  wait_count_passes k "$at"
  rm "$D/paused"
  restart_celld
}

# No snapshot SNAP of NAME, stateful or plain, and no images of it; the
# same process PID, running (thawed), counting on.
checkpoint_dropped_counting_on() { # NAME SNAP PID
  [ "$(ctl snapshots "$1" --json | jq --arg s "$2" '[.[] | select(.name == $s)] | length')" = 0 ]
  [ ! -e "$STATE/instances/$1/checkpoints/$2" ]
  [ ! -e "$STATE/instances/$1/checkpoints/.tmp-$2" ]
  [ "$(field "$1" .state)" = running ]
  [ "$(field "$1" .pid)" = "$3" ]
  local at
  at=$(count "$1")
  wait_count_passes "$1" "$at"
}

@test "a celld killed in the middle of a checkpoint leaves no half-made stateful snapshot and no frozen instance" {
  needs_working_criu
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  wait_count_passes k 2
  local pid
  pid=$(field k .pid)
  # celld stops for a minute between the images and the snapshot of the
  # disk, the instance frozen: it is killed there.
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  # (The log's lines of earlier tests are not this pause's.)
  : >"$D/celld.log"
  CELLD_TEST_PAUSE=checkpoint start_daemon
  ctl checkpoint k c1 >/dev/null 2>&1 &
  local client=$! end=$((SECONDS + 120))
  until grep -q "CELLD_TEST_PAUSE=checkpoint: pausing" "$D/celld.log" ||
    [ "$SECONDS" -ge "$end" ]; do
    sleep 0.1
  done
  grep -q "CELLD_TEST_PAUSE=checkpoint: pausing" "$D/celld.log"
  kill -9 "$(cat "$D/celld.pid")"
  wait "$client" || true
  start_daemon
  checkpoint_dropped_counting_on k c1 "$pid"
}

# criu is celld's grandchild: a celld killed while criu dumps takes its
# child with it, not criu, which would break the instance's processes if
# it died with its parasite code in them.  That criu dumps on and, at its
# end, freezes the cgroup again, as it found it.  The preload stops criu in
# the middle of its dump, the processes seized, until the gate goes.
@test "attack: a celld killed while criu dumps: the next one holds the instance until that criu ends, then thaws it and drops its images" {
  needs_working_criu
  local wrap=$D/late-core gate=$D/late-core-gate
  late_open_criu "$wrap" core- "$gate"
  touch "$gate"
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  wait_count_passes k 2
  local pid
  pid=$(field k .pid)
  PATH="$wrap:$PATH" restart_celld
  ctl checkpoint k c1 >/dev/null 2>&1 &
  local client=$!
  for _ in $(seq 1200); do
    [ -e "$wrap/waiting" ] && break
    sleep 0.1
  done
  [ -e "$wrap/waiting" ]
  kill -9 "$(cat "$D/celld.pid")"
  wait "$client" || true
  : >"$D/celld.log"
  start_daemon
  # Held while that criu works: a resume would thaw what it dumps.
  [ "$(field k .busy)" = criu ]
  run ctl resume k
  [ "$status" -eq 7 ]
  [[ "$output" == *"a criu an earlier celld started still works on it"* ]]
  [ -d "$STATE/instances/k/checkpoints/.tmp-c1" ]
  rm "$gate"
  for _ in $(seq 1200); do
    [ "$(field k .busy)" = null ] && break
    sleep 0.1
  done
  [ "$(field k .busy)" = null ]
  grep -q "k: the criu an earlier celld started has ended" "$D/celld.log"
  # It dumped (the preloaded criu), and what it left went: no snapshot
  # c1, no images; the same process, thawed, counting on.
  grep -qx dump "$wrap/ran"
  checkpoint_dropped_counting_on k c1 "$pid"
}

# A btrfs subvolume's writable layer cannot be renamed into the store: the
# dump's child copies it while criu holds the instance, and the instance,
# stopped, keeps its own (the loop copies nothing).
@test "checkpoint --stop of an instance on a btrfs pool: the dump's child copies its layer; the restore counts on with its files" {
  needs_working_criu
  [ -f "$D/loop" ] || skip "no mkfs.btrfs (btrfs-progs)"
  ctl create k --image bb --pool fast --init "$COUNTER"
  ctl start k
  inside k sh -c 'echo kept > /note'
  wait_count_passes k 3
  ctl checkpoint k c1 --stop
  [ "$(field k .state)" = stopped ]
  [ "$(cat "$MNT/cell/instances/k/disk/upper/note")" = kept ]
  [ "$(ctl snapshots k --json | jq -r '.[] | select(.name == "c1") | .stateful')" = true ]
  ctl restore k c1
  local at
  at=$(count k)
  [ "$at" -gt 3 ]
  wait_count_passes k "$at"
  run -0 inside k cat /note
  [ "$output" = kept ]
}

# lines_pass NAME N: the server has received more than N lines.
lines_pass() {
  [ "$(inside "$1" sh -c 'wc -l < /received' 2>/dev/null || echo 0)" -gt "$2" ]
}

wait_lines_pass() { # name N
  local end=$((SECONDS + 120))
  while [ "$SECONDS" -lt "$end" ]; do
    lines_pass "$1" "$2" && return 0
    sleep 0.1
  done
  echo "the server $1 received no more than $2 lines" >&2
  return 1
}

@test "an established TCP connection from another instance on the network survives checkpoint --stop and restore" {
  needs_working_criu
  ctl create srv --image bb --net c \
    --init "/bin/sh -c 'exec </dev/null >/dev/null 2>&1; sleep 1000000 | nc -l -p 7000 > /received'"
  ctl start srv
  local ip
  ip=$(field srv '.networks[0].ipv4')
  # One connection for ever: numbered lines, 10 a second.  A new
  # connection would need a new server (nc -l takes one; its stdin, a
  # pipe that stays open, keeps it from ending the connection).
  ctl create cli --image bb --net c --init "/bin/sh -c 'exec </dev/null >/dev/null 2>&1; sleep 3; i=0; while :; do i=\$((i+1)); echo \$i; sleep 0.1; done | nc $ip 7000'"
  ctl start cli
  wait_lines_pass srv 5
  local cli_pid
  cli_pid=$(field cli .pid)
  ctl checkpoint srv c1 --stop >/dev/null
  ctl restore srv c1
  local at
  at=$(inside srv sh -c 'wc -l < /received')
  wait_lines_pass srv $((at + 5))
  # The same connection: every line once, in order, none lost.
  run -0 inside srv awk 'NR != $1 { print "line " NR ": " $0 }' /received
  [ -z "$output" ]
  [ "$(field cli .pid)" = "$cli_pid" ]
  [ "$(field cli .state)" = running ]
}
