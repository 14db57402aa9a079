# shellcheck shell=bash disable=SC2016
# The operator's daily work: celld's log of operations (a stamped line per
# request, with the peer and the result), each instance's own log
# (`cellctl log`), pause and resume, and files pushed into and pulled out
# of instances, through fds that never follow a symlink out of them.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=76000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-ops-$$
  celld_files
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
socket_mode = 0666
stop_timeout = 2
cgroup_parent = $CGPARENT
group = 4242
lxcfs = off
EOF
  export OPLOG=$D/ops.log
  start_daemon --log "$OPLOG"
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
TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'

@test "log: every op is a line with its time, the peer's uid and pid, the op, the instance and the result" {
  ctl create l1 --image bb --init "$SLEEP"
  ctl start l1
  run -4 ctl start nosuch
  run -5 setpriv --reuid 4243 --regid 4243 --clear-groups "$CELLCTL" --socket "$SOCK" list
  run -0 grep -E "^$TS uid=0 pid=[0-9]+ op=create name=l1 ok$" "$OPLOG"
  run -0 grep -E "^$TS uid=0 pid=[0-9]+ op=start name=l1 ok$" "$OPLOG"
  run -0 grep -E "^$TS uid=0 pid=[0-9]+ op=start name=nosuch error=\"instance \`nosuch\` does not exist\" code=not-found$" "$OPLOG"
  run -0 grep -E "^$TS uid=4243 pid=[0-9]+ op=list error=\"permission denied[^\"]*\" code=permission-denied$" "$OPLOG"
  # A stop's line comes when it has stopped: its answer.
  ctl stop l1
  run -0 grep -E "^$TS uid=0 pid=[0-9]+ op=stop name=l1 ok$" "$OPLOG"
}

@test "attack: a request whose op and name carry newlines cannot forge a line of the log" {
  before=$(wc -l <"$OPLOG")
  printf '%s\n' '{"version":1,"op":"start\n2026-01-01T00:00:00.000Z uid=0 pid=1 op=destroy name=x ok","name":"a\nb"}' |
    "$CELLCTL" --socket "$SOCK" raw >/dev/null || true
  ctl list >/dev/null
  [ "$(wc -l <"$OPLOG")" = $((before + 2)) ]
  run -1 grep -E '^2026-01-01T00:00:00.000Z' "$OPLOG"
  run -0 grep -F 'op="start\n2026-01-01T00:00:00.000Z uid=0 pid=1 op=destroy name=x ok" name="a\nb" error=' "$OPLOG"
}

@test "log: a celld whose log is on a full disk (/dev/full) serves on; a --log it cannot open is refused" {
  S=$D/full
  mkdir -p "$S"
  "$CELLD" --state-dir "$S/state" --socket "$S/sock" --config "$D/celld.conf" \
    --log /dev/full --pidfile "$S/pid"
  for _ in 1 2 3; do
    "$CELLCTL" --socket "$S/sock" list >/dev/null
  done
  pid=$(cat "$S/pid")
  kill "$pid"
  run -1 "$CELLD" --state-dir "$S/state2" --socket "$S/sock2" --config "$D/celld.conf" \
    --log /nonexistent/dir/celld.log
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == "celld: --log"*"/nonexistent/dir/celld.log"*"No such file"* ]]
  [ ! -e "$S/sock2" ] && [ ! -e "$S/state2" ]
  for _ in $(seq 20); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
}

@test "cellctl log: the instance's lifecycle, exits with their status or signal, OOM kills, who asked" {
  ctl create v --image bb --init "$SLEEP" --memory 16M
  ctl start v
  ctl stop v
  ctl start v
  # An OOM kill: a process that eats past the limit.
  inside v sh -c 'x=$(head -c 64000000 /dev/zero | tr "\0" a); echo ${#x}' || true
  run -0 ctl log v
  echo "$output"
  [[ "${lines[0]}" =~ ^$TS\ created$ ]]
  [[ "$output" =~ $TS\ start\ by\ uid\ 0 ]]
  [[ "$output" == *" started"* ]]
  [[ "$output" == *"stopped: exit status 0"* ]]
  [[ "$output" == *"oom: the kernel killed a process for memory"* ]]
  run -0 ctl log v -n 2
  [ "${#lines[@]}" = 2 ]
  run -2 ctl log v -n lots
  run -4 ctl log nosuch
}

@test "pause: a paused instance runs nothing, shows paused (across a celld restart), refuses exec, and stops or is destroyed" {
  ctl create p --image bb --init "/bin/sh -c 'trap \"exit 0\" TERM; while :; do date +%s%N > /tick; sleep 0.05; done & wait'"
  ctl start p
  ctl create q --image bb --init "$SLEEP"
  ctl start q
  run -7 ctl resume p
  [[ "$output" == *"not paused"* ]]
  ctl pause p
  ctl pause q
  [ "$(field p .state)" = paused ]
  run -0 ctl list
  [[ "$output" =~ p\ +paused ]]
  # Frozen: the ticker writes nothing any more.
  tick=$(cat "$STATE/instances/p/rootfs/tick")
  sleep 0.3
  [ "$(cat "$STATE/instances/p/rootfs/tick")" = "$tick" ]
  run -125 ctl exec p -- true
  [[ "$output" == *"instance \`p\` is paused: resume it first (cellctl resume p)"* ]]
  run -7 ctl pause p
  # celld restarts: still paused, and resume thaws it.
  pid=$(cat "$D/celld.pid")
  kill "$pid"
  for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
  start_daemon --log "$OPLOG"
  [ "$(field p .state)" = paused ]
  ctl resume p
  [ "$(field p .state)" = running ]
  sleep 0.2
  [ "$(cat "$STATE/instances/p/rootfs/tick")" != "$tick" ]
  run -0 inside p true
  # Stop and destroy -f of paused instances: thawed first, they end.
  ctl pause p
  run -0 ctl stop p --timeout 5
  [ "$(field p .state)" = stopped ]
  run -0 ctl destroy q -f
  run -4 ctl show q
  run -7 ctl pause p
  [[ "$output" == *"not running"* ]]
  run -0 ctl log p
  [[ "$output" == *" paused"*" resumed"* ]]
}
