#!/bin/bash
# make bench, celld against LXC: an instance's create + start through a
# private celld (cellctl create + start of a busybox image, busybox init,
# a veth on a bridge) side by side with lxc-copy + lxc-start of a busybox
# container with a veth on a bridge, interleaved one after the other; then
# what BENCH_LXC_IDLE idle instances of each cost the host (the deltas of
# Slab, KernelStack, PageTables and AnonPages in /proc/meminfo), the slab
# caches that grew most, and the mounts and cgroups of one instance.
# Everything runs in a network namespace the bench makes (its bridges and
# veths stay there); LXC's containers live under a private lxcpath.  All
# is removed afterwards; what is left fails the run.  Skipped when LXC is
# not installed.
#
#   tests/bench/bench-lxc.sh BUILD_DIR
#   BENCH_LXC_N=50       instances of each for the timing rows
#   BENCH_LXC_IDLE=100   idle instances of each for the memory rows
#   BENCH_LXC_COPY="-s -B overlayfs"  lxc-copy's flags: the default, a
#                        snapshot sharing the source's files as an instance
#                        shares its image's ("" for a full copy, much slower)
set -euo pipefail

build=$(realpath "${1:-build}")
N=${BENCH_LXC_N:-50}
IDLE=${BENCH_LXC_IDLE:-100}
LXC_COPY_FLAGS=${BENCH_LXC_COPY--s -B overlayfs}

die() {
  echo "bench-lxc: $*" >&2
  exit 2
}
if ! command -v lxc-copy >/dev/null || ! command -v lxc-start >/dev/null; then
  echo "bench-lxc: LXC is not installed (lxc-copy, lxc-start): skipped"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "needs root"
for v in "$N" "$IDLE"; do
  if ! [[ "$v" =~ ^[0-9]+$ ]] || [ "$v" -eq 0 ]; then
    die "not a count: \`$v'"
  fi
done
for f in "$build/celld" "$build/cellctl" "$build/cell" "$build/rootfs/bin/busybox"; do
  [ -x "$f" ] || die "$f is missing (make all rootfs)"
done

# Far from the tests' pools and from the other benches' (1e9, 2e9, 3e9).
POOL_START=3600000000
RANGE=65536
max=$((N > IDLE ? N : IDLE))
POOL_COUNT=$((RANGE * (max + 16)))
POOL_END=$((POOL_START + POOL_COUNT))
[ "$POOL_END" -lt 4294967295 ] || die "$max instances do not fit in the uid space"

work=$(mktemp -d "${TMPDIR:-/tmp}/cell-bench-lxc.XXXXXX")
chmod 0711 "$work"
CELLCTL=$work/bin/cellctl
CELL=$work/bin/cell
STATE=$work/state
SOCK=$work/celld.sock
CGPARENT=/cell-bench-lxc-$$
LOG=$work/celld.log
NETNS=cell-bench-lxc-$$
BR_CELL=cbc$$
BR_LXC=cbl$$
LXCPATH=$work/lxc
daemon_pid=
netns_made=
# celld in the bench's network namespace: nsenter execs it, so the pid
# start_daemon keeps is celld's.
CELLD=$work/bin/celld-in-netns

. "$(dirname "$0")/celld-harness.sh"

in_netns() {
  nsenter --net="/run/netns/$NETNS" "$@"
}

# LXC's monitors listen on abstract sockets, which belong to a network
# namespace: every LXC command but lxc-copy runs in the bench's.  lxc-start
# also checks its bridge in /sys/class/net, which shows the namespace
# sysfs was mounted in: a private mount namespace gets the bench's view
# there (the cgroup mounts under /sys stay as they are).
lxc_start_in_netns() {
  in_netns unshare -m --propagation private sh -c 'd=$1; shift
    mount -t sysfs sysfs "$d" && mount --bind "$d/class/net" /sys/class/net &&
    mount --bind "$d/devices/virtual/net" /sys/devices/virtual/net &&
    umount -l "$d" && exec "$@"' sh "$work/sys" lxc-start "$@"
}

lxc_names() {
  [ -d "$LXCPATH" ] || return 0
  in_netns lxc-ls -P "$LXCPATH" -1 2>/dev/null || true
}

lxc_destroy_all() {
  local n
  for n in $(lxc_names); do
    [ "$n" = src ] && continue
    in_netns lxc-stop -P "$LXCPATH" -n "$n" -k >/dev/null 2>&1 || true
    in_netns lxc-destroy -P "$LXCPATH" -n "$n" >/dev/null 2>&1 ||
      echo "bench-lxc: lxc-destroy $n failed" >&2
  done
}

cell_destroy_all() {
  local n
  for n in $(ctl list --json | jq -r '.[].name'); do
    ctl destroy "$n" -f >/dev/null || echo "bench-lxc: destroy $n failed" >&2
  done
}

# LXC's cgroups (lxc.payload.NAME, lxc.monitor.NAME) for our names.
lxc_cgroups() {
  find /sys/fs/cgroup -maxdepth 3 -type d \( -name "lxc.payload.cbl$$-*" -o \
    -name "lxc.monitor.cbl$$-*" \) 2>/dev/null || true
}

cleanup() {
  local status=$? left=0 m
  set +e
  [ -z "$netns_made" ] || lxc_destroy_all
  [ -z "$netns_made" ] || [ -z "$(lxc_names | grep -v '^src$')" ] || { echo "bench-lxc: left: LXC containers" >&2; left=1; }
  # A monitor's cgroups go a moment after it.
  for _ in $(seq 20); do
    [ -z "$(lxc_cgroups)" ] && break
    sleep 0.1
  done
  if [ -n "$(lxc_cgroups)" ]; then
    echo "bench-lxc: left: LXC cgroups: $(lxc_cgroups | tr '\n' ' ')" >&2
    lxc_cgroups | sort -r | xargs -r rmdir 2>/dev/null
    left=1
  fi
  celld_teardown bench-lxc || left=1
  if [ -n "$netns_made" ]; then
    m=$(in_netns ip -o link 2>/dev/null | grep -vc ': lo:')
    [ "$m" = 0 ] || [ "$m" = 1 ] || { echo "bench-lxc: left: $m links in the namespace" >&2; left=1; }
    ip netns del "$NETNS"
  fi
  if [ "$left" = 1 ] && [ -s "$LOG" ]; then
    echo "bench-lxc: celld's log, last lines:" >&2
    tail -20 "$LOG" >&2
  fi
  rm -rf "$work"
  if [ "$left" = 0 ] && [ "$status" = 0 ]; then
    echo "left behind: nothing (LXC containers and cgroups, mounts, pool processes, runtime state, cgroups, links checked)"
  fi
  [ "$status" != 0 ] && exit "$status"
  exit "$left"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NETNS"
netns_made=1
# LXC's bridge; celld makes its own from its configuration.
in_netns ip link add "$BR_LXC" type bridge
in_netns ip link set "$BR_LXC" up

# No dnsmasq and no lxcfs: LXC's container has neither.
cat >"$work/celld.conf" <<EOF
socket_mode = 0600
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = $RANGE
stop_timeout = 5
cgroup_parent = $CGPARENT
lxcfs = off
network.bench.bridge = $BR_CELL
network.bench.subnet4 = 10.98.0.0/16
network.bench.subnet6 = none
network.bench.dnsmasq = no
EOF
mkdir "$work/bin"
cp "$build/celld" "$build/cellctl" "$build/cell" "$work/bin/"
cat >"$CELLD" <<EOF
#!/bin/sh
exec nsenter --net=/run/netns/$NETNS "$work/bin/celld" "\$@"
EOF
chmod 0755 "$CELLD"

start_daemon
ctl image import "$build/rootfs" --name busybox --progress=none >/dev/null

# LXC's source container: the same rootfs, privileged (the kinder case
# for LXC: no id mapping), LXC's common configuration, busybox init.
mkdir -p "$LXCPATH/src" "$work/sys"
cp -a "$build/rootfs" "$LXCPATH/src/rootfs"
cat >"$LXCPATH/src/config" <<EOF
lxc.include = /usr/share/lxc/config/common.conf
lxc.arch = linux64
lxc.uts.name = src
lxc.rootfs.path = dir:$LXCPATH/src/rootfs
lxc.init.cmd = /sbin/init
lxc.net.0.type = veth
lxc.net.0.link = $BR_LXC
lxc.net.0.flags = up
lxc.apparmor.profile = unconfined
EOF

now_us() {
  echo "${EPOCHREALTIME/./}"
}

# Medians of a list of microsecond figures, in ms.
median_ms() {
  sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f", v[int(NR / 2) + 1] / 1000; else print "-" }'
}

# NAME [TIMES-FILE]: made and started; the time of each step (us) added
# to TIMES-FILE as "make start".
cell_make() {
  local t0 t1 t2
  t0=$(now_us)
  ctl create "$1" --image busybox --net bench >/dev/null || return 1
  t1=$(now_us)
  ctl start "$1" >/dev/null || return 1
  t2=$(now_us)
  [ -z "${2:-}" ] || echo "$((t1 - t0)) $((t2 - t1))" >>"$2"
}

lxc_make() {
  local t0 t1 t2
  t0=$(now_us)
  # shellcheck disable=SC2086 # flags
  lxc-copy -P "$LXCPATH" -n src -N "$1" $LXC_COPY_FLAGS >/dev/null || return 1
  t1=$(now_us)
  lxc_start_in_netns -P "$LXCPATH" -n "$1" -d || return 1
  t2=$(now_us)
  [ -z "${2:-}" ] || echo "$((t1 - t0)) $((t2 - t1))" >>"$2"
}

# ---- timing, interleaved ---------------------------------------------------

: >"$work/t.cell"
: >"$work/t.lxc"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((i = 1; i <= N; i++)); do
  cell_make "t$i" "$work/t.cell" || die "cell: create + start of t$i failed"
  lxc_make "cbl$$-t$i" "$work/t.lxc" || die "lxc: copy + start of cbl$$-t$i failed"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A ms
for k in cell lxc; do
  ms[$k.make]=$(awk '{print $1}' "$work/t.$k" | median_ms)
  ms[$k.start]=$(awk '{print $2}' "$work/t.$k" | median_ms)
  ms[$k]=$(awk '{print $1 + $2}' "$work/t.$k" | median_ms)
done
rootfs_mode=$(ctl show t1 --json | jq -r '.rootfs_mode // "?"')
cell_destroy_all
lxc_destroy_all

# ---- memory -------------------------------------------------------------------

meminfo_kib() { # FIELDS: their sum in /proc/meminfo
  awk -v f=" $* " 'index(f, " " substr($1, 1, length($1) - 1) " ") { s += $2 } END { print s }' /proc/meminfo
}
HOST_FIELDS="Slab KernelStack PageTables AnonPages"
UNRECL_FIELDS="SUnreclaim KernelStack PageTables AnonPages"
# What the memory controller charged to the instances' cgroups (their
# processes, and the kernel objects the kernel accounts to them), KiB:
# celld's instances below its cgroup parent; LXC's payloads and their
# monitors (LXC's supervisor, one process per container).
memcg_kib() { # KIND
  local f
  if [ "$1" = cell ]; then
    f=/sys/fs/cgroup/memory$CGPARENT/memory.usage_in_bytes
    [ -r "$f" ] || f=/sys/fs/cgroup$CGPARENT/memory.current
    [ -r "$f" ] && awk '{ printf "%d", $1 / 1024 }' "$f" || echo 0
    return
  fi
  # (none before the first start)
  { cat /sys/fs/cgroup/memory/lxc.payload.cbl$$-*/memory.usage_in_bytes \
    /sys/fs/cgroup/memory/lxc.monitor.cbl$$-*/memory.usage_in_bytes \
    /sys/fs/cgroup/lxc.payload.cbl$$-*/memory.current \
    /sys/fs/cgroup/lxc.monitor.cbl$$-*/memory.current 2>/dev/null || true; } |
    awk '{ s += $1 } END { printf "%d", s / 1024 }'
}
per_instance() { # AFTER BEFORE
  awk -v a="$1" -v b="$2" -v n="$IDLE" 'BEGIN { printf "%.0f", (a - b) / n }'
}
slabs() { # cache active_objs objsize
  awk 'NR > 2 { print $1, $2, $4 }' /proc/slabinfo
}
settle() {
  sync
  echo 2 >/proc/sys/vm/drop_caches
  sleep 2
}

declare -A mem
measure_idle() { # KIND MAKE-FUNCTION PREFIX
  local kind=$1 make=$2 prefix=$3 before after before_u after_u cg0 i
  settle
  slabs >"$work/slab.before"
  before=$(meminfo_kib $HOST_FIELDS)
  before_u=$(meminfo_kib $UNRECL_FIELDS)
  cg0=$(memcg_kib "$kind")
  local rss0=0
  [ "$kind" = cell ] && rss0=$(awk '$1 == "Rss:" {print $2}' "/proc/$daemon_pid/smaps_rollup")
  for ((i = 1; i <= IDLE; i++)); do
    "$make" "$prefix$i" || die "$kind: $prefix$i did not start"
  done
  settle
  after=$(meminfo_kib $HOST_FIELDS)
  after_u=$(meminfo_kib $UNRECL_FIELDS)
  slabs >"$work/slab.after"
  mem[$kind]=$(per_instance "$after" "$before")
  mem[$kind.unrecl]=$(per_instance "$after_u" "$before_u")
  mem[$kind.memcg]=$(per_instance "$(memcg_kib "$kind")" "$cg0")
  if [ "$kind" = cell ]; then
    mem[celld]=$(awk -v a="$(awk '$1 == "Rss:" {print $2}' "/proc/$daemon_pid/smaps_rollup")" \
      -v b="$rss0" -v n="$IDLE" 'BEGIN { printf "%.1f", (a - b) / n }')
  fi
  # The slab caches that grew most, KiB per instance.
  mem[$kind.slabs]=$(join <(sort "$work/slab.before") <(sort "$work/slab.after") |
    awk -v n="$IDLE" '{ d = ($4 - $2) * $5 / 1024 / n; if (d > 0) printf "%s %.1f\n", $1, d }' |
    sort -k2 -rn | head -8 | awk '{ printf "%s %s, ", $1, $2 }')
  # One instance's mounts and cgroup directories.
  local pid
  if [ "$kind" = cell ]; then
    pid=$(ctl show "${prefix}1" --json | jq -r '.pid')
  else
    pid=$(in_netns lxc-info -P "$LXCPATH" -n "${prefix}1" -p -H)
  fi
  mem[$kind.mounts]=$(wc -l <"/proc/$pid/mountinfo")
  mem[$kind.cgroups]=$(wc -l <"/proc/$pid/cgroup")
}

measure_idle cell cell_make i
cell_destroy_all
measure_idle lxc lxc_make "cbl$$-i"
lxc_destroy_all

# ---- the table -------------------------------------------------------------------

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}
printf '\ncelld against LXC %s, %s, kernel %s; load average before %s, after %s\n\n' \
  "$(lxc-start --version)" "$(date -u +%F)" "$(uname -r)" "$load_before" "$load_after"
printf '%-48s %10s %10s %10s\n' "" celld LXC celld/LXC
printf '%-48s %10s %10s %10s\n' "create + start, median ms (x $N, interleaved)" \
  "${ms[cell]}" "${ms[lxc]}" "$(ratio "${ms[cell]}" "${ms[lxc]}")"
printf '%-48s %10s %10s %10s\n' "  create (lxc-copy), median ms" \
  "${ms[cell.make]}" "${ms[lxc.make]}" "$(ratio "${ms[cell.make]}" "${ms[lxc.make]}")"
printf '%-48s %10s %10s %10s\n' "  start (lxc-start -d), median ms" \
  "${ms[cell.start]}" "${ms[lxc.start]}" "$(ratio "${ms[cell.start]}" "${ms[lxc.start]}")"
printf '%-48s %10s %10s %10s\n' "host KiB per idle instance (x $IDLE)" \
  "${mem[cell]}" "${mem[lxc]}" "$(ratio "${mem[cell]}" "${mem[lxc]}")"
printf '%-48s %10s %10s %10s\n' "  the same, unreclaimable slab only" \
  "${mem[cell.unrecl]}" "${mem[lxc.unrecl]}" "$(ratio "${mem[cell.unrecl]}" "${mem[lxc.unrecl]}")"
printf '%-48s %10s %10s %10s\n' "memcg KiB per idle instance (+ monitor for LXC)" \
  "${mem[cell.memcg]}" "${mem[lxc.memcg]}" "$(ratio "${mem[cell.memcg]}" "${mem[lxc.memcg]}")"
printf '%-48s %10s %10s\n' "mounts in an instance" "${mem[cell.mounts]}" "${mem[lxc.mounts]}"
printf '%-48s %10s %10s\n' "cgroup hierarchies an instance is in" "${mem[cell.cgroups]}" "${mem[lxc.cgroups]}"
printf '%-48s %10s\n' "celld's RSS per idle instance, KiB" "${mem[celld]}"
printf '(host KiB: Slab + KernelStack + PageTables + AnonPages of /proc/meminfo,\n'
printf ' all of the host: other work on it shows here too; memcg: what the\n'
printf ' memory controller charged to the instances'"'"' cgroups, robust to that;\n'
printf ' LXC privileged, lxc-copy %s, celld an image, rootfs %s)\n' \
  "${LXC_COPY_FLAGS:-a full copy of the rootfs}" "$rootfs_mode"
printf '\nslab caches that grew most, KiB per instance\n'
printf '  celld: %s\n  LXC:   %s\n\n' "${mem[cell.slabs]%, }" "${mem[lxc.slabs]%, }"
