# shellcheck shell=bash disable=SC2016
# A standard Debian guest with systemd boots in an instance, as a VPS
# tenant's server: to running (or degraded with only units that need
# hardware failing), with journald, logind and a getty on its console; it
# stops quickly on the halt signal of systemd, reboots from inside, and its
# root manages its own network.  The image: tests/bats/debian-image.sh.  celld runs in a
# network namespace of this file's, with one bridge.

bats_require_minimum_version 1.5.0

load celld-helpers
# Clear of the other celld test files' pools.
POOL_START=56000000
POOL_COUNT=$((65536 * 8))

# Units that cannot start in any container: they need the host's kernel
# debug or tracing file systems.
HARDWARE_UNITS='sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount'

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export NETNS=cellsd-$$ CGPARENT=/cell-test-systemd-$$ BR=cts$$
  export CELLD_PREFIX="nsenter --net=/run/netns/$NETNS"
  celld_files
  command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (make deps)"
  DEBIAN=$("$BATS_TEST_DIRNAME/debian-image.sh")
  export DEBIAN
  ip netns add "$NETNS"
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 10
cgroup_parent = $CGPARENT
network.lan.bridge = $BR
network.lan.subnet4 = 10.98.7.0/24
network.lan.subnet6 = none
EOF
  start_daemon
  ctl create deb --template "$DEBIAN" --memory 512M --net lan
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  ip netns del "$NETNS" 2>/dev/null || true
  celld_leaks
}

# systemctl is-system-running, polled until it settles (at most 60 s).
wait_booted() { # name
  local state
  for _ in $(seq 300); do
    state=$(inside "$1" systemctl is-system-running 2>/dev/null) || true
    case "$state" in
    running | degraded | maintenance | stopping) break ;;
    esac
    sleep 0.2
  done
  echo "$state"
}

# The failed units that are not in HARDWARE_UNITS.
unexpected_failures() { # name
  local unit
  for unit in $(inside "$1" systemctl list-units --failed --plain --no-legend | awk '{print $1}'); do
    [[ " $HARDWARE_UNITS " == *" $unit "* ]] || echo "$unit"
  done
}

@test "a Debian systemd guest boots to running, or degraded by hardware units only" {
  ctl start deb
  run -0 wait_booted deb
  [[ "$output" == running || "$output" == degraded ]]
  run -0 unexpected_failures deb
  [ -z "$output" ]
}

@test "journald, logind and a getty on the console run in the guest" {
  run -0 inside deb systemctl is-active systemd-journald systemd-logind console-getty
  [ "$output" = "$(printf 'active\nactive\nactive')" ]
  # systemd sees itself in a container, as the guest's units expect.
  run -0 inside deb systemd-detect-virt --container
  [ "$output" != none ]
}

@test "the guest's root manages its own network: eth0's mtu, an nft table, ip_forward" {
  run -0 inside deb ip link set eth0 mtu 1400
  run -0 inside deb ip -o link show eth0
  [[ "$output" == *"mtu 1400"* ]]
  run -0 inside deb nft add table inet tenant
  run -0 inside deb nft list tables
  [[ "$output" == *"table inet tenant"* ]]
  local host_forward
  host_forward=$(cat /proc/sys/net/ipv4/ip_forward)
  run -0 inside deb sysctl -w net.ipv4.ip_forward=1
  run -0 inside deb cat /proc/sys/net/ipv4/ip_forward
  [ "$output" = 1 ]
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$host_forward" ]
  run -0 inside deb nft delete table inet tenant
}

@test "the guest's root runs a nested unprivileged container" {
  run -0 inside deb unshare --user --map-root-user --mount --pid --fork --mount-proc \
    sh -c 'id -u; ps -e --no-headers | wc -l'
  [ "${lines[0]}" = 0 ]
  # Its own pid namespace: the shell and ps.
  [ "${lines[1]}" -le 3 ]
}

@test "attack: a guest looks for the host's or another instance's cgroups" {
  ctl create other --template "$TEMPLATE"
  ctl start other
  run -0 inside deb sh -c 'find /sys/fs/cgroup -name "*other*"; cat /proc/self/cgroup /proc/1/cgroup'
  [[ "$output" != *other* ]]
  [[ "$output" != *"$CGPARENT"* ]]
  # Every cgroup file system it has shows its own cgroup as the root.
  run -0 inside deb awk '$9 ~ /^cgroup/ {print $4}' /proc/self/mountinfo
  [ "$(echo "$output" | sort -u)" = / ]
  ctl destroy other -f
}

# celld's events, from now until stop_events.
watch_events() {
  ctl events >"$BATS_TEST_TMPDIR/events" &
  EVENTS=$!
  sleep 0.2
}
stop_events() { kill "$EVENTS"; }

@test "systemctl reboot inside restarts the guest, which boots again, and says so in the events" {
  local pid
  pid=$(field deb .pid)
  watch_events
  inside deb systemctl reboot || true
  for _ in $(seq 100); do
    [ "$(field deb .state)" = running ] && [ "$(field deb .pid)" != "$pid" ] && break
    sleep 0.2
  done
  stop_events
  [ "$(field deb .pid)" != "$pid" ]
  grep -q ' rebooted  *deb$' "$BATS_TEST_TMPDIR/events"
  run -0 wait_booted deb
  [[ "$output" == running || "$output" == degraded ]]
}

@test "stop halts a systemd guest with SIGRTMIN+3, in under 5 s" {
  local t0 t1
  t0=$(date +%s%N)
  run -0 ctl stop deb
  t1=$(date +%s%N)
  [ "$(field deb .state)" = stopped ]
  echo "stop took $(((t1 - t0) / 1000000)) ms" >&3
  [ $(((t1 - t0) / 1000000)) -lt 5000 ]
  # It went down by its own halt, not by the SIGKILL after stop_timeout.
  ! grep -q "deb: did not stop in time" "$D/celld.log"
}

@test "systemctl poweroff inside stops the guest, and says so in the events" {
  ctl start deb
  run -0 wait_booted deb
  watch_events
  inside deb systemctl poweroff || true
  for _ in $(seq 100); do
    [ "$(field deb .state)" = stopped ] && break
    sleep 0.2
  done
  stop_events
  [ "$(field deb .state)" = stopped ]
  grep -q ' poweroff  *deb$' "$BATS_TEST_TMPDIR/events"
}

@test "a host name set while the guest is stopped is the one systemd boots with" {
  [ "$(field deb .state)" = stopped ]
  ctl set deb hostname=tenant-srv
  ctl start deb
  run -0 wait_booted deb
  run -0 inside deb sh -c 'hostname; cat /etc/hostname; hostname -f'
  [ "$output" = $'tenant-srv\ntenant-srv\ntenant-srv' ]
}
