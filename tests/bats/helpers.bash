# shellcheck shell=bash disable=SC2016 # jq filters are single-quoted on purpose
# Shared setup for the end-to-end tests.  They drive "$CELL" (build/cell by
# default) the way a user or containerd would, and the same tests pass
# against runc: `CELL=/usr/sbin/runc bats tests/bats`.
#
# Each test gets:
#   ROOT     its own state directory (cell --root)
#   BUNDLE   its own bundle, the working directory of the test; root.path
#            points at a busybox rootfs shared by all tests, built once
#   HOSTDIR  a host directory bind-mounted read-write at /host in the
#            container, where tests leave the effects they check
#   CID      a container id unique on this host while the test runs; a
#            test that needs more names them $CID-a, $CID-b, ...
# and a teardown that force-deletes every container of ROOT and then fails
# the test if a mount, a process or a state directory is left behind.

bats_require_minimum_version 1.5.0

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
CELL=${CELL:-$REPO/build/cell}
MKROOTFS=$REPO/rootfs-tools/mkrootfs-busybox
TEST_ROOTFS=${CELL_TEST_ROOTFS:-/var/tmp/cell-test-rootfs}
# A runtime that hangs fails its test instead of the whole run.
BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}
# How long polling helpers wait before they give up, in tenths of a second.
POLL_TENTHS=${CELL_TEST_POLL_TENTHS:-100}

setup() {
  cell_setup
}

teardown() {
  cell_teardown
}

# shellcheck disable=SC2034 # the variables are the tests'
cell_setup() {
  [ "$(id -u)" = 0 ] || {
    echo "the end-to-end tests need root" >&2
    return 1
  }
  [ -x "$CELL" ] || {
    echo "CELL=$CELL is not an executable: build it (make) or set CELL" >&2
    return 1
  }
  ROOT=$BATS_TEST_TMPDIR/root
  BUNDLE=$BATS_TEST_TMPDIR/bundle
  HOSTDIR=$BATS_TEST_TMPDIR/host
  CID=cell-test-$$
  # Every container process of this test carries it in its environment,
  # which is how the leak check finds them.
  TEST_MARK=CELL_TEST_MARK=$BATS_TEST_TMPDIR
  TEARDOWN_CMDS=()
}

cell_teardown() {
  local cmd id
  if [ -d "$ROOT" ]; then
    for id in $(cell list -q 2>/dev/null); do
      cell delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  for cmd in "${TEARDOWN_CMDS[@]}"; do
    eval "$cmd" >/dev/null 2>&1 || true
  done
  check_leaks
}

# Run a shell command at teardown, after the containers are deleted.
on_teardown() {
  TEARDOWN_CMDS+=("$1")
}

is_runc() {
  [ "$(basename "$CELL")" = runc ]
}

# For what only cell promises (the wording of its messages, ...).
cell_only() {
  if is_runc; then
    skip "cell-only behaviour, CELL is runc"
  fi
}

# Skip unless `cell features` lists NAME among linux.namespaces.
requires_namespace() {
  if ! "$CELL" features 2>/dev/null |
    jq -e --arg ns "$1" '.linux.namespaces | index($ns)' >/dev/null; then
    skip "$(basename "$CELL") does not support $1 namespaces"
  fi
}

# Skip unless the runtime implements spec version $1 (features'
# ociVersionMax), for fields that came with it.
requires_oci_version() {
  local max
  max=$("$CELL" features 2>/dev/null | jq -r .ociVersionMax) || max=0
  if [ "$(printf '%s\n' "$1" "${max%%-*}" | sort -V | head -n1)" != "$1" ]; then
    skip "$(basename "$CELL") implements the spec up to $max, not $1"
  fi
}

requires_kernel_file() {
  [ -e "$1" ] || skip "the kernel has no $1"
}

cell() {
  "$CELL" --root "$ROOT" "$@"
}

# create and run -d leave a container that inherits the runtime's stdio.
# Give it a file of its own, so that the pipe `run` reads (and bats' fd 3)
# are not held open by the container; the runtime's errors are copied to
# stderr when it fails.  Both must return at once: a runtime that waits for
# the container fails here (status 124) instead of hanging the test.
cell_detached() {
  local out rc=0
  out=$(mktemp "$BATS_TEST_TMPDIR/detached.XXXXXX")
  timeout -k 5 30 "$CELL" --root "$ROOT" "$@" </dev/null >"$out" 2>&1 3>&- || rc=$?
  [ "$rc" -eq 0 ] || cat "$out" >&2
  return "$rc"
}

ensure_test_rootfs() {
  local stamp=$TEST_ROOTFS/.cell-test-rootfs
  if [ -f "$stamp" ] && [ "$stamp" -nt "$MKROOTFS" ]; then
    return 0
  fi
  mkdir -p "$(dirname "$TEST_ROOTFS")"
  (
    flock 9
    if ! { [ -f "$stamp" ] && [ "$stamp" -nt "$MKROOTFS" ]; }; then
      "$MKROOTFS" "$TEST_ROOTFS" >/dev/null
      mkdir -p "$TEST_ROOTFS/host"
      touch "$stamp"
    fi
  ) 9>"$TEST_ROOTFS.lock"
}

# setup_bundle ARGS...: a bundle whose process runs ARGS (sh -c ... mostly).
setup_bundle() {
  ensure_test_rootfs
  mkdir -p "$BUNDLE" "$ROOT" "$HOSTDIR"
  (cd "$BUNDLE" && "$CELL" spec)
  update_config '
    .root = {path: $rootfs, readonly: false}
    | .process.terminal = false
    | .process.args = $ARGS.positional
    | .process.env += [$mark]
    | .mounts += [{destination: "/host", type: "bind", source: $host,
                   options: ["rbind", "rw"]}]' \
    --arg rootfs "$TEST_ROOTFS" --arg mark "$TEST_MARK" --arg host "$HOSTDIR" \
    --args -- "$@"
  cd "$BUNDLE" || return
}

# The test writes into its rootfs (symlinks, files): give it a copy of its
# own at $BUNDLE/rootfs instead of the shared one.
use_private_rootfs() {
  cp -a "$TEST_ROOTFS" "$BUNDLE/rootfs"
  update_config '.root.path = "rootfs"'
}

# Map container ids 0-65535 to host ids 100000-165535; HOSTDIR becomes the
# container root's, so that it can write there.
use_user_namespace() {
  chown 100000:100000 "$HOSTDIR"
  update_config '
    .linux.namespaces += [{type: "user"}]
    | .linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}]
    | .linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}]'
}

# update_config FILTER [jq options...]: edit the bundle's config.json.
update_config() {
  local filter=$1
  shift
  jq "$filter" "$@" <"$BUNDLE/config.json" >"$BUNDLE/config.json.new"
  mv "$BUNDLE/config.json.new" "$BUNDLE/config.json"
}

set_args() {
  update_config '.process.args = $ARGS.positional' --args -- "$@"
}

# retry CMD...: run CMD until it succeeds, for at most POLL_TENTHS tenths of
# a second.
retry() {
  local i
  for ((i = 0; i < POLL_TENTHS * 2; i++)); do
    "$@" && return 0
    sleep 0.05
  done
  echo "gave up waiting for: $*" >&2
  return 1
}

container_status() {
  cell state "$1" 2>/dev/null | jq -r .status
}

status_is() {
  [ "$(container_status "$1")" = "$2" ]
}

wait_for_status() {
  retry status_is "$1" "$2"
}

container_pid() {
  cell state "$1" | jq -r .pid
}

# PID has exited: it is gone, or a zombie nobody reaped (the host's pid 1
# may not reap the orphans it adopts).
process_gone() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat:0:1}" = Z ] || [ "${stat:0:1}" = X ]
}

wait_for_file() {
  retry test -e "$1"
}

# The inode of a namespace, as `readlink /proc/PID/ns/TYPE` shows it.
ns_of() {
  readlink "/proc/$1/ns/$2"
}

# --- leak checks ---------------------------------------------------------

leaked_mounts() {
  # Field 5 of mountinfo is the mount point.
  awk -v a="$BATS_TEST_TMPDIR" -v b="$TEST_ROOTFS" '
    index($5, a "/") == 1 || $5 == a || index($5, b "/") == 1 || $5 == b {
      print $5
    }' /proc/self/mountinfo
}

# Processes of this test: containers (by the environment mark, or before
# they exec by a mount of the test's directories in a mount namespace of
# their own) and runtimes or hooks still running with the test's paths on
# their command line.  (grep, not a loop in bash: bats traces every command
# a test runs.)
leaked_pids() {
  local pid host_mnt
  host_mnt=$(readlink /proc/self/ns/mnt)
  {
    grep -lzF -- "$BATS_TEST_TMPDIR/" /proc/[0-9]*/cmdline
    grep -lzxF -- "$TEST_MARK" /proc/[0-9]*/environ
    grep -lF -- "$BATS_TEST_TMPDIR/" /proc/[0-9]*/mountinfo |
      while read -r f; do
        pid=${f#/proc/}
        pid=${pid%%/*}
        [ "$(readlink "/proc/$pid/ns/mnt")" = "$host_mnt" ] || echo "$f"
      done
  } 2>/dev/null | cut -d/ -f3 | sort -un
}

# Cgroups named after the test's containers ($CID, $CID-a, ..., maybe with
# a prefix or a suffix like .scope).
leaked_cgroups() {
  find /sys/fs/cgroup -maxdepth 6 -depth -type d \
    \( -name "*$CID" -o -name "*$CID-*" -o -name "*$CID.*" \) 2>/dev/null
}

check_leaks() {
  local leaks=0 m pid cg
  for m in $(leaked_mounts); do
    echo "leak: mount on $m" >&2
    umount -l "$m" 2>/dev/null || true
    leaks=1
  done
  for pid in $(leaked_pids); do
    echo "leak: process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" >&2
    kill -9 "$pid" 2>/dev/null || true
    leaks=1
  done
  for cg in $(leaked_cgroups); do
    echo "leak: cgroup $cg" >&2
    retry rmdir "$cg" 2>/dev/null || true
    leaks=1
  done
  if [ -d "$ROOT" ] && [ -n "$(state_entries)" ]; then
    echo "leak: state left in $ROOT: $(ls -A "$ROOT")" >&2
    rm -rf "${ROOT:?}"/*
    leaks=1
  fi
  return "$leaks"
}

# state_entries: what the state root holds besides cell's caches of
# compiled seccomp filters and of `criu check`'s verdict (shared by all
# containers on purpose, not state).
state_entries() {
  ls -A "$ROOT" | grep -vx -e .seccomp-cache -e .criu-check || true
}

# expect_message TEXT: the output of the last `run` contains TEXT.  For
# the wording of cell's messages, which runc does not share.
expect_message() {
  is_runc && return 0
  # shellcheck disable=SC2154 # set by bats' run
  if [[ "$output" != *"$1"* ]]; then
    echo "expected a message with \`$1', got: $output" >&2
    return 1
  fi
}
