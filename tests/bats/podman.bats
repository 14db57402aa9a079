#!/usr/bin/env bats
# shellcheck disable=SC2016 # container scripts are single-quoted on purpose
# podman driving cell (podman --runtime $CELL, through conmon), on a busybox
# image imported from the test rootfs.  Everything podman keeps lives in a
# directory of this file's: its storage, its run and tmp directories, its
# network config; the runtime's state goes to cell's default root, as
# podman passes no --root.  Skipped, and only then, when podman is not
# installed.

load helpers

IMAGE=localhost/cell-test-busybox:latest

# The containers' cgroups go to libpod_parent (--cgroup-manager cgroupfs),
# conmon to libpod_parent/conmon: removed at the end if we made them.
podman_cgroup_parents() {
  find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d -name libpod_parent 2>/dev/null
}

# (bats 1.8, Debian 12's, cannot skip from setup_file: setup skips.)
setup_file() {
  command -v podman >/dev/null || return 0
  PODMAN_DIR=$BATS_FILE_TMPDIR/podman
  PODMAN_DRIVER=overlay
  mkdir -p "$PODMAN_DIR"
  export PODMAN_DIR PODMAN_DRIVER
  # Left behind by podman outside of its --root, unless it was there.
  [ -e /var/lib/containers ] && export PODMAN_HAD_VAR_LIB=1
  [ -n "$(podman_cgroup_parents)" ] && export PODMAN_HAD_CGROUPS=1
  # overlay on the test directory's filesystem, or else vfs (overlay
  # checks that it can mount when it starts).
  if ! podman info >"$PODMAN_DIR/info.log" 2>&1; then
    unmount_podman_dir
    rm -rf "${PODMAN_DIR:?}"/*
    PODMAN_DRIVER=vfs
  fi
  ensure_test_rootfs
  tar -C "$TEST_ROOTFS" -c . | podman import -q - "$IMAGE" >/dev/null
}

unmount_podman_dir() {
  awk -v d="$PODMAN_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do
      umount -l "$m" || true
    done
}

teardown_file() {
  [ -n "${PODMAN_DIR:-}" ] && [ -d "$PODMAN_DIR" ] || return 0
  podman rm -af -t 0 >/dev/null 2>&1 || true
  podman rmi -af >/dev/null 2>&1 || true
  unmount_podman_dir
  rm -rf "$PODMAN_DIR"
  [ -n "${PODMAN_HAD_VAR_LIB:-}" ] || rm -rf /var/lib/containers
  if [ -z "${PODMAN_HAD_CGROUPS:-}" ]; then
    local m
    for m in $(podman_cgroup_parents); do
      rmdir "$m/conmon" "$m" 2>/dev/null || true
    done
  fi
}

# PODMAN: podman with our directories and cell; RUN_FLAGS: what `run`
# needs on this host: no network, and rlimits no higher than ours (raising
# them takes CAP_SYS_RESOURCE, which the host may lack).
podman_command() {
  PODMAN=(podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/runroot"
    --tmpdir "$PODMAN_DIR/tmp" --network-config-dir "$PODMAN_DIR/cni"
    --storage-driver "$PODMAN_DRIVER" --cgroup-manager cgroupfs
    --events-backend file --runtime "$CELL")
  RUN_FLAGS=(--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
}

podman() {
  local PODMAN RUN_FLAGS
  podman_command
  command "${PODMAN[@]}" "$@"
}

podman_run() {
  local PODMAN RUN_FLAGS
  podman_command
  command "${PODMAN[@]}" run "${RUN_FLAGS[@]}" "$@"
}

# in_pty PODMAN-ARGS: podman on a new pty (script's), our stdin typed on
# it; PODMAN-ARGS is shell text, `run` expands to `run` with RUN_FLAGS.
in_pty() {
  local PODMAN RUN_FLAGS words
  podman_command
  words=$(printf '%q ' "${PODMAN[@]}")
  script -qec "$words ${1/#run /run $(printf '%q ' "${RUN_FLAGS[@]}")}" /dev/null
}

# What podman or the runtime left running or stored: conmon, podman's
# cleanup and the runtime (our paths on their command line), containers
# (in the cgroups podman makes for them), cell's state of containers whose
# bundle is ours.  (A process that exits within a second, like podman's
# cleanup finishing or our own greps, is no leak.)
podman_pids() {
  {
    grep -lzF -- "$PODMAN_DIR/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
    for f in $(podman_cgroup_parents); do
      cat "$f"/libpod-*/cgroup.procs 2>/dev/null
    done
  } | sort -un | while read -r pid; do
    # (grep's own cmdline has our path: it is gone by now.)
    [ "$pid" = $$ ] || [ ! -e "/proc/$pid" ] || echo "$pid"
  done
}

podman_leaks() {
  local leaks=0 pid f cmd i
  for ((i = 0; i < 20; i++)); do
    [ -z "$(podman_pids)" ] && break
    sleep 0.05
  done
  for pid in $(podman_pids); do
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    echo "leak: process $pid: $cmd" >&2
    kill -9 "$pid" 2>/dev/null || true
    leaks=1
  done
  for f in /run/cell/*/state.json; do
    grep -qsF -- "$PODMAN_DIR/" "$f" || continue
    echo "leak: runtime state $(dirname "$f")" >&2
    "$CELL" delete -f "$(basename "$(dirname "$f")")" >/dev/null 2>&1 || true
    leaks=1
  done
  for f in $(podman_cgroup_parents); do
    if compgen -G "$f/libpod-*" >/dev/null; then
      echo "leak: cgroups $f/libpod-*" >&2
      leaks=1
    fi
  done
  return "$leaks"
}

setup() {
  command -v podman >/dev/null || skip "podman is not installed (apt-get install podman)"
  cell_setup
}

teardown() {
  [ -n "${PODMAN_DIR:-}" ] || return 0
  local left
  left=$(podman ps -aq 2>/dev/null)
  [ -z "$left" ] || podman rm -af -t 0 >/dev/null 2>&1 || true
  cell_teardown
  podman_leaks
  [ -z "$left" ] || {
    echo "leak: podman containers $left" >&2
    return 1
  }
}

@test "podman: the OCI runtime is \$CELL" {
  run -0 podman info --format '{{.Host.OCIRuntime.Path}}'
  [ "$output" = "$CELL" ]
}

@test "podman run --rm: output and exit codes pass through" {
  run -0 podman_run --rm "$IMAGE" echo hello from podman
  [ "$output" = "hello from podman" ]
  run -3 podman_run --rm "$IMAGE" sh -c 'echo out; echo err >&2; exit 3'
  [[ "$output" == *out* ]]
  [[ "$output" == *err* ]]
}

@test "podman run: env, workdir and user reach the process" {
  run -0 podman_run --rm -e GREETING=bonjour -w /etc -u 1000:100 "$IMAGE" \
    sh -c 'echo "$GREETING $(pwd) $(id -u):$(id -g)"'
  [ "$output" = "bonjour /etc 1000:100" ]
}

@test "podman run --read-only: a read-only rootfs, tmpfs (tmpcopyup) on /tmp and /run" {
  run -0 podman_run --rm --read-only "$IMAGE" \
    sh -c 'touch /x 2>/dev/null || echo read-only; touch /tmp/x /run/x && echo tmp-writable'
  [ "${lines[0]}" = read-only ]
  [ "${lines[1]}" = tmp-writable ]
}

@test "podman kill: the exit code is 128+N" {
  podman_run -d --name "$CID" "$IMAGE" sleep 1000
  podman kill -s KILL "$CID"
  run -0 podman wait "$CID"
  [ "$output" = 137 ]
  podman rm "$CID"
}

@test "podman run -d, inspect, ps, exec, stop, rm" {
  run -0 podman_run -d --name "$CID" "$IMAGE" \
    sh -c 'trap "exit 0" TERM; echo started >/tmp/mark; while :; do sleep 0.05; done'
  id=$output

  run -0 podman inspect --format '{{.State.Status}} {{.State.Running}} {{.State.Pid}}' "$CID"
  read -r status running pid <<<"$output"
  [ "$status" = running ]
  [ "$running" = true ]
  # podman's pid is the runtime's, which runs it as it says.
  [ "$("$CELL" state "$id" | jq -r '.status + " " + (.pid | tostring)')" = "running $pid" ]
  kill -0 "$pid"

  run -0 podman ps --format '{{.Names}} {{.Status}}'
  [[ "$output" == "$CID Up"* ]]

  run -0 podman exec "$CID" sh -c 'until [ -e /tmp/mark ]; do sleep 0.05; done; cat /tmp/mark; echo $$'
  [ "${lines[0]}" = started ]
  [ "${lines[1]}" -gt 1 ]
  run -4 podman exec -e FOO=bar "$CID" sh -c 'echo "$FOO"; exit 4'
  [ "$output" = bar ]
  # podman tells a missing program (127) from one it may not run (126) by
  # the phrases of the runtime's message (docs/client-phrases.md).
  run -127 podman exec "$CID" no-such-program
  run -126 podman exec "$CID" /etc/passwd

  # stop sends SIGTERM through the runtime; the trap makes it exit 0.
  run -0 podman stop -t 10 "$CID"
  run -0 podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$CID"
  [ "$output" = "exited 0" ]
  run -0 podman ps -a --format '{{.Names}} {{.Status}}'
  [[ "$output" == "$CID Exited (0)"* ]]

  run -0 podman rm "$CID"
  run ! "$CELL" state "$id"
  run -0 podman ps -aq
  [ -z "$output" ]
}

@test "podman run -it on a terminal" {
  run -5 in_pty "run -it --rm $IMAGE sh -c 'tty; test -t 0 && echo stdin-is-a-tty; read -r l; echo \"got [\$l]\"; exit 5'" \
    <<<"typed words"
  output=$(tr -d '\r' <<<"$output")
  [[ "$output" == *"/dev/pts/"* ]]
  [[ "$output" == *stdin-is-a-tty* ]]
  [[ "$output" == *"got [typed words]"* ]]
}

@test "podman exec -it on a terminal" {
  podman_run -d --name "$CID" "$IMAGE" sleep 1000
  run -6 in_pty "exec -it $CID sh -c 'tty; read -r l; echo \"got [\$l]\"; exit 6'" \
    <<<"typed words"
  output=$(tr -d '\r' <<<"$output")
  [[ "$output" == *"/dev/pts/"* ]]
  [[ "$output" == *"got [typed words]"* ]]
  podman rm -f -t 0 "$CID"
}

@test "podman pause and unpause" {
  "$CELL" pause --help >/dev/null 2>&1 || skip "$(basename "$CELL") has no pause"
  podman_run -d --name "$CID" "$IMAGE" sleep 1000
  podman pause "$CID"
  run -0 podman inspect --format '{{.State.Status}}' "$CID"
  [ "$output" = paused ]
  podman unpause "$CID"
  run -0 podman inspect --format '{{.State.Status}}' "$CID"
  [ "$output" = running ]
  run -0 podman exec "$CID" echo alive
  [ "$output" = alive ]
  podman rm -f -t 0 "$CID"
}
