# shellcheck shell=bash disable=SC2016
# Pools and disk quotas: a btrfs pool on a loop-mounted image file the
# test makes, an instance's disk a subvolume there with a qgroup limit
# that a write inside runs into, the limit changed live, `pools` telling
# what each pool is, `--disk` refused where the filesystem has no quota,
# and no subvolume left once the instances are gone.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=68000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  command -v mkfs.btrfs >/dev/null || skip "no mkfs.btrfs (btrfs-progs)"
  export CGPARENT=/cell-test-pools-$$
  celld_files
  export IMG=$D/pool.img MNT=$D/btrfs
  truncate -s 1G "$IMG"
  mkfs.btrfs -q "$IMG"
  LOOP=$(losetup -f --show "$IMG")
  echo "$LOOP" >"$D/loop"
  mkdir -p "$MNT"
  mount "$LOOP" "$MNT"
  cat >"$D/celld.conf" <<EOF2
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 2
cgroup_parent = $CGPARENT
lxcfs = off
pool.fast.path = $MNT/cell
EOF2
  start_daemon
  ctl image import "$TEMPLATE" --name bb >/dev/null
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  ctl image rm bb >/dev/null 2>&1 || true
  celld_leaks || true
  umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
  [ -f "$D/loop" ] && losetup -d "$(cat "$D/loop")" 2>/dev/null || true
  rm -f "$IMG"
}

teardown() {
  destroy_all
}

SLEEP="/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"

# The subvolumes of the pool's filesystem whose path names the instance.
subvolumes_of() { # name
  btrfs subvolume list "$MNT" | grep -c "instances/$1/disk" || true
}

@test "a disk limit in a btrfs pool stops a write inside; set disk= changes it live" {
  run -0 ctl create q --image bb --pool fast --disk 50M --init "$SLEEP"
  # The disk is a subvolume of the pool, under its qgroup limit.
  [ "$(stat -c %i "$MNT/cell/instances/q/disk")" = 256 ]
  [ "$(subvolumes_of q)" = 1 ]
  [ "$(field q .pool)" = fast ]
  [ "$(field q .disk)" = $((50 << 20)) ]
  ctl start q
  run inside q dd if=/dev/zero of=/big bs=1M count=100
  [ "$status" -ne 0 ]
  [[ "$output" == *"Disk quota exceeded"* || "$output" == *"No space left"* ]]
  inside q rm -f /big
  sync
  run -0 ctl set q disk=200M
  [ "$(field q .disk)" = $((200 << 20)) ]
  run -0 inside q dd if=/dev/zero of=/big bs=1M count=100
  # show counts what the disk holds.
  used=$(field q .disk_used)
  [ "$used" -ge $((100 << 20)) ]
  [ "$used" -lt $((200 << 20)) ]
  ctl stop q --timeout 5
  # The record keeps the limit, and a restart keeps the data.
  ctl start q
  run -0 inside q stat -c %s /big
  [ "$output" = $((100 << 20)) ]
}

@test "pools --json shows the btrfs pool with quotas and its instance, and the default pool" {
  ctl create p1 --image bb --pool fast --disk 20M --init "$SLEEP"
  run -0 ctl pools --json
  fast=$(jq -c '.[] | select(.name == "fast")' <<<"$output")
  [ "$(jq -r .filesystem <<<"$fast")" = btrfs ]
  [ "$(jq -r .quota <<<"$fast")" = btrfs-qgroups ]
  [ "$(jq -r .path <<<"$fast")" = "$MNT/cell" ]
  [ "$(jq -r .size <<<"$fast")" -gt $((900 << 20)) ]
  [ "$(jq -r '.instances[0].name' <<<"$fast")" = p1 ]
  [ "$(jq -r '.instances[0].disk' <<<"$fast")" = $((20 << 20)) ]
  dflt=$(jq -c '.[] | select(.name == "default")' <<<"$output")
  [ "$(jq -r .path <<<"$dflt")" = "$STATE" ]
  [ "$(jq -r '.instances | length' <<<"$dflt")" = 0 ]
  run -0 ctl pools
  [[ "$output" == *fast*btrfs*btrfs-qgroups* ]]
}

@test "--disk in a pool without quotas is refused, naming the pool and its filesystem; nothing is left" {
  fs=$(stat -f -c %T "$STATE")
  [ "$fs" != btrfs ] || skip "the state directory is on btrfs"
  run ctl create nq --image bb --disk 50M --init "$SLEEP"
  [ "$status" -ne 0 ]
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"pool \`default\` is on "*", which has no quotas celld can set"*"put the instance in a pool on btrfs, or on XFS or ext4 mounted with prjquota (pool.NAME.path)"* ]]
  [ ! -e "$STATE/instances/nq" ]
  [ ! -e "$STATE/instances/nq.json" ]
  run ctl show nq
  [ "$status" -ne 0 ]
  # Without --disk the default pool takes it, and set disk= is refused alike.
  ctl create nq --image bb --init "$SLEEP"
  run ctl set nq disk=10M
  [ "$status" -ne 0 ]
  [[ "$output" == *"which has no quotas celld can set"* ]]
  [ "$(field nq .disk)" = 0 ]
}

@test "an unknown pool is refused" {
  run ctl create x --image bb --pool nosuch --init "$SLEEP"
  [ "$status" -ne 0 ]
  [[ "$output" == *"no pool \`nosuch\`"*"cellctl pools"* ]]
  [ ! -e "$STATE/instances/x" ]
}

@test "destroy leaves no subvolume in the pool, and snapshot, clone and rename work across filesystems" {
  ctl create d --image bb --pool fast --disk 100M --init "$SLEEP"
  ctl start d
  inside d sh -c 'echo kept > /note'
  ctl stop d --timeout 5
  # The store is on another filesystem: the layer is copied, not moved.
  run -0 ctl snapshot d s1
  run -0 ctl clone d d2
  [ "$(subvolumes_of d2)" = 1 ]
  [ "$(field d2 .pool)" = fast ]
  ctl start d2
  run -0 inside d2 cat /note
  [ "$output" = kept ]
  ctl stop d2 --timeout 5
  run -0 ctl rename d2 d3
  [ -d "$MNT/cell/instances/d3/disk" ]
  [ ! -e "$MNT/cell/instances/d2" ]
  ctl start d3
  run -0 inside d3 cat /note
  [ "$output" = kept ]
  ctl destroy d3 -f
  ctl destroy d
  [ "$(subvolumes_of d)" = 0 ]
  [ "$(subvolumes_of d3)" = 0 ]
  [ -z "$(ls -A "$MNT/cell/instances")" ]
  # Once the kernel's cleaner has dropped them, their qgroups go too.
  btrfs subvolume sync "$MNT" >/dev/null
  run -0 btrfs qgroup show "$MNT"
  [[ "$output" != *stale* ]]
}

# A stopped instance's layer on a btrfs pool cannot be renamed into the
# store (a rename never leaves a subvolume): it is copied, which takes as
# long as the layer is large.
@test "dos: a stopped instance's snapshot on a btrfs pool copies in a child: celld serves on, the instance is held, a copy killed leaves nothing" {
  ctl create d --image bb --pool fast --init "$SLEEP"
  ctl create other --image bb --init "$SLEEP"
  ctl start d
  inside d sh -c 'echo kept > /note'
  ctl stop d --timeout 5
  CELLD_TEST_PAUSE=snapshot-copy restart_celld
  : >"$D/celld.log"
  (exec "$CELLCTL" --socket "$SOCK" snapshot d s1 >"$D/snap.out" 2>&1) &
  local client=$! child
  child=$(paused_child 1)
  # celld serves the others; the one under the copy cannot start.
  run -0 timeout 5 "$CELLCTL" --socket "$SOCK" start other
  [ "$(field d .busy)" = snapshot ]
  run -7 --separate-stderr ctl start d
  [ "$stderr" = "cellctl: instance \`d\`: a snapshot of it is being copied: try again when \`cellctl snapshot\` has answered" ]
  snapshot_copy_killed d "$child" "$client"
  # Without the pause: taken; the instance goes on above it, its writable
  # layer empty, and the copy it moved aside goes (in a child too).
  restart_celld
  run -0 ctl snapshot d s1
  local disk=$MNT/cell/instances/d/disk
  [ -z "$(ls -A "$disk/upper")" ]
  for _ in $(seq 100); do
    [ -z "$(ls -d "$disk"/upper.* 2>/dev/null)" ] && break
    sleep 0.1
  done
  [ -z "$(ls -d "$disk"/upper.* 2>/dev/null)" ]
  ctl start d
  run -0 inside d cat /note
  [ "$output" = kept ]
  # A clone copies the same way, and has what was written since.
  inside d sh -c 'echo more > /more'
  ctl stop d --timeout 5
  run -0 ctl clone d d2
  [ -z "$(ls -A "$disk/upper")" ]
  ctl start d2
  run -0 inside d2 cat /note /more
  [ "$output" = "kept
more" ]
}

@test "a disk left in a pool without its instance is removed by the next celld; an instance's disk stays" {
  ctl create keep --image bb --pool fast --disk 30M --init "$SLEEP"
  # What a celld killed in the middle of a create leaves.
  mkdir -p "$MNT/cell/instances/ghost"
  btrfs subvolume create "$MNT/cell/instances/ghost/disk" >/dev/null
  kill "$(cat "$D/celld.pid")"
  for _ in $(seq 50); do
    kill -0 "$(cat "$D/celld.pid")" 2>/dev/null || break
    sleep 0.1
  done
  start_daemon
  [ ! -e "$MNT/cell/instances/ghost" ]
  [ "$(subvolumes_of ghost)" = 0 ]
  [ "$(subvolumes_of keep)" = 1 ]
  [ "$(field keep .disk)" = $((30 << 20)) ]
  grep -q "ghost: a disk left by an earlier celld" "$D/celld.log"
}
