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
  [ ! -e "$S/sock2" ]
  [ ! -e "$S/state2" ]
  for _ in $(seq 20); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
}

@test "cellctl log: the instance's lifecycle, exits with their status or signal, OOM kills, who asked" {
  ctl create v --image bb --init "$SLEEP" --memory 16M
  ctl log v --follow >"$D/follow" 2>&1 3>&- &
  follower=$!
  ctl start v
  ctl stop v
  ctl start v
  # An OOM kill: a process that eats past the limit.
  inside v sh -c 'x=$(head -c 64000000 /dev/zero | tr "\0" a); echo ${#x}' || true
  # (celld counts OOM kills twice a second.)
  for _ in $(seq 50); do ctl log v | grep -q " oom: " && break; sleep 0.1; done
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
  # --follow printed each line once as it came (it asks twice a second),
  # and ends with the instance.
  for _ in $(seq 50); do grep -q " oom: " "$D/follow" && break; sleep 0.1; done
  ctl destroy v -f
  local rc=0
  wait "$follower" || rc=$?
  [ "$rc" = 4 ]
  grep -q " oom: " "$D/follow"
  [ "$(grep -c ' started$' "$D/follow")" = 2 ]
  [ "$(tail -1 "$D/follow")" = "cellctl: instance \`v\` does not exist" ]
}

@test "pause: a paused instance runs nothing, shows paused (across a celld restart), refuses exec, and stops or is destroyed" {
  ctl create p --image bb --init "/bin/sh -c 'trap \"exit 0\" TERM; i=0; while :; do i=\$((i+1)); echo \$i > /tick; sleep 0.05; done & wait'"
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
  tick=$(cat "$(root_of p)/tick")
  sleep 0.3
  [ "$(cat "$(root_of p)/tick")" = "$tick" ]
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
  [ "$(cat "$(root_of p)/tick")" != "$tick" ]
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

# Freeze an instance's cgroup behind celld's back, as a snapshot,
# checkpoint or migration does for a moment (FROZEN or THAWED).
freezer_set() { # CGROUP FROZEN|THAWED
  local cg=$1
  if [ -e "/sys/fs/cgroup/freezer$cg/freezer.state" ]; then
    echo "$2" >"/sys/fs/cgroup/freezer$cg/freezer.state"
  else
    [ "$2" = FROZEN ] && echo 1 >"/sys/fs/cgroup$cg/cgroup.freeze" ||
      echo 0 >"/sys/fs/cgroup$cg/cgroup.freeze"
  fi
}

@test "celld killed while a snapshot or checkpoint had an instance frozen: the next celld thaws it and drops the unfinished images, a paused one stays paused" {
  ctl create fz --image bb --init "/bin/sh -c 'i=0; while :; do i=\$((i+1)); echo \$i > /tick; sleep 0.05; done'"
  ctl start fz
  # A finished checkpoint: its snapshot (the images stand beside it).
  ctl snapshot fz cp0 >/dev/null
  ctl create pz --image bb --init "$SLEEP"
  ctl start pz
  ctl pause pz
  root=$(root_of fz)
  cg=$(field fz .cgroup)
  pid=$(cat "$D/celld.pid")
  kill -9 "$pid"
  for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
  freezer_set "$cg" FROZEN
  # The images criu was writing, beside a finished checkpoint's, and
  # images renamed into place whose snapshot was never recorded.
  mkdir -p "$STATE/instances/fz/checkpoints/.tmp-cp1" "$STATE/instances/fz/checkpoints/cp0" \
    "$STATE/instances/fz/checkpoints/cp2"
  echo pages >"$STATE/instances/fz/checkpoints/.tmp-cp1/pages-1.img"
  tick=$(cat "$root/tick")
  sleep 0.3
  [ "$(cat "$root/tick")" = "$tick" ]
  start_daemon --log "$OPLOG"
  [ "$(field fz .state)" = running ]
  sleep 0.3
  [ "$(cat "$root/tick")" != "$tick" ]
  grep -q "fz: left frozen by an operation an earlier celld did not finish: thawed" "$OPLOG"
  [ ! -e "$STATE/instances/fz/checkpoints/.tmp-cp1" ]
  [ ! -e "$STATE/instances/fz/checkpoints/cp2" ]
  [ -d "$STATE/instances/fz/checkpoints/cp0" ]
  [ "$(field pz .state)" = paused ]
  ctl resume pz
  run -0 ctl destroy fz -f
  run -0 ctl destroy pz -f
}

@test "file push and pull: a running and a stopped instance, owners and mode as the instance sees them" {
  ctl create f --image bb --init "$SLEEP"
  printf 'one\n' >"$D/one"
  chmod 0640 "$D/one"
  # Stopped: its root is mounted for the copy, and unmounted after.
  run -0 ctl file push "$D/one" f:/root/one
  [ -z "$(grep " $STATE/instances/f/rootfs " /proc/self/mountinfo)" ]
  ctl start f
  run -0 ctl file push --uid 1000 --gid 100 --mode 0600 "$D/one" f:/tmp/two
  run -0 inside f stat -c '%u %g %a %s' /root/one /tmp/two
  [ "$output" = $'0 0 640 4\n1000 100 600 4' ]
  # On the host, the instance's ids: its range.
  [ "$(stat -c %u "/proc/$(field f .pid)/root/tmp/two")" = $((POOL_START + 1000)) ]
  inside f sh -c 'echo inside > /tmp/three; chmod 0604 /tmp/three'
  run -0 ctl file pull f:/tmp/three "$D/three"
  [ "$(cat "$D/three")" = inside ]
  [ "$(stat -c '%U %a' "$D/three")" = "root 604" ]
  ctl stop f
  run -0 ctl file pull f:/tmp/two "$D/two"
  [ "$(cat "$D/two")" = one ]
  [ -z "$(grep " $STATE/instances/f/rootfs " /proc/self/mountinfo)" ]
  # Bad input: one line, nothing left behind.
  run -1 ctl file pull f:/nonexistent "$D/four"
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"/nonexistent"*"No such file"* ]]
  [ ! -e "$D/four" ]
  run -1 ctl file pull f:/tmp/two "$D/two"
  [[ "$output" == *"a pull makes a new file"* ]]
  run -1 ctl file push "$D/one" f:/nodir/x
  [[ "$output" == *"directory \`/nodir\`"* ]]
  run -1 ctl file push "$D/one" f:/root
  [[ "$output" == *"is a directory"* ]]
  run -2 ctl file push "$D/one" f:relative
  run -2 ctl file push --uid 70000 "$D/one" f:/x
  run -1 ctl file push /dev/null f:/x
  ctl start f
  [ -z "$(inside f sh -c 'ls -a / /root /tmp | grep cell-push')" ]
}

@test "attack: a symlink in the instance to the host's /etc/shadow (absolute and ../..) reads and writes the instance's own file" {
  ctl create a --image bb --init "$SLEEP"
  ctl start a
  shadow_sum=$(sha256sum /etc/shadow)
  inside a sh -c 'echo instance-shadow > /etc/shadow; ln -s /etc/shadow /tmp/abs; ln -s ../../../../../../../etc/shadow /tmp/rel'
  for link in abs rel; do
    run -0 ctl file pull "a:/tmp/$link" "$D/pulled-$link"
    [ "$(cat "$D/pulled-$link")" = instance-shadow ]
  done
  # A host path named inside: it does not exist there.
  inside a ln -s "$D/one" /tmp/hostpath
  run -1 ctl file pull a:/tmp/hostpath "$D/pulled-host"
  [ ! -e "$D/pulled-host" ]
  # A push onto the links replaces them; the host's shadow is untouched.
  printf 'pwned\n' >"$D/pwn"
  run -0 ctl file push "$D/pwn" a:/tmp/abs
  run -0 ctl file push "$D/pwn" a:/tmp/rel
  [ "$(sha256sum /etc/shadow)" = "$shadow_sum" ]
  run -0 inside a sh -c 'cat /tmp/abs /etc/shadow; test -L /tmp/abs || echo replaced'
  [ "$output" = $'pwned\ninstance-shadow\nreplaced' ]
}

@test "attack: a symlinked parent directory leading to the host's /etc cannot place a file there" {
  ctl create b --image bb --init "$SLEEP"
  ctl start b
  inside b sh -c "ln -s /etc /tmp/etc-link; ln -s ../../../../../../etc /tmp/etc-rel; ln -s $D /tmp/hostdir"
  printf 'x\n' >"$D/x"
  run -0 ctl file push "$D/x" b:/tmp/etc-link/cell-attack-$$
  run -0 ctl file push "$D/x" b:/tmp/etc-rel/cell-attack2-$$
  [ ! -e "/etc/cell-attack-$$" ]
  [ ! -e "/etc/cell-attack2-$$" ]
  run -0 inside b ls /etc/cell-attack-$$ /etc/cell-attack2-$$
  run -1 ctl file push "$D/x" b:/tmp/hostdir/planted
  [ ! -e "$D/planted" ]
}

@test "attack: a pull of /proc or /sys files of a running instance (the host's memory, kernel state) is refused" {
  ctl create k --image bb --init "$SLEEP"
  ctl start k
  for f in /proc/1/environ /proc/self/status /proc/cpuinfo /sys/kernel/uevent_seqnum; do
    run -1 ctl file pull "k:$f" "$D/proc-file"
    [[ "$output" == *"kernel filesystem"* || "$output" == *"No such file"* ]]
    [ ! -e "$D/proc-file" ]
  done
  run -1 ctl file pull k:/proc/1/environ "$D/proc-file"
  [[ "$output" == *"kernel filesystem (/proc, /sys, ...): not a file of the instance"* ]]
  # Links to them, too.
  inside k ln -s /proc/kcore /tmp/core
  run -1 ctl file pull k:/tmp/core "$D/proc-file"
  [ ! -e "$D/proc-file" ]
  run -1 ctl file pull k:/dev/null "$D/proc-file"
  [[ "$output" == *"not a regular file"* ]]
}

@test "attack: a tree with symlinks to the host's /etc pushed with -r sends links, never the host's files" {
  ctl create t --image bb --init "$SLEEP"
  ctl start t
  rm -rf "$D/tree"
  mkdir -p "$D/tree/sub/deep"
  echo a >"$D/tree/a"
  echo b >"$D/tree/sub/deep/b"
  chmod 0750 "$D/tree/sub"
  ln -s /etc/shadow "$D/tree/shadow"
  ln -s /etc "$D/tree/etc-dir"
  run ctl file push -r --uid 1000 "$D/tree" t:/tmp/tree
  echo "$output"
  [ "$status" -eq 0 ]
  run -0 inside t sh -c 'cd /tmp/tree && stat -c "%n %u %a" a sub sub/deep/b && readlink shadow && readlink etc-dir && test -d etc-dir/ && echo dir'
  [ "$output" = $'a 1000 644\nsub 1000 750\nsub/deep/b 1000 644\n/etc/shadow\n/etc\ndir' ]
  # The links resolve inside: no host shadow came along.
  inside t sh -c 'echo inside > /etc/shadow'
  run -0 inside t cat /tmp/tree/shadow
  [ "$output" = inside ]
  # A FIFO in the tree: refused before anything is sent.
  mkfifo "$D/tree/fifo"
  run -1 ctl file push -r "$D/tree" t:/tmp/tree2
  [[ "$output" == *"fifo\` is not a regular file, a directory nor a symlink: nothing was copied" ]]
  run -1 inside t test -e /tmp/tree2
}
