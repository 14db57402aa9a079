#!/bin/bash
# The cgroup tests once more on a cgroup v2 only kernel: boot the VM of
# VM_RUN once and run build/tests/test-cgroup and tests/bats/cgroups.bats
# in it (make check-cgroupv2), runc-runtime.bats' tests of a pre-existing
# container cgroup (cgroup.freeze), a selection of the celld tests, the
# XFS and ext4 project quota tests (celld-quota.bats), and the AppArmor
# test (the guest kernel has AppArmor enabled).
#
# Usage: tests/bats/cgroupv2.sh VM_RUN [BUILD_DIR]
#
# Everything is made on the host first (the guest runs programs ~50 times
# slower): the build, and the busybox rootfs of the tests in
# BUILD_DIR/test-rootfs, since the guest's /var/tmp is a fresh tmpfs.  The
# repository is shared read-write into the guest at the same path, so the
# build directory must be inside it.  The guest's /tmp and /run, where the
# tests keep their bundles and state, are writable tmpfs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd -P)
vm_run=${1:?usage: $0 VM_RUN [BUILD_DIR]}
build=$(cd "${2:-$repo/build}" && pwd -P)

die() {
  echo "check-cgroupv2: $*" >&2
  exit 1
}

[ -x "$vm_run" ] ||
  die "no VM tool at \`$vm_run' (VM_RUN=...): the cgroup v2 tests cannot run"
case "$build/" in
"$repo"/*) ;;
*) die "the build directory \`$build' must be inside \`$repo', which the VM shares" ;;
esac
for f in cell tests/test-cgroup; do
  [ -x "$build/$f" ] || die "\`$build/$f' is missing: build it first (make check-cgroupv2 does)"
done

# The same stamp as helpers.bash's ensure_test_rootfs, so that the guest
# takes this rootfs as it is.
mkrootfs=$repo/rootfs-tools/mkrootfs-busybox
rootfs=$build/test-rootfs
stamp=$rootfs/.cell-test-rootfs
if ! [ -f "$stamp" ] || ! [ "$stamp" -nt "$mkrootfs" ]; then
  rm -rf "$rootfs"
  "$mkrootfs" "$rootfs" >/dev/null
  mkdir -p "$rootfs/host"
  touch "$stamp"
fi

# The Debian guest image of celld-systemd.bats, built once on the host (the
# guest sees the host's / under /host).
debian=$("$repo/tests/bats/debian-image.sh")

# Runs in the guest: $1 the repository, $2 the build directory, $3 the
# Debian image.
# shellcheck disable=SC2016 # expanded in the guest
guest_script='
set -eu
cd "$1"
if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
  echo "check-cgroupv2: the guest has no cgroup v2 hierarchy at /sys/fs/cgroup" >&2
  exit 1
fi
echo "# cgroup v2 guest, controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "# $2/tests/test-cgroup"
"$2/tests/test-cgroup"
# A copy in a tmpfs of the guest: containers start faster than from 9p.
rootfs=/var/tmp/cell-test-rootfs
cp -a "$2/test-rootfs" "$rootfs"
echo "# tests/bats/cgroups.bats"
# Everything takes ~50 times longer in the guest: so may the waits.
CELL="$2/cell" CELL_TEST_ROOTFS="$rootfs" CELL_TEST_POLL_TENTHS=1200 \
  BATS_TEST_TIMEOUT=600 bats --timing tests/bats/cgroups.bats
echo "# tests/bats/runc-runtime.bats (its pre-existing cgroup tests)"
CELL="$2/cell" CELL_TEST_ROOTFS="$rootfs" CELL_TEST_POLL_TENTHS=1200 \
  BATS_TEST_TIMEOUT=600 bats --timing -f "pre-existing cgroup" tests/bats/runc-runtime.bats
# celld on cgroup v2 alone: an instance'"'"'s lifecycle and limits, its OOM
# event, a console, two instances on a network, and their usage.
echo "# tests/bats/celld*.bats (a selection)"
export CELLD="$2/celld" CELLCTL="$2/cellctl" BATS_TEST_TIMEOUT=600
# The busybox template of every celld file, copied over 9p once.
cp -a "$2/rootfs" /var/tmp/cell-template
export CELLD_TEST_TEMPLATE_SRC=/var/tmp/cell-template
bats --timing -f "lifecycle|events: oom" tests/bats/celld.bats
bats --timing -f "ring buffer on attach" tests/bats/celld-console.bats
bats --timing -f "reach each other" tests/bats/celld-net.bats
# Usage from the v2 files (memory.current and .peak, cpu.stat, pids.current).
bats --timing -f "memory current|CPU time|metrics is" tests/bats/celld-metrics.bats
# A device given and taken live: v2 replaces the instance'"'"'s BPF program.
CELL_TEST_HELPERS="$2/tests" bats --timing \
  -f "device given live|attack: a tenant keeps|fails in the middle" tests/bats/celld-live.bats
# Disk quotas on XFS and ext4 project quotas, which the host kernels of
# this project lack (CONFIG_XFS_QUOTA, CONFIG_QFMT_V2).
echo "# tests/bats/celld-quota.bats"
CELL_TEST_HELPERS="$2/tests" bats --timing tests/bats/celld-quota.bats
# Instances on cgroup v2 alone: their cgroups are their own and delegated,
# their mounts what systemd needs, and a Debian guest boots with systemd
# (the image built on the host), reboots, stops in under 5 s (about 2 s
# here) and powers off.
echo "# tests/bats/celld-root.bats (a selection), celld-systemd.bats"
bats --timing -f "cgroup|delegation|systemd needs" tests/bats/celld-root.bats
CELL_TEST_DEBIAN=$3 bats --timing tests/bats/celld-systemd.bats
# AppArmor, which the guest kernel has enabled: process.apparmorProfile.
echo "# tests/bats/apparmor.bats"
CELL="$2/cell" CELL_TEST_ROOTFS="$rootfs" CELL_TEST_POLL_TENTHS=1200 \
  bats --timing tests/bats/apparmor.bats
'

start=$(date +%s)
# A guest that hangs fails the run rather than the CI job's time limit.
rc=0
VM_TIMEOUT=${VM_TIMEOUT:-1800} "$vm_run" "$repo" bash -c "$guest_script" \
  guest "$repo" "$build" "/host$debian" || rc=$?
echo "# check-cgroupv2: exit status $rc after $(($(date +%s) - start)) s"
exit "$rc"
