# shellcheck shell=bash disable=SC2016
# Disk quotas on XFS and ext4 project quotas: a pool on a loop-mounted XFS
# image (prjquota) and one on an ext4 image (-O quota,project, prjquota),
# each instance's disk a directory with a project id of its own whose
# block limit a write inside runs into, the limit changed live and seen by
# df inside, snapshots and clones keeping their ids, no project id or
# limit left once the instances are gone, and none that an instance can
# leave.  The kernels of this project's
# build hosts lack XFS quotas and ext4's quota format: these run in the
# cgroup v2 guest (make check-cgroupv2), and skip elsewhere.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=70000000
POOL_COUNT=$((65536 * 8))

# Mount a small loop image of filesystem fs ($1) with project quotas at
# $D/$1, or fail: the kernel or the tools lack them.
make_pool_fs() { # fs
  local img=$D/$1.img mnt=$D/$1
  case $1 in
  xfs)
    truncate -s 300M "$img" # mkfs.xfs's least
    mkfs.xfs -q "$img" ;;
  ext4)
    truncate -s 128M "$img"
    mkfs.ext4 -q -O quota,project "$img" ;;
  esac
  mkdir -p "$mnt"
  local loop
  loop=$(losetup -f --show "$img")
  echo "$loop" >>"$D/loops"
  mount -o prjquota "$loop" "$mnt"
}

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  command -v mkfs.xfs >/dev/null || skip "no mkfs.xfs (xfsprogs)"
  export CGPARENT=/cell-test-quota-$$
  celld_files
  # (A skip in setup_file fails the file in Debian 12's bats: each test
  # skips instead.)
  if ! make_pool_fs xfs 2>"$D/why" || ! make_pool_fs ext4 2>>"$D/why"; then
    export NO_QUOTAS="this kernel has no XFS or ext4 project quotas (mount -o prjquota: $(head -1 "$D/why" | cut -c1-100))"
    return 0
  fi
  # The state dir (the image store, the default pool) on the XFS one too:
  # the guest's tmpfs has no idmapped mounts (Linux 6.3), which snapshots
  # and clones need.  The XFS pool shares the store's filesystem, the ext4
  # one does not.
  mkdir "$D/xfs/state"
  cp -a "$STATE/." "$D/xfs/state/"
  rm -rf "$STATE"
  export STATE=$D/xfs/state TEMPLATE=$D/xfs/state/templates/busybox
  cp "${CELL_TEST_HELPERS:-$REPO/build/tests}/try-syscall" "$TEMPLATE/bin/"
  cat >"$D/celld.conf" <<EOF2
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 2
cgroup_parent = $CGPARENT
lxcfs = off
pool.xfs.path = $D/xfs/cell
pool.ext4.path = $D/ext4/cell
EOF2
  start_daemon
  ctl image import "$TEMPLATE" --name bb >/dev/null
}

teardown_file() {
  [ -n "$D" ] || return 0
  # (Skipped before celld started: only the loop devices to undo.)
  if [ -f "$D/celld.pid" ]; then
    celld_stop
    ctl image rm bb >/dev/null 2>&1 || true
    celld_leaks || true
  fi
  umount "$D/xfs" "$D/ext4" 2>/dev/null || true
  [ -f "$D/loops" ] && xargs -r -n1 losetup -d <"$D/loops" 2>/dev/null || true
  rm -f "$D/xfs.img" "$D/ext4.img"
}

setup() {
  [ -z "${NO_QUOTAS:-}" ] || skip "$NO_QUOTAS"
}

teardown() {
  [ -n "${NO_QUOTAS:-}" ] || destroy_all
}

SLEEP="/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"

# The project quota records of the pool's filesystem with a block limit or
# usage, as "id used-KiB hard-limit-KiB", ids of this file's pool only.
projects() { # fs
  xfs_quota -x -f -c "report -p -n -N -b" "$D/$1" |
    awk -v s="$POOL_START" -v e="$((POOL_START + POOL_COUNT))" \
      '{id = substr($1, 2)} id >= s && id < e && ($2 > 0 || $4 > 0) {print id, $2, $4}'
}

# The project id of a directory.
project_of() { # path
  lsattr -pd "$1" | awk '{print $1}'
}

# The 1K-blocks size df shows for / inside the instance.
df_size() { # name
  inside "$1" df -k / | awk 'NR == 2 {print $2}'
}

# A limit stops a write inside, set disk= changes it live, df and show
# tell it; a snapshot's new upper and a clone's disk keep a project each;
# destroy leaves no project or limit.
quota_in_pool() { # fs
  local fs=$1 disk=$D/$1/cell/instances/q/disk
  run -0 ctl create q --image bb --pool "$fs" --disk 20M --init "$SLEEP"
  id=$(field q .id_start)
  [ "$(project_of "$disk")" = "$id" ]
  lsattr -d "$disk" | grep -q '^[^ ]*P'  # inherited by what is made in it
  ctl start q
  [ "$(project_of "$disk/upper")" = "$id" ]
  run inside q dd if=/dev/zero of=/big bs=1M count=40
  [ "$status" -ne 0 ]
  [[ "$output" == *"Disk quota exceeded"* || "$output" == *"No space left"* ]]
  [ "$(df_size q)" = 20480 ]
  inside q rm -f /big
  run -0 ctl set q disk=60M
  [ "$(field q .disk)" = $((60 << 20)) ]
  run -0 inside q dd if=/dev/zero of=/big bs=1M count=40
  [ "$(df_size q)" = 61440 ]
  used=$(field q .disk_used)
  [ "$used" -ge $((40 << 20)) ]
  [ "$used" -lt $((60 << 20)) ]
  run -0 projects "$fs"
  [ "${lines[0]}" = "$id $((used >> 10)) 61440" ]
  # A running instance's snapshot copies its layer.
  ctl snapshot q s1
  inside q sh -c 'echo after > /note'
  # A stopped one's clone moves the layer out (a copy, reflinked on XFS:
  # moved, its files would keep the project id); the new upper gets the
  # instance's id.
  ctl stop q --timeout 5
  ctl clone q q2
  [ "$(project_of "$disk/upper")" = "$id" ]
  # The layer's 40 MiB left the project with it.
  read -r pid pused plimit < <(projects "$fs")
  [ "$pid $plimit" = "$id 61440" ]
  [ "$pused" -lt 1024 ]
  id2=$(field q2 .id_start)
  [ "$id2" != "$id" ]
  [ "$(project_of "$D/$fs/cell/instances/q2/disk")" = "$id2" ]
  ctl start q2
  run -0 inside q2 cat /note
  [ "$output" = after ]
  run -0 ctl pools --json
  [ "$(jq -r ".[] | select(.name == \"$fs\") | .quota" <<<"$output")" = project ]
  ctl destroy q2 -f
  ctl destroy q -f
  [ -z "$(ls -A "$D/$fs/cell/instances")" ]
  run -0 projects "$fs"
  [ -z "$output" ]
}

@test "xfs: a project quota stops a write inside, set disk= changes it live, df shows it; nothing is left" {
  quota_in_pool xfs
}

@test "ext4: a project quota stops a write inside, set disk= changes it live, df shows it; nothing is left" {
  quota_in_pool ext4
}

@test "attack: an instance's root takes / out of its project to leave its disk quota" {
  ctl create esc --image bb --pool xfs --disk 10M --init "$SLEEP"
  ctl start esc
  run -1 inside esc try-syscall leave_project
  [ "$output" = EINVAL ] || [ "$output" = EPERM ]
  [ "$(project_of "$D/xfs/cell/instances/esc/disk/upper")" = "$(field esc .id_start)" ]
  run inside esc dd if=/dev/zero of=/big bs=1M count=20
  [ "$status" -ne 0 ]
  [[ "$output" == *"Disk quota exceeded"* || "$output" == *"No space left"* ]]
}

@test "a project limit left by a killed celld is lifted by the next; an instance's stays" {
  ctl create keep --image bb --pool ext4 --disk 30M --init "$SLEEP"
  keep=$(field keep .id_start)
  # What a celld killed after a limit and before its record leaves.
  stray=$((POOL_START + 7 * 65536))
  xfs_quota -x -f -c "limit -p bhard=10m $stray" "$D/ext4"
  kill "$(cat "$D/celld.pid")"
  for _ in $(seq 50); do
    kill -0 "$(cat "$D/celld.pid")" 2>/dev/null || break
    sleep 0.1
  done
  start_daemon
  run -0 projects ext4
  [ "$output" = "$keep 0 30720" ] || [[ "$output" == "$keep "*" 30720" && "${#lines[@]}" = 1 ]]
  grep -q "pool \`ext4\`: lifted 1 project quota limit left by an earlier celld" "$D/celld.log"
}
