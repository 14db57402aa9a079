#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# runc's command line as its users and their scripts rely on it: flags after
# the container id, exit codes, log lines, --version's layout, and the
# phrases in error messages that clients (containerd, podman) match on;
# docs/client-phrases.md says which client needs which phrase.  Every test
# passes against runc 1.1.5: CELL=/usr/sbin/runc bats tests/bats/runc-cli.bats

load helpers

start_sleeper() {
  setup_bundle sleep 1000
  cell_detached run -d "$CID"
  wait_for_status "$CID" running
}

stop_container() {
  cell kill "$CID" KILL
  wait_for_status "$CID" stopped
}

# ---- flags after the container id ------------------------------------------

@test "flags after the container id: delete ID --force, kill ID KILL --all, state ID --help" {
  start_sleeper
  run -0 cell state "$CID" --help
  [[ "$output" == *state* ]]
  run -0 cell kill "$CID" KILL --all
  wait_for_status "$CID" stopped
  run -0 cell delete "$CID" --force
  run -1 cell state "$CID"
  [[ "$output" == *"does not exist"* ]]
}

@test "flags after the container id: update ID --pids-limit 10 sets the limit" {
  requires_kernel_file /sys/fs/cgroup/pids
  start_sleeper
  run -0 cell update "$CID" --pids-limit 10
  run -0 cell events --stats "$CID"
  jq -e '.data.pids.limit == 10' <<<"$output"
  # And with the flag and its value before the id, as always.
  run -0 cell update --pids-limit 20 "$CID"
  run -0 cell events "$CID" --stats
  jq -e '.data.pids.limit == 20' <<<"$output"
}

@test "flags after the container id: create ID --bundle DIR --pid-file F, run ID --detach, pause/resume/start ID --help" {
  setup_bundle sleep 1000
  cd "$BATS_TEST_TMPDIR"
  cell_detached create "$CID" --bundle "$BUNDLE" --pid-file "$BATS_TEST_TMPDIR/a.pid"
  [ "$(cat "$BATS_TEST_TMPDIR/a.pid")" = "$(container_pid "$CID")" ]
  for cmd in start pause resume; do
    run -0 cell "$cmd" "$CID" --help
    [[ "$output" == *"$cmd"* ]]
  done
  # --help answered: nothing was started.
  [ "$(container_status "$CID")" = created ]
  cell_detached run "$CID-b" --bundle "$BUNDLE" --detach --pid-file "$BATS_TEST_TMPDIR/b.pid"
  [ "$(container_status "$CID-b")" = running ]
  [ "$(cat "$BATS_TEST_TMPDIR/b.pid")" = "$(container_pid "$CID-b")" ]
}

@test "exec keeps what follows the id: exec ID --pid-file F true runs a program named --pid-file" {
  start_sleeper
  run -255 cell exec "$CID" --pid-file "$BATS_TEST_TMPDIR/exec.pid" true
  [[ "$output" == *"executable file not found"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/exec.pid" ]
}

# ---- exit codes --------------------------------------------------------------

@test "exec passes the process's exit status through" {
  start_sleeper
  run -7 cell exec "$CID" sh -c 'exit 7'
  run -0 cell exec "$CID" true
}

@test "exec that cannot run exits 255: unknown container, missing program, bad --pid-file" {
  start_sleeper
  run -255 cell exec "$CID-nope" true
  [[ "$output" == *"does not exist"* ]]
  run -255 cell exec "$CID" no-such-program
  run -255 cell exec --pid-file "$BATS_TEST_TMPDIR/no/such/dir/pid" "$CID" true
  # The container is unharmed.
  run -0 cell exec "$CID" true
}

@test "exec in a paused or stopped container exits 255" {
  start_sleeper
  cell pause "$CID"
  run -255 cell exec "$CID" true
  [[ "$output" == *paused* ]]
  cell resume "$CID"
  stop_container
  run -255 cell exec "$CID" true
  [[ "$output" == *stopped* ]]
}

@test "exec with a bad usage exits 1, not 255" {
  mkdir -p "$ROOT"
  run -1 cell exec
  run -1 cell exec --no-such-flag "$CID" true
}

@test "kill ID 0 exits 0 while the container is created or runs, 1 once it stopped" {
  setup_bundle sleep 1000
  cell_detached create "$CID"
  run -0 cell kill "$CID" 0
  cell start "$CID"
  run -0 cell kill "$CID" 0
  [ "$(container_status "$CID")" = running ]
  stop_container
  run -1 cell kill "$CID" 0
  [[ "$output" == *"container not running"* ]]
}

@test "kill --all of a stopped container succeeds, plain kill says not running" {
  start_sleeper
  stop_container
  run -0 cell kill --all "$CID" KILL
  run -1 cell kill "$CID" KILL
  [[ "$output" == *"container not running"* ]]
}

@test "delete --force of a container that does not exist exits 0 and prints nothing" {
  mkdir -p "$ROOT"
  run -0 cell delete --force "$CID-nope"
  [ -z "$output" ]
  run -0 cell delete "$CID-nope" --force
  [ -z "$output" ]
  run -1 cell delete "$CID-nope"
  [[ "$output" == *"does not exist"* ]]
}

# ---- logging -------------------------------------------------------------------

# A logrus text line, as runc writes them.
LOGRUS_TEXT='^time="[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z" level=[a-z]+ msg='

@test "--debug writes level=debug lines in logrus's text layout to stderr" {
  setup_bundle sleep 1000
  timeout -k 5 30 "$CELL" --root "$ROOT" --debug create "$CID" \
    </dev/null >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" 3>&-
  grep -E "$LOGRUS_TEXT" "$BATS_TEST_TMPDIR/err" | grep -q ' level=debug '
  # Nothing on stderr is in another layout.
  run ! grep -vE "$LOGRUS_TEXT" "$BATS_TEST_TMPDIR/err"
}

@test "--debug --log FILE: the debug lines go to the file in logrus's text layout, none to stderr" {
  setup_bundle sleep 1000
  log=$BATS_TEST_TMPDIR/log.txt
  timeout -k 5 30 "$CELL" --root "$ROOT" --log "$log" --debug create "$CID" \
    </dev/null >/dev/null 2>"$BATS_TEST_TMPDIR/err" 3>&-
  grep -E "$LOGRUS_TEXT" "$log" | grep -q ' level=debug '
  run ! grep -vE "$LOGRUS_TEXT" "$log"
  run ! grep -q 'level=debug' "$BATS_TEST_TMPDIR/err"
}

@test "--debug --log FILE --log-format json: debug and error lines as JSON in the file" {
  setup_bundle sleep 1000
  log=$BATS_TEST_TMPDIR/log.json
  "$CELL" --root "$ROOT" --log "$log" --log-format json --debug create "$CID" \
    </dev/null >/dev/null 2>&1 3>&-
  jq -se 'map(select(.level == "debug")) | length > 0' "$log"
  jq -se 'all(.time | test("^[0-9-]+T[0-9:]+Z$"))' "$log"
  run -1 cell --log "$log" --log-format json state "$CID-nope"
  # The shim reads the last level=error line's msg for the error.
  jq -se 'map(select(.level == "error")) | last | .msg | test("does not exist")' "$log"
}

@test "--log FILE in text: an error is a level=error logrus line" {
  mkdir -p "$ROOT"
  log=$BATS_TEST_TMPDIR/log.txt
  run -1 cell --log "$log" state "$CID-nope"
  [[ "$output" == *"does not exist"* ]]
  grep -E "${LOGRUS_TEXT}\".*does not exist.*\"\$" "$log" | grep -q ' level=error '
}

@test "--log-format json without --log: the error on stderr is a JSON line" {
  mkdir -p "$ROOT"
  run -1 --separate-stderr cell --log-format json state "$CID-nope"
  # shellcheck disable=SC2154 # set by bats' run
  jq -e '.level == "error" and (.msg | test("does not exist"))' <<<"$stderr"
}

# ---- --version -------------------------------------------------------------------

@test "--version prints version, commit, spec and libseccomp lines as runc does" {
  run -0 "$CELL" --version
  [[ "${lines[0]}" =~ ^[a-z]+\ version\ [0-9]+\.[0-9]+\.[0-9]+ ]]
  is_runc || [[ "${lines[0]}" == "cell version "* ]]
  [[ "${lines[1]}" =~ ^commit:\ .+ ]]
  [[ "${lines[2]}" =~ ^spec:\ 1\.[0-9]+\.[0-9]+ ]]
  printf '%s\n' "${lines[@]}" | grep -qE '^libseccomp: [0-9]+\.[0-9]+\.[0-9]+$'
}

# ---- phrases that clients match on (docs/client-phrases.md) ------------------------

@test "an unknown id says 'does not exist' for every command (containerd: no such container; podman: exited)" {
  mkdir -p "$ROOT"
  for cmd in state start kill delete pause resume ps events update; do
    run -1 cell "$cmd" "$CID-nope"
    [[ "$output" == *"does not exist"* ]] || { echo "$cmd: $output"; false; }
  done
}

@test "kill of a stopped container says 'container not running' (containerd: process already finished)" {
  start_sleeper
  stop_container
  for sig in TERM KILL 0; do
    run -1 cell kill "$CID" "$sig"
    [[ "$output" == *"container not running"* ]]
  done
}

@test "exec of a missing program says 'executable file not found in \$PATH' (podman: exit 127)" {
  start_sleeper
  run -255 cell exec "$CID" no-such-program
  [[ "$output" == *'executable file not found in $PATH'* ]]
  run -255 cell exec "$CID" /no/such/program
  [[ "$output" == *"no such file or directory"* || "$output" == *"No such file or directory"* ]]
}

@test "exec of a file that is not executable says 'permission denied' (podman: exit 126)" {
  start_sleeper
  run -255 cell exec "$CID" /etc/passwd
  [[ "${output,,}" == *"permission denied"* ]]
}

@test "create of an id that exists says 'already exists'" {
  start_sleeper
  run -1 cell_detached create "$CID"
  [[ "$output" == *"already exists"* ]]
}
