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
EOF
  start_daemon
}

teardown_file() {
  [ -n "$D" ] || return 0
  destroy_all
  kill "$(cat "$D/celld.pid")" 2>/dev/null || true
  sleep 0.2
  celld_leaks
}

# The system's python: a user's shim (pyenv) may be closed to the
# unprivileged clients.
PYTHON=/usr/bin/python3

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --)

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
