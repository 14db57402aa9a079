#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# Runtime behaviours runc's users and scripts rely on: run --keep, exec
# --ignore-paused, process.terminal without a terminal on stdin, and a
# container cgroup that already exists (frozen, or with processes in it).
# The same tests pass against runc 1.1.5: CELL=/usr/sbin/runc bats FILE.

load helpers

# The output without the CRs the container's pty adds.
strip_cr() {
  # shellcheck disable=SC2154 # set by bats' run
  output=$(tr -d '\r' <<<"$output")
}

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

# ---- process.terminal without a terminal on stdin ---------------------------
# In the foreground without --console-socket the runtime makes the pty and
# copies stdin to it and it to stdout, whatever stdin is.

# runc 1.1.5 opens /dev/tty (to put the caller's terminal in raw mode) and
# fails without a controlling terminal, whatever stdin is.
runc_needs_controlling_terminal() {
  if is_runc && ! (: </dev/tty) 2>/dev/null; then
    skip "runc 1.1.5 needs a controlling terminal (/dev/tty), and this test has none"
  fi
}

# A fifo held open for reading and writing on fd 7: a stdin that never
# ends.
open_endless_stdin() {
  mkfifo "$BATS_TEST_TMPDIR/stdin"
  exec 7<>"$BATS_TEST_TMPDIR/stdin"
}

@test "process.terminal: run with stdin from /dev/null proxies its own pty" {
  runc_needs_controlling_terminal
  setup_bundle sh -c 'tty; test -t 0 && echo stdin-is-a-tty; echo hi'
  update_config '.process.terminal = true'
  run -0 cell run "$CID" </dev/null
  strip_cr
  [[ "$output" == *"/dev/pts/"* ]]
  [[ "$output" == *stdin-is-a-tty* ]]
  [[ "$output" == *hi* ]]
  run -0 cell list -q
  [ -z "$output" ]
}

@test "process.terminal: run with stdin from a pipe passes input and the exit status" {
  runc_needs_controlling_terminal
  setup_bundle sh -c 'read -r line; echo "got [$line]"; exit 3'
  update_config '.process.terminal = true'
  run -3 bash -c 'echo typed words | "$0" --root "$1" run "$2"' "$CELL" "$ROOT" "$CID"
  strip_cr
  [[ "$output" == *"got [typed words]"* ]]
  run -0 cell list -q
  [ -z "$output" ]
}

@test "process.terminal: run ends with its program though stdin stays open" {
  if is_runc; then
    skip "runc 1.1.5 does not return here: it waits on the pty after its program exits"
  fi
  # A child left behind holds the pty open too.
  setup_bundle sh -c 'sleep 1000 & echo started; exit 3'
  update_config '.process.terminal = true'
  open_endless_stdin
  run -3 timeout -k 5 30 "$CELL" --root "$ROOT" run "$CID" <&7
  exec 7>&-
  strip_cr
  [[ "$output" == *started* ]]
  run -0 cell list -q
  [ -z "$output" ]
}

@test "process.terminal: exec -t with stdin that is no terminal" {
  if is_runc; then
    skip "runc 1.1.5's exec -t does not return when stdin is no terminal (even /dev/null)"
  fi
  setup_bundle sh -c 'touch /host/ready; exec sleep 1000'
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/ready"
  open_endless_stdin
  run -4 timeout -k 5 30 "$CELL" --root "$ROOT" exec -t "$CID" \
    sh -c 'tty; test -t 0 && echo stdin-is-a-tty; exit 4' <&7
  exec 7>&-
  strip_cr
  [[ "$output" == *"/dev/pts/"* ]]
  [[ "$output" == *stdin-is-a-tty* ]]
  run -0 cell exec -t "$CID" echo hi </dev/null
  strip_cr
  [ "$output" = hi ]
  [ "$(container_status "$CID")" = running ]
}

# ---- a container cgroup that already exists ----------------------------------
# `make check-cgroupv2` runs these in a VM with cgroup v2 alone too.

# Seconds a runtime gets before it counts as hung: 30 here, more in the
# slow VM (which raises CELL_TEST_POLL_TENTHS).
runtime_timeout() {
  echo $((POLL_TENTHS * 3 / 10))
}

cgroup_v2_only() {
  [ -f /sys/fs/cgroup/cgroup.controllers ]
}

# The mounts a cgroup path lives in: the v1 hierarchies and the cgroup2
# mount, or /sys/fs/cgroup alone on a v2 only host.
cgroup_mounts() {
  local d
  if cgroup_v2_only; then
    echo /sys/fs/cgroup
    return
  fi
  for d in /sys/fs/cgroup/*/; do
    [ -f "$d/cgroup.procs" ] && echo "${d%/}"
  done
}

# The directory whose freezer a runtime reads for PATH.
freezer_dir() {
  if cgroup_v2_only; then echo "/sys/fs/cgroup$1"; else echo "/sys/fs/cgroup/freezer$1"; fi
}

freeze_cgroup() {
  if cgroup_v2_only; then
    echo 1 >"$(freezer_dir "$1")/cgroup.freeze"
  else
    echo FROZEN >"$(freezer_dir "$1")/freezer.state"
  fi
}

is_frozen() {
  if cgroup_v2_only; then
    [ "$(cat "$(freezer_dir "$1")/cgroup.freeze")" = 1 ]
  else
    [ "$(cat "$(freezer_dir "$1")/freezer.state")" = FROZEN ]
  fi
}

# PATH in every hierarchy; a v1 cpuset takes no process before it has
# cpus and mems.
make_cgroup_everywhere() {
  local m
  for m in $(cgroup_mounts); do
    mkdir -p "$m$1"
    if [ "$(basename "$m")" = cpuset ]; then
      cat "$m/cpuset.cpus" >"$m$1/cpuset.cpus"
      cat "$m/cpuset.mems" >"$m$1/cpuset.mems"
    fi
  done
}

join_cgroup_everywhere() {
  local m
  for m in $(cgroup_mounts); do
    echo "$2" >"$m$1/cgroup.procs"
  done
}

# Thaw and remove PATH wherever it is (at teardown, after its processes
# were killed).
remove_cgroup_everywhere() {
  local m f
  f=$(freezer_dir "$1")
  if [ -d "$f" ]; then
    if cgroup_v2_only; then echo 0 >"$f/cgroup.freeze"; else echo THAWED >"$f/freezer.state"; fi
  fi
  for m in $(cgroup_mounts); do
    [ ! -d "$m$1" ] || retry rmdir "$m$1"
  done
}

@test "pre-existing cgroup: a frozen one is refused at once and left as it was" {
  setup_bundle sh -c 'touch /host/ran'
  cg=/$CID-frozen
  update_config '.linux.cgroupsPath = $cg' --arg cg "$cg"
  # The user's cgroup: only where the freezer is.
  mkdir "$(freezer_dir "$cg")"
  on_teardown "remove_cgroup_everywhere $cg"
  freeze_cgroup "$cg"

  run ! timeout -k 5 "$(runtime_timeout)" "$CELL" --root "$ROOT" create "$CID" </dev/null 3>&-
  [ "$status" -ne 124 ] # not a hang
  [[ "$output" == *"cgroup unexpectedly frozen"* ]]
  [ ! -e "$HOSTDIR/ran" ]
  run ! cell state "$CID"
  [ -z "$(state_entries)" ]
  # The user's cgroup is still there, still frozen; the hierarchies the
  # runtime made the cgroup in itself are cleaned up.
  is_frozen "$cg"
  [ "$(leaked_cgroups)" = "$(freezer_dir "$cg")" ]
}

@test "pre-existing cgroup: one with a process in it gets a warning and the container runs" {
  setup_bundle sh -c 'echo ran'
  cg=/$CID-busy
  update_config '.linux.cgroupsPath = $cg' --arg cg "$cg"
  make_cgroup_everywhere "$cg"
  sleep 1000 >/dev/null 2>&1 3>&- &
  sleeper=$!
  # In this order: the cgroup can only go once its process has.
  on_teardown "kill -9 $sleeper"
  on_teardown "remove_cgroup_everywhere $cg"
  join_cgroup_everywhere "$cg" "$sleeper"

  run -0 timeout -k 5 "$(runtime_timeout)" "$CELL" --root "$ROOT" run "$CID" </dev/null 3>&-
  [[ "$output" == *"container's cgroup is not empty"* ]]
  [[ "$output" == *ran* ]]
  [ -z "$(state_entries)" ]
}
