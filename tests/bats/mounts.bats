#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# The mounts of config.json, root.readonly and friends, seen from inside.

load helpers

# mount_of DEST: "FSTYPE MOUNT_OPTIONS SUPER_OPTIONS [OPTIONAL_FIELDS...]"
# of the topmost mount on DEST in $output (a copy of /proc/self/mountinfo).
mount_of() {
  awk -v d="$1" '
    $5 == d {
      opt = ""
      for (n = 7; $n != "-"; n++) opt = opt " " $n
      top = $(n + 1) " " $6 " " $(n + 3) opt
    }
    END { if (top == "") exit 1; print top }' <<<"$output"
}

# has_option OPTIONS NAME: NAME is one of the comma-separated OPTIONS.
has_option() {
  [[ ",$1," == *",$2,"* ]]
}

add_mount() {
  update_config '.mounts += [$m]' --argjson m "$1"
}

@test "proc, sysfs (read-only), devpts and mqueue of the default config" {
  setup_bundle sh -c 'cat /proc/self/mountinfo'
  run -0 cell run "$CID"

  read -r type opts _ <<<"$(mount_of /proc)"
  [ "$type" = proc ]
  read -r type opts _ <<<"$(mount_of /sys)"
  [ "$type" = sysfs ]
  has_option "$opts" ro
  read -r type opts super _ <<<"$(mount_of /dev/pts)"
  [ "$type" = devpts ]
  has_option "$super" gid=5
  read -r type _ <<<"$(mount_of /dev/mqueue)"
  [ "$type" = mqueue ]
  read -r type opts super _ <<<"$(mount_of /dev)"
  [ "$type" = tmpfs ]
  has_option "$opts" nosuid
}

@test "proc is the one of the container's pid namespace" {
  # /proc/self is the pid of the reader as its own /proc counts it.
  setup_bundle sh -c 'readlink /proc/self; cat /proc/1/comm; true'
  run -0 cell run "$CID"
  [ "${lines[0]}" -lt 10 ]
  [ "${lines[1]}" = sh ]
}

@test "tmpfs with size, mode and flags" {
  setup_bundle sh -c 'cat /proc/self/mountinfo'
  add_mount '{"destination": "/run", "type": "tmpfs", "source": "tmpfs",
              "options": ["size=1m", "mode=750", "nosuid", "nodev", "noexec"]}'
  run -0 cell run "$CID"
  read -r type opts super _ <<<"$(mount_of /run)"
  [ "$type" = tmpfs ]
  has_option "$super" size=1024k
  has_option "$super" mode=750
  has_option "$opts" nosuid
  has_option "$opts" nodev
  has_option "$opts" noexec
}

@test "a tmpfs is really limited to its size" {
  setup_bundle sh -c 'dd if=/dev/zero of=/run/big bs=1k count=2048 2>&1; echo "rc=$?"'
  add_mount '{"destination": "/run", "type": "tmpfs", "source": "tmpfs",
              "options": ["size=1m"]}'
  run -0 cell run "$CID"
  [[ "$output" == *"No space left"* ]]
  [ "${lines[-1]}" != rc=0 ]
}

@test "bind mount read-only: reads work, writes fail" {
  src=$BATS_TEST_TMPDIR/ro-src
  mkdir "$src"
  echo content >"$src/file"
  setup_bundle sh -c 'cat /mnt/file; touch /mnt/new 2>&1 && echo wrote; cat /proc/self/mountinfo'
  add_mount "$(jq -n --arg s "$src" \
    '{destination: "/mnt", type: "bind", source: $s, options: ["bind", "ro"]}')"
  run -0 cell run "$CID"
  [ "${lines[0]}" = content ]
  [[ "${lines[1]}" == *"Read-only file system"* ]]
  [[ "$output" != *wrote* ]]
  read -r _ opts _ <<<"$(mount_of /mnt)"
  has_option "$opts" ro
  [ ! -e "$src/new" ]
}

@test "bind mount read-write: writes reach the host" {
  src=$BATS_TEST_TMPDIR/rw-src
  mkdir "$src"
  setup_bundle sh -c 'echo from-container > /mnt/new'
  add_mount "$(jq -n --arg s "$src" \
    '{destination: "/mnt", type: "none", source: $s, options: ["bind"]}')"
  run -0 cell run "$CID"
  [ "$(cat "$src/new")" = from-container ]
}

@test "rbind carries the mounts under the source, bind does not" {
  src=$BATS_TEST_TMPDIR/rbind-src
  mkdir -p "$src/sub"
  mount -t tmpfs -o size=1m cell-test "$src/sub"
  on_teardown "umount $src/sub"
  echo below >"$src/sub/file"
  setup_bundle sh -c 'cat /mnt/sub/file; ls -A /run/sub | wc -l'
  add_mount "$(jq -n --arg s "$src" \
    '{destination: "/mnt", type: "bind", source: $s, options: ["rbind"]}')"
  add_mount "$(jq -n --arg s "$src" \
    '{destination: "/run", type: "bind", source: $s, options: ["bind"]}')"
  run -0 cell run "$CID"
  [ "${lines[0]}" = below ]
  [ "${lines[1]}" = 0 ]
}

@test "a bind mount of a file" {
  echo file-content >"$BATS_TEST_TMPDIR/one-file"
  setup_bundle cat /etc/motd
  add_mount "$(jq -n --arg s "$BATS_TEST_TMPDIR/one-file" \
    '{destination: "/etc/motd", type: "bind", source: $s, options: ["bind", "ro"]}')"
  use_private_rootfs
  run -0 cell run "$CID"
  [ "$output" = file-content ]
  # The runtime made the missing destination a file, not a directory.
  [ -f "$BUNDLE/rootfs/etc/motd" ]
}

@test "missing destinations are created, directories and files" {
  echo file-content >"$BATS_TEST_TMPDIR/one-file"
  setup_bundle sh -c 'cat /run/a/b/c/file; cat /run/x/y/one-file; cat /proc/self/mountinfo'
  add_mount '{"destination": "/run", "type": "tmpfs", "source": "tmpfs"}'
  add_mount "$(jq -n --arg s "$HOSTDIR" \
    '{destination: "/run/a/b/c", type: "bind", source: $s, options: ["rbind"]}')"
  add_mount "$(jq -n --arg s "$BATS_TEST_TMPDIR/one-file" \
    '{destination: "/run/x/y/one-file", type: "bind", source: $s, options: ["bind"]}')"
  echo in-hostdir >"$HOSTDIR/file"
  run -0 cell run "$CID"
  [ "${lines[0]}" = in-hostdir ]
  [ "${lines[1]}" = file-content ]
  mount_of /run/a/b/c
  mount_of /run/x/y/one-file
}

@test "root.readonly: / is read-only, bind mounts stay writable" {
  setup_bundle sh -c 'touch /new-file 2>&1; touch /host/ok && echo host-ok; cat /proc/self/mountinfo'
  update_config '.root.readonly = true'
  run -0 cell run "$CID"
  [[ "${lines[0]}" == *"Read-only file system"* ]]
  [ "${lines[1]}" = host-ok ]
  read -r _ opts _ <<<"$(mount_of /)"
  has_option "$opts" ro
  [ ! -e "$TEST_ROOTFS/new-file" ]
}

@test "root.readonly false: / is writable" {
  setup_bundle sh -c 'cat /proc/self/mountinfo'
  run -0 cell run "$CID"
  read -r _ opts _ <<<"$(mount_of /)"
  has_option "$opts" rw
}

# A container whose rootfs is a shared mount on the host, with a host mount
# made under it once the container runs: does the container see it?
propagation_run() {
  update_config '.linux.rootfsPropagation = $p' --arg p "$1"
  rm -f "$HOSTDIR"/*
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/ready"
  mount -t tmpfs -o size=1m cell-test "$BUNDLE/rootfs/mnt/sub"
  touch "$BUNDLE/rootfs/mnt/sub/from-host-$1"
  touch "$HOSTDIR/go"
  wait_for_status "$CID" stopped
  umount "$BUNDLE/rootfs/mnt/sub"
  cell delete "$CID"
}

@test "rootfsPropagation: rslave receives host mounts, private does not" {
  setup_bundle sh -c 'touch /host/ready; while [ ! -e /host/go ]; do sleep 0.05; done
    ls /mnt/sub > /host/seen; cat /proc/self/mountinfo > /host/mountinfo'
  use_private_rootfs
  mkdir -p "$BUNDLE/rootfs/mnt/sub"
  mount --bind "$BUNDLE/rootfs" "$BUNDLE/rootfs"
  on_teardown "umount -R $BUNDLE/rootfs"
  mount --make-shared "$BUNDLE/rootfs"

  propagation_run rslave
  [ "$(cat "$HOSTDIR/seen")" = from-host-rslave ]
  output=$(cat "$HOSTDIR/mountinfo")
  read -r _ _ _ fields <<<"$(mount_of /)"
  [[ "$fields" == *master:* ]]

  propagation_run private
  [ -z "$(cat "$HOSTDIR/seen")" ]
  output=$(cat "$HOSTDIR/mountinfo")
  read -r _ _ _ fields <<<"$(mount_of /)"
  [[ "$fields" != *shared:* && "$fields" != *master:* ]]
}

@test "per-mount propagation: a host mount reaches an rslave bind mount" {
  src=$BATS_TEST_TMPDIR/prop-src
  mkdir -p "$src/sub"
  # The source must be a shared mount for anything to propagate.
  mount --bind "$src" "$src"
  on_teardown "umount -R $src"
  mount --make-shared "$src"
  setup_bundle sh -c 'touch /host/ready; while [ ! -e /host/go ]; do sleep 0.05; done
    cat /mnt/sub/file'
  add_mount "$(jq -n --arg s "$src" \
    '{destination: "/mnt", type: "bind", source: $s, options: ["rbind", "rslave"]}')"
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/ready"
  mount -t tmpfs -o size=1m cell-test "$src/sub"
  echo propagated >"$src/sub/file"
  touch "$HOSTDIR/go"
  wait_for_status "$CID" stopped
  grep -qx propagated "$BATS_TEST_TMPDIR"/detached.*
  umount "$src/sub"
}

@test "a symlinked destination is resolved inside the rootfs (CVE-2021-30465)" {
  outside=$BATS_TEST_TMPDIR/outside
  mkdir "$outside"
  echo secret >"$outside/host-file"
  setup_bundle sh -c 'ls -A /evil-abs; ls -A /evil-rel; cat /proc/self/mountinfo'
  use_private_rootfs
  # Both links point at $outside when followed on the host.
  ln -s "$outside/made-by-runtime" "$BUNDLE/rootfs/evil-abs"
  ln -s "../../../../../../../../../../..$outside/made-by-runtime2" "$BUNDLE/rootfs/evil-rel"
  add_mount '{"destination": "/evil-abs", "type": "tmpfs", "source": "tmpfs"}'
  add_mount '{"destination": "/evil-rel", "type": "tmpfs", "source": "tmpfs"}'
  run -0 cell run "$CID"
  [[ "$output" != *host-file* ]]
  # The host directory is untouched: nothing created, nothing mounted.
  [ "$(ls -A "$outside")" = host-file ]
  # The mounts are inside the rootfs, where the links lead from inside.
  [ -d "$BUNDLE/rootfs$outside/made-by-runtime" ]
  [ -d "$BUNDLE/rootfs$outside/made-by-runtime2" ]
  mount_of "$outside/made-by-runtime"
  mount_of "$outside/made-by-runtime2"
  run ! grep -qF " $outside" /proc/self/mountinfo
}

@test "a bind source that is a symlink is followed on the host" {
  src=$BATS_TEST_TMPDIR/real-src
  mkdir "$src"
  echo via-link >"$src/file"
  ln -s "$src" "$BATS_TEST_TMPDIR/link-src"
  setup_bundle cat /mnt/file
  add_mount "$(jq -n --arg s "$BATS_TEST_TMPDIR/link-src" \
    '{destination: "/mnt", type: "bind", source: $s, options: ["bind"]}')"
  run -0 cell run "$CID"
  [ "$output" = via-link ]
}

@test "maskedPaths and readonlyPaths" {
  [ -n "$(head -c 1 /proc/interrupts)" ] || skip "the host's /proc/interrupts is empty"
  [ -n "$(ls -A /sys/firmware)" ] || skip "the host's /sys/firmware is empty"
  setup_bundle sh -c 'wc -c < /proc/interrupts; ls -A /sys/firmware | wc -l
    echo 1 > /proc/sys/kernel/ns_last_pid 2>&1 || echo ro-ok; cat /proc/self/mountinfo'
  update_config '.linux.maskedPaths = ["/proc/interrupts", "/sys/firmware"]
                 | .linux.readonlyPaths = ["/proc/sys"]'
  run -0 cell run "$CID"
  [ "${lines[0]}" = 0 ]
  [ "${lines[1]}" = 0 ]
  [[ "$output" == *ro-ok* ]]
  read -r _ opts _ <<<"$(mount_of /proc/sys)"
  has_option "$opts" ro
}

@test "maskedPaths: the masked directories share one read-only tmpfs" {
  [ -d /proc/fs ] || skip "the host has no /proc/fs"
  [ -d /sys/firmware ] || skip "the host has no /sys/firmware"
  setup_bundle cat /proc/self/mountinfo
  update_config '.linux.maskedPaths = ["/proc/fs", "/sys/firmware"]
                 | .linux.readonlyPaths = []'
  run -0 cell run "$CID"
  # One file system, not one each (criu dumps every tmpfs with tar while
  # the container is frozen), read-only at both places.
  read -r _ _ dev_a _ _ opts_a _ <<<"$(awk '$5 == "/proc/fs"' <<<"$output")"
  read -r _ _ dev_b _ _ opts_b _ <<<"$(awk '$5 == "/sys/firmware"' <<<"$output")"
  [ -n "$dev_a" ]
  [ "$dev_a" = "$dev_b" ]
  has_option "$opts_a" ro
  has_option "$opts_b" ro
}

@test "--no-pivot: the rootfs is / without pivot_root" {
  setup_bundle sh -c 'test -x /bin/busybox && echo in-rootfs; test -e /host && echo host-mount
    test -e "$1" || echo no-host-files' sh "$REPO/Makefile"
  run -0 cell run --no-pivot "$CID"
  [ "$output" = "in-rootfs"$'\n'"host-mount"$'\n'"no-host-files" ]
}

@test "mounts are gone with the container" {
  setup_bundle true
  add_mount '{"destination": "/run", "type": "tmpfs", "source": "tmpfs"}'
  cell_detached create "$CID"
  pid=$(container_pid "$CID")
  # The container's mounts live in its own mount namespace only.
  grep -q ' /run ' "/proc/$pid/mountinfo"
  run ! grep -qF " $TEST_ROOTFS" /proc/self/mountinfo
  cell delete "$CID"
}
