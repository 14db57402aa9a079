# shellcheck shell=bash disable=SC2016
# cellctl's command-line conventions, as an operator types them: a login
# environment in `enter`, sizes with decimals and units, flags and NAME in
# any order, and errors of one line that name the problem and the way out.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=86000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-cli-$$
  celld_files
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 2
cgroup_parent = $CGPARENT
lxcfs = off
EOF
  start_daemon
  ctl image import "$TEMPLATE" --name bb >/dev/null
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  celld_leaks
}

teardown() {
  destroy_all
}

@test "enter: a login shell as root, in its home, with HOME, USER, LOGNAME and SHELL set" {
  ctl create e1 --image bb
  ctl start e1
  # The caller's environment does not leak in.
  run -0 env FOO=caller "$CELLCTL" --socket "$SOCK" enter e1 <<<'echo "$HOME $USER $LOGNAME $SHELL ${FOO:-unset}"; pwd'
  [ "${lines[0]}" = "/root root root /bin/sh unset" ]
  [ "${lines[1]}" = /root ]
}

@test "enter: the shell and home of root in the instance's /etc/passwd are used" {
  ctl create e2 --image bb
  ctl start e2
  inside e2 sh -c 'mkdir -p /home/admin && sed -i "s|^root:.*|root:x:0:0:root:/home/admin:/bin/ash|" /etc/passwd'
  run -0 ctl enter e2 <<<'echo "$HOME $SHELL"; pwd'
  [ "${lines[0]}" = "/home/admin /bin/ash" ]
  [ "${lines[1]}" = /home/admin ]
}

@test "make install puts the man pages, bash completion and helpers where man, bash and the programs find them" {
  local dest=$BATS_TEST_TMPDIR/dest
  run -0 make -s -C "$REPO" install BUILD="$(dirname "$CELLCTL")" DESTDIR="$dest" PREFIX=/usr
  # cellctl's tar streams and criu's action script at celld's restores.
  [ -x "$dest/usr/libexec/cell/cellctl-tree" ]
  [ -x "$dest/usr/libexec/cell/celld-criu-action" ]
  for page in man1/cellctl.1 man5/celld.conf.5 man8/cell.8 man8/celld.8; do
    [ -s "$dest/usr/share/man/$page" ]
  done
  # man renders them; each names every command the program knows.
  run -0 man -l "$dest/usr/share/man/man1/cellctl.1"
  local verb
  for verb in $("$CELLCTL" --help | awk '/^commands:/ {on = 1; next} /^[a-z]/ {on = 0} on && /^  [a-z]/ {print $1}'); do
    grep -q "^       $verb" <<<"$output"
  done
  run -0 man -l "$dest/usr/share/man/man8/cell.8"
  [[ "$output" == *"CELL UPDATE"* && "$output" == *"--memory-swap"* ]]
  # celld.conf(5): every key of the shipped config.
  run -0 man -l "$dest/usr/share/man/man5/celld.conf.5"
  for key in pool_start stop_timeout lxcfs network.default.subnet4 pool.fast.path; do
    grep -q "^       $key" <<<"$output"
  done
  # bash completes verbs, a verb's flags, and instance names.
  ctl create compl-me --image bb
  run -0 bash -c "source '$dest/usr/share/bash-completion/completions/cell'
    cellctl() { '$CELLCTL' --socket '$SOCK' \"\$@\"; }
    COMP_WORDS=(cellctl sn); COMP_CWORD=1; _cellctl; echo \"\${COMPREPLY[*]}\"
    COMP_WORDS=(cellctl create x --mem); COMP_CWORD=3; _cellctl; echo \"\${COMPREPLY[*]}\"
    COMP_WORDS=(cellctl start comp); COMP_CWORD=2; _cellctl; echo \"\${COMPREPLY[*]}\""
  [ "${lines[0]}" = "snapshot snapshots" ]
  [ "${lines[1]}" = "--memory" ]
  [ "${lines[2]}" = "compl-me" ]
}

@test "flags and NAME in any order; sizes with a fraction" {
  ctl create --image bb --memory 1.5G --cpus 0.5 any1
  [ "$(field any1 .memory)" = $((3 << 29)) ]
  ctl start any1
  ctl stop --timeout 0 any1 >/dev/null
  ctl create --memory=256MiB any2 --image bb
  [ "$(field any2 .memory)" = $((256 << 20)) ]
  # What follows -- is the command's, flags and all.
  ctl start any2
  run -0 ctl exec any2 -- echo --memory 1G
  [ "$output" = "--memory 1G" ]
}

@test "a usage error is one line that says where the usage is" {
  run -2 ctl create --image bb
  [ "${#lines[@]}" -eq 1 ]
  [ "$output" = "cellctl: create: NAME is needed (see cellctl create --help)" ]
  run -2 ctl create u1 --image bb --memory lots
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"--memory \`lots\`"*"--help)" ]]
  run -0 ctl create --help
  [[ "$output" == "usage: cellctl create NAME "* ]]
  run -4 ctl show u1
}

@test "--cpus beyond the host's CPUs is refused, naming how many there are" {
  local host
  host=$(nproc)
  run -8 ctl create c1 --image bb --cpus $((host + 1))
  [[ "$output" == *"more than the $host CPU"* ]]
  run -4 ctl show c1
  ctl create c1 --image bb --cpus "$host"
  run -8 ctl set c1 cpus=$((host * 2))
  [[ "$output" == *"more than the $host CPU"* ]]
}

@test "errors name the instance and the way out" {
  ctl create busy --image bb
  ctl start busy
  run -7 ctl destroy busy
  [ "$output" = "cellctl: instance \`busy\` is running: stop it first, or use destroy -f" ]
  run -7 ctl rename busy idle
  [[ "$output" == *"instance \`busy\` is running: stop it first (cellctl stop busy)" ]]
  ctl stop busy --timeout 0 >/dev/null
  run -7 ctl stop busy
  [[ "$output" == *"instance \`busy\` is not running"* ]]
  run -3 "$CELLCTL" --socket "$BATS_TEST_TMPDIR/none" list
  [[ "$output" == *"is celld running?"*"CELL_SOCKET"* ]]
}
