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

@test "make install puts the man pages and bash completion where man and bash find them" {
  local dest=$BATS_TEST_TMPDIR/dest
  run -0 make -s -C "$REPO" install BUILD="$(dirname "$CELLCTL")" DESTDIR="$dest" PREFIX=/usr
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
