#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# The process section of config.json, checked from inside the container.

load helpers

@test "args reach the program unchanged" {
  setup_bundle printf '[%s]' one 'two words' '' "it's" '$HOME' -c
  run -0 cell run "$CID"
  [ "$output" = "[one][two words][][it's][\$HOME][-c]" ]
}

@test "args[0] is looked up in the PATH of process.env" {
  setup_bundle id -u
  update_config '.process.env = ["PATH=/usr/sbin:/usr/bin", $mark]' --arg mark "$TEST_MARK"
  run -0 cell run "$CID"
  [ "$output" = 0 ]
}

@test "env: the variables of process.env and only those" {
  setup_bundle sh -c 'echo "[$FOO]"; echo "[${HOME_LEAK-unset}]"'
  update_config '.process.env += ["FOO=bar baz=qux"]'
  HOME_LEAK=from-the-host run -0 cell run "$CID"
  [ "${lines[0]}" = "[bar baz=qux]" ]
  [ "${lines[1]}" = "[unset]" ]
}

@test "cwd: the program starts in process.cwd" {
  setup_bundle pwd
  update_config '.process.cwd = "/usr/bin"'
  run -0 cell run "$CID"
  [ "$output" = /usr/bin ]
}

@test "user: uid, gid and additionalGids" {
  setup_bundle sh -c 'id -u; id -g; grep "^Groups:" /proc/self/status'
  update_config '.process.user = {uid: 1000, gid: 100, additionalGids: [5, 1000]}'
  run -0 cell run "$CID"
  [ "${lines[0]}" = 1000 ]
  [ "${lines[1]}" = 100 ]
  read -ra groups <<<"${lines[2]#Groups:}"
  [ "${groups[*]}" = "5 1000" ]
}

@test "user: a uid with no passwd entry works" {
  setup_bundle sh -c 'id -u; id -g; touch /host/made-by'
  update_config '.process.user = {uid: 4242, gid: 4343}'
  chmod 0777 "$HOSTDIR"
  run -0 cell run "$CID"
  [ "${lines[0]}" = 4242 ]
  [ "${lines[1]}" = 4343 ]
  [ "$(stat -c %u:%g "$HOSTDIR/made-by")" = 4242:4343 ]
}

@test "user: without additionalGids the process has no supplementary group" {
  setup_bundle grep '^Groups:' /proc/self/status
  update_config '.process.user = {uid: 1000, gid: 1000}'
  run -0 cell run "$CID"
  read -ra groups <<<"${output#Groups:}"
  [ "${#groups[@]}" -eq 0 ]
}

@test "user.umask sets the umask" {
  setup_bundle sh -c 'umask; touch /host/f; mkdir /host/d'
  update_config '.process.user.umask = 63'
  run -0 cell run "$CID"
  [ "$output" = 0077 ]
  [ "$(stat -c %a "$HOSTDIR/f")" = 600 ]
  [ "$(stat -c %a "$HOSTDIR/d")" = 700 ]
}

@test "rlimits: RLIMIT_NOFILE soft and hard" {
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] && hard=1048576
  # Lowering is always allowed; raising the hard limit would need
  # CAP_SYS_RESOURCE.
  want_hard=$((hard < 4096 ? hard : 4096))
  want_soft=$((want_hard / 2))
  setup_bundle sh -c 'grep "^Max open files" /proc/self/limits; ulimit -n'
  update_config '.process.rlimits = [{type: "RLIMIT_NOFILE", soft: $s, hard: $h}]' \
    --argjson s "$want_soft" --argjson h "$want_hard"
  run -0 cell run "$CID"
  read -ra f <<<"${lines[0]}"
  [ "${f[3]} ${f[4]}" = "$want_soft $want_hard" ]
  [ "${lines[1]}" = "$want_soft" ]
}

@test "rlimits: several limits at once, RLIMIT_CORE 0" {
  setup_bundle sh -c 'grep -e "^Max core file size" -e "^Max processes" /proc/self/limits'
  update_config '.process.rlimits = [{type: "RLIMIT_CORE", soft: 0, hard: 0},
                                     {type: "RLIMIT_NPROC", soft: 500, hard: 600}]'
  run -0 cell run "$CID"
  [[ "${lines[0]}" =~ ^Max\ core\ file\ size\ +0\ +0\ +bytes ]]
  [[ "${lines[1]}" =~ ^Max\ processes\ +500\ +600\ +processes ]]
}

@test "oomScoreAdj sets /proc/self/oom_score_adj" {
  now=$(cat /proc/self/oom_score_adj)
  # Raising is always allowed.
  want=$((now + 123 > 1000 ? 1000 : now + 123))
  setup_bundle cat /proc/self/oom_score_adj
  update_config '.process.oomScoreAdj = $v' --argjson v "$want"
  run -0 cell run "$CID"
  [ "$output" = "$want" ]
}

@test "noNewPrivileges true and false" {
  setup_bundle grep '^NoNewPrivs:' /proc/self/status
  update_config '.process.noNewPrivileges = true'
  run -0 cell run "$CID"
  [[ "$output" =~ ^NoNewPrivs:[[:space:]]+1$ ]]

  update_config '.process.noNewPrivileges = false'
  run -0 cell run "$CID"
  [[ "$output" =~ ^NoNewPrivs:[[:space:]]+0$ ]]
}

@test "hostname" {
  setup_bundle hostname
  update_config '.hostname = "cell-host"'
  run -0 cell run "$CID"
  [ "$output" = cell-host ]
  [ "$(hostname)" != cell-host ]
}

@test "domainname" {
  requires_oci_version 1.1.0
  setup_bundle cat /proc/sys/kernel/domainname
  update_config '.domainname = "cell.example"'
  run -0 cell run "$CID"
  [ "$output" = cell.example ]
  [ "$(cat /proc/sys/kernel/domainname)" != cell.example ]
}

@test "capabilities: the sets of process.capabilities" {
  setup_bundle grep -e '^CapInh' -e '^CapPrm' -e '^CapEff' -e '^CapBnd' -e '^CapAmb' /proc/self/status
  # CAP_KILL is bit 5, CAP_NET_BIND_SERVICE bit 10.
  update_config '.process.capabilities = {
      bounding: ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
      effective: ["CAP_KILL"], permitted: ["CAP_KILL"],
      inheritable: [], ambient: []}'
  run -0 cell run "$CID"
  [[ "${lines[0]}" =~ ^CapInh:[[:space:]]+0000000000000000$ ]]
  [[ "${lines[1]}" =~ ^CapPrm:[[:space:]]+0000000000000020$ ]]
  [[ "${lines[2]}" =~ ^CapEff:[[:space:]]+0000000000000020$ ]]
  [[ "${lines[3]}" =~ ^CapBnd:[[:space:]]+0000000000000420$ ]]
  [[ "${lines[4]}" =~ ^CapAmb:[[:space:]]+0000000000000000$ ]]
}

# A runtime whose bounding set lacks CAP_SETPCAP cannot drop from it; a
# container that keeps all of it needs no drop, and must run.
@test "capabilities: a runtime without CAP_SETPCAP runs a container that keeps the bounding set it has" {
  setup_bundle grep '^CapBnd' /proc/self/status
  local bnd
  bnd=$(setpriv --bounding-set=-setpcap grep '^CapBnd' /proc/self/status | awk '{print $2}')
  # Its names, from the features' list (in the order of their numbers).
  local caps
  caps=$(cell features | jq -c --arg bnd "$bnd" '
    ($bnd | ascii_downcase | explode | map(if . >= 97 then . - 87 else . - 48 end)
      | reduce .[] as $d (0; . * 16 + $d)) as $mask
    | [.linux.capabilities | to_entries[]
       | select((($mask / pow(2; .key)) | floor) % 2 == 1) | .value]')
  update_config '.process.capabilities = {bounding: $caps, effective: [],
      permitted: [], inheritable: [], ambient: []}' --argjson caps "$caps"
  run -0 setpriv --bounding-set=-setpcap "$CELL" --root "$ROOT" run "$CID"
  [[ "$output" =~ ^CapBnd:[[:space:]]+$bnd$ ]]
}

@test "the container gets stdio and no other descriptor of the runtime" {
  setup_bundle sh -c 'exec ls /proc/self/fd'
  exec 7>"$BATS_TEST_TMPDIR/not-for-the-container"
  run -0 cell run "$CID"
  exec 7>&-
  # 3 is the directory ls is reading.
  [ "${lines[*]}" = "0 1 2 3" ]
}

@test "the container's stdout and stderr are the runtime's" {
  setup_bundle sh -c 'echo to-stdout; echo to-stderr >&2'
  cell run "$CID" </dev/null >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err"
  [ "$(cat "$BATS_TEST_TMPDIR/out")" = to-stdout ]
  grep -qx to-stderr "$BATS_TEST_TMPDIR/err"
}

@test "the container reads the runtime's stdin" {
  setup_bundle sh -c 'read -r line; echo "got [$line]"'
  run -0 cell run "$CID" <<<"some input"
  [ "$output" = "got [some input]" ]
}
