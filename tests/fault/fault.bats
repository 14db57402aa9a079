#!/usr/bin/env bats
# Fault injection: the fallible calls a command makes (mount, mkdir, open,
# clone3, a cgroup write, a netlink message, ...; tests/fault/fault-inject.c
# lists them) are made to fail with EIO, one at a time: the first call of
# each distinct path (the call and its callers).  After each, what a
# user would check: the command failed with one clear line (or went on, if
# it can do without that call), nothing is left behind (mounts, processes,
# cgroups, state), and the same command then works.

load ../bats/helpers

SHIM=${CELL_TEST_HELPERS:-$REPO/build/tests}/fault-inject.so

setup() {
  cell_setup
  [ -f "$SHIM" ] || skip "no $SHIM: make build/tests/fault-inject.so"
  FAULT_STATE=$BATS_TEST_TMPDIR/fault-state
  FAULT_OUT=$BATS_TEST_TMPDIR/fault-out
  SITES=$BATS_TEST_TMPDIR/sites
  : >"$SITES"
}

# cell_faulty N ARGS...: cell ARGS with its Nth counted call failing (0:
# none, only counting), its output in $FAULT_OUT.  Like cell_detached, the
# output goes to a file: a container that create leaves must not hold a
# pipe of ours.  A hang is a failure too (status 124).  Sanitizer runtimes
# must not insist on coming first.
cell_faulty() {
  local n=$1
  shift
  head -c $((4096 + 65536 * 8)) /dev/zero >"$FAULT_STATE"
  CELL_FAULT_STATE=$FAULT_STATE CELL_FAULT_AT=$n LD_PRELOAD=$SHIM \
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
    timeout -k 5 30 "$CELL" --root "$ROOT" "$@" </dev/null >"$FAULT_OUT" 2>&1 3>&-
}

# The number of calls counted and the site of the injected failure.
fault_calls() {
  od -An -t d8 -N 8 "$FAULT_STATE" | tr -d ' '
}
fault_site() {
  dd if="$FAULT_STATE" bs=1 skip=16 count=256 2>/dev/null | tr -d '\0'
}
# After a counting run: the number of the first call of each distinct path
# (the call and its callers).  Failing those covers every path a failure
# can take; failing each of a loop's thousand opens would only repeat one.
fault_points() {
  od -An -v -w8 -t u8 -j 4096 -N $(($(fault_calls) * 8)) "$FAULT_STATE" |
    awk '!seen[$1]++ {print NR}'
}

# walk SETUP CMD CHECK [LEAKS]: for each distinct path of the counted
# calls of `cell CMD` (after SETUP each time), fail it and check the result; CHECK makes sure the
# state is whole again (a retry, a delete); LEAKS (default check_leaks)
# that nothing was left behind.
walk() {
  local setup=$1 cmd=$2 check=$3 leaks=${4:-check_leaks}
  local total n out rc failed=0 tolerated=0 debug_trap
  # bats traces every command a test runs, which makes a loop of a few
  # thousand commands take minutes: not in here (the messages below say
  # where a failure was).
  debug_trap=$(trap -p DEBUG)
  trap - DEBUG
  set +o functrace
  eval "$setup"
  cell_faulty 0 $cmd
  total=$(fault_calls)
  points=$(fault_points)
  eval "$check"
  [ "$total" -gt 10 ]
  for n in $points; do
    eval "$setup"
    rc=0
    cell_faulty "$n" $cmd || rc=$?
    out=$(cat "$FAULT_OUT")
    if [ -n "$(fault_site)" ]; then
      echo "$(fault_site)" >>"$SITES"
    fi
    if [ "$rc" -eq 124 ]; then
      echo "call $n ($(fault_site)): cell $cmd hung" >&2
      return 1
    elif [ "$rc" -ne 0 ]; then
      failed=$((failed + 1))
      # One line, cell's, that says what failed and why.
      if [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ] || [[ $out != "cell: "* ]]; then
        echo "call $n ($(fault_site)): not one clear line: $out" >&2
        return 1
      fi
      if [[ $out != *"Input/output error"* ]]; then
        echo "call $n ($(fault_site)): the error does not say why: $out" >&2
        return 1
      fi
    else
      tolerated=$((tolerated + 1))
    fi
    if ! eval "$check"; then
      echo "call $n ($(fault_site)): $cmd left the container unusable: $out" >&2
      return 1
    fi
    if ! eval "$leaks"; then
      echo "call $n ($(fault_site)): $cmd left something behind: $out" >&2
      return 1
    fi
  done
  set -o functrace
  eval "$debug_trap"
  echo "# cell $cmd: $total calls on $(echo "$points" | wc -w) paths, one of each failed in turn: $failed failed cleanly, $tolerated went on without; $(sort -u "$SITES" | wc -l) distinct call sites" >&3
}

# What a user does after a failure: delete whatever is there, run again.
retry_works() {
  cell delete -f "$CID" >/dev/null 2>&1 || true
  cell run "$CID" >/dev/null && [ -z "$(state_entries)" ]
}

@test "fault injection: every failure point of run fails cleanly and a retry works" {
  setup_bundle true
  walk ":" "run $CID" retry_works
}

@test "fault injection: every failure point of create leaves nothing, and create works again" {
  setup_bundle sleep 100
  walk ":" "create $CID" 'cell delete -f "$CID" >/dev/null 2>&1 || true
    [ -z "$(state_entries)" ] && cell_detached create "$CID" &&
    cell delete -f "$CID" && [ -z "$(state_entries)" ]'
}

@test "fault injection: every failure point of start, then delete -f cleans up" {
  setup_bundle sleep 100
  walk 'cell delete -f "$CID" >/dev/null 2>&1 || true; cell_detached create "$CID"' \
    "start $CID" 'cell delete -f "$CID" && [ -z "$(state_entries)" ]'
}

@test "fault injection: every failure point of exec leaves the container running" {
  setup_bundle sleep 100
  cell_detached run -d "$CID"
  walk ":" "exec $CID true" 'status_is running && cell exec "$CID" true' \
    '[ "$(leaked_pids | wc -l)" -eq 1 ] && [ -z "$(leaked_mounts)" ]'
  cell delete -f "$CID"
}

@test "fault injection: every failure point of delete -f, then delete -f works" {
  setup_bundle sleep 100
  walk 'cell_detached run -d "$CID" 2>/dev/null || true' "delete -f $CID" \
    'cell delete -f "$CID" >/dev/null 2>&1 || true; [ -z "$(state_entries)" ] && [ -z "$(leaked_pids)" ]'
}
