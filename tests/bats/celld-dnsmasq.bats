# shellcheck shell=bash disable=SC2016
# celld's dnsmasq on its networks: DHCP with the addresses celld chose,
# instances' names, bound to the bridge alone, supervised by celld.  The
# daemon runs in a network namespace this file makes: its bridges, its
# dnsmasq and every packet stay in there (the upstream server is an
# address of the test's subnet that nothing answers).

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=82000000
POOL_COUNT=$((65536 * 16))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  command -v dnsmasq >/dev/null || skip "dnsmasq is not installed (make deps)"
  export NETNS=celldns-$$ CGPARENT=/cell-test-dnsmasq-$$
  export BRD=cdd$$ BRO=cdo$$
  export CELLD_PREFIX="nsenter --net=/run/netns/$NETNS"
  celld_files
  ip netns add "$NETNS"
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
stop_timeout = 3
cgroup_parent = $CGPARENT
network.d.bridge = $BRD
network.d.subnet4 = 10.97.1.0/24
network.d.subnet6 = fd97:1::/64
network.d.domain = cell.test
network.d.dns_upstream = 10.97.1.254
network.o.bridge = $BRO
network.o.subnet4 = 10.97.2.0/24
network.o.subnet6 = none
network.o.dnsmasq = no
EOF
  start_daemon
}

host() {
  nsenter --net="/run/netns/$NETNS" "$@"
}

# A failed test leaves no instance to the next (which expects the
# bridge, and dnsmasq, to go with its own last one).
teardown() {
  dhclient_stop
  destroy_all
}

teardown_file() {
  [ -n "$D" ] || return 0
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

new() { # NAME [--net ...]: created and started, an idle init
  local name=$1
  shift
  ctl create "$name" --template "$TEMPLATE" --init "/bin/sleep 100000" "$@"
  ctl start "$name"
}

# The pid of the network's dnsmasq (from its pid file), when it runs.
dnsmasq_pid() { # NETWORK
  local pid
  pid=$(cat "$STATE/dnsmasq/$1/dnsmasq.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Until CMD succeeds, at most 5 s: dnsmasq reads its files again a moment
# after celld's SIGHUP, and starts a moment after celld forks it.
eventually() {
  for _ in $(seq 50); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "$@"
}

# Busybox nslookup NAME through the network's dnsmasq, from instance FROM.
resolves() { # FROM NAME ADDRESS
  local out
  out=$(inside "$1" nslookup "$2" 10.97.1.1 2>&1) || return 1
  [[ "$out" == *"Address: $3"* ]] || [[ "$out" == *"Address 1: $3"* ]]
}

@test "dhcp: an instance that drops its address and asks udhcpc gets the address celld chose" {
  new h1 --net d
  addr=$(field h1 '.networks[0].ipv4')
  eventually dnsmasq_pid d
  # udhcpc's script sets what the server offered and prints it.
  inside h1 sh -c 'cat >/tmp/lease.sh <<"S"
#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface"
echo "lease $ip/$mask router $router dns $dns domain $domain"
S
chmod +x /tmp/lease.sh'
  inside h1 ip -4 addr flush dev eth0
  run -0 inside h1 ip -4 -o addr show dev eth0
  [[ "$output" != *"inet "* ]]
  run -0 inside h1 udhcpc -i eth0 -f -q -n -t 5 -T 1 -s /tmp/lease.sh
  [[ "$output" == *"lease $addr/24 router 10.97.1.1 dns 10.97.1.1 domain cell.test"* ]]
  run -0 inside h1 ip -4 -o addr show dev eth0
  [[ "$output" == *"inet $addr/24"* ]]
  # Its resolv.conf was the server already: the bridge, and the domain.
  run -0 inside h1 cat /etc/resolv.conf
  [[ "$output" == *$'nameserver 10.97.1.1\nnameserver fd97:1::1\nsearch cell.test'* ]]
  ctl destroy h1 -f
}

# The host's dhclient -6 (isc-dhcp-client) in the network namespace of an
# instance: busybox has no DHCPv6 client.  Its files are the test's: its
# lease and pid files, an empty config, and a script that sets the
# address it was given on eth0 and says what it got (never the host's
# resolv.conf), with the options a guest's client asks for.  It stays in the background once it has a lease: ended by
# dhclient_stop.
dhclient6() { # NAME
  local pid dir=$BATS_TEST_TMPDIR
  pid=$(field "$1" .pid)
  echo 'request dhcp6.name-servers, dhcp6.domain-search;' >"$dir/dhclient.conf"
  cat >"$dir/dhclient-script" <<"S"
#!/bin/sh
case "$reason" in
BOUND6|REBOOT6)
  ip -6 addr add "$new_ip6_address/$new_ip6_prefixlen" dev "$interface"
  echo "lease $new_ip6_address/$new_ip6_prefixlen dns $new_dhcp6_name_servers search $new_dhcp6_domain_search" >>"${0%/*}/dhclient.out"
  ;;
esac
exit 0
S
  chmod +x "$dir/dhclient-script"
  echo "$pid" >"$dir/instance.pid"
  timeout 30 nsenter -n -t "$pid" dhclient -6 -1 -v -cf "$dir/dhclient.conf" \
    -lf "$dir/dhclient6.leases" -pf "$dir/dhclient.pid" -sf "$dir/dhclient-script" eth0
}

dhclient_stop() {
  local pid
  pid=$(cat "$BATS_TEST_TMPDIR/dhclient.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 20); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

@test "dhcpv6: an instance that drops its IPv6 address and asks dhclient -6 gets the address celld chose; its name resolves over IPv6" {
  command -v dhclient >/dev/null || skip "dhclient is not installed (make deps: isc-dhcp-client)"
  new v1 --net d
  new v2 --net d
  six=$(field v1 '.networks[0].ipv6')
  eventually dnsmasq_pid d
  inside v1 ip -6 addr flush dev eth0 scope global
  run -0 inside v1 ip -6 -o addr show dev eth0 scope global
  [ -z "$output" ]
  # Its link-local address, which DHCPv6 asks from, is past its duplicate
  # address detection.
  link_local_ready() { ! nsenter -n -t "$(field v1 .pid)" ip -6 addr show dev eth0 | grep -q tentative; }
  eventually link_local_ready
  run -0 dhclient6 v1
  dhclient_stop
  # What the server offered: the instance's own address, the bridge as
  # its name server, the network's domain.
  run -0 cat "$BATS_TEST_TMPDIR/dhclient.out"
  [[ "$output" == "lease $six/128 dns fd97:1::1 search cell.test."* ]]
  run -0 inside v1 ip -6 -o addr show dev eth0 scope global
  [[ "$output" == *"inet6 $six/128 "* ]]
  grep -q "iaaddr $six " "$BATS_TEST_TMPDIR/dhclient6.leases"
  # And another instance finds it by name, asking over IPv6 (AAAA).
  run -0 inside v2 nslookup -type=AAAA v1 fd97:1::1
  [[ "$output" == *"Address: $six"* ]] || [[ "$output" == *"Address 1: $six"* ]]
  run -0 inside v2 nslookup -type=AAAA v1.cell.test fd97:1::1
  [[ "$output" == *"$six"* ]]
  # And reaches it there once v1 has the on-link prefix back, which the
  # router advertisements give (DHCPv6 gives an address alone, a /128).
  for _ in $(seq 15); do
    inside v2 ping -6 -c 1 -W 1 "$six" >/dev/null 2>&1 && break
  done
  inside v2 ping -6 -c 1 -W 1 "$six"
  ctl destroy v1 -f
  ctl destroy v2 -f
}

@test "ra: an instance without its IPv6 default route gets one via the bridge from dnsmasq's router advertisements" {
  new r1 --net d
  eventually dnsmasq_pid d
  pid=$(field r1 .pid)
  inside r1 ip -6 route del default
  run -0 inside r1 ip -6 route show default
  [ -z "$output" ]
  nsenter -n -t "$pid" sysctl -qw net.ipv6.conf.eth0.accept_ra=1
  # The bridge's link-local address: where the advertisements come from.
  gw=$(host ip -6 -o addr show dev "$BRD" scope link | awk '{sub(/\/.*/, "", $4); print $4}')
  [[ "$gw" == fe80::* ]]
  # A guest coming up solicits (the bridge filter lets its solicitations
  # through), and dnsmasq answers at once rather than at its next
  # periodic advertisement.
  inside r1 ip link set eth0 down
  inside r1 ip link set eth0 up
  for _ in $(seq 100); do
    route=$(nsenter -n -t "$pid" ip -6 route show default)
    [ -n "$route" ] && break
    sleep 0.1
  done
  [[ "$route" == "default via $gw dev eth0 "*"proto ra"* ]]
  # The on-link prefix too, and nothing else: no route out of the host's.
  run -0 inside r1 ip -6 route show
  [[ "$output" == *"fd97:1::/64 dev eth0"* ]]
  [ "$(grep -c via <<<"$output")" = 1 ]
  ctl destroy r1 -f
}

@test "names: instances resolve each other as NAME and NAME.DOMAIN; a destroyed or renamed one stops resolving" {
  new n1 --net d
  new n2 --net d
  a1=$(field n1 '.networks[0].ipv4')
  a2=$(field n2 '.networks[0].ipv4')
  six1=$(field n1 '.networks[0].ipv6')
  eventually resolves n2 n1 "$a1"
  resolves n2 n1.cell.test "$a1"
  resolves n1 n2 "$a2"
  run -0 inside n2 nslookup -type=AAAA n1.cell.test 10.97.1.1
  [[ "$output" == *"$six1"* ]]
  # A name of the domain dnsmasq does not know is not asked upstream
  # (which nothing answers here): dnsmasq says at once that there is none.
  run inside n2 nslookup nobody.cell.test 10.97.1.1
  [[ "$output" == *NXDOMAIN* ]]
  ctl stop n1
  ctl rename n1 m1
  ctl start m1
  eventually resolves n2 m1 "$a1"
  run ! resolves n2 n1 "$a1"
  ctl destroy m1 -f
  eventually eval '! resolves n2 m1 "$a1"'
  run ! resolves n2 m1.cell.test "$a1"
  ctl destroy n2 -f
}

@test "dnsmasq listens on its bridge alone, as an unprivileged user: nothing on 0.0.0.0:53, [::]:53 or lo" {
  new l1 --net d
  eventually dnsmasq_pid d
  pid=$(dnsmasq_pid d)
  run -0 ps -o user= -p "$pid"
  [ "$output" = dnsmasq ]
  run -0 host ss -Hlnptu
  sockets=$output
  [[ "$sockets" == *"10.97.1.1:53 "*"pid=$pid,"* ]]
  [[ "$sockets" == *"[fd97:1::1]:53 "*"pid=$pid,"* ]]
  # DHCP and DHCPv6: bound to the bridge's device.
  [[ "$sockets" == *"0.0.0.0%$BRD:67 "* ]]
  [[ "$sockets" == *"[::]%$BRD:547 "* ]]
  for bad in "0.0.0.0:53 " "*:53 " "[::]:53 " "127.0.0.1:53 " "[::1]:53 "; do
    [[ "$sockets" != *"$bad"* ]]
  done
  ctl destroy l1 -f
  # The bridge went with its last instance, and dnsmasq with it.
  eventually eval '! kill -0 '"$pid"
}

@test "dnsmasq killed: celld starts it again and names resolve again" {
  new k1 --net d
  new k2 --net d
  a1=$(field k1 '.networks[0].ipv4')
  eventually dnsmasq_pid d
  pid=$(dnsmasq_pid d)
  eventually resolves k2 k1 "$a1"
  kill -9 "$pid"
  eventually eval '[ -n "$(dnsmasq_pid d)" ] && [ "$(dnsmasq_pid d)" != '"$pid"' ]'
  eventually resolves k2 k1 "$a1"
  grep -q "dnsmasq (pid $pid) killed by signal 9" "$D/celld.log"
  ctl destroy k1 -f
  ctl destroy k2 -f
}

@test "a network with dnsmasq = no has none: no server, resolv.conf as without it" {
  new o1 --net o
  [ ! -e "$STATE/dnsmasq/o" ]
  run ! pgrep -f "interface=$BRO"
  run -0 inside o1 cat /etc/resolv.conf
  [[ "$output" != *nameserver* ]]
  ctl destroy o1 -f
}

@test "stopping celld stops its dnsmasq; the next celld starts one for the instances still running" {
  new s1 --net d
  eventually dnsmasq_pid d
  pid=$(dnsmasq_pid d)
  kill "$(cat "$D/celld.pid")"
  eventually eval '! kill -0 '"$pid"
  # The instance ran on without celld: its bridge is up, and the next
  # celld serves it again.
  start_daemon
  eventually dnsmasq_pid d
  new s2 --net d
  eventually resolves s2 s1 "$(field s1 '.networks[0].ipv4')"
  ctl destroy s1 -f
  ctl destroy s2 -f
}

@test "a celld.conf with a bad DNS option is refused at start, naming the line; nothing is left" {
  for bad in "network.d.dns_upstream = 10.97.1.300" "network.d.domain = bad_domain" \
    "network.d.dnsmasq = maybe"; do
    sed "s|^network.d.domain = .*|$bad|" "$D/celld.conf" >"$D/bad.conf"
    run -1 "$CELLD" --foreground --config "$D/bad.conf" --state-dir "$D/bad-state" \
      --socket "$D/bad.sock"
    [[ "$output" == *"bad.conf: line "*": ${bad%% =*}: bad value \`${bad#*= }\`"* ]]
    [ "$(echo "$output" | wc -l)" = 1 ]
    [ ! -e "$D/bad.sock" ]
    [ ! -e "$D/bad-state/dnsmasq" ]
  done
}
