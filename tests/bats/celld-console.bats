# shellcheck shell=bash disable=SC2016
# `cellctl console` end to end: the console keeper of a private celld (its
# own state dir, socket, id pool and cgroup parent), started once for this
# file.

bats_require_minimum_version 1.5.0

load celld-helpers
# Clear of the other celld test files' pools (celld.bats ends below,
# celld-net.bats starts at 17000000), whose processes the leak check would
# otherwise take for ours.
POOL_START=14000000
POOL_COUNT=$((65536 * 40))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  # Our own cgroup parent: no collision with another daemon or an earlier run.
  export CGPARENT=/cell-test-console-$$
  celld_files
  # The template has no inittab: celld writes one with a shell on the console.
  [ ! -e "$TEMPLATE/etc/inittab" ]
  # An init of our own that writes to its stdio (a script: no quoting to
  # get right in --init).
  printf '#!/bin/sh\necho "console-of-$(hostname)"\nexec sleep 100000\n' >"$TEMPLATE/hello-init"
  chmod 755 "$TEMPLATE/hello-init"
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

stop_daemon() {
  local pid
  pid=$(cat "$D/celld.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    # A zombie (nobody reaps it here) is gone too.
    [ "$(ps -o stat= -p "$pid" 2>/dev/null)" = Z ] && return 0
    sleep 0.1
  done
  return 1
}

# Live console keepers of our state dir (a forked celld: same command line,
# its own name; a zombie has no command line and does not count).
keeper_pids() {
  local p
  for p in $(pgrep -x celld-console); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "--state-dir $STATE " &&
      echo "$p"
  done
  return 0
}

wait_no_keeper() {
  for _ in $(seq 50); do
    [ -z "$(keeper_pids)" ] && return 0
    sleep 0.1
  done
  echo "console keeper still running: $(keeper_pids)" >&2
  return 1
}

teardown_file() {
  [ -n "$D" ] || return 0
  # A test that failed with celld killed: bring it back to clean up.
  ctl list >/dev/null 2>&1 || start_daemon || true
  destroy_all
  stop_daemon || kill -9 "$(cat "$D/celld.pid")" 2>/dev/null || true
  sleep 0.2
  local left=0
  celld_leaks || left=1
  # No instance left, no daemon: the keeper has nothing to hold and goes.
  if ! wait_no_keeper; then
    keeper_pids | xargs -r kill -9
    left=1
  fi
  if [ -e "$STATE/console.sock" ]; then
    echo "console.sock left" >&2
    left=1
  fi
  return $left
}

# A command in the instance, through the runtime (not celld: it works
# while celld is down).
in_instance() { # name cmd...
  local n=$1
  shift
  "$CELL" --root "$STATE/run" exec "$n" "$@"
}

wait_grep() { # file pattern
  for _ in $(seq 100); do
    grep -qa -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no \`$2\` in $1:" >&2
  cat -A "$1" >&2
  return 1
}

# Attach in the background with a fifo for input: $D/$1.out, $D/$1.err,
# $D/$1.rc once it exits; input with `type_in NAME TEXT`.
attach_bg() { # tag instance
  rm -f "$D/$1.in" "$D/$1.out" "$D/$1.err" "$D/$1.rc"
  mkfifo "$D/$1.in"
  ( "$CELLCTL" --socket "$SOCK" console "$2" <"$D/$1.in" >"$D/$1.out" 2>"$D/$1.err"
    echo $? >"$D/$1.rc" ) 3>&- &
  # Our end stays open (fd 4 or 5) so that the client's input does not end.
  eval "exec ${3:-4}>\"\$D/\$1.in\""
}

wait_rc() { # tag -> echoes the exit code
  for _ in $(seq 100); do
    [ -s "$D/$1.rc" ] && { cat "$D/$1.rc"; return 0; }
    sleep 0.1
  done
  echo "cellctl console ($1) did not exit" >&2
  return 1
}

@test "console: the ring buffer on attach, input to the shell and back, Ctrl-] detaches" {
  ctl create con1 --template "$TEMPLATE"
  ctl start con1
  pid=$(field con1 .pid)
  # busybox init runs a login shell on the console (the default inittab).
  grep -q '^::respawn:.*/bin/sh -l' "$STATE/instances/con1/disk/upper/etc/inittab"
  in_instance con1 sh -c 'echo marker-before-attach > /dev/console'
  # Input that ends at once: the buffer, then it leaves once output settles.
  run -0 --separate-stderr ctl console con1 </dev/null
  [[ "$output" == *marker-before-attach* ]]
  [[ "$stderr" == *"Ctrl-]"* ]]
  # Typed input reaches the console's shell and its answer comes back.
  attach_bg a con1
  echo 'echo answer-$((6*7))' >&4
  wait_grep "$D/a.out" answer-42
  # The detach key: exit 0, the instance keeps running.
  printf '\035' >&4
  [ "$(wait_rc a)" = 0 ]
  exec 4>&-
  [ "$(field con1 .state)" = running ]
  [ "$(field con1 .pid)" = "$pid" ]
  kill -0 "$pid"
  # What was typed after the detach key never reached the instance.
  attach_bg b con1
  printf 'echo gone-$((1+1))\035echo after-$((2+2))\n' >&4
  [ "$(wait_rc b)" = 0 ]
  exec 4>&-
  sleep 0.5
  run -0 ctl console con1 </dev/null
  [[ "$output" != *after-4* ]]
  ctl destroy con1 -f
}

@test "console: an init's own output, and a terminal with its size (script)" {
  ctl create con2 --template "$TEMPLATE" --init /hello-init
  ctl start con2
  run -0 ctl console con2 </dev/null
  [[ "$output" == *console-of-con2* ]]
  ctl create con3 --template "$TEMPLATE"
  ctl start con3
  # A terminal (script gives us a pty of 33x77): raw mode, its size
  # reaches the console, the detach key ends it.
  run -0 bash -c '(sleep 1; printf "stty size; echo tty-\$((5*5))\r"; sleep 1; printf "\035") |
    script -qec "stty rows 33 cols 77; $0 --socket $1 console con3" /dev/null' "$CELLCTL" "$SOCK"
  [[ "$output" == *tty-25* ]]
  [[ "$output" == *"33 77"* ]]
  [ "$(field con3 .state)" = running ]
  ctl destroy con2 -f
  ctl destroy con3 -f
}

@test "console: several clients; the console closing when the instance stops ends them (exit 0)" {
  ctl create con4 --template "$TEMPLATE"
  ctl start con4
  attach_bg c con4 4
  attach_bg d con4 5
  echo 'echo both-$((3*3))' >&4
  wait_grep "$D/c.out" both-9
  wait_grep "$D/d.out" both-9
  # Ctrl-Z and Ctrl-C are characters here, not signals to the init (which
  # holds the pty as its controlling terminal: a SIGTSTP would freeze
  # busybox init and the stop below would end in SIGKILL).
  printf 'sleep 1\n\032\003' >&4
  sleep 0.5
  ctl stop con4 --timeout 5
  ! grep -q "con4: did not stop in time" "$D/celld.log"
  [ "$(wait_rc c)" = 0 ]
  [ "$(wait_rc d)" = 0 ]
  exec 4>&- 5>&-
  grep -q "closed" "$D/c.err"
  # Stopped: what it last said, then the end.  Started again: the buffer
  # kept the earlier boot.
  run -0 ctl console con4 </dev/null
  [[ "$output" == *both-9* ]]
  ctl start con4
  run -0 ctl console con4 </dev/null
  [[ "$output" == *both-9* ]]
  ctl destroy con4 -f
}

@test "kill -9 of celld: the console keeps draining, keeps what came meanwhile, and works after the restart" {
  ctl create surv --template "$TEMPLATE"
  ctl start surv
  pid=$(field surv .pid)
  keeper=$(keeper_pids)
  [ -n "$keeper" ]
  kill -9 "$(cat "$D/celld.pid")"
  sleep 0.3
  # celld is down, nobody is attached: 10 MB to the console must not block.
  start=$(date +%s%N)
  run -0 timeout 60 "$CELL" --root "$STATE/run" exec surv sh -c 'yes | head -c 10485760 > /dev/console; echo flood-done'
  [ "$output" = flood-done ]
  echo "# 10 MB to an unread console, celld down: $((($(date +%s%N) - start) / 1000000)) ms" >&3
  in_instance surv sh -c 'echo written-while-down > /dev/console'
  [ "$(keeper_pids)" = "$keeper" ]
  start_daemon
  grep -q "console keeper: found running" "$D/celld.log"
  [ "$(field surv .state)" = running ]
  [ "$(field surv .pid)" = "$pid" ]
  # The same keeper, nothing lost: the buffer's last 64 KiB end with the
  # marker, after the flood's tail.
  [ "$(keeper_pids)" = "$keeper" ]
  run -0 --separate-stderr ctl console surv </dev/null
  [[ "$output" == *written-while-down* ]]
  [[ "$output" == *$'y\r\ny\r\n'* ]]
  [ "${#output}" -le $((64 * 1024)) ]
  attach_bg e surv
  echo 'echo back-$((40+2))' >&4
  wait_grep "$D/e.out" back-42
  printf '\035' >&4
  [ "$(wait_rc e)" = 0 ]
  exec 4>&-
  ctl destroy surv -f
}

@test "console: a missing instance, a user without rights, usage" {
  ctl create mine --template "$TEMPLATE" --init "/bin/sleep 100000"
  ctl start mine
  run -4 ctl console nosuch
  [[ "$output" == *"does not exist"* ]]
  run -5 setpriv --reuid 65534 --regid 65534 --clear-groups "$CELLCTL" --socket "$SOCK" console mine
  [[ "$output" == *"permission denied"* ]]
  # A member of the group: not someone else's instance.
  run -4 setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" console mine
  [[ "$output" == *"does not exist"* ]]
  # ... but its own.
  member() { setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" "$@"; }
  run -0 member create theirs --template "$TEMPLATE" --init /hello-init
  run -0 member start theirs
  run -0 member console theirs </dev/null
  [[ "$output" == *console-of-theirs* ]]
  # The keeper's socket is root's only.
  [ "$(stat -c %a:%u "$STATE/console.sock")" = 600:0 ]
  run -2 ctl console
  run -2 ctl console mine extra
  run -0 ctl raw <<<'{"version":1,"op":"console","name":"mine","tty":true}'
  [[ "$output" == *"unknown field"* ]]
  run -0 member destroy theirs -f
  ctl destroy mine -f
}

@test "the keeper killed: instances keep running, a new keeper, a lost console says so" {
  ctl create lost --template "$TEMPLATE" --init /hello-init
  ctl start lost
  pid=$(field lost .pid)
  old=$(keeper_pids)
  [ "$(echo "$old" | wc -l)" = 1 ]
  kill -9 "$old"
  sleep 0.3
  kill -0 "$pid"
  [ "$(field lost .state)" = running ]
  run -1 ctl console lost </dev/null
  [[ "$output" == *"lost with an earlier console keeper"* ]]
  grep -q "none answered, started a new one.*1 running instances" "$D/celld.log"
  new=$(keeper_pids)
  [ -n "$new" ]
  [ "$new" != "$old" ]
  # Its next start gives it a console again.
  ctl restart lost --timeout 5
  run -0 ctl console lost </dev/null
  [[ "$output" == *console-of-lost* ]]
  ctl destroy lost -f
}

@test "the keeper: one per state dir, its memory with 20 consoles, gone once nothing is left" {
  n=20
  for i in $(seq "$n"); do
    ctl create "k-$i" --template "$TEMPLATE" --init /hello-init
    ctl start "k-$i"
  done
  keeper=$(keeper_pids)
  [ "$(echo "$keeper" | wc -l)" = 1 ]
  # It holds a pty master per instance.
  masters=$(ls -l "/proc/$keeper/fd" | grep -c ptmx || true)
  [ "$masters" -ge "$n" ]
  echo "# keeper with $n consoles: $(awk '/VmRSS/{print $2, $3}' /proc/"$keeper"/status) RSS, $(awk '/^Pss:/{print $2, $3}' /proc/"$keeper"/smaps_rollup) PSS" >&3
  run -0 ctl console "k-$n" </dev/null
  [[ "$output" == *console-of-k-$n* ]]
  [[ "$output" != *console-of-k-1[^0-9]* ]]
  for i in $(seq "$n"); do
    ctl destroy "k-$i" -f
  done
  # Instances gone, daemon stopped: the keeper has nothing left to hold.
  started=$(grep -c "console keeper: started" "$D/celld.log")
  stop_daemon
  wait_no_keeper
  [ ! -e "$STATE/console.sock" ]
  # A new daemon starts a new keeper.
  start_daemon
  [ "$(grep -c "console keeper: started" "$D/celld.log")" = $((started + 1)) ]
  [ -n "$(keeper_pids)" ]
  [ "$(keeper_pids)" != "$keeper" ]
}
