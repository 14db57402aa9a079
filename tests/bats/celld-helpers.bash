# shellcheck shell=bash
# What the celld test files share: a private daemon (its own state dir,
# socket, id pool and cgroup parent), started once per file, and the check
# that nothing of it is left.  A file sets POOL_START, POOL_COUNT and, in
# setup_file, CGPARENT; CELLD_PREFIX is a command to run celld under (for
# celld-net.bats: nsenter into its network namespace).

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
CELL=${CELL:-$REPO/build/cell}
CELLD=${CELLD:-$REPO/build/celld}
CELLCTL=${CELLCTL:-$REPO/build/cellctl}
BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}

# D, STATE, SOCK and TEMPLATE (a copy of the busybox rootfs, in the default
# template directory, where members may use it too); every directory above
# D traversable by the instances' roots (unprivileged uids) and by the
# refused users of the tests.
celld_files() {
  export D=$BATS_FILE_TMPDIR
  export STATE=$D/state SOCK=$D/celld.sock TEMPLATE=$D/state/templates/busybox
  mkdir -p "$STATE/templates"
  # CELLD_TEST_TEMPLATE_SRC: a copy made once where copying is cheap (the
  # cgroup v2 guest's tmpfs, rather than 9p for each file).
  if [ -n "${CELLD_TEST_TEMPLATE_SRC:-}" ]; then
    cp -a "$CELLD_TEST_TEMPLATE_SRC" "$TEMPLATE"
  elif [ -x "$REPO/build/rootfs/bin/busybox" ]; then
    cp -a "$REPO/build/rootfs" "$TEMPLATE"
  else
    "$REPO/rootfs-tools/mkrootfs-busybox" "$TEMPLATE" >/dev/null
  fi
  # Members import a template with their own rights: root's home too.
  chmod o+rx "$TEMPLATE/root"
  local p=$D
  while [ "$p" != / ]; do
    chmod o+x "$p"
    p=$(dirname "$p")
  done
}

start_daemon() { # [celld flags...]
  # shellcheck disable=SC2086 # CELLD_PREFIX is words, or nothing
  ${CELLD_PREFIX:-} "$CELLD" --foreground --debug --config "$D/celld.conf" \
    --state-dir "$STATE" --socket "$SOCK" "$@" 2>>"$D/celld.log" 3>&- &
  # (nsenter execs celld: $! is the daemon itself either way.)
  echo $! >"$D/celld.pid"
  # Not a job of the test's shell: its kill -9 is no news to report.
  disown $!
  # A socket file may be left by a killed daemon: wait for one that answers.
  for _ in $(seq 500); do
    "$CELLCTL" --socket "$SOCK" list >/dev/null 2>&1 && return 0
    sleep 0.02
  done
  cat "$D/celld.log" >&2
  return 1
}

# celld stopped, waited for, and started again with the caller's
# environment (CELLD_TEST_PAUSE=..., PATH=...).
restart_celld() {
  local pid
  pid=$(cat "$D/celld.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  start_daemon
}

# The pid of the child that CELLD_TEST_PAUSE=snapshot-copy paused, the
# Nth to pause (waited for).
paused_child() { # N
  local pids
  for _ in $(seq 100); do
    pids=$(sed -n 's/.*CELLD_TEST_PAUSE=snapshot-copy: pausing (pid \([0-9]*\)).*/\1/p' "$D/celld.log")
    if [ "$(echo "$pids" | grep -c .)" -ge "$1" ]; then
      echo "$pids" | sed -n "${1}p"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# A snapshot s1 of NAME paused in its copy (CELLD_TEST_PAUSE=snapshot-copy,
# its client's output in $D/snap.out): the copy's child killed, the client
# gets one line, and nothing of the snapshot is left or holds NAME.
snapshot_copy_killed() { # NAME CHILD CLIENT
  kill -9 "$2"
  local status=0
  wait "$3" || status=$?
  [ "$status" -ne 0 ]
  [ "$(cat "$D/snap.out")" = "cellctl: snapshot s1 of \`$1\` failed: its process died" ]
  [ -z "$(ctl snapshots "$1" --json | jq -r '.[].name')" ]
  [ -z "$(unnamed_layers)" ]
  [ "$(field "$1" .busy)" = null ]
}

# The store's layers that neither an image nor an instance's record (its
# own layers, its snapshots') names.
unnamed_layers() {
  local named
  named=$(cat "$STATE"/images/images/*.json "$STATE"/instances/*.json 2>/dev/null |
    jq -r '(.layers // [])[], (.own_layers // [])[],
           ((.snapshots // [])[] | (.own_layers // [])[])' | sed 's/sha256://' | sort -u)
  comm -23 <(ls "$STATE/images/layers" | sort) <(echo "$named")
}

destroy_all() {
  for n in $(ctl list --json 2>/dev/null | jq -r '.[].name'); do
    ctl destroy "$n" -f || true
  done
}

# For teardown_file: destroy every instance, then stop the daemon.
celld_stop() {
  destroy_all
  kill "$(cat "$D/celld.pid")" 2>/dev/null || true
  sleep 0.2
}

# Processes (not zombies) running as an id of the pool.
pool_pids() {
  ps -eo pid=,uid=,stat= |
    awk -v s="$POOL_START" -v e="$((POOL_START + POOL_COUNT))" \
      '$2 >= s && $2 < e && $3 !~ /^Z/ {print $1}'
}

# The console keeper of the celld of $D/celld.conf: a fork of it (its
# command line), named celld-console.
keeper_pids() {
  local pid
  for pid in $(pgrep -x celld-console); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
      grep -qF -- "--config $D/celld.conf " && echo "$pid"
  done
  return 0
}

# The processes LISTER lists given 2 s to go; 1 (and what) when some stay,
# killed then.
kill_leftovers() { # what lister
  for _ in $(seq 20); do
    [ -z "$("$2")" ] && return 0
    sleep 0.1
  done
  echo "$1 left: $("$2")" >&2
  "$2" | xargs -r kill -9
  return 1
}

# With the daemon gone: 1 (and what) when a mount under the state dir, a
# process of the pool, a console keeper (it outlives celld only while it
# holds a console: an instance running, or one whose last output no celld
# has saved) or a cgroup under the parent is left.  Leftover processes are
# killed and the empty cgroup parents removed.
celld_leaks() {
  local left=0
  if grep -q " $STATE/" /proc/self/mountinfo; then
    echo "mounts left under $STATE:" >&2
    grep " $STATE/" /proc/self/mountinfo >&2
    # Reported, then removed, deepest first: a failed test must not leave
    # the host with them.
    grep " $STATE/" /proc/self/mountinfo | awk '{print $5}' | sort -r |
      xargs -r -n1 umount -l 2>/dev/null || true
    left=1
  fi
  kill_leftovers "processes of the pool" pool_pids || left=1
  kill_leftovers "a console keeper" keeper_pids || left=1
  local cg
  for cg in /sys/fs/cgroup/*"$CGPARENT" /sys/fs/cgroup"$CGPARENT"; do
    [ -d "$cg" ] || continue
    if [ -n "$(find "$cg" -mindepth 1 -type d)" ]; then
      echo "cgroups left: $(find "$cg" -mindepth 1 -type d)" >&2
      left=1
    fi
    rmdir "$cg" 2>/dev/null || true
  done
  return $left
}

ctl() {
  "$CELLCTL" --socket "$SOCK" "$@"
}

# cmd run in the instance, as its root (cellctl exec).
inside() { # name cmd...
  local name=$1
  shift
  ctl exec "$name" -- "$@" </dev/null
}

# The root of a running instance as the host sees it.  Its mounts live in
# its own mount namespace alone, so the host reaches them through its init.
root_of() { # name
  echo "/proc/$(field "$1" .pid)/root"
}

# jq on `show --json`.
field() {
  ctl show "$1" --json | jq -r "$2"
}
