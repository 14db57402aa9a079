# shellcheck shell=bash disable=SC2016
# celld's API spoken directly (docs/api.md): the stable `code` beside the
# `error` of every kind of refusal, against a private daemon started once
# for this file.

bats_require_minimum_version 1.5.0

load celld-helpers
# Clear of the other celld test files' pools (celld.bats ends at 13507200,
# celld-console.bats starts at 14000000).
POOL_START=13600000
POOL_COUNT=$((65536 * 4))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-api-$$
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
  celld_stop
  celld_leaks
}

# The system's python: a user's shim (pyenv) may be closed to the
# unprivileged clients.
PYTHON=/usr/bin/python3

# One raw request line (as given, not checked) on a new connection; the
# response line on stdout.  Before `--`: a command to run the client under.
req() { # [wrapper... --] LINE
  local wrap=()
  if [ "$#" -gt 1 ]; then
    while [ "$1" != -- ]; do
      wrap+=("$1")
      shift
    done
    shift
  fi
  "${wrap[@]}" "$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
sys.stdout.write(s.makefile("rb").readline().decode())
' "$SOCK" "$1"
}

# The code of a refusal; fails unless the reply is a refusal with a message.
code_of() { # [wrapper... --] LINE
  local out
  out=$(req "$@")
  echo "$out" | jq -e '.ok == false and (.error | type) == "string" and (.error | length) > 0' >/dev/null || {
    echo "not a refusal: $out" >&2
    return 1
  }
  echo "$out" | jq -r .code
}

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
MEMBER=(setpriv --reuid=4243 --regid=4242 --clear-groups --)

@test "api: a request that is not one: invalid-request" {
  [ "$(code_of '{"version":1,"op":')" = invalid-request ]
  [ "$(code_of 'not json')" = invalid-request ]
  [ "$(code_of '[1,2]')" = invalid-request ]
  [ "$(code_of '{"version":1}')" = invalid-request ]
  [ "$(code_of '{"version":1,"op":7}')" = invalid-request ]
  [ "$(code_of '{"op":"list"}')" = invalid-request ]
  [ "$(code_of '{"version":99,"op":"list"}')" = invalid-request ]
  [ "$(code_of '{"version":1,"op":"list","bogus":1}')" = invalid-request ]
  [[ "$(req '{"version":1,"op":"list","bogus":1}')" == *'unknown field `bogus`'* ]]
  [ "$(code_of '{"version":1,"op":"show","name":5}')" = invalid-request ]
  [ "$(code_of '{"version":1,"op":"show"}')" = invalid-request ]
  [ "$(code_of '{"version":1,"op":"create","name":"x","template":"'"$TEMPLATE"'","memory":-1}')" = invalid-request ]
  # An answer that is no refusal has no code.
  run -0 req '{"version":1,"op":"list"}'
  [ "$(echo "$output" | jq -r .ok)" = true ]
  [ "$(echo "$output" | jq -r 'has("code")')" = false ]
}

@test "api: no such op: unknown-op" {
  [ "$(code_of '{"version":1,"op":"frobnicate"}')" = unknown-op ]
  [[ "$(req '{"version":1,"op":"frobnicate"}')" == *'op `frobnicate`: unknown'* ]]
}

@test "api: no such instance or network: not-found" {
  [ "$(code_of '{"version":1,"op":"show","name":"ghost"}')" = not-found ]
  [ "$(code_of '{"version":1,"op":"start","name":"ghost"}')" = not-found ]
  [ "$(code_of '{"version":1,"op":"destroy","name":"ghost","force":true}')" = not-found ]
  [ "$(code_of '{"version":1,"op":"create","name":"nonet","template":"'"$TEMPLATE"'","networks":[{"network":"nosuchnet"}]}')" = not-found ]
  run -4 ctl show nonet
}

@test "api: a name taken: exists" {
  run -0 ctl create twice --template "$TEMPLATE"
  [ "$(code_of '{"version":1,"op":"create","name":"twice","template":"'"$TEMPLATE"'"}')" = exists ]
  run -0 ctl destroy twice
}

@test "api: running or not, as the op needs: wrong-state" {
  run -0 ctl create st --template "$TEMPLATE" --init "/bin/sleep 100000"
  [ "$(code_of '{"version":1,"op":"stop","name":"st"}')" = wrong-state ]
  [ "$(code_of '{"version":1,"op":"console","name":"st"}')" = wrong-state ]
  run -0 ctl start st
  [ "$(code_of '{"version":1,"op":"start","name":"st"}')" = wrong-state ]
  [ "$(code_of '{"version":1,"op":"destroy","name":"st"}')" = wrong-state ]
  [ "$(code_of '{"version":1,"op":"signal","signal":15}')" = wrong-state ]
  run -0 ctl destroy st -f
}

@test "api: a peer neither root nor in the group: permission-denied" {
  run -0 ctl create mine --template "$TEMPLATE"
  [ "$(code_of "${NOBODY[@]}" '{"version":1,"op":"list"}')" = permission-denied ]
  [ "$(code_of "${NOBODY[@]}" '{"version":1,"op":"show","name":"mine"}')" = permission-denied ]
  [ "$(code_of "${NOBODY[@]}" '{"version":1,"op":"create","name":"theirs","template":"'"$TEMPLATE"'"}')" = permission-denied ]
  # Refused before its op is looked at.
  [ "$(code_of "${NOBODY[@]}" '{"version":1,"op":"frobnicate"}')" = permission-denied ]
  # A member of the group does not see root's instance.
  [ "$(code_of "${MEMBER[@]}" '{"version":1,"op":"destroy","name":"mine"}')" = not-found ]
  run -0 ctl destroy mine
}
