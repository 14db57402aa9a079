# shellcheck shell=bash disable=SC2016
# celld killed with SIGKILL at each step of snapshot, clone, rename,
# restore, export and import (tests/fault/fault-inject.c, CELL_FAULT_KILL:
# the Nth call that marks a step, a rename, a mkdir, an unlink, a mount,
# kills celld before it is made; an export, whose steps are its child's
# writes, is killed while it streams).  After each: a new celld on the
# same state answers list, show, snapshots and image list; the op is done
# or undone, never half (the instance's files are the ones before or the
# ones after); no intent, record, directory or layer is left without its
# owner; and once everything is destroyed the pool is empty.  The same
# walk with each step failed (EIO) instead: one clear line, celld serves,
# the op done or undone.

bats_require_minimum_version 1.5.0

BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-600}
load ../bats/celld-helpers
POOL_START=74000000
POOL_COUNT=$((65536 * 8))
SHIM=${CELL_TEST_HELPERS:-$REPO/build/tests}/fault-inject.so
# The calls that mark a step: a record's write is its rename (the fsyncs
# around it add no state of their own).
STEPS=rename,renameat,mkdirat,unlinkat,mount,umount2

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  [ -f "$SHIM" ] || skip "no $SHIM"
  export CGPARENT=/cell-test-crash-$$
  export FAULT_STATE=$BATS_FILE_TMPDIR/fault-state
  head -c $((4096 + 65536 * 8)) /dev/zero >"$FAULT_STATE"
  celld_files
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
stop_timeout = 2
cgroup_parent = $CGPARENT
lxcfs = off
EOF
  # A btrfs pool, where a disk is a subvolume of its own: a freeze copies
  # its layer across, a rename moves its directory there too.
  export MNT=$D/btrfs
  if command -v mkfs.btrfs >/dev/null; then
    truncate -s 1G "$D/pool.img"
    mkfs.btrfs -q "$D/pool.img"
    losetup -f --show "$D/pool.img" >"$D/loop"
    mkdir -p "$MNT"
    mount "$(cat "$D/loop")" "$MNT"
    echo "pool.fast.path = $MNT/cell" >>"$D/celld.conf"
  fi
  export CELLD_PREFIX="env LD_PRELOAD=$SHIM CELL_FAULT_STATE=$FAULT_STATE CELL_FAULT_AT=file CELL_FAULT_KILL=1 CELL_FAULT_ONLY=$STEPS ASAN_OPTIONS=verify_asan_link_order=0"
  start_daemon
  ctl image import "$TEMPLATE" --name bb >/dev/null
}

teardown_file() {
  [ -n "$D" ] || return 0
  set_fault 0
  celld_stop
  ctl image rm bb >/dev/null 2>&1 || true
  celld_leaks
  if [ -f "$D/loop" ]; then
    umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
    losetup -d "$(cat "$D/loop")" 2>/dev/null || true
    rm -f "$D/pool.img"
  fi
}

teardown() {
  set_fault 0
  set_failing 0
  celld_alive || start_daemon
  destroy_all
}

# set_fault N: celld is killed at its Nth counted call from now on (0:
# never), the count starting over (python, as celld-fault.bats has it,
# takes 0.2 s to start here: a walk sets it twice per step).
set_fault() {
  dd if=/dev/zero of="$FAULT_STATE" bs=272 count=1 conv=notrunc status=none
  local n=$1 le="" b i
  for i in 0 1 2 3 4 5 6 7; do
    printf -v b '\\x%02x' $(((n >> (8 * i)) & 255))
    le+=$b
  done
  printf "$le" | dd of="$FAULT_STATE" bs=1 seek=272 conv=notrunc status=none
}
# set_failing 1: the Nth call fails with EIO instead (celld lives on);
# 0: it kills celld.
set_failing() {
  printf "\\x0$1" | dd of="$FAULT_STATE" bs=1 seek=280 conv=notrunc status=none
}
fault_calls() { od -An -t d8 -N 8 "$FAULT_STATE" | tr -d ' '; }
fault_site() { dd if="$FAULT_STATE" bs=1 skip=16 count=256 2>/dev/null | tr -d '\0'; }

# (A killed celld may be a zombie for a while: kill -0 would still see it.)
celld_alive() { ctl list >/dev/null 2>&1; }
# The first call of each distinct path of the last counting run (as in
# celld-fault.bats): a loop's steps (an rm -rf) are killed at once, not
# at each file.
fault_points() {
  od -An -v -w8 -t u8 -j 4096 -N $(($(fault_calls) * 8)) "$FAULT_STATE" |
    awk '!seen[$1]++ {print NR}'
}

# Where NAME's disk is: in the default pool or in the btrfs one.
disk_of() {
  if [ "$(jq -r '.pool // "default"' "$STATE/instances/$1.json")" = fast ]; then
    echo "$MNT/cell/instances/$1/disk"
  else
    echo "$STATE/instances/$1/disk"
  fi
}

# A stopped instance w of the image, in the pool $WPOOL names (the
# default one when empty), with a file of its own written into its
# writable layer (container-relative ids: root's file).
make_w() {
  ctl create w --image bb ${WPOOL:+--pool "$WPOOL"} >/dev/null
  echo "${1:-one}" >"$(disk_of w)/upper/note"
}

# What NAME's /note reads, through its layers as overlayfs stacks them
# (its writable layer, its own layers top first, its image's): "-" when a
# whiteout hides it or no layer has it.
note_of() {
  local rec=$STATE/instances/$1.json dir
  for dir in "$(disk_of "$1")/upper" \
    $(jq -r '((.own_layers // []) | reverse | .[]), (.layers | reverse | .[])' "$rec" |
      sed "s|^sha256:|$STATE/images/layers/|"); do
    if [ -c "$dir/note" ]; then
      echo -
      return
    elif [ -e "$dir/note" ]; then
      cat "$dir/note"
      return
    fi
  done
  echo -
}

# What a new celld must find after any crash, whatever the op: it
# answers; no intent or half-written file; a directory for each record
# and a record for each directory, each disk with its writable layer;
# every layer of the store held by an image, an instance or a snapshot.
consistent() {
  ctl list >/dev/null && ctl image list >/dev/null || return 1
  local n
  for n in $(ctl list --json | jq -r '.[].name'); do
    ctl show "$n" >/dev/null && ctl snapshots "$n" >/dev/null || return 1
    [ -d "$(disk_of "$n")/upper" ] ||
      { echo "$n: no writable layer" >&2; return 1; }
  done
  local f
  for f in "$STATE"/instances/* "$STATE"/instances/.[!.]*; do
    [ -e "$f" ] || continue
    case $f in
    *.json) [ -d "${f%.json}" ] || { echo "record without directory: $f" >&2; return 1; } ;;
    *.intent | */.*) echo "left: $f" >&2; return 1 ;;
    *) [ -f "$f.json" ] || { echo "directory without record: $f" >&2; return 1; } ;;
    esac
  done
  for f in "$MNT"/cell/instances/*; do
    [ -e "$f" ] || continue
    [ -f "$STATE/instances/${f##*/}.json" ] || { echo "a disk in the pool without record: $f" >&2; return 1; }
  done
  local held
  held=$(cat "$STATE"/images/images/*.json "$STATE"/instances/*.json 2>/dev/null |
    jq -r '(.layers // [])[], (.own_layers // [])[], ((.snapshots // [])[] | .own_layers[])' |
    sed 's/sha256://' | sort -u)
  local orphans
  orphans=$(comm -23 <(ls "$STATE/images/layers" | sort) <(echo "$held"))
  [ -z "$orphans" ] || { echo "layers no one holds: $orphans" >&2; return 1; }
  [ -z "$(ls -A "$STATE/images/tmp")" ] || { echo "import left: $(ls "$STATE/images/tmp")" >&2; return 1; }
}

# After everything is destroyed: no instance, mount, cgroup, layer but
# the image's.
empty_after_destroy() {
  destroy_all
  [ -z "$(ctl list --json | jq -r '.[].name')" ] || return 1
  [ -z "$(ls -A "$STATE/instances")" ] || { echo "left in instances/: $(ls -A "$STATE/instances")" >&2; return 1; }
  [ -z "$(ls -A "$MNT/cell/instances" 2>/dev/null)" ] || { echo "left in the pool: $(ls -A "$MNT/cell/instances")" >&2; return 1; }
  ! grep -q " $STATE/instances/" /proc/self/mountinfo || { echo "mounts left" >&2; return 1; }
  [ -z "$(find /sys/fs/cgroup/*"$CGPARENT" -mindepth 1 -type d 2>/dev/null)" ] || { echo "cgroups left" >&2; return 1; }
  local img
  img=$(cat "$STATE"/images/images/*.json | jq -r '.layers[]' | sed 's/sha256://' | sort -u)
  [ "$(ls "$STATE/images/layers" | sort)" = "$img" ] || { echo "layers left: $(ls "$STATE/images/layers")" >&2; return 1; }
}

# walk OP [fail]: for each step N of the op (counted in a first run; one
# of each path), prepare_OP,
# run_OP with celld killed at N, a new celld on the same state, check_OP
# and consistent, then everything destroyed.  With fail, the call fails
# instead: celld lives on, and a failed op says so in one line.
walk() {
  local op=$1 failing=${2:+1} n total points rc site kills=0 failed=0
  set_failing "${failing:-0}"
  "prepare_$op"
  set_fault 0
  "run_$op" >/dev/null 2>&1
  total=$(fault_calls)
  points=$(fault_points)
  "check_$op" done
  empty_after_destroy
  [ "$total" -gt 0 ]
  trap - DEBUG
  set +o functrace
  for n in $points; do
    "prepare_$op"
    set_fault "$n"
    rc=0
    "run_$op" >"$BATS_TEST_TMPDIR/out" 2>&1 || rc=$?
    site=$(fault_site)
    set_fault 0
    if ! celld_alive; then
      [ -z "$failing" ] || { echo "$op, step $n ($site): celld died" >&2; return 1; }
      kills=$((kills + 1))
      start_daemon
    elif [ -n "$failing" ] && [ "$rc" != 0 ]; then
      failed=$((failed + 1))
      if [ "$(wc -l <"$BATS_TEST_TMPDIR/out")" != 1 ] || ! grep -q '^cellctl: ' "$BATS_TEST_TMPDIR/out"; then
        echo "$op, step $n ($site): not one clear line: $(cat "$BATS_TEST_TMPDIR/out")" >&2
        return 1
      fi
    fi
    if ! consistent; then
      echo "$op, step $n ($site): inconsistent after the crash" >&2
      return 1
    fi
    if ! "check_$op" either; then
      echo "$op, step $n ($site): half done (rc $rc: $(cat "$BATS_TEST_TMPDIR/out"))" >&2
      return 1
    fi
    if ! empty_after_destroy; then
      echo "$op, step $n ($site): not empty once all is destroyed" >&2
      return 1
    fi
  done
  set -o functrace
  if [ -n "$failing" ]; then
    echo "# $op: $total steps on $(echo "$points" | wc -w) paths, each failed in turn: $failed made it fail cleanly, the rest were survived" >&3
    [ "$failed" -gt 0 ]
  else
    echo "# $op: $total steps on $(echo "$points" | wc -w) paths, celld killed at each of $kills" >&3
    [ "$kills" -gt 0 ]
  fi
}

# check_OP done|either: the op done (after the counting run), or done or
# undone (after a crash).

prepare_snapshot() { make_w; }
run_snapshot() { ctl snapshot w s1; }
check_snapshot() {
  [ "$(note_of w)" = one ] || return 1
  local snaps
  snaps=$(ctl snapshots w --json | jq -r '.[].name' | xargs)
  [ "$snaps" = s1 ] || { [ "$1" = either ] && [ -z "$snaps" ]; }
}

prepare_clone() { make_w; }
run_clone() { ctl clone w c; }
check_clone() {
  [ "$(note_of w)" = one ] || return 1
  if ctl show c >/dev/null 2>&1; then
    [ "$(note_of c)" = one ]
  else
    [ "$1" = either ]
  fi
}

prepare_rename() { make_w; }
run_rename() { ctl rename w r; }
check_rename() {
  local names
  names=$(ctl list --json | jq -r '.[].name' | xargs)
  if [ "$names" = r ]; then
    [ "$(note_of r)" = one ]
  else
    [ "$1" = either ] && [ "$names" = w ] && [ "$(note_of w)" = one ]
  fi
}

prepare_restore() {
  make_w
  ctl snapshot w s1 >/dev/null
  echo two >"$(disk_of w)/upper/note"
}
run_restore() { ctl restore w s1; }
check_restore() {
  local note
  note=$(note_of w)
  [ "$note" = one ] || { [ "$1" = either ] && [ "$note" = two ]; }
}

prepare_import() {
  if [ ! -s "$D/w.cell" ]; then
    make_w
    ctl export w "$D/w.cell" >/dev/null
    ctl destroy w >/dev/null
  fi
}
run_import() { ctl import "$D/w.cell" --name i; }
check_import() {
  if ctl show i >/dev/null 2>&1; then
    [ "$(note_of i)" = one ]
  else
    [ "$1" = either ]
  fi
}

@test "celld killed at each step of a snapshot: the next celld has it whole or not at all" {
  walk snapshot
}

@test "celld killed at each step of a clone: the next celld has the clone whole or not at all" {
  walk clone
}

@test "celld killed at each step of a rename: the instance is under one name, with its disk" {
  walk rename
}

@test "celld killed at each step of a restore: the snapshot's files or the ones before, never a mix" {
  walk restore
}

@test "each step of a snapshot, a restore, a rename, a clone and an import failed in turn: one clear line, done or undone, nothing left" {
  walk snapshot fail
  walk restore fail
  walk rename fail
  walk clone fail
  walk import fail
}

@test "in a btrfs pool, celld killed at each step of a snapshot (its layer copied across) and a rename (its disk's directory too)" {
  [ -f "$D/loop" ] || skip "no mkfs.btrfs (btrfs-progs)"
  WPOOL=fast walk snapshot
  WPOOL=fast walk rename
}

@test "celld killed in the middle of an export: the instance stays as it was, nothing of the export is left" {
  make_w
  # A reader that takes the stream's first KiB, then stops reading: the
  # export's child blocks in the middle of its stream, and celld dies.
  local read=$BATS_TEST_TMPDIR/read reader=$BATS_TEST_TMPDIR/reader
  (ctl export w - 2>/dev/null | {
    head -c 1000 >/dev/null
    echo "$BASHPID" >"$reader"
    touch "$read"
    exec sleep 60
  }) &
  exporter=$!
  for _ in $(seq 200); do [ -e "$read" ] && break; sleep 0.05; done
  [ -e "$read" ]
  kill -9 "$(cat "$D/celld.pid")"
  kill "$(cat "$reader")"
  wait "$exporter" || true
  start_daemon
  consistent
  [ "$(note_of w)" = one ]
  # It exports whole now.
  ctl export w "$BATS_TEST_TMPDIR/w.cell" >/dev/null
  empty_after_destroy
  ctl import "$BATS_TEST_TMPDIR/w.cell" --name i >/dev/null
  [ "$(note_of i)" = one ]
  empty_after_destroy
}

@test "celld killed at each step of an import: the instance is whole or not there" {
  walk import
}
