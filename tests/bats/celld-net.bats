# shellcheck shell=bash disable=SC2016
# celld networks end to end.  The daemon runs in a network namespace this
# file makes (its "host"): bridges, veths and every packet stay in there.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=17000000
POOL_COUNT=$((65536 * 100))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export NETNS=cellnet-$$ CGPARENT=/cell-test-net-$$
  export BRA=cta$$ BRB=ctb$$ BRT=ctt$$
  export CELLD_PREFIX="nsenter --net=/run/netns/$NETNS"
  celld_files
  ip netns add "$NETNS"
  # The namespace routes nothing between its bridges (the isolation test
  # relies on it, as a host without NAT rules does).
  nsenter --net="/run/netns/$NETNS" sysctl -qw net.ipv4.ip_forward=0 \
    net.ipv6.conf.all.forwarding=0
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
stop_timeout = 3
cgroup_parent = $CGPARENT
network.a.bridge = $BRA
network.a.subnet4 = 10.99.1.0/24
network.a.subnet6 = fd99:1::/64
network.b.bridge = $BRB
network.b.subnet4 = 10.99.2.0/24
network.b.mtu = 1400
network.tiny.bridge = $BRT
network.tiny.subnet4 = 10.99.3.0/30
network.tiny.subnet6 = none
EOF
  start_daemon
}

# In the test's namespace: its "host" side.
host() {
  nsenter --net="/run/netns/$NETNS" "$@"
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  local left=0
  # Every veth and bridge went with the last instance: only lo is left.
  if [ "$(host ip -o link | grep -vc ': lo:')" != 0 ]; then
    echo "links left: $(host ip -o link)" >&2
    left=1
  fi
  if ip -o link | grep -q ': cv[0-9a-f]\{8\}[@:]'; then
    echo "veth on the real host: $(ip -o link | grep ': cv')" >&2
    left=1
  fi
  ip netns del "$NETNS"
  celld_leaks || left=1
  return $left
}

x() { # NAME CMD...: run in the instance
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

@test "two instances on a network reach each other (ping, TCP), the host reaches them" {
  new n1 --net a
  new n2 --net a
  a1=$(field n1 '.networks[0].ipv4')
  a2=$(field n2 '.networks[0].ipv4')
  [ "$a1" = 10.99.1.2 ]
  [ "$a2" = 10.99.1.3 ]
  [ "$(field n1 '.networks[0].interface')" = eth0 ]
  # Inside: eth0 with the address and the default route via the gateway.
  run -0 x n1 ip -o -4 addr show eth0
  [[ "$output" == *"inet 10.99.1.2/24"* ]]
  run -0 x n1 ip route
  [[ "$output" == *"default via 10.99.1.1 dev eth0"* ]]
  run -0 x n1 ping -c1 -W2 "$a2"
  # A TCP echo on a port of n2.
  x n2 sh -c 'nc -ll -p 7777 -e /bin/cat </dev/null >/dev/null 2>&1 &'
  for _ in $(seq 20); do
    x n2 netstat -ltn | grep -q ':7777' && break
    sleep 0.1
  done
  run -0 x n1 sh -c "echo hello-tcp | nc -w2 $a2 7777"
  [ "$output" = hello-tcp ]
  # The host reaches an instance from the bridge.
  run -0 host busybox ping -c1 -W2 "$a1"
  host ip -o addr show "$BRA" | grep -q 'inet 10.99.1.1/24'
  ctl destroy n1 -f
  ctl destroy n2 -f
}

@test "IPv6 between instances and from the host" {
  new v1 --net a
  new v2 --net a:fd99:1::42
  [ "$(field v2 '.networks[0].ipv6')" = fd99:1::42 ]
  [ "$(field v2 '.networks[0].ipv4')" != null ]
  run -0 x v1 ip -6 route
  [[ "$output" == *"default via fd99:1::1 dev eth0"* ]]
  run -0 x v1 ping -6 -c1 -W2 fd99:1::42
  run -0 host busybox ping -6 -c1 -W2 "$(field v1 '.networks[0].ipv6')"
  ctl destroy v1 -f
  ctl destroy v2 -f
}

@test "an instance on another network does not reach them; several networks give eth0, eth1" {
  new s1 --net a
  new s2 --net b
  new both --net b --net a:10.99.1.50
  run x s2 ping -c1 -W1 "$(field s1 '.networks[0].ipv4')"
  [ "$status" -ne 0 ]
  # eth0 on b, eth1 on a, in the order given; the default route on eth0.
  run -0 x both ip -o -4 addr
  [[ "$output" == *"eth0"*"inet 10.99.2."* ]]
  [[ "$output" == *"eth1"*"inet 10.99.1.50/24"* ]]
  # b's MTU, inside and on its bridge.
  run -0 x both ip link show eth0
  [[ "$output" == *"mtu 1400"* ]]
  host ip link show "$BRB" | grep -q "mtu 1400"
  run -0 x both ip route
  [[ "$output" == *"default via 10.99.2.1 dev eth0"* ]]
  [[ "$output" != *"default via 10.99.1.1"* ]]
  run -0 x both ping -c1 -W2 "$(field s1 '.networks[0].ipv4')"
  run -0 x both ping -c1 -W2 "$(field s2 '.networks[0].ipv4')"
  ctl destroy s1 -f
  ctl destroy s2 -f
  ctl destroy both -f
}

@test "networks: what is configured, and how many instances are on each" {
  new on-a --net a
  ctl create on-both --template "$TEMPLATE" --net a --net b
  run -0 ctl networks --json
  [ "$(echo "$output" | jq -r '[.[].name] | sort | join(",")')" = a,b,default,tiny ]
  [ "$(echo "$output" | jq -r '.[] | select(.name == "a") | .instances')" = 2 ]
  [ "$(echo "$output" | jq -r '.[] | select(.name == "b") | "\(.instances) \(.mtu) \(.subnet6)"')" = "1 1400 null" ]
  [ "$(echo "$output" | jq -r '.[] | select(.name == "default") | "\(.bridge) \(.subnet4) \(.subnet6)"')" = \
    "cell0 10.210.0.0/16 fd00:ce11::/64" ]
  run -0 ctl networks
  [[ "${lines[0]}" == NAME*BRIDGE*IPV4*IPV6*MTU*INSTANCES ]]
  [[ "$output" == *"a "*"$BRA"*"10.99.1.0/24"*"fd99:1::/64"*" 2"* ]]
  # And the table of instances shows each one's first address.
  run -0 ctl list
  [[ "$output" == *"on-a "*"10.99.1."* ]]
  ctl destroy on-a -f
  ctl destroy on-both
}

@test "no network: loopback only, up" {
  new lonely
  run -0 x lonely ip -o link
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"lo:"*"UP"* ]]
  run -0 x lonely ping -c1 -W1 127.0.0.1
  [ "$(field lonely '.networks | length')" = 0 ]
  ctl destroy lonely -f
}

@test "the default network works with no configuration" {
  new d1 --net default
  [ "$(field d1 '.networks[0].ipv4')" = 10.210.0.2 ]
  [ "$(field d1 '.networks[0].ipv6')" = fd00:ce11::2 ]
  host ip -o addr show cell0 | grep -q 'inet 10.210.0.1/16'
  run -0 host busybox ping -c1 -W2 10.210.0.2
  ctl destroy d1 -f
  # Its last instance gone, the bridge goes too.
  run host ip link show cell0
  [ "$status" -ne 0 ]
}

@test "addresses survive a celld restart and are never handed out twice" {
  new keep --net a:10.99.1.9
  pid=$(field keep .pid)
  kill -9 "$(cat "$D/celld.pid")"
  sleep 0.2
  start_daemon
  [ "$(field keep .pid)" = "$pid" ]
  [ "$(field keep '.networks[0].ipv4')" = 10.99.1.9 ]
  run -8 ctl create dup --template "$TEMPLATE" --net a:10.99.1.9
  [[ "$output" == *"10.99.1.9"*"in use"* ]]
  # The instance keeps its address over a restart of its own.
  ctl restart keep --timeout 1
  run -0 x keep ip -o -4 addr show eth0
  [[ "$output" == *"10.99.1.9/24"* ]]
  # 50 create/destroy cycles next to it: never its address, never a
  # second address for one interface, no veth left behind.
  # (not `i`: bats' `run` sets a global i)
  seen=""
  for cycle in $(seq 50); do
    ctl create "c$cycle" --template "$TEMPLATE" --net a >/dev/null
    addr=$(field "c$cycle" '.networks[0].ipv4')
    [ "$addr" != 10.99.1.9 ]
    if [ $((cycle % 10)) = 0 ]; then
      ctl start "c$cycle"
      run -0 x "c$cycle" ping -c1 -W2 10.99.1.9
    fi
    ctl destroy "c$cycle" -f
    seen="$seen $addr"
  done
  # Freed on destroy: the lowest free address again and again.
  [ "$(echo "$seen" | tr ' ' '\n' | sort -u | grep -c .)" = 1 ]
  # Two at once never share one.
  ctl create p1 --template "$TEMPLATE" --net a
  ctl create p2 --template "$TEMPLATE" --net a
  [ "$(field p1 '.networks[0].ipv4')" != "$(field p2 '.networks[0].ipv4')" ]
  [ "$(field p1 '.networks[0].ipv6')" != "$(field p2 '.networks[0].ipv6')" ]
  ctl destroy p1
  ctl destroy p2
  ctl destroy keep -f
  [ "$(host ip -o link | grep -c ': cv')" = 0 ]
}

@test "a veth left by a crash in the middle of an attach: the next start removes it" {
  ctl create crash --template "$TEMPLATE" --init "/bin/sleep 100000" --net a
  veth=$(field crash '.networks[0].host_veth')
  # What a celld killed between making the pair and moving its peer leaves.
  host ip link add "$veth" type veth peer name "$veth-p"
  ctl start crash
  run -0 x crash ip -o -4 addr show eth0
  [[ "$output" == *"10.99.1."* ]]
  ! host ip link show "$veth-p" 2>/dev/null
  [ "$(host ip -o link | grep -c ": $veth@")" = 1 ]
  ctl stop crash --timeout 1
  # Stopped: its pair is gone.
  ! host ip link show "$veth" 2>/dev/null
  ctl destroy crash
}

@test "a start that fails on its network leaves no veth, and another's link of the bridge's name stays" {
  # A link that is not a bridge holds the name of network tiny's bridge.
  host ip link add "$BRT" type veth peer name "$BRT-x"
  ctl create blocked --template "$TEMPLATE" --init "/bin/sleep 100000" --net tiny
  veth=$(field blocked '.networks[0].host_veth')
  run -1 ctl start blocked
  [[ "$output" == *"$BRT"* ]]
  [ "$(field blocked .state)" != running ]
  ! host ip link show "$veth" 2>/dev/null
  # Not celld's to delete, at the failed start or at destroy.
  host ip link show "$BRT" >/dev/null
  ctl destroy blocked
  host ip link show "$BRT" >/dev/null
  host ip link del "$BRT"
  [ -z "$(pool_pids)" ]
}

@test "bad input: unknown network, address outside or taken, exhausted subnet; nothing half-made" {
  run -4 ctl create bad1 --template "$TEMPLATE" --net nosuch
  [[ "$output" == *"network \`nosuch\` does not exist"* ]]
  run -8 ctl create bad2 --template "$TEMPLATE" --net a:10.98.0.5
  [[ "$output" == *"10.98.0.5"* ]]
  run -8 ctl create bad3 --template "$TEMPLATE" --net a:10.99.1.1
  [[ "$output" == *"10.99.1.1"* ]]
  run -8 ctl create bad4 --template "$TEMPLATE" --net b:fd99:1::5
  [[ "$output" == *"no IPv6 subnet"* ]]
  run -8 ctl create bad5 --template "$TEMPLATE" --net a --net a
  [[ "$output" == *"given twice"* ]]
  run -8 ctl create bad6 --template "$TEMPLATE" --net a:not-an-address
  [[ "$output" == *"not-an-address"* ]]
  # /30: the gateway and one instance.
  ctl create t1 --template "$TEMPLATE" --net tiny
  [ "$(field t1 '.networks[0].ipv4')" = 10.99.3.2 ]
  run -1 ctl create t2 --template "$TEMPLATE" --net tiny
  [[ "$output" == *"exhausted"* ]]
  for n in bad1 bad2 bad3 bad4 bad5 bad6 t2; do
    [ ! -e "$STATE/instances/$n" ]
    [ ! -e "$STATE/instances/$n.json" ]
  done
  ctl destroy t1
  run -0 ctl create t2 --template "$TEMPLATE" --net tiny
  ctl destroy t2
}

@test "bad network configuration: celld refuses to start and says why" {
  bad() { # CONFIG-LINES... -> celld's error
    printf '%s\n' "$@" >"$D/bad.conf"
    run -1 host "$CELLD" --foreground --config "$D/bad.conf" --state-dir "$D/bad-state" \
      --socket "$D/bad.sock"
  }
  bad "network.x.bridge = ctx$$" "network.x.subnet4 = 10.210.5.0/24"
  [[ "$output" == *"overlaps"* ]]
  bad "network.x.bridge = averyveryverylongbridge" "network.x.subnet4 = 10.97.0.0/24"
  [[ "$output" == *"network.x.bridge"* ]]
  bad "network.x.bridge = cell0" "network.x.subnet4 = 10.97.0.0/24"
  [[ "$output" == *"same bridge"* ]]
  bad "network.x.bridge = ctx$$"
  [[ "$output" == *"no subnet"* ]]
  bad "network.x.subnet4 = 10.97.0.1/24" "network.x.bridge = ctx$$"
  [[ "$output" == *"network.x.subnet4"* ]]
  [ ! -e "$D/bad.sock" ]
}
