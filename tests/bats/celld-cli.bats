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

