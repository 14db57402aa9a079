# shellcheck shell=bash disable=SC2154 # set by the script that sources it
# A private celld for a bench script, sourced after the script has set
# CELLD, CELLCTL, SOCK, STATE, LOG, work (its scratch directory, holding
# celld.conf), POOL_START, POOL_END and CGPARENT, and defined die.

ctl() {
  "$CELLCTL" --socket "$SOCK" "$@"
}

pool_pids() {
  ps -eo pid=,uid=,stat= | awk -v s="$POOL_START" -v e="$POOL_END" \
    '$2 >= s && $2 < e && $3 !~ /^Z/ {print $1}'
}

mounts_under() { # DIR
  awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo
}

unmount_under() { # DIR: deepest first
  mounts_under "$1" | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

cgroup_dirs() {
  local cg
  for cg in /sys/fs/cgroup/*"$CGPARENT" /sys/fs/cgroup"$CGPARENT"; do
    [ -d "$cg" ] && echo "$cg"
  done
  return 0
}

start_daemon() {
  "$CELLD" --foreground --config "$work/celld.conf" --state-dir "$STATE" \
    --socket "$SOCK" 2>>"$LOG" &
  daemon_pid=$!
  local i
  for ((i = 0; i < 100; i++)); do
    ctl list >/dev/null 2>&1 && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$LOG" >&2
  die "celld did not answer on $SOCK"
}

stop_daemon() {
  [ -n "$daemon_pid" ] || return 0
  kill "$daemon_pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$daemon_pid" 2>/dev/null || true
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=
}

# Everything the bench made through celld destroyed, celld stopped, and a
# check that nothing of its pool is left: processes, runtime state, mounts
# under $work, cgroups under CGPARENT.  What is left is removed and named
# on stderr after TAG; the status is 1 then.
celld_teardown() { # TAG
  local tag=$1 left=0 n id pids m cg
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    for n in $(ctl list --json 2>/dev/null | jq -r '.[].name'); do
      ctl destroy "$n" -f >/dev/null 2>&1 || echo "$tag: destroy $n failed" >&2
    done
    for id in $(ctl image list --json 2>/dev/null | jq -r '.[].id'); do
      ctl image rm "$id" >/dev/null 2>&1 || echo "$tag: image rm $id failed" >&2
    done
  fi
  stop_daemon
  for _ in $(seq 20); do
    [ -z "$(pool_pids)" ] && break
    sleep 0.1
  done
  pids=$(pool_pids)
  if [ -n "$pids" ]; then
    echo "$tag: left: processes of the pool: $(tr '\n' ' ' <<<"$pids")" >&2
    echo "$pids" | xargs -r kill -9
    left=1
  fi
  if [ -d "$STATE/run" ]; then
    for n in $("$CELL" --root "$STATE/run" list -q 2>/dev/null); do
      echo "$tag: left: runtime state of $n" >&2
      "$CELL" --root "$STATE/run" delete -f "$n" >/dev/null 2>&1
      left=1
    done
  fi
  m=$(mounts_under "$work")
  if [ -n "$m" ]; then
    echo "$tag: left: $(echo "$m" | wc -l) mounts under $work" >&2
    unmount_under "$work"
    left=1
  fi
  for cg in $(cgroup_dirs); do
    if [ -n "$(find "$cg" -mindepth 1 -type d)" ]; then
      echo "$tag: left: cgroups under $cg" >&2
      find "$cg" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
      left=1
    fi
    rmdir "$cg" || left=1
  done
  return "$left"
}
