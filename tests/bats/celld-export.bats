# shellcheck shell=bash disable=SC2016
# An instance shipped between two hosts: `cellctl export` on one celld,
# `cellctl import` on another (its own state dir, socket, id pool and
# cgroup parent), through a file and through a pipe.  The instance arrives
# with its files and hostname, a new id range; a layer the target has is
# not stored twice; a damaged or truncated stream is refused and leaves
# nothing; a running instance and a member are refused.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=64000000
POOL_COUNT=$((65536 * 16))
B_POOL_START=65500000
export CELLCTL # for the pipes run by bash -c

ctl_b() {
  "$CELLCTL" --socket "$SOCK_B" "$@"
}

inside_b() { # name cmd...
  local name=$1
  shift
  ctl_b exec "$name" -- "$@" </dev/null
}

member() { setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" "$@"; }

# The second host: a celld of its own beside the first.
start_daemon_b() {
  "$CELLD" --foreground --debug --config "$D/celld-b.conf" \
    --state-dir "$STATE_B" --socket "$SOCK_B" 2>>"$D/celld-b.log" 3>&- &
  echo $! >"$D/celld-b.pid"
  disown $!
  for _ in $(seq 100); do
    ctl_b list >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$D/celld-b.log" >&2
  return 1
}

write_conf() { # file pool_start cgroup_parent bridge-prefix
  cat >"$1" <<EOF
network.front.bridge = ${4}f$$
network.front.subnet4 = 10.251.1.0/24
network.front.subnet6 = none
pool_start = $2
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 2
cgroup_parent = $3
group = 4242
lxcfs = off
EOF
}

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-export-$$ CGPARENT_B=/cell-test-export-b-$$
  celld_files
  export STATE_B=$D/state-b SOCK_B=$D/celld-b.sock
  mkdir -p "$STATE_B"
  write_conf "$D/celld.conf" "$POOL_START" "$CGPARENT" cxa
  write_conf "$D/celld-b.conf" "$B_POOL_START" "$CGPARENT_B" cxb
  # A network the second host lacks.
  printf '%s\n' "network.gone.bridge = cxag$$" "network.gone.subnet4 = 10.251.2.0/24" \
    "network.gone.subnet6 = none" >>"$D/celld.conf"
  start_daemon
  start_daemon_b
  ctl image import "$TEMPLATE" --name busybox >/dev/null
  # The instance to ship: a file of its own, a file of the image deleted
  # (a whiteout in its disk), stopped.
  ctl create web1 --image busybox --hostname web-one --init "/bin/sleep 1000000" >/dev/null
  ctl start web1
  "$CELLCTL" --socket "$SOCK" exec web1 -- sh -c \
    'test -e /bin/ls && rm /bin/ls && echo shipped >/root/note' </dev/null
  ctl stop web1 >/dev/null
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  for n in $(ctl_b list --json 2>/dev/null | jq -r '.[].name'); do
    ctl_b destroy "$n" -f || true
  done
  kill "$(cat "$D/celld-b.pid")" 2>/dev/null || true
  sleep 0.2
  local rc=0
  celld_leaks || rc=1
  STATE=$STATE_B POOL_START=$B_POOL_START CGPARENT=$CGPARENT_B celld_leaks || rc=1
  return $rc
}

teardown() {
  for n in $(ctl_b list --json 2>/dev/null | jq -r '.[].name'); do
    ctl_b destroy "$n" -f >/dev/null || true
  done
  rm -f "$D"/*.cell
}

now_ms() { date +%s%3N; }

# Nothing of a refused import on B: no instance, no directory under
# instances/, no layer but the ones it had ($1), an empty tmp/.
nothing_left_on_b() {
  [ "$(ctl_b list --json | jq length)" = 0 ] || { ctl_b list; return 1; }
  [ -z "$(find "$STATE_B/instances" -mindepth 1 -type d)" ] ||
    { find "$STATE_B/instances"; return 1; }
  [ -z "$(ls -A "$STATE_B/images/tmp")" ] || { ls -la "$STATE_B/images/tmp"; return 1; }
  [ "$(ls "$STATE_B/images/layers" | wc -l)" = "$1" ] ||
    { ls "$STATE_B/images/layers"; return 1; }
}

@test "export to a file, import on another host: the files, the hostname, a new id range" {
  [ -z "$(ls -A "$STATE_B/images/layers")" ]
  t0=$(now_ms)
  run -0 ctl export web1 "$D/web1.cell"
  t1=$(now_ms)
  size=$(stat -c %s "$D/web1.cell")
  [ "$size" -gt 1000 ]
  [ "$(stat -c %a "$D/web1.cell")" = 600 ]
  run -0 ctl_b import "$D/web1.cell" --name web2
  t2=$(now_ms)
  [ "$output" = web2 ]
  echo "# busybox instance: export $((t1 - t0)) ms, $size bytes; import $((t2 - t1)) ms" >&3
  # B had no layer: the image's came with the stream.
  [ "$(ls "$STATE_B/images/layers" | wc -l)" = 1 ]
  [ -z "$(ls -A "$STATE_B/images/tmp")" ]
  a_start=$(ctl show web1 --json | jq -r .id_start)
  b_start=$(ctl_b show web2 --json | jq -r .id_start)
  [ "$b_start" -ge "$B_POOL_START" ]
  [ "$b_start" != "$a_start" ]
  [ "$(ctl_b show web2 --json | jq -r .hostname)" = web-one ]
  [ "$(ctl_b show web2 --json | jq -r .state)" = created ]
  ctl_b start web2
  run -0 inside_b web2 cat /root/note
  [ "$output" = shipped ]
  run -0 inside_b web2 sh -c 'hostname; test -e /bin/ls || echo no-ls; test -e /bin/sh && echo sh'
  [ "$output" = $'web-one\nno-ls\nsh' ]
  # Its files are in its own ids on B.
  run -0 inside_b web2 stat -c %u /root/note
  [ "$output" = 0 ]
  pid=$(ctl_b show web2 --json | jq -r .pid)
  [ "$(stat -c %u "/proc/$pid")" = "$b_start" ]
}

@test "export through a pipe into a host that has the image: its layer is not stored twice" {
  ctl_b image import "$TEMPLATE" --name busybox >/dev/null
  layers=$(ls "$STATE_B/images/layers" | wc -l)
  t0=$(now_ms)
  run -0 bash -c '"$CELLCTL" --socket "$SOCK" export web1 - |
                  "$CELLCTL" --socket "$SOCK_B" import - --name y'
  t1=$(now_ms)
  echo "# busybox instance through a pipe: $((t1 - t0)) ms" >&3
  [ "$output" = y ]
  [ "$(ls "$STATE_B/images/layers" | wc -l)" = "$layers" ]
  [ -z "$(ls -A "$STATE_B/images/tmp")" ]
  ctl_b start y
  run -0 inside_b y cat /root/note
  [ "$output" = shipped ]
  # The same name again is refused, and leaves nothing more.
  ctl export web1 "$D/again.cell"
  run -6 ctl_b import "$D/again.cell" --name y
  [[ "$output" == *"instance \`y\` already exists"* ]]
  [ -z "$(ls -A "$STATE_B/images/tmp")" ]
  [ "$(ls "$STATE_B/images/layers" | wc -l)" = "$layers" ]
}

@test "networks: an address kept where it is free, else a new one and a warning; a network the host lacks dropped" {
  # Created, never started (an export takes a created instance too): no
  # bridge is made on either host.
  ctl create net1 --image busybox --init "/bin/sleep 1000000" \
    --net front:10.251.1.5 --net gone >/dev/null
  ctl export net1 "$D/net1.cell"
  ctl destroy net1
  run -0 ctl_b import "$D/net1.cell" --name n1
  [[ "$output" == *"warning: network \`gone\` does not exist here"* ]]
  [ "$(ctl_b show n1 --json | jq -c '[.networks[] | [.network, .ipv4, .interface]]')" = \
    '[["front","10.251.1.5","eth0"]]' ]
  # The same stream again: the address is n1's now.
  run -0 ctl_b import "$D/net1.cell" --name n2
  [[ "$output" == *"warning: network \`front\`: address 10.251.1.5 is not free here"* ]]
  ip=$(ctl_b show n2 --json | jq -r '.networks[0].ipv4')
  [[ "$ip" == 10.251.1.* ]]
  [ "$ip" != 10.251.1.5 ]
}

@test "a truncated stream is refused and leaves nothing" {
  ctl export web1 "$D/full.cell"
  layers=$(ls "$STATE_B/images/layers" | wc -l)
  half=$(($(stat -c %s "$D/full.cell") / 2))
  run -1 bash -c 'head -c '"$half"' "$D/full.cell" | "$CELLCTL" --socket "$SOCK_B" import - --name cut'
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"truncated"* ]]
  nothing_left_on_b "$layers"
}

@test "a stream with one byte changed is refused and leaves nothing" {
  ctl export web1 "$D/full.cell"
  layers=$(ls "$STATE_B/images/layers" | wc -l)
  cp "$D/full.cell" "$D/bad.cell"
  python3 - "$D/bad.cell" <<'EOF'
import os, sys
with open(sys.argv[1], "r+b") as f:
    size = os.fstat(f.fileno()).st_size
    f.seek(size * 2 // 3)
    b = f.read(1)
    f.seek(size * 2 // 3)
    f.write(bytes([b[0] ^ 0x40]))
EOF
  ! cmp -s "$D/full.cell" "$D/bad.cell"
  run -1 ctl_b import "$D/bad.cell" --name flipped
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"damaged"* ]]
  nothing_left_on_b "$layers"
}

@test "a record the target cannot take is refused after its layers were moved in, and all of it is undone" {
  # B lacks the image: its layer is moved into the store, and its
  # description written, before the record is found wrong.
  for id in $(ctl_b image list --json | jq -r '.[].id'); do
    ctl_b image rm "$id" >/dev/null 2>&1 || true
  done
  rm -rf "$STATE_B/images/layers/"* "$STATE_B/images/images/"*
  ctl export web1 "$D/full.cell"
  mkdir "$D/unpacked"
  zstd -dc "$D/full.cell" | tar -C "$D/unpacked" -xf -
  jq -c '.instance.hostname = "no/such host"' "$D/unpacked/cell-export.json" >"$D/json"
  mv "$D/json" "$D/unpacked/cell-export.json"
  (cd "$D/unpacked" && tar --format=pax -cf - cell-export.json layers/*.tar disk.tar) |
    zstd -q >"$D/bad.cell"
  rm -rf "$D/unpacked"
  run -1 ctl_b import "$D/bad.cell" --name badhost
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"the record's hostname is not a host name"* ]]
  nothing_left_on_b 0
  [ -z "$(ls -A "$STATE_B/images/images")" ]
}

@test "what is not an export is refused and leaves nothing" {
  layers=$(ls "$STATE_B/images/layers" | wc -l)
  run -1 ctl_b import "$TEMPLATE/bin/busybox"
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"not an export of cell"* ]]
  nothing_left_on_b "$layers"
}

@test "a running instance cannot be exported (wrong-state), and no file is left" {
  ctl start web1
  run -7 ctl export web1 "$D/running.cell"
  [[ "$output" == *"is running: stop it to export it"* ]]
  [ ! -e "$D/running.cell" ]
  ctl stop web1 >/dev/null
  # Nor is a stream written to a terminal, nor an existing file replaced.
  : >"$D/exists.cell"
  run -1 ctl export web1 "$D/exists.cell"
  [[ "$output" == *"File exists"* ]]
  [ ! -s "$D/exists.cell" ]
}

@test "an instance being exported can neither start nor be destroyed until the export is done" {
  # The reader waits: the export blocks on a full pipe, its instance busy.
  "$CELLCTL" --socket "$SOCK" export web1 - | { sleep 3; cat >/dev/null; } &
  reader=$!
  sleep 1
  run -7 ctl start web1
  [[ "$output" == *"instance \`web1\` is being exported"* ]]
  run -7 ctl destroy web1
  [[ "$output" == *"being exported"* ]]
  wait "$reader"
  sleep 0.5
  ctl start web1
  ctl stop web1 >/dev/null
}

@test "export and import are root's: a member is refused (permission-denied)" {
  run -5 bash -c 'setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" export web1 - >/dev/null'
  [[ "$output" == *"only root may export"* ]]
  run -5 bash -c 'setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" import - </dev/null'
  [[ "$output" == *"only root may import"* ]]
}

@test "a clone with a snapshot behind it ships whole: its own frozen layers travel as its image's" {
  ctl create orig --image busybox --init "/bin/sleep 1000000"
  ctl start orig
  inside_a() { ctl exec "$1" -- "${@:2}" </dev/null; }
  inside_a orig sh -c 'echo frozen > /frozen'
  ctl stop orig --timeout 1
  ctl snapshot orig s1 >/dev/null
  ctl clone orig copy
  ctl start copy
  inside_a copy sh -c 'echo upper > /upper'
  ctl stop copy --timeout 1
  [ "$(ctl show copy --json | jq '.own_layers | length')" = 1 ]
  ctl export copy - | ctl_b import - --name arrived
  [ "$(ctl_b show arrived --json | jq '(.own_layers // []) | length')" = 0 ]
  ctl_b start arrived
  run -0 inside_b arrived sh -c 'cat /frozen /upper'
  [ "$output" = $'frozen\nupper' ]
  ctl_b destroy arrived -f
  ctl destroy copy
  ctl destroy orig
}
