# shellcheck shell=bash disable=SC2016
# Usage of celld's instances: show, list, top, `cellctl metrics` (the
# Prometheus text format) and the same over HTTP (metrics_listen).  The
# daemon runs in a network namespace this file makes: its bridge, its
# veths and the HTTP port stay in there.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=78000000
POOL_COUNT=$((65536 * 100))
PORT=19477

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export NETNS=cellmet-$$ CGPARENT=/cell-test-metrics-$$ BRM=ctm$$
  export CELLD_PREFIX="nsenter --net=/run/netns/$NETNS"
  celld_files
  ip netns add "$NETNS"
  ip -n "$NETNS" link set lo up
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
stop_timeout = 3
cgroup_parent = $CGPARENT
metrics_listen = 127.0.0.1:$PORT
network.m.bridge = $BRM
network.m.subnet4 = 10.98.7.0/24
network.m.subnet6 = none
EOF
  start_daemon
  new u1 --net m
  new u2 --net m
}

# A second celld a test started itself, stopped even when the test failed
# (its open fds would keep bats waiting).
teardown() {
  if [ -s "$D/extra.pid" ]; then
    kill "$(cat "$D/extra.pid")" 2>/dev/null || true
    rm -f "$D/extra.pid"
  fi
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  ip netns del "$NETNS"
  celld_leaks
}

host() {
  nsenter --net="/run/netns/$NETNS" "$@"
}

new() { # NAME [--net ...]: created and started, an idle init
  local name=$1
  shift
  ctl create "$name" --template "$TEMPLATE" --init "/bin/sleep 100000" "$@"
  ctl start "$name"
}

usage() { # NAME JQ-PATH below .usage
  ctl show "$1" --json | jq -r ".usage$2"
}

# One value of `cellctl metrics`: the sample line of that series.
sample() { # SERIES-WITH-LABELS
  ctl metrics | awk -v s="$1" '$1 == s {print $2}'
}

@test "memory current and peak grow when the instance allocates" {
  before=$(usage u1 .memory)
  [ "$before" -gt 0 ]
  # 32 MiB held in a tmpfs file, charged to the instance's memory cgroup.
  inside u1 sh -c 'mkdir -p /run/m && mount -t tmpfs t /run/m &&
    head -c 33554432 /dev/zero >/run/m/fill'
  after=$(usage u1 .memory)
  [ "$after" -ge $((before + 30 * 1048576)) ]
  [ "$(usage u1 .memory_peak)" -ge "$after" ]
  inside u1 sh -c 'rm /run/m/fill && umount /run/m'
  [ "$(usage u1 .memory)" -lt "$after" ]
  # The peak stays.
  [ "$(usage u1 .memory_peak)" -ge "$after" ]
}

@test "CPU time and CPU share grow while the instance spins; pids counts its tasks" {
  t0=$(usage u1 .cpu_ns)
  inside u1 timeout 3 sh -c 'while :; do :; done' &
  spinner=$!
  sleep 0.5
  ctl show u1 --json >/dev/null # begins celld's interval
  sleep 1.2
  pct=$(usage u1 .cpu_percent)
  wait "$spinner" || true # timeout's own status: 143
  t1=$(usage u1 .cpu_ns)
  # 3 s of a spinning shell: a good part of it on a CPU, even on a busy
  # host; and a share of 2 CPUs at most (this host has 2).
  [ "$t1" -ge $((t0 + 500000000)) ]
  awk -v p="$pct" -v n="$(nproc)" 'BEGIN { exit !(p > 15 && p <= 100 * n + 5) }'
  # list and top show it too.
  ctl list | grep -q '^u1 .* running '
  run -0 ctl top --once
  [[ "${lines[0]}" == NAME*MEM*CPU%*PIDS*RX*TX*DISK ]]
  [[ "$output" == *$'\n'u1\ * ]]

  p0=$(usage u1 .pids)
  [ "$p0" -ge 1 ]
  inside u1 sh -c 'for i in 1 2 3; do sleep 30 </dev/null >/dev/null 2>&1 & done'
  [ "$(usage u1 .pids)" -ge $((p0 + 3)) ]
  inside u1 pkill sleep || inside u1 killall sleep || true
}

@test "top redraws in place on a terminal and quits on q" {
  # script gives top a terminal; q comes after two or three redraws.
  run -0 bash -c "(sleep 2.3; printf q) |
    timeout 10 script -qfc '$CELLCTL --socket $SOCK top --interval 1' /dev/null"
  [ "$(grep -o $'\e\\[H' <<<"$output" | wc -l)" -ge 2 ] # cursor home each time
  [[ "$output" == *u1\ *running* ]]
  [[ "$output" == *$'\e[?25h' ]] # the cursor given back at the end
}

@test "rx/tx bytes and packets per NIC, as the instance sees them, after a ping" {
  a2=$(ctl show u2 --json | jq -r '.networks[0].ipv4')
  inside u1 ping -c 5 -i 0.2 -s 1000 -W 2 "$a2"
  # What u1 counts itself on eth0, and what celld says of it after.
  own_tx=$(inside u1 cat /sys/class/net/eth0/statistics/tx_bytes)
  own_rx=$(inside u1 cat /sys/class/net/eth0/statistics/rx_bytes)
  json=$(ctl show u1 --json)
  nic=$(jq -c '.usage.nics[0]' <<<"$json")
  [ "$(jq -r .nic <<<"$nic")" = eth0 ]
  [ "$(jq -r .tx_packets <<<"$nic")" -ge 5 ]
  [ "$(jq -r .rx_packets <<<"$nic")" -ge 5 ]
  [ "$(jq -r .tx_bytes <<<"$nic")" -ge $((5 * 1000)) ]
  # The same counters, turned round from the host end: not below what
  # the instance counted just before, and within a few stray packets.
  tx=$(jq -r .tx_bytes <<<"$nic") rx=$(jq -r .rx_bytes <<<"$nic")
  [ "$tx" -ge "$own_tx" ]
  [ "$tx" -le $((own_tx + 2000)) ]
  [ "$rx" -ge "$own_rx" ]
  [ "$rx" -le $((own_rx + 2000)) ]
  # A one-way flow tells rx from tx: 200 KB from u1 to u2.
  # (Its stdin stays open: nc -l hangs up when its stdin ends.)
  inside u2 sh -c 'sleep 10 | nc -l -p 7000 >/dev/null 2>&1 &'
  sleep 0.3
  tx0=$(usage u1 '.nics[0].tx_bytes') rx0=$(usage u1 '.nics[0].rx_bytes')
  inside u1 sh -c "head -c 200000 /dev/zero | nc -w 1 $a2 7000"
  tx1=$(usage u1 '.nics[0].tx_bytes') rx1=$(usage u1 '.nics[0].rx_bytes')
  [ $((tx1 - tx0)) -ge 200000 ]
  [ $((rx1 - rx0)) -lt 100000 ]
  [ "$(sample 'cell_network_transmit_bytes_total{instance="u1",nic="eth0"}')" -ge "$tx1" ]
}

@test "disk used grows after a write" {
  d0=$(usage u1 .disk_used)
  [ "$d0" -ge 0 ]
  inside u1 dd if=/dev/urandom of=/root/blob bs=1M count=4 2>/dev/null
  inside u1 sync
  [ "$(usage u1 .disk_used)" -ge $((d0 + 4 * 1048576)) ]
  inside u1 rm /root/blob
}

# Each line: a comment (# HELP NAME TEXT / # TYPE NAME TYPE) or a sample
# NAME{LABELS} VALUE, every TYPE before its samples, once per family.
valid_exposition() {
  awk '
    /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$/ { next }
    /^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|untyped|summary|histogram)$/ {
      if ($3 in typed) { print "TYPE twice: " $0; bad = 1 }
      typed[$3] = 1; next }
    /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+]+$/ {
      name = $0; sub(/[{ ].*/, "", name)
      if (!(name in typed)) { print "sample before its TYPE: " $0; bad = 1 }
      n++; next }
    { print "not the text format: " $0; bad = 1 }
    END { if (n == 0) { print "no samples"; bad = 1 }; exit bad }'
}

@test "metrics is the Prometheus text format with each instance's series in base units" {
  run -0 ctl metrics
  valid_exposition <<<"$output"
  for s in cell_instance_running cell_memory_usage_bytes cell_memory_peak_bytes \
    cell_cpu_seconds_total cell_pids cell_disk_used_bytes; do
    grep -q "^$s{instance=\"u1\"} " <<<"$output"
    grep -q "^# TYPE $s " <<<"$output"
  done
  grep -q '^cell_network_receive_packets_total{instance="u2",nic="eth0"} [1-9]' <<<"$output"
  grep -q '^# TYPE cell_cpu_seconds_total counter$' <<<"$output"
  # Seconds, not nanoseconds: a few at most for these idle instances.
  awk '/^cell_cpu_seconds_total\{instance="u2"\}/ { exit !($2 < 100) }' <<<"$output"
  grep -q '^cell_instance_running{instance="u1"} 1$' <<<"$output"
}

@test "celld serves the same metrics over HTTP on metrics_listen" {
  run -0 host curl -sS --max-time 5 -D "$D/headers" "http://127.0.0.1:$PORT/metrics"
  valid_exposition <<<"$output"
  grep -qi '^content-type: text/plain; version=0.0.4' "$D/headers"
  # The same series (values move between two reads).
  diff <(awk '{print $1}' <<<"$output" | sort) <(ctl metrics | awk '{print $1}' | sort)
  run -0 host curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/other"
  [ "$output" = 404 ]
  run -0 host curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/metrics"
  [ "$output" = 405 ]
}

@test "a silent HTTP client does not block celld" {
  # Connections that send nothing (or half a request) and stay open.
  host bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT 4<>/dev/tcp/127.0.0.1/$PORT
    printf 'GET /metr' >&4; sleep 4" &
  holder=$!
  sleep 0.3
  run -0 timeout 3 "$CELLCTL" --socket "$SOCK" list
  run -0 host curl -sS --max-time 3 "http://127.0.0.1:$PORT/metrics"
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
}

@test "a bad metrics_listen: celld refuses to start, says why and the way out" {
  for bad in 127.0.0.1 127.0.0.1:0 localhost:9477 '[::1]:99999' 1.2.3:80; do
    sed "s/^metrics_listen = .*/metrics_listen = $bad/" "$D/celld.conf" >"$D/bad.conf"
    run -1 "$CELLD" --foreground --config "$D/bad.conf" --state-dir "$D/bad-state" \
      --socket "$D/bad.sock"
    [ "${#lines[@]}" = 1 ]
    [[ "$output" == *"metrics_listen: bad value \`$bad\`: expected ADDRESS:PORT"* ]]
    [ ! -e "$D/bad.sock" ]
  done
  # A port another program holds (here: the running celld's).  The other
  # celld shares no pool, cgroup parent nor network with the running one:
  # its startup would sweep their processes, cgroups and bridge filter.
  grep -v '^network\.\|^pool_\|^cgroup_parent' "$D/celld.conf" >"$D/bad.conf"
  printf 'pool_start = %s\npool_count = 65536\ncgroup_parent = %s-bad\n' \
    $((POOL_START + POOL_COUNT - 65536)) "$CGPARENT" >>"$D/bad.conf"
  run -1 $CELLD_PREFIX "$CELLD" --foreground --config "$D/bad.conf" \
    --state-dir "$D/bad-state" --socket "$D/bad.sock"
  [[ "$output" == *"metrics_listen 127.0.0.1:$PORT: cannot listen there"*"set it to off"* ]]
  [ ! -e "$D/bad.sock" ]
  rmdir /sys/fs/cgroup/*"$CGPARENT-bad" /sys/fs/cgroup"$CGPARENT-bad" 2>/dev/null || true
  # The running celld's instances ran on.
  [ "$(field u1 .state)" = running ]
}

# celld stopped (its instances run on) and started again with celld.conf's
# metrics lines replaced by these.
restart_with() { # LINE...
  local pid
  pid=$(cat "$D/celld.pid")
  kill "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  grep -v '^metrics_' "$D/celld.conf" >"$D/celld.conf.new"
  printf '%s\n' "$@" >>"$D/celld.conf.new"
  mv "$D/celld.conf.new" "$D/celld.conf"
  start_daemon
}

# The HTTP status of GET /metrics (or PATH) with these curl arguments.
status_of() { # [PATH] [CURL ARGS...]
  local path=/metrics
  [[ "${1:-}" == /* ]] && { path=$1; shift; }
  host curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" \
    "http://127.0.0.1:$PORT$path"
}

token_file() { # PATH TOKEN MODE: written whole, then moved in place
  printf '%s\n' "$2" >"$1.new"
  chmod "$3" "$1.new"
  mv "$1.new" "$1"
}

@test "metrics_token_file: no token or a wrong one gets 401 and nothing else; the right one gets the metrics" {
  tok=0123456789abcdef0123456789abcdef
  token_file "$D/token" "$tok" 600
  restart_with "metrics_listen = 127.0.0.1:$PORT" "metrics_token_file = $D/token"
  grep -q "metrics on http://127.0.0.1:$PORT/metrics (bearer token required)" "$D/celld.log"
  # No token: 401, the scheme to use, and not one instance's name.
  run -0 host curl -s --max-time 5 -D "$D/headers" "http://127.0.0.1:$PORT/metrics"
  grep -q '^HTTP/1.1 401' "$D/headers"
  grep -qi '^WWW-Authenticate: Bearer' "$D/headers"
  [[ "$output" != *u1* ]]
  # Wrong tokens: the last character off, a prefix, one character more,
  # another scheme, and the token with no scheme.
  [ "$(status_of -H "Authorization: Bearer ${tok%f}e")" = 401 ]
  [ "$(status_of -H "Authorization: Bearer ${tok:0:16}")" = 401 ]
  [ "$(status_of -H "Authorization: Bearer ${tok}0")" = 401 ]
  [ "$(status_of -u "user:$tok")" = 401 ]
  [ "$(status_of -H "Authorization: $tok")" = 401 ]
  # Without the token, no other path nor method tells more.
  [ "$(status_of /other)" = 401 ]
  [ "$(status_of -X POST)" = 401 ]
  # The right one: the metrics, as before.
  run -0 host curl -sS --fail --max-time 5 -H "Authorization: Bearer $tok" \
    "http://127.0.0.1:$PORT/metrics"
  valid_exposition <<<"$output"
  grep -q '^cell_instance_running{instance="u1"} 1$' <<<"$output"
  [ "$(status_of /other -H "Authorization: Bearer $tok")" = 404 ]
  restart_with "metrics_listen = 127.0.0.1:$PORT"
  [ "$(status_of)" = 200 ]
}

@test "metrics_listen on a non-loopback address without a token: celld says so in its log" {
  token_file "$D/token" 0123456789abcdef0123456789abcdef 600
  restart_with "metrics_listen = 0.0.0.0:$PORT"
  run -0 grep -c "metrics_listen 0.0.0.0:$PORT is not a loopback address and no metrics_token_file is set" "$D/celld.log"
  [ "$output" = 1 ]
  restart_with "metrics_listen = 0.0.0.0:$PORT" "metrics_token_file = $D/token"
  run -0 grep -c "metrics_listen 0.0.0.0:$PORT is not a loopback address" "$D/celld.log"
  [ "$output" = 1 ]
  # Loopback without a token: no warning either.
  restart_with "metrics_listen = 127.0.0.1:$PORT"
  run -0 grep -c "is not a loopback address" "$D/celld.log"
  [ "$output" = 1 ]
}

@test "attack: a metrics token file others can read or write, or not root's, is refused at start" {
  tok=0123456789abcdef0123456789abcdef
  # A celld of its own (no instance, no network of the running one's).
  cat >"$D/bad.conf" <<EOF2
pool_start = $((POOL_START + POOL_COUNT - 65536))
pool_count = 65536
cgroup_parent = $CGPARENT-token
metrics_listen = 127.0.0.1:$((PORT + 1))
metrics_token_file = $D/bad-token
EOF2
  try_start() {
    # shellcheck disable=SC2086 # CELLD_PREFIX is words
    run -1 $CELLD_PREFIX "$CELLD" --foreground --config "$D/bad.conf" \
      --state-dir "$D/bad-state" --socket "$D/bad.sock"
    [ "${#lines[@]}" = 1 ]
    [ ! -e "$D/bad.sock" ]
  }
  for mode in 644 604 602 620; do
    token_file "$D/bad-token" "$tok" "$mode"
    try_start
    [[ "$output" == *"metrics_token_file \`$D/bad-token\`: owned by uid 0 with mode 0$mode: it must be owned by root and neither readable nor writable by others (chown root $D/bad-token; chmod 600 $D/bad-token)"* ]]
  done
  token_file "$D/bad-token" "$tok" 600
  chown 65534 "$D/bad-token"
  try_start
  [[ "$output" == *"owned by uid 65534 with mode 0600: it must be owned by root"* ]]
  token_file "$D/bad-token" short 600
  try_start
  [[ "$output" == *"expected one token of 16 to 1024 characters"* ]]
  rm "$D/bad-token"
  try_start
  [[ "$output" == *"metrics_token_file \`$D/bad-token\`: open: No such file or directory"* ]]
  # 640, root's: fine (a group of scrapers may read it).
  token_file "$D/bad-token" "$tok" 640
  $CELLD_PREFIX "$CELLD" --foreground --debug --config "$D/bad.conf" --state-dir "$D/bad-state" \
    --socket "$D/bad.sock" 2>"$D/bad.log" &
  pid=$!
  echo "$pid" >"$D/extra.pid"
  # Ready once it answers: its metrics listener is up by then (the socket
  # file alone comes earlier).
  "$CELLCTL" --socket "$D/bad.sock" wait-ready --timeout 10
  run -0 host curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
    -H "Authorization: Bearer $tok" "http://127.0.0.1:$((PORT + 1))/metrics"
  [ "$output" = 200 ]
  kill "$pid"
  wait "$pid" || true
  grep -q "metrics on http://127.0.0.1:$((PORT + 1))/metrics (bearer token required)" "$D/bad.log"
  rmdir /sys/fs/cgroup/*"$CGPARENT-token" /sys/fs/cgroup"$CGPARENT-token" 2>/dev/null || true
}
