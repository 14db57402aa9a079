# shellcheck shell=bash disable=SC2016
# Real guests: each instance gets its own identity (hostname, hosts,
# resolv.conf, machine-id) in its own layer, the init decides the halt
# signal, --init splits like a shell, a stopped instance's console stays
# readable, and a Debian guest from rootfs-tools/mkrootfs-debian.  Against
# a private daemon in a network namespace of its own (bridges stay there).

bats_require_minimum_version 1.5.0

load celld-helpers
# Clear of the other celld test files' pools (the highest, celld-dos,
# celld-spoof and the soak, start at 41000000).
POOL_START=50000000
POOL_COUNT=$((65536 * 32))

setup_file() {
  [ "$(id -u)" = 0 ] || skip "celld tests need root"
  export NETNS=cellguest-$$ CGPARENT=/cell-test-guests-$$ BRG=ctg$$
  export CELLD_PREFIX="nsenter --net=/run/netns/$NETNS"
  celld_files
  ip netns add "$NETNS"
  cat >"$D/celld.conf" <<EOF
pool_start = $POOL_START
pool_count = $POOL_COUNT
# busybox init takes 2 to 3 s to power off (it sleeps between its
# SIGTERM, its SIGKILL and the poweroff): well below this.
stop_timeout = 10
cgroup_parent = $CGPARENT
dns = 10.98.0.53
network.g.bridge = $BRG
network.g.subnet4 = 10.98.1.0/24
network.g.subnet6 = none
network.g.dns = 10.98.1.1,fd98::53
EOF
  start_daemon
}

teardown_file() {
  [ -n "$D" ] || return 0
  celld_stop
  local left=0
  if [ "$(nsenter --net="/run/netns/$NETNS" ip -o link | grep -vc ': lo:')" != 0 ]; then
    echo "links left: $(nsenter --net="/run/netns/$NETNS" ip -o link)" >&2
    left=1
  fi
  ip netns del "$NETNS"
  celld_leaks || left=1
  return $left
}

snapshot() { (cd "$1" && find . -printf '%p %U %G %m %s %l\n' | sort && cat etc/* 2>/dev/null | md5sum); }

# The Debian guest, built once (tests/bats/debian-image.sh).
debian_template() {
  command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (make deps)"
  DEBIAN_CACHE=$("$BATS_TEST_DIRNAME/debian-image.sh")
}

@test "identity: hostname, hosts, resolv.conf and machine-id are the instance's own; the template is unchanged" {
  before=$(snapshot "$TEMPLATE")
  ctl create id1 --template "$TEMPLATE" --init "/bin/sleep 100000" \
    --hostname web1.example.org --net g:10.98.1.7
  ctl create id2 --template "$TEMPLATE" --init "/bin/sleep 100000"
  ctl start id1
  ctl start id2
  run -0 inside id1 cat /etc/hostname
  [ "$output" = web1.example.org ]
  run -0 inside id1 hostname -f
  [ "$output" = web1.example.org ]
  run -0 inside id1 cat /etc/hosts
  [[ "$output" == *$'127.0.0.1\tlocalhost'* ]]
  [[ "$output" == *$'10.98.1.7\tweb1.example.org web1'* ]]
  # The network's name servers; the other has no network: none at all.
  run -0 inside id1 cat /etc/resolv.conf
  [[ "$output" == *$'nameserver 10.98.1.1\nnameserver fd98::53'* ]]
  run -0 inside id2 cat /etc/resolv.conf
  [[ "$output" != *nameserver* ]]
  run -0 inside id2 cat /etc/hosts
  [[ "$output" == *$'127.0.1.1\tid2'* ]]
  run -0 inside id2 hostname
  [ "$output" = id2 ]
  # Two instances of one template: two machine-ids, each 32 hex digits.
  id1=$(inside id1 cat /etc/machine-id)
  id2=$(inside id2 cat /etc/machine-id)
  [[ "$id1" =~ ^[0-9a-f]{32}$ ]]
  [[ "$id2" =~ ^[0-9a-f]{32}$ ]]
  [ "$id1" != "$id2" ]
  # In the instance's own layer, its root's, mode 0644.
  start=$(field id1 .id_start)
  for f in hostname hosts resolv.conf machine-id; do
    [ "$(stat -c '%u %g %a' "$STATE/instances/id1/disk/upper/etc/$f")" = "0 0 644" ]
  done
  [ "$(snapshot "$TEMPLATE")" = "$before" ]
  ctl destroy id1 -f
  ctl destroy id2 -f
}

@test "attack: a template whose etc/hostname, hosts and machine-id link to host files cannot make celld write them" {
  evil=$D/evil-links
  cp -a "$TEMPLATE" "$evil"
  echo precious >"$D/host-file"
  ln -sfn "$D/host-file" "$evil/etc/hostname"
  # Absolute: followed on the host it would be the host's own files.
  ln -sfn /etc/passwd "$evil/etc/hosts"
  ln -sfn /etc/shadow "$evil/etc/resolv.conf"
  ln -sfn ../../../../../../../etc/machine-id "$evil/etc/machine-id"
  host_before=$(md5sum /etc/passwd /etc/shadow "$D/host-file" /etc/machine-id 2>/dev/null)
  evil_before=$(snapshot "$evil")
  ctl create evil --template "$evil" --init "/bin/sleep 100000"
  [ "$(md5sum /etc/passwd /etc/shadow "$D/host-file" /etc/machine-id 2>/dev/null)" = "$host_before" ]
  [ "$(snapshot "$evil")" = "$evil_before" ]
  # The instance's are plain files of its own, the links replaced.
  for f in hostname hosts resolv.conf machine-id; do
    [ -f "$STATE/instances/evil/disk/upper/etc/$f" ]
    [ ! -L "$STATE/instances/evil/disk/upper/etc/$f" ]
  done
  ctl start evil
  run -0 inside evil cat /etc/hostname
  [ "$output" = evil ]
  # Its own passwd, where the link led inside it, is untouched too.
  run -0 inside evil cat /etc/passwd
  [[ "$output" == root:x:0:0:* ]]
  ctl destroy evil -f
  [ "$(cat "$D/host-file")" = precious ]
  rm -rf "$evil" "$D/host-file"
}

@test "create refuses a template without /sbin/init naming the fix; --init runs one that has none" {
  bare=$STATE/templates/bare
  cp -a "$TEMPLATE" "$bare"
  rm "$bare/sbin/init"
  run -8 ctl create bare1 --template "$bare"
  [[ "$output" == *"(from \`$bare\`) has no /sbin/init"*"--init"*"mkrootfs-debian"* ]]
  [ ! -e "$STATE/instances/bare1" ]
  [ ! -e "$STATE/instances/bare1.json" ]
  run -8 ctl create bare2 --template "$bare" --init /bin/nothere
  [[ "$output" == *"has no program \`/bin/nothere\`"* ]]
  ctl create bare3 --template "$bare" --init "/bin/sh -c 'exec sleep 100000'"
  ctl start bare3
  run -0 inside bare3 echo alive
  [ "$output" = alive ]
  # Not busybox's init: no inittab of celld's.
  [ ! -e "$STATE/instances/bare3/disk/upper/etc/inittab" ]
  ctl destroy bare3 -f
  rm -rf "$bare"
}

@test "the default inittab goes only to a busybox /sbin/init, and never over the template's" {
  ctl create bb --template "$TEMPLATE"
  grep -q "written by celld" "$STATE/instances/bb/disk/upper/etc/inittab"
  other=$STATE/templates/other-init
  cp -a "$TEMPLATE" "$other"
  rm "$other/sbin/init"
  printf '#!/bin/sh\nexec sleep 100000\n' >"$other/sbin/init"
  chmod 755 "$other/sbin/init"
  ctl create oi --template "$other"
  [ ! -e "$STATE/instances/oi/disk/upper/etc/inittab" ]
  [ "$(field oi .halt_signal)" = 15 ]
  ctl destroy bb
  ctl destroy oi
  rm -rf "$other"
}

@test "the halt signal follows where /sbin/init leads; --halt-signal overrides it; show shows it" {
  ctl create h-bb --template "$TEMPLATE"
  run -0 ctl show h-bb
  [[ "$output" == *"halt_signal  SIGUSR2"* ]]
  sd=$STATE/templates/fake-systemd
  cp -a "$TEMPLATE" "$sd"
  mkdir -p "$sd/lib/systemd"
  cp "$sd/bin/busybox" "$sd/lib/systemd/systemd"
  ln -sfn ../lib/systemd/systemd "$sd/sbin/init"
  ctl create h-sd --template "$sd"
  run -0 ctl show h-sd
  [[ "$output" == *"halt_signal  SIGRTMIN+3"* ]]
  ctl create h-other --template "$TEMPLATE" --init "/bin/sleep 100000"
  [[ "$(ctl show h-other)" == *"halt_signal  SIGTERM"* ]]
  ctl create h-given --template "$TEMPLATE" --halt-signal PWR
  [[ "$(ctl show h-given)" == *"halt_signal  SIGPWR"* ]]
  ctl create h-num --template "$TEMPLATE" --halt-signal 10
  [[ "$(ctl show h-num)" == *"halt_signal  SIGUSR1"* ]]
  run -2 ctl create h-bad --template "$TEMPLATE" --halt-signal SIGNOPE
  [[ "$output" == *"--halt-signal"*"SIGNOPE"* ]]
  run -8 ctl create h-kill --template "$TEMPLATE" --halt-signal KILL
  [[ "$output" == *"cannot halt an init cleanly"* ]]
  [ ! -e "$STATE/instances/h-bad" ]
  [ ! -e "$STATE/instances/h-kill" ]
  # The record keeps it: a celld restart does not change it.
  [ "$(field h-sd .halt_signal)" = "$(($(kill -l RTMIN) + 3))" ]
  for n in h-bb h-sd h-other h-given h-num; do ctl destroy "$n"; done
  rm -rf "$sd"
}

@test "stop says which signal it sent and how long the stop took" {
  ctl create st --template "$TEMPLATE"
  ctl start st
  sleep 0.5
  run -0 ctl stop st
  [[ "${lines[0]}" == "stopping st: sent SIGUSR2 to its init, waiting up to 10 s" ]]
  [[ "${lines[1]}" =~ ^stopped\ st\ in\ [0-9]+\.[0-9]{2}\ s$ ]]
  # busybox init halted on its signal, well before the SIGKILL.
  run ! grep -q "st: did not stop in time" "$D/celld.log"
  [ "$(field st .exit_code)" != 137 ]
  ctl start st
  run -0 ctl stop st --timeout 7
  [[ "${lines[0]}" == *"waiting up to 7 s" ]]
  # Not running: celld's refusal, and no claim of a signal sent.
  run -7 ctl stop st
  [[ "$output" != *stopping* ]]
  # --timeout 0: the halt signal, then SIGKILL at once (it once waited
  # for ever: a timer of zero is a disarmed one).
  ctl create st0 --image "$(field st .image)" --init "/bin/sleep 100000"
  ctl start st0
  run -0 timeout 10 "$CELLCTL" --socket "$SOCK" stop st0 --timeout 0
  [ "$(field st0 .state)" = stopped ]
  ctl destroy st0
  ctl destroy st
}

@test "--init splits like a shell: quotes and backslashes, no expansion" {
  ctl create sp --template "$TEMPLATE" \
    --init "/bin/sh -c 'echo \"a  b\" \$HOME >/tmp/said; exec sleep 100000' x\\ y"
  run -0 field sp '.init | join("|")'
  [ "$output" = '/bin/sh|-c|echo "a  b" $HOME >/tmp/said; exec sleep 100000|x y' ]
  ctl start sp
  run -0 inside sp cat /tmp/said
  # $HOME reached the instance's sh as it was written (the .init above):
  # sh expanded it there, to nothing (unset in the instance).
  [ "$output" = "a  b" ]
  ctl destroy sp -f
  run -2 ctl create sq --template "$TEMPLATE" --init "/bin/sh -c 'unclosed"
  [[ "$output" == *"single quote is not closed"* ]]
  [ ! -e "$STATE/instances/sq" ]
}

@test "console of a stopped instance: its last 64 KiB, then the end; after a celld and keeper restart too" {
  ctl create died --template "$TEMPLATE" \
    --init "/bin/sh -c 'i=0; while [ \$i -lt 3000 ]; do echo line-\$i-of-the-console; i=\$((i+1)); done; echo last-words-42'"
  ctl start died
  for _ in $(seq 50); do
    [ "$(field died .state)" = stopped ] && break
    sleep 0.1
  done
  [ "$(field died .state)" = stopped ]
  run -0 ctl console died </dev/null
  [[ "${lines[0]}" == "cellctl: \`died\` is stopped: the last output of its console" ]]
  [[ "$output" == *last-words-42* ]]
  [[ "$output" == *line-2999-of-the-console* ]]
  # The last 64 KiB only: the first lines are gone.
  [[ "$output" != *line-10-of-the-console* ]]
  [ "$(wc -c <"$STATE/instances/died/console.saved")" -eq 65536 ]
  # celld and its console keeper both gone: the file brings it back.
  kill "$(cat "$D/celld.pid")"
  for p in $(pgrep -x celld-console); do
    tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF -- "--state-dir $STATE " && kill -9 "$p"
  done
  sleep 0.3
  start_daemon
  run -0 ctl console died </dev/null
  [[ "$output" == *last-words-42* ]]
  # One that dies while celld is away: saved when celld finds it dead.
  ctl create away --template "$TEMPLATE" \
    --init "/bin/sh -c 'trap \"echo died-while-away-7; exit 3\" TERM; echo up; while :; do sleep 0.1; done'"
  ctl start away
  pid=$(field away .pid)
  kill -9 "$(cat "$D/celld.pid")"
  sleep 0.3
  kill -TERM "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  run ! kill -0 "$pid"
  start_daemon
  [ "$(field away .state)" = stopped ]
  grep -q died-while-away-7 "$STATE/instances/away/console.saved"
  run -0 ctl console away </dev/null
  [[ "$output" == *died-while-away-7* ]]
  ctl destroy away
  # One that never ran has none: a clear refusal.
  ctl create never --template "$TEMPLATE"
  run -7 ctl console never </dev/null
  [[ "$output" == *"never ran"* ]]
  ctl destroy never
  ctl destroy died
}

@test "mkrootfs-debian: a clear one-line error without mmdebstrap, for a bad option, an unknown suite, a non-empty directory" {
  mkdir -p "$D/nobin"
  ln -sf "$(command -v id)" "$D/nobin/id"
  run -1 env PATH="$D/nobin" /bin/bash "$REPO/rootfs-tools/mkrootfs-debian" "$D/nodeb"
  [ "${#lines[@]}" = 1 ]
  [[ "$output" == *"mmdebstrap not found: install it (apt-get install mmdebstrap)"* ]]
  [ ! -e "$D/nodeb" ]
  run -1 "$REPO/rootfs-tools/mkrootfs-debian" --init upstart "$D/nodeb"
  [[ "$output" == *"--init \`upstart': expected systemd or busybox"* ]]
  # A suite the archive does not have: mmdebstrap's own words, then ours,
  # and nothing half-built.
  if command -v mmdebstrap >/dev/null; then
    run -1 "$REPO/rootfs-tools/mkrootfs-debian" --suite nosuchsuite "$D/nodeb"
    [[ "${lines[-1]}" == "mkrootfs-debian: mmdebstrap failed (see above): "* ]]
    [ ! -e "$D/nodeb" ]
  fi
  mkdir -p "$D/full" && touch "$D/full/x"
  run -1 "$REPO/rootfs-tools/mkrootfs-debian" "$D/full"
  [[ "$output" == *"is not empty"* ]]
  run -0 "$REPO/rootfs-tools/mkrootfs-debian" --help
  [[ "$output" == *"--init busybox"* ]]
}

@test "a Debian guest from mkrootfs-debian: systemd's halt signal, its own identity, no inittab" {
  debian_template
  deb=$DEBIAN_CACHE
  # What the builder promised: no identity of the build host.
  [ "$(cat "$deb/etc/hostname")" = localhost ]
  [ ! -s "$deb/etc/machine-id" ]
  [ "$(readlink "$deb/sbin/init")" = /lib/systemd/systemd ]
  [ -L "$deb/etc/systemd/system/multi-user.target.wants/systemd-networkd.service" ]
  grep -q '^root:!' "$deb/etc/shadow"
  before=$(snapshot "$deb")
  ctl create deb1 --template "$deb" --net g
  [ "$(field deb1 .halt_signal)" = "$(($(kill -l RTMIN) + 3))" ]
  [ ! -e "$STATE/instances/deb1/disk/upper/etc/inittab" ]
  [ "$(cat "$STATE/instances/deb1/disk/upper/etc/hostname")" = deb1 ]
  # Its shell as the init (the guest's own systemd boot is another test's).
  ctl create deb2 --template "$deb" --init "/bin/sh -c 'exec sleep 100000'" --net g
  ctl start deb2
  run -0 inside deb2 cat /etc/hostname /etc/resolv.conf
  [[ "$output" == *deb2*"nameserver 10.98.1.1"* ]]
  run -0 inside deb2 sh -c '. /etc/os-release; echo $ID'
  [ "$output" = debian ]
  # Debian's own hostname (glibc's resolver over the hosts file).
  run -0 inside deb2 hostname -f
  [ "$output" = deb2 ]
  addr=$(field deb2 '.networks[0].ipv4')
  run -0 inside deb2 getent hosts deb2
  [[ "$output" == "$addr"*deb2* ]]
  [ "$(inside deb2 cat /etc/machine-id)" != "$(cat "$STATE/instances/deb1/disk/upper/etc/machine-id")" ]
  ctl destroy deb1
  ctl destroy deb2 -f
  [ "$(snapshot "$deb")" = "$before" ]
}

@test "mkrootfs-debian --init busybox: a Debian minbase guest that boots on busybox init and halts on SIGUSR2" {
  command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (make deps)"
  local bb=$D/debian-busybox
  "$REPO/rootfs-tools/mkrootfs-debian" --init busybox "$bb" >"$D/mkrootfs-busybox.log" 2>&1 ||
    { cat "$D/mkrootfs-busybox.log"; false; }
  [ "$(readlink "$bb/sbin/init")" = /bin/busybox ]
  [ ! -e "$bb/lib/systemd/systemd" ]
  ctl create bbd --template "$bb"
  [ "$(field bbd .halt_signal)" = "$(kill -l USR2)" ]
  grep -q "written by celld" "$STATE/instances/bbd/disk/upper/etc/inittab"
  ctl start bbd
  run -0 inside bbd sh -c '. /etc/os-release; echo $ID; hostname'
  [ "$output" = $'debian\nbbd' ]
  run -0 ctl stop bbd
  [[ "${lines[0]}" == "stopping bbd: sent SIGUSR2 to its init, "* ]]
  run ! grep -q "bbd: did not stop in time" "$D/celld.log"
  ctl destroy bbd
  rm -rf "$bb"
}
