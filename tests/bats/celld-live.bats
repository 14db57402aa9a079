# shellcheck shell=bash disable=SC2016
# Devices and NICs given to and taken from a running instance (cellctl
# set device.NAME=..., networks=...): usable inside at once, gone at once
# with their device cgroup permission, veth, port filter and DHCP lease;
# nothing pending; a set that fails in the middle leaves the instance as
# it was and nothing behind.  celld runs in a network namespace this file
# makes: its bridges, its dnsmasq and every packet stay in there.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=154000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || return 0
  export NETNS=celldlive-$$ CGPARENT=/cell-test-live-$$
  export BR1=clv1$$ BR2=clv2$$
  export CELLD_PREFIX="nsenter --net=/run/netns/$NETNS"
  celld_files
  cp "${CELL_TEST_HELPERS:-$REPO/build/tests}/dev-probe" "$TEMPLATE/bin/"
  ip netns add "$NETNS"
  local dnsmasq=no
  command -v dnsmasq >/dev/null && dnsmasq=yes
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 2
cgroup_parent = $CGPARENT
lxcfs = off
network.l1.bridge = $BR1
network.l1.subnet4 = 10.154.1.0/24
network.l1.subnet6 = none
network.l1.dnsmasq = no
network.l2.bridge = $BR2
network.l2.subnet4 = 10.154.2.0/24
network.l2.subnet6 = none
network.l2.dnsmasq = $dnsmasq
EOF
  start_daemon
}

teardown_file() {
  [ -n "${D:-}" ] || return 0
  celld_stop
  local left=0
  if [ "$(host ip -o link | grep -vc ': lo:')" != 0 ]; then
    echo "links left: $(host ip -o link)" >&2
    left=1
  fi
  if pgrep -f "dnsmasq.*$STATE/" >/dev/null; then
    echo "dnsmasq left: $(pgrep -af "dnsmasq.*$STATE/")" >&2
    pkill -9 -f "dnsmasq.*$STATE/" || true
    left=1
  fi
  ip netns del "$NETNS"
  celld_leaks || left=1
  return $left
}

setup() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
}

teardown() {
  destroy_all
}

SLEEP="/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"

host() {
  nsenter --net="/run/netns/$NETNS" "$@"
}

new() { # NAME [create flags...]: created and started
  local name=$1
  shift
  ctl create "$name" --template "$TEMPLATE" --init "$SLEEP" "$@"
  ctl start "$name"
}

# The rules of the instance's v1 device cgroup (nothing on a v2 host).
device_rules() { # NAME
  local f=/sys/fs/cgroup/devices$CGPARENT/$1/devices.list
  [ -f "$f" ] && cat "$f"
  return 0
}

# Until CMD succeeds, at most 5 s (dnsmasq's files are rewritten when
# celld's loop comes round).
eventually() {
  for _ in $(seq 50); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "$@"
}

# The static leases of the network's dnsmasq.
leases() { # NETWORK
  cat "$STATE/dnsmasq/$1/dhcp-hosts" 2>/dev/null || true
}
has_lease() { leases "$1" | grep -q ",$2\(,\|\$\)"; }

# The links of celld's namespace, by name.
host_links() {
  host ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
}

@test "a device given live is usable at once, and gone with its permission when taken away" {
  [ -c /dev/net/tun ] || skip "no /dev/net/tun on this host"
  new t1
  run -1 inside t1 dev-probe open /dev/net/tun
  [ "$output" = ENOENT ]
  # A cgroup of its own below its cgroup, as a guest's systemd makes them:
  # a v1 devices cgroup with children refuses a reset of its rules.
  inside t1 sh -c '[ ! -d /sys/fs/cgroup/devices ] || mkdir /sys/fs/cgroup/devices/kid'
  run -0 ctl set t1 device.tun=/dev/net/tun
  # Nothing waits for a start.
  [ "$(field t1 '.pending | length')" = 0 ]
  run -0 --separate-stderr ctl get t1 device.tun
  [ "$output" = /dev/net/tun ]
  [[ "$stderr" != *pending* ]]
  run -0 ctl show t1
  [[ "$output" != *pending* ]]
  # Usable: a tun interface made through it, in the instance's network.
  run -0 inside t1 dev-probe tun tun7
  [ "$output" = "made tun7" ]
  run -0 inside t1 ip -o link show tun7
  run -0 inside t1 stat -c '%t:%T %u' /dev/net/tun
  [ "$output" = "a:c8 0" ]
  if [ -c /dev/fuse ]; then
    run -1 inside t1 dev-probe open /dev/fuse
    run -0 ctl set t1 device.fuse=/dev/fuse
    run -0 inside t1 dev-probe open /dev/fuse
    [ "$output" = opened ]
  fi
  [ -c "$STATE/instances/t1/devices/tun" ]
  [ -n "$(device_rules t1 | grep -x 'c 10:200 rwm')" ] || [ ! -d /sys/fs/cgroup/devices ]
  # Taken away, live: the node, its permission, the node on the host.
  run -0 ctl set t1 device.tun=
  run -0 inside t1 sh -c '[ ! -e /dev/net/tun ]'
  run -1 inside t1 dev-probe open /dev/net/tun
  [ "$output" = ENOENT ]
  [ ! -e "$STATE/instances/t1/devices/tun" ]
  [ -z "$(device_rules t1 | grep '^c 10:200 ')" ]
  [ "$(field t1 '.pending | length')" = 0 ]
  # What it was not given, it does not have; what it keeps still works.
  if [ -c /dev/fuse ]; then
    run -0 inside t1 dev-probe open /dev/fuse
    run -0 ctl set t1 device.fuse=
    run -1 inside t1 dev-probe open /dev/fuse
  fi
  # The next start gives what the record says: nothing.
  ctl restart t1 --timeout 1
  run -1 inside t1 dev-probe open /dev/net/tun
}

@test "attack: a tenant keeps a bind of a device taken away, or makes a node of one it was not given: the kernel refuses both" {
  [ -c /dev/net/tun ] || skip "no /dev/net/tun on this host"
  new a1
  # Before: no node of its own making opens.
  run -1 inside a1 dev-probe mknod /tmp/tun 10 200
  run -1 inside a1 dev-probe open /dev/net/tun
  run -0 ctl set a1 device.tun=/dev/net/tun
  # Its root binds the node elsewhere, to keep it past the removal.
  inside a1 sh -c 'touch /root/kept && mount --bind /dev/net/tun /root/kept'
  run -0 inside a1 dev-probe open /root/kept
  [ "$output" = opened ]
  run -0 ctl set a1 device.tun=
  # The bind is still there, the node in it, but the device cgroup says no.
  run -0 inside a1 stat -c '%t:%T' /root/kept
  [ "$output" = a:c8 ]
  run -1 inside a1 dev-probe open /root/kept
  [ "$output" = EPERM ]
  run -1 inside a1 dev-probe tun tun9
  # Nor a node of another device, given or not.
  run -1 inside a1 dev-probe mknod /tmp/fuse 10 229
  [ "$output" = EPERM ]
  run -1 inside a1 dev-probe mknod /dev/tun2 10 200
  [ "$output" = EPERM ]
}

@test "a NIC added live gets its address, route and lease and pings its gateway; removed live it goes inside and on the host" {
  new o1 --net l2 # keeps l2's bridge and dnsmasq when n1 leaves it
  new n1 --net l1
  local links
  links=$(host_links)
  run -0 ctl set n1 networks=l1,l2
  [ "$(field n1 '.pending | length')" = 0 ]
  [ "$(field n1 '[.networks[] | .interface + "=" + .network] | join(",")')" = eth0=l1,eth1=l2 ]
  local addr veth
  addr=$(field n1 '.networks[1].ipv4')
  veth=$(field n1 '.networks[1].host_veth')
  [[ "$addr" == 10.154.2.* ]]
  run -0 inside n1 ip -4 -o addr show dev eth1
  [[ "$output" == *"inet $addr/24"* ]]
  run -0 inside n1 ping -c 1 -W 2 10.154.2.1
  run -0 inside n1 ping -c 1 -W 2 10.154.1.1
  # eth0 keeps the default route, as at start.
  run -0 inside n1 sh -c 'ip route | grep ^default'
  [[ "$output" == "default via 10.154.1.1 dev eth0"* ]]
  [ "${#lines[@]}" = 1 ]
  run -0 host ip -o link show "$veth"
  [[ "$output" == *"master $BR2"* ]]
  if command -v dnsmasq >/dev/null; then
    eventually has_lease l2 "$addr"
  fi
  # Removed, live: inside, on the host, its lease.
  run -0 ctl set n1 networks=l1
  run ! inside n1 ip link show eth1
  run ! host ip link show "$veth"
  [ "$(host_links)" = "$links" ]
  if command -v dnsmasq >/dev/null; then
    eventually eval '! has_lease l2 "$addr"'
  fi
  [ "$(field n1 '.networks | length')" = 1 ]
  run -0 inside n1 ping -c 1 -W 2 10.154.1.1
  # eth0 taken away while eth1 stays: the default route moves to eth1.
  run -0 ctl set n1 networks=l1,l2
  run -0 ctl set n1 networks=l2
  run ! inside n1 ip link show eth0
  run -0 inside n1 sh -c 'ip route | grep ^default'
  [[ "$output" == "default via 10.154.2.1 dev eth1"* ]]
  [ "${#lines[@]}" = 1 ]
  run -0 inside n1 ping -c 1 -W 2 10.154.2.1
  # A NIC whose address would change waits for the next start.
  run -0 ctl set n1 networks=l2:10.154.2.99
  [ "$(field n1 '.pending | join(",")')" = networks ]
  run -0 inside n1 ip -4 -o addr show dev eth1
  [[ "$output" != *10.154.2.99* ]]
  ctl restart n1 --timeout 1
  run -0 inside n1 ip -4 -o addr show dev eth0
  [[ "$output" == *"inet 10.154.2.99/24"* ]]
  [ "$(field n1 '.pending | length')" = 0 ]
  # none: only lo is left.
  run -0 ctl set n1 networks=none
  run -0 inside n1 sh -c "ip -o link | grep -vc ': lo:' || true"
  [ "$output" = 0 ]
}

@test "a set that fails in the middle leaves the instance as it was: no veth, no bridge, no lease, no device rule" {
  [ -c /dev/net/tun ] || skip "no /dev/net/tun on this host"
  new f1 --net l1
  local links record dhcp
  links=$(host_links)
  dhcp=$(leases l2)
  record=$(ctl show f1 --json | jq -c '{networks, settings, pending}')
  # A network that does not exist, an address out of its subnet.
  run -4 ctl set f1 networks=l1,nosuch
  [[ "$output" == *"network \`nosuch\` does not exist"* ]]
  run -8 ctl set f1 networks=l1,l2:10.9.9.9
  [ "${#lines[@]}" = 1 ]
  [ "$(host_links)" = "$links" ]
  # A busy name: the instance's root made an eth1 of its own (a tun).
  ctl set f1 device.tun=/dev/net/tun
  inside f1 dev-probe tun eth1
  record=$(ctl show f1 --json | jq -c '{networks, settings, pending}')
  run -1 ctl set f1 networks=l1,l2
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"eth1"*"exists"* ]]
  [ "$(host_links)" = "$links" ]
  run ! host ip link show "$BR2"
  [ "$(leases l2)" = "$dhcp" ]
  [ "$(ctl show f1 --json | jq -c '{networks, settings, pending}')" = "$record" ]
  # A device in the same set as a mount that fails after it: its rule
  # and its node go again.
  ctl set f1 device.tun=
  mkdir -p "$D/share-live"
  inside f1 ln -s / /evil
  run -1 ctl set f1 device.tun=/dev/net/tun "mount.x=$D/share-live:/evil"
  [[ "$output" == *mount.x* ]]
  [ -z "$(device_rules f1 | grep '^c 10:200 ')" ]
  run -1 inside f1 dev-probe open /dev/net/tun
  [ ! -e "$STATE/instances/f1/devices/tun" ]
  [ "$(host_links)" = "$links" ]
  # A device whose path inside is a symlink the tenant planted: refused,
  # no rule, no node, nothing made where the link leads.
  inside f1 sh -c 'rm -rf /dev/net && ln -s /tmp /dev/net'
  run -1 ctl set f1 device.tun=/dev/net/tun
  [[ "$output" == *device.tun* ]]
  [ -z "$(device_rules f1 | grep '^c 10:200 ')" ]
  [ ! -e "$STATE/instances/f1/devices/tun" ]
  run -0 inside f1 sh -c '[ ! -e /tmp/tun ]'
  [ "$(field f1 '.settings | length')" = 0 ]
  [ "$(field f1 '.pending | length')" = 0 ]
}
