# shellcheck shell=bash disable=SC2016
# Live migration of an instance between two cellds on one machine (two
# state dirs, two sockets): cellctl migrate NAME --to "cellctl --socket B
# receive".  Where criu works (the VM of `make check-criu`) a counter goes
# on counting on the target and the source has the instance no more, its
# memory copied in rounds while it ran and only what changed since sent
# frozen; the layers the target has are not sent again; a stream cut in
# mid-migration, or the target killed once the rounds are done, leaves the
# source running and the target with nothing; where criu cannot work,
# migrate refuses before either side is touched.  The tests of each kind
# skip on the other, saying why.

bats_require_minimum_version 1.5.0

load celld-helpers
load criu-helpers
POOL_START=166000000
POOL_COUNT=$((65536 * 8))
# The target's pool covers the source's (an instance keeps its ids when it
# migrates), and as much again.
POOL_COUNT_B=$((POOL_COUNT * 2))

# The configuration of either celld: its own pool and cgroup parent, and
# network `m` on the bridge both share.
migrate_conf() { # POOL_START POOL_COUNT CGROUP_PARENT
  cat <<EOF2
pool_start = $1
pool_count = $2
range_size = 65536
stop_timeout = 2
cgroup_parent = $3
lxcfs = off
network.m.bridge = $BRM
network.m.subnet4 = 10.98.7.0/24
network.m.subnet6 = none
network.m.keep_bridge = yes
network.m.dnsmasq = no
EOF2
}

setup_file() {
  [ "$(id -u)" = 0 ] || return 0
  export CGPARENT=/cell-test-mig-$$ CGPARENT_B=/cell-test-migb-$$
  # The bridge both cellds' network `m` shares, as two hosts' would a LAN.
  export BRM=ctm$$
  criu_probe
  celld_files
  migrate_conf "$POOL_START" "$POOL_COUNT" "$CGPARENT" >"$D/celld.conf"
  start_daemon
  ctl image import "$TEMPLATE" --name bb >/dev/null
  # The target: its own state, socket, pool and cgroup parent.
  export DB=$D/b
  export STATE_B=$DB/state SOCK_B=$DB/celld.sock
  mkdir -p "$STATE_B"
  migrate_conf "$POOL_START" "$POOL_COUNT_B" "$CGPARENT_B" >"$DB/celld.conf"
  start_target
}

start_target() { # [VAR=VALUE...]: its environment's additions
  env "$@" "$CELLD" --foreground --debug --config "$DB/celld.conf" \
    --state-dir "$STATE_B" --socket "$SOCK_B" 2>>"$DB/celld.log" 3>&- &
  echo $! >"$DB/celld.pid"
  disown $!
  for _ in $(seq 500); do
    ctlb list >/dev/null 2>&1 && return 0
    sleep 0.02
  done
  cat "$DB/celld.log" >&2
  return 1
}

teardown_file() {
  [ -n "${D:-}" ] || return 0
  for n in $(ctlb list --json 2>/dev/null | jq -r '.[].name'); do
    ctlb destroy "$n" -f || true
  done
  kill "$(cat "$DB/celld.pid")" 2>/dev/null || true
  celld_stop
  ctl image rm bb >/dev/null 2>&1 || true
  celld_leaks
  rmdir /sys/fs/cgroup"$CGPARENT_B" 2>/dev/null || true
  # Kept by both (keep_bridge): gone with the file's last instance.
  ip link del "$BRM" 2>/dev/null || true
  nft delete table bridge "cell-$BRM" 2>/dev/null || true
}

setup() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
}

teardown() {
  destroy_all
  # A test that killed the target's celld and failed before its restart.
  kill -0 "$(cat "$DB/celld.pid")" 2>/dev/null || start_target
  for n in $(ctlb list --json 2>/dev/null | jq -r '.[].name'); do
    ctlb destroy "$n" -f || true
  done
}

ctlb() {
  "$CELLCTL" --socket "$SOCK_B" "$@"
}

TO() {
  echo "$CELLCTL --socket $SOCK_B receive"
}

# COUNTER (celld-helpers.bash) beside a process holding 32 MiB of memory
# it wrote once, as a program's data; it forks no more (the counter's forks are small: a fork
# of the holder would be a new process of 32 MiB for criu), and the count
# begins once the memory is held.
MEMORY_COUNTER="/bin/sh -c 'exec </dev/null >/dev/null 2>&1; (m=\$(yes 0123456789abcdef | head -c 33554432); : >/held; while :; do sleep 100000; done) & while [ ! -e /held ]; do sleep 0.1; done; i=0; while :; do i=\$((i+1)); echo \$i > /count.new; mv /count.new /count; sleep 0.1; done'"

# (A deadline on each look: an instance left frozen would hang it.)
count() { # ctl|ctlb name
  local sock=$SOCK
  [ "$1" = ctlb ] && sock=$SOCK_B
  timeout 20 "$CELLCTL" --socket "$sock" exec "$2" -- cat /count </dev/null 2>/dev/null ||
    echo 0
}

wait_count_passes() { # ctl-function name N
  local end=$((SECONDS + 120))
  while [ "$SECONDS" -lt "$end" ]; do
    [ "$(count "$1" "$2")" -gt "$3" ] && return 0
    sleep 0.1
  done
  echo "the counter of $2 stays at $(count "$1" "$2")" >&2
  return 1
}

# The source's k runs on: the same init, still counting.
source_runs_on() { # PID
  [ "$(field k .state)" = running ]
  [ "$(field k .pid)" = "$1" ]
  local at
  at=$(count ctl k)
  wait_count_passes ctl k "$at"
}

# Nothing of a migration on the target: no instance, no work left in its
# store's tmp/, no instance directory.
target_is_clean() {
  [ "$(ctlb list --json | jq length)" = 0 ]
  [ -z "$(ls -A "$STATE_B/images/tmp" 2>/dev/null)" ]
  [ -z "$(ls -A "$STATE_B/instances" 2>/dev/null)" ]
}

@test "migrate: bad input is refused in one line before anything is touched" {
  run -2 ctl migrate k
  [[ "$output" == *"--to CMD"* ]]
  run -4 ctl migrate nosuch --to "$(TO)"
  ctl create k --image bb --init "$COUNTER"
  run -7 ctl migrate k --to "$(TO)"
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"not running"* ]]
  [ "$(field k .state)" = created ]
  target_is_clean
}

@test "migrate where criu cannot work fails at once naming criu and the kernel, and touches neither side" {
  needs_failing_criu
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  wait_count_passes ctl k 2
  local version pid
  version=$("$CRIU_BIN" --version | sed -n 's/^Version: //p')
  pid=$(field k .pid)
  run -1 ctl migrate k --to "$(TO)"
  [[ "${lines[0]}" == *"migrate: criu $version cannot work on kernel $(uname -r)"* ]]
  source_runs_on "$pid"
  [ ! -e "$STATE/instances/k/checkpoints" ] ||
    [ -z "$(ls -A "$STATE/instances/k/checkpoints")" ]
  target_is_clean
}

# What a source says first, written by hand: the target's refusals come
# before it makes anything, and before its own criu is asked.
hello() { # name networks-json [id_start]
  printf '{"cell_migrate":3,"name":"%s","id_start":%s,"id_count":65536,"networks":%s,"layers":[]}\n' \
    "$1" "${3:-$POOL_START}" "$2"
}

@test "receive refuses a name taken on the target and a network it lacks, once, and makes nothing" {
  ctlb image import "$TEMPLATE" --name bb >/dev/null
  ctlb create k --image bb
  run -1 --separate-stderr ctlb receive < <(hello k '[]')
  # One word for the source, the refusal, not two.
  [ "${#lines[@]}" -eq 1 ]
  [ "$(echo "$output" | jq -r .ok)" = false ]
  [[ "$(echo "$output" | jq -r .error)" == *"instance \`k\` already exists on the target"* ]]
  [[ "$stderr" == *"instance \`k\` already exists on the target"* ]]
  run -1 --separate-stderr ctlb receive < <(hello k2 '["nonet"]')
  [[ "$stderr" == *"the target has no network \`nonet\`"* ]]
  ctlb destroy k
  ctlb image rm bb >/dev/null
  target_is_clean
}

@test "receive refuses ids outside the target's pool or an instance's there at the handshake, and makes nothing" {
  # Past the end of the target's pool: refused in the target's first
  # answer, before the source sends a layer or a page.
  local past=$((POOL_START + POOL_COUNT_B))
  run -1 --separate-stderr ctlb receive < <(hello k '[]' "$past")
  [ "${#lines[@]}" -eq 1 ]
  [ "$(echo "$output" | jq -r .ok)" = false ]
  [[ "$(echo "$output" | jq -r .error)" == *"ids $past..$((past + 65535)) are outside the target's pool $POOL_START..$((past - 1)): give the target's celld.conf a pool_start and pool_count that cover them"* ]]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  # Below its start.
  run -1 --separate-stderr ctlb receive < <(hello k '[]' $((POOL_START - 65536)))
  [[ "$stderr" == *"outside the target's pool"* ]]
  # The range of an instance of the target's.
  ctlb image import "$TEMPLATE" --name bb >/dev/null
  ctlb create t --image bb
  local ids
  ids=$(ctlb show t --json | jq -r .id_start)
  run -1 --separate-stderr ctlb receive < <(hello k '[]' "$ids")
  [[ "$stderr" == *"the target's instance \`t\` has ids of the range $ids..$((ids + 65535))"* ]]
  ctlb destroy t
  ctlb image rm bb >/dev/null
  target_is_clean
}

# The figure of a line of migrate's standard error: "PREFIX N ...".
figure() { # prefix
  sed -n "s/^$1\([0-9][0-9]*\).*/\1/p" <<<"$stderr" | head -n1
}

@test "a counter in an instance keeps counting after migrating to another celld, and the source has it no more" {
  needs_working_criu
  ctl create k --image bb --init "$MEMORY_COUNTER"
  ctl start k
  wait_count_passes ctl k 5
  run --separate-stderr timeout 150 "$CELLCTL" --socket "$SOCK" migrate k \
    --to "$(TO)"
  echo "$stderr" | sed 's/^/# /' | head -n 20 >&3
  [ "$status" -eq 0 ]
  [ "$output" = k ]
  [[ "$stderr" == *"received k: running"* ]]
  [[ "$stderr" == *"frozen for "*" ms"* ]]
  # The target had no layer: its image's went while it ran.
  [[ "$stderr" == *"layers sent while it ran: 1 ("*" bytes); already on the target: 0"* ]]
  # Its memory went in rounds while it ran, its 32 MiB in the first;
  # frozen, only the pages the counter wrote since the last one.
  local round1 frozen
  round1=$(figure 'pre-copy round 1: ')
  frozen=$(figure 'frozen part: ')
  [ -n "$round1" ]
  [ -n "$frozen" ]
  [ "$round1" -ge 33554432 ]
  [ $((frozen * 4)) -lt "$round1" ]
  [[ "$stderr" != *"pre-copy stopped"* ]]
  run -0 ctl list --json
  [ "$(echo "$output" | jq length)" = 0 ]
  [ "$(ctlb show k --json | jq -r .state)" = running ]
  local at
  at=$(count ctlb k)
  # Counting on from where it was (a new init would start at 1).
  [ "$at" -gt 5 ]
  wait_count_passes ctlb k "$at"
  # criu's images served their one restore: none kept on the target.
  [ ! -e "$STATE_B/instances/k/checkpoints/migrate" ]
  [ ! -e "$STATE/instances/k" ]
}

@test "migrating back sends no layer the other side has, and the counter counts on; migrate answers once the copy it leaves is gone" {
  needs_working_criu
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  wait_count_passes ctl k 5
  # The source's removal of its copy made slow: 3 s in its destroy.
  CELLD_TEST_PAUSE=destroy CELLD_TEST_PAUSE_SECONDS=3 restart_celld
  run --separate-stderr timeout 150 "$CELLCTL" --socket "$SOCK" migrate k \
    --to "$(TO)"
  [ "$status" -eq 0 ]
  # Answered only once it is gone here: the name is free at once.
  [ ! -e "$STATE/instances/k.json" ]
  restart_celld
  local at
  at=$(count ctlb k)
  wait_count_passes ctlb k "$at"
  # Back to the first celld, whose store has the image's layer.
  run --separate-stderr timeout 150 "$CELLCTL" --socket "$SOCK_B" migrate k \
    --to "$CELLCTL --socket $SOCK receive"
  echo "$stderr" | sed 's/^/# /' | head -n 20 >&3
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"layers sent while it ran: 0 (0 bytes); already on the target: 1"* ]]
  [ "$(ctlb list --json | jq length)" = 0 ]
  [ "$(field k .state)" = running ]
  local back
  back=$(count ctl k)
  [ "$back" -gt "$at" ]
  wait_count_passes ctl k "$back"
}

# criu's root task on the target opens the time namespace's image
# (timens-0.img, which a migration's images hold) in its new user namespace
# before criu has written the maps (tests/helpers/late-open.c makes that
# order certain): still host root there, with no rights over a file the
# instance's root owns unless all may read it (the CI's "Unable to open
# timens-0.img: Permission denied").
@test "a migration whose target's criu writes its id maps late still restores (criu's root task reads the time namespace's image before its maps)" {
  needs_working_criu
  local wrap=$D/late-open
  late_id_map_criu "$wrap"
  kill "$(cat "$DB/celld.pid")"
  sleep 0.3
  start_target PATH="$wrap:$PATH"
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  wait_count_passes ctl k 3
  run --separate-stderr timeout 150 "$CELLCTL" --socket "$SOCK" migrate k \
    --to "$(TO)"
  echo "$stderr" | sed 's/^/# /' | head -n 8 >&3
  kill "$(cat "$DB/celld.pid")"
  sleep 0.3
  start_target
  [ "$status" -eq 0 ]
  # The restore was the preloaded criu's, after pre-copy rounds.
  grep -qx restore "$wrap/ran"
  [[ "$stderr" == *"pre-copy round 1: "* ]]
  local at
  at=$(count ctlb k)
  [ "$at" -gt 3 ]
  wait_count_passes ctlb k "$at"
}

# k counting, then `cellctl migrate k --to TO`, which must fail (status 1),
# its output shown; pid: k's init before.
migrate_k_fails() { # TO
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  wait_count_passes ctl k 2
  pid=$(field k .pid)
  run timeout 150 "$CELLCTL" --socket "$SOCK" migrate k --to "$1"
  echo "# $output" | head -n 5 >&3
  [ "$status" -eq 1 ]
}

@test "a stream cut in mid-migration leaves the source running and counting and nothing on the target" {
  needs_working_criu
  local pid
  # A receiver that agrees, then goes: the source is frozen and sending.
  migrate_k_fails "read -r hello; echo '{\"ok\":true}'"
  source_runs_on "$pid"
  # The receiver's input ends in the storage: the target makes nothing.
  # (dd passes each read on as it comes, the handshake's line too; at
  # most 25 reads of 4 KiB, well short of the storage.)
  run timeout 150 "$CELLCTL" --socket "$SOCK" migrate k \
    --to "dd bs=4096 count=25 2>/dev/null | $(TO)"
  echo "# $output" | head -n 5 >&3
  [ "$status" -eq 1 ]
  [[ "$output" == *"migrate \`k\`: the target: migration stream: ended in a blob (it runs on here)"* ]]
  source_runs_on "$pid"
  [ ! -e "$STATE/instances/k/checkpoints" ] ||
    [ -z "$(ls -A "$STATE/instances/k/checkpoints")" ]
  target_is_clean
}

@test "a target that fails in mid-stream is heard: its reason, not a broken pipe, and the source runs on" {
  needs_working_criu
  local pid
  # A receiver that agrees, takes part of the storage, says why it stops
  # (as cellctl receive does for its celld) and goes.
  migrate_k_fails "read -r hello; echo '{\"ok\":true}'; head -c 65536 >/dev/null; echo '{\"ok\":false,\"error\":\"no room for the layer\"}'"
  [[ "$output" == *"migrate \`k\`: the target: no room for the layer (it runs on here)"* ]]
  [[ "$output" != *"Broken pipe"* ]]
  source_runs_on "$pid"
}

@test "the target killed once the pre-copy rounds are done leaves the source running and counting and nothing on the target" {
  needs_working_criu
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  wait_count_passes ctl k 2
  local pid images=$STATE/instances/k/checkpoints/.tmp-migrate
  pid=$(field k .pid)
  timeout 150 "$CELLCTL" --socket "$SOCK" migrate k --to "$(TO)" \
    >"$BATS_TEST_TMPDIR/out" 2>&1 &
  local mig=$!
  # The final dump begins (its log appears) once the rounds are sent: the
  # target's celld dies then, in the frozen part.
  local end=$((SECONDS + 120))
  while [ ! -e "$images/dump.log" ] && [ "$SECONDS" -lt "$end" ]; do
    sleep 0.05
  done
  [ -d "$images/pre-1" ]
  kill -KILL "$(cat "$DB/celld.pid")"
  local rc=0
  wait "$mig" || rc=$?
  sed 's/^/# /' "$BATS_TEST_TMPDIR/out" >&3
  [ "$rc" -eq 1 ]
  grep -q "(it runs on here)" "$BATS_TEST_TMPDIR/out"
  source_runs_on "$pid"
  [ ! -e "$STATE/instances/k/checkpoints" ] ||
    [ -z "$(ls -A "$STATE/instances/k/checkpoints")" ]
  # The next celld of the target finds nothing of it.
  start_target
  target_is_clean
}

stop_target() {
  local pid
  pid=$(cat "$DB/celld.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  return 1
}

# The target's celld under the fault library (tests/fault/fault-inject.c),
# counting its syncfs calls alone and failing the Nth: the receive's sync
# at a pre-copy round's start, while the instance runs, or the last one,
# in the frozen part.
@test "a target that cannot sync what it received refuses the migration: the source runs on, the target keeps nothing" {
  needs_working_criu
  local shim
  shim=$(dirname "$CELLD")/tests/fault-inject.so
  [ -f "$shim" ] || skip "no $shim"
  ctl create k --image bb --init "$COUNTER"
  ctl start k
  wait_count_passes ctl k 2
  local pid n state=$BATS_TEST_TMPDIR/fault-state
  pid=$(field k .pid)
  for n in 1 2; do
    head -c $((4096 + 65536 * 8)) /dev/zero >"$state"
    stop_target
    start_target LD_PRELOAD="$shim" CELL_FAULT_STATE="$state" \
      CELL_FAULT_AT="$n" CELL_FAULT_ONLY=syncfs
    run timeout 150 "$CELLCTL" --socket "$SOCK" migrate k --to "$(TO)"
    echo "# $output" | head -n 5 >&3
    [ "$status" -eq 1 ]
    [[ "$output" == *"sync what the migration received: Input/output error (it runs on here)"* ]]
    source_runs_on "$pid"
    target_is_clean
  done
  stop_target
  start_target
}

# A --to CMD: cellctl receive behind a relay that passes the target's
# lines on to the source until its Nth (1: the handshake's answer, 2: the
# copy restored, 3: the commit's answer), at which it kills the receive
# (and with `celld`, the target's celld first) and goes, that line not
# passed on: the stream ends there both ways.
relay() { # N [celld]
  local also=
  [ "${2:-}" = celld ] && also="kill -KILL $(cat "$DB/celld.pid")"
  cat >"$BATS_TEST_TMPDIR/relay" <<EOF2
#!/bin/bash
coproc R { exec "$CELLCTL" --socket "$SOCK_B" receive 2>/dev/null; }
exec 7<&"\${R[0]}" 8>&"\${R[1]}"
cat <&0 >&8 &
up=\$!
n=0
while IFS= read -r line <&7; do
  n=\$((n + 1))
  if [ "\$n" -eq $1 ]; then
    $also
    kill -KILL "\$R_PID" "\$up"
    exit 0
  fi
  printf '%s\n' "\$line"
done
kill "\$up"
EOF2
  echo "bash $BATS_TEST_TMPDIR/relay"
}

# The target's copy, when it has one to drop, takes a moment to go.
target_becomes_clean() {
  local end=$((SECONDS + 60))
  until target_is_clean 2>/dev/null || [ "$SECONDS" -ge "$end" ]; do
    sleep 0.2
  done
  ctlb list >&2
  target_is_clean
}

@test "a receive killed after the target's restore leaves one copy running: the source" {
  needs_working_criu
  local pid
  # The target's copy is restored, and its word of it never reaches the
  # source: no commit comes.
  migrate_k_fails "$(relay 2)"
  [[ "$output" == *"(it runs on here)"* ]]
  source_runs_on "$pid"
  # The target's copy, held frozen for the commit, went with all it got.
  target_becomes_clean
}

@test "the commit's answer lost leaves the source stopped, not destroyed, saying so, and the target's copy running" {
  needs_working_criu
  local pid
  # The commit reaches the target; its answer does not come back.
  migrate_k_fails "$(relay 3)"
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"the commit went to the target but its answer did not come"*"see \`cellctl list\` on the target; here it is stopped, not destroyed: \`cellctl destroy k\` once it runs there, \`cellctl start k\` if it does not"* ]]
  local end=$((SECONDS + 30))
  until [ "$(field k .state)" = stopped ] || [ "$SECONDS" -ge "$end" ]; do
    sleep 0.1
  done
  [ "$(field k .state)" = stopped ]
  [ "$(ctlb show k --json | jq -r .state)" = running ]
  local at
  at=$(count ctlb k)
  [ "$at" -gt 2 ]
  wait_count_passes ctlb k "$at"
}

@test "a target celld killed while its restored copy waits for the commit leaves one copy running: the source; its next start removes the received instance" {
  needs_working_criu
  local pid
  migrate_k_fails "$(relay 2 celld)"
  [[ "$output" == *"(it runs on here)"* ]]
  source_runs_on "$pid"
  # Its restored processes, frozen, outlived it; the next celld does not
  # thaw them: it removes them with the record, disk and cgroup that came.
  start_target
  target_is_clean
  [ -z "$(find /sys/fs/cgroup -path "*$CGPARENT_B/*" -type d 2>/dev/null)" ]
  grep -q "k: a migration received by an earlier celld, not committed: removed" "$DB/celld.log"
}

# A server that echoes what it reads, on 10.98.7.10:7000 (one connection).
ECHO_SERVER="/bin/sh -c 'exec </dev/null >/dev/null 2>&1; exec nc -l -p 7000 -e cat'"
# A client that keeps one connection to it: what is written to /to goes
# to the server, what comes back goes to /from.
CLIENT="/bin/sh -c 'exec </dev/null >/dev/null 2>&1; mkfifo /to; while :; do cat /to; done | nc 10.98.7.10 7000 >/from'"

# (busybox's nc listens on IPv6's any address, for both families.)
listens_on_7000() { # ctl|ctlb name
  local sock=$SOCK
  [ "$1" = ctlb ] && sock=$SOCK_B
  timeout 20 "$CELLCTL" --socket "$sock" exec "$2" -- \
    cat /proc/net/tcp /proc/net/tcp6 </dev/null 2>/dev/null |
    awk '$2 ~ /:1B58$/ && $4 == "0A" { found = 1 } END { exit !found }'
}

# Send a line through the client's connection; it must come back.
echoes() { # line
  ctl exec cli -- sh -c "echo $1 >/to" </dev/null
  local end=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$end" ]; do
    timeout 20 "$CELLCTL" --socket "$SOCK" exec cli -- cat /from </dev/null |
      grep -qx "$1" && return 0
    sleep 0.2
  done
  echo "$1 did not come back: /from has $(ctl exec cli -- cat /from </dev/null)" >&2
  return 1
}

@test "a TCP connection to an instance, from a client in another instance on the same network, survives its migration to another celld" {
  needs_working_criu
  ctl create srv --image bb --net m:10.98.7.10 --init "$ECHO_SERVER"
  ctl start srv
  local end=$((SECONDS + 60))
  until listens_on_7000 ctl srv; do
    [ "$SECONDS" -lt "$end" ] || { echo "the server does not listen" >&2; return 1; }
    sleep 0.2
  done
  ctl create cli --image bb --net m --init "$CLIENT"
  ctl start cli
  until ctl exec cli -- test -p /to </dev/null; do
    [ "$SECONDS" -lt "$end" ] || { echo "the client has no /to" >&2; return 1; }
    sleep 0.2
  done
  echoes before
  local nc_pid
  nc_pid=$(ctl exec cli -- pidof nc </dev/null)
  run --separate-stderr timeout 150 "$CELLCTL" --socket "$SOCK" migrate srv \
    --to "$(TO)"
  echo "# $stderr" | head -n 20 >&3
  [ "$status" -eq 0 ]
  [ "$(ctlb show srv --json | jq -r .state)" = running ]
  # Its address came along: the target's network has the same subnet.
  [ "$(ctlb show srv --json | jq -r '.networks[0].ipv4')" = 10.98.7.10 ]
  # The same connection, both ways: the server takes one only, and the
  # client's nc is the one that connected before.
  echoes after
  [ "$(ctl exec cli -- pidof nc </dev/null)" = "$nc_pid" ]
  run listens_on_7000 ctlb srv
  [ "$status" -ne 0 ]
}
