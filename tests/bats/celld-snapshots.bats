# shellcheck shell=bash disable=SC2016
# Snapshots, restore, clones and rename, as a VPS host uses them: an
# instance's writable layer frozen into a layer the store shares (no data
# copied for a stopped instance; a running one frozen while its layer is
# copied), clones on those layers with their own ids, addresses and
# identity, and nothing left once the instances are gone.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=66000000
POOL_COUNT=$((65536 * 16))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-snapshots-$$ BRG=cts$$
  celld_files
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 2
cgroup_parent = $CGPARENT
group = 4242
lxcfs = off
network.s.bridge = $BRG
network.s.subnet4 = 10.97.3.0/24
network.s.subnet6 = none
EOF
  start_daemon
  ctl image import "$TEMPLATE" --name bb >/dev/null
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  ctl image rm bb >/dev/null 2>&1 || true
  celld_leaks
  ip link del "$BRG" 2>/dev/null || true
}

teardown() {
  destroy_all
}

layers() { ls "$STATE/images/layers" | wc -l; }
SLEEP="/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"

@test "snapshot of a stopped instance freezes its layer without copying it; restore brings it back" {
  ctl create s --image bb --init "$SLEEP"
  ctl start s
  inside s sh -c 'head -c 20000000 /dev/zero > /big; echo one > /note'
  ctl stop s --timeout 5
  before=$(layers)
  upper_inode=$(stat -c %i "$STATE/instances/s/disk/upper/big")
  run -0 ctl snapshot s first
  [ "$output" = first ]
  # The very file, moved into the store: no copy.
  [ "$(layers)" = $((before + 1)) ]
  [ -n "$(find "$STATE/images/layers" -inum "$upper_inode" -name big)" ]
  [ ! -e "$STATE/instances/s/disk/upper/big" ]
  ctl start s
  run -0 inside s cat /note
  [ "$output" = one ]
  inside s sh -c 'echo two > /note; rm /big'
  ctl stop s --timeout 5
  run -0 ctl snapshots s --json
  [ "$(echo "$output" | jq -r '.[].name')" = first ]
  ctl restore s first
  ctl start s
  run -0 inside s sh -c 'cat /note; test -e /big && echo big'
  [ "$output" = $'one\nbig' ]
  run -6 ctl snapshot s first
  [[ "$output" == *"exists"* ]]
  run -4 ctl restore s nosuch
  [[ "$output" == *"no such snapshot"* ]]
}

@test "snapshot of a running instance: frozen for the copy, it goes on running; restore of a running one is refused" {
  ctl create r --image bb --init "$SLEEP"
  ctl start r
  pid=$(field r .pid)
  inside r sh -c 'echo live > /state'
  run -0 ctl snapshot r
  snap=$output
  [[ "$snap" == snap-* ]]
  [ "$(field r .pid)" = "$pid" ]
  [ "$(field r .state)" = running ]
  inside r sh -c 'echo later > /state'
  run -7 ctl restore r "$snap"
  [[ "$output" == *"stop it first"* ]]
  ctl stop r --timeout 5
  ctl restore r "$snap"
  ctl start r
  run -0 inside r cat /state
  [ "$output" = live ]
}

@test "dos: a running instance's snapshot and clone copy in a child: celld serves on, the frozen instance takes only looks, a copy killed leaves nothing" {
  ctl create r --image bb --init "$SLEEP"
  ctl create other --image bb --init "$SLEEP"
  ctl start r
  ctl start other
  inside r sh -c 'echo live > /state'
  # The child pauses with the instance frozen, before its copy.
  CELLD_TEST_PAUSE=snapshot-copy restart_celld
  : >"$D/celld.log"
  (exec "$CELLCTL" --socket "$SOCK" snapshot r s1 >"$D/snap.out" 2>&1) &
  local client=$! child
  child=$(paused_child 1)
  [ "$child" != "$(cat "$D/celld.pid")" ]
  # celld answers at once, and runs the other instances' commands.
  timeout 2 "$CELLCTL" --socket "$SOCK" list >/dev/null
  [ "$(field r .state)" = running ]
  run -0 timeout 5 "$CELLCTL" --socket "$SOCK" exec other -- echo served
  [ "$output" = served ]
  # The instance under the copy takes only the ops that look.
  run -0 ctl snapshots r
  run -0 ctl get r memory
  [ "$(ctl show r --json | jq -r .busy)" = snapshot ]
  local op
  for op in "stop r" "pause r" "resume r" "exec r -- true" "snapshot r s2" "destroy r -f"; do
    # shellcheck disable=SC2086 # the op's words
    # (stop says on stdout what it is about to do)
    run --separate-stderr ctl $op
    [ "$status" -ne 0 ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == "cellctl: instance \`r\`: a snapshot of it is being copied: "* ]]
    # (and stop does not say it is stopping)
    [ -z "$output" ]
  done
  # The copy's process killed: one line for the client, nothing recorded,
  # no layer left, the instance thawed and serving again.
  snapshot_copy_killed r "$child" "$client"
  run -0 timeout 5 "$CELLCTL" --socket "$SOCK" exec r -- cat /state
  [ "$output" = live ]
  # A clone of it copies the same way: killed, no clone and no layer left.
  (exec "$CELLCTL" --socket "$SOCK" clone r cl >"$D/clone.out" 2>&1) &
  client=$!
  child=$(paused_child 2)
  timeout 2 "$CELLCTL" --socket "$SOCK" list >/dev/null
  [ "$(ctl show r --json | jq -r .busy)" = clone ]
  run -7 --separate-stderr ctl stop r
  [ "$stderr" = "cellctl: instance \`r\`: a clone of it is being copied: try again when \`cellctl clone\` has answered" ]
  kill -9 "$child"
  local status=0
  wait "$client" || status=$?
  [ "$status" -ne 0 ]
  [ "$(cat "$D/clone.out")" = "cellctl: clone \`cl\` of \`r\` failed: its process died" ]
  run -4 ctl show cl
  [ -z "$(unnamed_layers)" ]
  # And without the pause the snapshot is taken, the instance running on.
  restart_celld
  run -0 ctl snapshot r s1
  [ "$(ctl snapshots r --json | jq -r '.[].name')" = s1 ]
  [ "$(field r .state)" = running ]
  [ -z "$(unnamed_layers)" ]
}

@test "clone: its own ids, address, hostname and machine-id on the same layers; no data copied for a stopped source" {
  ctl create src --image bb --init "$SLEEP" --net s
  ctl start src
  inside src sh -c 'head -c 20000000 /dev/zero > /data; echo mine > /etc/motd'
  ctl stop src --timeout 5
  used=$(du -sxk "$STATE" | cut -f1)
  for i in 1 2 3; do ctl clone src "c$i"; done
  # The first froze src's layer; the next ones had nothing new to freeze.
  [ "$(field src '.own_layers | length')" = 1 ]
  [ "$(field c3 '.own_layers | length')" = 1 ]
  # Three clones of 20 MB: a few KiB each.
  [ $(($(du -sxk "$STATE" | cut -f1) - used)) -lt 2048 ]
  ctl start c1
  ctl start src
  run -0 inside c1 sh -c 'cat /etc/motd; hostname; wc -c < /data'
  [ "$output" = $'mine\nc1\n20000000' ]
  [ "$(field c1 .id_start)" != "$(field src .id_start)" ]
  [ "$(field c1 .networks[0].ipv4)" != "$(field src .networks[0].ipv4)" ]
  [ "$(inside c1 cat /etc/machine-id)" != "$(inside src cat /etc/machine-id)" ]
  # Each writes its own layer: the source does not see the clone's.
  inside c1 sh -c 'echo clone > /etc/motd'
  run -0 inside src cat /etc/motd
  [ "$output" = mine ]
  # A running source is cloned as it is now.
  inside src sh -c 'echo now > /now'
  run -0 ctl clone src live --start
  run -0 inside live cat /now
  [ "$output" = now ]
  run -6 ctl clone src c1
  run -4 ctl clone nosuch c9
}

@test "rename a stopped instance: its host name and files follow, its machine-id stays; a running one is refused" {
  ctl create old --image bb --init "$SLEEP"
  ctl start old
  machine_id=$(inside old cat /etc/machine-id)
  run -7 ctl rename old new
  [[ "$output" == *"stop it first"* ]]
  ctl stop old --timeout 5
  ctl rename old new
  run -4 ctl show old
  [ -d "$STATE/instances/new" ] && [ ! -e "$STATE/instances/old" ] && [ ! -e "$STATE/instances/old.json" ]
  [ "$(field new .hostname)" = new ]
  ctl start new
  run -0 inside new sh -c 'hostname; cat /etc/hostname; hostname -f'
  [ "$output" = $'new\nnew\nnew' ]
  run -0 inside new cat /etc/hosts
  [[ "$output" == *$'127.0.1.1\tnew'* && "$output" != *old* ]]
  # The same machine under another name.
  [ "$(inside new cat /etc/machine-id)" = "$machine_id" ]
  # A host name chosen at create is the tenant's: it stays.
  ctl create chosen --image bb --init "$SLEEP" --hostname www.example.org
  ctl rename chosen chosen2
  [ "$(field chosen2 .hostname)" = www.example.org ]
  ctl start chosen2
  run -0 inside chosen2 sh -c 'hostname; cat /etc/hostname'
  [ "$output" = $'www.example.org\nwww.example.org' ]
  ctl destroy chosen2 -f
  # A restarted celld finds it under its new name.
  kill -9 "$(cat "$D/celld.pid")"
  sleep 0.3
  start_daemon
  [ "$(field new .state)" = running ]
}

@test "layers are removed with the last instance, snapshot or clone that holds them" {
  base=$(layers)
  ctl create g --image bb --init "$SLEEP"
  ctl start g
  inside g sh -c 'echo x > /x'
  ctl stop g --timeout 5
  ctl snapshot g one >/dev/null
  ctl clone g h
  [ "$(layers)" = $((base + 1)) ]
  ctl destroy g
  # h still stands on the frozen layer.
  [ "$(layers)" = $((base + 1)) ]
  ctl start h
  run -0 inside h cat /x
  ctl destroy h -f
  [ "$(layers)" = "$base" ]
  # A member sees and snapshots only its own.
  run -0 setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" create m --image bb --init "$SLEEP"
  ctl create rootsown --image bb --init "$SLEEP"
  run -4 setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" snapshot rootsown
  run -4 setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" clone rootsown mine
  run -0 setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" clone m m2
  [ "$(field m2 .owner)" = 4243 ]
}
