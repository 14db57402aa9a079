#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# linux.netDevices: a host interface moved into the container, renamed.
# Only interfaces the test makes (a veth pair: the kernel here may lack the
# dummy driver), with random names, deleted at teardown; no routes or NAT
# to the outside.

load helpers

setup() {
  cell_setup
  local suffix
  suffix=$(printf '%04x' $((RANDOM % 65536)))
  DEV=cell-t-$suffix
  PEER=cell-u-$suffix
}

teardown() {
  cell_teardown
  ip link del "$DEV" 2>/dev/null || true
  ip link del "$PEER" 2>/dev/null || true
}

# Every test here fails on a runtime without the call to
# network_move_devices: the lead empties this when wiring it.
make_veth() {
  ip link add "$DEV" type veth peer name "$PEER"
  on_teardown "ip link del $DEV"
}

@test "netDevices: the device is moved into the container and renamed" {
  make_veth
  ip link set "$DEV" mtu 1400
  ip addr add 192.0.2.77/24 dev "$DEV" noprefixroute
  setup_bundle sleep 30
  update_config '.linux.netDevices = {($dev): {name: "eth7"}}' --arg dev "$DEV"
  run -0 cell_detached run -d "$CID"
  # Gone from the host while the container has it.
  run ip link show "$DEV"
  [ "$status" -ne 0 ]
  pid=$(container_pid "$CID")
  # (the host's /sys shows the host's devices: ask netlink in the netns)
  run -0 nsenter -t "$pid" -n ip -o link show eth7
  [[ "$output" == *" mtu 1400 "* ]]
  # The address came along (the runtime spec asks to keep it).
  run -0 nsenter -t "$pid" -n ip -4 -o addr show dev eth7
  [[ "$output" == *"192.0.2.77/24"* ]]
  run -0 cell delete -f "$CID"
  # A virtual device dies with the namespace, and its peer with it (the
  # kernel cleans up a dead namespace in the background).
  retry sh -c "! ip link show $PEER >/dev/null 2>&1"
}

@test "netDevices: without a name the device keeps its own" {
  make_veth
  setup_bundle sh -c 'ls /sys/class/net'
  update_config '.linux.netDevices = {($dev): {}}' --arg dev "$DEV"
  run -0 cell run "$CID"
  [[ " ${lines[*]} " == *" $DEV "* ]]
  [[ " ${lines[*]} " == *" lo "* ]]
}

@test "netDevices: a missing device fails create, nothing left" {
  setup_bundle true
  update_config '.linux.netDevices = {($dev): {name: "eth7"}}' --arg dev "$DEV"
  run ! cell_detached create "$CID"
  expect_message "network device \`$DEV\` does not exist"
  [ -z "$(state_entries)" ]
}

@test "netDevices: the container needs a network namespace of its own" {
  make_veth
  setup_bundle true
  update_config '.linux.namespaces |= map(select(.type != "network"))
                 | .linux.netDevices = {($dev): {name: "eth7"}}' --arg dev "$DEV"
  run ! cell_detached create "$CID"
  expect_message "network namespace"
  [ -z "$(state_entries)" ]
  # Untouched on the host.
  run -0 ip link show "$DEV"
}

@test "netDevices: a name longer than 15 characters is refused" {
  make_veth
  setup_bundle true
  update_config '.linux.netDevices = {($dev): {name: "averyveryverylongname"}}' --arg dev "$DEV"
  run ! cell_detached create "$CID"
  expect_message "interface name \`averyveryverylongname\` is longer than 15 characters"
  [ -z "$(state_entries)" ]
  run -0 ip link show "$DEV"
}

@test "netDevices: a missing device among several moves none" {
  make_veth
  setup_bundle true
  update_config '.linux.netDevices = {($dev): {name: "eth7"}, "cell-t-none": {name: "eth8"}}' --arg dev "$DEV"
  run ! cell_detached create "$CID"
  expect_message "network device \`cell-t-none\` does not exist"
  [ -z "$(state_entries)" ]
  run -0 ip link show "$DEV"
}
