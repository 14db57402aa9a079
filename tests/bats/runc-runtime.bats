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
