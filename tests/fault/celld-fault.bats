# shellcheck shell=bash disable=SC2016
# Fault injection in celld: each fallible call celld makes (and the
# runtime in it, and the processes it forks: the image import's too) while
# it imports a template, creates, starts, stops and destroys an instance
# with a network, one call of each distinct
# path, is failed in turn with EIO (tests/fault/fault-inject.c).  After each: the client got one clear
# line, celld still serves, a destroy -f clears what is left, nothing
# leaked (mounts, processes of the pool, cgroups, veths, celld's fds), and
# the whole life of an instance works again.

bats_require_minimum_version 1.5.0

# A whole life, one failure point at a time, takes minutes.
BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-1200}
load ../bats/celld-helpers
POOL_START=29000000
POOL_COUNT=$((65536 * 8))
SHIM=${CELL_TEST_HELPERS:-$REPO/build/tests}/fault-inject.so

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  [ -f "$SHIM" ] || skip "no $SHIM"
  export NETNS=cellfault-$$ CGPARENT=/cell-test-fault-$$ BR=ctf$$
  export FAULT_STATE=$BATS_FILE_TMPDIR/fault-state
  head -c $((4096 + 65536 * 8)) /dev/zero >"$FAULT_STATE"
  celld_files
  ip netns add "$NETNS"
  # The network has its dnsmasq: started at the first attach, ended when
  # the last instance leaves, whether the bridge's removal works or not.
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
stop_timeout = 2
cgroup_parent = $CGPARENT
network.f.bridge = $BR
network.f.subnet4 = 10.97.1.0/24
network.f.subnet6 = none
EOF
  export CELLD_PREFIX="nsenter --net=/run/netns/$NETNS env LD_PRELOAD=$SHIM CELL_FAULT_STATE=$FAULT_STATE CELL_FAULT_AT=file ASAN_OPTIONS=verify_asan_link_order=0"
  start_daemon
}

teardown_file() {
  [ -n "$D" ] || return 0
  set_fault 0
  celld_stop
  ip netns del "$NETNS" 2>/dev/null || true
  celld_leaks
}

# set_fault N: from now on, fail celld's Nth counted call (0: none), the
# count starting over.
set_fault() {
  python3 - "$FAULT_STATE" "$1" <<'EOF'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.write(struct.pack("qq", 0, 0) + bytes(256))
    f.seek(272)
    f.write(struct.pack("q", int(sys.argv[2])))
EOF
}

fault_calls() {
  od -An -t d8 -N 8 "$FAULT_STATE" | tr -d ' '
}
fault_site() {
  dd if="$FAULT_STATE" bs=1 skip=16 count=256 2>/dev/null | tr -d '\0'
}
# The first call of each distinct path of the last counting run (see
# fault.bats).
fault_points() {
  od -An -v -w8 -t u8 -j 4096 -N $(($(fault_calls) * 8)) "$FAULT_STATE" |
    awk '!seen[$1]++ {print NR}'
}

celld_fds() {
  ls "/proc/$(cat "$D/celld.pid")/fd" | wc -l
}

# The network's dnsmasq processes (celld's children, by their pid file).
dnsmasq_pids() {
  pgrep -f "dnsmasq .*--pid-file=$STATE/dnsmasq/" || true
}

# Until CMD succeeds, at most 2 s: an ended dnsmasq is reaped, and its
# pidfd closed, a moment after the destroy's reply.
settles() {
  for _ in $(seq 20); do
    "$@" && return 0
    sleep 0.1
  done
  "$@"
}
no_dnsmasq() { [ -z "$(dnsmasq_pids)" ]; }

# The life of instance w, stopping at the first refusal; its output (one
# line from cellctl when something fails) in $LIFE_OUT.  The stop sends the
# halt signal and kills at once: busybox init's own poweroff takes 2 s, and
# the walk stops hundreds of times.
life() {
  {
    ctl create w --template "$TEMPLATE" --memory 64M --net f &&
      ctl start w &&
      ctl stop w --timeout 0 &&
      ctl destroy w
  } >"$LIFE_OUT" 2>&1 </dev/null
}

# What celld left of w after a failure, once destroy -f has run.
leftovers() {
  # (celld's own lxcfs serves as long as celld runs.)
  grep " $STATE/" /proc/self/mountinfo | grep -v " $STATE/lxcfs " |
    awk '{print "mount " $5}'
  pool_pids | sed 's/^/process /'
  # No instance left: no server for it, even when the bridge stayed.
  dnsmasq_pids | sed 's/^/dnsmasq /'
  find /sys/fs/cgroup/*"$CGPARENT" -mindepth 1 -type d 2>/dev/null | sed 's/^/cgroup /'
  nsenter --net="/run/netns/$NETNS" ip -o link show master "$BR" 2>/dev/null |
    awk -F': ' '{print "veth " $2}'
  # A port's filter chain (the ports' filters are begun before the
  # container is made, so a failure between leaves one to remove).
  nsenter --net="/run/netns/$NETNS" nft list chains bridge 2>/dev/null |
    awk '$1 == "chain" && $2 ~ /^port-/ {print "nft " $2}'
  # The image store: nothing of an import under way, no layer no image
  # holds (the instances are gone).
  ls -A "$STATE/images/tmp" | sed 's/^/import-tmp /'
  local used
  used=$(cat "$STATE"/images/images/*.json 2>/dev/null | jq -r '.layers[]' | sed 's/sha256://' | sort -u)
  comm -23 <(ls "$STATE/images/layers" | sort) <(echo "$used") | sed 's/^/layer /'
}

@test "fault injection in celld: every failure point of an instance's life fails cleanly and leaves nothing" {
  LIFE_OUT=$BATS_TEST_TMPDIR/life
  # The baseline: one whole life, counted.
  life
  set_fault 0
  life
  total=$(fault_calls)
  points=$(fault_points)
  [ "$total" -gt 50 ]
  # The life ran a dnsmasq on the network's bridge, which went with it.
  grep -q "network \`f\`: dnsmasq (pid [0-9]*) serves on $BR" "$D/celld.log"
  settles no_dnsmasq
  fds=$(celld_fds)
  # As in fault.bats: no tracing of the loop by bats.
  trap - DEBUG
  set +o functrace
  failed=0 sites=$BATS_TEST_TMPDIR/sites
  : >"$sites"
  for n in $points; do
    set_fault "$n"
    rc=0
    life || rc=$?
    site=$(fault_site)
    set_fault 0
    [ -z "$site" ] || echo "$site" >>"$sites"
    if ! ctl list >/dev/null; then
      echo "call $n ($site): celld no longer serves" >&2
      return 1
    fi
    if [ "$rc" -ne 0 ]; then
      failed=$((failed + 1))
      # (stop's report of what it does, and create's notice of the
      # template's import, are not error lines.)
      sed -i '/^stopping w: /d; /^stopped w in /d; /: imported as image /d' "$LIFE_OUT"
      if [ "$(wc -l <"$LIFE_OUT")" -ne 1 ] || ! grep -q '^cellctl: ' "$LIFE_OUT"; then
        echo "call $n ($site): not one clear line: $(cat "$LIFE_OUT")" >&2
        return 1
      fi
    fi
    if ! ctl destroy w -f >/dev/null 2>&1 && ctl show w >/dev/null 2>&1; then
      echo "call $n ($site): destroy -f cannot remove what is left" >&2
      return 1
    fi
    left=$(leftovers)
    if [ -n "$left" ]; then
      sleep 1
      left=$(leftovers)
    fi
    if [ -n "$left" ]; then
      echo "call $n ($site): left behind: $left" >&2
      return 1
    fi
    if ! settles eval '[ "$(celld_fds)" -le "$fds" ]'; then
      echo "call $n ($site): celld holds $(celld_fds) fds, $fds before" >&2
      return 1
    fi
  done
  set -o functrace
  # And the life of an instance works as before.
  life
  echo "# celld: $total calls of import, create, start, stop and destroy on $(echo "$points" | wc -w) paths, one of each failed in turn: $failed made the life fail cleanly, the rest were survived; $(sort -u "$sites" | wc -l) distinct call sites" >&3
}

# A walk of `cellctl snapshot` on instance sn (running or stopped), one
# failure point at a time; BEFORE runs before each try (a stopped
# instance's writable layer gets a file, so each try freezes one).  Every
# try that fails: one line, no snapshot recorded, no layer left unnamed,
# a running instance still running and not frozen.  The sites it failed
# at are appended to $sites.
snapshot_walk() { # running|stopped
  local n rc site out=$BATS_TEST_TMPDIR/snap-out
  set_fault 0
  $BEFORE 0
  ctl snapshot sn counted >/dev/null
  ctl snapshot rm sn counted
  for n in $(fault_points); do
    $BEFORE "$n"
    set_fault "$n"
    rc=0
    ctl snapshot sn "p$n" >"$out" 2>&1 </dev/null || rc=$?
    site=$(fault_site)
    set_fault 0
    [ -z "$site" ] || echo "$site" >>"$sites"
    if [ "$rc" -ne 0 ]; then
      if [ "$(wc -l <"$out")" -ne 1 ] || ! grep -q '^cellctl: ' "$out"; then
        echo "$1, call $n ($site): not one clear line: $(cat "$out")" >&2
        return 1
      fi
      if ctl snapshots sn | grep -qw "p$n"; then
        echo "$1, call $n ($site): the failed snapshot is recorded" >&2
        return 1
      fi
    else
      ctl snapshot rm sn "p$n"
    fi
    if [ -n "$(unnamed_layers)" ]; then
      echo "$1, call $n ($site): layers left unnamed: $(unnamed_layers)" >&2
      return 1
    fi
    if [ "$1" = running ] && ! timeout 10 "$CELLCTL" --socket "$SOCK" exec sn -- true </dev/null; then
      echo "$1, call $n ($site): the instance is left frozen or gone" >&2
      return 1
    fi
  done
}

no_file() { :; }
# A file in the stopped instance's writable layer, owned by its root.
upper_file() {
  local upper=$STATE/instances/sn/disk/upper
  echo "$1" >"$upper/f$1"
  chown --reference="$upper" "$upper/f$1"
}

@test "fault injection in snapshots: each failure point records nothing, leaves no layer and no frozen instance; the layer is synced before its record" {
  ctl image import "$TEMPLATE" --name fbb >/dev/null
  ctl create sn --image fbb --init "/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"
  ctl start sn
  ctl exec sn -- sh -c 'echo one >/note' </dev/null
  sites=$BATS_TEST_TMPDIR/sites
  : >"$sites"
  trap - DEBUG
  set +o functrace
  BEFORE=no_file snapshot_walk running
  ctl stop sn --timeout 0
  BEFORE=upper_file snapshot_walk stopped
  set -o functrace
  # The copy and the moved layer are synced before the record names them:
  # a syncfs was among the calls failed, and refused the snapshot.
  grep -q "^syncfs " "$sites"
  # And snapshots work as before.
  ctl snapshot sn last
  ctl destroy sn -f
  ctl image rm fbb
  [ -z "$(unnamed_layers)" ]
  echo "# snapshots: $(wc -l <"$sites") calls failed in turn, $(sort -u "$sites" | wc -l) distinct call sites" >&3
}
