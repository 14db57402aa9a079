#!/usr/bin/env bats
# shellcheck disable=SC2016 # container scripts are single-quoted on purpose
# process.terminal: the pty master handed over --console-socket (what
# conmon and containerd's shim receive), and run/exec in the foreground
# proxying the caller's terminal.  `script` (util-linux) gives the runtime
# a terminal to proxy; tests/helpers/recvtty is the console socket's far
# end.

load helpers

# The helper programs from `make` (build/tests), or compiled here when they
# are missing or older than their source.
helper_program() {
  local src=$REPO/tests/helpers/$1.c
  local bin=${CELL_TEST_HELPERS:-$REPO/build/tests}/$1
  if [ -x "$bin" ] && [ "$bin" -nt "$src" ]; then
    echo "$bin"
    return
  fi
  bin=$BATS_FILE_TMPDIR/$1
  "${CC:-cc}" -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$bin" "$src" >&2 &&
    echo "$bin"
}

setup_file() {
  RECVTTY=$(helper_program recvtty)
  export RECVTTY
}

# start_recvtty [recvtty options]: listen on $SOCK; what the container
# writes to its terminal ends up in $BATS_TEST_TMPDIR/console.out.
start_recvtty() {
  SOCK=$BATS_TEST_TMPDIR/console.sock
  "$RECVTTY" -t 20 "$@" "$SOCK" >"$BATS_TEST_TMPDIR/console.out" \
    2>"$BATS_TEST_TMPDIR/recvtty.err" 3>&- &
  RECVTTY_PID=$!
  wait_for_file "$SOCK"
}

# Wait until the container closed its terminal; CONSOLE is what it wrote,
# without the carriage returns the pty adds.
wait_recvtty() {
  local rc=0
  wait "$RECVTTY_PID" || rc=$?
  cat "$BATS_TEST_TMPDIR/recvtty.err" >&2
  CONSOLE=$(tr -d '\r' <"$BATS_TEST_TMPDIR/console.out")
  echo "console: $CONSOLE" >&2
  return "$rc"
}

# in_pty COMMAND: run the shell command COMMAND on a new pty (script's),
# with our stdin as what is typed; its exit code is COMMAND's.
in_pty() {
  script -qec "$1" /dev/null
}

# The container's output as seen on the outer terminal, without CRs.
strip_cr() {
  # shellcheck disable=SC2154 # set by bats' run
  output=$(tr -d '\r' <<<"$output")
  mapfile -t lines <<<"$output"
}

@test "--console-socket receives the pty master; the container writes to it" {
  setup_bundle sh -c 'echo hello from the tty; tty; test -t 0 && test -t 1 && test -t 2 && echo stdio-is-a-tty'
  update_config '.process.terminal = true'
  start_recvtty -n "$BATS_TEST_TMPDIR/name"
  cell_detached create --console-socket "$SOCK" "$CID"
  cell start "$CID"
  wait_recvtty
  mapfile -t lines <<<"$CONSOLE"
  [ "${lines[0]}" = "hello from the tty" ]
  [[ "${lines[1]}" == /dev/pts/[0-9]* ]]
  [ "${lines[2]}" = stdio-is-a-tty ]
  # The message's data is a name (cell sends the slave's, runc "/dev/ptmx").
  [ -s "$BATS_TEST_TMPDIR/name" ]
  wait_for_status "$CID" stopped
}

@test "--console-socket: what is typed on the terminal reaches the container" {
  setup_bundle sh -c 'read -r line; echo "got [$line]"'
  update_config '.process.terminal = true'
  start_recvtty -i $'typed words\n'
  cell_detached create --console-socket "$SOCK" "$CID"
  cell start "$CID"
  wait_recvtty
  [[ "$CONSOLE" == *"got [typed words]"* ]]
}

@test "run -d --console-socket works too" {
  setup_bundle sh -c 'tty; echo detached'
  update_config '.process.terminal = true'
  start_recvtty
  cell_detached run -d --console-socket "$SOCK" "$CID"
  wait_recvtty
  [[ "$CONSOLE" == *detached* ]]
}

@test "process.consoleSize sets the terminal's size" {
  setup_bundle stty size
  update_config '.process.terminal = true | .process.consoleSize = {height: 33, width: 111}'
  start_recvtty -s "$BATS_TEST_TMPDIR/size"
  cell_detached create --console-socket "$SOCK" "$CID"
  cell start "$CID"
  wait_recvtty
  [ "$CONSOLE" = "33 111" ]
  [ "$(cat "$BATS_TEST_TMPDIR/size")" = "33 111" ]
}

@test "/dev/console is the container's terminal" {
  setup_bundle sh -c 'test -c /dev/console && echo char-device; stat -c %t:%T /dev/console "$(tty)"; echo to-console >/dev/console'
  update_config '.process.terminal = true'
  start_recvtty
  cell_detached create --console-socket "$SOCK" "$CID"
  cell start "$CID"
  wait_recvtty
  mapfile -t lines <<<"$CONSOLE"
  [ "${lines[0]}" = char-device ]
  [ "${lines[1]}" = "${lines[2]}" ]
  [ "${lines[3]}" = to-console ]
}

@test "run -d with process.terminal and no --console-socket fails clearly" {
  setup_bundle true
  update_config '.process.terminal = true'
  run ! cell_detached run -d "$CID"
  run -0 cell list -q
  [ -z "$output" ]
}

@test "run in the foreground on a terminal proxies input, output and the exit code" {
  setup_bundle sh -c 'tty; test -t 0 && echo stdin-is-a-tty; read -r line; echo "got [$line]"; exit 5'
  update_config '.process.terminal = true'
  run -5 in_pty "$CELL --root $ROOT run $CID" <<<"typed words"
  strip_cr
  [[ "$output" == *"/dev/pts/"* ]]
  [[ "$output" == *stdin-is-a-tty* ]]
  [[ "$output" == *"got [typed words]"* ]]
  run -0 cell list -q
  [ -z "$output" ]
}

@test "run in the foreground on a terminal: the caller's window size" {
  setup_bundle stty size
  update_config '.process.terminal = true'
  run -0 in_pty "stty rows 21 cols 99; $CELL --root $ROOT run $CID" </dev/null
  strip_cr
  [[ "$output" == *"21 99"* ]]
}

@test "run in the foreground: the container's output reaches the terminal unchanged" {
  setup_bundle printf 'a\nb\n'
  update_config '.process.terminal = true'
  # The container's pty turns \n into \r\n; the caller's terminal, raw
  # while the runtime proxies it, adds nothing.
  run -0 in_pty "$CELL --root $ROOT run $CID" </dev/null
  # script passes the end of its stdin on as a NUL, which the container's
  # terminal echoes as "^@" wherever it falls in the output, between the
  # two lines too: that is script's, not the container's.
  output=${output//^@/}
  [[ "$output" == *$'a\r\nb\r'* ]]
  [[ "$output" != *$'\r\r'* ]]
}

@test "run in the foreground: a terminal without a size keeps consoleSize" {
  cell_only
  setup_bundle stty size
  update_config '.process.terminal = true | .process.consoleSize = {height: 33, width: 111}'
  run -0 in_pty "stty rows 0 cols 0; $CELL --root $ROOT run $CID" </dev/null
  strip_cr
  [[ "$output" == *"33 111"* ]]
}

@test "run in the foreground: a signal to the runtime reaches the container" {
  setup_bundle sh -c 'trap "echo trapped; exit 6" TERM; touch /host/ready; while :; do sleep 0.05; done'
  update_config '.process.terminal = true'
  # The shell that script starts becomes the runtime, in the foreground of the
  # pty: signal it directly.
  in_pty "echo \$\$ >$BATS_TEST_TMPDIR/runner; exec $CELL --root $ROOT run $CID" \
    </dev/null >"$BATS_TEST_TMPDIR/out" 2>&1 3>&- &
  script_pid=$!
  wait_for_file "$HOSTDIR/ready"
  kill -TERM "$(cat "$BATS_TEST_TMPDIR/runner")"
  rc=0
  wait "$script_pid" || rc=$?
  [ "$rc" -eq 6 ]
  [[ "$(tr -d '\r' <"$BATS_TEST_TMPDIR/out")" == *trapped* ]]
}

# A running container without a terminal of its own, to exec into.
start_container() {
  setup_bundle sh -c 'touch /host/ready; exec sleep 1000'
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/ready"
}

@test "exec -t in the foreground on a terminal" {
  start_container
  run -4 in_pty "$CELL --root $ROOT exec -t $CID sh -c 'tty; test -t 0 && echo stdin-is-a-tty; read -r l; echo \"got [\$l]\"; exit 4'" \
    <<<"typed words"
  strip_cr
  [[ "$output" == *"/dev/pts/"* ]]
  [[ "$output" == *stdin-is-a-tty* ]]
  [[ "$output" == *"got [typed words]"* ]]
  [ "$(container_status "$CID")" = running ]
}

@test "exec -t in the foreground: the process starts with the caller's window size" {
  start_container
  run -0 in_pty "stty rows 21 cols 99; $CELL --root $ROOT exec -t $CID stty size" </dev/null
  strip_cr
  [[ "$output" == *"21 99"* ]]
}

@test "exec -t -d --console-socket sends the exec's pty master" {
  start_container
  start_recvtty
  cell_detached exec -t -d --console-socket "$SOCK" "$CID" \
    sh -c 'tty; test -t 0 && echo stdin-is-a-tty; echo exec-via-console'
  wait_recvtty
  mapfile -t lines <<<"$CONSOLE"
  [[ "${lines[0]}" == /dev/pts/[0-9]* ]]
  [ "${lines[1]}" = stdin-is-a-tty ]
  [ "${lines[2]}" = exec-via-console ]
}

@test "exec -t -d without --console-socket fails clearly" {
  start_container
  run ! cell_detached exec -t -d "$CID" true
  [ "$(container_status "$CID")" = running ]
}
