# shellcheck shell=bash disable=SC2016
# Instances on one bridge cannot pass for one another: the root of an
# instance (CAP_NET_RAW in its namespace) tries to take over the address,
# MAC or gateway of another, and every frame that claims what is not its
# own is dropped at its bridge port.  Like celld-net.bats, the daemon runs
# in a network namespace this file makes: every packet stays in there.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=41000000
POOL_COUNT=$((65536 * 10))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  command -v nft >/dev/null || skip "no nft (apt-get install nftables) to read the rules"
  export NETNS=cellspoof-$$ CGPARENT=/cell-test-spoof-$$
  export BR=csp$$ BRO=cso$$ BRX=csx@$$
  export CELLD_PREFIX="nsenter --net=/run/netns/$NETNS"
  celld_files
  ip netns add "$NETNS"
  nsenter --net="/run/netns/$NETNS" sysctl -qw net.ipv4.ip_forward=0 \
    net.ipv6.conf.all.forwarding=0
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
stop_timeout = 3
cgroup_parent = $CGPARENT
network.s.bridge = $BR
network.s.subnet4 = 10.98.1.0/24
network.s.subnet6 = fd98:1::/64
network.open.bridge = $BRO
network.open.subnet4 = 10.98.2.0/24
network.open.subnet6 = none
network.open.filter = no
network.odd.bridge = $BRX
network.odd.subnet4 = 10.98.3.0/24
EOF
  start_daemon
}

host() {
  nsenter --net="/run/netns/$NETNS" "$@"
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  local left=0
  if [ "$(host ip -o link | grep -vc ': lo:')" != 0 ]; then
    echo "links left: $(host ip -o link)" >&2
    left=1
  fi
  # No instance left: no table either.
  if [ -n "$(host nft list tables bridge)" ]; then
    echo "nftables left: $(host nft list ruleset)" >&2
    left=1
  fi
  ip netns del "$NETNS"
  celld_leaks || left=1
  return $left
}

x() { # NAME CMD...: run in the instance, as its root
  local name=$1
  shift
  "$CELLCTL" --socket "$SOCK" exec "$name" -- "$@" </dev/null
}

new() { # NAME [--net ...]: created and started, an idle init
  local name=$1
  shift
  ctl create "$name" --template "$TEMPLATE" --init "/bin/sleep 100000" "$@"
  ctl start "$name"
}

# What an instance's root can do with CAP_NET_RAW and nothing else: write
# any frame to its eth0 through a packet socket.  The rootfs has no tool
# for it (its /proc/sys is read-only, it cannot add addresses), so the test
# writes the frames from A's network namespace (only that: the frames are
# those A's root could write).
spoof() { # NAME KIND ARGS...: frames of that kind out of NAME's eth0
  local name=$1
  shift
  nsenter -t "$(field "$name" .pid)" -n python3 - "$@" <<'EOF'
import socket, struct, sys

def mac(s): return bytes.fromhex(s.replace(':', ''))
def ip4(s): return socket.inet_pton(socket.AF_INET, s)
def ip6(s): return socket.inet_pton(socket.AF_INET6, s)

def csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def arp(src, op, sha, spa, tha, tpa, dst='ff:ff:ff:ff:ff:ff'):
    return (mac(dst) + mac(src) + b'\x08\x06' +
            struct.pack('!HHBBH', 1, 0x0800, 6, 4, op) +
            mac(sha) + ip4(spa) + mac(tha) + ip4(tpa))

def echo4(src, dst, saddr, daddr):
    icmp = struct.pack('!BBHHH', 8, 0, 0, 0x4242, 1) + b'spoofed'
    icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
    hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(icmp), 1, 0, 64, 1,
                      0, ip4(saddr), ip4(daddr))
    hdr = hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:]
    return mac(dst) + mac(src) + b'\x08\x00' + hdr + icmp

def advert(src, saddr, target, tlla):
    # Unsolicited, overriding, to all nodes: the kernel's ndisc_notify.
    daddr = 'ff02::1'
    msg = (struct.pack('!BBHI', 136, 0, 0, 0x20000000) + ip6(target) +
           b'\x02\x01' + mac(tlla))
    pseudo = ip6(saddr) + ip6(daddr) + struct.pack('!I3xB', len(msg), 58)
    msg = msg[:2] + struct.pack('!H', csum(pseudo + msg)) + msg[4:]
    hdr = struct.pack('!IHBB', 0x60000000, len(msg), 58, 255) + ip6(saddr) + ip6(daddr)
    return mac('33:33:00:00:00:01') + mac(src) + b'\x86\xdd' + hdr + msg

def solicit(src, saddr, slla):
    # A router solicitation to all routers, with a source link-layer
    # address option: a router learns the sender's MAC from it.
    daddr = 'ff02::2'
    msg = struct.pack('!BBHI', 133, 0, 0, 0) + b'\x01\x01' + mac(slla)
    pseudo = ip6(saddr) + ip6(daddr) + struct.pack('!I3xB', len(msg), 58)
    msg = msg[:2] + struct.pack('!H', csum(pseudo + msg)) + msg[4:]
    hdr = struct.pack('!IHBB', 0x60000000, len(msg), 58, 255) + ip6(saddr) + ip6(daddr)
    return mac('33:33:00:00:00:02') + mac(src) + b'\x86\xdd' + hdr + msg

kind, a = sys.argv[1], sys.argv[2:]
if kind == 'garp':       # SRC_MAC CLAIMED_IP: "CLAIMED_IP is at SRC_MAC"
    frame = arp(a[0], 1, a[0], a[1], '00:00:00:00:00:00', a[1])
elif kind == 'arp-reply':  # SRC_MAC CLAIMED_IP DST_MAC DST_IP
    frame = arp(a[0], 2, a[0], a[1], a[2], a[3], dst=a[2])
elif kind == 'echo4':    # SRC_MAC SRC_IP DST_MAC DST_IP
    frame = echo4(a[0], a[2], a[1], a[3])
elif kind == 'link-local':  # SRC_MAC GROUP: to a group the bridge keeps
    frame = mac(a[1]) + mac(a[0]) + b'\x88\x8e' + bytes(46)
elif kind == 'advert':   # SRC_MAC SRC_IP6 TARGET_IP6 TARGET_MAC
    frame = advert(a[0], a[1], a[2], a[3])
elif kind == 'solicit':  # SRC_MAC SRC_IP6 SOURCE_LINK_LAYER_MAC
    frame = solicit(a[0], a[1], a[2])
else:
    sys.exit('unknown kind ' + kind)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
for _ in range(3):
    s.send(frame)
EOF
}

mac_of() { # NAME: the MAC of its eth0
  x "$1" cat /sys/class/net/eth0/address
}

# The MAC the host's neighbour table has for an address on the bridge.
host_neigh_mac() {
  host ip neigh show dev "$BR" to "$1" | awk '{print $3}'
}

# A counter of /proc/net/snmp: NAME (an instance, or `host`) PROTO FIELD.
snmp() {
  local cmd=(host)
  [ "$1" = host ] || cmd=(x "$1")
  "${cmd[@]}" cat /proc/net/snmp | awk -v p="$2:" -v f="$3" '
    $1 == p && !h { for (i = 2; i <= NF; i++) if ($i == f) c = i; h = 1; next }
    $1 == p { print $c }'
}

setup() {
  new a --net s
  new b --net s
  A_IP=$(field a '.networks[0].ipv4')
  B_IP=$(field b '.networks[0].ipv4')
  A_IP6=$(field a '.networks[0].ipv6')
  B_IP6=$(field b '.networks[0].ipv6')
  A_MAC=$(mac_of a)
  B_MAC=$(mac_of b)
  GW=10.98.1.1
  GW_MAC=$(host ip -o link show "$BR" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  # Everyone knows everyone: the entries a spoofer would overwrite.
  x a ping -c1 -W2 "$GW"
  x b ping -c1 -W2 "$GW"
  host busybox ping -c1 -W2 "$B_IP"
  host busybox ping -c1 -W2 "$A_IP"
  host busybox ping -6 -c1 -W2 "$B_IP6"
  host busybox ping -6 -c1 -W2 "$A_IP6"
  [ "$(host_neigh_mac "$B_IP")" = "$B_MAC" ]
  [ "$(host ip -6 neigh show dev "$BR" to "$B_IP6" | awk '{print $3}')" = "$B_MAC" ]
}

teardown() {
  ctl destroy a -f 2>/dev/null || true
  ctl destroy b -f 2>/dev/null || true
}

@test "gratuitous ARP for another instance's address: the host keeps its MAC, and its packets go to it" {
  spoof a garp "$A_MAC" "$B_IP"
  sleep 0.3
  [ "$(host_neigh_mac "$B_IP")" = "$B_MAC" ]
  # The host's pings to B reach B; A gets none of them (it would count
  # them as not its own).
  a0=$(snmp a Ip InAddrErrors)
  b0=$(snmp b Icmp InEchos)
  run -0 host busybox ping -c3 -W2 "$B_IP"
  [ "$(snmp a Ip InAddrErrors)" = "$a0" ]
  [ "$(snmp b Icmp InEchos)" -ge $((b0 + 3)) ]
  run -0 x b ping -c1 -W2 "$GW"
}

@test "gratuitous ARP for the gateway: another instance keeps the gateway's MAC" {
  [ "$(x b ip neigh show dev eth0 to "$GW" | awk '{print $3}')" = "$GW_MAC" ]
  spoof a garp "$A_MAC" "$GW"
  sleep 0.3
  [ "$(x b ip neigh show dev eth0 to "$GW" | awk '{print $3}')" = "$GW_MAC" ]
  run -0 x b ping -c2 -W2 "$GW"
}

@test "ARP replies claiming another instance's address, or another MAC for its own, are dropped" {
  spoof a arp-reply "$A_MAC" "$B_IP" "$GW_MAC" "$GW"
  sleep 0.3
  [ "$(host_neigh_mac "$B_IP")" = "$B_MAC" ]
  # Its own address with B's MAC inside the ARP (the frame's is A's own):
  # the host would send A's traffic to B.
  spoof a garp "$A_MAC" "$A_IP"
  nsenter -t "$(field a .pid)" -n python3 - "$A_MAC" "$B_MAC" "$A_IP" <<'EOF'
import socket, struct, sys
m = lambda s: bytes.fromhex(s.replace(':', ''))
ip = socket.inet_aton(sys.argv[3])
f = (b'\xff' * 6 + m(sys.argv[1]) + b'\x08\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) +
     m(sys.argv[2]) + ip + b'\0' * 6 + ip)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
for _ in range(3):
    s.send(f)
EOF
  sleep 0.3
  [ "$(host_neigh_mac "$A_IP")" = "$A_MAC" ]
}

@test "a packet from another instance's IPv4 address never leaves the port" {
  h0=$(snmp host Icmp InEchos)
  spoof a echo4 "$A_MAC" "$B_IP" "$GW_MAC" "$GW"
  sleep 0.3
  [ "$(snmp host Icmp InEchos)" = "$h0" ]
  # The same packet from its own address gets through.
  spoof a echo4 "$A_MAC" "$A_IP" "$GW_MAC" "$GW"
  sleep 0.3
  [ "$(snmp host Icmp InEchos)" = $((h0 + 3)) ]
}

@test "frames with another instance's source MAC are dropped: the bridge keeps B's MAC on B's port" {
  veth_a=$(field a '.networks[0].host_veth')
  veth_b=$(field b '.networks[0].host_veth')
  # B's MAC and B's address, everything B's, from A's port.
  spoof a garp "$B_MAC" "$B_IP"
  spoof a echo4 "$B_MAC" "$B_IP" "$GW_MAC" "$GW"
  # B's MAC was never learnt on A's port (looked at at once: B's own next
  # frame would move it back).
  run -0 host bridge fdb show br "$BR"
  [[ "$output" != *"$B_MAC dev $veth_a "* ]]
  a0=$(snmp a Ip InAddrErrors)
  b0=$(snmp b Icmp InEchos)
  run -0 host busybox ping -c2 -W2 "$B_IP"
  [ "$(snmp a Ip InAddrErrors)" = "$a0" ]
  [ "$(snmp b Icmp InEchos)" -ge $((b0 + 2)) ]
  run -0 host bridge fdb show br "$BR"
  [[ "$output" == *"$B_MAC dev $veth_b "* ]]
}

@test "frames with another instance's MAC to a link-local group (802.1X) do not move its MAC to the spoofer's port" {
  veth_a=$(field a '.networks[0].host_veth')
  # 01:80:c2:00:00:03: the bridge takes it for itself, through the input
  # hook but not prerouting, and learns its source.
  spoof a link-local "$B_MAC" 01:80:c2:00:00:03
  run -0 host bridge fdb show br "$BR"
  [[ "$output" != *"$B_MAC dev $veth_a "* ]]
}

@test "LLDP frames with another instance's MAC do not move its MAC to the spoofer's port" {
  veth_a=$(field a '.networks[0].host_veth')
  # 01:80:c2:00:00:0e: no netfilter hook sees it with STP off, so only the
  # bridge's no_linklocal_learn keeps it from teaching the bridge.
  spoof a link-local "$B_MAC" 01:80:c2:00:00:0e
  run -0 host bridge fdb show br "$BR"
  [[ "$output" != *"$B_MAC dev $veth_a "* ]]
}

@test "an IPv6 neighbour advertisement for another instance's address, or with another MAC, is dropped" {
  a_ll=$(x a ip -6 -o addr show dev eth0 scope link | awk '{print $4}' | cut -d/ -f1)
  spoof a advert "$A_MAC" "$a_ll" "$B_IP6" "$A_MAC"
  spoof a advert "$A_MAC" "$A_IP6" "$B_IP6" "$A_MAC"
  sleep 0.3
  [ "$(host ip -6 neigh show dev "$BR" to "$B_IP6" | awk '{print $3}')" = "$B_MAC" ]
  # Its own address, B's MAC as the target's link-layer address.
  spoof a advert "$A_MAC" "$A_IP6" "$A_IP6" "$B_MAC"
  sleep 0.3
  [ "$(host ip -6 neigh show dev "$BR" to "$A_IP6" | awk '{print $3}')" = "$A_MAC" ]
  run -0 host busybox ping -6 -c1 -W2 "$B_IP6"
  run -0 host busybox ping -6 -c1 -W2 "$A_IP6"
}

@test "a router solicitation carrying another instance's MAC does not poison the router's neighbour entry" {
  a_ll=$(x a ip -6 -o addr show dev eth0 scope link | awk '{print $4}' | cut -d/ -f1)
  # The bridge as a router: it learns a soliciting neighbour's MAC.
  host sysctl -qw "net.ipv6.conf.$BR.forwarding=1"
  host ip -6 neigh del "$a_ll" dev "$BR" 2>/dev/null || true
  spoof a solicit "$A_MAC" "$a_ll" "$B_MAC"
  sleep 0.3
  mac=$(host ip -6 neigh show dev "$BR" to "$a_ll" | awk '{print $3}')
  # Its own MAC in the option gets through (solicitations are allowed):
  # the router learns it.
  spoof a solicit "$A_MAC" "$a_ll" "$A_MAC"
  sleep 0.3
  own=$(host ip -6 neigh show dev "$BR" to "$a_ll" | awk '{print $3}')
  host sysctl -qw "net.ipv6.conf.$BR.forwarding=0"
  [ "$mac" != "$B_MAC" ]
  [ "$own" = "$A_MAC" ]
}

@test "a port's rules go when its instance stops, and when it is destroyed" {
  veth_a=$(field a '.networks[0].host_veth')
  run -0 host nft list chain bridge "cell-$BR" "port-$veth_a"
  [[ "$output" == *"$A_MAC"* ]]
  ctl stop a --timeout 1
  run host nft list chain bridge "cell-$BR" "port-$veth_a"
  [ "$status" -ne 0 ]
  [[ "$(host nft list map bridge "cell-$BR" ports)" != *"$veth_a"* ]]
  # Started again: filtered again.
  ctl start a
  run -0 host nft list chain bridge "cell-$BR" "port-$veth_a"
  ctl destroy a -f
  run host nft list chain bridge "cell-$BR" "port-$veth_a"
  [ "$status" -ne 0 ]
  # The last instance of the network gone: its table goes with the bridge.
  ctl destroy b -f
  run host nft list table bridge "cell-$BR"
  [ "$status" -ne 0 ]
}

@test "filter = no: the network runs without a table (the documented way out)" {
  new o1 --net open
  run host nft list table bridge "cell-$BRO"
  [ "$status" -ne 0 ]
  run -0 host busybox ping -c1 -W2 "$(field o1 '.networks[0].ipv4')"
  ctl destroy o1 -f
}

@test "a start whose port cannot be filtered fails, names the way out, and leaves no veth" {
  # nftables takes no `@` in a name: the filter cannot be set up, as on a
  # kernel without nftables' bridge family.
  ctl create odd --template "$TEMPLATE" --init "/bin/sleep 100000" --net odd
  veth=$(field odd '.networks[0].host_veth')
  run ctl start odd
  [ "$status" -ne 0 ]
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"bridge \`$BRX\`"*"network.odd.filter = no"* ]]
  [ "$(field odd .state)" != running ]
  ! host ip link show "$veth" 2>/dev/null
  ctl destroy odd
}

@test "a table left by a crash is removed at the next start of celld" {
  ctl destroy a -f
  ctl destroy b -f
  host nft add table bridge "cell-$BR"
  host nft add chain bridge "cell-$BR" port-cvdead0000
  kill -9 "$(cat "$D/celld.pid")"
  sleep 0.2
  start_daemon
  run host nft list table bridge "cell-$BR"
  [ "$status" -ne 0 ]
}
