#!/usr/bin/env bats
# cell checkpoint and cell restore, with criu.  Where criu works (the VM of
# `make check-criu`: Debian 12's kernel 6.1 and criu 3.17) a busybox
# counter is checkpointed and restored; where it cannot (kernels from 6.13
# on with criu 3.17, or no criu at all), checkpoint must refuse at once and
# touch nothing.  The tests of each kind skip on the other, saying why.

load helpers

# `criu check` is slow in the VM: asked once for the whole file.
setup_file() {
  CRIU_BIN=$(PATH=$PATH:/usr/sbin:/sbin command -v criu || true)
  CRIU_WORKS=no
  CRIU_REASON="criu is not installed"
  if [ -n "$CRIU_BIN" ]; then
    CRIU_REASON=$("$CRIU_BIN" check 2>&1 | grep -m1 Error | sed 's/^Error ([^)]*): //')
    if "$CRIU_BIN" check >/dev/null 2>&1; then
      CRIU_WORKS=yes
    fi
  fi
  export CRIU_BIN CRIU_WORKS CRIU_REASON
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
