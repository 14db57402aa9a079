#!/bin/bash
# make bench: how long a checkpoint then a restore freezes a busybox
# container, cell against runc on the same bundle in the same run (a
# figure, not a test), and a busybox instance of celld (cellctl checkpoint
# --stop, then cellctl restore).  Each appends /proc/uptime to a file every
# few ms; the frozen time is the longest gap between two lines around the
# checkpoint + restore, plus what the restore's time namespace hides of it
# (criu restores into one whose clocks go on from an instant of the dump:
# its offset, negative, is in /proc/PID/timens_offsets).  Where criu cannot
# work (criu 3.17 on kernels from 6.13 on), it says so and measures
# nothing; `make check-criu`'s VM is such a place (CRIU_BENCH=1 there),
# emulated, so there only the ratio means something.
#
#   tests/bench/bench-criu.sh BUILD_DIR      (BENCH_CRIU_N=5 rounds)
#
# Everything is under TMPDIR (an instance's checkpoint needs a file
# system that takes its snapshots: not the tmpfs of an old kernel).
set -euo pipefail

build=$(realpath "${1:-build}")
N=${BENCH_CRIU_N:-5}
rootfs=${CELL_BENCH_ROOTFS:-$build/rootfs}
export PATH=$PATH:/usr/sbin:/sbin

echo "# checkpoint + restore: frozen time of a busybox container (ms)"
if ! command -v criu >/dev/null; then
  echo "skipped: criu is not installed"
  exit 0
fi
if ! why=$(criu check 2>&1); then
  echo "skipped: criu $(criu --version | sed -n 's/^Version: //p') cannot work on kernel $(uname -r):" \
    "$(grep -m1 Error <<<"$why" | sed 's/^Error ([^)]*): //')"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cell-bench-criu.XXXXXX")
# The instances' roots (unprivileged uids) must traverse to their rootfs.
chmod 0711 "$work"
# cell dumps the container's network namespace (its lo and addresses come
# back); runc always empties it (--empty-ns network is implied), which
# spares criu its ip and iptables-save runs.  cell-emptyns is cell doing
# the same, the like-for-like figure.
declare -A runtime=([cell]=$build/cell [cell-emptyns]=$build/cell)
declare -A cr_flags=([cell-emptyns]="--empty-ns network")
command -v runc >/dev/null && runtime[runc]=$(command -v runc)
runtimes=(cell cell-emptyns runc)

# celld's instance: its own celld, pool and cgroup parent, no lxcfs (criu
# cannot dump its mounts) and no network (loopback only, as the
# containers' empty namespace).
CELLD=$build/celld
CELLCTL=$build/cellctl
CELL=$build/cell
STATE=$work/celld-state
SOCK=$work/celld.sock
LOG=$work/celld.log
CGPARENT=/cell-bench-criu-$$
POOL_START=3700000000
POOL_END=$((POOL_START + 65536 * 4))
daemon_pid=
die() {
  echo "bench-criu: $*" >&2
  exit 1
}
# ctl, start_daemon, celld_teardown.
. "$(dirname "$0")/celld-harness.sh"
if [ -x "$CELLD" ] && [ -x "$CELLCTL" ]; then
  runtime[instance]=$CELLCTL
  runtimes+=(instance)
fi

cleanup() {
  for rt in "${!runtime[@]}"; do
    [ "$rt" = instance ] && continue
    for id in $("${runtime[$rt]}" --root "$work/$rt" list -q 2>/dev/null); do
      "${runtime[$rt]}" --root "$work/$rt" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  if [ -n "${runtime[instance]:-}" ]; then
    celld_teardown bench-criu || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/bundle" "$work/host"
"$build/cell" spec -b "$work/bundle"
jq --arg rootfs "$rootfs" --arg host "$work/host" '
  .ociVersion = "1.0.2" | .process.terminal = false
  | .root = {path: $rootfs, readonly: true}
  | .process.args = ["sh", "-c", "exec </dev/null >/dev/null 2>&1
      while :; do read u _ </proc/uptime; echo $u >>/host/beats; sleep 0.005; done"]
  | .mounts += [{destination: "/host", type: "bind", source: $host,
                 options: ["rbind", "rw"]}]' \
  "$work/bundle/config.json" >"$work/config.json"
mv "$work/config.json" "$work/bundle/config.json"

# The longest gap between two beats, in ms, and the time the restored
# beats' clock lost (OFFSETS: a timens_offsets file's text, its boottime).
longest_gap() { # FILE OFFSETS
  awk -v offsets="$2" '
    BEGIN { n = split(offsets, f, /[ \n]+/)
            for (i = 1; i + 2 <= n; i++)
              if (f[i] == "boottime") lost = -(f[i + 1] + f[i + 2] / 1e9) * 1000 }
    NR > 1 { d = ($1 - prev) * 1000; if (d > max) max = d } { prev = $1 }
    END { printf "%d\n", max + lost }' "$1"
}

BEAT="exec </dev/null >/dev/null 2>&1
  while :; do read u _ </proc/uptime; echo \$u >>/beats; sleep 0.005; done"

if [ -n "${runtime[instance]:-}" ]; then
  printf '%s\n' "pool_start = $POOL_START" \
    "pool_count = $((POOL_END - POOL_START))" "range_size = 65536" \
    "stop_timeout = 2" "cgroup_parent = $CGPARENT" "lxcfs = off" \
    >"$work/celld.conf"
  start_daemon
  ctl image import "$rootfs" --name bench-busybox --progress=none >/dev/null
fi

# One round of the instance: start, let it beat, checkpoint (--stop: its
# processes go, as runc's checkpoint ends the container), restore, let it
# beat, destroy.
instance_round() {
  local name=bench-$1
  ctl create "$name" --image bench-busybox --init "/bin/sh -c '$BEAT'" >/dev/null
  ctl start "$name" >/dev/null
  sleep 1
  ctl checkpoint "$name" c --stop >/dev/null
  ctl restore "$name" c >/dev/null
  sleep 1
  ctl exec "$name" -- cat /beats </dev/null >"$work/instance-beats"
  local offsets
  offsets=$(ctl exec "$name" -- cat /proc/1/timens_offsets </dev/null 2>/dev/null || true)
  ctl destroy "$name" -f >/dev/null
  longest_gap "$work/instance-beats" "$offsets"
}

# One round: start, let it beat, checkpoint, restore, let it beat, stop.
round() {
  local rt=$1 exe=$2 id=bench-$1-$3
  local -a flags
  read -ra flags <<<"${cr_flags[$rt]:-}"
  rm -f "$work/host/beats"
  rm -rf "$work/img"
  (cd "$work/bundle" && "$exe" --root "$work/$rt" run -d "$id" </dev/null >/dev/null 2>&1)
  sleep 1
  (cd "$work/bundle" && "$exe" --root "$work/$rt" checkpoint "${flags[@]}" --image-path "$work/img" "$id" &&
    "$exe" --root "$work/$rt" restore -d "${flags[@]}" --image-path "$work/img" "$id" </dev/null >/dev/null 2>&1)
  sleep 1
  local pid offsets
  pid=$("$exe" --root "$work/$rt" state "$id" | jq -r .pid)
  offsets=$(cat "/proc/$pid/timens_offsets" 2>/dev/null || true)
  "$exe" --root "$work/$rt" delete -f "$id" >/dev/null 2>&1
  longest_gap "$work/host/beats" "$offsets"
}

# The rounds alternate between the runtimes, so that a slow spell of a
# shared (or emulated) machine weighs on both alike.
declare -A gaps=()
for ((i = 0; i < N; i++)); do
  for rt in "${runtimes[@]}"; do
    [ -n "${runtime[$rt]:-}" ] || continue
    if [ "$rt" = instance ]; then
      gaps[$rt]+="$(instance_round "$i") "
      continue
    fi
    gaps[$rt]+="$(round "$rt" "${runtime[$rt]}" "$i") "
  done
done

declare -A median=()
printf '%-12s %8s %8s   (%d rounds each)\n' runtime median max "$N"
for rt in "${runtimes[@]}"; do
  [ -n "${gaps[$rt]:-}" ] || continue
  read -r m max < <(tr ' ' '\n' <<<"${gaps[$rt]}" | grep . | sort -n |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[NR] }')
  median[$rt]=$m
  printf '%-12s %8d %8d\n' "$rt" "${median[$rt]}" "$max"
done
if [ -n "${median[runc]:-}" ] && [ "${median[runc]}" -gt 0 ]; then
  for rt in cell cell-emptyns instance; do
    [ -n "${median[$rt]:-}" ] || continue
    awk -v rt="$rt" -v c="${median[$rt]}" -v r="${median[runc]}" \
      'BEGIN { printf "ratio  %s/runc = %.2f (medians)\n", rt, c / r }'
  done
else
  echo "ratio  none: runc is not installed"
fi
