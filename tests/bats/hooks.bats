#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# OCI hooks: when each kind runs, what it reads on stdin, where it runs,
# and what a failing or hanging hook does.

load helpers

# The hook writes one line to the log file $2: its name $1, the namespaces
# it runs in, and the state it read on stdin (on one line).  It is a /bin/sh
# script in HOSTDIR: on the host at $HOSTDIR/hook.sh, in the container at
# /host/hook.sh (startContainer runs there, after pivot_root).
write_hook() {
  cat >"$HOSTDIR/hook.sh" <<'EOF'
#!/bin/sh
state=$(tr -d '\n')
echo "$1 $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/uts) $state" >>"$2"
EOF
  chmod 0755 "$HOSTDIR/hook.sh"
}

# hook NAME [LOG [PATH]]: the JSON of one hook entry running hook.sh.
hook() {
  jq -n --arg name "$1" --arg log "${2:-$HOSTDIR/log}" --arg path "${3:-$HOSTDIR/hook.sh}" \
    '{path: $path, args: ["hook.sh", $name, $log]}'
}

all_hooks_config() {
  update_config '.hooks = {
      prestart: [$prestart], createRuntime: [$createRuntime],
      createContainer: [$createContainer], startContainer: [$startContainer],
      poststart: [$poststart], poststop: [$poststop]}' \
    --argjson prestart "$(hook prestart)" \
    --argjson createRuntime "$(hook createRuntime)" \
    --argjson createContainer "$(hook createContainer)" \
    --argjson startContainer "$(hook startContainer /host/log /host/hook.sh)" \
    --argjson poststart "$(hook poststart)" \
    --argjson poststop "$(hook poststop)"
}

# The field N (1: name, 2: mnt ns, 3: uts ns, 4: state) of the log line
# of hook NAME.
hook_field() {
  awk -v name="$1" -v n="$2" '$1 == name {
    if (n < 4) print $n
    else { sub(/^[^ ]+ [^ ]+ [^ ]+ /, ""); print }
  }' "$HOSTDIR/log"
}

hook_status() {
  hook_field "$1" 4 | jq -r .status
}

@test "hooks: every kind runs, in the order of the lifecycle" {
  setup_bundle sh -c 'echo "container-ran" >> /host/log'
  write_hook
  all_hooks_config
  run -0 cell run "$CID"

  mapfile -t order < <(cut -d' ' -f1 "$HOSTDIR/log")
  echo "order: ${order[*]}"  # shown when the test fails
  # poststart runs once the process is started: its place relative to the
  # container's own output is not fixed.
  without_poststart=()
  for name in "${order[@]}"; do
    [ "$name" = poststart ] || without_poststart+=("$name")
  done
  [ "${without_poststart[*]}" = "prestart createRuntime createContainer startContainer container-ran poststop" ]
  # Each hook ran once.
  [ "$(grep -c '^poststart ' "$HOSTDIR/log")" -eq 1 ]
  [ "${#order[@]}" -eq 7 ]
  ran_before createContainer poststart
  ran_before poststart poststop
  # (runc 1.1 runs poststart before startContainer.)
  is_runc || ran_before startContainer poststart
}

# ran_before A B: the log has a line of A before one of B.
ran_before() {
  local a b
  a=$(grep -n -m1 "^$1 " "$HOSTDIR/log" | cut -d: -f1)
  b=$(grep -n -m1 "^$2 " "$HOSTDIR/log" | cut -d: -f1)
  [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]
}

@test "hooks: the state on stdin has the status of each step" {
  setup_bundle true
  write_hook
  all_hooks_config
  run -0 cell run "$CID"

  # config.md: these three are called "as part of the create operation",
  # which is not finished yet: "creating" (runc agrees).
  [ "$(hook_status prestart)" = creating ]
  [ "$(hook_status createRuntime)" = creating ]
  [ "$(hook_status createContainer)" = creating ]
  [ "$(hook_status startContainer)" = created ]
  if is_runc; then
    [ "$(hook_status poststart)" = created ]
  else
    [ "$(hook_status poststart)" = running ]
  fi
  [ "$(hook_status poststop)" = stopped ]
  for name in prestart createRuntime createContainer startContainer poststart poststop; do
    hook_field "$name" 4 | jq -e --arg id "$CID" --arg bundle "$BUNDLE" \
      '.id == $id and .bundle == $bundle and (.ociVersion | type == "string")'
  done
}

@test "hooks: createRuntime gets the pid of the container" {
  setup_bundle true
  write_hook
  update_config '.hooks.createRuntime = [$h]' --argjson h "$(hook createRuntime)"
  cell_detached create "$CID"
  [ "$(hook_field createRuntime 4 | jq .pid)" = "$(container_pid "$CID")" ]
}

@test "hooks: createContainer and startContainer run in the container's namespaces, the others on the host's" {
  setup_bundle true
  write_hook
  all_hooks_config
  run -0 cell run "$CID"
  host_mnt=$(ns_of $$ mnt)
  host_uts=$(ns_of $$ uts)
  for name in prestart createRuntime poststart poststop; do
    [ "$(hook_field "$name" 2)" = "$host_mnt" ]
    [ "$(hook_field "$name" 3)" = "$host_uts" ]
  done
  for name in createContainer startContainer; do
    [ "$(hook_field "$name" 2)" != "$host_mnt" ]
    [ "$(hook_field "$name" 3)" != "$host_uts" ]
  done
  [ "$(hook_field createContainer 2)" = "$(hook_field startContainer 2)" ]
}

@test "hooks: several hooks of one kind run in order" {
  setup_bundle true
  write_hook
  update_config '.hooks.createRuntime = [$a, $b, $c]' \
    --argjson a "$(hook first)" --argjson b "$(hook second)" --argjson c "$(hook third)"
  run -0 cell run "$CID"
  [ "$(cut -d' ' -f1 "$HOSTDIR/log" | tr '\n' ' ')" = "first second third " ]
}

@test "hooks: args and env are the hook's own" {
  setup_bundle true
  update_config '.hooks.createRuntime = [{
      path: "/bin/sh",
      args: ["sh", "-c", "printf \"[%s]\" \"$0\" \"$@\" \"$HOOK_VAR\" \"${LEAKED-unset}\" > \"$LOG\"",
             "zero", "one", "two words"],
      env: ["HOOK_VAR=hook value", ("LOG=" + $log)]}]' --arg log "$HOSTDIR/args"
  LEAKED=from-the-runtime run -0 cell run "$CID"
  [ "$(cat "$HOSTDIR/args")" = "[zero][one][two words][hook value][unset]" ]
}

@test "hooks: a failing createRuntime hook fails create and leaves nothing" {
  setup_bundle sleep 1000
  update_config '.hooks.createRuntime = [{path: "/bin/sh", args: ["sh", "-c", "exit 3"]}]'
  run ! cell_detached create "$CID"
  expect_message "createRuntime"
  run -1 cell state "$CID"
  [ -z "$(cell list -q)" ]
  [ -z "$(state_entries)" ]
  [ -z "$(leaked_pids)" ]
}

@test "hooks: a failing prestart hook fails run and leaves nothing" {
  setup_bundle sh -c 'touch /host/ran'
  update_config '.hooks.prestart = [{path: "/bin/false", args: ["false"]}]'
  run ! cell run "$CID"
  [ ! -e "$HOSTDIR/ran" ]
  [ -z "$(cell list -q)" ]
}

@test "hooks: a failing createContainer hook fails create" {
  setup_bundle sleep 1000
  update_config '.hooks.createContainer = [{path: "/bin/sh", args: ["sh", "-c", "exit 5"]}]'
  run ! cell_detached create "$CID"
  [ -z "$(cell list -q)" ]
}

@test "hooks: a failing startContainer hook fails start, the program never runs" {
  setup_bundle sh -c 'touch /host/ran'
  update_config '.hooks.startContainer = [{path: "/bin/false", args: ["false"]}]'
  cell_detached create "$CID"
  run cell start "$CID"
  # (runc 1.1 reports no error: the hook fails in the container's init.)
  is_runc || [ "$status" -ne 0 ]
  wait_for_status "$CID" stopped
  [ ! -e "$HOSTDIR/ran" ]
}

@test "hooks: a hook that does not exist fails create" {
  setup_bundle true
  update_config '.hooks.createRuntime = [{path: $p}]' --arg p "$BATS_TEST_TMPDIR/no-such-hook"
  run ! cell_detached create "$CID"
  [ -z "$(cell list -q)" ]
}

@test "hooks: a hook past its timeout is killed and fails create" {
  setup_bundle true
  # The mark in its environment lets the leak check find it.
  update_config '.hooks.createRuntime = [{path: "/bin/sleep", args: ["sleep", "60"],
                                          env: [$mark], timeout: 1}]' --arg mark "$TEST_MARK"
  start=$SECONDS
  run ! cell_detached create "$CID"
  [ $((SECONDS - start)) -lt 10 ]
  [ -z "$(cell list -q)" ]
  expect_message "timed out"
}

@test "hooks: poststop runs when a created container is deleted" {
  setup_bundle true
  write_hook
  update_config '.hooks.poststop = [$h]' --argjson h "$(hook poststop)"
  cell_detached create "$CID"
  [ ! -e "$HOSTDIR/log" ]
  cell delete "$CID"
  [ "$(hook_status poststop)" = stopped ]
}
