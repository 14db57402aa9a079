#!/bin/bash
# make bench, celld's part: what a long-lived instance costs the daemon that
# tracks it.  A private celld (its own state dir, socket, id pool and cgroup
# parent) creates, starts and destroys instances of a busybox template whose
# init is `/bin/sleep` (idle, and nothing of busybox init's respawning in
# the figures).  Prints the time of create+start and destroy, and celld's
# RSS and PSS with 1, 100, 1000 idle instances; conmon's PSS under podman
# for comparison when podman is installed.  Figures, not tests, but what is
# left behind (mounts, processes, cgroups) is reported and fails it, and so
# does a count of instances that could not be reached.
#
#   tests/bench/bench-celld.sh BUILD_DIR
#   BENCH_CELLD_N=100              instances for the timing rows
#   BENCH_CELLD_IDLE="1 100 1000"  idle instance counts for the memory rows
#   BENCH_CELLD_PODMAN=10          podman containers (0: do not run podman)
#   BENCH_CELLD_IDLE_SECONDS=3     how long celld's idle CPU is sampled
set -euo pipefail

build=$(realpath "${1:-build}")
N=${BENCH_CELLD_N:-100}
IDLE=${BENCH_CELLD_IDLE:-"1 100 1000"}
PODMAN_N=${BENCH_CELLD_PODMAN:-10}
IDLE_SECONDS=${BENCH_CELLD_IDLE_SECONDS:-3}
INIT="/bin/sleep 1000000"

die() {
  echo "bench-celld: $*" >&2
  exit 2
}
[ "$(id -u)" = 0 ] || die "needs root"
for v in "$N" $IDLE "$PODMAN_N" "$IDLE_SECONDS"; do
  [[ "$v" =~ ^[0-9]+$ ]] || die "not a count: \`$v'"
done
[ "$N" -gt 0 ] || die "BENCH_CELLD_N must be at least 1"
for f in "$build/celld" "$build/cellctl" "$build/cell" "$build/rootfs/bin/busybox"; do
  [ -x "$f" ] || die "$f is missing (make all rootfs)"
done

# Every instance has range_size ids; the pool holds the most instances
# alive at once, with room to spare, far above the tests' pools.
max=$N
for c in $IDLE; do
  [ "$c" -gt "$max" ] && max=$c
done
POOL_START=1000000000
RANGE=65536
POOL_COUNT=$((RANGE * (max + 16)))
POOL_END=$((POOL_START + POOL_COUNT))
[ "$POOL_END" -lt 4294967295 ] || die "$max instances do not fit in the uid space"

work=$(mktemp -d "${TMPDIR:-/tmp}/cell-bench-celld.XXXXXX")
# The instances' roots (unprivileged uids) must traverse to their rootfs.
chmod 0711 "$work"
# Our own copies of the binaries (made below): a rebuild in the tree during
# the run changes neither the figures nor the cleanup.
CELLD=$work/bin/celld
CELLCTL=$work/bin/cellctl
CELL=$work/bin/cell
STATE=$work/state
SOCK=$work/celld.sock
TEMPLATE=$work/template
CGPARENT=/cell-bench-celld-$$
LOG=$work/celld.log
daemon_pid=

PODMAN_DIR=$work/podman
PODMAN_IMAGE=localhost/cell-bench-busybox:latest
podman_used=
podman_left=0
podman_had_var_lib=
podman_had_cgroups=

veths() {
  ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | sort
}
veths_before=$(veths)

. "$(dirname "$0")/celld-harness.sh"

podman_cgroup_parents() {
  find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d -name libpod_parent 2>/dev/null
}

podman_cmd() {
  command podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/runroot" \
    --tmpdir "$PODMAN_DIR/tmp" --network-config-dir "$PODMAN_DIR/cni" \
    --storage-driver "$PODMAN_DRIVER" --cgroup-manager cgroupfs \
    --events-backend file --runtime "$CELL" "$@"
}

# The image from our rootfs, no registry; containers run by cell, idle like
# the instances; the runtime's rlimits no higher than ours (raising them
# takes CAP_SYS_RESOURCE, which the host may lack).
podman_start() {
  tar -C "$build/rootfs" -c . | podman_cmd import -q - "$PODMAN_IMAGE" >/dev/null || return 1
  local i
  for ((i = 1; i <= PODMAN_N; i++)); do
    # shellcheck disable=SC2086 # INIT is a command line
    podman_cmd run -d --name "cell-bench-$i" --network none \
      --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
      "$PODMAN_IMAGE" $INIT >/dev/null || return 1
  done
}

# conmon, podman's cleanup and the runtime under podman: our paths are on
# their command lines.
podman_pids() {
  # (grep's command line has our path too: it has exited, maybe not yet
  # been reaped, when the loop looks at it)
  local pid st
  grep -lzF -- "$PODMAN_DIR/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | sort -un |
    while read -r pid; do
      st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
      [ -z "$st" ] || [ "$st" = Z ] || echo "$pid"
    done
}

podman_cleanup() {
  [ -n "$podman_used" ] || return 0
  podman_cmd rm -af -t 0 >/dev/null 2>&1 || true
  podman_cmd rmi -af >/dev/null 2>&1 || true
  # conmon leaves after the container: its cgroup is busy until then.
  local i m
  for ((i = 0; i < 50; i++)); do
    [ -z "$(podman_pids)" ] && break
    sleep 0.1
  done
  unmount_under "$PODMAN_DIR"
  [ -n "$podman_had_var_lib" ] || rm -rf /var/lib/containers
  local left=0
  local pid
  for pid in $(podman_pids); do
    echo "bench-celld: left: podman's process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" >&2
    left=1
  done
  if [ -z "$podman_had_cgroups" ]; then
    for m in $(podman_cgroup_parents); do
      [ ! -d "$m/conmon" ] || rmdir "$m/conmon" || left=1
      rmdir "$m" || left=1
    done
  fi
  podman_used=
  return "$left"
}

# Destroy through the daemon; whatever it could not (or a daemon that died)
# left is a leak: reported, then removed by hand.
cleanup() {
  local status=$? left=0 m
  set +e
  podman_cleanup || left=1
  [ "$podman_left" = 0 ] || left=1
  celld_teardown bench-celld || left=1
  # Our instances have no network: a new veth is a leak of celld's only
  # if nobody else on the host made one meanwhile, so a warning.
  m=$(comm -13 <(echo "$veths_before") <(veths))
  if [ -n "$m" ]; then
    echo "bench-celld: warning: veths new since the start: $(tr '\n' ' ' <<<"$m")" >&2
  fi
  if [ "$left" = 1 ] && [ -s "$LOG" ]; then
    echo "bench-celld: celld's log, last lines:" >&2
    tail -20 "$LOG" >&2
  fi
  rm -rf "$work"
  if [ "$left" = 0 ]; then
    echo "left behind: nothing (mounts, pool processes, runtime state, cgroups checked)"
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
cp -a "$build/rootfs" "$TEMPLATE"

now_us() {
  echo "${EPOCHREALTIME/./}"
}

ms() { # MICROSECONDS [DIVISOR]
  awk -v t="$1" -v d="${2:-1}" 'BEGIN { printf "%.1f", t / d / 1000 }'
}

kib() { # FIELD: from celld's smaps_rollup
  awk -v f="$1:" '$1 == f {print $2}' "/proc/$daemon_pid/smaps_rollup"
}

cpu_ticks() {
  awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$daemon_pid/stat"
}

mem_available() {
  awk '$1 == "MemAvailable:" {print $2}' /proc/meminfo
}

# Create and start NAME, adding the two times to ct and st.  A failure ends
# the series; its message goes to the table (failed).
failed=''
create_start() { # NAME
  local t0 t1 t2 out
  t0=$(now_us)
  if ! out=$(ctl create "$1" --template "$TEMPLATE" --init "$INIT" 2>&1); then
    failed="create $1: $out"
    return 1
  fi
  t1=$(now_us)
  if ! out=$(ctl start "$1" 2>&1); then
    failed="start $1: $out"
    return 1
  fi
  t2=$(now_us)
  ct=$((ct + t1 - t0))
  st=$((st + t2 - t1))
}

running_count() {
  ctl list --json | jq '[.[] | select(.state == "running")] | length'
}

# Destroy every instance (a half-made one too): dtime microseconds for
# destroyed of them.
destroy_all() {
  local n t0
  destroyed=0
  t0=$(now_us)
  for n in $(ctl list --json | jq -r '.[].name'); do
    ctl destroy "$n" -f >/dev/null
    destroyed=$((destroyed + 1))
  done
  dtime=$(($(now_us) - t0))
  [ "$(ctl list --json | jq length)" = 0 ] || die "instances left after destroy"
}

per() { # TOTAL COUNT
  awk -v d="$1" -v c="$2" 'BEGIN { printf "%.1f", d / c }'
}

# ---- timing: N instances created, started, destroyed ----------------------

start_daemon
fresh_rss=$(kib Rss)
fresh_pss=$(kib Pss)

t0=$(now_us)
for ((i = 0; i < N; i++)); do
  ctl list >/dev/null
done
rtt=$(($(now_us) - t0))

ct=0 st=0 made=0
for ((i = 1; i <= N; i++)); do
  create_start "t$i" || break
  made=$i
done
timing_failed=$failed
[ "$made" -gt 0 ] || die "no instance could be started: $failed"
[ "$(running_count)" = "$made" ] || die "not all of the $made instances are running"
rootfs_mode=$(ctl show t1 --json | jq -r '.rootfs_mode // "?"')
# One Prometheus scrape of them all (cellctl metrics: every instance's
# cgroups and NICs read; the disk use is kept up to 10 s, and the list
# above has just read it).
SCRAPES=5
t0=$(now_us)
for ((i = 0; i < SCRAPES; i++)); do
  ctl metrics >/dev/null
done
scrape=$(($(now_us) - t0))
tct=$ct tst=$st
destroy_all
dt=$dtime tdestroyed=$destroyed
after_rss=$(kib Rss)
after_pss=$(kib Pss)
stop_daemon

# ---- memory: a fresh daemon, growing to each idle count ---------------------

start_daemon
base_rss=$(kib Rss)
base_pss=$(kib Pss)
base_avail=$(mem_available)
hz=$(getconf CLK_TCK)
declare -a mem_rows
have=0 ct=0 st=0 failed=''
# shellcheck disable=SC2086 # a list of counts
for c in $(printf '%s\n' $IDLE | sort -n); do
  [ "$c" -gt 0 ] || continue
  from=$have cs0=$((ct + st))
  while [ "$have" -lt "$c" ]; do
    create_start "i$((have + 1))" || break
    have=$((have + 1))
  done
  [ "$have" -gt 0 ] || break
  [ "$(running_count)" = "$have" ] || die "not all of the $have instances are running"
  sleep 1
  rss=$(kib Rss)
  pss=$(kib Pss)
  fds=$(find "/proc/$daemon_pid/fd" -mindepth 1 | wc -l)
  avail=$(mem_available)
  c0=$(cpu_ticks)
  sleep "$IDLE_SECONDS"
  c1=$(cpu_ticks)
  cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v s="$IDLE_SECONDS" \
    'BEGIN { if (s > 0) printf "%.1f", 100 * t / hz / s; else print "-" }')
  label=$have
  [ "$have" = "$c" ] || label="$have (!$c)"
  # create + start of this stretch only: does it slow down with the count?
  stretch=$(ms $((ct + st - cs0)) $((have - from)))
  host=-
  [ "$have" -lt 100 ] || host=$(per $((base_avail - avail)) "$have")
  mem_rows+=("$(printf '%-11s %7s %7s %7s %7s %9s %9s %6s %6s %7s %10s' "$label" \
    "$rss" "$pss" $((rss - base_rss)) $((pss - base_pss)) \
    "$(per $((rss - base_rss)) "$have")" "$(per $((pss - base_pss)) "$have")" \
    "$fds" "$cpu" "$stretch" "$host")")
  [ -z "$failed" ] || break
done
mem_failed=$failed
grow_t=$((ct + st))
destroy_all
big_dt=$dtime big_destroyed=$destroyed

# ---- podman's conmon, for comparison ----------------------------------------

conmon_note="not measured here (podman is not installed)"
[ "$PODMAN_N" -gt 0 ] || conmon_note="not measured here (BENCH_CELLD_PODMAN=0)"
conmon_pss='' conmon_rss=''
if [ "$PODMAN_N" -gt 0 ] && command -v podman >/dev/null && command -v conmon >/dev/null; then
  conmon_note="not measured here (podman failed, see above)"
  mkdir -p "$PODMAN_DIR"
  [ -e /var/lib/containers ] && podman_had_var_lib=1
  [ -n "$(podman_cgroup_parents)" ] && podman_had_cgroups=1
  podman_used=1
  PODMAN_DRIVER=overlay
  if ! podman_cmd info >"$work/podman-info.log" 2>&1; then
    unmount_under "$PODMAN_DIR"
    rm -rf "${PODMAN_DIR:?}"/*
    PODMAN_DRIVER=vfs
  fi
  if podman_start; then
    sleep 1
    sum_pss=0 sum_rss=0 k=0
    for p in /proc/[0-9]*; do
      [ "$(cat "$p/comm" 2>/dev/null)" = conmon ] || continue
      grep -qzF -- "$PODMAN_DIR/" "$p/cmdline" 2>/dev/null || continue
      sum_pss=$((sum_pss + $(awk '$1 == "Pss:" {print $2}' "$p/smaps_rollup")))
      sum_rss=$((sum_rss + $(awk '$1 == "Rss:" {print $2}' "$p/smaps_rollup")))
      k=$((k + 1))
    done
    if [ "$k" -gt 0 ]; then
      conmon_pss=$((sum_pss / k))
      conmon_rss=$((sum_rss / k))
      conmon_note="measured here: mean of $k conmon processes ($(conmon --version | head -1))"
    fi
  fi
  podman_cleanup || podman_left=1
fi

# ---- the table ---------------------------------------------------------------

row() { # LABEL TOTAL-US COUNT
  printf '%-44s %10s %16s\n' "$1" "$(ms "$2")" "$(ms "$2" "$3")"
}

printf '\ncelld, %s, kernel %s; init "%s", template %s (rootfs %s)\n\n' \
  "$(date -u +%F)" "$(uname -r)" "$INIT" "$build/rootfs" "$rootfs_mode"
printf '%-44s %10s %16s\n' "one cellctl call after another" "total ms" "per instance ms"
row "cellctl list x $N (round trip, empty daemon)" "$rtt" "$N"
row "create x $made" "$tct" "$made"
row "start x $made" "$tst" "$made"
row "create + start x $made" $((tct + tst)) "$made"
row "destroy -f x $tdestroyed (running)" "$dt" "$tdestroyed"
printf '%-44s %10s %16s\n' "cellctl metrics, $made running (mean of $SCRAPES)" \
  "$(ms "$scrape" "$SCRAPES")" "$(ms "$scrape" $((SCRAPES * made)))"
if [ "$have" -gt 0 ]; then
  row "create + start, growing 0 -> $have" "$grow_t" "$have"
  row "destroy -f x $big_destroyed (running)" "$big_dt" "$big_destroyed"
fi

printf '\ncelld memory (smaps_rollup, KiB) with idle running instances;\n'
printf 'd = delta against a fresh daemon with none (RSS %s, PSS %s)\n\n' "$base_rss" "$base_pss"
printf '%-11s %7s %7s %7s %7s %9s %9s %6s %6s %7s %10s\n' instances RSS PSS dRSS dPSS \
  dRSS/inst dPSS/inst fds "CPU %" "ms/inst" "host KiB/i"
for r in "${mem_rows[@]}"; do
  echo "$r"
done
printf '(fds: celld'"'"'s open files; CPU: celld idle over %ss, %% of one cpu;\n' "$IDLE_SECONDS"
printf ' ms/inst: create + start per instance from the row above to this one;\n'
printf ' host KiB/i: MemAvailable drop per instance, all an instance costs the\n'
printf ' host (its init, mounts, cgroups, celld); noise, on a busy host too)\n'
printf 'after %d instances created and destroyed: RSS %s (fresh %s), PSS %s (fresh %s)\n' \
  "$made" "$after_rss" "$fresh_rss" "$after_pss" "$fresh_pss"

printf '\nper-instance supervisor memory, for comparison\n\n'
last_pss=-
[ "$have" -gt 0 ] && last_pss=$(per $((pss - base_pss)) "$have")
printf '%-32s %10s  %s\n' "" "PSS KiB" ""
printf '%-32s %10s  %s\n' "celld, per instance" "$last_pss" "measured here: dPSS / $have instances"
if [ -n "$conmon_pss" ]; then
  printf '%-32s %10s  %s\n' "conmon (podman), per container" "$conmon_pss" "$conmon_note (RSS $conmon_rss)"
else
  printf '%-32s %10s  %s\n' "conmon (podman), per container" "~360" "a reference figure, $conmon_note"
fi
printf '%-32s %10s  %s\n' "containerd-shim-runc-v2" "~2765" "a reference figure (~2.7 MiB), not measured here"
echo

# A count that could not be reached is a failure of the bench, after the
# figures that could be taken.
if [ -n "$timing_failed$mem_failed" ]; then
  [ -z "$timing_failed" ] || echo "bench-celld: FAILED at $((made + 1)) of $N: $timing_failed" >&2
  [ -z "$mem_failed" ] || echo "bench-celld: FAILED at $((have + 1)) idle instances: $mem_failed" >&2
  exit 1
fi
