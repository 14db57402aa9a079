#!/bin/bash
# make bench: cell against crun and runc, measured side by side in one run
# on the same bundle (the default config of `cell spec`, with its seccomp
# profile; one row without it).  Installs nothing; a runtime that is not
# installed is skipped.  Prints a table of milliseconds (median, p90) and peak RSS.
#
#   tests/bench/bench.sh BUILD_DIR      (BENCH_N=100 runs per figure)
set -euo pipefail

build=$(realpath "${1:-build}")
N=${BENCH_N:-100}
timeit=$build/timeit
rootfs=$build/rootfs
# State on tmpfs, where runtimes keep it (/run): fsync costs nothing there.
work=$(mktemp -d /run/cell-bench.XXXXXX)

declare -A runtime=([cell]=$build/cell)
command -v crun >/dev/null && runtime[crun]=$(command -v crun)
command -v runc >/dev/null && runtime[runc]=$(command -v runc)
order=(cell crun runc)

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

declare -A result
measure() { # KEY RUNTIME ARGS...
  local key=$1 rt=$2
  shift 2
  read -r _ med p90 rss fail < <(in_ns "$rt" "$timeit" "$N" x "$@")
  result[$key.med.$rt]=$med
  result[$key.p90.$rt]=$p90
  result[$key.rss.$rt]=$rss
  [ "$fail" -eq 0 ] || echo "bench: $rt: $fail of $N runs of $key failed" >&2
}

for rt in "${order[@]}"; do
  [ -n "${runtime[$rt]:-}" ] || continue
  bin=${runtime[$rt]}
  root=$work/$rt
  measure run "$rt" "$bin" --root "$root" run -b "$work/true" "r{}"
  measure userns "$rt" "$bin" --root "$root" run -b "$work/true-userns" "u{}"
  measure plain "$rt" "$bin" --root "$root" run -b "$work/true-noseccomp" "p{}"
  # exec needs a running container, in the same mount namespace for crun
  in_ns "$rt" sh -c '"$1" --root "$2" run -d -b "$3" sleeper >/dev/null 2>&1 &&
    exec "$4" "$5" x "$1" --root "$2" exec sleeper /bin/true' sh \
    "$bin" "$root" "$work/sleep" "$timeit" "$N" >"$work/exec.$rt"
  read -r _ med _ _ fail <"$work/exec.$rt"
  result[exec.med.$rt]=$med
  [ "$fail" -eq 0 ] || echo "bench: $rt: $fail of $N execs failed" >&2
  in_ns "$rt" "$bin" --root "$root" delete -f sleeper >/dev/null 2>&1 || true
done

ratio() { # A B
  [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || printf -- "-"
}

printf '\n%d runs each, %s, kernel %s\n\n' "$N" "$(date -u +%F)" "$(uname -r)"
printf '%-30s %10s %10s %10s %10s %10s\n' "" cell crun runc cell/crun cell/runc
row() { # LABEL KEY
  local c=${result[$2.cell]:-} k=${result[$2.crun]:-} r=${result[$2.runc]:-}
  printf '%-30s %10s %10s %10s %10s %10s\n' "$1" "${c:--}" "${k:--}" "${r:--}" \
    "$(ratio "$c" "$k")" "$(ratio "$c" "$r")"
}
row "run /bin/true, median ms" run.med
row "run /bin/true, p90 ms" run.p90
row "run + userns, median ms" userns.med
row "run + userns, p90 ms" userns.p90
row "run, no seccomp, median ms" plain.med
row "exec /bin/true, median ms" exec.med
row "peak RSS of run, KiB (median)" run.rss
