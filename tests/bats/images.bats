#!/usr/bin/env bats
# libcell's image reader (tests/helpers/oci-inspect) on a real multi-layer
# image that podman builds here and saves as an oci-archive: its layers,
# sizes and config must be what the archive's own JSON says, read with
# tar and jq.  podman keeps everything in this file's directory (vfs
# storage: no mounts).  Skipped when podman is not installed.

load helpers

IMAGE=localhost/cell-images-test:latest
BASE=localhost/cell-images-base:latest

p() {
  podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/run" \
    --storage-driver vfs "$@"
}

setup_file() {
  command -v podman >/dev/null || return 0
  PODMAN_DIR=$BATS_FILE_TMPDIR/podman
  export PODMAN_DIR
  [ -e /var/lib/containers ] && export PODMAN_HAD_VAR_LIB=1
  local ctx=$BATS_FILE_TMPDIR/ctx
  mkdir -p "$PODMAN_DIR" "$ctx/rootfs/etc"
  echo base >"$ctx/rootfs/etc/base"
  echo gone >"$ctx/rootfs/etc/gone"
  tar -C "$ctx/rootfs" -c . | p import -q - "$BASE" >/dev/null
  echo one >"$ctx/one"
  echo two >"$ctx/two"
  cat >"$ctx/Containerfile" <<EOC
FROM $BASE
COPY one /one
COPY two /etc/two
ENV GREETING=hello
WORKDIR /srv
USER 1000
LABEL org.example.test=images
ENTRYPOINT ["/one"]
CMD ["arg"]
EOC
  p build -q -t "$IMAGE" -f "$ctx/Containerfile" "$ctx" >/dev/null
  p save -q --format oci-archive -o "$BATS_FILE_TMPDIR/image.tar" "$IMAGE"
  p save -q --format docker-archive -o "$BATS_FILE_TMPDIR/docker.tar" "$IMAGE"
}

teardown_file() {
  [ -n "${PODMAN_DIR:-}" ] && [ -d "$PODMAN_DIR" ] || return 0
  p rmi -af >/dev/null 2>&1 || true
  rm -rf "$PODMAN_DIR"
  [ -n "${PODMAN_HAD_VAR_LIB:-}" ] || rm -rf /var/lib/containers
}

setup() {
  command -v podman >/dev/null || skip "podman is not installed"
  cell_setup
  INSPECT=${CELL_TEST_HELPERS:-$REPO/build/tests}/oci-inspect
  ARCHIVE=$BATS_FILE_TMPDIR/image.tar
}

# The JSON blob digest ($1, sha256:...) of the archive, on stdout.
archive_blob() {
  tar -xOf "$ARCHIVE" "blobs/sha256/${1#sha256:}"
}

@test "images: an oci-archive from podman reads as the archive's JSON says" {
  run "$INSPECT" oci-archive "$ARCHIVE"
  [ "$status" -eq 0 ] || { echo "$output"; false; }
  local manifest config
  manifest=$(tar -xOf "$ARCHIVE" index.json | jq -r '.manifests[0].digest')
  [[ "$output" == *"manifest $manifest"* ]]
  config=$(archive_blob "$manifest" | jq -r '.config.digest')
  [[ "$output" == *"config $config"* ]]
  # Layers, bottom first, with their sizes: three (import, two COPYs).
  diff <(echo "$output" | awk '$1 == "layer" { print $2, $4 }') \
    <(archive_blob "$manifest" | jq -r '.layers[] | "\(.digest) \(.size)"')
  [ "$(echo "$output" | grep -c '^layer ')" -eq 3 ]
  diff <(echo "$output" | awk '$1 == "diff_id" { print $2 }') \
    <(archive_blob "$config" | jq -r '.rootfs.diff_ids[]')
  [[ "$output" == *"entrypoint /one"* ]]
  [[ "$output" == *"cmd arg"* ]]
  [[ "$output" == *"env GREETING=hello"* ]]
  [[ "$output" == *"label org.example.test=images"* ]]
  [[ "$output" == *"working_dir /srv"* ]]
  [[ "$output" == *"user 1000"* ]]
  [[ "$output" == *"os linux"* ]]
}

@test "images: a damaged layer in an oci-archive is refused, naming it" {
  local dir=$BATS_TEST_TMPDIR/layout layer
  mkdir -p "$dir"
  tar -C "$dir" -xf "$ARCHIVE"
  layer=$(jq -r '.manifests[0].digest' "$dir/index.json")
  layer=$(jq -r '.layers[1].digest' "$dir/blobs/sha256/${layer#sha256:}")
  # Same size, one byte changed.
  printf 'X' | dd of="$dir/blobs/sha256/${layer#sha256:}" bs=1 seek=0 conv=notrunc 2>/dev/null
  run "$INSPECT" layout "$dir"
  [ "$status" -eq 1 ]
  [[ "$output" == *"layer 1 blob $layer: its content has digest"* ]]
}

@test "images: a docker-archive from podman reads as its manifest.json says" {
  local docker=$BATS_FILE_TMPDIR/docker.tar config
  run "$INSPECT" docker-archive "$docker"
  [ "$status" -eq 0 ] || { echo "$output"; false; }
  config=$(tar -xOf "$docker" manifest.json | jq -r '.[0].Config')
  [[ "$output" == *"config sha256:${config%.json}"* ]]
  # Uncompressed layers: each digest is the config's diff_id.
  diff <(echo "$output" | awk '$1 == "layer" { print $2 }') \
    <(tar -xOf "$docker" "$config" | jq -r '.rootfs.diff_ids[]')
  [ "$(echo "$output" | grep -c '^layer ')" -eq 3 ]
  [[ "$output" == *"entrypoint /one"* ]]
  [[ "$output" == *"env GREETING=hello"* ]]
  # The same image as the oci-archive: the same diff_ids.
  diff <(echo "$output" | awk '$1 == "diff_id"') \
    <("$INSPECT" oci-archive "$ARCHIVE" | awk '$1 == "diff_id"')
}

@test "images: a docker-archive whose layer is not its diff_id is refused" {
  local dir=$BATS_TEST_TMPDIR/docker layer
  mkdir -p "$dir"
  tar -C "$dir" -xf "$BATS_FILE_TMPDIR/docker.tar"
  layer=$(jq -r '.[0].Layers[1]' "$dir/manifest.json")
  printf 'X' | dd of="$dir/$layer" bs=1 seek=600 conv=notrunc 2>/dev/null
  tar -C "$dir" -cf "$BATS_TEST_TMPDIR/bad.tar" .
  run "$INSPECT" docker-archive "$BATS_TEST_TMPDIR/bad.tar"
  [ "$status" -eq 1 ]
  [[ "$output" == *"docker-archive layer 1: its content has digest"* ]]
}
