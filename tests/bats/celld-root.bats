# shellcheck shell=bash disable=SC2016
# The root of an instance is a real root, inside its own user namespace:
# the full capability set there, its own mounts, interfaces and net.*
# sysctls, a cgroup subtree of its own to manage; and, seen as attacks,
# nothing past that namespace: no module, no kexec, no file handle out of
# its root, no host device, no limit of its own lifted, no other tenant's
# cgroup in sight.  Against a private daemon started once for this file,
# with busybox instances that carry the try-syscall and exe-watch probes.

bats_require_minimum_version 1.5.0

load celld-helpers
# Clear of the other celld test files' pools.
POOL_START=58000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-root-$$
  celld_files
  cp "${CELL_TEST_HELPERS:-$REPO/build/tests}/try-syscall" "$TEMPLATE/bin/"
  cp "${CELL_TEST_HELPERS:-$REPO/build/tests}/exe-watch" "$TEMPLATE/bin/"
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 5
cgroup_parent = $CGPARENT
EOF
  start_daemon
  ctl create r1 --template "$TEMPLATE" --memory 64M
  ctl start r1
  ctl create r2 --template "$TEMPLATE"
  ctl start r2
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  celld_leaks
}

unified() { [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; }

# The memory limit file, inside an instance (its cgroup is the root there)
# and on the host (the instance's cgroup).
limit_inside() {
  if unified; then echo /sys/fs/cgroup/memory.max; else echo /sys/fs/cgroup/memory/memory.limit_in_bytes; fi
}
limit_on_host() { # name
  local pid
  pid=$(field "$1" .pid)
  if unified; then
    echo "/sys/fs/cgroup$(awk -F: '$1 == 0 {print $3}' "/proc/$pid/cgroup")/memory.max"
  else
    echo "/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup")/memory.limit_in_bytes"
  fi
}

@test "root of an instance: the full capability set of its user namespace" {
  local last mask
  last=$(cat /proc/sys/kernel/cap_last_cap)
  mask=$(printf '%016x' $(((1 << (last + 1)) - 1)))
  run -0 inside r1 grep -E '^Cap(Eff|Bnd):' /proc/self/status
  [ "$(echo "$output" | awk '{print $2}' | sort -u)" = "$mask" ]
  # ... and it is root in that namespace only.
  run -0 inside r1 cat /proc/self/uid_map
  [ "$(echo "$output" | awk '{print $2}')" = "$(field r1 .id_start)" ]
}

# sysfs read-only: the instance's /sys is, and the kernel does not let a
# namespace mount a view more open than the one it has.
@test "root of an instance: mounts tmpfs, proc and sysfs of its own" {
  run -0 inside r1 sh -c 'mkdir -p /mnt/t /mnt/p /mnt/s &&
    mount -t tmpfs t /mnt/t && echo x >/mnt/t/f && cat /mnt/t/f &&
    mount -t proc proc /mnt/p && test -d /mnt/p/1 &&
    mount -t sysfs -o ro sys /mnt/s && test -d /mnt/s/class/net/lo &&
    umount /mnt/t /mnt/p /mnt/s && echo done'
  [ "${lines[-1]}" = done ]
}

@test "root of an instance: configures its own interfaces and routes" {
  run -0 inside r1 sh -c 'ip link set lo mtu 1400 && ip link show lo'
  [[ "$output" == *"mtu 1400"* ]]
  run -0 inside r1 sh -c 'ip link add v0 type veth peer name v1 &&
    ip addr add 10.99.0.1/24 dev v0 && ip link set v0 up &&
    ip -o addr show v0'
  [[ "$output" == *"10.99.0.1/24"* ]]
  run -0 inside r1 sh -c 'ip route add 10.99.7.0/24 via 10.99.0.2 dev v0 && ip route show'
  [[ "$output" == *"10.99.7.0/24 via 10.99.0.2 dev v0"* ]]
  # The host has no such link, nor the route.
  ! ip link show v0 2>/dev/null
  [[ "$(ip route show)" != *10.99.7.0/24* ]]
}

# What systemd needs of its container (systemd's CONTAINER_INTERFACE, as
# LXC and systemd-nspawn give it): container= in its environment, tmpfs on
# /run and /run/lock, a pty as /dev/console, /sys read-only, /proc/sys
# read-only but for net.*.
@test "root of an instance: its init's environment and mounts are what systemd needs" {
  run -0 inside r1 sh -c "tr '\\0' '\\n' </proc/1/environ"
  [[ "$output" == *container=lxc* ]]
  # mount point, type, options: the type is the field after the " - ".
  run -0 inside r1 awk '{for (i = 7; $i != "-"; i++); print $5, $(i + 1), $6}' /proc/self/mountinfo
  local mounts=$output
  [[ "$mounts" == *$'\n/run tmpfs rw,'* ]]
  [[ "$mounts" == *$'\n/run/lock tmpfs rw,'* ]]
  [[ "$mounts" == *$'\n/sys sysfs ro,'* ]]
  [[ "$mounts" == *$'\n/proc/sys proc ro,'* ]]
  [[ "$mounts" == *$'\n/proc/sys/net proc rw,'* ]]
  # /dev/console: a pty of the instance's devpts (major 136), celld's
  # console keeper at its other end.
  run -0 inside r1 ls -lL /dev/console
  [[ "$output" == c*" 136, "* ]]
}

# Debian sets kernel.dmesg_restrict = 1, which keeps the kernel log from
# every user namespace but the host's; with 0 the kernel lets anyone read
# it, and then the instance's root can: no filter of celld's is in the way.
@test "root of an instance: reads its dmesg where the kernel lets it" {
  local restrict
  restrict=$(cat /proc/sys/kernel/dmesg_restrict)
  echo 0 >/proc/sys/kernel/dmesg_restrict
  run inside r1 dmesg
  echo "$restrict" >/proc/sys/kernel/dmesg_restrict
  [ "$status" -eq 0 ]
  [ -n "$output" ]
  echo 1 >/proc/sys/kernel/dmesg_restrict
  run inside r1 dmesg
  echo "$restrict" >/proc/sys/kernel/dmesg_restrict
  [ "$status" -ne 0 ]
}

@test "root of an instance: sets net.* sysctls of its namespace, not the host's" {
  local host_before
  host_before=$(cat /proc/sys/net/ipv4/ip_forward)
  run -0 inside r1 sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward'
  [ "$output" = 1 ]
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$host_before" ]
  run -0 inside r2 cat /proc/sys/net/ipv4/ip_forward
  [ "$output" = 0 ]
}

@test "attack: an instance's root writes a kernel sysctl outside net.*" {
  run inside r1 sh -c 'echo x >/proc/sys/kernel/domainname'
  [ "$status" -ne 0 ]
  [[ "$output" == *"Read-only file system"* ]]
}

@test "attack: an instance's root loads a kernel module" {
  local call
  for call in init_module finit_module delete_module; do
    run -1 inside r1 try-syscall "$call"
    [ "$output" = EPERM ]
  done
  # The filter itself answers, not only the missing capability.
  run -0 inside r1 grep '^Seccomp:' /proc/self/status
  [[ "$output" == *2 ]]
}

@test "attack: an instance's root opens a file by handle to get out of its root (shocker)" {
  run -1 inside r1 try-syscall open_by_handle_at
  [ "$output" = EPERM ]
}

@test "attack: an instance's root boots another kernel, takes I/O ports, swaps off or force-unmounts" {
  local call
  for call in kexec_load iopl swapoff umount_force; do
    run -1 inside r1 try-syscall "$call"
    [ "$output" = EPERM ]
  done
}

# The root of an instance has CAP_SYS_PTRACE in its user namespace, and
# every exec helper that joins the instance runs the host's binary until it
# execs the command: one that could be opened through /proc/PID/exe would
# be the host's binary, writable once idle (CVE-2019-5736).
@test "attack: an instance's root opens the host's binary through /proc/PID/exe of an exec joining it (CVE-2019-5736)" {
  inside r1 exe-watch 8 /bin/busybox >"$BATS_TEST_TMPDIR/caught" &
  local watch=$!
  sleep 1
  # Execs for as long as it watches: under load it starts late and each
  # exec is slower, and a fixed count left it too few to catch.
  local n=0
  while kill -0 "$watch" 2>/dev/null; do
    inside r1 true
    n=$((n + 1))
  done
  wait "$watch"
  echo "# caught $(grep -c ' refused EACCES$' "$BATS_TEST_TMPDIR/caught") of $n execs" >&3
  # It caught helpers before their exec, while they were the host's binary
  # (or it proves nothing; most of them here) ...
  [ "$(grep -c ' refused EACCES$' "$BATS_TEST_TMPDIR/caught")" -ge 10 ]
  # ... and opened none of them: they are not dumpable.
  run ! grep HOST "$BATS_TEST_TMPDIR/caught"
}

@test "attack: an instance's root makes a node of a host disk" {
  run inside r1 sh -c 'mknod /tmp/disk b 8 0'
  [ "$status" -ne 0 ]
  # Its /dev has the usual nodes and no host device.
  run -0 inside r1 ls /dev
  [[ "$output" != *sda* && "$output" != *vda* && "$output" != *mem* ]]
}

@test "attack: an instance's root lifts its own memory limit" {
  run inside r1 sh -c "echo max >$(limit_inside) || echo -1 >$(limit_inside)"
  [ "$status" -ne 0 ]
  [ "$(cat "$(limit_on_host r1)")" = $((64 << 20)) ]
}

# reboot or poweroff run inside: init's SIGTERM to every process may reach the
# command itself before it exits, so 143 is as good as 0.
ask_init() { # name command
  local status=0
  inside "$1" "$2" || status=$?
  [ "$status" -eq 0 ] || [ "$status" -eq 143 ]
}

@test "reboot inside an instance starts it again; poweroff stops it" {
  ctl create rb --template "$TEMPLATE"
  ctl start rb
  local pid
  pid=$(field rb .pid)
  ctl events >"$BATS_TEST_TMPDIR/events" &
  local events=$!
  sleep 0.2
  ask_init rb reboot
  for _ in $(seq 50); do
    [ "$(field rb .state)" = running ] && [ "$(field rb .pid)" != "$pid" ] && break
    sleep 0.1
  done
  [ "$(field rb .state)" = running ]
  [ "$(field rb .pid)" != "$pid" ]
  ask_init rb poweroff
  for _ in $(seq 50); do
    [ "$(field rb .state)" = stopped ] && break
    sleep 0.1
  done
  [ "$(field rb .state)" = stopped ]
  kill "$events"
  grep -q ' rebooted  *rb$' "$BATS_TEST_TMPDIR/events"
  grep -q ' poweroff  *rb$' "$BATS_TEST_TMPDIR/events"
  ctl destroy rb
}

@test "isolation: an instance's cgroup files are its own, its limit at the root of the hierarchy" {
  run -0 inside r1 cat "$(limit_inside)"
  [ "$output" = $((64 << 20)) ]
  # Every cgroup file system it has shows its own cgroup as the root.
  run -0 inside r1 awk '$9 ~ /^cgroup/ {print $4}' /proc/self/mountinfo
  [ "$(echo "$output" | sort -u)" = / ]
}

@test "attack: an instance looks for the host's or another instance's cgroups" {
  # Only the cgroup mounts of its mount tables: the others name host paths
  # (its overlay's layers), which may hold "r2" by chance (bats-run-ivdr2E).
  run -0 inside r1 sh -c 'find /sys/fs/cgroup -name "r2*"
    cat /proc/[0-9]*/cgroup /proc/[0-9]*/cpuset 2>/dev/null
    grep -h " - cgroup" /proc/[0-9]*/mountinfo 2>/dev/null'
  [[ "$output" == *" - cgroup"* ]]
  [[ "$output" != *r2* ]]
  [[ "$output" != *"$CGPARENT"* ]]
}

@test "delegation: an instance's root makes cgroups of its own, within its limits" {
  local svc
  if unified; then
    # Its init is in its cgroup, which then may not enable controllers
    # below it (no internal processes): a cgroup for the init first, as
    # systemd makes init.scope.
    # (Every process, busybox init's console shell too; the list's own cat
    # is gone by the time it would move.)
    run -0 inside r1 sh -c 'cd /sys/fs/cgroup && mkdir init svc &&
      for p in $(cat cgroup.procs); do echo $p >init/cgroup.procs 2>/dev/null; done
      echo +memory >cgroup.subtree_control &&
      echo $((16 << 20)) >svc/memory.max && echo $$ >svc/cgroup.procs &&
      cat /proc/self/cgroup'
    [[ "$output" == *"0::/svc"* ]]
    svc=$(dirname "$(limit_on_host r1)")
    svc=$(dirname "$svc")/svc/memory.max
  else
    run -0 inside r1 sh -c 'mkdir /sys/fs/cgroup/systemd/svc /sys/fs/cgroup/memory/svc &&
      echo $((16 << 20)) >/sys/fs/cgroup/memory/svc/memory.limit_in_bytes &&
      echo $$ >/sys/fs/cgroup/memory/svc/cgroup.procs && cat /proc/self/cgroup'
    [[ "$output" == *":memory:/svc"* ]]
    svc=$(dirname "$(limit_on_host r1)")/svc/memory.limit_in_bytes
  fi
  # The host sees them below the instance's cgroup; destroy removes them.
  [ "$(cat "$svc")" = $((16 << 20)) ]
}
