#!/usr/bin/env bats
# shellcheck disable=SC2016,SC2030,SC2031 # jq filters and container scripts are single-quoted on purpose; a test may point ROOT elsewhere
# The commands that need no container: spec, features, --version, --help;
# and global options.

load helpers

@test "spec writes a config.json that runs" {
  mkdir -p "$BATS_TEST_TMPDIR/b"
  cd "$BATS_TEST_TMPDIR/b"
  run -0 "$CELL" spec
  jq -e '.ociVersion | test("^1\\.")' config.json
  jq -e '.root.path == "rootfs"' config.json
  jq -e '.process.args | length > 0' config.json
  jq -e '.process.terminal == true' config.json
  jq -e '.linux.namespaces | map(.type) | (index("pid") and index("mount"))' config.json

  # And it is a config the runtime takes, once it has a rootfs.
  ensure_test_rootfs
  mkdir -p "$ROOT"
  jq --arg r "$TEST_ROOTFS" '.root.path = $r | .process.terminal = false
    | .process.args = ["sh", "-c", "echo from-default-spec"]' config.json >c && mv c config.json
  run -0 cell run "$CID"
  [ "$output" = from-default-spec ]
}

@test "spec --bundle writes into that directory" {
  mkdir -p "$BATS_TEST_TMPDIR/b"
  run -0 "$CELL" spec --bundle "$BATS_TEST_TMPDIR/b"
  jq -e . "$BATS_TEST_TMPDIR/b/config.json" >/dev/null
}

@test "spec refuses to overwrite config.json" {
  mkdir -p "$BATS_TEST_TMPDIR/b"
  cd "$BATS_TEST_TMPDIR/b"
  echo '{"mine": true}' >config.json
  run -1 "$CELL" spec
  [[ "$output" == *config.json* ]]
  [ "$(cat config.json)" = '{"mine": true}' ]
}

@test "spec --rootless maps the caller into a user namespace" {
  mkdir -p "$BATS_TEST_TMPDIR/b"
  cd "$BATS_TEST_TMPDIR/b"
  run -0 "$CELL" spec --rootless
  jq -e '.linux.namespaces | map(.type) | index("user")' config.json
  jq -e --argjson uid "$(id -u)" '.linux.uidMappings[0] == {containerID: 0, hostID: $uid, size: 1}' config.json
  jq -e --argjson gid "$(id -g)" '.linux.gidMappings[0] == {containerID: 0, hostID: $gid, size: 1}' config.json
  # Without the network namespace; no /sys of its own.
  jq -e '.linux.namespaces | map(.type) | index("network") | not' config.json
}

@test "features prints the supported versions and hooks as JSON" {
  run -0 "$CELL" features
  jq -e '.ociVersionMin | test("^1\\.0\\.")' <<<"$output"
  jq -e '.ociVersionMax | test("^1\\.")' <<<"$output"
  jq -e '.hooks | index("createRuntime") and index("poststop")' <<<"$output"
  jq -e '.linux.namespaces | index("pid") and index("user")' <<<"$output"
  jq -e '.mountOptions | index("rbind") and index("ro")' <<<"$output"
}

@test "--version" {
  run -0 "$CELL" --version
  [[ "${lines[0]}" == *version* ]]
  # The spec version it implements.
  [[ "$output" == *"spec: 1."* ]]
  run -0 "$CELL" -v
}

@test "--help of the program and of every command exits 0" {
  run -0 "$CELL" --help
  [[ "$output" == *create* && "$output" == *delete* ]]
  for cmd in create start run state kill delete list spec features; do
    run -0 "$CELL" "$cmd" --help
    [[ "$output" == *"$cmd"* ]] || { echo "$cmd --help: $output"; false; }
  done
}

@test "--root is created when missing, and holds one directory per container" {
  setup_bundle sleep 1000
  ROOT=$BATS_TEST_TMPDIR/a/new/root
  cell_detached create "$CID"
  [ -d "$ROOT/$CID" ]
  run -0 cell list -q
  [ "$output" = "$CID" ]
}

@test "the default root is /run/<program>" {
  setup_bundle sleep 1000
  default=/run/cell
  if is_runc; then default=/run/runc; fi
  "$CELL" create "$CID" </dev/null >/dev/null 2>&1 3>&-
  on_teardown "$CELL delete -f $CID"
  [ -d "$default/$CID" ]
  "$CELL" delete -f "$CID"
  [ ! -e "$default/$CID" ]
}

@test "--log writes errors to a file, --log-format json as JSON lines" {
  mkdir -p "$ROOT"
  run ! cell --log "$BATS_TEST_TMPDIR/log.txt" state nosuchcontainer
  grep -q "does not exist" "$BATS_TEST_TMPDIR/log.txt"

  run ! cell --log "$BATS_TEST_TMPDIR/log.json" --log-format json state nosuchcontainer
  jq -e 'select(.msg | test("does not exist")) | .level == "error" and (.time | type == "string")' \
    "$BATS_TEST_TMPDIR/log.json"
}
