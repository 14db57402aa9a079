# shellcheck shell=bash disable=SC2016
# celld's image store, as an operator and a tenant use it: images imported
# from a root filesystem (directory or tarball), an OCI image layout, an
# oci-archive and a docker-archive; instances on them; hostile archives
# refused with nothing left; progress and cancel; who sees what.
#
# The OCI images are made here, layer by layer, with tar and jq: a base
# (the busybox rootfs and a few files), a layer that deletes a file
# (".wh.gone") and makes a directory opaque (".wh..wh..opq"), and for the
# application image a third that deletes /sbin/init and adds an
# entrypoint.  podman turns one into a docker-archive when it is there.

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=62000000
POOL_COUNT=$((65536 * 16))

# ---- OCI images by hand ---------------------------------------------------

# The blob of file $1 in layout $2: "sha256:<hex> <size>", the file moved in.
blob() {
  local hex size
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$2/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}

# A layer tar of directory $1 (owners as they are), gzip'd when $3 is gz,
# into layout $2; prints "<blob digest> <size> <diff_id> <media type>".
layer() {
  local dir=$1 layout=$2 tmp diff
  tmp=$(mktemp -p "$layout")
  tar --numeric-owner --sort=name --mtime=@0 -C "$dir" -cf "$tmp" .
  diff=sha256:$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "${3:-}" = gz ]; then
    gzip -n "$tmp"
    echo "$(blob "$tmp.gz" "$layout") $diff application/vnd.oci.image.layer.v1.tar+gzip"
  else
    echo "$(blob "$tmp" "$layout") $diff application/vnd.oci.image.layer.v1.tar"
  fi
}

# An OCI layout $1 of the layer directories $3..., config.config $2 (JSON).
make_layout() {
  local layout=$1 cfg=$2 l rows=()
  shift 2
  rm -rf "$layout"
  mkdir -p "$layout/blobs/sha256"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  for l in "$@"; do
    rows+=("$(layer "$l" "$layout" gz)")
  done
  printf '%s\n' "${rows[@]}" | jq -R 'split(" ") | {digest: .[0], size: (.[1]|tonumber), diff: .[2], mediaType: .[3]}' |
    jq -s . >"$layout/layers.json"
  jq -n --argjson c "$cfg" --slurpfile l "$layout/layers.json" \
    '{architecture: "amd64", os: "linux", created: "2026-01-02T03:04:05Z",
      config: $c, rootfs: {type: "layers", diff_ids: [$l[0][].diff]}}' >"$layout/config"
  local config manifest
  config=$(blob "$layout/config" "$layout")
  jq -n --arg cd "${config% *}" --argjson cs "${config#* }" --slurpfile l "$layout/layers.json" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
      layers: [$l[0][] | {mediaType, digest, size}]}' >"$layout/manifest"
  manifest=$(blob "$layout/manifest" "$layout")
  jq -n --arg md "${manifest% *}" --argjson ms "${manifest#* }" \
    '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: $md, size: $ms}]}' >"$layout/index.json"
  rm "$layout/layers.json"
}

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-images-$$
  celld_files
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 2
cgroup_parent = $CGPARENT
group = 4242
lxcfs = off
EOF
  # Layer 1: the busybox rootfs, a file to delete, a directory to hide.
  local L=$D/layers
  mkdir -p "$L/1" "$L/2/etc" "$L/2/data" "$L/3/sbin" "$L/3/srv"
  cp -a "$TEMPLATE/." "$L/1/"
  echo gone >"$L/1/etc/gone"
  echo kept >"$L/1/etc/kept"
  mkdir -p "$L/1/data"
  echo old >"$L/1/data/old"
  # Layer 2: a whiteout and an opaque directory with new content.
  : >"$L/2/etc/.wh.gone"
  : >"$L/2/data/.wh..wh..opq"
  echo new >"$L/2/data/new"
  # Layer 3 (the application): no /sbin/init, an entrypoint, run as the
  # busybox rootfs's `user` (1000) and group `users` (100).
  : >"$L/3/sbin/.wh.init"
  cat >"$L/3/app.sh" <<'EOS'
#!/bin/sh
echo "$GREETING $(pwd) $* $(id -u):$(id -g)" >/srv/out
id >/srv/id
exec sleep 1000000
EOS
  chmod 755 "$L/3/app.sh"
  chown 1000:100 "$L/3/srv"
  export SYS=$D/sys-layout APP=$D/app-layout GHOST=$D/ghost-layout
  make_layout "$SYS" '{}' "$L/1" "$L/2"
  make_layout "$APP" '{"Entrypoint":["app.sh"],"Cmd":["arg"],
    "Env":["PATH=/:/bin:/sbin","GREETING=hello"],"WorkingDir":"/srv",
    "User":"user:users"}' "$L/1" "$L/2" "$L/3"
  make_layout "$GHOST" '{"Entrypoint":["app.sh"],"Env":["PATH=/:/bin"],"User":"ghost"}' \
    "$L/1" "$L/2" "$L/3"
  start_daemon
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  celld_leaks
}

# celld again with the celld.conf a test changed (saved as celld.conf.saved).
restore_conf() {
  [ -e "$D/celld.conf.saved" ] || return 0
  mv "$D/celld.conf.saved" "$D/celld.conf"
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  start_daemon
}

teardown() {
  restore_conf
  pbuild_clean
  destroy_all
  for id in $(ctl image list --json 2>/dev/null | jq -r '.[].id'); do
    ctl image rm "$id" >/dev/null 2>&1 || true
  done
}

member() { setpriv --reuid "$1" --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" "${@:2}"; }

# Nothing of an import under way or failed: no image, no layer no image
# uses, an empty tmp/.
store_is_clean() {
  [ -z "$(ls -A "$STATE/images/tmp")" ] || { ls -la "$STATE/images/tmp"; return 1; }
  local used
  used=$(cat "$STATE"/images/images/*.json 2>/dev/null | jq -r '.layers[]' | sed 's/sha256://' | sort -u)
  [ "$(ls "$STATE/images/layers" | sort)" = "$used" ] || {
    echo "layers: $(ls "$STATE/images/layers")"; echo "used: $used"; return 1; }
}

@test "image import: an OCI layout's layers apply in order: a whiteout deletes, an opaque directory hides the lower one" {
  run -0 ctl image import "$SYS" --name sys:1
  id=$output
  [[ "$id" == sha256:* ]]
  run -0 ctl image show sys:1 --json
  [ "$(echo "$output" | jq -r .id)" = "$id" ]
  [ "$(echo "$output" | jq '.layers | length')" = 2 ]
  [ "$(echo "$output" | jq -r .created)" = 2026-01-02T03:04:05Z ]
  ctl create s1 --image sys:1 --init "/bin/sleep 1000000"
  ctl start s1
  run -0 inside s1 sh -c 'cat /etc/kept; ls /data; test ! -e /etc/gone && echo no-gone'
  [ "$output" = $'kept\nnew\nno-gone' ]
  # The layers are the image's, read-only and shared: the instance writes
  # to its own layer, in the ids it has inside.
  inside s1 sh -c 'echo mine > /data/mine; chown 7:7 /data/mine; rm /etc/kept'
  [ "$(stat -c %u:%g "$STATE/instances/s1/disk/upper/data/mine")" = 7:7 ]
  [ -z "$(find "$STATE/images/layers" -name mine)" ]
  [ "$(find "$STATE/images/layers" -path '*/etc/kept' | wc -l)" = 1 ]
  run -0 ctl list
  [[ "$output" == *"sys:1"* ]]
}

@test "image import: the same image from a layout, an oci-archive and a docker-archive is one image, its layers stored once" {
  run -0 ctl image import "$SYS" --name sys:layout
  id=$output
  tar -C "$SYS" -cf "$D/sys.tar" .
  run -0 ctl image import "oci-archive:$D/sys.tar" --name sys:archive
  [ "$output" = "$id" ]
  [ "$(ls "$STATE/images/layers" | wc -l)" = 2 ]
  # The application image shares its two lower layers: one more is stored.
  run -0 ctl image import "$APP" --name app
  [ "$output" != "$id" ]
  [ "$(ls "$STATE/images/layers" | wc -l)" = 3 ]
  if command -v podman >/dev/null; then
    local pd=$D/podman
    p() { podman --root "$pd/root" --runroot "$pd/run" --storage-driver vfs "$@"; }
    p load -q -i "$D/sys.tar" >/dev/null
    p save -q --format docker-archive -o "$D/sys-docker.tar" "$(p images -q | head -1)"
    p rmi -af >/dev/null 2>&1 || true
    rm -rf "$pd"
    run -0 ctl image import "$D/sys-docker.tar" --name sys:docker
    # The same layers (by content), so nothing new stored.
    [ "$(ls "$STATE/images/layers" | wc -l)" = 3 ]
    diff <(ctl image show sys:docker --json | jq -r '.layers[]') \
      <(ctl image show sys:layout --json | jq -r '.layers[]')
  fi
  # Whichever way it came, it is one image under all its names.
  run -0 ctl image show "$id" --json
  [ "$(echo "$output" | jq -r '.names | map(select(startswith("sys:"))) | sort | join(",")')" = \
    "$(command -v podman >/dev/null && echo sys:archive,sys:docker,sys:layout || echo sys:archive,sys:layout)" ]
}

# podman with its storage in $D/podman-build (overlay: its diff of a
# directory removed and made again is an opaque directory; vfs's lists a
# whiteout for each file instead).
pbuild() {
  podman --root "$D/podman-build/root" --runroot "$D/podman-build/run" \
    --storage-driver overlay "$@"
}

pbuild_clean() {
  [ -d "$D/podman-build" ] || return 0
  pbuild rmi -af >/dev/null 2>&1 || true
  grep " $D/podman-build/" /proc/self/mountinfo | awk '{print $5}' | sort -r |
    xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$D/podman-build"
}

# The files of the layers of docker-archive $1, one "LAYER PATH" a line.
archive_entries() {
  local l
  for l in $(tar -xOf "$1" manifest.json | jq -r '.[0].Layers[]'); do
    tar -xOf "$1" "$l" | tar -t | sed "s|^|$l |"
  done
}

@test "an image podman builds from scratch (a layer deletes a file, another makes a directory opaque), saved as oci-archive and docker-archive, imports and boots" {
  command -v podman >/dev/null || skip "podman is not installed (make deps)"
  local ctx=$D/podman-build/ctx
  mkdir -p "$ctx/root"
  cp -a "$TEMPLATE/." "$ctx/root/"
  echo gone >"$ctx/root/etc/gone"
  mkdir "$ctx/root/data"
  echo old >"$ctx/root/data/old"
  tar --numeric-owner -C "$ctx/root" -cf "$ctx/root.tar" .
  rm -rf "$ctx/root"
  printf '%s\n' 'FROM scratch' 'ADD root.tar /' 'RUN rm /etc/gone' \
    'RUN rm -rf /data && mkdir /data && echo new >/data/new' >"$ctx/Containerfile"
  pbuild build -q --isolation chroot -t localhost/built:1 -f "$ctx/Containerfile" "$ctx" >/dev/null
  pbuild save -q --format oci-archive -o "$D/built-oci.tar" localhost/built:1
  pbuild save -q --format docker-archive -o "$D/built-docker.tar" localhost/built:1
  pbuild_clean
  # podman's layers, not ours: the whiteout in one, the opaque directory
  # in another.
  archive_entries "$D/built-docker.tar" >"$D/built-entries"
  [ "$(grep -c ' etc/.wh.gone$' "$D/built-entries")" = 1 ]
  [ "$(grep -c ' data/.wh..wh..opq$' "$D/built-entries")" = 1 ]
  [ "$(grep ' etc/.wh.gone$' "$D/built-entries" | cut -d' ' -f1)" != \
    "$(grep ' data/.wh..wh..opq$' "$D/built-entries" | cut -d' ' -f1)" ]
  # Each archive known by its content alone (no oci-archive: prefix); the
  # two are one image.
  run -0 ctl image import "$D/built-oci.tar" --name built:oci
  id=$output
  [ "$(ctl image show built:oci --json | jq '.layers | length')" = 3 ]
  run -0 ctl image import "$D/built-docker.tar" --name built:docker
  [ "$output" = "$id" ]
  [ "$(ls "$STATE/images/layers" | wc -l)" = 3 ]
  # Booted from each name: the deleted file is gone, the opaque directory
  # shows only its own files.
  for n in oci docker; do
    ctl create "built-$n" --image "built:$n" --init "/bin/sleep 1000000"
    ctl start "built-$n"
    run -0 inside "built-$n" sh -c 'ls /data; test ! -e /etc/gone && echo no-gone; cat /etc/hostname'
    [ "$output" = $'new\nno-gone\n'"built-$n" ]
  done
}

@test "an application image runs its entrypoint and cmd as the instance's init, with its env, working directory and user" {
  ctl image import "$APP" --name app:1 >/dev/null
  ctl create a1 --image app:1
  [ "$(field a1 '.init | join(" ")')" = "/app.sh arg" ]
  [ "$(field a1 .init_user)" = 1000:100 ]
  ctl start a1
  for _ in $(seq 50); do inside a1 sh -c 'test -s /srv/out' && break; sleep 0.1; done
  run -0 inside a1 cat /srv/out
  [ "$output" = "hello /srv arg 1000:100" ]
  # A group named in User is its one group (as docker: none of /etc/group's).
  run -0 inside a1 cat /srv/id
  [ "$output" = "uid=1000(user) gid=100(users) groups=100(users)" ]
  # A clone runs as the same user; an init of one's own runs as root.
  ctl stop a1
  ctl clone a1 a2
  [ "$(field a2 .init_user)" = 1000:100 ]
  ctl set a2 init="/bin/sh /app.sh again"
  [ "$(field a2 .init_user)" = null ]
  ctl start a2
  for _ in $(seq 50); do inside a2 grep -q again /srv/out && break; sleep 0.1; done
  run -0 inside a2 cat /srv/out
  [ "$output" = "hello /srv again 0:0" ]
  # A user the image's /etc/passwd does not have: refused at create.
  ctl image import "$GHOST" --name ghost >/dev/null
  run -8 ctl create g1 --image ghost
  [[ "$output" == *"image \`ghost\`: its user \`ghost\` is not in its /etc/passwd"* ]]
  [ ! -e "$STATE/instances/g1" ]
  # An image with no init and no entrypoint needs --init, and says so.
  run -8 ctl create noinit --image app:1 --init /sbin/init
  [[ "$output" == *"has no program \`/sbin/init\`"* ]]
  [ ! -e "$STATE/instances/noinit" ]
}

@test "an image's User without a group gets the groups its /etc/group lists it in, as docker gives them: id in the init shows them" {
  local L=$D/layers
  mkdir -p "$L/groups/etc"
  # Its own group, two that list it, one that lists others only, one
  # broken line that names it.
  printf '%s\n' root:x:0: users:x:100:user audio:x:29:root,user,bob \
    staff:x:50:users,user2 broken:x:none:user user:x:1000: >"$L/groups/etc/group"
  make_layout "$D/groups-layout" '{"Entrypoint":["app.sh"],"Env":["PATH=/:/bin"],"User":"user"}' \
    "$L/1" "$L/2" "$L/3" "$L/groups"
  ctl image import "$D/groups-layout" --name groups >/dev/null
  ctl create u1 --image groups
  [ "$(field u1 .init_user)" = 1000:1000 ]
  [ "$(field u1 '.init_groups | map(tostring) | join(" ")')" = "1000 100 29" ]
  ctl start u1
  for _ in $(seq 50); do inside u1 sh -c 'test -s /srv/id' && break; sleep 0.1; done
  run -0 inside u1 cat /srv/id
  [ "$output" = "uid=1000(user) gid=1000(user) groups=29(audio),100(users),1000(user)" ]
  # A clone's init has them too.
  ctl stop u1
  ctl clone u1 u2
  [ "$(field u2 '.init_groups | map(tostring) | join(" ")')" = "1000 100 29" ]
}

@test "an image whose /etc/group is a FIFO cannot hold celld at create: refused at once, naming it" {
  local L=$D/layers
  mkdir -p "$L/fifo/etc"
  rm -f "$L/fifo/etc/group"
  mkfifo "$L/fifo/etc/group"
  make_layout "$D/fifo-layout" '{"Entrypoint":["app.sh"],"Env":["PATH=/:/bin"],"User":"user:staff"}' \
    "$L/1" "$L/2" "$L/3" "$L/fifo"
  ctl image import "$D/fifo-layout" --name fifo >/dev/null
  run -8 timeout 20 "$CELLCTL" --socket "$SOCK" create f1 --image fifo
  [[ "$output" == *"image \`fifo\`: its /etc/group is not a regular file"* ]]
  [ ! -e "$STATE/instances/f1" ]
  run -0 ctl list
}

@test "skopeo's transports: an image in podman's containers-storage imports through skopeo" {
  command -v skopeo >/dev/null || skip "skopeo is not installed (make deps)"
  command -v podman >/dev/null || skip "podman is not installed (make deps)"
  local pd=$D/podman-cs
  p() { podman --root "$pd/root" --runroot "$pd/run" --storage-driver vfs "$@"; }
  tar -C "$TEMPLATE" -c . | p import -q - localhost/cs:1 >/dev/null
  run -0 ctl image import "containers-storage:[vfs@$pd/root+$pd/run]localhost/cs:1" --name cs
  p rmi -af >/dev/null 2>&1 || true
  rm -rf "$pd"
  run -0 ctl image show cs --json
  [[ "$(echo "$output" | jq -r .source)" == containers-storage:* ]]
  ctl create cs1 --image cs
  ctl start cs1
  run -0 inside cs1 cat /etc/hostname
  [ "$output" = cs1 ]
  # Without skopeo on PATH: what to install, and nothing sent to celld.
  run -1 env PATH=/nonexistent "$CELLCTL" --socket "$SOCK" image import docker://example.invalid/x
  [[ "$output" == *"apt-get install skopeo"* ]]
}

@test "rootfs tarballs (.tar, .tar.gz, .tar.xz, .tar.zst) and a pipe import as one layer, and boot" {
  tar --numeric-owner -C "$TEMPLATE" -cf "$D/root.tar" .
  gzip -kn "$D/root.tar"
  xz -kT1 "$D/root.tar"
  zstd -q -k "$D/root.tar"
  for f in root.tar root.tar.gz root.tar.xz root.tar.zst; do
    run -0 ctl image import "$D/$f" --name "rootfs:${f//./-}"
  done
  # One content, so one image and one layer, whatever the compression.
  [ "$(ctl image list --json | jq 'map(.id) | unique | length')" = 1 ]
  [ "$(ls "$STATE/images/layers" | wc -l)" = 1 ]
  run -0 ctl image import - --name rootfs:pipe <"$D/root.tar.zst"
  [ "$(ctl image list --json | jq 'map(.id) | unique | length')" = 1 ]
  ctl create r1 --image rootfs:pipe
  ctl start r1
  run -0 inside r1 cat /etc/hostname
  [ "$output" = r1 ]
}

@test "moving or deleting the source after the import changes nothing for its instances" {
  cp -a "$TEMPLATE" "$D/moving"
  ctl image import "$D/moving" --name moving >/dev/null
  ctl create m1 --image moving --init "/bin/sleep 1000000"
  run -0 ctl create m2 --template "$D/moving" --init "/bin/sleep 1000000"
  [[ "$output" == *"imported as image"* ]]
  echo changed >"$D/moving/etc/motd"
  mv "$D/moving" "$D/moved"
  rm -rf "$D/moved"
  ctl start m1
  ctl start m2
  run -0 inside m1 cat /bin/busybox
  run inside m2 cat /etc/motd
  [[ "$output" != *changed* ]]
}

@test "image rm is refused while an instance uses the image, and names it; then the image and its layers go" {
  ctl image import "$SYS" --name busy >/dev/null
  ctl create user1 --image busy
  run -7 ctl image rm busy
  [[ "$output" == *"used by \`user1\`"* ]]
  ctl destroy user1
  run -0 ctl image rm busy
  [ -z "$(ls "$STATE/images/images")" ]
  [ -z "$(ls "$STATE/images/layers")" ]
  run -4 ctl image rm busy
  [[ "$output" == *"no image"* ]]
}

@test "image tag: a second name for an image; a name given to another image takes the old one away once nothing holds it" {
  ctl image import "$SYS" --name sys:1 >/dev/null
  ctl image import "$APP" --name app:1 >/dev/null
  sys=$(ctl image show sys:1 --json | jq -r .id)
  run -0 ctl image tag sys:1 sys:stable
  run -0 ctl image show sys:stable --json
  [ "$(echo "$output" | jq -r .id)" = "$sys" ]
  [ "$(echo "$output" | jq -r '.names | sort | join(",")')" = sys:1,sys:stable ]
  run -0 ctl image list
  [[ "$output" == *"sys:1"*"${sys:7:12}"* ]]
  # The application image's only name goes to the system image: nothing
  # holds it any more, and its own layer goes with it.
  [ "$(ls "$STATE/images/layers" | wc -l)" = 3 ]
  run -0 ctl image tag sys:stable app:1
  [ "$(ctl image show app:1 --json | jq -r .id)" = "$sys" ]
  [ "$(ctl image list --json | jq length)" = 1 ]
  [ "$(ls "$STATE/images/layers" | wc -l)" = 2 ]
  # An image an instance uses keeps it when its last name goes, without a
  # name; it goes with the instance, not at the next start of celld.
  app=$(ctl image import "$APP" --name app:2)
  ctl create a1 --image app:2
  run -0 ctl image tag sys:1 app:2
  run -0 ctl image show "$app" --json
  [ "$(echo "$output" | jq -c '[.names, .instances]')" = '[[],["a1"]]' ]
  ctl destroy a1
  run -4 ctl image show "$app"
  [ "$(ls "$STATE/images/layers" | wc -l)" = 2 ]
  store_is_clean
  # A member's name for root's image is the member's own.
  run -0 member 4243 image tag sys:1 mine:1
  run -0 member 4243 image show mine:1
  run -4 member 4244 image show mine:1
  [ "$(ctl image show sys:1 --json | jq -r '.names | sort | join(",")')" = \
    "app:1,app:2,sys:1,sys:stable,uid:4243/mine:1" ]
  run -0 member 4243 image rm mine:1
  # Refused, naming what is wrong.
  run -4 ctl image tag nosuch:1 x
  [[ "$output" == *"no image \`nosuch:1\`"* ]]
  run -8 ctl image tag sys:1 Bad
  [[ "$output" == *"image name \`Bad\`"* ]]
  run -2 ctl image tag sys:1
  [[ "$output" == *"IMAGE NAME[:TAG]"* ]]
}

@test "members import images of their own, seen by them and root only; root's images are theirs to use, not to remove" {
  ctl image import "$SYS" --name shared >/dev/null
  tar -C "$TEMPLATE" -cf "$D/mine.tar" .
  chmod 644 "$D/mine.tar"
  run -0 member 4243 image import "$D/mine.tar" --name mine
  run -0 member 4243 image list --json
  [ "$(echo "$output" | jq -r '[.[].names[]] | sort | join(",")')" = "mine:latest,shared:latest" ]
  run -0 member 4244 image list --json
  [ "$(echo "$output" | jq -r '[.[].names[]] | join(",")')" = "shared:latest" ]
  run -4 member 4244 create theirs --image mine
  run -0 ctl image list --json
  [[ "$output" == *"uid:4243/mine:latest"* ]]
  run -0 member 4244 create mine2 --image shared --init "/bin/sleep 1000000"
  run -4 member 4244 image rm shared
  [ "$(ctl image list --json | jq -r '[.[].names[]] | map(select(. == "shared:latest")) | length')" = 1 ]
  member 4244 destroy mine2 -f
  run -0 member 4243 image rm mine
  # A member's directory import reads with the member's rights only.
  mkdir -p "$D/secret/etc"
  echo s3cret >"$D/secret/etc/shadow"
  chmod 600 "$D/secret/etc/shadow"
  run -1 member 4243 image import "$D/secret" --name stolen
  [[ "$output" == *"ermission denied"* ]]
  store_is_clean
}

@test "mkrootfs-debian --import NAME:TAG puts the guest it built into celld's store, its id the only line on stdout" {
  # A stand-in for mmdebstrap (the real build is celld-guests.bats'): the
  # busybox rootfs as the guest, in the directory mmdebstrap is given.
  mkdir -p "$D/fakebin"
  printf '%s\n' '#!/bin/sh' 'while [ "${1#--}" != "$1" ]; do shift; done' \
    "cp -a '$TEMPLATE/.' \"\$2/\"" >"$D/fakebin/mmdebstrap"
  chmod 755 "$D/fakebin/mmdebstrap"
  run -0 --separate-stderr env PATH="$D/fakebin:$PATH" CELLCTL="$CELLCTL" CELL_SOCKET="$SOCK" \
    "$REPO/rootfs-tools/mkrootfs-debian" --import guest:1 "$D/guest"
  [[ "$output" =~ ^sha256:[0-9a-f]{64}$ ]]
  [[ "$stderr" == *"imported $D/guest as guest:1: $output"* ]]
  run -0 ctl image show guest:1 --json
  [ "$(echo "$output" | jq -r .source)" = "$D/guest" ]
  ctl create g1 --image guest:1 --init "/bin/sleep 1000000"
  ctl start g1
  run -0 inside g1 cat /etc/hostname
  [ "$output" = g1 ]
  # Without a celld to take it: one line, before anything is built.
  run -1 env PATH="$D/fakebin:$PATH" CELLCTL="$CELLCTL" CELL_SOCKET="$D/nosuch.sock" \
    "$REPO/rootfs-tools/mkrootfs-debian" --import guest:2 "$D/guest2"
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == "mkrootfs-debian: --import: celld does not answer"* ]]
  [ ! -e "$D/guest2" ]
  run -1 "$REPO/rootfs-tools/mkrootfs-debian" --import Guest "$D/guest2"
  [[ "$output" == *"image name \`Guest'"* ]]
}

@test "hostile archives: a path out, a write through a symlink, a hardlink out, a device, a bomb: refused, nothing written, nothing left" {
  local h=$D/hostile
  mkdir -p "$h"
  python3 - "$h" <<'EOP'
import io, sys, tarfile
d = sys.argv[1]
def tar(name, members):
    with tarfile.open(f"{d}/{name}.tar", "w", format=tarfile.PAX_FORMAT) as t:
        for m, data in members:
            t.addfile(m, io.BytesIO(data) if data is not None else None)
def f(name, data=b"x", **kw):
    m = tarfile.TarInfo(name); m.size = len(data)
    for k, v in kw.items(): setattr(m, k, v)
    return (m, data)
def link(name, target, kind=tarfile.SYMTYPE):
    m = tarfile.TarInfo(name); m.type = kind; m.linkname = target
    return (m, None)
def dev(name):
    m = tarfile.TarInfo(name); m.type = tarfile.BLKTYPE; m.devmajor = 8; m.devminor = 0
    return (m, None)
tar("dotdot", [f("etc/ok"), f("../../../../../../tmp/cell-hostile-dotdot")])
tar("symlink", [link("etc", "/tmp"), f("etc/cell-hostile-symlink")])
tar("hardlink", [link("passwd", "/etc/passwd", tarfile.LNKTYPE)])
tar("absolute", [f("/tmp/cell-hostile-absolute", b"inside\n")])
tar("device", [dev("dev/sda")])
EOP
  truncate -s 100G "$h/sparse"
  tar -S -C "$h" -cf "$h/bomb.tar" sparse
  rm "$h/sparse"
  run -1 ctl image import "$h/dotdot.tar" --name x
  [[ "$output" == *".."* ]]
  run -1 ctl image import "$h/symlink.tar" --name x
  [[ "$output" == *"symlink"* ]]
  run -1 ctl image import "$h/hardlink.tar" --name x
  [[ "$output" == *"hardlink target \"/etc/passwd\" is not in the layer"* ]]
  run -1 ctl image import "$h/device.tar" --name x
  [[ "$output" == *"device"* ]]
  run -1 ctl image import "$h/bomb.tar" --name x
  [[ "$output" == *"limit"* ]]
  [ ! -e /tmp/cell-hostile-dotdot ]
  [ ! -e /tmp/cell-hostile-symlink ]
  [ "$(ctl image list --json | jq length)" = 0 ]
  store_is_clean
  # An absolute name lands in the layer, as tar would put it.
  run -0 ctl image import "$h/absolute.tar" --name abs
  [ ! -e /tmp/cell-hostile-absolute ]
  [ "$(cat "$STATE"/images/layers/*/tmp/cell-hostile-absolute)" = inside ]
}

@test "an archive's setuid-root and setgid files keep their bits with their ids mapped: root's inside, container-relative on disk, the instance's range seen from the host" {
  # A rootfs tarball: the busybox rootfs, a setuid-root program, a setgid
  # file of group 60, a setuid file of user 1000, and a file only root
  # may open.
  python3 - "$TEMPLATE" "$CELL_TEST_HELPERS/dev-probe" "$D/suid.tar" <<'EOP'
import sys, tarfile
src, probe, out = sys.argv[1:]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    t.add(src, arcname=".")
    def add(name, uid, gid, mode, path=probe):
        with open(path, "rb") as f:
            m = t.gettarinfo(fileobj=f, arcname=name)
            m.uid, m.gid, m.uname, m.gname, m.mode = uid, gid, "", "", mode
            t.addfile(m, f)
    add("opt/suid-root", 0, 0, 0o4755)
    add("opt/sgid-games", 0, 60, 0o2755)
    add("opt/suid-user", 1000, 60, 0o4750)
    add("opt/root-only", 0, 0, 0o600, f"{src}/etc/passwd")
EOP
  ctl image import "$D/suid.tar" --name suid >/dev/null
  ctl create s1 --image suid
  ctl start s1
  # Inside: owned as in the archive, the s bits there.
  run -0 inside s1 stat -c '%n %u:%g %A' /opt/suid-root /opt/sgid-games /opt/suid-user
  [ "${lines[0]}" = "/opt/suid-root 0:0 -rwsr-xr-x" ]
  [ "${lines[1]}" = "/opt/sgid-games 0:60 -rwxr-sr-x" ]
  [ "${lines[2]}" = "/opt/suid-user 1000:60 -rwsr-x---" ]
  # On disk, in the store's layer: the archive's (container-relative) ids,
  # never the instance's host ids, and the same bits.
  local opt
  opt=$(ls -d "$STATE"/images/layers/*/opt)
  [ "$(echo "$opt" | wc -l)" = 1 ]
  run -0 stat -c '%u:%g %a' "$opt/suid-root" "$opt/sgid-games" "$opt/suid-user"
  [ "${lines[*]}" = "0:0 4755 0:60 2755 1000:60 4750" ]
  # From the host, in the instance's root: its range, through the
  # idmapped mount.
  local s root
  s=$(field s1 .id_start)
  root=/proc/$(field s1 .pid)/root
  run -0 stat -c '%u:%g %a' "$root/opt/suid-root" "$root/opt/sgid-games" "$root/opt/suid-user"
  [ "${lines[*]}" = "$s:$s 4755 $s:$((s + 60)) 2755 $((s + 1000)):$((s + 60)) 4750" ]
  # The bit works: user 1000 opens a root-only file through the setuid-root
  # program, not by itself.
  run -1 inside s1 su -s /bin/sh user -c '/opt/sgid-games open /opt/root-only'
  [ "$output" = EACCES ]
  run -0 inside s1 su -s /bin/sh user -c '/opt/suid-root open /opt/root-only'
  [ "$output" = opened ]
}

@test "image_max_size and image_max_entries of celld.conf stop an archive that expands past them, naming the setting" {
  mkdir -p "$D/limits/bytes" "$D/limits/entries"
  head -c 2M /dev/zero >"$D/limits/bytes/two-mib"
  for i in $(seq 1100); do : >"$D/limits/entries/$i"; done
  tar -C "$D/limits/bytes" -cf "$D/limits/bytes.tar" .
  gzip -k "$D/limits/bytes.tar"
  tar -C "$D/limits/entries" -cf "$D/limits/entries.tar" .
  # Both fit the defaults.
  run -0 ctl image import "$D/limits/bytes.tar.gz" --name fits
  ctl image rm fits
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  cp "$D/celld.conf" "$D/celld.conf.saved"
  printf '%s\n' "image_max_size = 1M" "image_max_entries = 1000" >>"$D/celld.conf"
  start_daemon
  run -1 ctl image import "$D/limits/bytes.tar.gz" --name big
  [[ "$output" == *"past its limit of 1048576 bytes"*"raise image_max_size in celld.conf"* ]]
  run -1 ctl image import "$D/limits/entries.tar" --name many
  [[ "$output" == *"more than 1000 entries"*"raise image_max_entries in celld.conf"* ]]
  # A stream is held to the size before it is read as an archive.
  run -1 ctl image import - --name piped < <(cat "$D/limits/bytes.tar")
  [[ "$output" == *"larger than the image size limit (1048576 bytes, image_max_size in celld.conf)"* ]]
  [ "$(ctl image list --json | jq length)" = 0 ]
  store_is_clean
  restore_conf
}

@test "progress: JSON lines with --progress=json, nothing but the id without a terminal; Ctrl-C cancels and leaves nothing" {
  tar -C "$TEMPLATE" -cf "$D/p.tar" .
  run -0 ctl image import "$D/p.tar" --name p --progress=json
  # Every line is JSON: the steps, then the image.
  echo "$output" | jq -e . >/dev/null
  [ "$(echo "$output" | jq -r 'select(.progress) | .progress.step' | uniq | tr '\n' ' ')" = "layer done " ]
  [ "$(echo "$output" | tail -1 | jq -r .image.names[0])" = p:latest ]
  run -0 ctl image import "$D/p.tar" --name p2
  [[ "$output" =~ ^sha256:[0-9a-f]{64}$ ]]
  # A source that does not end (a FIFO whose writer stays), interrupted
  # while it is read.
  mkfifo "$D/slow"
  "$CELLCTL" --socket "$SOCK" image import - --name slow <"$D/slow" 2>"$D/cancel.err" &
  local pid=$! w
  exec {w}>"$D/slow"
  cat "$D/p.tar" >&"$w"
  for _ in $(seq 50); do
    [ -n "$(ls -A "$STATE/images/tmp")" ] && break
    sleep 0.1
  done
  [ -n "$(ls -A "$STATE/images/tmp")" ]
  kill -INT "$pid"
  wait "$pid" || true
  exec {w}>&-
  rm "$D/slow"
  grep -q "import cancelled" "$D/cancel.err"
  for _ in $(seq 50); do
    [ -z "$(ls -A "$STATE/images/tmp")" ] && break
    sleep 0.1
  done
  run -4 ctl image show slow
  store_is_clean
}

@test "on a terminal, an import shows one progress line that moves: the layer, bytes of the total, the rate, the time left" {
  mkdir -p "$D/big"
  head -c 384M /dev/urandom >"$D/big/blob"
  tar -C "$D/big" -cf "$D/big.tar" .
  rm -rf "$D/big"
  # script(1) gives cellctl a terminal; --progress is left to its default.
  run -0 script -qec "$CELLCTL --socket $SOCK image import $D/big.tar --name big" /dev/null
  rm "$D/big.tar"
  # The terminal turns each newline into CR LF: two lines, the progress
  # line (rewritten in place, each state after a CR and an erase to the
  # end of the line) and the id.
  local text=${output//$'\r\n'/$'\n'}
  text=${text%$'\r'}
  [ "$(printf '%s' "$text" | grep -c '')" = 2 ]
  [[ "${text##*$'\n'}" =~ ^sha256:[0-9a-f]{64}$ ]]
  local line=${text%%$'\n'*} states
  states=$(printf '%s' "$line" | tr '\r' '\n' | sed 's/^\x1b\[K//')
  echo "$states"
  # Part-way: the layer, what is read of the whole, the rate and the time
  # left; at the end, all of it.  Sizes and rates take the unit that fits
  # them (a fast disk reads GiB/s).
  local size='[0-9.]+ (B|KiB|MiB|GiB)'
  echo "$states" | grep -Eq "^importing  layer 1/1  $size / 384.0 MiB  $size/s  ETA [0-9]+s\$"
  echo "$states" | tail -1 | grep -Eq "^importing  layer 1/1  384.0 MiB / 384.0 MiB  $size/s\$"
  ctl image rm big
}
