#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# create / start / state / kill / delete / run, seen through the CLI and
# through what the container does.

load helpers

# A container that says it started, then waits for /host/stop.
wait_for_stop_script='echo "$$" > /host/started; while [ ! -e /host/stop ]; do sleep 0.05; done'

@test "create, start, state, delete: the whole lifecycle" {
  setup_bundle sh -c "$wait_for_stop_script"
  cell_detached create "$CID"

  run -0 cell state "$CID"
  [ "$(jq -r .status <<<"$output")" = created ]
  pid=$(jq -r .pid <<<"$output")
  [ "$pid" -gt 0 ]
  kill -0 "$pid"
  # Created means set up but not started: the program has not been exec'd.
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline")" != *"/host/started"* ]]
  [ ! -e "$HOSTDIR/started" ]

  run -0 cell start "$CID"
  wait_for_file "$HOSTDIR/started"
  [ "$(container_status "$CID")" = running ]
  # The program runs as the pid state reported, as pid 1 of its namespace.
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline")" == *"/host/started"* ]]
  [ "$(cat "$HOSTDIR/started")" = 1 ]

  touch "$HOSTDIR/stop"
  wait_for_status "$CID" stopped
  run -0 cell state "$CID"
  [ "$(jq -r .id <<<"$output")" = "$CID" ]

  run -0 cell delete "$CID"
  run -1 cell state "$CID"
  run -0 cell list -q
  [ -z "$output" ]
  [ -z "$(state_entries)" ]
}

@test "start of a started container fails" {
  setup_bundle sleep 1000
  cell_detached create "$CID"
  cell start "$CID"
  wait_for_status "$CID" running
  run ! cell start "$CID"
  [ "$(container_status "$CID")" = running ]
}

@test "run exits with the container's exit code and removes the container" {
  setup_bundle sh -c 'echo out; echo err >&2; exit 42'
  run -42 cell run "$CID"
  [[ "$output" == *out* ]]
  [[ "$output" == *err* ]]
  run -0 cell list -q
  [ -z "$output" ]
  run -1 cell state "$CID"
}

@test "run exits 0 when the container does" {
  setup_bundle true
  run -0 cell run "$CID"
}

@test "run exits with 128+N when the container is killed by signal N" {
  # Without a pid namespace the shell is no namespace init, so it can
  # kill itself.
  setup_bundle sh -c 'kill -KILL $$'
  update_config 'del(.linux.namespaces[] | select(.type == "pid"))'
  run -137 cell run "$CID"
}

@test "run exits with 128+9 when the container is killed with cell kill" {
  setup_bundle sh -c "$wait_for_stop_script"
  "$CELL" --root "$ROOT" run "$CID" </dev/null >/dev/null 2>&1 3>&- &
  runner=$!
  wait_for_file "$HOSTDIR/started"
  cell kill "$CID" KILL
  rc=0
  wait "$runner" || rc=$?
  [ "$rc" -eq 137 ]
}

@test "run -d returns at once and leaves the container running" {
  setup_bundle sh -c "$wait_for_stop_script"
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/started"
  [ "$(container_status "$CID")" = running ]
  touch "$HOSTDIR/stop"
  wait_for_status "$CID" stopped
  # Unlike run without -d, the container stays until deleted.
  run -0 cell delete "$CID"
}

@test "run forwards SIGTERM to the container" {
  setup_bundle sh -c 'trap "exit 7" TERM; touch /host/ready; sleep 1000 & wait'
  "$CELL" --root "$ROOT" run "$CID" </dev/null >/dev/null 2>&1 3>&- &
  runner=$!
  wait_for_file "$HOSTDIR/ready"
  kill -TERM "$runner"
  rc=0
  wait "$runner" || rc=$?
  [ "$rc" -eq 7 ]
}

# A container that records the signal it gets (its pid 1 ignores signals
# it has no handler for).
trap_script='for s in TERM USR1; do trap "echo $s > /host/signal; exit 3" $s; done
touch /host/ready; sleep 1000 & wait'

@test "kill without a signal sends SIGTERM" {
  setup_bundle sh -c "$trap_script"
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/ready"
  run -0 cell kill "$CID"
  wait_for_status "$CID" stopped
  [ "$(cat "$HOSTDIR/signal")" = TERM ]
}

@test "kill ID TERM and kill ID SIGUSR1 deliver those signals" {
  setup_bundle sh -c "$trap_script"
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/ready"
  run -0 cell kill "$CID" TERM
  wait_for_status "$CID" stopped
  [ "$(cat "$HOSTDIR/signal")" = TERM ]
  cell delete "$CID"

  rm "$HOSTDIR/ready" "$HOSTDIR/signal"
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/ready"
  run -0 cell kill "$CID" SIGUSR1
  wait_for_status "$CID" stopped
  [ "$(cat "$HOSTDIR/signal")" = USR1 ]
}

@test "kill ID 9 and kill ID SIGKILL stop the container" {
  setup_bundle sleep 1000
  for sig in 9 SIGKILL KILL; do
    cell_detached run -d "$CID"
    pid=$(container_pid "$CID")
    run -0 cell kill "$CID" "$sig"
    wait_for_status "$CID" stopped
    retry process_gone "$pid"
    cell delete "$CID"
  done
}

@test "kill with an invalid signal fails and the container keeps running" {
  setup_bundle sleep 1000
  cell_detached run -d "$CID"
  run ! cell kill "$CID" NOSUCHSIGNAL
  run ! cell kill "$CID" 12345
  [ "$(container_status "$CID")" = running ]
}

@test "kill --all signals every process of the container" {
  # pid 1 ignores TERM once its child is started, and reports how the
  # child ended; only a signal sent to all processes reaches the child.
  setup_bundle sh -c 'sleep 1000 & trap "" TERM; touch /host/ready
    wait $!; echo $? > /host/child; exec sleep 1000'
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/ready"
  run -0 cell kill --all "$CID" TERM
  wait_for_file "$HOSTDIR/child"
  [ "$(cat "$HOSTDIR/child")" = 143 ]
  [ "$(container_status "$CID")" = running ]
}

@test "delete of a running container fails without -f and works with it" {
  setup_bundle sleep 1000
  cell_detached run -d "$CID"
  pid=$(container_pid "$CID")
  run -1 cell delete "$CID"
  [ "$(container_status "$CID")" = running ]
  kill -0 "$pid"

  run -0 cell delete -f "$CID"
  run -1 cell state "$CID"
  retry process_gone "$pid"
}

@test "delete of a created container kills its process" {
  setup_bundle sleep 1000
  cell_detached create "$CID"
  pid=$(container_pid "$CID")
  run -0 cell delete "$CID"
  run -1 cell state "$CID"
  retry process_gone "$pid"
}

@test "--pid-file of create and run -d holds the container's pid" {
  setup_bundle sleep 1000
  cell_detached create --pid-file "$BATS_TEST_TMPDIR/create.pid" "$CID"
  [ "$(cat "$BATS_TEST_TMPDIR/create.pid")" = "$(container_pid "$CID")" ]
  cell delete -f "$CID"

  cell_detached run -d --pid-file "$BATS_TEST_TMPDIR/run.pid" "$CID"
  pid=$(cat "$BATS_TEST_TMPDIR/run.pid")
  [ "$pid" = "$(container_pid "$CID")" ]
  [ "$(tr '\0' ' ' <"/proc/$pid/cmdline")" = "sleep 1000 " ]
}

@test "--bundle names the bundle; state reports it absolute" {
  setup_bundle true
  cd "$BATS_TEST_TMPDIR"
  cell_detached create --bundle bundle "$CID"
  run -0 cell state "$CID"
  [ "$(jq -r .bundle <<<"$output")" = "$BUNDLE" ]
}

@test "state has the OCI fields" {
  setup_bundle sleep 1000
  update_config '.annotations = {"org.example.key": "value", "x": ""}'
  before=$(date +%s)
  cell_detached create "$CID"
  run -0 cell state "$CID"
  state=$output

  jq -e '.ociVersion | type == "string" and test("^1\\.[0-9]+\\.[0-9]+")' <<<"$state"
  [ "$(jq -r .id <<<"$state")" = "$CID" ]
  [ "$(jq -r .status <<<"$state")" = created ]
  jq -e '.pid | type == "number" and . > 0' <<<"$state"
  [ "$(jq -r .bundle <<<"$state")" = "$BUNDLE" ]
  [ "$(jq -r .rootfs <<<"$state")" = "$TEST_ROOTFS" ]
  jq -e '.owner | type == "string"' <<<"$state"
  [ "$(jq -r '.annotations["org.example.key"]' <<<"$state")" = value ]
  jq -e '.annotations.x == ""' <<<"$state"

  created=$(jq -r .created <<<"$state")
  [[ "$created" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$ ]]
  t=$(date -d "$created" +%s)
  [ "$t" -ge $((before - 1)) ]
  [ "$t" -le $(($(date +%s) + 1)) ]

  cell start "$CID"
  wait_for_status "$CID" running
  [ "$(cell state "$CID" | jq -r .created)" = "$created" ]
}

@test "state of a bundle with a relative root.path has an absolute rootfs" {
  setup_bundle true
  use_private_rootfs
  cell_detached create "$CID"
  [ "$(cell state "$CID" | jq -r .rootfs)" = "$BUNDLE/rootfs" ]
}

@test "list shows containers as a table, ids (-q) and json" {
  setup_bundle sleep 1000
  cell_detached create "$CID-a"
  cell_detached run -d "$CID-b"

  run -0 cell list -q
  [ "$output" = "$CID-a"$'\n'"$CID-b" ]

  run -0 cell list
  read -ra header <<<"${lines[0]}"
  [ "${header[*]}" = "ID PID STATUS BUNDLE CREATED OWNER" ]
  [ "${#lines[@]}" -eq 3 ]
  [[ "${lines[1]}" == "$CID-a "*created*"$BUNDLE"* ]]
  [[ "${lines[2]}" == "$CID-b "*running*"$BUNDLE"* ]]

  run -0 cell list -f json
  jq -e 'length == 2' <<<"$output"
  jq -e --arg a "$CID-a" --arg b "$CID-b" --arg bundle "$BUNDLE" '
    (map(select(.id == $a))[0] | .status == "created" and .pid > 0
       and .bundle == $bundle and (.created | type == "string"))
    and (map(select(.id == $b))[0].status == "running")' <<<"$output"
}

@test "list of an empty root prints no container" {
  mkdir -p "$ROOT"
  run -0 cell list -q
  [ -z "$output" ]
  run -0 cell list -f json
  jq -e 'length == 0' <<<"$output"
}

@test "concurrent start and delete of one container leave a consistent state" {
  setup_bundle sleep 1000
  for _ in 1 2 3 4 5 6; do
    cell_detached create "$CID"
    cell start "$CID" >/dev/null 2>&1 3>&- &
    starter=$!
    cell delete "$CID" >/dev/null 2>&1 3>&- &
    deleter=$!
    wait "$starter" || true
    wait "$deleter" || true

    if cell state "$CID" >"$BATS_TEST_TMPDIR/state.json" 2>/dev/null; then
      # start won and delete refused a running container.
      [ "$(jq -r .status "$BATS_TEST_TMPDIR/state.json")" = running ]
      kill -0 "$(jq -r .pid "$BATS_TEST_TMPDIR/state.json")"
      [ "$(cell list -q)" = "$CID" ]
      cell delete -f "$CID"
    fi
    [ -z "$(cell list -q)" ]
    [ -z "$(state_entries)" ]
    [ -z "$(leaked_pids)" ]
  done
}
