# shellcheck shell=bash disable=SC2016
# Attacks on celld's availability: requests that are not text, connection
# floods by peers with no rights, and instances that stall what celld waits
# for.  After each, root's requests must still be answered promptly.

bats_require_minimum_version 1.5.0

load celld-helpers
# Clear of the other celld test files' pools.
POOL_START=41000000
POOL_COUNT=$((65536 * 4))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-dos-$$
  celld_files
  cat >"$D/celld.conf" <<EOF
socket_mode = 0666
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 5
group = 4242
cgroup_parent = $CGPARENT
exec_timeout = 3
EOF
  start_daemon
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  celld_leaks
}

# The system's python: a user's shim (pyenv) may be closed to the
# unprivileged clients.
PYTHON=/usr/bin/python3

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --)

# A failed flood test leaves no flood behind.
teardown() {
  [ -f "$D/flood.pids" ] || return 0
  xargs -r kill <"$D/flood.pids" 2>/dev/null || true
  rm -f "$D/flood.pids"
}

# uid 65534's `list`: its refusal.
nobody_list() {
  "${NOBODY[@]}" "$CELLCTL" --socket "$SOCK" list 2>&1 || true
}

# Root's `list` answers within a few seconds.
root_still_served() {
  run -0 timeout 5 "$CELLCTL" --socket "$SOCK" list
}

@test "dos: a request line with a NUL byte is refused, and celld serves on" {
  # The raw bytes, NUL and all, on one connection: the reply names the NUL.
  run -0 "$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"{\"version\":1,\"op\":\"li\x00st\"}\n")
sys.stdout.write(s.makefile("rb").readline().decode())
' "$SOCK"
  echo "$output" | jq -e '.ok == false and .code == "invalid-request"'
  [[ "$output" == *'column 22: a NUL byte'* ]]
  kill -0 "$(cat "$D/celld.pid")"
  root_still_served
}

# utime + stime of celld, in clock ticks.
celld_cpu() {
  awk '{print $14 + $15}' "/proc/$(cat "$D/celld.pid")/stat"
}

@test "dos: a connection flood by a peer with no rights leaves root served, celld idle" {
  # 20,000 connections held open by uid 65534, who may do nothing (more
  # than celld had fds for); each flood says how many connected and what
  # its last connection was told.
  local flood=() i
  for i in 1 2; do
    "${NOBODY[@]}" "$PYTHON" -c '
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (10100, 10100))
held = []
end = time.time() + 15
while len(held) < 10000 and time.time() < end:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(sys.argv[1])
    except BlockingIOError:
        # The backlog is full: again, once celld has taken some.
        s.close()
        time.sleep(0.001)
        continue
    except OSError:
        s.close()
        continue
    held.append(s)
told = b""
if held:
    held[-1].settimeout(5)
    try:
        told = held[-1].makefile("rb").readline()
    except OSError:
        pass
print(len(held), told.decode().strip(), flush=True)
time.sleep(60)
' "$SOCK" >"$D/flood.$i" &
    flood+=($!)
    echo $! >>"$D/flood.pids"
  done
  for _ in $(seq 300); do
    [ -s "$D/flood.1" ] && [ -s "$D/flood.2" ] && break
    sleep 0.1
  done
  [ -s "$D/flood.1" ]
  [ -s "$D/flood.2" ]
  root_still_served
  # celld does not spin (on accept, out of fds): at most 0.2 s of CPU in 2 s.
  local before after
  before=$(celld_cpu)
  sleep 2
  after=$(celld_cpu)
  echo "flood: $(cut -d" " -f1 "$D"/flood.[12] | paste -sd+) connected; celld CPU over 2 s: $((after - before)) ticks" >&3
  [ $((after - before)) -le 20 ]
  root_still_served
  # Past the per-uid cap, a connection is told why (and closed).
  grep 'too many connections of uid 65534 (max_connections_per_uid = 32' "$D/flood.2"
  kill "${flood[@]}"
  wait "${flood[@]}" || true
  kill -0 "$(cat "$D/celld.pid")"
  # The flood's connections go (closed by the peer, or idle): uid 65534 is
  # let in again.
  for _ in $(seq 100); do
    nobody_list | grep -q "permission denied" && return 0
    sleep 0.1
  done
  return 1
}

@test "dos: a peer with no rights is closed after its refusal and when idle" {
  # After its refusal the connection ends: a second request gets nothing.
  run -0 "${NOBODY[@]}" "$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rb")
s.sendall(b"{\"version\":1,\"op\":\"list\"}\n")
print(f.readline().decode().strip())
try:
    s.sendall(b"{\"version\":1,\"op\":\"list\"}\n")
except OSError:
    pass
# Closed by celld: an end of file, or a reset when the second request
# was still unread on its side.
try:
    print(repr(f.readline()))
except ConnectionResetError:
    print(repr(b""))
' "$SOCK"
  [[ "${lines[0]}" == *permission-denied* ]]
  [ "${lines[1]}" = "b''" ]
  # Silent, it is closed within a few seconds.
  run -0 timeout 15 "${NOBODY[@]}" "$PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
t = time.time()
print(repr(s.recv(100)), round(time.time() - t))
' "$SOCK"
  [[ "$output" == "b'' "* ]]
}

# The file's celld, again (with the environment of the call).
@test "dos: an exec whose command the instance stops does not block celld" {
  ctl create stall --template "$TEMPLATE" --init "/bin/sleep 100000"
  ctl start stall
  # The command is stopped before it execs, as the instance's root can do
  # with kill -STOP: celld must not wait for it.
  CELLD_TEST_PAUSE=exec restart_celld
  local t0=$SECONDS
  ( exec "$CELLCTL" --socket "$SOCK" exec stall -- true >"$D/stall.out" 2>&1 ) &
  local client=$!
  sleep 0.5
  root_still_served
  [ $((SECONDS - t0)) -lt 3 ]
  # The exec client gets its error once exec_timeout (3 s) has passed.
  local status=0
  wait "$client" || status=$?
  cat "$D/stall.out"
  [ "$status" = 125 ]
  grep -q 'did not start within 3 s (exec_timeout in celld.conf)' "$D/stall.out"
  [ $((SECONDS - t0)) -lt 10 ]
  # The stopped command is gone; the instance serves execs again.
  restart_celld
  run -0 ctl exec stall -- echo alive
  [ "$output" = alive ]
  [ "$(ps -eo stat=,args= | grep -c '^T.* true$' || true)" = 0 ]
  ctl destroy stall -f
}
