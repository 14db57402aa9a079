#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# What the runtime refuses, and that a refusal leaves nothing behind (the
# teardown's leak check runs after each test).

load helpers

# nothing_left ID: no container, no state, no process.
nothing_left() {
  run -1 cell state "$1"
  [ -z "$(cell list -q)" ]
  [ -z "$(state_entries)" ]
  [ -z "$(leaked_pids)" ]
}

@test "malformed config.json" {
  setup_bundle true
  printf '{\n  "ociVersion": "1.0.2",\n  "process": {\n' >config.json
  run -1 cell_detached create "$CID"
  expect_message "line "
  expect_message "config.json"
  nothing_left "$CID"
}

@test "config.json that is no object" {
  setup_bundle true
  echo '[1, 2]' >config.json
  run -1 cell_detached create "$CID"
  nothing_left "$CID"
}

@test "missing config.json" {
  setup_bundle true
  rm config.json
  run -1 cell_detached create "$CID"
  expect_message "config.json"
  nothing_left "$CID"
}

@test "empty process.args" {
  setup_bundle true
  update_config '.process.args = []'
  run -1 cell_detached create "$CID"
  expect_message "process.args"
  nothing_left "$CID"
}

@test "process.args of the wrong type" {
  setup_bundle true
  update_config '.process.args = "sh -c true"'
  run -1 cell_detached create "$CID"
  expect_message "process.args"
  nothing_left "$CID"
}

@test "a number of the wrong type (uid as a string)" {
  setup_bundle true
  update_config '.process.user.uid = "0"'
  run -1 cell_detached create "$CID"
  expect_message "process.user.uid"
  nothing_left "$CID"
}

@test "missing rootfs" {
  setup_bundle true
  update_config '.root.path = $p' --arg p "$BATS_TEST_TMPDIR/no-such-rootfs"
  run -1 cell_detached create "$CID"
  expect_message "$BATS_TEST_TMPDIR/no-such-rootfs"
  nothing_left "$CID"
}

@test "unknown id: state, start, kill, delete exit 1" {
  mkdir -p "$ROOT"
  for cmd in state start kill delete; do
    run -1 cell "$cmd" nosuchcontainer
    [[ "$output" == *"does not exist"* ]]
  done
}

@test "duplicate id" {
  setup_bundle sleep 1000
  cell_detached create "$CID"
  pid=$(container_pid "$CID")
  run -1 cell_detached create "$CID"
  [[ "$output" == *exists* ]]
  # The first container is untouched.
  [ "$(container_status "$CID")" = created ]
  [ "$(container_pid "$CID")" = "$pid" ]
}

@test "delete -f frees the id a create killed before its state left behind" {
  setup_bundle true
  # What a create killed with -9 between its mkdir and state.json leaves.
  mkdir -p "$ROOT/$CID"
  run -1 cell_detached create "$CID"
  [[ "$output" == *exists* ]]
  run -0 cell delete -f "$CID"
  [ ! -e "$ROOT/$CID" ]
  run -0 cell run "$CID"
}

@test "delete -f of a container whose state cannot be read leaves it running and says how to proceed" {
  cell_only
  setup_bundle sleep 1000
  cell_detached run -d "$CID"
  pid=$(container_pid "$CID")
  cp "$ROOT/$CID/state.json" "$BATS_TEST_TMPDIR/state.json"
  echo garbage >"$ROOT/$CID/state.json"
  run ! cell delete -f "$CID"
  expect_message "state cannot be read"
  kill -0 "$pid"
  [ -d "$ROOT/$CID" ]
  cp "$BATS_TEST_TMPDIR/state.json" "$ROOT/$CID/state.json"
  cell delete -f "$CID"
}

@test "invalid ids: a/b, .., empty" {
  setup_bundle true
  for id in a/b .. ../escape ""; do
    run ! cell_detached create "$id"
    [ -z "$(state_entries)" ]
  done
  [ ! -e "$BATS_TEST_TMPDIR/escape" ]
  nothing_left x
}

@test "invalid ids: a leading dot" {
  cell_only
  setup_bundle true
  run -1 cell_detached create .x
  nothing_left .x
}

@test "args[0] not found in the container fails create" {
  setup_bundle /no/such/program
  run -1 cell_detached create "$CID"
  expect_message "/no/such/program"
  nothing_left "$CID"
}

@test "args[0] not in the PATH fails create" {
  setup_bundle no-such-program-in-path
  run -1 cell_detached create "$CID"
  expect_message "no-such-program-in-path"
  nothing_left "$CID"
}

@test "a mount that fails (unknown filesystem type) fails create" {
  setup_bundle true
  update_config '.mounts += [{destination: "/mnt", type: "no-such-fs", source: "none"}]'
  run -1 cell_detached create "$CID"
  expect_message "/mnt"
  nothing_left "$CID"
}

@test "a bind mount of a missing source fails create" {
  setup_bundle true
  update_config '.mounts += [{destination: "/mnt", type: "bind", source: $s, options: ["bind"]}]' \
    --arg s "$BATS_TEST_TMPDIR/no-such-source"
  run -1 cell_detached create "$CID"
  expect_message "no-such-source"
  nothing_left "$CID"
}

@test "a relative mount destination is refused" {
  cell_only
  setup_bundle true
  update_config '.mounts += [{destination: "mnt", type: "tmpfs", source: "tmpfs"}]'
  run -1 cell_detached create "$CID"
  expect_message "destination"
  nothing_left "$CID"
}

@test "ociVersion 2.0.0 is refused" {
  cell_only
  setup_bundle true
  update_config '.ociVersion = "2.0.0"'
  run -1 cell_detached create "$CID"
  expect_message "2.0.0"
  nothing_left "$CID"
}

@test "an unknown namespace type is refused" {
  setup_bundle true
  update_config '.linux.namespaces += [{type: "no-such-ns"}]'
  run -1 cell_detached create "$CID"
  expect_message "no-such-ns"
  nothing_left "$CID"
}

@test "a uid outside the user namespace's mappings fails" {
  setup_bundle true
  use_user_namespace
  update_config '.process.user.uid = 70000'
  run ! cell_detached create "$CID"
  nothing_left "$CID"
}

@test "an unknown rlimit is refused" {
  setup_bundle true
  update_config '.process.rlimits = [{type: "RLIMIT_NOSUCH", soft: 1, hard: 1}]'
  run -1 cell_detached create "$CID"
  expect_message "RLIMIT_NOSUCH"
  nothing_left "$CID"
}

@test "a cwd that is not absolute is refused" {
  setup_bundle true
  update_config '.process.cwd = "tmp"'
  run -1 cell_detached create "$CID"
  expect_message "process.cwd"
  nothing_left "$CID"
}

@test "unknown command and unknown option" {
  run ! "$CELL" no-such-command
  run ! "$CELL" --no-such-option list
  run ! cell list --no-such-option
}

@test "missing container id" {
  mkdir -p "$ROOT"
  for cmd in create start run state kill delete; do
    run ! cell "$cmd"
  done
}
