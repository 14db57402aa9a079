# shellcheck shell=bash disable=SC2016
# An instance's own /proc through lxcfs: celld runs one lxcfs on its state
# dir and binds its files over the instance's /proc files, so that the
# tools of a guest (procps's free and uptime, glibc's count of online
# cpus) show the instance's limits and uptime, not the host's.  Without
# lxcfs instances still start, and `show` says why.  Against a private
# daemon, restarted with other configs by the later tests.

bats_require_minimum_version 1.5.0

load celld-helpers
# Clear of the other celld test files' pools and of the soak's
# (41000000 + 64 ranges).
POOL_START=54000000
POOL_COUNT=$((65536 * 8))

write_config() { # [lxcfs value]
  cat >"$D/celld.conf" <<EOF
socket_mode = 0660
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 5
cgroup_parent = $CGPARENT
EOF
  [ -z "${1:-}" ] || echo "lxcfs = $1" >>"$D/celld.conf"
}

# A host binary and the libraries it loads, at the same paths in the
# template: a Debian guest's procps and getconf, which busybox lacks
# (busybox's free and uptime ask sysinfo(2), which no lxcfs can change).
# Each file replaces what is there: busybox's links would lead a copy onto
# busybox itself.
add_host_tool() { # path
  local f
  for f in "$1" $(ldd "$1" | grep -o '/[^ ]*'); do
    mkdir -p "$TEMPLATE$(dirname "$f")"
    rm -f "$TEMPLATE$f"
    cp -L "$f" "$TEMPLATE$f"
  done
}

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  command -v lxcfs >/dev/null || skip "lxcfs is not installed (make deps)"
  export CGPARENT=/cell-test-lxcfs-$$
  celld_files
  add_host_tool /usr/bin/free
  add_host_tool /usr/bin/uptime
  add_host_tool /usr/bin/getconf
  write_config
  start_daemon
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  celld_leaks
}

teardown() {
  destroy_all
}

# The lxcfs processes serving on this file's state dir.
our_lxcfs() {
  pgrep -f "lxcfs .*$STATE/lxcfs" || true
}

lxcfs_mounted() {
  grep -q " $STATE/lxcfs .* - fuse.lxcfs " /proc/self/mountinfo
}

# SIGTERM to celld, and its exit awaited; instances stay as they are.
stop_daemon() {
  local pid
  pid=$(cat "$D/celld.pid")
  kill "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

restart_daemon() { # [lxcfs value]
  destroy_all
  stop_daemon
  write_config "${1:-}"
  start_daemon
}

@test "celld runs one lxcfs on its state dir, and show says instances use it" {
  [ "$(our_lxcfs | wc -l)" = 1 ]
  lxcfs_mounted
  ctl create v --template "$TEMPLATE"
  [ "$(field v .proc_view)" = lxcfs ]
  ctl start v
  [ "$(field v .proc_view)" = lxcfs ]
  run -0 ctl show v
  [[ "$output" == *"proc_view    lxcfs"* ]]
  # Each of LXC's files, lxcfs's own over the instance's /proc and /sys.
  run -0 inside v awk '{for (i = 7; $i != "-"; i++); if ($(i + 1) == "fuse.lxcfs") print $5}' /proc/self/mountinfo
  [ "$(echo "$output" | sort | tr '\n' ' ')" = "/proc/cpuinfo /proc/diskstats /proc/loadavg /proc/meminfo /proc/stat /proc/swaps /proc/uptime /sys/devices/system/cpu/online " ]
}

@test "checkpoint and migrate of an instance whose /proc is lxcfs's are refused in one line, and it runs on" {
  ctl image import "$TEMPLATE" --name lx >/dev/null
  ctl create ck --image lx --init "/bin/sleep 100000"
  ctl start ck
  [ "$(field ck .proc_view)" = lxcfs ]
  local pid
  pid=$(field ck .pid)
  run -7 ctl checkpoint ck
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"checkpoint \`ck\`: its /proc is lxcfs's, which criu cannot dump (lxcfs = off in celld.conf, then restart the instance)"* ]]
  run -7 ctl migrate ck --to "cat >/dev/null"
  [[ "$output" == *"migrate \`ck\`: its /proc is lxcfs's"* ]]
  [ "$(field ck .state)" = running ]
  [ "$(field ck .pid)" = "$pid" ]
  [ ! -e "$STATE/instances/ck/checkpoints" ] ||
    [ -z "$(ls -A "$STATE/instances/ck/checkpoints")" ]
  ctl destroy ck -f
  ctl image rm lx >/dev/null
}

@test "a memory limit is MemTotal in /proc/meminfo and the total of free" {
  ctl create mem --template "$TEMPLATE" --memory 256M
  ctl start mem
  run -0 inside mem cat /proc/meminfo
  [[ "${lines[0]}" =~ ^MemTotal:\ +262144\ kB$ ]]
  run -0 inside mem /usr/bin/free -m
  [[ "${lines[1]}" =~ ^Mem:\ +256\  ]]
  # The host's own file is untouched.
  [ "$(awk '/^MemTotal/ {print $2}' /proc/meminfo)" -gt 262144 ]
}

# NAME CPUS N: cpus=CPUS set live, nproc inside says N.
nproc_after_set() {
  ctl set "$1" "cpus=$2"
  run -0 inside "$1" nproc
  [ "$output" = "$3" ]
}

@test "a limit of one cpu: one processor in cpuinfo, one cpu online, nproc 1" {
  [ "$(grep -c ^processor /proc/cpuinfo)" -ge 2 ] || skip "the host has one cpu"
  ctl create cpu --template "$TEMPLATE" --cpus 1
  ctl start cpu
  run -0 inside cpu grep -c ^processor /proc/cpuinfo
  [ "$output" = 1 ]
  run -0 inside cpu cat /sys/devices/system/cpu/online
  [ "$output" = 0 ]
  # glibc's count, which sysconf and the programs that size their thread
  # pools by it read.
  run -0 inside cpu /usr/bin/getconf _NPROCESSORS_ONLN
  [ "$output" = 1 ]
  # nproc counts the cpus it may run on: one, a cpuset of its own.
  run -0 inside cpu nproc
  [ "$output" = 1 ]
  # Two, live, then one again; a fraction is rounded up: half a cpu is
  # one, 1.2 are two.
  nproc_after_set cpu 2 2
  nproc_after_set cpu 1 1
  nproc_after_set cpu 0.5 1
  nproc_after_set cpu 1.2 2
  nproc_after_set cpu 1 1
  # Without a limit, every cpu of the host.
  ctl create nocpu --template "$TEMPLATE"
  ctl start nocpu
  run -0 inside nocpu grep -c ^processor /proc/cpuinfo
  [ "$output" = "$(grep -c ^processor /proc/cpuinfo)" ]
}

@test "uptime is the time since the instance started" {
  ctl create up --template "$TEMPLATE"
  ctl start up
  run -0 inside up cat /proc/uptime
  local inside=${output%%.*} host
  host=$(cut -d. -f1 /proc/uptime)
  [ "$inside" -lt 30 ]
  [ "$host" -gt 60 ] || skip "the host itself is up for less than a minute"
  # procps's uptime, as a guest's admin types it.
  run -0 inside up /usr/bin/uptime
  [[ "$output" == *" up 0 min,"* ]]
}

@test "lxcfs = off: instances start with the host's /proc, and show says why" {
  restart_daemon off
  [ -z "$(our_lxcfs)" ]
  ! lxcfs_mounted
  ctl create off --template "$TEMPLATE" --memory 256M
  ctl start off
  [ "$(field off .state)" = running ]
  [ "$(field off .proc_view)" = "host (lxcfs unavailable: lxcfs = off in celld.conf)" ]
  run -0 inside off head -1 /proc/meminfo
  [ "$output" = "$(head -1 /proc/meminfo)" ]
}

@test "lxcfs = a missing binary: instances still start, and show names it" {
  restart_daemon /nonexistent/lxcfs
  grep -q "lxcfs unavailable: lxcfs = /nonexistent/lxcfs in celld.conf: No such file" "$D/celld.log"
  ctl create miss --template "$TEMPLATE"
  ctl start miss
  [ "$(field miss .state)" = running ]
  [ "$(field miss .proc_view)" = "host (lxcfs unavailable: lxcfs = /nonexistent/lxcfs in celld.conf: No such file or directory)" ]
  run -0 ctl show miss --json
  echo "$output" | jq -e '.proc_view | startswith("host (lxcfs unavailable: ")'
}

@test "an lxcfs that fails at start: instances start, show points at its log" {
  printf '#!/bin/sh\necho "lxcfs: cannot serve" >&2\nexit 3\n' >"$D/bad-lxcfs"
  chmod +x "$D/bad-lxcfs"
  restart_daemon "$D/bad-lxcfs"
  ctl create bad --template "$TEMPLATE"
  ctl start bad
  [ "$(field bad .proc_view)" = "host (lxcfs unavailable: \`$D/bad-lxcfs\` exited with status 3 at start (see $STATE/lxcfs.log))" ]
  grep -q "cannot serve" "$STATE/lxcfs.log"
}

@test "lxcfs = a directory where an lxcfs serves: celld uses it, and leaves it running" {
  mkdir -p "$D/ext"
  lxcfs -f -p "$D/ext.pid" "$D/ext" >/dev/null 2>&1 &
  local ext=$!
  disown "$ext"
  for _ in $(seq 50); do
    grep -q " $D/ext .* - fuse.lxcfs " /proc/self/mountinfo && break
    sleep 0.1
  done
  restart_daemon "$D/ext"
  [ -z "$(our_lxcfs)" ]
  ctl create ext --template "$TEMPLATE" --memory 200M
  ctl start ext
  [ "$(field ext .proc_view)" = lxcfs ]
  run -0 inside ext head -1 /proc/meminfo
  [[ "$output" =~ ^MemTotal:\ +204800\ kB$ ]]
  destroy_all
  stop_daemon
  # Not celld's to end.
  kill -0 "$ext"
  grep -q " $D/ext .* - fuse.lxcfs " /proc/self/mountinfo
  kill -9 "$ext"
  umount -l "$D/ext"
  write_config
  start_daemon
}

@test "lxcfs killed: celld restarts it, and the next instances use it again" {
  restart_daemon
  local old
  old=$(our_lxcfs)
  [ -n "$old" ]
  kill -9 "$old"
  # At most LXCFS_RESTART_MS (10 s) after its last start.
  for _ in $(seq 150); do
    [ -n "$(our_lxcfs)" ] && [ "$(our_lxcfs)" != "$old" ] && lxcfs_mounted && break
    sleep 0.1
  done
  [ "$(our_lxcfs | wc -l)" = 1 ]
  [ "$(our_lxcfs)" != "$old" ]
  grep -q "lxcfs (pid $old) killed by signal 9" "$D/celld.log"
  ctl create again --template "$TEMPLATE" --memory 128M
  ctl start again
  [ "$(field again .proc_view)" = lxcfs ]
  run -0 inside again head -1 /proc/meminfo
  [[ "$output" =~ ^MemTotal:\ +131072\ kB$ ]]
}

@test "celld stopped while an instance runs: lxcfs stays for it, the next celld uses it" {
  restart_daemon
  local old
  old=$(our_lxcfs)
  ctl create keep --template "$TEMPLATE" --memory 96M
  ctl start keep
  stop_daemon
  start_daemon
  grep -q "lxcfs (pid $old) left running for the 1 running instances" "$D/celld.log"
  grep -q "lxcfs (pid $old), left running by an earlier celld, serves on $STATE/lxcfs: using it" "$D/celld.log"
  [ "$(our_lxcfs)" = "$old" ]
  # The binds the instance got at its start still answer.
  run -0 inside keep head -1 /proc/meminfo
  [[ "$output" =~ ^MemTotal:\ +98304\ kB$ ]]
  [ "$(field keep .proc_view)" = lxcfs ]
}

@test "celld and its lxcfs killed with -9: the next celld clears the dead mount" {
  local pid old
  pid=$(cat "$D/celld.pid")
  old=$(our_lxcfs)
  kill -9 "$pid" "$old"
  for _ in $(seq 50); do
    [ -z "$(our_lxcfs)" ] && ! kill -0 "$pid" 2>/dev/null && break
    sleep 0.1
  done
  [ -z "$(our_lxcfs)" ]
  # Its mount is left, dead.
  lxcfs_mounted
  run ls "$STATE/lxcfs/proc"
  [ "$status" -ne 0 ]
  start_daemon
  grep -q "$STATE/lxcfs: a mount left by an earlier celld: unmounting it" "$D/celld.log"
  [ "$(grep -c " $STATE/lxcfs " /proc/self/mountinfo)" = 1 ]
  [ "$(our_lxcfs | wc -l)" = 1 ]
  ctl create fresh --template "$TEMPLATE" --memory 64M
  ctl start fresh
  run -0 inside fresh head -1 /proc/meminfo
  [[ "$output" =~ ^MemTotal:\ +65536\ kB$ ]]
}

@test "after celld stops with no instance running, no lxcfs process and no lxcfs mount are left" {
  [ -n "$(our_lxcfs)" ]
  destroy_all
  stop_daemon
  [ -z "$(our_lxcfs)" ]
  ! grep -q " $STATE/lxcfs " /proc/self/mountinfo
  # For teardown_file, which stops it again.
  start_daemon
}
