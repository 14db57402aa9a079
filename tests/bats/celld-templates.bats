# shellcheck shell=bash disable=SC2016
# Templates and names, seen as attacks, through the API's `template` field
# (a live directory, which API clients may still send; cellctl imports a
# directory as an image instead, celld-images.bats): a group member may use
# only the templates root has put in template_dirs (never /, nor a symlink
# out of them), celld writes an instance's files only into the instance's
# own layer, and a member learns no other owner's instance names.  Against
# a private daemon started once for this file.

bats_require_minimum_version 1.5.0

load celld-helpers
# Clear of the other celld test files' pools (cellctl.bats ends at 30524288).
POOL_START=32000000
POOL_COUNT=$((65536 * 8))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export CGPARENT=/cell-test-templates-$$
  celld_files
  # A second template directory, and a place outside both.
  mkdir -p "$D/more" "$D/outside"
  cp -a "$TEMPLATE" "$D/more/busybox"
  cp -a "$TEMPLATE" "$D/outside/busybox"
  cat >"$D/celld.conf" <<EOF
socket_mode = 0666
pool_start = $POOL_START
pool_count = $POOL_COUNT
range_size = 65536
stop_timeout = 5
group = 4242
cgroup_parent = $CGPARENT
template_dirs = $STATE/templates:$D/more
EOF
  start_daemon
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  celld_leaks
}

member() { setpriv --reuid 4243 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" "$@"; }
other_member() { setpriv --reuid 4244 --regid 4242 --clear-groups "$CELLCTL" --socket "$SOCK" "$@"; }

# create through the API's `template` field, as root (ctl) or the member:
# cellctl's exit status for the reply's code, and its error line.
raw_create() { # ctl|member|other_member name template [init words...]
  local as=$1 name=$2 tpl=$3 init=null req reply
  shift 3
  [ $# -eq 0 ] || init=$(printf '%s\n' "$@" | jq -R . | jq -cs .)
  req=$(jq -cn --arg n "$name" --arg t "$tpl" --argjson i "$init" \
    '{version: 1, op: "create", name: $n, template: $t} + (if $i then {init: $i} else {} end)')
  reply=$(echo "$req" | "$as" raw)
  echo "$reply" | jq -e .ok >/dev/null && return 0
  echo "cellctl: $(echo "$reply" | jq -r .error)"
  case $(echo "$reply" | jq -r .code) in
  not-found) return 4 ;; permission-denied) return 5 ;; exists) return 6 ;;
  wrong-state) return 7 ;; invalid-request) return 8 ;; *) return 1 ;;
  esac
}

# A member's raw create of name from template: refused (permission-denied)
# with an error that says what.
refused_raw() { # name template what
  local reply
  reply=$(printf '{"version":1,"op":"create","name":"%s","template":"%s"}\n' "$1" "$2" | member raw)
  echo "$reply" | jq -e --arg what "$3" \
    '.ok == false and .code == "permission-denied" and (.error | contains($what))' >/dev/null || {
    echo "reply: $reply" >&2
    return 1
  }
}

# No instance, no directory and no record of that name.
nothing_of() { # name
  [ ! -e "$STATE/instances/$1" ] && [ ! -e "$STATE/instances/$1.json" ] &&
    ! ctl show "$1" >/dev/null 2>&1
}

@test "a group member cannot use / (or a symlink to it) as a template" {
  run -5 raw_create member slash /
  [[ "$output" == *"template \`/\`: not in a template directory ($STATE/templates:$D/more)"* ]]
  nothing_of slash
  # A symlink to / in an allowed directory (in raw requests: cellctl would
  # resolve the link itself, as the member, and send `/`).
  ln -s / "$STATE/templates/host"
  refused_raw viahost "$STATE/templates/host" "reached through a symlink"
  # Below such a symlink, and a relative one that climbs out.
  refused_raw viahostsrv "$STATE/templates/host/srv" "reached through a symlink"
  ln -s ../../../.. "$STATE/templates/up"
  refused_raw viaup "$STATE/templates/up" "reached through a symlink"
  refused_raw viaup2 "$STATE/templates/up/" "reached through a symlink"
  # `..` out of an allowed directory, and a symlink to / outside them.
  refused_raw dotdot "$STATE/templates/../../../.." "are not allowed"
  refused_raw dotdot "$STATE/templates/busybox/../../../../.." "are not allowed"
  ln -s / "$D/outside/host"
  run -5 raw_create member outside "$D/outside/host"
  [[ "$output" == *"not in a template directory"* ]]
  # A real template, but not in an allowed directory.
  run -5 raw_create member outside2 "$D/outside/busybox"
  [[ "$output" == *"ask root to put it there"* ]]
  # The allowed directory itself is not a template.
  run -5 raw_create member itself "$STATE/templates"
  rm "$STATE/templates/host" "$STATE/templates/up" "$D/outside/host"
  for n in viahost viahostsrv viaup viaup2 dotdot outside outside2 itself; do nothing_of "$n"; done
  run -0 member list --json
  [ "$(echo "$output" | jq length)" = 0 ]
}

@test "root-made templates in template_dirs still work for members; root may name any directory" {
  run -0 raw_create member fromdefault "$TEMPLATE" /bin/sleep 100000
  run -0 raw_create member frommore "$D/more/busybox" /bin/sleep 100000
  [ "$(field frommore .template)" = "$(realpath "$D/more/busybox")" ]
  [ "$(field fromdefault .owner)" = 4243 ]
  run -0 member start fromdefault
  run -0 member exec fromdefault -- id -u
  [ "$output" = 0 ]
  run -0 member destroy fromdefault -f
  run -0 member destroy frommore
  # Root is trusted with any directory (docs/api.md), through a symlink too.
  ln -s "$D/outside/busybox" "$D/outside/link"
  raw_create ctl rootsown "$D/outside/link" /bin/sleep 100000
  [ "$(field rootsown .template)" = "$(realpath "$D/outside/busybox")" ]
  ctl start rootsown
  ctl destroy rootsown -f
  rm "$D/outside/link"
}

@test "a member's template swapped for a symlink to / after create: start refuses it" {
  # A directory of a member's own in an allowed one, where it may put
  # templates of its own, and swap them.
  mkdir "$STATE/templates/m4243"
  cp -a "$TEMPLATE" "$STATE/templates/m4243/t"
  chown -R 4243:4242 "$STATE/templates/m4243"
  run -0 raw_create member swapped "$STATE/templates/m4243/t" /bin/sleep 100000
  setpriv --reuid 4243 --regid 4242 --clear-groups mv "$STATE/templates/m4243/t" "$STATE/templates/m4243/t.old"
  setpriv --reuid 4243 --regid 4242 --clear-groups ln -s / "$STATE/templates/m4243/t"
  run -1 member start swapped
  [[ "$output" == *"instance \`swapped\`: template \`$STATE/templates/m4243/t\`: reached through a symlink"* ]]
  [ "$(field swapped .state)" = created ]
  ! grep -q " $STATE/instances/swapped/" /proc/self/mountinfo
  # Root taking a directory out of template_dirs: its members' instances
  # no longer start (root's own are not bound by the list).
  setpriv --reuid 4243 --regid 4242 --clear-groups rm "$STATE/templates/m4243/t"
  setpriv --reuid 4243 --regid 4242 --clear-groups mv "$STATE/templates/m4243/t.old" "$STATE/templates/m4243/t"
  run -0 raw_create member inmore "$D/more/busybox" /bin/sleep 100000
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  cp "$D/celld.conf" "$D/celld.conf.saved"
  sed -i "s|^template_dirs = .*|template_dirs = $STATE/templates|" "$D/celld.conf"
  start_daemon
  run -1 member start inmore
  [[ "$output" == *"not in a template directory ($STATE/templates)"* ]]
  run -0 member start swapped
  run -0 member destroy swapped -f
  run -0 member destroy inmore
  mv "$D/celld.conf.saved" "$D/celld.conf"
  kill "$(cat "$D/celld.pid")"
  sleep 0.3
  start_daemon
  rm -rf "$STATE/templates/m4243"
}

@test "a template whose etc links to a host directory: celld writes nothing there" {
  host=$D/hostetc
  mkdir "$host"
  echo untouched >"$host/marker"
  evil=$STATE/templates/evil
  cp -a "$TEMPLATE" "$evil"
  rm -rf "$evil/etc"
  ln -s "$host" "$evil/etc"
  snapshot() { (cd "$1" && find . -printf '%p %U %G %m %s\n' | sort); }
  host_before=$(snapshot "$host")
  evil_before=$(snapshot "$evil")
  # The link leads nowhere inside the template: no etc/, refused clearly.
  run -8 raw_create member evil1 "$evil"
  [[ "$output" == *"not a root filesystem"* ]]
  run -8 raw_create ctl evil2 "$evil"
  [[ "$output" == *"not a root filesystem"* ]]
  nothing_of evil1
  nothing_of evil2
  [ "$(snapshot "$host")" = "$host_before" ]
  # Where it leads inside the template there is an etc: the instance gets
  # its inittab there, in its own layer; host and template stay as they were.
  mkdir -p "$evil$host"
  cp -a "$TEMPLATE/etc/." "$evil$host/"
  evil_before=$(snapshot "$evil")
  run -0 raw_create member evil3 "$evil"
  run -0 raw_create ctl evil4 "$evil"
  [ "$(snapshot "$host")" = "$host_before" ]
  [ "$(snapshot "$evil")" = "$evil_before" ]
  [ ! -e "$host/inittab" ]
  [ ! -e "$evil$host/inittab" ]
  for n in evil3 evil4; do
    start=$(field "$n" .id_start)
    grep -q "written by celld" "$STATE/instances/$n/upper$host/inittab"
    [ "$(stat -c %u "$STATE/instances/$n/upper$host/inittab")" = "$start" ]
  done
  ctl start evil4
  run -0 ctl exec evil4 -- cat /etc/inittab
  [[ "$output" == *"written by celld"* ]]
  ctl destroy evil4 -f
  member destroy evil3
  [ "$(snapshot "$host")" = "$host_before" ]
  rm -rf "$evil" "$host"
}

@test "a member asking for a name another owner uses learns only that it is not available" {
  raw_create ctl rootsname "$TEMPLATE" /bin/sleep 100000
  run -0 raw_create other_member othersname "$TEMPLATE" /bin/sleep 100000
  run -5 raw_create member rootsname "$TEMPLATE"
  taken_by_root=$output
  run -5 raw_create member othersname "$TEMPLATE"
  taken_by_other=$output
  # Not that it exists, not whose: the same words for either owner.
  [[ "$taken_by_root" == *"name \`rootsname\` is not available: choose another name"* ]]
  [ "${taken_by_other/othersname/rootsname}" = "$taken_by_root" ]
  [[ "$taken_by_root$taken_by_other" != *exist* ]]
  [[ "$taken_by_root$taken_by_other" != *owner* ]]
  [[ "$taken_by_other" != *4244* ]]
  run -0 raw_create member minename "$TEMPLATE" /bin/sleep 100000
  # Its own name, and root: that it exists (code exists).
  run -6 raw_create member minename "$TEMPLATE"
  [[ "$output" == *"already exists"* ]]
  run -6 raw_create ctl othersname "$TEMPLATE"
  [[ "$output" == *"already exists"* ]]
  run -0 member destroy minename
  run -0 other_member destroy othersname
  ctl destroy rootsname
}
