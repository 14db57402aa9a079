#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# Runtime behaviours runc's users and scripts rely on: run --keep, exec
# --ignore-paused, process.terminal without a terminal on stdin, and a
# container cgroup that already exists (frozen, or with processes in it).
# The same tests pass against runc 1.1.5: CELL=/usr/sbin/runc bats FILE.

load helpers

@test "run --keep: the stopped container stays, with its cgroup, until delete" {
  setup_bundle sh -c 'exit 3'
  run -3 cell run --keep "$CID" </dev/null
  run -0 cell state "$CID"
  [ "$(jq -r .status <<<"$output")" = stopped ]
  run -0 cell list -q
  [ "$output" = "$CID" ]
  # runc 1.1.5 keeps the cgroup too: delete removes it.
  [ -n "$(leaked_cgroups)" ]
  run -0 cell delete "$CID"
  run ! cell state "$CID"
  [ -z "$(state_entries)" ]
  [ -z "$(leaked_cgroups)" ]
}

@test "run --keep: the id stays taken until delete" {
  setup_bundle true
  run -0 cell run --keep "$CID" </dev/null
  run ! cell run --keep "$CID" </dev/null
  [ "$(container_status "$CID")" = stopped ]
  run -0 cell delete "$CID"
  run -0 cell run "$CID" </dev/null
  [ -z "$(state_entries)" ]
}

# ---- exec --ignore-paused ----------------------------------------------------

@test "exec into a paused container is refused without --ignore-paused" {
  setup_bundle sleep 1000
  cell_detached run -d "$CID"
  cell pause "$CID"
  run ! cell exec "$CID" sh -c 'touch /host/ran'
  [[ "$output" == *"cannot exec in a paused container (use --ignore-paused to override)"* ]]
  cell resume "$CID"
  [ ! -e "$HOSTDIR/ran" ]
}

@test "exec --ignore-paused: the process runs once the container is resumed" {
  setup_bundle sleep 1000
  cell_detached run -d "$CID"
  cell pause "$CID"
  # The new process joins the frozen cgroup and freezes before it execs:
  # exec, even with -d, returns only after resume (runc's too).
  timeout -k 5 60 "$CELL" --root "$ROOT" exec --ignore-paused -d "$CID" \
    sh -c 'touch /host/ran' </dev/null >"$BATS_TEST_TMPDIR/exec.out" 2>&1 3>&- &
  exec_pid=$!
  on_teardown "kill -9 $exec_pid"
  sleep 1
  [ ! -e "$HOSTDIR/ran" ]
  kill -0 "$exec_pid" # still waiting for its frozen process
  [ "$(container_status "$CID")" = paused ]
  cell resume "$CID"
  wait "$exec_pid" || { cat "$BATS_TEST_TMPDIR/exec.out" >&2; false; }
  wait_for_file "$HOSTDIR/ran"
  [ "$(container_status "$CID")" = running ]
}
