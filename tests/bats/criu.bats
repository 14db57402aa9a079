#!/usr/bin/env bats
# cell checkpoint and cell restore, with criu.  Where criu works (the VM of
# `make check-criu`: Debian 12's kernel 6.1 and criu 3.17) a busybox
# counter is checkpointed and restored; where it cannot (kernels from 6.13
# on with criu 3.17, or no criu at all), checkpoint must refuse at once and
# touch nothing.  The tests of each kind skip on the other, saying why.

load helpers
load criu-helpers

# `criu check` is slow in the VM: asked once for the whole file.
setup_file() {
  criu_probe
}

# The helper programs from `make` (build/tests), or compiled here when they
# are missing or older than their source (as in terminal.bats).
helper_program() {
  local src=$REPO/tests/helpers/$1.c
  local bin=${CELL_TEST_HELPERS:-$REPO/build/tests}/$1
  if [ -x "$bin" ] && [ "$bin" -nt "$src" ]; then
    echo "$bin"
    return
  fi
  bin=$BATS_TEST_TMPDIR/$1
  "${CC:-cc}" -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$bin" "$src" >&2 &&
    echo "$bin"
}

needs_working_criu() {
  cell_only
  [ "$CRIU_WORKS" = yes ] ||
    skip "criu cannot work here (${CRIU_REASON:-see criu check}): make check-criu runs this in a VM where it does"
}

needs_failing_criu() {
  cell_only
  [ -n "$CRIU_BIN" ] || skip "criu is not installed"
  [ "$CRIU_WORKS" = no ] || skip "criu works on this kernel: there is no refusal to test"
}

# A counter kept in the shell's memory, written to /host/count: a restored
# process goes on from where it was, a restarted one would start over.
# Its stdio is the container's /dev/null (criu cannot dump fds on host
# files).
setup_counter() {
  setup_bundle sh -c 'exec </dev/null >/dev/null 2>&1
    i=0; while :; do i=$((i+1)); echo $i >/host/count; sleep 0.1; done'
}

count() {
  cat "$HOSTDIR/count" 2>/dev/null || echo 0
}

# count_passes N: the counter goes past N.
count_passes() {
  [ "$(count)" -gt "$1" ]
}

start_counter() {
  setup_counter
  cell_detached run -d "$CID"
  retry count_passes 2
}

@test "checkpoint where criu cannot work fails at once naming criu, the kernel and why, and touches nothing" {
  needs_failing_criu
  start_counter
  local version
  version=$("$CRIU_BIN" --version | sed -n 's/^Version: //p')
  run cell checkpoint --image-path "$BATS_TEST_TMPDIR/img" "$CID"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  expect_message "criu $version"
  expect_message "kernel $(uname -r)"
  expect_message "$CRIU_REASON"
  [ ! -e "$BATS_TEST_TMPDIR/img" ]
  # Still running, not frozen, still counting.
  status_is "$CID" running
  local before
  before=$(count)
  retry count_passes "$before"
  # The verdict is kept: the same refusal again, and restore refuses too.
  run cell checkpoint --image-path "$BATS_TEST_TMPDIR/img" "$CID"
  [ "$status" -eq 1 ]
  expect_message "kernel $(uname -r)"
  mkdir "$BATS_TEST_TMPDIR/img"
  run cell restore --image-path "$BATS_TEST_TMPDIR/img" "$CID-b"
  [ "$status" -eq 1 ]
  expect_message "restore: criu $version"
  [ "$(cell list -q)" = "$CID" ]
}

@test "checkpoint with --criu naming no program says which flag to fix" {
  cell_only
  start_counter
  run cell --criu "$BATS_TEST_TMPDIR/no-criu" checkpoint "$CID"
  [ "$status" -eq 1 ]
  expect_message "--criu \`$BATS_TEST_TMPDIR/no-criu\`: not an executable"
  status_is "$CID" running
}

@test "checkpoint of a container that is not running fails clearly and makes no image" {
  cell_only
  setup_counter
  cell_detached create "$CID"
  run cell checkpoint --image-path "$BATS_TEST_TMPDIR/img" "$CID"
  [ "$status" -eq 1 ]
  expect_message "container \`$CID\` cannot be checkpointed in created state"
  cell delete "$CID"
  set_args true
  cell_detached run -d "$CID-b"
  wait_for_status "$CID-b" stopped
  run cell checkpoint --image-path "$BATS_TEST_TMPDIR/img" "$CID-b"
  [ "$status" -eq 1 ]
  expect_message "cannot be checkpointed in stopped state"
  [ ! -e "$BATS_TEST_TMPDIR/img" ]
}

@test "checkpoint and restore refuse bad flags before doing anything" {
  cell_only
  start_counter
  run cell checkpoint --manage-cgroups-mode sometimes "$CID"
  [ "$status" -eq 1 ]
  expect_message "--manage-cgroups-mode \`sometimes\`: not soft, full, strict or ignore"
  run cell checkpoint --page-server nowhere "$CID"
  [ "$status" -eq 1 ]
  expect_message "--page-server \`nowhere\`: not ADDRESS:PORT"
  run cell restore --image-path "$BATS_TEST_TMPDIR/none" "$CID-b"
  [ "$status" -eq 1 ]
  expect_message "no checkpoint there"
  [ "$(cell list -q)" = "$CID" ]
  status_is "$CID" running
}

@test "a counter keeps counting after checkpoint and restore --detach --pid-file" {
  needs_working_criu
  start_counter
  cell checkpoint --image-path "$BATS_TEST_TMPDIR/img" "$CID"
  # Checkpointed without --leave-running: gone, as with runc.
  [ -z "$(cell list -q)" ]
  local at
  at=$(count)
  sleep 0.5
  [ "$(count)" -eq "$at" ]
  cell_detached restore -d --image-path "$BATS_TEST_TMPDIR/img" \
    --pid-file "$BATS_TEST_TMPDIR/pid" "$CID"
  status_is "$CID" running
  [ "$(cat "$BATS_TEST_TMPDIR/pid")" = "$(container_pid "$CID")" ]
  retry count_passes $((at + 2))
}

@test "checkpoint --leave-running leaves the original counting" {
  needs_working_criu
  start_counter
  cell checkpoint --leave-running --image-path "$BATS_TEST_TMPDIR/img" "$CID"
  status_is "$CID" running
  local at
  at=$(count)
  retry count_passes $((at + 2))
  [ -s "$BATS_TEST_TMPDIR/img/descriptors.json" ]
}

@test "a pre-dump then a dump with --parent-path restores a counter" {
  needs_working_criu
  start_counter
  cell checkpoint --pre-dump --image-path "$BATS_TEST_TMPDIR/pre" "$CID"
  status_is "$CID" running
  local at
  at=$(count)
  retry count_passes $((at + 1))
  cell checkpoint --parent-path ../pre --image-path "$BATS_TEST_TMPDIR/img" "$CID"
  at=$(count)
  cell_detached restore -d --image-path "$BATS_TEST_TMPDIR/img" "$CID"
  retry count_passes $((at + 2))
}

@test "checkpoint of a container with a terminal refuses at once, naming --console-socket" {
  cell_only
  local recvtty
  recvtty=$(helper_program recvtty)
  setup_bundle sleep 100
  update_config '.process.terminal = true'
  local sock=$BATS_TEST_TMPDIR/console.sock
  "$recvtty" -t 20 "$sock" >/dev/null 2>&1 3>&- &
  on_teardown "kill $!"
  wait_for_file "$sock"
  cell_detached run -d --console-socket "$sock" "$CID"
  run cell checkpoint --image-path "$BATS_TEST_TMPDIR/img" "$CID"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  expect_message "container \`$CID\` has a terminal (process.terminal): criu run as a program cannot give a restored pty to --console-socket"
  [ ! -e "$BATS_TEST_TMPDIR/img" ]
  status_is "$CID" running
}

@test "restore into a rootfs whose mount destination is a symlink to the host's / is refused before criu mounts anything" {
  cell_only
  setup_counter
  use_private_rootfs
  rmdir "$BUNDLE/rootfs/host"
  ln -s / "$BUNDLE/rootfs/host"
  mkdir "$BATS_TEST_TMPDIR/img"
  local before
  before=$(grep -c . /proc/self/mountinfo)
  run cell restore -d --image-path "$BATS_TEST_TMPDIR/img" "$CID"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  expect_message "restore: mount destination \`/host\` leads out of the rootfs"
  [ "$(grep -c . /proc/self/mountinfo)" -eq "$before" ]
  [ -z "$(cell list -q)" ]
}

# A free TCP port on loopback for criu's page server.
free_port() {
  local port
  for port in $(shuf -i 20000-40000 -n 20); do
    ! ss -Htln "sport = :$port" | grep -q . && echo "$port" && return
  done
  return 1
}

# --shell-job too: criu lets the process's session be outside what it
# dumps.
@test "a counter keeps counting after checkpoint --page-server --shell-job into criu's page server" {
  needs_working_criu
  start_counter
  local img=$BATS_TEST_TMPDIR/img port
  port=$(free_port)
  mkdir "$img"
  # The page server writes the memory into the same image directory, and
  # exits once the dump is done.
  "$CRIU_BIN" page-server -D "$img" --address 127.0.0.1 --port "$port" \
    -d --pidfile "$BATS_TEST_TMPDIR/ps.pid" -o "$img/page-server.log"
  on_teardown "kill \$(cat $BATS_TEST_TMPDIR/ps.pid)"
  cell checkpoint --page-server "127.0.0.1:$port" --shell-job --image-path "$img" "$CID"
  ls "$img"/pages-*.img
  local at
  at=$(count)
  cell_detached restore -d --shell-job --image-path "$img" "$CID"
  retry count_passes $((at + 2))
}

@test "a counter keeps counting after checkpoint and restore --lazy-pages, memory served on demand" {
  needs_working_criu
  "$CRIU_BIN" check --feature uffd-noncoop >/dev/null 2>&1 ||
    skip "this kernel has no userfaultfd for criu's lazy pages"
  start_counter
  local img=$BATS_TEST_TMPDIR/img port status=$BATS_TEST_TMPDIR/status
  port=$(free_port)
  mkdir "$img"
  mkfifo "$status"
  # The dump stays on as the page server until every page was fetched.
  cell checkpoint --lazy-pages --page-server "127.0.0.1:$port" \
    --status-fd 3 --image-path "$img" "$CID" 3>"$status" &
  local dump=$!
  [ "$(head -c1 "$status" | od -An -tx1 | tr -d ' ')" = 00 ] || { cat "$img/dump.log" >&2; false; }
  "$CRIU_BIN" lazy-pages --page-server --address 127.0.0.1 --port "$port" \
    -D "$img" -o "$img/lazy-pages.log" &
  local at
  at=$(count)
  cell_detached restore -d --lazy-pages --image-path "$img" "$CID-b"
  retry count_passes $((at + 2))
  wait "$dump"
  [ "$(cell list -q)" = "$CID-b" ]
}

# podman with its storage in the test's directory, the image made from the
# test rootfs (no registry), and cell as its runtime.
podman_cell() {
  local d=$BATS_TEST_TMPDIR/podman
  podman --root "$d/root" --runroot "$d/runroot" --tmpdir "$d/tmp" \
    --storage-driver vfs --cgroup-manager cgroupfs --events-backend file \
    --runtime "$CELL" "$@"
}

podman_cleanup() {
  podman_cell rm -af -t 0 >/dev/null 2>&1 || true
  podman_cell rmi -af >/dev/null 2>&1 || true
  awk -v d="$BATS_TEST_TMPDIR/podman/" 'index($5, d) == 1 { print $5 }' \
    /proc/self/mountinfo | sort -r | xargs -r umount -l
  local m
  for m in $(find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d -name libpod_parent); do
    find "$m" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# podman's log of the container: its last line, the counter.
podman_count() {
  podman_cell logs "$CID" 2>/dev/null | tail -n1
}

podman_count_passes() {
  [ "$(podman_count)" -gt "$1" ]
}

@test "podman container checkpoint and restore --runtime cell: the counter goes on, in podman's log" {
  needs_working_criu
  command -v podman >/dev/null || skip "podman is not installed"
  ensure_test_rootfs
  on_teardown podman_cleanup
  tar -C "$TEST_ROOTFS" -c . | podman_cell import -q - localhost/cell-criu:latest
  podman_cell run -d --network none --name "$CID" localhost/cell-criu:latest \
    sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done'
  retry podman_count_passes 2
  podman_cell container checkpoint "$CID"
  [ "$(podman_cell inspect --format '{{.State.Status}}' "$CID")" = exited ]
  local at
  at=$(podman_count)
  podman_cell container restore "$CID"
  [ "$(podman_cell inspect --format '{{.State.Status}}' "$CID")" = running ]
  retry podman_count_passes $((at + 2))
  # Restored, not restarted: the counter went on from where it was.
  podman_cell logs "$CID" | grep -qx "$((at + 1))"
  [ "$(podman_cell logs "$CID" | grep -cx 1)" -eq 1 ]
}

# A containerd of the test's own (as containerd.bats starts it), its
# runtime cell through containerd-shim-runc-v2 (--runc-binary).
ctrd() {
  command ctr --address "$CTRD/c.sock" --namespace "$CID" "$@"
}

start_containerd() {
  CTRD=$BATS_TEST_TMPDIR/containerd
  mkdir -p "$CTRD"
  [ -e /run/containerd ] && CTRD_HAD_RUN_DIR=1
  cat >"$CTRD/config.toml" <<EOC
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD/c.sock"
[ttrpc]
  address = "$CTRD/c.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
EOC
  containerd --config "$CTRD/config.toml" </dev/null >"$CTRD/log" 2>&1 3>&- &
  CTRD_PID=$!
  on_teardown stop_containerd
  retry ctrd version >/dev/null 2>&1
}

stop_containerd() {
  local c pid
  for c in $(ctrd container ls -q 2>/dev/null); do
    ctrd task kill -s KILL "$c" >/dev/null 2>&1 || true
    ctrd task delete -f "$c" >/dev/null 2>&1 || true
    ctrd container rm "$c" >/dev/null 2>&1 || true
  done
  kill "$CTRD_PID" 2>/dev/null || true
  wait "$CTRD_PID" 2>/dev/null || true
  for pid in $(grep -lzF -- "$CTRD/c.sock" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  awk -v d="$CTRD/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | xargs -r umount -l
  find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d -name "$CID" -exec rmdir {} + 2>/dev/null || true
  [ -n "${CTRD_HAD_RUN_DIR:-}" ] ||
    rmdir /run/containerd/fifo /run/containerd/s /run/containerd 2>/dev/null || true
}

# "TOKEN N": the token is drawn once, in the shell's memory.
ctrd_count() {
  ctrd task exec --exec-id "count-$RANDOM" "$CID" cat /tmp/count
}

ctrd_counted() {
  local token n
  read -r token n <<<"$(ctrd_count)"
  [ "$token" = "$1" ] && [ "$n" -gt "$2" ]
}

@test "containerd's checkpoint (ctr container checkpoint --task, restore --live) with cell: the counter goes on" {
  needs_working_criu
  command -v containerd >/dev/null && command -v ctr >/dev/null ||
    skip "containerd is not installed"
  ensure_test_rootfs
  start_containerd
  "$REPO/tests/helpers/mkoci-image" "$TEST_ROOTFS" localhost/cell-criu:latest "$CTRD/image.tar"
  ctrd image import --snapshotter native "$CTRD/image.tar" >/dev/null
  ctrd run -d --runc-binary "$CELL" --runc-root "$CTRD/runc" --snapshotter native \
    localhost/cell-criu:latest "$CID" \
    sh -c 't=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo $t $i >/tmp/count; sleep 0.1; done'
  retry eval '[ -n "$(ctrd_count)" ]'
  local token at
  read -r token at <<<"$(ctrd_count)"
  ctrd container checkpoint --task "$CID" localhost/cell-criu-checkpoint:1
  ctrd task kill -s KILL "$CID"
  retry eval '! ctrd task ls | grep -q "^$CID .*RUNNING"'
  ctrd task delete "$CID" >/dev/null
  ctrd container rm "$CID"
  ctrd container restore --live "$CID" localhost/cell-criu-checkpoint:1
  ctrd task ls | grep -q "^$CID .*RUNNING"
  # The restored shell counts on from its memory, with its token (its new
  # snapshot's /tmp/count starts empty); a restarted one would draw anew.
  retry ctrd_counted "$token" $((at + 2))
}
