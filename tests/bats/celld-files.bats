# shellcheck shell=bash disable=SC2016
# Whole trees into and out of instances (cellctl file push -r, pull -r):
# one request and one tar stream each, extracted through fds that never
# follow a symlink out of the instance, on running and stopped instances.
# (Single files: celld-ops.bats.)

bats_require_minimum_version 1.5.0

load celld-helpers
POOL_START=152000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-files-$$
  celld_files
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
socket_mode = 0666
stop_timeout = 2
cgroup_parent = $CGPARENT
group = 4242
lxcfs = off
EOF
  start_daemon
  ctl image import "$TEMPLATE" --name bb >/dev/null
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  ctl image rm bb >/dev/null 2>&1 || true
  celld_leaks
}

setup() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  W=$(mktemp -d "$D/t.XXXXXX")
  chmod 0755 "$W"
}

teardown() {
  destroy_all
  [ -z "${W:-}" ] || rm -rf "$W"
}

SLEEP="/bin/sh -c 'trap \"exit 0\" TERM; sleep 1000000 & wait'"
MEMBER=(setpriv --reuid=4243 --regid=4242 --clear-groups --)

# A local tree with what a copy must keep: nested directories, modes,
# mtimes, an empty file, a relative and an absolute symlink.
make_tree() { # dir
  mkdir -p "$1/sub/deep" "$1/empty-dir"
  printf 'alpha\n' >"$1/a"
  printf 'secret\n' >"$1/sub/private"
  head -c 300000 /dev/urandom >"$1/sub/deep/big"
  : >"$1/sub/deep/empty"
  ln -s ../a "$1/sub/rel-link"
  ln -s /etc/shadow "$1/abs-link"
  chmod 0600 "$1/sub/private"
  chmod 0751 "$1/sub"
  chmod 0700 "$1/empty-dir"
  chmod 0755 "$1/sub/deep/big"
  touch -h -d '2001-02-03 04:05:06' "$1/a" "$1/sub/deep/big" "$1/sub/rel-link" \
    "$1/sub/deep" "$1/sub" "$1/empty-dir"
}

# Names, types, modes and mtimes of a tree (symlinks' own), and contents.
describe_tree() { # dir
  (cd "$1" && find . -mindepth 1 -printf '%p %y %m %TY-%Tm-%Td %l\n' | sort &&
    find . -type f -exec sha256sum {} + | sort)
}

@test "file pull -r: a tree pushed with -r comes back whole, from a running and a stopped instance" {
  make_tree "$W/src"
  ctl create f --image bb --init "$SLEEP"
  # Stopped: its root mounted for the copy and unmounted after.
  run -0 ctl file push -r --uid 1000 --gid 100 "$W/src" f:/srv
  [ -z "$(grep " $STATE/instances/f/rootfs " /proc/self/mountinfo)" ]
  ctl start f
  run -0 inside f sh -c 'cd /srv && stat -c "%n %u:%g %a" . a sub sub/private sub/deep/big sub/rel-link && readlink abs-link && readlink sub/rel-link'
  [ "$output" = $'. 1000:100 755\na 1000:100 644\nsub 1000:100 751\nsub/private 1000:100 600\nsub/deep/big 1000:100 755\nsub/rel-link 1000:100 777\n/etc/shadow\n../a' ]
  # Owners as the instance changes them come back as it sees them; a
  # setuid file comes back without the bit (root's where it lands).
  inside f chown 2000:3000 /srv/sub/private
  inside f chmod 4755 /srv/sub/deep/big
  run -0 ctl file pull -r f:/srv "$W/running"
  [ "$(describe_tree "$W/running")" = "$(describe_tree "$W/src")" ]
  [ "$(stat -c '%u:%g' "$W/running/a" "$W/running/sub/private" "$W/running/sub/rel-link")" = $'1000:100\n2000:3000\n1000:100' ]
  [ "$(readlink "$W/running/abs-link")" = /etc/shadow ]
  ctl stop f
  run -0 ctl file pull -r f:/srv "$W/stopped"
  [ "$(describe_tree "$W/stopped")" = "$(describe_tree "$W/src")" ]
  [ "$(stat -c '%u:%g' "$W/stopped/sub/private")" = 2000:3000 ]
  [ -z "$(grep " $STATE/instances/f/rootfs " /proc/self/mountinfo)" ]
  # Into a directory that exists: merged, files replaced.
  printf 'beta\n' >"$W/src/a"
  run -0 ctl file push -r "$W/src" f:/srv
  ctl start f
  run -0 inside f cat /srv/a
  [ "$output" = beta ]
}

@test "file pull -r: a caller who is not root owns what it pulls; a FIFO is left out with a warning" {
  mkdir -m 0777 "$W/member"
  "${MEMBER[@]}" "$CELLCTL" --socket "$SOCK" create m --image bb --init "$SLEEP"
  "${MEMBER[@]}" "$CELLCTL" --socket "$SOCK" start m
  inside m sh -c 'mkdir -p /srv/t && echo x >/srv/t/x && chown 5:6 /srv/t/x && mkfifo /srv/t/fifo'
  run -0 --separate-stderr "${MEMBER[@]}" "$CELLCTL" --socket "$SOCK" file pull -r m:/srv/t "$W/member/out"
  [ "$(stat -c '%u:%g' "$W/member/out" "$W/member/out/x")" = $'4243:4242\n4243:4242' ]
  [ "$(cat "$W/member/out/x")" = x ]
  [ ! -e "$W/member/out/fifo" ]
  [ "$stderr" = 'cellctl: warning: `/srv/t/fifo` left out: a FIFO' ]
}

@test "attack: a symlink in the instance pointing at the host's /etc is copied by pull -r as a link, not followed" {
  ctl create s --image bb --init "$SLEEP"
  ctl start s
  inside s sh -c "mkdir -p /srv/t && echo instance-passwd >/etc/passwd && ln -s /etc /srv/t/etc && ln -s ../../../../../../etc/shadow /srv/t/shadow && ln -s $W /srv/t/hostdir && ln -s /etc /srv/etc-link"
  printf 'host secret\n' >"$W/secret"
  run -0 ctl file pull -r s:/srv/t "$W/out"
  [ "$(readlink "$W/out/etc")" = /etc ]
  [ -L "$W/out/etc" ]
  [ "$(readlink "$W/out/shadow")" = ../../../../../../etc/shadow ]
  [ "$(readlink "$W/out/hostdir")" = "$W" ]
  [ -z "$(find "$W/out" -type f)" ]
  # The directory named through a link resolves inside: the instance's
  # /etc, never the host's.
  run -0 ctl file pull -r s:/srv/etc-link "$W/etc"
  [ "$(cat "$W/etc/passwd")" = instance-passwd ]
  # A host path named inside does not exist there.
  run -1 ctl file pull -r "s:$W" "$W/host"
  [ ! -e "$W/host" ]
}

@test "attack: pull -r of the instance's / leaves out /proc and /sys (the host's memory, kernel state) and devices" {
  ctl create k --image bb --init "$SLEEP"
  ctl start k
  run -0 --separate-stderr ctl file pull -r k:/ "$W/root"
  [[ "$stderr" == *'`/proc` left out: a kernel filesystem (/proc, /sys, ...)'* ]]
  [[ "$stderr" == *'`/sys` left out: a kernel filesystem (/proc, /sys, ...)'* ]]
  [[ "$stderr" == *'`/dev/null` left out: a device'* ]]
  [ -x "$W/root/bin/busybox" ]
  [ ! -e "$W/root/proc" ]
  [ ! -e "$W/root/sys" ]
  run -1 ctl file pull -r k:/proc "$W/proc"
  [[ "$output" == *"kernel filesystem (/proc, /sys, ...): not a file of the instance"* ]]
  [ ! -e "$W/proc" ]
  run -1 ctl file pull -r k:/sys/kernel "$W/proc"
  [ ! -e "$W/proc" ]
  # Nor are they written: right in them, or below.
  mkdir -p "$W/tree/sub"
  echo 1 >"$W/tree/sub/x"
  echo 1 >"$W/tree/x"
  for target in /proc /proc/sys /sys/kernel /proc/sys/kernel/cell-new; do
    run -1 ctl file push -r "$W/tree" "k:$target"
    [[ "$output" == *"kernel filesystem (/proc, /sys, ...): not a file of the instance"* ]]
  done
}

@test "attack: a directory swapped for a symlink to /etc during pull -r is never followed to the host's /etc" {
  ctl create w --image bb --init "$SLEEP"
  ctl start w
  inside w sh -c 'mkdir -p /srv/s/d && echo inside >/srv/s/d/f && ln -s /etc /srv/s/etc-link'
  # For 6 s the instance swaps d for a link to /etc and back, as fast as
  # it can, while pulls run.
  ctl exec w -- sh -c 'end=$(($(date +%s) + 6)); while [ $(date +%s) -lt $end ]; do mv /srv/s/d /srv/s/d.real; ln -s /etc /srv/s/d; rm /srv/s/d; mv /srv/s/d.real /srv/s/d; done' </dev/null &
  swapper=$!
  for i in $(seq 15); do
    ctl file pull -r w:/srv/s "$W/out$i" 2>/dev/null || true
    # Whatever came out: d is the instance's directory or a link as a
    # link (which test -e would follow here, on the host), never a
    # directory holding the host's /etc: no file of it anywhere.
    [ -z "$(find "$W/out$i" \( -name shadow -o -name passwd \) ! -type l)" ]
  done
  wait "$swapper" || true
  # Most pulls went through, with d in one of its two forms.
  [ "$(find "$W" -maxdepth 2 -path "$W/out*/d" | wc -l)" -ge 1 ]
}

# A tar stream of entries (name type [content|target]) on stdout, written
# whole, or in two parts when a part separator "--wait FILE" is given: the
# rest only once FILE exists.
tar_stream() {
  python3 - "$@" <<'EOF'
import io, os, sys, tarfile, time
out = sys.stdout.buffer
args = sys.argv[1:]
i = 0
while i < len(args):
    if args[i] == "--wait":
        out.flush()
        while not os.path.exists(args[i + 1]):
            time.sleep(0.05)
        i += 2
        continue
    name, kind, extra = args[i], args[i + 1], args[i + 2]
    i += 3
    ti = tarfile.TarInfo(name)
    data = b""
    if kind == "dir":
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    elif kind == "link":
        ti.type, ti.linkname = tarfile.SYMTYPE, extra
    else:
        data = extra.encode()
        ti.size, ti.mode = len(data), 0o644
    out.write(ti.tobuf(tarfile.PAX_FORMAT))
    out.write(data + b"\0" * (-len(data) % 512))
out.write(b"\0" * 1024)
out.flush()
EOF
}

@test "attack: a tar entry with ../../ or an absolute path cannot land outside the target of push -r" {
  ctl create p --image bb --init "$SLEEP"
  ctl start p
  inside p mkdir -p /srv/t
  for name in "../../../../../../../$W/escaped" "sub/../../escaped" "/$W/escaped"; do
    run -1 ctl file push -r - p:/srv/t < <(tar_stream ok file ok "$name" file pwned)
    [ "${#lines[@]}" = 1 ]
    [[ "$output" == *"refused"* ]]
    [ ! -e "$W/escaped" ]
  done
  run -0 inside p find / -xdev -name escaped
  [ -z "$output" ]
  # A link the stream makes, then a file through it: not followed.
  run -1 ctl file push -r - p:/srv/t < <(tar_stream l link /etc "l/cell-planted" file pwned h link "$W" "h/cell-planted" file pwned)
  [[ "$output" == *"through a symlink"* ]]
  [ ! -e /etc/cell-planted ]
  [ ! -e "$W/cell-planted" ]
  run -1 inside p test -e /etc/cell-planted
  # Hardlinks and devices are refused too.
  python3 -c 'import tarfile,sys
t = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
i = tarfile.TarInfo("hl"); i.type = tarfile.LNKTYPE; i.linkname = "/etc/shadow"; t.addfile(i)
t.close()' >"$W/hl.tar"
  run -1 ctl file push -r - p:/srv/t <"$W/hl.tar"
  [[ "$output" == *"hardlink"* ]]
}

@test "attack: a directory swapped for a symlink to the host during push -r cannot place a file outside" {
  ctl create r --image bb --init "$SLEEP"
  ctl start r
  mkdir "$W/hostdir"
  mkfifo "$W/fifo-src"
  inside r mkdir -p /srv
  # The stream stops after d/a; meanwhile the instance puts a link to the
  # host's directory (and to its own /etc) where d was.
  tar_stream d dir x d/a file one --wait "$W/go" d/b file two e dir x e/c file three >"$W/fifo-src" &
  ctl file push -r - r:/srv/t <"$W/fifo-src" >"$W/push.out" 2>&1 &
  push=$!
  for _ in $(seq 100); do
    inside r test -e /srv/t/d/a && break
    sleep 0.1
  done
  inside r sh -c "mv /srv/t/d /srv/t/d.old && ln -s $W/hostdir /srv/t/d && ln -s /etc /srv/t/e"
  touch "$W/go"
  rc=0
  wait "$push" || rc=$?
  [ "$rc" = 1 ]
  [ -z "$(ls -A "$W/hostdir")" ]
  run -1 inside r test -e /etc/c
  # The directory already open stays the one written into, wherever the
  # instance moved it; a link where a directory of the stream goes stops
  # the copy.
  run -0 inside r cat /srv/t/d.old/b
  [ "$output" = two ]
  [[ "$(cat "$W/push.out")" == *"\`e\` in the instance: not a directory"* ]]
}

@test "file pull -r: bad input gives one line and leaves nothing" {
  ctl create b --image bb --init "$SLEEP"
  ctl start b
  inside b sh -c 'mkdir -p /srv/t && echo x >/srv/t/x'
  run -1 ctl file pull -r b:/nonexistent "$W/out"
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"/nonexistent"*"No such file"* ]]
  [ ! -e "$W/out" ]
  run -1 ctl file pull -r b:/srv/t/x "$W/out"
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"not a directory in the instance"* ]]
  [ ! -e "$W/out" ]
  : >"$W/file"
  run -1 ctl file pull -r b:/srv/t "$W/file"
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"a pull -r makes a new directory"* ]]
  [ ! -s "$W/file" ]
  run -4 ctl file pull -r nosuch:/srv/t "$W/out"
  [ "${#lines[@]}" = 1 ]
  [ ! -e "$W/out" ]
  run -2 ctl file pull -r b:/srv/t
  [ "${#lines[@]}" -le 2 ]
  run -1 ctl file push -r "$W/missing" b:/srv/u
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"missing"*"No such file"* ]]
  run -1 inside b test -e /srv/u
  run -1 ctl file push -r "$W" b:/nodir/u
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"/nodir"* ]]
}

@test "file pull -r: a slow reader of a big tree does not hold up celld's other clients" {
  ctl create g --image bb --init "$SLEEP"
  ctl start g
  inside g sh -c 'mkdir -p /srv/big && for i in 1 2 3 4 5 6 7 8; do dd if=/dev/zero of=/srv/big/$i bs=1M count=4 2>/dev/null; done'
  ctl file pull -r g:/srv/big - | { sleep 4; cat >/dev/null; } &
  reader=$!
  sleep 0.5
  start=$(date +%s%N)
  run -0 ctl list
  run -0 ctl file push "$W/../celld.conf" g:/tmp/conf
  elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
  [ "$elapsed" -lt 2000 ]
  wait "$reader"
  # And the stream, once read, is whole.
  run -0 bash -c "'$CELLCTL' --socket '$SOCK' file pull -r g:/srv/big - | tar tf - | sort"
  [ "$output" = $'./\n./1\n./2\n./3\n./4\n./5\n./6\n./7\n./8' ]
}
