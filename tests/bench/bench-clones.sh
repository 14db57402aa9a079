#!/bin/bash
# make bench, thousands of clones: a private celld (its own state dir,
# socket, id pool and cgroup parent) makes one busybox instance, starts and
# stops it, then clones it BENCH_CLONES_N times and starts each clone.  It
# reports the time of a clone, the create (clone) + start time of the 1st,
# 10th, 100th and Nth (the median and the least of a window of 21 around
# each: does a start slow down as instances accumulate?  The least is the
# figure a busy host disturbs least), the disk of the state dir
# against one instance, celld's RSS and mount table per running instance,
# and what a new mount namespace copied from celld's costs the kernel.
# Then BENCH_CLONES_DEBIAN_N clones of a Debian instance (not started: a
# thousand systemd guests do not fit this host), for their disk against
# one.  Everything is destroyed, and anything left (mounts, processes,
# cgroups, runtime state, instance directories, layers) fails the run.
#
#   tests/bench/bench-clones.sh BUILD_DIR
#   BENCH_CLONES_N=1000          busybox clones, each started
#   BENCH_CLONES_DEBIAN_N=N      Debian clones, not started (0: none)
#   BENCH_CLONES_DEBIAN=DIR      the Debian rootfs (default: the test cache's
#                                /var/cache/cell-test/debian-bookworm-*;
#                                without one the Debian rows are skipped)
set -euo pipefail

build=$(realpath "${1:-build}")
N=${BENCH_CLONES_N:-1000}
DEB_N=${BENCH_CLONES_DEBIAN_N:-$N}
# An init that SIGTERM stops (the source is started once and stopped).
INIT="/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"

die() {
  echo "bench-clones: $*" >&2
  exit 2
}
[ "$(id -u)" = 0 ] || die "needs root"
for v in "$N" "$DEB_N"; do
  [[ "$v" =~ ^[0-9]+$ ]] || die "not a count: \`$v'"
done
[ "$N" -gt 0 ] || die "BENCH_CLONES_N must be at least 1"
for f in "$build/celld" "$build/cellctl" "$build/cell" "$build/rootfs/bin/busybox"; do
  [ -x "$f" ] || die "$f is missing (make all rootfs)"
done

# Far from the tests' pools and from the other benches' (1e9, 2e9 on).
POOL_START=3000000000
RANGE=65536
max=$((N > DEB_N ? N : DEB_N))
POOL_COUNT=$((RANGE * (max + 16)))
POOL_END=$((POOL_START + POOL_COUNT))
[ "$POOL_END" -lt 4294967295 ] || die "$max instances do not fit in the uid space"

work=$(mktemp -d "${TMPDIR:-/tmp}/cell-bench-clones.XXXXXX")
# The instances' roots (unprivileged uids) must traverse to their rootfs.
chmod 0711 "$work"
CELLD=$work/bin/celld
CELLCTL=$work/bin/cellctl
CELL=$work/bin/cell
STATE=$work/state
SOCK=$work/celld.sock
CGPARENT=/cell-bench-clones-$$
LOG=$work/celld.log
daemon_pid=

# ctl, pool_pids, mounts_under, unmount_under, cgroup_dirs, start_daemon,
# stop_daemon.
. "$(dirname "$0")/celld-harness.sh"

destroy_all() {
  local n
  for n in $(ctl list --json | jq -r '.[].name'); do
    ctl destroy "$n" -f >/dev/null || echo "bench-clones: destroy $n failed" >&2
  done
}

cleanup() {
  local status=$? left=0
  set +e
  celld_teardown bench-clones || left=1
  if [ "$left" = 1 ] && [ -s "$LOG" ]; then
    echo "bench-clones: celld's log, last lines:" >&2
    tail -20 "$LOG" >&2
  fi
  rm -rf "$work"
  if [ "$left" = 0 ] && [ "$status" = 0 ]; then
    echo "left behind: nothing (mounts, pool processes, runtime state, cgroups, instance dirs, layers checked)"
  fi
  [ "$status" != 0 ] && exit "$status"
  exit "$left"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$work/celld.conf" <<EOF
socket_mode = 0600
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = $RANGE
stop_timeout = 5
cgroup_parent = $CGPARENT
EOF
mkdir "$work/bin"
cp "$build/celld" "$build/cellctl" "$build/cell" "$work/bin/"

now_us() {
  echo "${EPOCHREALTIME/./}"
}

# "median (least)" in ms of the microsecond figures on stdin.
median_least_ms() {
  sort -n | awk '{ v[NR] = $1 }
    END { if (NR == 0) { print "-"; exit }
          m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%.1f (%.1f)\n", m / 1000, v[1] / 1000 }'
}

# Lines FROM..TO (1-based, clipped to the file) of FILE.
window() { # FILE FROM TO
  sed -n "$2,$3p" "$1"
}

# The 21 figures around the Kth of N (shifted to fit), the 1st alone.
around() { # FILE K
  local k=$2 from to
  if [ "$k" = 1 ]; then
    window "$1" 1 1
    return
  fi
  from=$((k - 10))
  to=$((k + 10))
  [ "$to" -le "$N" ] || { from=$((from - (to - N))); to=$N; }
  [ "$from" -ge 1 ] || from=1
  window "$1" "$from" "$to"
}

# What is on disk: not what an instance's mounts show of the store again
# (an idmapped mount is on the same device, -x does not skip it).
state_kib() {
  du -sxk --exclude="$STATE/instances/*/rootfs" \
    --exclude="$STATE/instances/*/layers" \
    --exclude="$STATE/instances/*/disk.idmapped" "$STATE" | cut -f1
}

rss_kib() {
  awk '$1 == "Rss:" {print $2}' "/proc/$daemon_pid/smaps_rollup"
}

mount_lines() { # PID
  wc -l <"/proc/$1/mountinfo"
}

# What the kernel spends on a new user and mount namespace copied from
# celld's (as each container's is): the least of 50 `unshare -Um true`
# run from celld's namespace, in ms.
unshare_ms() {
  local i t0
  for ((i = 0; i < 50; i++)); do
    t0=$(now_us)
    nsenter -t "$daemon_pid" -m unshare -Um true
    echo $(($(now_us) - t0))
  done | sort -n | head -1 | awk '{ printf "%.1f", $1 / 1000 }'
}

# A source instance of IMAGE, started once and stopped: what one costs.
make_source() { # NAME IMAGE
  local out
  out=$(ctl create "$1" --image "$2" --init "$INIT" 2>&1) || die "create $1: $out"
  out=$(ctl start "$1" 2>&1) || die "start $1: $out"
  out=$(ctl stop "$1" 2>&1) || die "stop $1: $out"
}

# After everything is destroyed: the store holds the images' layers alone
# and no instance directory is left.
check_empty() {
  local left
  [ "$(ctl list --json | jq length)" = 0 ] || die "instances left after destroy"
  left=$(find "$STATE/instances" -mindepth 1 -maxdepth 1 | wc -l)
  [ "$left" = 0 ] || die "$left entries left in $STATE/instances"
  local want have
  want=$(ctl image list --json | jq '[.[].n_layers] | add // 0')
  have=$(find "$STATE/images/layers" -mindepth 1 -maxdepth 1 -type d | wc -l)
  [ "$have" -le "$want" ] || die "$have layers in the store, the images have $want"
}

start_daemon
ctl image import "$build/rootfs" --name bench-busybox --progress=none >/dev/null

# ---- busybox: N clones, each started ------------------------------------------

make_source src bench-busybox
one_kib=$(state_kib)
rss0=$(rss_kib)
mnt0=$(mount_lines "$daemon_pid")
ns0=$(unshare_ms)
: >"$work/clone.us"
: >"$work/start.us"
: >"$work/create-start.us"
for ((i = 1; i <= N; i++)); do
  t0=$(now_us)
  out=$(ctl clone src "c$i" 2>&1) || die "clone c$i: $out"
  t1=$(now_us)
  out=$(ctl start "c$i" 2>&1) || die "start c$i: $out"
  t2=$(now_us)
  echo $((t1 - t0)) >>"$work/clone.us"
  echo $((t2 - t1)) >>"$work/start.us"
  echo $((t2 - t0)) >>"$work/create-start.us"
done
running=$(ctl list --json | jq '[.[] | select(.state == "running")] | length')
[ "$running" = "$N" ] || die "$running of $N clones are running"
sleep 1
rss1=$(rss_kib)
mnt1=$(mount_lines "$daemon_pid")
ns1=$(unshare_ms)
all_kib=$(state_kib)
last_pid=$(ctl show "c$N" --json | jq -r '.pid')
inst_mnt=$(mount_lines "$last_pid")
t0=$(now_us)
destroy_all
destroy_ms=$((($(now_us) - t0) / 1000))
check_empty

# ---- Debian: DEB_N clones, not started ------------------------------------------

debian=${BENCH_CLONES_DEBIAN:-}
if [ -z "$debian" ]; then
  for d in /var/cache/cell-test/debian-bookworm-*/; do
    [ -e "$d/sbin/init" ] || [ -L "$d/sbin/init" ] || continue
    debian=${d%/}
  done
fi
deb_note=
if [ "$DEB_N" = 0 ]; then
  deb_note="not run (BENCH_CLONES_DEBIAN_N=0)"
elif [ -z "$debian" ]; then
  deb_note="not run (no Debian guest: tests/bats/debian-image.sh builds one)"
else
  ctl image import "$debian" --name bench-debian --progress=none >/dev/null
  make_source deb bench-debian
  deb_one_kib=$(state_kib)
  t0=$(now_us)
  for ((i = 1; i <= DEB_N; i++)); do
    out=$(ctl clone deb "d$i" 2>&1) || die "clone d$i: $out"
  done
  deb_clone_ms=$((($(now_us) - t0) / 1000))
  deb_all_kib=$(state_kib)
  destroy_all
  check_empty
fi

# ---- the table ----------------------------------------------------------------------

kv() { # LABEL VALUE [NOTE]
  printf '%-58s %12s  %s\n' "$1" "$2" "${3:-}" | sed 's/ *$//'
}
ratio() { # A B
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}
per() { # TOTAL COUNT
  awk -v t="$1" -v n="$2" 'BEGIN { printf "%.1f", t / n }'
}

printf '\nclones, %s, kernel %s; celld %s\n' "$(date -u +%F)" "$(uname -r)" "$build/celld"
printf '\n%d clones of a stopped busybox instance (its image imported from %s),\n' "$N" "$build/rootfs"
printf 'each started (init: %s)\n\n' "$INIT"
kv "" "ms"
kv "cellctl clone (median (least) of $N)" "$(median_least_ms <"$work/clone.us")"
kv "cellctl start (median (least) of $N)" "$(median_least_ms <"$work/start.us")"
for k in 1 10 100 1000; do
  [ "$k" -le "$N" ] || continue
  kv "clone + start, no. $k (median (least) of 21 around)" "$(around "$work/create-start.us" "$k" | median_least_ms)"
done
case $N in 1 | 10 | 100 | 1000) ;; *)
  kv "clone + start, no. $N (median (least) of the last 21)" "$(around "$work/create-start.us" "$N" | median_least_ms)" ;;
esac
kv "clone + start (median (least) of $N)" "$(median_least_ms <"$work/create-start.us")"
kv "destroy -f x $N, total" "$destroy_ms"
echo
kv "" "KiB"
kv "state dir, the source alone (du -sxk)" "$one_kib"
kv "state dir with $N running clones" "$all_kib" "x$(ratio "$all_kib" "$one_kib") of one"
kv "per clone" "$(per $((all_kib - one_kib)) "$N")"
kv "celld RSS with the source alone" "$rss0"
kv "celld RSS per running clone" "$(per $((rss1 - rss0)) "$N")" "($rss1 with $N)"
echo
kv "" "lines"
kv "celld's mountinfo, the source alone" "$mnt0"
kv "celld's mountinfo with $N running clones" "$mnt1"
kv "clone no. $N's mountinfo" "$inst_mnt"
echo
kv "" "ms"
kv "unshare -Um true in celld's ns, source alone (least of 50)" "$ns0"
kv "the same with $N running clones" "$ns1"
echo
if [ -n "$deb_note" ]; then
  kv "Debian clones" "-" "$deb_note"
else
  printf '%d clones of a stopped Debian instance (%s), not started\n\n' "$DEB_N" "$debian"
  kv "" "KiB"
  kv "state dir, the source alone (du -sxk)" "$deb_one_kib"
  kv "state dir with $DEB_N clones" "$deb_all_kib" \
    "x$(ratio "$deb_all_kib" "$deb_one_kib") of one (goal: under 2)"
  kv "per clone" "$(per $((deb_all_kib - deb_one_kib)) "$DEB_N")"
  kv "cellctl clone x $DEB_N, total ms" "$deb_clone_ms"
fi
echo
