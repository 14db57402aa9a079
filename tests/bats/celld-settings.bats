# shellcheck shell=bash disable=SC2016
# Settings after create (cellctl set/get) and profiles: each key on a
# stopped and on a running instance, checked from inside (host name, a
# host directory mounted idmapped with its owners and ro honoured,
# /dev/net/tun usable, the memory limit in the cgroup, env in exec, what
# waits for the next start marked pending and applied then; devices and
# NICs given live: celld-live.bats); the attacks
# on host mounts and devices; profiles applied in order under the flags,
# an edit reaching the instance at its next start, rm refused while used.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=80000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-settings-$$
  celld_files
  cat >"$D/celld.conf" <<EOF2
socket_mode = 0666
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 2
group = 4242
cgroup_parent = $CGPARENT
lxcfs = off
network.n1.bridge = cst$$
network.n1.subnet4 = 10.250.80.0/24
network.n2.bridge = cst2$$
network.n2.subnet4 = 10.250.81.0/24
EOF2
  start_daemon
  ctl image import "$TEMPLATE" --name bb >/dev/null
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  ctl image rm bb >/dev/null 2>&1 || true
  celld_leaks || true
  rm -rf "$D/profiles-left"
}

teardown() {
  destroy_all
  for p in $(ctl profile list 2>/dev/null); do ctl profile rm "$p" || true; done
}

SLEEP="/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"
MEMBER=(setpriv --reuid=4243 --regid=4242 --clear-groups --)

# The memory limit in the instance's cgroup (v1 or v2), in bytes.
cgroup_memory() { # name
  local f
  for f in /sys/fs/cgroup/memory"$CGPARENT/$1"/memory.limit_in_bytes \
    /sys/fs/cgroup"$CGPARENT/$1"/memory.max; do
    [ -f "$f" ] && { cat "$f"; return; }
  done
  echo "no memory cgroup" >&2
  return 1
}

# The MAJ:MIN of a whole disk of the host, and the read limits the
# instance's cgroup has (v1 blkio or v2 io.max).
host_disk() {
  local b
  for b in /sys/block/*; do
    case $b in */loop* | */ram* | */zram* | */nbd*) continue ;; esac
    cat "$b/dev"
    return
  done
}
cgroup_read_bps() { # name
  local f=/sys/fs/cgroup/blkio"$CGPARENT/$1"/blkio.throttle.read_bps_device
  [ -f "$f" ] && { cat "$f"; return; }
  sed -n 's/^\([0-9:]*\) rbps=\([0-9]*\).*/\1 \2/p' /sys/fs/cgroup"$CGPARENT/$1"/io.max
}

@test "set on a stopped instance: the record keeps it, get reads it, start gives it" {
  ctl create s1 --image bb --init "$SLEEP"
  run -0 ctl set s1 hostname=web-1 memory=64M env.GREETING=hello restart=always \
    autostart=true autostart.priority=50 halt_signal=SIGUSR2 cpus=0.5 pids=100
  run -0 ctl get s1 hostname
  [ "$output" = web-1 ]
  run -0 ctl get s1 memory
  [ "$output" = $((64 << 20)) ]
  run -0 ctl get s1 restart
  [ "$output" = always ]
  run -0 ctl get s1 halt_signal
  [ "$output" = SIGUSR2 ]
  run -0 ctl get s1 autostart.priority
  [ "$output" = 50 ]
  # Stopped: nothing waits, a start takes all of it.
  [ "$(field s1 '.pending | length')" = 0 ]
  ctl start s1
  run -0 inside s1 hostname
  [ "$output" = web-1 ]
  # Its files too, which a systemd guest sets its host name from.
  run -0 inside s1 sh -c 'cat /etc/hostname; hostname -f'
  [ "$output" = $'web-1\nweb-1' ]
  [ "$(cgroup_memory s1)" = $((64 << 20)) ]
  run -0 inside s1 sh -c 'echo $GREETING'
  [ "$output" = hello ]
  # The record survives celld: it was saved (and fsynced) as before.
  grep -q '"env.GREETING=hello"' "$STATE/instances/s1.json"
}

@test "set on a running instance: hostname, memory and env live; init pending until the next start; /etc/hostname and hosts name it from then" {
  ctl create r1 --image bb --init "$SLEEP"
  ctl start r1
  local disk
  disk=$(host_disk)
  run -0 ctl set r1 hostname=live-name memory=48M env.LIVE=yes init="/bin/sh -c 'sleep 1000000'" \
    "blkio.read_bps.$disk=1M"
  [ "$(cgroup_read_bps r1)" = "$disk $((1 << 20))" ]
  run -0 inside r1 hostname
  [ "$output" = live-name ]
  [ "$(cgroup_memory r1)" = $((48 << 20)) ]
  run -0 inside r1 sh -c 'echo $LIVE'
  [ "$output" = yes ]
  [ "$(field r1 '.pending | join(",")')" = init ]
  run -0 ctl show r1
  [[ "$output" == *"pending      init (at the next start)"* ]]
  run -0 --separate-stderr ctl get r1 init
  [[ "$stderr" == *"pending, applies at the next start"* ]]
  # The tenant's own edit of its /etc/hosts stays while the name does not
  # change; the new name reaches /etc/hostname and hosts at the next start.
  ctl restart r1 --timeout 1
  [ "$(field r1 '.pending | length')" = 0 ]
  run -0 inside r1 sh -c 'cat /etc/hostname; grep -c live-name /etc/hosts'
  [ "$output" = $'live-name\n1' ]
  inside r1 sh -c 'echo "10.9.9.9 tenant-added" >>/etc/hosts'
  ctl restart r1 --timeout 1
  run -0 inside r1 grep -c tenant-added /etc/hosts
  [ "$output" = 1 ]
  run -0 inside r1 sh -c "tr '\\0' ' ' </proc/1/cmdline"
  [[ "$output" == *"sleep 1000000"* ]]
  [[ "$output" != *trap* ]]
}

@test "networks on a stopped instance: a NIC added and removed, its address planned as create plans it" {
  # Planned only: no start, so no bridge is made on the host.
  ctl create n1 --image bb --init "$SLEEP"
  [ "$(ctl get n1 networks)" = none ]
  run -0 ctl set n1 networks=n1:10.250.80.7
  [ "$(field n1 '.networks[0].interface + " " + .networks[0].ipv4')" = "eth0 10.250.80.7" ]
  [ "$(ctl get n1 networks)" = n1:10.250.80.7 ]
  run -0 ctl set n1 networks=n1:10.250.80.7,n2
  [ "$(field n1 '.networks | length')" = 2 ]
  [ "$(field n1 '.networks[1].interface + " " + .networks[1].network')" = "eth1 n2" ]
  run -4 ctl set n1 networks=nosuch
  run -8 ctl set n1 networks=n1:10.9.9.9
  [ "$(field n1 '.networks | length')" = 2 ]
  run -0 ctl set n1 networks=none
  [ "$(field n1 '.networks | length')" = 0 ]
}

@test "bad keys and values: one line naming the key and the form, nothing changed" {
  ctl create b1 --image bb --init "$SLEEP"
  run -8 ctl set b1 colour=blue
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"colour"*"no such setting"*"memory"* ]]
  run -8 ctl set b1 memory=lots hostname=fine
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"memory=lots: expected a size like 512M"* ]]
  # Checked whole: the good one did not go in either.
  [ "$(ctl get b1 hostname)" = b1 ]
  run -8 ctl set b1 mount.data=relative:/data
  [[ "$output" == *"mount.data"*"/srv/x:/data[:ro]"* ]]
  run -8 ctl set b1 mount.data=/nonexistent-$$:/data
  [[ "$output" == *"mount.data"*"/nonexistent-$$"* ]]
  run -2 ctl set b1 novalue
  [[ "$output" == *"expected KEY=VALUE"* ]]
  run -8 ctl get b1 nosuchkey
  [ "$(field b1 '.settings | length')" = 0 ]
}

@test "a host directory mount, idmapped: the instance sees the owners the host has, ro honoured, live and at start" {
  local src=$D/share
  mkdir -p "$src/rw"
  echo from-host >"$src/file"
  chown 1000:1000 "$src/file"
  chown 0:0 "$src/rw"
  ctl create m1 --image bb --init "$SLEEP"
  ctl start m1
  run -0 ctl set m1 "mount.data=$src:/data:ro"
  run -0 inside m1 stat -c '%u:%g %n' /data/file
  [ "$output" = "1000:1000 /data/file" ]
  run -0 inside m1 cat /data/file
  [ "$output" = from-host ]
  run ! inside m1 sh -c 'echo x >/data/new'
  [ ! -e "$src/new" ]
  # Changed to read-write, live: the old mount goes, the new one comes.
  run -0 ctl set m1 "mount.data=$src:/data"
  run -0 inside m1 sh -c 'echo inside >/data/rw/made && stat -c %u /data/rw/made'
  [ "$output" = 0 ]
  # Made by the instance's root: host root's on the host, as it saw it.
  [ "$(stat -c %u "$src/rw/made")" = 0 ]
  # At the next start it is there again, before the init runs.
  ctl restart m1 --timeout 1
  run -0 inside m1 cat /data/file
  [ "$output" = from-host ]
  # Removed, live.
  run -0 ctl set m1 mount.data=
  run inside m1 sh -c 'cat /data/file 2>&1'
  [[ "$output" == *"No such file"* ]]
  rm -rf "$src"
}

@test "device passthrough: /dev/net/tun usable inside after set, live and at the next start" {
  [ -c /dev/net/tun ] || skip "no /dev/net/tun on this host"
  ctl create t1 --image bb --init "$SLEEP"
  ctl start t1
  run -0 ctl set t1 device.tun=/dev/net/tun
  [ "$(field t1 '.pending | length')" = 0 ]
  run inside t1 sh -c 'cat /dev/net/tun 2>&1'
  [[ "$output" == *"in bad state"* ]]
  ctl restart t1 --timeout 1
  # An open tun fd not yet attached to an interface reads EBADFD: the open
  # itself was allowed by the device cgroup.
  run inside t1 sh -c 'cat /dev/net/tun 2>&1'
  [[ "$output" == *"in bad state"* ]]
  [ "$(field t1 '.pending | length')" = 0 ]
}

@test "attack: a mount target that is a symlink to / is refused, nothing mounted on the host or inside" {
  local src=$D/share2
  mkdir -p "$src"
  ctl create a1 --image bb --init "$SLEEP"
  ctl start a1
  inside a1 ln -s / /evil
  local before
  before=$(wc -l </proc/self/mountinfo)
  run -1 ctl set a1 "mount.x=$src:/evil"
  [[ "$output" == *"mount.x"* ]]
  [ "$(wc -l </proc/self/mountinfo)" = "$before" ]
  run -0 inside a1 sh -c 'grep -c " /evil " /proc/self/mountinfo || true'
  [ "$output" = 0 ]
  [ "$(field a1 '.settings | length')" = 0 ]
  rm -rf "$src"
}

@test "attack: a mount source swapped for a symlink to / after validation: the start refuses it" {
  local src=$D/share3
  mkdir -p "$src"
  ctl create a2 --image bb --init "$SLEEP"
  ctl set a2 "mount.x=$src:/x"
  rmdir "$src"
  ln -s / "$src"
  run -1 ctl start a2
  [[ "$output" == *"mount.x"*"$src"* ]]
  [ "$(field a2 .state)" != running ]
  ! grep -q " $STATE/" /proc/self/mountinfo
  rm -f "$src"
}

@test "attack: /dev/sda (or any node off the allow list) as a device is refused" {
  ctl create a3 --image bb --init "$SLEEP"
  run -8 ctl set a3 device.disk=/dev/sda
  [[ "$output" == *"/dev/sda"*"allow list"* ]]
  run -8 ctl set a3 device.m=/dev/mem
  [ "$(field a3 '.settings | length')" = 0 ]
}

@test "attack: a non-root member adding a host mount or a device is refused" {
  "${MEMBER[@]}" "$CELLCTL" --socket "$SOCK" create mine --image bb --init "$SLEEP"
  run -5 "${MEMBER[@]}" "$CELLCTL" --socket "$SOCK" set mine mount.etc=/etc:/hostetc
  [[ "$output" == *"only root"* ]]
  run -5 "${MEMBER[@]}" "$CELLCTL" --socket "$SOCK" set mine device.tun=/dev/net/tun
  # What is theirs they may set.
  run -0 "${MEMBER[@]}" "$CELLCTL" --socket "$SOCK" set mine memory=32M
  run -5 "${MEMBER[@]}" "$CELLCTL" --socket "$SOCK" profile create p memory=1G
  [ "$(field mine '.settings | length')" = 0 ]
}

@test "profiles: applied in order under the flags, an edit reaches the next start, rm refused while used" {
  run -0 ctl profile create base memory=64M env.ROLE=base hostname=from-base
  run -0 ctl profile create web env.ROLE=web pids=200
  run -0 ctl profile list
  [ "$output" = "$(printf 'base\nweb')" ]
  ctl create p1 --image bb --init "$SLEEP" --profile base --profile web --hostname flagged
  [ "$(field p1 '.profiles | join(",")')" = base,web ]
  [ "$(ctl get p1 memory)" = $((64 << 20)) ]
  [ "$(ctl get p1 env.ROLE)" = web ]
  [ "$(ctl get p1 pids)" = 200 ]
  [ "$(ctl get p1 hostname)" = flagged ]
  ctl start p1
  run -0 inside p1 sh -c 'echo $ROLE; hostname'
  [ "$output" = "$(printf 'web\nflagged')" ]
  run -0 ctl profile set base memory=96M
  [ "$(cgroup_memory p1)" = $((64 << 20)) ]
  ctl restart p1 --timeout 1
  [ "$(cgroup_memory p1)" = $((96 << 20)) ]
  run -7 ctl profile rm base
  [[ "$output" == *"used by p1"* ]]
  run -0 ctl profile show base
  [[ "$output" == *"used by      p1"* ]]
  run -4 ctl create p2 --image bb --profile nosuch
  [[ "$output" == *"profile \`nosuch\` does not exist"* ]]
  run -4 ctl show p2
  ctl destroy p1 -f
  run -0 ctl profile rm base
}

@test "autostart: a higher autostart.priority starts first, its autostart.delay holds the next back" {
  ctl create lo --image bb --init "$SLEEP"
  ctl create hi --image bb --init "$SLEEP"
  ctl set lo autostart=true autostart.priority=10
  ctl set hi autostart=true autostart.priority=90 autostart.delay=3
  kill "$(cat "$D/celld.pid")"
  for _ in $(seq 50); do
    kill -0 "$(cat "$D/celld.pid")" 2>/dev/null || break
    sleep 0.1
  done
  start_daemon --autostart
  [ "$(field hi .state)" = running ]
  [ "$(field lo .state)" != running ]
  for _ in $(seq 100); do
    [ "$(field lo .state)" = running ] && break
    sleep 0.1
  done
  [ "$(field lo .state)" = running ]
}
