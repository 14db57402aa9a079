#!/bin/bash
# make bench, the image store's part: what an image costs to import, to
# start instances on, and to keep on disk under many instances.  A private
# celld (its own state dir, socket, id pool and cgroup parent) imports a
# Debian guest (the test cache's when there is one, else one built with
# mkrootfs-debian, else the Debian rows are skipped) as a directory and as
# a tarball, median of BENCH_IMAGES_RUNS, next to `podman import` of the
# same tarball (vfs storage in a private root) when podman is installed;
# times create + start on the imported image next to --template of the
# busybox rootfs; and weighs BENCH_IMAGES_DISK instances of one image
# (started once and stopped) against the image's layers.  Figures, not
# tests, but what is left behind (mounts, processes, cgroups) fails it.
#
#   tests/bench/bench-images.sh BUILD_DIR
#   BENCH_IMAGES_DEBIAN=DIR      the Debian rootfs (default: the test cache's
#                                /var/cache/cell-test/debian-bookworm-*, else
#                                built here; "none": busybox only)
#   BENCH_IMAGES_RUNS=3          imports per row (median)
#   BENCH_IMAGES_CREATE=10       create + start per row (median)
#   BENCH_IMAGES_DISK=100        instances for the disk rows
#   BENCH_IMAGES_DISK_IMAGE=debian|busybox  their image (default debian
#                                when there is one)
#   BENCH_IMAGES_PODMAN=1        0: do not run podman
set -euo pipefail

build=$(realpath "${1:-build}")
here=$(dirname -- "$(realpath -- "$0")")
RUNS=${BENCH_IMAGES_RUNS:-3}
CREATE_N=${BENCH_IMAGES_CREATE:-10}
DISK_N=${BENCH_IMAGES_DISK:-100}
DISK_IMAGE=${BENCH_IMAGES_DISK_IMAGE:-}
PODMAN=${BENCH_IMAGES_PODMAN:-1}
INIT="/bin/sleep 1000000"
# The disk rows stop their instances: an init that SIGTERM stops (a bare
# sleep as pid 1 ignores it, and SIGKILL is no halt signal).
STOP_INIT="/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"

die() {
  echo "bench-images: $*" >&2
  exit 2
}
[ "$(id -u)" = 0 ] || die "needs root"
for v in "$RUNS" "$CREATE_N" "$DISK_N" "$PODMAN"; do
  [[ "$v" =~ ^[0-9]+$ ]] || die "not a count: \`$v'"
done
if [ "$RUNS" = 0 ] || [ "$CREATE_N" = 0 ]; then
  die "BENCH_IMAGES_RUNS and BENCH_IMAGES_CREATE must be at least 1"
fi
case $DISK_IMAGE in
  "" | debian | busybox) ;;
  *) die "BENCH_IMAGES_DISK_IMAGE \`$DISK_IMAGE': debian or busybox" ;;
esac
for f in "$build/celld" "$build/cellctl" "$build/cell" "$build/rootfs/bin/busybox"; do
  [ -x "$f" ] || die "$f is missing (make all rootfs)"
done

# Far from the other tests' pools and from bench-celld's (1000000000 on).
POOL_START=2000000000
RANGE=65536
POOL_COUNT=$((RANGE * (DISK_N + 2 * CREATE_N + 16)))
POOL_END=$((POOL_START + POOL_COUNT))
[ "$POOL_END" -lt 4294967295 ] || die "$DISK_N instances do not fit in the uid space"

work=$(mktemp -d "${TMPDIR:-/tmp}/cell-bench-images.XXXXXX")
chmod 0711 "$work"
CELLD=$work/bin/celld
CELLCTL=$work/bin/cellctl
CELL=$work/bin/cell
STATE=$work/state
SOCK=$work/celld.sock
TEMPLATE=$work/busybox
CGPARENT=/cell-bench-images-$$
LOG=$work/celld.log
daemon_pid=

PODMAN_DIR=$work/podman
podman_used=
podman_had_var_lib=

# ctl, pool_pids, mounts_under, unmount_under, cgroup_dirs, start_daemon,
# stop_daemon.
. "$(dirname "$0")/celld-harness.sh"

podman_cmd() {
  command podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/runroot" \
    --tmpdir "$PODMAN_DIR/tmp" --network-config-dir "$PODMAN_DIR/cni" \
    --storage-driver vfs --cgroup-manager cgroupfs \
    --events-backend file --runtime "$CELL" "$@"
}

podman_pids() {
  local pid st
  grep -lzF -- "$PODMAN_DIR/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | sort -un |
    while read -r pid; do
      st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
      [ -z "$st" ] || [ "$st" = Z ] || echo "$pid"
    done
}

podman_cleanup() {
  [ -n "$podman_used" ] || return 0
  podman_cmd rmi -af >/dev/null 2>&1 || true
  unmount_under "$PODMAN_DIR"
  [ -n "$podman_had_var_lib" ] || rm -rf /var/lib/containers
  local left=0 pid
  for pid in $(podman_pids); do
    echo "bench-images: left: podman's process $pid" >&2
    left=1
  done
  podman_used=
  return "$left"
}

cleanup() {
  local status=$? left=0
  set +e
  podman_cleanup || left=1
  celld_teardown bench-images || left=1
  if [ "$left" = 1 ] && [ -s "$LOG" ]; then
    echo "bench-images: celld's log, last lines:" >&2
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

# median, min, max in ms of microsecond figures on stdin
stats() {
  sort -n | awk '{ v[NR] = $1 }
    END { if (NR == 0) { print "- - -"; exit }
          m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%.1f %.1f %.1f\n", m / 1000, v[1] / 1000, v[NR] / 1000 }'
}

declare -a rows
row() { # LABEL "MEDIAN MIN MAX" [NOTE]
  local a
  read -ra a <<<"$2"
  rows+=("$(printf '%-50s %9s %9s %9s  %s' "$1" "${a[0]}" "${a[1]}" "${a[2]}" "${3:-}" | sed 's/ *$//')")
}
note() { # LABEL NOTE
  rows+=("$(printf '%-50s %9s %9s %9s  %s' "$1" - - - "$2")")
}
heading() {
  rows+=("" "$1")
}

# ---- the Debian guest ---------------------------------------------------------

debian=${BENCH_IMAGES_DEBIAN:-}
debian_note=
if [ "$debian" = none ]; then
  debian=''
  debian_note="BENCH_IMAGES_DEBIAN=none"
elif [ -z "$debian" ]; then
  for d in /var/cache/cell-test/debian-bookworm-*/; do
    [ -x "$d/sbin/init" ] || [ -L "$d/sbin/init" ] || continue
    debian=${d%/}
  done
  if [ -z "$debian" ]; then
    echo "bench-images: no Debian guest in /var/cache/cell-test: building one" >&2
    if "$here/../../rootfs-tools/mkrootfs-debian" "$work/debian" >"$work/mkrootfs.log" 2>&1; then
      debian=$work/debian
    else
      debian_note="no cached Debian guest and mkrootfs-debian failed: $(tail -1 "$work/mkrootfs.log")"
      echo "bench-images: skipping the Debian rows: $debian_note" >&2
    fi
  fi
else
  [ -d "$debian" ] || die "BENCH_IMAGES_DEBIAN=$debian: not a directory"
fi
[ -n "$DISK_IMAGE" ] || DISK_IMAGE=$([ -n "$debian" ] && echo debian || echo busybox)
[ "$DISK_IMAGE" = busybox ] || [ -n "$debian" ] || die "BENCH_IMAGES_DISK_IMAGE=debian without a Debian guest"

start_daemon

# ---- import: directory, tarball, podman ---------------------------------------

# Each import into an empty store: the image (and its layers) removed after.
time_import() { # SOURCE: one line of microseconds per run
  local i t0 t1 id
  for ((i = 0; i < RUNS; i++)); do
    t0=$(now_us)
    id=$(ctl image import "$1" --progress=none) || die "cellctl image import $1 failed"
    t1=$(now_us)
    ctl image rm "$id" >/dev/null || die "cellctl image rm $id failed"
    [ -z "$(ls -A "$STATE/images/layers")" ] || die "layers left after image rm $id"
    echo $((t1 - t0))
  done
}

heading "import (median of $RUNS, each into an empty store)"
if [ -n "$debian" ]; then
  deb_kib=$(du -sxk "$debian" | cut -f1)
  deb_files=$(find "$debian" -xdev | wc -l)
  tar -C "$debian" -c . >"$work/debian.tar"
  tar_mib=$(($(stat -c %s "$work/debian.tar") / 1048576))
  v=$(time_import "$debian" | stats)
  row "cellctl image import DIR (Debian)" "$v" \
    "$((deb_kib / 1024)) MiB, $deb_files files"
  v=$(time_import "$work/debian.tar" | stats)
  row "cellctl image import x.tar (Debian)" "$v" \
    "$tar_mib MiB tar"
  if [ "$PODMAN" = 0 ]; then
    note "podman import x.tar (vfs)" "not run (BENCH_IMAGES_PODMAN=0)"
  elif ! command -v podman >/dev/null; then
    note "podman import x.tar (vfs)" "not run (podman is not installed)"
  else
    mkdir -p "$PODMAN_DIR"
    [ -e /var/lib/containers ] && podman_had_var_lib=1
    podman_used=1
    podman_cmd info >"$work/podman-info.log" 2>&1 || true
    ptimes=()
    for ((i = 0; i < RUNS; i++)); do
      t0=$(now_us)
      podman_cmd import -q "$work/debian.tar" localhost/bench-debian:latest >/dev/null ||
        die "podman import failed"
      ptimes+=($(($(now_us) - t0)))
      podman_cmd rmi -f localhost/bench-debian:latest >/dev/null || die "podman rmi failed"
    done
    v=$(printf '%s\n' "${ptimes[@]}" | stats)
    row "podman import x.tar (vfs, private root)" "$v" \
      "$(podman --version)"
    podman_cleanup || die "podman left processes"
  fi
  note "lxc-create -t local" "not run (its template takes xz tarballs only)"
  rm -f "$work/debian.tar"
else
  note "cellctl image import (Debian)" "skipped: $debian_note"
fi
bb_times=$(time_import "$TEMPLATE" | stats)
row "cellctl image import DIR (busybox)" "$bb_times" \
  "$(($(du -sxk "$TEMPLATE" | cut -f1) / 1024)) MiB"

# ---- create + start -------------------------------------------------------------

# create + start CREATE_N instances with ARGS, one microseconds line each;
# all destroyed after.
time_create_start() { # PREFIX ARGS...
  local p=$1 i t0 out
  shift
  for ((i = 1; i <= CREATE_N; i++)); do
    t0=$(now_us)
    out=$(ctl create "$p$i" "$@" --init "$INIT" 2>&1) || die "create $p$i: $out"
    out=$(ctl start "$p$i" 2>&1) || die "start $p$i: $out"
    echo $(($(now_us) - t0))
  done
  for ((i = 1; i <= CREATE_N; i++)); do
    ctl destroy "$p$i" -f >/dev/null || die "destroy $p$i failed"
  done
}

heading "create + start, init \"$INIT\" (median of $CREATE_N)"
ctl image import "$TEMPLATE" --name bench-busybox --progress=none >/dev/null
if [ -n "$debian" ]; then
  ctl image import "$debian" --name bench-debian --progress=none >/dev/null
  v=$(time_create_start d --image bench-debian | stats)
  row "create --image (Debian) + start" "$v"
fi
v=$(time_create_start b --image bench-busybox | stats)
row "create --image (busybox) + start" "$v"
v=$(time_create_start t --template "$TEMPLATE" | stats)
row "create --template busybox DIR + start" "$v" \
  "imports DIR each time"

# ---- disk: DISK_N instances of one image ----------------------------------------

# Only that image in the store: the other one goes.
if [ "$DISK_IMAGE" = debian ]; then
  ctl image rm bench-busybox >/dev/null
  img=bench-debian
else
  [ -z "$debian" ] || ctl image rm bench-debian >/dev/null
  img=bench-busybox
fi
# (--template left an anonymous ref to the busybox image: gone with it)
for id in $(ctl image list --json | jq -r --arg n "$img:latest" '.[] | select(.names | index($n) | not) | .id'); do
  ctl image rm "$id" >/dev/null
done
[ "$(ctl image list --json | jq length)" = 1 ] || die "more than one image in the store"
if [ "$DISK_N" -gt 0 ]; then
  t0=$(now_us)
  for ((i = 1; i <= DISK_N; i++)); do
    out=$(ctl create "k$i" --image "$img" --init "$STOP_INIT" 2>&1) || die "create k$i: $out"
    out=$(ctl start "k$i" 2>&1) || die "start k$i: $out"
    out=$(ctl stop "k$i" 2>&1) || die "stop k$i: $out"
  done
  disk_t=$(($(now_us) - t0))
  stopped=$(ctl list --json | jq '[.[] | select(.state == "stopped")] | length')
  [ "$stopped" = "$DISK_N" ] || die "$stopped of $DISK_N instances stopped"
  layers_kib=$(du -sxk "$STATE/images/layers" | cut -f1)
  inst_kib=$(du -sxk "$STATE/instances" | cut -f1)
  ratio=$(awk -v l="$layers_kib" -v i="$inst_kib" 'BEGIN { printf "%.3f", (l + i) / l }')
  per=$(awk -v i="$inst_kib" -v n="$DISK_N" 'BEGIN { printf "%.1f", i / n }')
  for ((i = 1; i <= DISK_N; i++)); do
    ctl destroy "k$i" -f >/dev/null || die "destroy k$i failed"
  done
fi

# ---- the table --------------------------------------------------------------------

printf '\nimages, %s, kernel %s; celld %s\n' "$(date -u +%F)" "$(uname -r)" "$build/celld"
printf 'Debian guest: %s\n' "${debian:-none ($debian_note)}"
printf '\n%-50s %9s %9s %9s\n' "" "median ms" "min ms" "max ms"
for r in "${rows[@]}"; do
  echo "$r"
done
if [ "$DISK_N" -gt 0 ]; then
  printf '\ndisk (du -sxk, KiB) with %d instances of the %s image, each started once and stopped\n\n' \
    "$DISK_N" "$DISK_IMAGE"
  printf '%-50s %12s\n' "<state_dir>/images/layers (the image)" "$layers_kib"
  printf '%-50s %12s\n' "<state_dir>/instances ($DISK_N instances)" "$inst_kib"
  printf '%-50s %12s\n' "per instance" "$per"
  printf '%-50s %12s  %s\n' "(instances + layers) / layers" "$ratio" "goal: under 1.1"
  printf '%-50s %12s\n' "create + start + stop x $DISK_N, total ms" "$(awk -v t="$disk_t" 'BEGIN { printf "%.0f", t / 1000 }')"
fi
echo
