#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# Mount behaviours runc's users rely on: the recursive options (rro,
# rnosuid, ...), a read-only /dev, --no-pivot, and what a container sees
# of the cgroup tree.

load helpers

add_mount() {
  update_config '.mounts += [$m]' --argjson m "$1"
}

# A host directory with a tmpfs mounted on its sub/, unmounted at teardown:
# a tree whose submount a non-recursive remount would miss.
make_tree_with_submount() {
  TREE=$BATS_TEST_TMPDIR/tree
  mkdir -p "$TREE/sub"
  mount -t tmpfs -o size=1m cell-test "$TREE/sub"
  on_teardown "umount $TREE/sub"
}

# mount_opts_of DEST: the per-mount options (field 6) of the topmost mount
# on DEST in $output, a copy of /proc/self/mountinfo.
mount_opts_of() {
  awk -v d="$1" '$5 == d { o = $6 } END { if (o == "") exit 1; print o }' <<<"$output"
}

has_option() {
  [[ ",$1," == *",$2,"* ]]
}

@test "rro on an rbind mount makes its submounts read-only too" {
  make_tree_with_submount
  setup_bundle sh -c 'touch /mnt/top; touch /mnt/sub/below; true'
  add_mount "$(jq -n --arg s "$TREE" \
    '{destination: "/mnt", type: "bind", source: $s, options: ["rbind", "rro"]}')"
  run -0 cell run "$CID"
  [[ "${lines[0]}" == *"/mnt/top"*"Read-only file system"* ]]
  [[ "${lines[1]}" == *"/mnt/sub/below"*"Read-only file system"* ]]
  [ ! -e "$TREE/top" ]
  [ ! -e "$TREE/sub/below" ]
}

@test "ro on an rbind mount leaves its submounts writable, as in runc" {
  make_tree_with_submount
  setup_bundle sh -c 'touch /mnt/sub/below'
  add_mount "$(jq -n --arg s "$TREE" \
    '{destination: "/mnt", type: "bind", source: $s, options: ["rbind", "ro"]}')"
  run -0 cell run "$CID"
  [ -e "$TREE/sub/below" ]
}

@test "rnoexec, rnosuid and rnodev reach the submounts of an rbind mount" {
  make_tree_with_submount
  setup_bundle cat /proc/self/mountinfo
  add_mount "$(jq -n --arg s "$TREE" \
    '{destination: "/mnt", type: "bind", source: $s,
      options: ["rbind", "rnoexec", "rnosuid", "rnodev"]}')"
  run -0 cell run "$CID"
  for dest in /mnt /mnt/sub; do
    opts=$(mount_opts_of "$dest")
    has_option "$opts" noexec
    has_option "$opts" nosuid
    has_option "$opts" nodev
  done
}

@test "rnoatime and rnosymfollow reach the submounts of an rbind mount" {
  make_tree_with_submount
  setup_bundle cat /proc/self/mountinfo
  add_mount "$(jq -n --arg s "$TREE" \
    '{destination: "/mnt", type: "bind", source: $s,
      options: ["rbind", "rnoatime", "rnosymfollow"]}')"
  run -0 cell run "$CID"
  opts=$(mount_opts_of /mnt/sub)
  has_option "$opts" noatime
  has_option "$opts" nosymfollow
}

@test "rrw, rsuid and rdiratime clear a submount's ro, nosuid and nodiratime" {
  make_tree_with_submount
  mount -o remount,bind,ro,nosuid,nodiratime "$TREE/sub"
  setup_bundle sh -c 'touch /mnt/sub/below && echo written; cat /proc/self/mountinfo'
  add_mount "$(jq -n --arg s "$TREE" \
    '{destination: "/mnt", type: "bind", source: $s,
      options: ["rbind", "rrw", "rsuid", "rdiratime"]}')"
  run -0 cell run "$CID"
  [ "${lines[0]}" = written ]
  opts=$(mount_opts_of /mnt/sub)
  has_option "$opts" rw
  run ! has_option "$opts" nosuid
  run ! has_option "$opts" nodiratime
}

# atime_mode_of DEST: noatime, relatime or strictatime (neither shown), as
# mountinfo has it for the topmost mount on DEST in $output.
atime_mode_of() {
  local opts
  opts=$(mount_opts_of "$1") || return 1
  if has_option "$opts" noatime; then
    echo noatime
  elif has_option "$opts" relatime; then
    echo relatime
  else
    echo strictatime
  fi
}

@test "the r*atime options set the atime mode of every submount" {
  if is_runc; then
    skip "runc 1.1.5 fails on ratime and rnostrictatime (EINVAL) and ignores rnorelatime"
  fi
  make_tree_with_submount
  # The submount starts as noatime, so that each mode below is a change.
  mount -o remount,bind,noatime "$TREE/sub"
  setup_bundle cat /proc/self/mountinfo
  # A tmpfs on /mnt for the mount points, which the shared rootfs lacks.
  add_mount '{"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}'
  local opt
  for opt in rstrictatime rrelatime ratime rnostrictatime rnorelatime rnoatime; do
    add_mount "$(jq -n --arg s "$TREE" --arg o "$opt" \
      '{destination: ("/mnt/" + $o), type: "bind", source: $s, options: ["rbind", $o]}')"
  done
  run -0 cell run "$CID"
  [ "$(atime_mode_of /mnt/rstrictatime/sub)" = strictatime ]
  [ "$(atime_mode_of /mnt/rrelatime/sub)" = relatime ]
  # Documented in README: ratime and rnostrictatime give relatime,
  # rnorelatime strictatime.
  [ "$(atime_mode_of /mnt/ratime/sub)" = relatime ]
  [ "$(atime_mode_of /mnt/rnostrictatime/sub)" = relatime ]
  [ "$(atime_mode_of /mnt/rnorelatime/sub)" = strictatime ]
  [ "$(atime_mode_of /mnt/rnoatime/sub)" = noatime ]
  # The top of each tree too.
  [ "$(atime_mode_of /mnt/rstrictatime)" = strictatime ]
}

@test "rro on a tmpfs mount" {
  if is_runc; then
    skip "runc 1.1.5 applies the recursive options to bind mounts only"
  fi
  setup_bundle sh -c 'touch /run/file'
  add_mount '{"destination": "/run", "type": "tmpfs", "source": "tmpfs",
              "options": ["size=1m", "rro"]}'
  run -1 cell run "$CID"
  [[ "$output" == *"Read-only file system"* ]]
}

@test "an unknown option on a bind mount is refused, naming the option and the mount" {
  if is_runc; then
    skip "runc 1.1.5 passes the option as data, which a bind ignores"
  fi
  src=$BATS_TEST_TMPDIR/src
  mkdir "$src"
  setup_bundle true
  add_mount "$(jq -n --arg s "$src" \
    '{destination: "/mnt", type: "bind", source: $s, options: ["rbind", "nosuch"]}')"
  run ! cell run "$CID"
  expect_message "unknown option \`nosuch\` for a bind mount"
  expect_message "on \`/mnt\`"
  [ -z "$(cell list -q)" ]
}

@test "an unknown option on a tmpfs goes to the filesystem, which refuses it" {
  setup_bundle true
  add_mount '{"destination": "/run", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuch=1"]}'
  run ! cell run "$CID"
  [ -z "$(cell list -q)" ]
}

@test "a read-only tmpfs /dev is filled first, then read-only" {
  setup_bundle sh -c 'echo x >/dev/null && echo null-works
    [ -L /dev/ptmx ] && echo ptmx-link
    [ -d /dev/pts ] && echo pts-dir
    touch /dev/new 2>&1
    awk "\$5 ~ /^\/dev(\/pts)?\$/ { print \$5, \$6, \$(NF - 2) }" /proc/self/mountinfo; true'
  update_config '(.mounts[] | select(.destination == "/dev") | .options) += ["ro"]'
  [ "$(jq '[.mounts[] | select(.destination == "/dev/pts" and .type == "devpts")] | length' config.json)" = 1 ]
  run -0 cell run "$CID"
  [ "${lines[0]}" = null-works ]
  [ "${lines[1]}" = ptmx-link ]
  [ "${lines[2]}" = pts-dir ]
  [[ "${lines[3]}" == *"Read-only file system"* ]]
  # devpts was mounted on it before it became read-only, and /dev itself
  # is read-only.
  [[ "${lines[4]}" == "/dev ro,"*" tmpfs" ]]
  [[ "${lines[5]}" == "/dev/pts rw,"*" devpts" ]]
}

@test "no-pivot: a nested user namespace cannot mount a fresh procfs or sysfs to reach sysrq-trigger or /sys/firmware" {
  # The chroot of --no-pivot only hides the host's /proc and /sys: unless
  # the runtime detaches them, they stay in the container's mount
  # namespace, fully visible, and the kernel then lets a user namespace
  # mount a procfs or sysfs of its own, unmasked.  The helper leaves the
  # chroot (it needs CAP_SYS_CHROOT: docker's default set has it),
  # unshares a user, mount, pid and network namespace and tries both
  # mounts.
  setup_bundle sh -c 'awk "\$5 == \"/proc\" { print \$5, \$(NF - 2) }" /proc/self/mountinfo
    /host/nested-procfs /host/escape; echo "status $?"'
  cp "${CELL_TEST_HELPERS:-$REPO/build/tests}/nested-procfs" "$HOSTDIR/"
  use_user_namespace
  update_config 'del(.linux.seccomp)
    | .process.capabilities[] += ["CAP_SYS_CHROOT"]'
  run -0 cell run --no-pivot "$CID"
  # The container's own /proc is there, as usual.
  [ "${lines[0]}" = "/proc proc" ]
  [ "${lines[1]}" = "chroot left" ]
  [ "${lines[2]}" = "unshare: ok" ]
  [ "${lines[3]}" = "mount proc: Operation not permitted" ]
  [ "${lines[4]}" = "mount sysfs: Operation not permitted" ]
  [ "${lines[5]}" = "status 1" ]
}

# --- /sys/fs/cgroup on a v1 or hybrid host ------------------------------------

requires_cgroup_v1() {
  if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
    skip "the host is cgroup v2 only (tests/bats/cgroupv2.sh covers it)"
  fi
}

# with_cgroup_namespace yes|no: the config's namespaces with or without a
# cgroup namespace, and the runc spec's /sys/fs/cgroup mount.
with_cgroup_namespace() {
  update_config '.linux.namespaces |= map(select(.type != "cgroup"))
    | if $ns == "yes" then .linux.namespaces += [{type: "cgroup"}] else . end
    | .mounts |= map(select(.destination != "/sys/fs/cgroup"))
    | .mounts += [{destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup",
                   options: ["nosuid", "noexec", "nodev", "relatime", "ro"]}]' \
    --arg ns "$1"
}

# A sibling container, running, whose cgroup the host shows.
start_sibling() {
  setup_bundle sleep 100
  cell_detached run -d "$CID-a"
  [ -n "$(find /sys/fs/cgroup -maxdepth 6 -type d -name "*$CID-a*")" ]
}

@test "cgroup namespace: every cgroup mount inside has the container's cgroup as its root" {
  requires_cgroup_v1
  requires_namespace cgroup
  setup_bundle sh -c 'awk "\$(NF - 2) ~ /^cgroup2?\$/ { print \$4, \$5, \$(NF - 2) }" /proc/self/mountinfo'
  with_cgroup_namespace yes
  run -0 cell run "$CID"
  # One mount per hierarchy of the host (the v1 ones at least).
  [ "${#lines[@]}" -ge "$(awk '$3 == "cgroup"' /proc/mounts | wc -l)" ]
  for line in "${lines[@]}"; do
    read -r root dest _ <<<"$line"
    [[ "$dest" == /sys/fs/cgroup/* ]]
    [ "$root" = / ] || {
      echo "host hierarchy visible: $line" >&2
      return 1
    }
  done
}

@test "cgroup namespace: memory.limit_in_bytes at /sys/fs/cgroup/memory is the container's limit" {
  requires_cgroup_v1
  requires_namespace cgroup
  [ -d /sys/fs/cgroup/memory ] || skip "the host has no v1 memory hierarchy"
  setup_bundle cat /sys/fs/cgroup/memory/memory.limit_in_bytes
  with_cgroup_namespace yes
  update_config '.linux.resources.memory.limit = 67108864'
  run -0 cell run "$CID"
  [ "$output" = 67108864 ]
}

@test "cgroup namespace: a sibling container's cgroup is nowhere under /sys/fs/cgroup" {
  requires_cgroup_v1
  requires_namespace cgroup
  start_sibling
  set_args find /sys/fs/cgroup
  with_cgroup_namespace yes
  run -0 cell run "$CID"
  [ "${#lines[@]}" -gt 1 ]
  [[ "$output" != *"$CID-a"* ]]
}

@test "no cgroup namespace: a sibling container's cgroup is nowhere under /sys/fs/cgroup" {
  requires_cgroup_v1
  start_sibling
  set_args sh -c 'find /sys/fs/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes'
  with_cgroup_namespace no
  update_config '.linux.resources.memory.limit = 67108864'
  run -0 cell run "$CID"
  [ "${lines[-1]}" = 67108864 ]
  [[ "$output" != *"$CID-a"* ]]
}

@test "the cgroup mount's ro makes every hierarchy read-only; without it name=systemd is writable" {
  requires_cgroup_v1
  requires_namespace cgroup
  [ -d /sys/fs/cgroup/systemd ] || skip "the host has no name=systemd hierarchy"
  setup_bundle sh -c 'mkdir /sys/fs/cgroup/systemd/sub 2>&1 && rmdir /sys/fs/cgroup/systemd/sub && echo writable; true'
  with_cgroup_namespace yes
  run -0 cell run "$CID"
  [[ "$output" == *"Read-only file system"* ]]
  update_config '(.mounts[] | select(.destination == "/sys/fs/cgroup") | .options) -= ["ro"]'
  run -0 cell run "$CID"
  [ "$output" = writable ]
}

@test "features lists the recursive mount options" {
  run -0 "$CELL" features
  for opt in rro rrw rnosuid rsuid rnodev rdev rnoexec rexec rnosymfollow \
    rsymfollow ratime rnoatime rstrictatime rrelatime rnorelatime rnodiratime rdiratime; do
    jq -e --arg o "$opt" '.mountOptions | index($o)' <<<"$output" >/dev/null || {
      echo "missing: $opt" >&2
      return 1
    }
  done
}

@test "a read-only tmpfs /dev with a terminal: /dev/console is still the terminal" {
  setup_bundle sh -c '[ -c /dev/console ] && echo console-ok; touch /dev/new; true'
  update_config '.process.terminal = true
    | (.mounts[] | select(.destination == "/dev") | .options) += ["ro"]'
  run -0 script -qec "$CELL --root $ROOT run $CID" /dev/null
  [[ "$output" == *console-ok* ]]
  [[ "$output" == *"Read-only file system"* ]]
}
