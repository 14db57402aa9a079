# shellcheck shell=bash disable=SC2016
# celld started from a script: it returns once its socket accepts, or
# with the reason it cannot serve; --pidfile; the service manager's
# readiness protocol ($NOTIFY_SOCKET, Type=notify); cellctl wait-ready.
# Each test starts and stops its own daemon (no instance is made).

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=60000000
POOL_COUNT=$((65536 * 2))

setup() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  S=$BATS_TEST_TMPDIR
  cat >"$S/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
cgroup_parent = /cell-test-start-$$
lxcfs = off
EOF
  PIDS=()
}

teardown() {
  local pid
  for pid in "${PIDS[@]}" $(cat "$S"/*.pid 2>/dev/null); do
    kill "$pid" 2>/dev/null || true
  done
  sleep 0.2
}

daemon() { # state socket [flags...]: celld in the background, as a script runs it
  local state=$1 sock=$2
  shift 2
  "$CELLD" --config "$S/celld.conf" --state-dir "$state" --socket "$sock" "$@"
}

@test "celld returns once its socket accepts: the next command of a script is served" {
  run -0 daemon "$S/state" "$S/sock" --pidfile "$S/celld.pid"
  # No wait, no retry: the socket answers now.
  run -0 "$CELLCTL" --socket "$S/sock" list
  [ "$(cat "$S/celld.pid")" -gt 1 ]
  kill -0 "$(cat "$S/celld.pid")"
  [ "$(readlink "/proc/$(cat "$S/celld.pid")/exe")" = "$(readlink -f "$CELLD")" ]
}

@test "a second celld on the same state dir exits non-zero and says why" {
  daemon "$S/state" "$S/sock" --pidfile "$S/celld.pid"
  run -1 daemon "$S/state" "$S/sock2" --pidfile "$S/second.pid"
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "celld: "*"another celld uses it"* ]]
  # The first one still serves, and its pid file is its own.
  "$CELLCTL" --socket "$S/sock" list
  [ ! -e "$S/second.pid" ]
}

@test "celld with a bad celld.conf exits non-zero with the reason, in the background too" {
  echo "pool_start = lots" >>"$S/celld.conf"
  run -1 daemon "$S/state" "$S/sock"
  [[ "$output" == "celld: "*pool_start* ]]
  [ ! -S "$S/sock" ]
}

@test "the pid file goes when celld stops" {
  daemon "$S/state" "$S/sock" --pidfile "$S/celld.pid"
  local pid
  pid=$(cat "$S/celld.pid")
  kill "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  ! kill -0 "$pid" 2>/dev/null
  [ ! -e "$S/celld.pid" ]
}

@test "Type=notify: celld sends READY=1 to \$NOTIFY_SOCKET once it serves" {
  python3 - "$S/notify" >"$S/notified" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
print(s.recv(4096).decode(), flush=True)
EOF
  PIDS+=($!)
  for _ in $(seq 50); do [ -S "$S/notify" ] && break; sleep 0.1; done
  NOTIFY_SOCKET=$S/notify daemon "$S/state" "$S/sock" --foreground 2>/dev/null &
  PIDS+=($!)
  for _ in $(seq 100); do [ -s "$S/notified" ] && break; sleep 0.1; done
  grep -qx 'READY=1' "$S/notified"
  local main
  main=$(sed -n 's/^MAINPID=//p' "$S/notified")
  [ "$(readlink "/proc/$main/exe")" = "$(readlink -f "$CELLD")" ]
  PIDS+=("$main")
  # Ready means served.
  "$CELLCTL" --socket "$S/sock" list
}

@test "cellctl wait-ready waits for celld, and gives up after --timeout" {
  run -3 "$CELLCTL" --socket "$S/sock" wait-ready --timeout 1
  [[ "$output" == *"did not answer within 1 s"* ]]
  (sleep 1 && daemon "$S/state" "$S/sock" --pidfile "$S/celld.pid") &
  PIDS+=($!)
  run -0 "$CELLCTL" --socket "$S/sock" wait-ready --timeout 20
  "$CELLCTL" --socket "$S/sock" list
}
