#!/bin/bash
# The checkpoint and restore tests (tests/bats/criu.bats) where criu works:
# in the VM of VM_RUN (make check-criu), whose Debian 12 kernel (6.1)
# passes `criu check` with Debian's criu 3.17, which the kernels of 6.13
# and later do not (their vDSO layout is new to it).
#
# Usage: tests/bats/criu.sh VM_RUN [BUILD_DIR]
# CRIU_BENCH=1: then tests/bench/bench-criu.sh in the guest (figures).
#
# As tests/bats/cgroupv2.sh: everything is built on the host (the guest
# runs ~50 times slower), the busybox rootfs included, and the guest, which
# uses the host's /usr, finds criu there: it must be installed on the host
# (make deps).  The guest's /tmp and /run are tmpfs, so criu keeps its
# kernel-feature cache (/run/criu.kdat) in memory there.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd -P)
vm_run=${1:?usage: $0 VM_RUN [BUILD_DIR]}
build=$(cd "${2:-$repo/build}" && pwd -P)

die() {
  echo "check-criu: $*" >&2
  exit 1
}

[ -x "$vm_run" ] ||
  die "no VM tool at \`$vm_run' (VM_RUN=...): the criu tests cannot run"
case "$build/" in
"$repo"/*) ;;
*) die "the build directory \`$build' must be inside \`$repo', which the VM shares" ;;
esac
[ -x "$build/cell" ] || die "\`$build/cell' is missing: build it first (make check-criu does)"
command -v criu >/dev/null || [ -x /usr/sbin/criu ] ||
  die "criu is not installed on the host, whose /usr the guest uses (make deps)"

# The same stamp as helpers.bash's ensure_test_rootfs.
mkrootfs=$repo/rootfs-tools/mkrootfs-busybox
rootfs=$build/test-rootfs
stamp=$rootfs/.cell-test-rootfs
if ! [ -f "$stamp" ] || ! [ "$stamp" -nt "$mkrootfs" ]; then
  rm -rf "$rootfs"
  "$mkrootfs" "$rootfs" >/dev/null
  mkdir -p "$rootfs/host"
  touch "$stamp"
fi

# Runs in the guest: $1 the repository, $2 the build directory.
# shellcheck disable=SC2016 # expanded in the guest
guest_script='
set -eu
cd "$1"
export PATH=$PATH:/usr/sbin:/sbin
echo "# guest kernel $(uname -r), $(criu --version | head -n1)"
if ! criu check >/dev/null 2>&1; then
  echo "check-criu: criu check fails in the guest:" >&2
  criu check >&2 || true
  exit 1
fi
# A copy in a tmpfs of the guest: containers start faster than from 9p.
rootfs=/var/tmp/cell-test-rootfs
cp -a "$2/test-rootfs" "$rootfs"
# The tests of criu at work (cell itself, --page-server, --lazy-pages,
# the checkpoints of podman and containerd), and the refusal of a stopped
# container; the refusals of bad flags are the same on the host, where
# make check runs them at native speed.
CELL="$2/cell" CELL_TEST_ROOTFS="$rootfs" CELL_TEST_POLL_TENTHS=1200 \
  BATS_TEST_TIMEOUT=600 bats --timing \
  -f "counter|leave-running|not running|podman|containerd" tests/bats/criu.bats
# celld'"'"'s checkpoint and restore of an instance (celld-criu.bats).  Its
# state on ext4: the guest'"'"'s tmpfs (kernel 6.1) has no idmapped mounts,
# without which an instance'"'"'s root is a copy that cannot be snapshotted.
cp -a "$2/rootfs" /var/tmp/cell-template
truncate -s 1G /var/tmp/celld-state.img
mkfs.ext4 -q /var/tmp/celld-state.img
mkdir -p /var/tmp/celld-state
mount -o loop /var/tmp/celld-state.img /var/tmp/celld-state
TMPDIR=/var/tmp/celld-state CELLD="$2/celld" CELLCTL="$2/cellctl" \
  CELLD_TEST_TEMPLATE_SRC=/var/tmp/cell-template BATS_TEST_TIMEOUT=600 \
  bats --timing tests/bats/celld-criu.bats
# Live migration between two cellds (celld-migrate.bats), on the same ext4.
TMPDIR=/var/tmp/celld-state CELLD="$2/celld" CELLCTL="$2/cellctl" \
  CELLD_TEST_TEMPLATE_SRC=/var/tmp/cell-template BATS_TEST_TIMEOUT=600 \
  bats --timing tests/bats/celld-migrate.bats
# The frozen time of cell against runc (make bench'"'"'s figure), and of an
# instance, on request, on the same ext4: emulated, only the ratios mean
# something.
if [ "${3:-0}" = 1 ]; then
  TMPDIR=/var/tmp/celld-state CELL_BENCH_ROOTFS=$rootfs BENCH_CRIU_N=3 \
    tests/bench/bench-criu.sh "$2"
fi
umount /var/tmp/celld-state
'

start=$(date +%s)
rc=0
VM_TIMEOUT=${VM_TIMEOUT:-1200} "$vm_run" "$repo" bash -c "$guest_script" \
  guest "$repo" "$build" "${CRIU_BENCH:-0}" || rc=$?
echo "# check-criu: exit status $rc after $(($(date +%s) - start)) s"
exit "$rc"
