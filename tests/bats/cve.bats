#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# Regression tests of the escapes that hit runc, each tried against cell and
# shown to fail: CVE-2019-5736 (overwriting the runtime's binary),
# CVE-2021-30465 (mounts through symlinks), /dev/null tricks, CVE-2024-21626
# (the runtime's fds and /proc/self/fd), and an image whose /proc, /sys or
# /dev leads to the host.  The teardown of every test checks that nothing
# was left behind.

load helpers

# A helper on the host that swaps two paths atomically (renameat2
# RENAME_EXCHANGE) over and over until a stop file appears: a race that
# turns a directory of the rootfs into a symlink and back.
setup_file() {
  SWAP=$BATS_FILE_TMPDIR/swap
  export SWAP
  cat >"$BATS_FILE_TMPDIR/swap.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  while (access(argv[3], F_OK) != 0)
    if (renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) < 0) {
      perror("renameat2");
      return 1;
    }
  return 0;
}
EOF
  "${CC:-cc}" -O -o "$SWAP" "$BATS_FILE_TMPDIR/swap.c" 2>/dev/null || rm -f "$SWAP"
}

runtime_binary() {
  readlink -f "$CELL"
}

sha_of() {
  sha256sum <"$1" | cut -d' ' -f1
}

mount_point_on_host() {
  grep -qF " $1 " /proc/self/mountinfo
}

# --- CVE-2019-5736: the runtime's binary -----------------------------------

@test "CVE-2019-5736: a process of a created container cannot reach the runtime's binary" {
  sum=$(sha_of "$(runtime_binary)")
  setup_bundle true
  # A startContainer hook is a process of the container that runs while its
  # pid 1 is still the runtime, waiting to exec the program.
  update_config '.hooks.startContainer = [{path: "/bin/sh", args: ["sh", "-c", $script]}]' \
    --arg script '
      exec >/host/report 2>&1 </dev/null
      readlink /proc/1/exe || echo exe-hidden
      echo "fds: $(ls /proc/1/fd | wc -l)"
      for fd in /proc/1/fd/*; do
        readlink "$fd" && echo fd-READABLE
        ls "$fd/" >/dev/null 2>&1 && echo fd-OPENED
      done
      cat /proc/1/environ >/dev/null || echo environ-hidden
      (exec 5</proc/1/exe) && echo exe-READABLE
      (echo x >>/proc/1/exe) && echo exe-WRITTEN
      echo hook-ran'
  run -0 cell run "$CID"
  cat "$HOSTDIR/report"
  grep -qx hook-ran "$HOSTDIR/report"
  # The fds can be listed, not followed.
  [ "$(awk '$1 == "fds:" { print $2 }' "$HOSTDIR/report")" -gt 3 ]
  run ! grep -e READABLE -e OPENED -e WRITTEN "$HOSTDIR/report"
  grep -qx exe-hidden "$HOSTDIR/report"
  grep -qx environ-hidden "$HOSTDIR/report"
  [ "$(sha_of "$(runtime_binary)")" = "$sum" ]
}

@test "CVE-2019-5736: a created container's process is not dumpable" {
  setup_bundle sleep 100
  update_config '.process.user = {uid: 1000, gid: 1000}'
  cell_detached create "$CID"
  pid=$(container_pid "$CID")
  # The /proc files of a non-dumpable process belong to root, whatever its
  # uid, and a process of the container's uid, in its namespaces, cannot
  # read them.
  [ "$(stat -c %u "/proc/$pid/environ")" = 0 ]
  run ! nsenter -t "$pid" -m -p -S 1000 -G 1000 -- cat /proc/1/environ
  [[ "$output" == *"Permission denied"* ]]
  run ! nsenter -t "$pid" -m -p -S 1000 -G 1000 -- ls /proc/1/fd
  [[ "$output" == *"Permission denied"* ]]

  # Once the program runs it is an ordinary process of uid 1000: the same
  # commands work (so they were refused for the right reason).
  cell start "$CID"
  retry test "$(stat -c %u "/proc/$pid/environ")" = 1000
  run -0 nsenter -t "$pid" -m -p -S 1000 -G 1000 -- cat /proc/1/environ
  [[ "$output" == *CELL_TEST_MARK* ]]
}

# Copy what the runtime's binary needs to run (its loader and libraries)
# into the private rootfs, so that only the runtime can keep it from
# running there.
copy_runtime_libraries() {
  local lib
  for lib in $(ldd "$(runtime_binary)" 2>/dev/null | grep -o '/[^ ]*'); do
    mkdir -p "$BUNDLE/rootfs$(dirname "$lib")"
    cp -L "$lib" "$BUNDLE/rootfs$lib"
  done
}

@test "CVE-2019-5736: an image whose /bin/sh links to /proc/self/exe does not run the runtime" {
  cell_only # runc runs its own sealed copy there, which is safe too
  sum=$(sha_of "$(runtime_binary)")
  setup_bundle sh --version
  use_private_rootfs
  copy_runtime_libraries
  ln -sfn /proc/self/exe "$BUNDLE/rootfs/bin/sh"
  run cell run "$CID"
  [ "$status" -ne 0 ]
  [[ "$output" != *version* ]]
  expect_message 'exec `sh`: `/bin/sh` goes through a /proc magic link'

  # The same, asked by the config.
  set_args /proc/self/exe --version
  run cell run "$CID"
  [ "$status" -ne 0 ]
  [[ "$output" != *version* ]]
  expect_message 'exec `/proc/self/exe`: goes through a /proc magic link'
  [ "$(sha_of "$(runtime_binary)")" = "$sum" ]
}

@test "CVE-2019-5736: with CAP_SYS_PTRACE, the runtime's binary still cannot be overwritten" {
  # On a copy: if the escape works, only the copy is damaged.
  runtime=$BATS_TEST_TMPDIR/runtime-copy
  cp "$(runtime_binary)" "$runtime"
  sum=$(sha_of "$runtime")
  setup_bundle sleep 3
  update_config '.process.capabilities.bounding += ["CAP_SYS_PTRACE"]
    | .process.capabilities.effective += ["CAP_SYS_PTRACE"]
    | .process.capabilities.permitted += ["CAP_SYS_PTRACE"]
    | .hooks.startContainer = [{path: "/bin/sh", args: ["sh", "-c", $script]}]' \
    --arg script '
      # Keep an fd on the runtime binary, and write through it as soon as
      # no process executes it any more.
      (exec 5</proc/1/exe || exit
       for i in $(seq 25); do
         sleep 0.1
         echo OWNED 2>/dev/null >/proc/self/fd/5 && { echo WRITTEN >/host/report; exit; }
       done) </dev/null >/dev/null 2>&1 &'
  "$runtime" --root "$ROOT" create "$CID" </dev/null >/dev/null 2>&1
  "$runtime" --root "$ROOT" start "$CID"
  wait_for_status "$CID" stopped
  [ ! -e "$HOSTDIR/report" ]
  [ "$(sha_of "$runtime")" = "$sum" ]
}

# --- CVE-2021-30465: mounts through symlinks --------------------------------
# mounts.bats has the destination that is itself a symlink out of the rootfs
# ("a symlinked destination is resolved inside the rootfs"); here the
# symlink is a component on the way, to the host's / itself.

@test "CVE-2021-30465: a destination under a symlink to / stays in the rootfs" {
  target=$BATS_TEST_TMPDIR/target
  mkdir "$target"
  echo host >"$target/marker"
  setup_bundle sh -c 'cat /proc/self/mountinfo'
  use_private_rootfs
  ln -s / "$BUNDLE/rootfs/hostroot"
  ln -s ../../../../../../../../../../.. "$BUNDLE/rootfs/up"
  update_config '.mounts += [
      {destination: ("/hostroot" + $t + "/by-abs"), type: "tmpfs", source: "tmpfs"},
      {destination: ("/up" + $t + "/by-rel"), type: "bind", source: $h, options: ["rbind"]}]' \
    --arg t "$target" --arg h "$HOSTDIR"
  run -0 cell run "$CID"
  # Nothing made or mounted in the host's directory...
  [ "$(ls -A "$target")" = marker ]
  run ! mount_point_on_host "$target/by-abs"
  # ...but in the rootfs, where the links lead when followed inside it.
  [ -d "$BUNDLE/rootfs$target/by-abs" ]
  [ -d "$BUNDLE/rootfs$target/by-rel" ]
}

@test "CVE-2021-30465: a directory raced against a symlink to / during the mounts" {
  [ -x "$SWAP" ] || skip "no C compiler to build the swap helper"
  target=$BATS_TEST_TMPDIR/target
  mkdir "$target"
  echo host >"$target/marker"
  setup_bundle true
  use_private_rootfs
  mkdir "$BUNDLE/rootfs/evil"
  ln -s / "$BUNDLE/rootfs/evil-link"
  update_config '.mounts += [
      {destination: ("/evil" + $t + "/sub"), type: "tmpfs", source: "tmpfs"},
      {destination: ("/evil" + $t + "/bind"), type: "bind", source: $h, options: ["bind"]}]' \
    --arg t "$target" --arg h "$HOSTDIR"
  "$SWAP" "$BUNDLE/rootfs/evil" "$BUNDLE/rootfs/evil-link" "$BATS_TEST_TMPDIR/stop" &
  swapper=$!
  on_teardown "touch $BATS_TEST_TMPDIR/stop; wait $swapper"
  ok=0
  for i in $(seq 30); do
    # Each run either mounts inside the rootfs or notices the change.
    if cell run "$CID-$i" </dev/null >"$BATS_TEST_TMPDIR/run.out" 2>&1; then
      ok=$((ok + 1))
    else
      cat "$BATS_TEST_TMPDIR/run.out"
    fi
  done
  touch "$BATS_TEST_TMPDIR/stop"
  wait "$swapper"
  echo "$ok runs of 30 succeeded"
  [ "$(ls -A "$target")" = marker ]
  run ! mount_point_on_host "$target/sub"
}

# --- /dev/null ------------------------------------------------------------------

@test "an image whose /dev/null links to a host file: the file is untouched" {
  victim=$BATS_TEST_TMPDIR/passwd-copy
  cp /etc/passwd "$victim"
  chmod 0640 "$victim"
  before=$(stat -c '%a %u %g %s %Y' "$victim")
  sum=$(sha_of "$victim")
  setup_bundle sh -c 'stat -c "%t:%T" /dev/null /dev/zero; echo x > /dev/null; head -c 4 /dev/zero | wc -c
    wc -c < /proc/timer_list; stat -c "%t:%T" /proc/timer_list'
  use_private_rootfs
  # No tmpfs on /dev: the runtime makes the devices in the image's /dev.
  update_config '.mounts |= map(select(.destination != "/dev"))'
  mkdir -p "$BUNDLE/rootfs/dev"
  ln -sfn "$victim" "$BUNDLE/rootfs/dev/null"
  ln -sfn "../../../../../../../../..$victim" "$BUNDLE/rootfs/dev/zero"
  run -0 cell run "$CID"
  [ "${lines[0]}" = 1:3 ]
  [ "${lines[1]}" = 1:5 ]
  [ "${lines[2]}" = 4 ]
  # maskedPaths still mask with the real null device.
  [ "${lines[3]}" = 0 ]
  [ "${lines[4]}" = 1:3 ]
  [ "$(stat -c '%a %u %g %s %Y' "$victim")" = "$before" ]
  [ "$(sha_of "$victim")" = "$sum" ]
  run ! mount_point_on_host "$victim"
}

@test "a /dev/null of the image that is no device is never used to mask" {
  setup_bundle sh -c 'wc -c < /proc/timer_list; stat -c "%t:%T" /proc/timer_list'
  use_private_rootfs
  update_config '.mounts |= map(select(.destination != "/dev"))'
  mkdir -p "$BUNDLE/rootfs/dev"
  # A regular file with content where the null device should be.
  rm -f "$BUNDLE/rootfs/dev/null"
  echo planted >"$BUNDLE/rootfs/dev/null"
  run -0 cell run "$CID"
  [ "${lines[0]}" = 0 ]
  [ "${lines[1]}" = 1:3 ]
}

# --- CVE-2024-21626: the runtime's fds -----------------------------------------

# fds_of PID: its open fds, in order, on one line.
fds_of() {
  find "/proc/$1/fd" -mindepth 1 -printf '%f\n' | sort -n | xargs
}

@test "CVE-2024-21626: the program gets only stdio, whatever fds the runtime holds" {
  setup_bundle sleep 100
  "$CELL" --root "$ROOT" run -d "$CID" </dev/null >"$BATS_TEST_TMPDIR/out" 2>&1 \
    3</etc/hostname 7</tmp 9<"$BATS_TEST_TMPDIR"
  pid=$(container_pid "$CID")
  [ "$(fds_of "$pid")" = "0 1 2" ]

  # The same after create and start, with the runtime's fds of the state
  # directory and cgroups in between.
  "$CELL" --root "$ROOT" create "$CID-b" </dev/null >"$BATS_TEST_TMPDIR/out-b" 2>&1 \
    3</etc/hostname 7</tmp 9<"$BATS_TEST_TMPDIR"
  cell start "$CID-b"
  pid=$(container_pid "$CID-b")
  retry test "$(readlink "/proc/$pid/exe")" != "$(runtime_binary)"
  [ "$(fds_of "$pid")" = "0 1 2" ]
}

@test "CVE-2024-21626: --preserve-fds 2 passes exactly fds 3 and 4" {
  echo a >"$BATS_TEST_TMPDIR/fd3"
  echo b >"$BATS_TEST_TMPDIR/fd4"
  echo c >"$BATS_TEST_TMPDIR/fd5"
  setup_bundle sleep 100
  "$CELL" --root "$ROOT" run -d --preserve-fds 2 "$CID" </dev/null >"$BATS_TEST_TMPDIR/out" 2>&1 \
    3<"$BATS_TEST_TMPDIR/fd3" 4<"$BATS_TEST_TMPDIR/fd4" 5<"$BATS_TEST_TMPDIR/fd5" 7</tmp
  pid=$(container_pid "$CID")
  [ "$(fds_of "$pid")" = "0 1 2 3 4" ]
  [ "$(readlink "/proc/$pid/fd/3")" = "$BATS_TEST_TMPDIR/fd3" ]
  [ "$(readlink "/proc/$pid/fd/4")" = "$BATS_TEST_TMPDIR/fd4" ]
}

# create_and_start: create, start and wait for the container, then print
# what its program wrote; fails (with its message) when create does.
create_and_start() {
  rm -f "$BATS_TEST_TMPDIR"/detached.*
  cell_detached create "$CID" || return
  cell start "$CID"
  wait_for_status "$CID" stopped
  cell delete "$CID"
  cat "$BATS_TEST_TMPDIR"/detached.*
}

# run_or_create MODE: the container's output in $output, by `run` or by
# create and start.
run_or_create() {
  if [ "$1" = run ]; then
    run cell run "$CID" </dev/null
  else
    run create_and_start
  fi
}

# The fds of a created container's process (the runtime, about to exec)
# that are directories, what /proc/self/fd/N could lead to at that point:
# one per kind of filesystem (state directory, cgroupfs, ...), they are
# alike.
runtime_dir_fds() {
  local pid fd fs seen=" "
  cell_detached create "$CID-fds"
  pid=$(container_pid "$CID-fds")
  for fd in "/proc/$pid/fd/"*; do
    [ -d "$fd" ] || continue
    fs=$(stat -L -f -c %T "$fd")
    [[ "$seen" != *" $fs "* ]] || continue
    seen+="$fs "
    echo "${fd##*/}"
  done
  cell delete -f "$CID-fds" >/dev/null
}

@test "CVE-2024-21626: a process.cwd through /proc/self/fd/N never leads out" {
  setup_bundle sleep 100
  fds=$(runtime_dir_fds | xargs)
  echo "directory fds of the runtime: $fds"
  set_args sh -c 'pwd; ls -A'
  for mode in run create; do
    for n in $fds; do
      for cwd in "/proc/self/fd/$n" "/proc/self/fd/$n/../../.."; do
        update_config '.process.cwd = $c' --arg c "$cwd"
        run_or_create "$mode"
        echo "$mode $cwd: $status: ${lines[0]:-}"
        # Refused, or a directory of the container (none is, here).
        if [ "$status" -eq 0 ]; then
          [[ "${lines[0]}" == /* ]]
          [[ "$output" != *cgroup.procs* && "$output" != *state.json* ]]
          [[ "$output" != *config.json* && "$output" != *exec.fifo* ]]
        fi
      done
    done
  done
}

@test "CVE-2024-21626: args[0] through /proc/self/fd/N never runs a host file" {
  mkdir "$BATS_TEST_TMPDIR/host-only"
  cp "$TEST_ROOTFS/bin/busybox" "$BATS_TEST_TMPDIR/host-only/echo"
  setup_bundle sleep 100
  fds=$(runtime_dir_fds | xargs)
  echo "directory fds of the runtime: $fds"
  up=../../../../../../../../../../../../../../../../..
  for mode in run create; do
    for n in $fds; do
      set_args "/proc/self/fd/$n/$up$BATS_TEST_TMPDIR/host-only/echo" ESCAPED
      run_or_create "$mode"
      echo "$mode fd $n: $status: $output"
      [[ "$output" != *ESCAPED* ]]
    done
  done
}

@test "CVE-2024-21626: a process.cwd that is a symlink out of the rootfs stays inside" {
  outside=$BATS_TEST_TMPDIR/outside
  mkdir "$outside"
  echo host >"$outside/marker"
  setup_bundle sh -c 'cat marker; touch made-here'
  use_private_rootfs
  mkdir -p "$BUNDLE/rootfs$outside"
  echo inside >"$BUNDLE/rootfs$outside/marker"
  ln -s "$outside" "$BUNDLE/rootfs/abs-link"
  ln -s "../../../../../../../../../..$outside" "$BUNDLE/rootfs/rel-link"
  for cwd in /abs-link /rel-link; do
    update_config '.process.cwd = $c' --arg c "$cwd"
    run -0 cell run "$CID"
    [ "$output" = inside ]
  done
  [ "$(ls -A "$outside")" = marker ]
  [ -e "$BUNDLE/rootfs$outside/made-here" ]
}

# --- an image whose /proc, /sys or /dev leads to the host ------------------------

@test "a rootfs whose /proc, /sys and /dev are symlinks to host directories" {
  setup_bundle sh -c 'cat /proc/self/comm; ls /sys/kernel >/dev/null && echo sys-ok
    stat -c "%t:%T" /dev/null'
  use_private_rootfs
  for d in proc sys dev; do
    mkdir "$BATS_TEST_TMPDIR/host-$d"
    echo host >"$BATS_TEST_TMPDIR/host-$d/marker"
  done
  for style in absolute relative; do
    for d in proc sys dev; do
      rm -rf "${BUNDLE:?}/rootfs/$d"
      if [ "$style" = absolute ]; then
        ln -s "$BATS_TEST_TMPDIR/host-$d" "$BUNDLE/rootfs/$d"
      else
        ln -s "../../../../../../../../../..$BATS_TEST_TMPDIR/host-$d" "$BUNDLE/rootfs/$d"
      fi
    done
    run cell run "$CID"
    echo "$style: $status: $output"
    # Refused, or everything mounted inside the rootfs.
    if [ "$status" -eq 0 ]; then
      [ "$output" = "cat"$'\n'"sys-ok"$'\n'"1:3" ]
      [ -d "$BUNDLE/rootfs$BATS_TEST_TMPDIR/host-proc" ]
    fi
    for d in proc sys dev; do
      [ "$(ls -A "$BATS_TEST_TMPDIR/host-$d")" = marker ]
      run ! mount_point_on_host "$BATS_TEST_TMPDIR/host-$d"
    done
  done
}

@test "a /proc symlink whose meaning changes after a later mount cannot leave /proc/sys writable" {
  # procfs would land where /proc leads while /dev/shm is still a link to
  # /B/C/D; once /dev/shm is mounted, /proc leads elsewhere, and masked and
  # read-only paths looked up by name again would not be found.
  setup_bundle sh -c '[ -w /proc/sys/kernel/core_pattern ] && echo WRITABLE
    [ -s /proc/kcore ] && echo KCORE; echo ran'
  use_private_rootfs
  rm -rf "$BUNDLE/rootfs/proc" "$BUNDLE/rootfs/dev/shm"
  mkdir -p "$BUNDLE/rootfs/A" "$BUNDLE/rootfs/B/C/D"
  ln -s /dev/shm/../../A "$BUNDLE/rootfs/proc"
  ln -s /B/C/D "$BUNDLE/rootfs/dev/shm"
  # Only /proc's own masked paths: nothing else may stop the run first.
  update_config '.linux.maskedPaths |= map(select(startswith("/proc")))'
  run cell run "$CID"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"proc must be mounted on an ordinary directory"* ]]
  [[ $output != *WRITABLE* && $output != *KCORE* && $output != *ran* ]]
}

@test "a /proc reached through a symlinked parent inside the rootfs is refused, not followed" {
  setup_bundle true
  use_private_rootfs
  update_config '.mounts |= map(if .destination == "/proc" then .destination = "/lnk/proc" else . end)'
  mkdir -p "$BUNDLE/rootfs/real/proc"
  ln -s /real "$BUNDLE/rootfs/lnk"
  run cell run "$CID"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"must be mounted on an ordinary directory"* ]]
  [[ $output == *"/lnk/proc"* ]]
}

# --- bind sources -------------------------------------------------------------

@test "a relative bind source run from / cannot bind the host's etc: it names a path in the bundle" {
  setup_bundle sh -c 'cat /mnt/marker > /host/seen 2>&1; ls /mnt > /host/ls'
  mkdir "$BUNDLE/etc"
  echo from-the-bundle >"$BUNDLE/etc/marker"
  update_config '.mounts += [{destination: "/mnt", type: "bind", source: "etc",
                              options: ["rbind", "ro"]}]'
  cd /
  run cell run --bundle "$BUNDLE" "$CID"
  [ "$status" -eq 0 ]
  [ "$(cat "$HOSTDIR/seen")" = from-the-bundle ]
  ! grep -qx passwd "$HOSTDIR/ls"
}

# --- writes to /proc --------------------------------------------------------

# A container decides what is mounted at /proc in its own mount namespace.
# A config that joins that namespace must not let it choose the file that
# the runtime, as root of the host, writes its /proc knobs to.
@test "a joined mount namespace whose /proc is a tmpfs does not get the runtime's timens_offsets write" {
  requires_namespace time
  requires_kernel_file /proc/self/timens_offsets
  setup_bundle sh -c 'mount -t tmpfs tmpfs /proc && mkdir /proc/self &&
    echo planted >/proc/self/timens_offsets && touch /host/ready && sleep 1000'
  use_user_namespace
  update_config '.process.capabilities |= with_entries(.value += ["CAP_SYS_ADMIN"])
    | del(.linux.seccomp)'
  cell_detached run -d "$CID-victim"
  wait_for_file "$HOSTDIR/ready"
  pid=$(container_pid "$CID-victim")
  planted=/proc/$pid/root/proc/self/timens_offsets
  [ "$(cat "$planted")" = planted ]

  rm "$BUNDLE/config.json"
  setup_bundle true
  update_config '(.linux.namespaces[] | select(.type == "mount")) |= . + {path: $p}
    | .linux.namespaces += [{type: "time"}]
    | .linux.timeOffsets = {monotonic: {secs: 86400, nanosecs: 0}}' \
    --arg p "/proc/$pid/ns/mnt"
  run cell run "$CID-attacker"
  echo "$output"
  [ "$(cat "$planted")" = planted ]
}

# --- LSM labels -------------------------------------------------------------

# A profile the caller asked for that cannot be applied must not leave the
# program unconfined without a word (runc refuses it too).
@test "an apparmorProfile on a host without AppArmor is refused, never run unconfined" {
  if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; then
    skip "AppArmor is enabled on this host"
  fi
  setup_bundle touch /host/ran
  update_config '.process.apparmorProfile = "cell-test-profile"'
  run ! cell run "$CID"
  expect_message "process.apparmorProfile: AppArmor is not enabled on this host"
  [ ! -e "$HOSTDIR/ran" ]
  run -1 cell state "$CID"
}

@test "a selinuxLabel on a host without SELinux is refused, never run unlabelled" {
  if [ "$(stat -f -c %T /sys/fs/selinux 2>/dev/null)" = selinuxfs ]; then
    skip "SELinux is enabled on this host"
  fi
  setup_bundle touch /host/ran
  update_config '.process.selinuxLabel = "system_u:system_r:container_t:s0"'
  run ! cell run "$CID"
  expect_message "process.selinuxLabel: SELinux is not enabled on this host"
  [ ! -e "$HOSTDIR/ran" ]
}
