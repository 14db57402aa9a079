#!/bin/bash
# The Debian guest of the tests: rootfs-tools/mkrootfs-debian with nftables
# (for the firewall tests), built once per version of the script into
# CELL_TEST_CACHE (default /var/cache/cell-test) and kept there.  Prints its
# path.  Others may build it at the same time: a lock, and a half-built one
# is never used (it is renamed into place).  CELL_TEST_DEBIAN names an image
# of one's own instead.
set -euo pipefail
if [ -n "${CELL_TEST_DEBIAN:-}" ]; then
  echo "$CELL_TEST_DEBIAN"
  exit 0
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
script=$repo/rootfs-tools/mkrootfs-debian
cache=${CELL_TEST_CACHE:-/var/cache/cell-test}
image=$cache/debian-bookworm-$(cat "$script" "$0" | sha256sum | cut -c1-12)
mkdir -p "$cache"
(
  flock 9
  if [ ! -e "$image/sbin/init" ]; then
    # Those of earlier versions go.
    rm -rf "$cache"/debian-bookworm-*
    "$script" --include nftables "$image.new" >"$cache/mkrootfs.log" 2>&1 ||
      { cat "$cache/mkrootfs.log" >&2; rm -rf "$image.new"; exit 1; }
    mv "$image.new" "$image"
  fi
) 9>"$cache/debian.lock"
echo "$image"
