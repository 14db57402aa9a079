#!/bin/bash
# make bench: cell against crun and runc, measured side by side in one run
# on the same bundle (the default config of `cell spec`, with its seccomp
# profile; one row without it), and the kernel's floor (tests/bench/floor.c)
# in the same run.  Installs nothing; a runtime that is not installed is
# skipped.  Prints a table of milliseconds (median, p90) and peak RSS.
#
#   tests/bench/bench.sh BUILD_DIR      (BENCH_N=100 runs per figure,
#                                        BENCH_BATCH=10 runs per turn)
set -euo pipefail

build=$(realpath "${1:-build}")
N=${BENCH_N:-100}
timeit=$build/timeit
[ -x "$build/floor" ] || { echo "bench: $build/floor is missing (make $build/floor)" >&2; exit 2; }
# Resolved: runc refuses a rootfs path through a symlink.
rootfs=$(realpath "$build/rootfs")
# State on tmpfs, where runtimes keep it (/run): fsync costs nothing there.
work=$(mktemp -d /run/cell-bench.XXXXXX)

declare -A runtime=([cell]=$build/cell)
command -v crun >/dev/null && runtime[crun]=$(command -v crun)
command -v runc >/dev/null && runtime[runc]=$(command -v runc)
order=(cell crun runc)
# Another build of cell in the same run (before and after a change), as a
# last column: BENCH_CELL_BASE=path/to/cell.
if [ -n "${BENCH_CELL_BASE:-}" ]; then
  runtime[base]=$(realpath "$BENCH_CELL_BASE")
  order+=(base)
fi

cleanup() {
  for rt in "${!runtime[@]}"; do
    for id in $(in_ns "$rt" "${runtime[$rt]}" --root "$work/$rt" list -q 2>/dev/null); do
      in_ns "$rt" "${runtime[$rt]}" --root "$work/$rt" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  rm -rf "$work"
}
trap cleanup EXIT

# crun 1.8 refuses hybrid cgroup hosts (a cgroup2 mount with no
# controllers beside v1): run it in a private mount namespace where that
# mount is covered by an empty tmpfs.  The host is untouched.
in_ns() {
  local rt=$1
  shift
  if [ "$rt" = crun ] && mountpoint -q /sys/fs/cgroup/unified; then
    unshare -m --propagation private sh -c \
      'mount -t tmpfs none /sys/fs/cgroup/unified && exec "$@"' sh "$@"
  else
    "$@"
  fi
}

make_bundle() { # DIR ARGS-JSON [userns|noseccomp]
  local dir=$1 args=$2 variant=${3:-}
  mkdir -p "$dir"
  "$build/cell" spec -b "$dir"
  # 1.0.2: what crun 1.8 and runc 1.1 accept
  local filter='.ociVersion = "1.0.2" | .process.terminal = false | .process.args = $args
    | .root = {path: $rootfs, readonly: true}'
  if [ "$variant" = noseccomp ]; then
    filter+=' | del(.linux.seccomp)'
  fi
  if [ "$variant" = userns ]; then
    filter+=' | .linux.namespaces += [{type: "user"}]
      | .linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}]
      | .linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}]'
  fi
  jq --argjson args "$args" --arg rootfs "$rootfs" "$filter" \
    "$dir/config.json" >"$dir/c" && mv "$dir/c" "$dir/config.json"
}

make_bundle "$work/true" '["/bin/true"]'
make_bundle "$work/true-userns" '["/bin/true"]' userns
make_bundle "$work/true-noseccomp" '["/bin/true"]' noseccomp
make_bundle "$work/sleep" '["/bin/sleep", "1000"]'

# Interleaved: BENCH_BATCH runs of each command in turn, round after round,
# so that the other work of a busy host falls on all of them alike; each
# command's runs are pooled for its figures.
BATCH=${BENCH_BATCH:-10}
rounds=$(((N + BATCH - 1) / BATCH))
samples=$work/samples
mkdir "$samples"

sample() { # KEY RUNTIME ROUND ARGS...
  local key=$1 rt=$2 round=$3
  shift 3
  in_ns "$rt" env TIMEIT_RAW=1 "$timeit" "$BATCH" x "$@" >>"$samples/$key.$rt"
}

# exec needs a running container: one sleeper per runtime, for all rounds.
for rt in "${order[@]}"; do
  [ -n "${runtime[$rt]:-}" ] || continue
  in_ns "$rt" "${runtime[$rt]}" --root "$work/$rt" run -d -b "$work/sleep" sleeper >/dev/null 2>&1 ||
    echo "bench: $rt: the sleeper for exec did not start" >&2
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 0; round < rounds; round++)); do
  sample floor floor "$round" "$build/floor" "$rootfs" /bin/true
  for rt in "${order[@]}"; do
    [ -n "${runtime[$rt]:-}" ] || continue
    bin=${runtime[$rt]}
    root=$work/$rt
    sample run "$rt" "$round" "$bin" --root "$root" run -b "$work/true" "r$round-{}"
    sample userns "$rt" "$round" "$bin" --root "$root" run -b "$work/true-userns" "u$round-{}"
    sample plain "$rt" "$round" "$bin" --root "$root" run -b "$work/true-noseccomp" "p$round-{}"
    sample exec "$rt" "$round" "$bin" --root "$root" exec sleeper /bin/true
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
for rt in "${order[@]}"; do
  [ -n "${runtime[$rt]:-}" ] || continue
  in_ns "$rt" "${runtime[$rt]}" --root "$work/$rt" delete -f sleeper >/dev/null 2>&1 || true
done

declare -A result
# The median and p90 of a command's pooled runs, the median of their peak
# RSS; failed runs are counted and reported.
for f in "$samples"/*; do
  name=${f##*/}
  read -r med p90 fail total < <(sort -n -k1,1 "$f" | awk '
    { ms[NR] = $1; if ($3 != 0) fail++ }
    END { printf "%.2f %.2f %d %d\n", ms[int(NR / 2) + 1], ms[int(NR * 9 / 10) + 1], fail, NR }')
  rss=$(sort -n -k2,2 "$f" | awk '{ r[NR] = $2 } END { print r[int(NR / 2) + 1] }')
  key=${name%%.*} rt=${name#*.}
  result[$key.med.$rt]=$med
  result[$key.p90.$rt]=$p90
  result[$key.rss.$rt]=$rss
  [ "$fail" -eq 0 ] || echo "bench: $rt: $fail of $total runs of $key failed" >&2
done

ratio() { # A B
  [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || printf -- "-"
}

printf '\n%d runs each, interleaved in batches of %d, %s, kernel %s\n' \
  "$((rounds * BATCH))" "$BATCH" "$(date -u +%F)" "$(uname -r)"
printf 'load average before %s, after %s\n\n' "$load_before" "$load_after"
base_title=
[ -z "${runtime[base]:-}" ] || base_title=base
printf '%-30s %10s %10s %10s %10s %10s %10s\n' "" cell crun runc cell/crun cell/runc "$base_title"
row() { # LABEL KEY
  local c=${result[$2.cell]:-} k=${result[$2.crun]:-} r=${result[$2.runc]:-}
  local b=${result[$2.base]:-}
  [ -n "$base_title" ] || b=' '
  printf '%-30s %10s %10s %10s %10s %10s %10s\n' "$1" "${c:--}" "${k:--}" "${r:--}" \
    "$(ratio "$c" "$k")" "$(ratio "$c" "$r")" "${b:--}"
}
row "run /bin/true, median ms" run.med
row "run /bin/true, p90 ms" run.p90
row "run + userns, median ms" userns.med
row "run + userns, p90 ms" userns.p90
row "run, no seccomp, median ms" plain.med
row "run, no seccomp, p90 ms" plain.p90
row "exec /bin/true, median ms" exec.med
row "peak RSS of run, KiB (median)" run.rss
floor=${result[floor.med.floor]}
printf '\nthe kernel'"'"'s floor (tests/bench/floor.c: clone into the same six\n'
printf 'namespaces, pivot_root, exec /bin/true), median %s ms, p90 %s ms\n' \
  "$floor" "${result[floor.p90.floor]}"
printf '%-30s %10s %10s %10s %10s\n' "run, no seccomp / floor" \
  "$(ratio "${result[plain.med.cell]:-}" "$floor")" \
  "$(ratio "${result[plain.med.crun]:-}" "$floor")" \
  "$(ratio "${result[plain.med.runc]:-}" "$floor")" \
  "$([ -z "$base_title" ] || ratio "${result[plain.med.base]:-}" "$floor")"
