#!/bin/bash
# make soak: CYCLES cycles (default 1000) of create, start, exec, stop and
# destroy of instances on a network, through a private celld, with celld
# killed with -9 at a random point in KILLS of them (default 50; all in
# the first half) and started again.  Afterwards: nothing is left (mounts,
# processes of the id pool, cgroups, veths, records), and over the second
# half, which no kill interrupts, celld's fd count comes back to where it
# was and its RSS grows by less than 1 MiB.  Figures, not a test
# of speed; it fails when something leaks or a step fails.
#
# Usage: tests/soak/soak.sh BUILD_DIR   (as root)
set -euo pipefail

build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
CYCLES=${CYCLES:-1000}
KILLS=${KILLS:-50}
PARALLEL=${PARALLEL:-4}
celld=$build/celld
cellctl=$build/cellctl

D=$(mktemp -d /var/tmp/cell-soak.XXXXXX)
chmod 755 "$D"
STATE=$D/state SOCK=$D/celld.sock TEMPLATE=$D/template
# Far from the pools of the bats files, so that both can run at once.
POOL_START=41000000
POOL_COUNT=$((65536 * 64))
CGPARENT=/cell-soak-$$
BRIDGE=cellsoak$$
BRIDGE=${BRIDGE:0:15}

cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
cgroup_parent = $CGPARENT
stop_timeout = 2
network.soak.bridge = $BRIDGE
network.soak.subnet4 = 10.213.0.0/22
EOF
if [ -x "$repo/build/rootfs/bin/busybox" ]; then
  cp -a "$repo/build/rootfs" "$TEMPLATE"
else
  "$repo/rootfs-tools/mkrootfs-busybox" "$TEMPLATE" >/dev/null
fi

ctl() { "$cellctl" --socket "$SOCK" "$@"; }

start_daemon() {
  "$celld" --foreground --config "$D/celld.conf" --state-dir "$STATE" \
    --socket "$SOCK" 2>>"$D/celld.log" &
  echo $! >"$D/celld.pid"
  disown $!
  for _ in $(seq 100); do
    ctl list >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "soak: celld did not come up" >&2
  tail "$D/celld.log" >&2
  exit 1
}

daemon_pid() { cat "$D/celld.pid"; }
fd_count() { ls "/proc/$(daemon_pid)/fd" | wc -l; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$(daemon_pid)/status"; }

pool_pids() {
  ps -eo pid=,uid=,stat= |
    awk -v s="$POOL_START" -v e="$((POOL_START + POOL_COUNT))" \
      '$2 >= s && $2 < e && $3 !~ /^Z/ {print $1}'
}

cleanup() {
  if [ -f "$D/celld.pid" ]; then
    for n in $(ctl list --json 2>/dev/null | jq -r '.[].name'); do
      ctl destroy "$n" -f >/dev/null 2>&1 || true
    done
    kill "$(daemon_pid)" 2>/dev/null || true
    sleep 0.5
  fi
  pool_pids | xargs -r kill -9 2>/dev/null || true
  grep " $STATE/" /proc/self/mountinfo | awk '{print $5}' | sort -r |
    xargs -r -n1 umount -l 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  find /sys/fs/cgroup/*"$CGPARENT" /sys/fs/cgroup"$CGPARENT" -depth -type d \
    -exec rmdir {} + 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT

# One cycle of instance NAME; a step may fail only when celld was killed
# during it (the caller knows).
cycle() {
  local name=$1
  ctl create "$name" --template "$TEMPLATE" --memory 64M --pids 100 \
    --net soak >/dev/null &&
    ctl start "$name" >/dev/null &&
    [ "$(ctl exec "$name" -- cat /proc/1/comm 2>/dev/null)" = init ] &&
    ctl stop "$name" --timeout 2 >/dev/null &&
    ctl destroy "$name" >/dev/null
}

start_daemon
half=$((CYCLES / 2))

# The cycles where celld is killed, at a random delay into the cycle.
declare -A kill_at=([none]=1)
n_kills=0
while [ "$n_kills" -lt "$KILLS" ] && [ "$n_kills" -lt "$half" ]; do
  k=$((RANDOM % half))
  if [ -z "${kill_at[$k]:-}" ]; then
    kill_at[$k]=1
    n_kills=$((n_kills + 1))
  fi
done

start=$(date +%s%N)
failures=0
for ((i = 0; i < CYCLES; i += PARALLEL)); do
  if [ "$i" -ge "$half" ] && [ -z "${fd0:-}" ]; then
    # The baseline of the second half: what a running celld holds anyway
    # (the console keeper's connection, the bridge).
    fd0=$(fd_count)
    rss0=$(rss_kb)
  fi
  pids=()
  killed=0
  for ((j = i; j < i + PARALLEL && j < CYCLES; j++)); do
    cycle "soak$((j % (PARALLEL * 2)))-$j" 2>>"$D/cycles.log" &
    pids+=($!)
    [ -n "${kill_at[$j]:-}" ] && killed=1
  done
  if [ "$killed" = 1 ]; then
    sleep "0.0$((RANDOM % 10))"
    kill -9 "$(daemon_pid)"
    start_daemon
  fi
  for p in "${pids[@]}"; do
    if ! wait "$p" && [ "$killed" = 0 ]; then
      failures=$((failures + 1))
    fi
  done
  if [ "$killed" = 1 ]; then
    # What the kill interrupted: destroy must finish it.
    for n in $(ctl list --json | jq -r '.[].name'); do
      ctl destroy "$n" -f >/dev/null
    done
  fi
done
elapsed_ms=$((($(date +%s%N) - start) / 1000000))

left=0
report() {
  echo "soak: $*" >&2
  left=1
}
[ "$(ctl list --json | jq length)" = 0 ] || report "instances left: $(ctl list)"
[ -z "$(find "$STATE" -name '*.json' -path '*instances*' 2>/dev/null)" ] ||
  report "records left: $(find "$STATE" -name '*.json' -path '*instances*')"
! grep -q " $STATE/" /proc/self/mountinfo || report "mounts left under $STATE"
sleep 1
[ -z "$(pool_pids)" ] || report "processes left in the pool: $(pool_pids | tr '\n' ' ')"
for cg in /sys/fs/cgroup/*"$CGPARENT" /sys/fs/cgroup"$CGPARENT"; do
  [ -d "$cg" ] || continue
  [ -z "$(find "$cg" -mindepth 1 -type d)" ] || report "cgroups left under $cg"
done
[ -z "$(ip -o link show master "$BRIDGE" 2>/dev/null)" ] ||
  report "veths left on $BRIDGE: $(ip -o link show master "$BRIDGE" | cut -d: -f2)"
fd1=$(fd_count)
rss1=$(rss_kb)
[ "$fd1" -le "$fd0" ] || report "celld's fds: $fd0 before, $fd1 after"
[ "$rss1" -lt $((rss0 + 1024)) ] || report "celld's RSS: $rss0 KiB before, $rss1 KiB after"
[ "$failures" = 0 ] ||
  report "$failures cycles failed without a kill: $(tail -3 "$D/cycles.log")"

printf 'soak: %d cycles (%d in parallel) in %d.%03d s, celld killed -9 in %d of them\n' \
  "$CYCLES" "$PARALLEL" $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) "$n_kills"
printf 'soak: over the last %d cycles, celld fds %d -> %d, RSS %d -> %d KiB\n' \
  $((CYCLES - half)) "$fd0" "$fd1" "$rss0" "$rss1"
[ "$left" = 0 ] && echo "soak: nothing left behind"
exit "$left"
