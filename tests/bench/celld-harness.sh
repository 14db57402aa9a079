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
