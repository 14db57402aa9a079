# shellcheck shell=bash disable=SC2016
# celld and cellctl end to end, against a private daemon (its own state
# dir, socket and id pool) started once for this file.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=400000
POOL_COUNT=$((65536 * 200))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  # Our own cgroup parent: no collision with another daemon or an earlier run.
  export CGPARENT=/cell-test-celld-$$
  celld_files
  mkdir -p "$D/notroot"
  cat >"$D/celld.conf" <<EOF
socket_mode = 0666
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 5
group = 4242
cgroup_parent = $CGPARENT
EOF
  start_daemon
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  celld_leaks
}

wait_state() { # name state
  for _ in $(seq 100); do
    [ "$(field "$1" .state)" = "$2" ] && return 0
    sleep 0.1
  done
  echo "$1 is $(field "$1" .state), not $2" >&2
  return 1
}

@test "lifecycle: create, start, list, show, stop, destroy" {
  run -0 ctl create life --template "$TEMPLATE" --memory 64M --cpus 0.5 --pids 100 --hostname life-host
  run -0 ctl show life --json
  [ "$(echo "$output" | jq -r .state)" = created ]
  run -0 ctl start life
  [ "$(field life .state)" = running ]
  pid=$(field life .pid)
  [ "$pid" -gt 0 ]
  # busybox init is the instance's PID 1, run by the instance's root.
  [ "$(cat /proc/"$pid"/comm)" = init ]
  # Out of celld's process group (a ^C to celld's group must not reach it):
  # it leads a session of its own, on its console.
  [ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ]
  [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" != "$(ps -o pgid= -p "$(cat "$D/celld.pid")" | tr -d ' ')" ]
  [ "$(stat -c %u /proc/"$pid")" = "$(field life .id_start)" ]
  run -0 "$CELL" --root "$STATE/run" exec life hostname
  [ "$output" = life-host ]
  run -0 ctl list
  [[ "$output" == *life*running* ]]
  run -0 ctl restart life --timeout 10
  [ "$(field life .state)" = running ]
  [ "$(field life .pid)" != "$pid" ]
  run -0 ctl set life memory=128M pids=200
  [ "$(field life .memory)" = $((128 << 20)) ]
  run -0 ctl stop life --timeout 10
  [ "$(field life .state)" = stopped ]
  ! grep -q " $STATE/instances/life/" /proc/self/mountinfo
  run -0 ctl destroy life
  run -4 ctl show life
  [[ "$output" == *"does not exist"* ]]
  [ ! -e "$STATE/instances/life.json" ]
  [ ! -e "$STATE/instances/life" ]
}

@test "two instances: disjoint ranges, roots cannot touch each other's or the host's files" {
  ctl create iso-a --template "$TEMPLATE" --init "/bin/sleep 100000"
  ctl create iso-b --template "$TEMPLATE" --init "/bin/sleep 100000"
  ctl start iso-a
  ctl start iso-b
  a=$(field iso-a .id_start)
  b=$(field iso-b .id_start)
  [ "$a" != "$b" ]
  [ $((a >= b + 65536 || b >= a + 65536)) = 1 ]
  x() { "$CELL" --root "$STATE/run" exec "$@"; }
  # Files of the template appear owned by root inside, by the range on the host.
  run -0 x iso-a sh -c 'id -u; stat -c %u /bin/busybox'
  [ "$output" = $'0\n0' ]
  [ "$(stat -c %u "$(root_of iso-a)/bin/busybox")" = "$a" ]
  [ "$(stat -c %u "$TEMPLATE/bin/busybox")" = 0 ]
  x iso-a sh -c 'echo secret > /root-of-a; chmod 600 /root-of-a'
  # a's write went to its own layer, stored in the ids a's root has inside
  # (what a snapshot or export carries), and shows on the host in a's range.
  [ "$(stat -c %u "$STATE/instances/iso-a/disk/upper/root-of-a")" = 0 ]
  [ "$(stat -c %u "$(root_of iso-a)/root-of-a")" = "$a" ]
  # The image is shared and read-only: nothing of a's reached it or b.
  [ ! -e "$TEMPLATE/root-of-a" ]
  [ -z "$(find "$STATE/images/layers" -name root-of-a)" ]
  run x iso-b cat /root-of-a
  [ "$status" -ne 0 ]
  # b's root is a stranger to a's files even when handed one on the host:
  # a's owner cannot even be written into b's layer.
  run cp -a "$(root_of iso-a)/root-of-a" "$(root_of iso-b)/from-a"
  [[ "$output" == *"Value too large"* ]]
  run x iso-b sh -c 'cat /from-a'
  [ "$status" -ne 0 ]
  run x iso-b sh -c 'echo x >> /from-a'
  [ "$status" -ne 0 ]
  # The host's /etc is not there.
  echo "host-marker-$$" >/etc/cell-test-marker
  run x iso-a sh -c 'cat /etc/cell-test-marker'
  rm -f /etc/cell-test-marker
  [ "$status" -ne 0 ]
  ctl destroy iso-a -f
  ctl destroy iso-b -f
}

@test "kill -9 of celld: instances keep running and are found again" {
  ctl create surv --template "$TEMPLATE"
  ctl start surv
  pid=$(field surv .pid)
  kill -9 "$(cat "$D/celld.pid")"
  sleep 0.3
  kill -0 "$pid"
  start_daemon
  [ "$(field surv .state)" = running ]
  [ "$(field surv .pid)" = "$pid" ]
  run -0 ctl stop surv
  [ "$(field surv .state)" = stopped ]
  ! kill -0 "$pid" 2>/dev/null
  ctl destroy surv
}

@test "restart policy on-failure: the init killed from the host comes back" {
  ctl create pol --template "$TEMPLATE" --restart on-failure:3 --init "/bin/sleep 100000"
  ctl start pol
  pid=$(field pol .pid)
  kill -9 "$pid"
  for _ in $(seq 50); do
    p=$(field pol .pid)
    [ "$p" != 0 ] && [ "$p" != "$pid" ] && break
    sleep 0.1
  done
  [ "$(field pol .state)" = running ]
  [ "$(field pol .pid)" != "$pid" ]
  [ "$(field pol .restarts)" = 1 ]
  [ "$(field pol .exit_code)" = 137 ]
  # A stop is not a failure: no restart.
  ctl stop pol --timeout 1
  sleep 1.5
  [ "$(field pol .state)" = stopped ]
  ctl destroy pol
}

@test "a user neither root nor in the group is refused" {
  ctl create mine --template "$TEMPLATE"
  run -5 setpriv --reuid 65534 --regid 65534 --clear-groups "$CELLCTL" --socket "$SOCK" list
  [[ "$output" == *"permission denied"* ]]
  run -5 setpriv --reuid 65534 --regid 65534 --clear-groups "$CELLCTL" --socket "$SOCK" destroy mine
  [[ "$output" == *"permission denied"* ]]
  ctl show mine
  # A member of the group (gid 4242 in celld.conf) manages its own only.
  member() { setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" "$@"; }
  run -0 member create theirs --template "$TEMPLATE" --init "/bin/sleep 100000"
  run -0 member start theirs
  run -0 member list --json
  [ "$(echo "$output" | jq -r '[.[].name] | join(",")')" = theirs ]
  [ "$(field theirs .owner)" = 4243 ]
  run -4 member destroy mine -f
  [[ "$output" == *"does not exist"* ]]
  run -4 member stop mine
  run -0 member destroy theirs -f
  ctl destroy mine
}

@test "bad input: clear errors, nothing half-made, the daemon keeps serving" {
  ctl create dup --template "$TEMPLATE"
  run -6 ctl create dup --template "$TEMPLATE"
  [[ "$output" == *"already exists"* ]]
  run -4 ctl start nosuch
  [[ "$output" == *"does not exist"* ]]
  run -8 ctl create 'a/b' --template "$TEMPLATE"
  [[ "$output" == *"not allowed"* ]]
  images=$(ctl image list --json | jq length)
  run -8 ctl create notroot --template "$D/notroot"
  [[ "$output" == *"has no /sbin/init"* ]]
  [ ! -e "$STATE/instances/notroot" ]
  [ ! -e "$STATE/instances/notroot.json" ]
  # The directory imported for it went with it.
  [ "$(ctl image list --json | jq length)" = "$images" ]
  run -8 ctl create badpol --template "$TEMPLATE" --restart sometimes
  [[ "$output" == *"restart policy"* ]]
  run -2 ctl create x --memory lots --template "$TEMPLATE"
  run -3 "$CELLCTL" --socket "$D/nosocket" list
  # Raw requests: malformed, wrong version, unknown op and field, wrong type.
  run -0 ctl raw <<'EOF'
{"version":1,"op":
not json
{"version":2,"op":"list"}
{"version":1,"op":"fly"}
{"version":1,"op":"show","name":"dup","colour":"red"}
{"version":1,"op":"create","name":7,"template":"/"}
{"version":1,"op":"list"}
EOF
  [ "${#lines[@]}" = 7 ]
  [[ "${lines[0]}" == *'"ok":false'*malformed* ]]
  [[ "${lines[1]}" == *malformed* ]]
  [[ "${lines[2]}" == *"not supported"* ]]
  [[ "${lines[3]}" == *"unknown"* ]]
  [[ "${lines[4]}" == *"unknown field"* ]]
  [[ "${lines[5]}" == *"must be a string"* ]]
  [[ "${lines[6]}" == *'"ok":true'* ]]
  # Oversized: an error, then the connection closes.
  run ctl raw < <(head -c 70000 /dev/zero | tr '\0' 'x'; echo)
  [[ "$output" == *"larger than 65536"* ]]
  run -0 ctl show dup
  ctl destroy dup
}

@test "100 instances created, started, listed and destroyed without a leak" {
  n=${CELLD_TEST_COUNT:-100}
  ctl create first --template "$TEMPLATE"
  lowest=$(field first .id_start)
  ctl destroy first
  for i in $(seq "$n"); do
    ctl create "many-$i" --template "$TEMPLATE" --memory 32M --pids 50 --init "/bin/sleep 100000"
    ctl start "many-$i"
  done
  many='[.[] | select(.name | startswith("many-"))]'
  [ "$(ctl list --json | jq "$many"' | map(select(.state == "running")) | length')" = "$n" ]
  [ "$(ctl list --json | jq "$many"' | map(.id_start) | unique | length')" = "$n" ]
  [ "$(ctl list | grep -c '^many-.* running ')" = "$n" ]
  for i in $(seq "$n"); do
    ctl destroy "many-$i" -f
  done
  [ "$(ctl list --json | jq "$many | length")" = 0 ]
  ! grep -q " $STATE/instances/many-" /proc/self/mountinfo
  [ -z "$(ls "$STATE/instances" | grep many-)" ]
  [ -z "$(ls "$STATE/run" | grep many-)" ]
  [ -z "$(find /sys/fs/cgroup/*"$CGPARENT" -name 'many-*' 2>/dev/null)" ]
  [ -z "$(pool_pids)" ]
  # Every range is free again: the next instance gets the lowest one.
  ctl create again --template "$TEMPLATE"
  [ "$(field again .id_start)" = "$lowest" ]
  ctl destroy again
}

@test "exec and enter: through celld, exit code and output, a pty for enter" {
  ctl create ex --template "$TEMPLATE" --init "/bin/sleep 100000" --hostname ex-host
  run -125 ctl exec ex -- true
  [[ "$output" == *"not running"* ]]
  ctl start ex
  run -7 ctl exec ex -- sh -c 'echo out; id -u; hostname; exit 7'
  [ "$output" = $'out\n0\nex-host' ]
  run -0 bash -c 'echo piped | "$0" --socket "$1" exec ex -- cat' "$CELLCTL" "$SOCK"
  [ "$output" = piped ]
  run -125 ctl exec ex -- /no/such/command
  [[ "$output" == *"/no/such/command"* ]]
  # A signal to cellctl goes to the command.
  # exec: $! must be cellctl itself, not a subshell running it
  ( exec "$CELLCTL" --socket "$SOCK" exec ex -- sleep 100 ) &
  pid=$!
  sleep 0.5
  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  [ "$status" = 143 ]
  # enter: a login shell with a terminal (script gives us a pty).
  run -5 script -qec "$CELLCTL --socket $SOCK enter ex" /dev/null <<<$'tty; id -u; exit 5'
  [[ "$output" == *"/dev/pts/"* ]]
  [[ "$output" == *$'\n0\r'* ]] || [[ "$output" == *$'0\r\n'* ]]
  # Without a terminal: the same shell reading stdin.
  run -4 bash -c 'printf "echo in-\$(hostname); exit 4\n" | "$0" --socket "$1" enter ex' "$CELLCTL" "$SOCK"
  [ "$output" = in-ex-host ]
  # A member of the group cannot exec in an instance that is not its own.
  run -125 setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" exec ex -- true
  [[ "$output" == *"does not exist"* ]]
  ctl destroy ex -f
}

@test "events: oom when a memory hog hits the limit, died with the exit code" {
  ctl create hog --template "$TEMPLATE" --memory 16M --init "/bin/sleep 100000"
  ctl events --json >"$D/events" &
  ev=$!
  ctl start hog
  run -137 ctl exec hog -- dd if=/dev/zero of=/dev/null bs=64M count=1
  # Reported while the instance still runs (not only when its init dies).
  for _ in $(seq 30); do
    grep -q '"oom"' "$D/events" && break
    sleep 0.1
  done
  grep '"event":"oom","name":"hog"' "$D/events"
  [ "$(field hog .state)" = running ]
  kill -9 "$(field hog .pid)"
  for _ in $(seq 30); do
    grep -q '"died"' "$D/events" && break
    sleep 0.1
  done
  kill "$ev"
  grep '"event":"died","name":"hog".*"exit_code":137' "$D/events"
  # One OOM kill, one event.
  [ "$(grep -c '"event":"oom"' "$D/events")" = 1 ]
  ctl destroy hog
}

@test "kill -9 of celld in the middle of a create: cleaned up at restart" {
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  CELLD_TEST_PAUSE=create start_daemon
  ctl create half --template "$TEMPLATE" &
  client=$!
  for _ in $(seq 100); do
    grep -q " $STATE/instances/half/" /proc/self/mountinfo && break
    sleep 0.1
  done
  grep -q " $STATE/instances/half/" /proc/self/mountinfo
  kill -9 "$(cat "$D/celld.pid")"
  # not `run wait`: run's subshell cannot wait for this shell's children
  status=0
  wait "$client" || status=$?
  [ "$status" = 3 ]
  [ -d "$STATE/instances/half" ]
  [ ! -e "$STATE/instances/half.json" ]
  start_daemon
  ! grep -q " $STATE/instances/half/" /proc/self/mountinfo
  [ ! -e "$STATE/instances/half" ]
  run -4 ctl show half
  # Nothing was lost or leaked: the name and the range can be used again.
  run -0 ctl create half --template "$TEMPLATE"
  ctl destroy half
}

@test "kill -9 of celld in the middle of a destroy: the next destroy finishes it" {
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  CELLD_TEST_PAUSE=destroy start_daemon
  ctl create gone --template "$TEMPLATE" --init "/bin/sleep 100000"
  ctl start gone
  pid=$(field gone .pid)
  ctl destroy gone -f &
  client=$!
  for _ in $(seq 100); do
    grep -q "CELLD_TEST_PAUSE=destroy" "$D/celld.log" && break
    sleep 0.1
  done
  grep -q "CELLD_TEST_PAUSE=destroy" "$D/celld.log"
  kill -9 "$(cat "$D/celld.pid")"
  status=0
  wait "$client" || status=$?
  [ "$status" = 3 ]
  # Cut short: the init is gone, its root unmounted, its record still there.
  ! kill -0 "$pid" 2>/dev/null
  [ -e "$STATE/instances/gone.json" ]
  start_daemon
  [ "$(field gone .state)" = stopped ]
  run -0 ctl destroy gone
  [ ! -e "$STATE/instances/gone.json" ]
  [ ! -e "$STATE/instances/gone" ]
  ! grep -q " $STATE/instances/gone/" /proc/self/mountinfo
  [ -z "$(find /sys/fs/cgroup/*"$CGPARENT" -name gone 2>/dev/null)" ]
  run -4 ctl show gone
}

# ghost_cgroup NAME UID [HIERARCHY]: a cgroup NAME below celld's parent in
# every hierarchy, with a process of UID in it (in HIERARCHY only, e.g.
# memory, where there is one); its pid on stdout.
ghost_cgroup() {
  local cg pid
  setpriv --reuid "$2" --regid "$2" --clear-groups sleep 100000 </dev/null >/dev/null 2>&1 &
  pid=$!
  disown "$pid"
  for cg in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -e "$cg/cgroup.procs" ] && [ -d "$cg${CGPARENT#/}" ] || continue
    mkdir -p "$cg${CGPARENT#/}/$1"
    if [ -z "${3:-}" ] || [ "$cg" = "/sys/fs/cgroup/$3/" ] ||
      [ ! -d "/sys/fs/cgroup/$3${CGPARENT}" ]; then
      echo "$pid" >"$cg${CGPARENT#/}/$1/cgroup.procs"
    fi
  done
  echo "$pid"
}

@test "a cgroup a killed celld left, with a process of its pool in it, is emptied at the next start; others are left alone" {
  ctl create anchor --template "$TEMPLATE" --init "/bin/sleep 100000"
  ctl start anchor # the parent cgroup exists in every hierarchy
  ours=$(ghost_cgroup ghost $((POOL_START + 70000)))
  theirs=$(ghost_cgroup foreign 4243)
  # Its process in one hierarchy only: not the one whose cgroup.procs
  # celld reads for its own instances.
  partly=$(ghost_cgroup partly 4243 memory)
  kill -9 "$(cat "$D/celld.pid")"
  start_daemon
  for _ in $(seq 50); do
    kill -0 "$ours" 2>/dev/null || break
    sleep 0.1
  done
  ! kill -0 "$ours" 2>/dev/null
  [ -z "$(find /sys/fs/cgroup/*"$CGPARENT" /sys/fs/cgroup"$CGPARENT" -name ghost 2>/dev/null)" ]
  # Not celld's: a process outside its ids.
  kill -0 "$theirs"
  kill -0 "$partly"
  grep -q "foreign: a cgroup below $CGPARENT with processes outside celld's ids: left alone" "$D/celld.log"
  grep -q "partly: a cgroup below $CGPARENT with processes outside celld's ids: left alone" "$D/celld.log"
  kill -9 "$theirs" "$partly"
  sleep 0.2
  find /sys/fs/cgroup/*"$CGPARENT" /sys/fs/cgroup"$CGPARENT" -depth \( -name foreign -o -name partly \) -type d -exec rmdir {} + 2>/dev/null || true
  ctl destroy anchor -f
}

@test "celld --autostart starts the instances marked autostart, in their order" {
  ctl create auto-1 --template "$TEMPLATE" --init "/bin/sleep 100000" --autostart
  ctl create plain --template "$TEMPLATE" --init "/bin/sleep 100000"
  ctl create auto-2 --template "$TEMPLATE" --init "/bin/sleep 100000" --autostart
  [ "$(field auto-1 .autostart)" = true ]
  [ "$(field plain .autostart)" = false ]
  # As at boot: the daemon comes up with nothing running.
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  lines_before=$(wc -l <"$D/celld.log")
  start_daemon --autostart
  [ "$(field auto-1 .state)" = running ]
  [ "$(field auto-2 .state)" = running ]
  [ "$(field plain .state)" = created ]
  # In the order they were made: auto-1 first.
  started=$(tail -n +"$((lines_before + 1))" "$D/celld.log" | grep -o 'auto-[12]: started' | tr '\n' ' ')
  [ "$started" = "auto-1: started auto-2: started " ]
  # Without the flag (a plain restart) nothing more is started.
  ctl stop auto-2 --timeout 1
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  start_daemon
  [ "$(field auto-2 .state)" = stopped ]
  ctl destroy auto-1 -f
  ctl destroy auto-2
  ctl destroy plain
}

@test "idmap = copy: the instance gets a copy of the template shifted to its range" {
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  cp "$D/celld.conf" "$D/celld.conf.idmap"
  echo "idmap = copy" >>"$D/celld.conf"
  start_daemon
  ctl create copied --template "$TEMPLATE" --init "/bin/sleep 100000"
  [ "$(field copied .rootfs_mode)" = copy ]
  start=$(field copied .id_start)
  # On the host the copy belongs to the range; the template is untouched.
  busybox=$(find "$STATE/instances/copied/lower.copy" -path '*/bin/busybox')
  [ "$(stat -c %u "$busybox")" = "$start" ]
  [ "$(stat -c %u "$TEMPLATE/bin/busybox")" = 0 ]
  ctl start copied
  run -0 ctl exec copied -- sh -c 'id -u; stat -c %u /bin/busybox; echo made > /new-file'
  [ "$output" = $'0\n0' ]
  [ "$(stat -c %u "$STATE/instances/copied/disk/upper/new-file")" = "$start" ]
  [ ! -e "$TEMPLATE/new-file" ]
  ctl destroy copied -f
  [ ! -e "$STATE/instances/copied" ]
  mv "$D/celld.conf.idmap" "$D/celld.conf"
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  start_daemon
}
