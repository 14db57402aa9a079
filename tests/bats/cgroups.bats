#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# cgroups: linux.resources in the kernel's files, what the limits do to the
# container, and pause / resume / ps / update / events.  The same tests run
# on a hybrid host (v1 controllers) and, through `make check-cgroupv2`, in a
# VM with cgroup v2 only.

load helpers

# Every program start counts in the VM of `make check-cgroupv2`, where it
# takes about a second: the helpers below stick to bash builtins.

# A cgroup2 mount at /sys/fs/cgroup itself (not at .../unified).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  CGROUP_V2=1
else
  CGROUP_V2=
fi

cgroup_v2() {
  [ -n "$CGROUP_V2" ]
}

# cg_path PROC_CGROUP_FILE CONTROLLER: the cgroup of CONTROLLER in a file
# in /proc/PID/cgroup's format (the cgroup2 line on a v2 host).
cg_path() {
  local _ ctls path
  while IFS=: read -r _ ctls path; do
    if cgroup_v2 && [ -z "$ctls" ] || [[ ",$ctls," == *",$2,"* ]]; then
      echo "$path"
      return 0
    fi
  done <"$1"
  echo "no $2 cgroup in $1" >&2
  return 1
}

# cg_dir PID CONTROLLER: the host directory of PID's cgroup for CONTROLLER.
cg_dir() {
  local path
  path=$(cg_path "/proc/$1/cgroup" "$2") || return
  if cgroup_v2; then
    echo "/sys/fs/cgroup$path"
  else
    echo "/sys/fs/cgroup/$2$path"
  fi
}

# cg_read PID CONTROLLER FILE
cg_read() {
  local dir
  dir=$(cg_dir "$1" "$2") || return
  echo "$(<"$dir/$3")"
}

# The name of a v1 file and of its v2 twin.
v1_or_v2() {
  if cgroup_v2; then echo "$2"; else echo "$1"; fi
}

memory_max_file() { v1_or_v2 memory.limit_in_bytes memory.max; }

no_cgroup_left() {
  local left
  left=$(leaked_cgroups)
  [ -z "$left" ] || {
    echo "cgroups left: $left" >&2
    return 1
  }
}

# Counter at /host/counter, replaced atomically so that it is never empty.
counter_script='i=0; while true; do i=$((i+1)); echo $i > /host/c.new; mv /host/c.new /host/counter; sleep 0.05; done'

counter_above() {
  [ "$(<"$HOSTDIR/counter")" -gt "$1" ]
}

# stats_events_at_least N FILE
stats_events_at_least() {
  [ "$(grep -c '"type":"stats"' "$2")" -ge "$1" ]
}

# cell events (without --stats) exits when its container stops; runc's
# goes on until it is killed.
wait_for_events_end() {
  if is_runc; then
    kill "$1"
    wait "$1" || true
    return
  fi
  retry process_gone "$1"
  wait "$1"
}

# --- limits ----------------------------------------------------------------

@test "resources: the limits are in the container's cgroup files" {
  # (Written whole, then renamed: the test waits for the name.)
  setup_bundle sh -c 'cat /proc/self/cgroup > /host/cgroup.new && mv /host/cgroup.new /host/cgroup; exec sleep 100'
  # Without a cgroup namespace the container sees its cgroup's real path.
  update_config '
    .linux.namespaces |= map(select(.type != "cgroup"))
    | .linux.resources += {memory: {limit: 33554432}, pids: {limit: 20},
                           cpu: {shares: 512, quota: 50000, period: 100000}}'
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/cgroup"
  local inside mem pids cpu
  inside=$HOSTDIR/cgroup
  mem=$(cg_path "$inside" memory)
  pids=$(cg_path "$inside" pids)
  cpu=$(cg_path "$inside" cpu)
  # cell's default cgroupsPath
  is_runc || [ "$mem" = "/cell/$CID" ]
  # The host sees the container's process in the same cgroups.
  [ "$mem" = "$(cg_path "/proc/$(container_pid "$CID")/cgroup" memory)" ]
  if cgroup_v2; then
    [ "$(<"/sys/fs/cgroup$mem/memory.max")" = 33554432 ]
    [ "$(<"/sys/fs/cgroup$pids/pids.max")" = 20 ]
    [ "$(<"/sys/fs/cgroup$cpu/cpu.max")" = "50000 100000" ]
    # shares 512 on runc's linear map of 2..262144 onto 1..10000
    [ "$(<"/sys/fs/cgroup$cpu/cpu.weight")" = 20 ]
  else
    [ "$(<"/sys/fs/cgroup/memory$mem/memory.limit_in_bytes")" = 33554432 ]
    [ "$(<"/sys/fs/cgroup/pids$pids/pids.max")" = 20 ]
    [ "$(<"/sys/fs/cgroup/cpu$cpu/cpu.cfs_quota_us")" = 50000 ]
    [ "$(<"/sys/fs/cgroup/cpu$cpu/cpu.cfs_period_us")" = 100000 ]
    [ "$(<"/sys/fs/cgroup/cpu$cpu/cpu.shares")" = 512 ]
  fi
  run -0 cell events --stats "$CID"
  jq -e --arg id "$CID" '.type == "stats" and .id == $id
    and .data.memory.usage.limit == 33554432 and .data.pids.limit == 20
    and .data.pids.current >= 1' <<<"$output"
}

@test "resources: a memory hog is OOM-killed and events reports it" {
  # head is made a first choice too: once tail is killed, head's next pipe
  # page can hit the limit before tail's memory is uncharged (seen in the
  # cgroup v2 guest), and the OOM killer then takes the next best task,
  # which must not be the shell that reports.
  setup_bundle sh -c 'while [ ! -e /host/go ]; do sleep 0.1; done
    sh -c "echo 1000 >/proc/self/oom_score_adj; exec head -c 67108864 /dev/zero" |
      sh -c "echo 1000 >/proc/self/oom_score_adj; exec tail"
    echo "hog $?" > /host/hog.new; mv /host/hog.new /host/hog; exec sleep 100'
  update_config '.linux.resources.memory = {limit: 33554432}'
  cell_detached run -d "$CID"
  local events=$BATS_TEST_TMPDIR/events events_pid
  cell events --interval 200ms "$CID" >"$events" 2>&1 3>&- &
  events_pid=$!
  on_teardown "kill $events_pid"
  # A first stats event: events watches the OOM count from here on.
  retry grep -q '"type":"stats"' "$events"
  touch "$HOSTDIR/go"
  retry grep -q '"type":"oom"' "$events"
  grep '"type":"oom"' "$events" | head -n1 | jq -e --arg id "$CID" '.id == $id'
  wait_for_file "$HOSTDIR/hog"
  # tail, the one holding the memory and made the OOM killer's first
  # choice (oom_score_adj 1000, not the shell that reports), died of SIGKILL;
  # the container lives.
  [ "$(<"$HOSTDIR/hog")" = "hog 137" ]
  [ "$(container_status "$CID")" = running ]
  run -0 cell events --stats "$CID"
  jq -e '.data.memory.usage.failcnt > 0 or .data.memory.usage.max >= 33000000' <<<"$output"
  cell kill "$CID" KILL
  wait_for_events_end "$events_pid"
}

@test "resources: a fork bomb stops at pids.limit" {
  # ash gives up at its first failed fork: the bomb runs in a shell of its
  # own, which reports how far it got.
  setup_bundle sh -c 'sh -c "i=0; while [ \$i -lt 50 ]; do sleep 100 & i=\$((i+1)); echo \$i > /host/spawned; done" 2>/host/errors
    echo "bomb $?" > /host/done; exec sleep 100'
  update_config '.linux.resources.pids = {limit: 20}'
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/done"
  [ "$(<"$HOSTDIR/done")" != "bomb 0" ]
  grep -q "fork" "$HOSTDIR/errors"
  [ "$(<"$HOSTDIR/spawned")" -lt 20 ]
  run -0 cell ps -f json "$CID"
  local n
  n=$(jq length <<<"$output")
  [ "$n" -ge 10 ]
  [ "$n" -le 20 ]
  local pid
  pid=$(container_pid "$CID")
  [ "$(cg_read "$pid" pids pids.max)" = 20 ]
  [ "$(cg_read "$pid" pids pids.current)" -le 20 ]
}

@test "resources: a denied device cannot be opened" {
  cell_only # runc appends its default rules after the config's: /dev/null stays allowed
  setup_bundle sh -c 'cat /dev/null && echo null-opened; head -c 3 /dev/zero | wc -c'
  update_config '.linux.resources.devices += [{allow: false, type: "c", major: 1,
                                                minor: 3, access: "rwm"}]'
  run cell run "$CID"
  [[ "$output" == *"/dev/null"*"Operation not permitted"* ]]
  [[ "$output" != *null-opened* ]]
  # The other default devices still work.
  [ "${lines[-1]}" = 3 ]
}

# --- pause, resume -----------------------------------------------------------

@test "pause freezes the container, resume thaws it" {
  setup_bundle sh -c "$counter_script"
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/counter"
  local pid before after
  pid=$(container_pid "$CID")

  run -0 cell pause "$CID"
  [ "$(container_status "$CID")" = paused ]
  if cgroup_v2; then
    grep -qx "frozen 1" "$(cg_dir "$pid" freezer)/cgroup.events"
  else
    [ "$(cg_read "$pid" freezer freezer.state)" = FROZEN ]
  fi
  before=$(<"$HOSTDIR/counter")
  sleep 1
  after=$(<"$HOSTDIR/counter")
  [ "$before" = "$after" ]
  run -1 cell pause "$CID"
  expect_message "container not running"
  run -0 cell list
  [[ "$output" == *"$CID "*paused* ]]

  run -0 cell resume "$CID"
  [ "$(container_status "$CID")" = running ]
  retry counter_above "$after"
  run -1 cell resume "$CID"
  expect_message "container not paused"

  cell kill "$CID" KILL
  wait_for_status "$CID" stopped
  run -1 cell pause "$CID"
  expect_message "container not running"
  run -1 cell resume "$CID"
  expect_message "container not paused"
}

@test "a paused container can be killed and deleted" {
  setup_bundle sh -c "$counter_script"
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/counter"
  run -0 cell pause "$CID"
  run -0 cell delete -f "$CID"
  run -1 cell state "$CID"
  no_cgroup_left
}

# --- ps ------------------------------------------------------------------------

@test "ps lists the container's processes" {
  setup_bundle sh -c 'sleep 100 & sleep 100 & echo ready > /host/ready; wait'
  cell_detached run -d "$CID"
  wait_for_file "$HOSTDIR/ready"
  local pid
  pid=$(container_pid "$CID")

  run -0 cell ps -f json "$CID"
  [ "$(jq length <<<"$output")" = 3 ]
  jq -e --argjson p "$pid" 'index($p) != null' <<<"$output"
  local json_pids
  json_pids=$(jq -r '.[]' <<<"$output" | sort -n | tr '\n' ' ')

  # table: the header and one row per process
  run -0 cell ps "$CID"
  [[ "${lines[0]}" == *PID*CMD* ]]
  [ "${#lines[@]}" = 4 ]

  # ps options after the id
  run -0 cell ps "$CID" -o pid,comm
  [ "$(echo "${lines[0]}" | awk '{print $1}')" = PID ]
  [ "$(printf '%s\n' "${lines[@]:1}" | awk '{print $1}' | sort -n | tr '\n' ' ')" = "$json_pids" ]
  # cell also takes them after `--` (runc hands that on to ps)
  if ! is_runc; then
    run -0 cell ps "$CID" -- -o pid,comm
    [ "${#lines[@]}" = 4 ]
  fi

  run -1 cell ps -f xml "$CID"
}

# --- update --------------------------------------------------------------------

@test "update changes live limits" {
  setup_bundle sleep 100
  update_config '.linux.resources += {pids: {limit: 10}, memory: {limit: 33554432}}'
  cell_detached run -d "$CID"
  local pid
  pid=$(container_pid "$CID")
  [ "$(cg_read "$pid" pids pids.max)" = 10 ]
  [ "$(cg_read "$pid" memory "$(memory_max_file)")" = 33554432 ]

  run -0 cell update --pids-limit 42 --memory 64M "$CID"
  [ "$(cg_read "$pid" pids pids.max)" = 42 ]
  [ "$(cg_read "$pid" memory "$(memory_max_file)")" = 67108864 ]
  run -0 cell events --stats "$CID"
  jq -e '.data.pids.limit == 42 and .data.memory.usage.limit == 67108864' <<<"$output"

  run -0 cell update --cpu-quota 20000 --cpu-period 100000 "$CID"
  if cgroup_v2; then
    [ "$(cg_read "$pid" cpu cpu.max)" = "20000 100000" ]
  else
    [ "$(cg_read "$pid" cpu cpu.cfs_quota_us)" = 20000 ]
  fi

  # -r: a linux.resources object, from a file or stdin
  echo '{"pids": {"limit": 7}}' >"$BATS_TEST_TMPDIR/resources.json"
  run -0 cell update -r "$BATS_TEST_TMPDIR/resources.json" "$CID"
  [ "$(cg_read "$pid" pids pids.max)" = 7 ]
  run -0 bash -c 'echo "{\"pids\": {\"limit\": 8}}" | "$@"' sh \
    "$CELL" --root "$ROOT" update -r - "$CID"
  [ "$(cg_read "$pid" pids pids.max)" = 8 ]
  run -0 cell update --pids-limit -1 "$CID"
  [ "$(cg_read "$pid" pids pids.max)" = max ]
}

@test "update: bad values fail and name the flag" {
  setup_bundle sleep 100
  update_config '.linux.resources.pids = {limit: 10}'
  cell_detached run -d "$CID"
  local pid
  pid=$(container_pid "$CID")
  run -1 cell update --pids-limit many "$CID"
  expect_message "--pids-limit"
  run -1 cell update --memory 12zb "$CID"
  expect_message "--memory"
  run -1 cell update --cpuset-cpus 999 "$CID"
  expect_message "--cpuset-cpus"
  echo '{"memory": {"limit": "lots"}}' >"$BATS_TEST_TMPDIR/resources.json"
  run -1 cell update -r "$BATS_TEST_TMPDIR/resources.json" "$CID"
  expect_message "resources.json: memory.limit: "
  run -1 cell update --pids-limit 5 no-such-container
  [ "$(cg_read "$pid" pids pids.max)" = 10 ]

  cell kill "$CID" KILL
  wait_for_status "$CID" stopped
  run -1 cell update --pids-limit 5 "$CID"
  expect_message "container not running"
}

# --- events --------------------------------------------------------------------

@test "events: --stats prints one event, the stream ends with the container" {
  setup_bundle sh -c 'while [ ! -e /host/stop ]; do sleep 0.1; done'
  cell_detached run -d "$CID"
  run -0 cell events --stats "$CID"
  [ "${#lines[@]}" = 1 ]
  jq -e --arg id "$CID" '.type == "stats" and .id == $id
    and (.data | has("cpu") and has("memory") and has("pids") and has("blkio"))' <<<"$output"

  local events=$BATS_TEST_TMPDIR/events events_pid
  cell events --interval 100ms "$CID" >"$events" 2>&1 3>&- &
  events_pid=$!
  on_teardown "kill $events_pid"
  retry stats_events_at_least 2 "$events"
  touch "$HOSTDIR/stop"
  wait_for_events_end "$events_pid"
  jq -se 'all(.type == "stats")' <"$events"

  if ! is_runc; then
    run -1 cell events --stats "$CID"
    expect_message "is not running"
  fi
  run -1 cell events --interval 0 "$CID"
  run -1 cell events --interval soon "$CID"
}

# --- nothing left behind -------------------------------------------------------

@test "no cgroup is left after delete -f or kill --all + delete" {
  setup_bundle sh -c 'sleep 100 & exec sleep 100'
  cell_detached run -d "$CID-a"
  local dir
  dir=$(cg_dir "$(container_pid "$CID-a")" pids)
  [ -d "$dir" ]
  run -0 cell delete -f "$CID-a"
  [ ! -e "$dir" ]
  no_cgroup_left

  cell_detached run -d "$CID-b"
  dir=$(cg_dir "$(container_pid "$CID-b")" pids)
  [ -d "$dir" ]
  run -0 cell kill --all "$CID-b" KILL
  wait_for_status "$CID-b" stopped
  run -0 cell delete "$CID-b"
  [ ! -e "$dir" ]
  no_cgroup_left
}

# cgroup v1's cpuset: a new cgroup is empty (it takes no task) until its
# cpus and mems are copied from its parent, a write the kernel checks
# against every sibling.  The first container under a parent copies them;
# the parent then hands them on at each mkdir.
@test "cpuset (v1): the first container's cgroup copies its parent's cpus, the parent hands them on to the next" {
  cgroup_v2 && skip "cgroup v2: a cpuset is never empty"
  [ -d /sys/fs/cgroup/cpuset ] || skip "no v1 cpuset hierarchy"
  local parent=/sys/fs/cgroup/cpuset/$CID-parent
  setup_bundle sleep 100
  update_config '.linux.cgroupsPath = $cg' --arg cg "/$CID-parent/$CID-a"
  cell_detached run -d "$CID-a"
  [ "$(<"$parent/cgroup.clone_children")" = 1 ]
  [ "$(<"$parent/cpuset.cpus")" = "$(</sys/fs/cgroup/cpuset/cpuset.cpus)" ]
  update_config '.linux.cgroupsPath = $cg' --arg cg "/$CID-parent/$CID-b"
  cell_detached run -d "$CID-b"
  local dir
  dir=$(cg_dir "$(container_pid "$CID-b")" cpuset)
  [ "$(<"$dir/cpuset.cpus")" = "$(<"$parent/cpuset.cpus")" ]
  [ "$(<"$dir/cpuset.mems")" = "$(<"$parent/cpuset.mems")" ]
  run -0 cell delete -f "$CID-a"
  run -0 cell delete -f "$CID-b"
  rmdir /sys/fs/cgroup/*/"$CID-parent" /sys/fs/cgroup/unified/"$CID-parent" 2>/dev/null || true
  no_cgroup_left
}

@test "a create that fails on its resources leaves no cgroup" {
  setup_bundle sleep 100
  update_config '.linux.resources.cpu = {quota: 1, period: 100000}'
  run -1 cell_detached create "$CID"
  expect_message "linux.resources.cpu.quota"
  no_cgroup_left
  run -1 cell state "$CID"

  update_config '.linux.resources.cpu = {cpus: "999"}'
  run -1 cell_detached create "$CID"
  expect_message "linux.resources.cpu.cpus"
  no_cgroup_left
  run -1 cell state "$CID"
}

# net_cls and net_prio exist only as cgroup v1 hierarchies: a host without
# them refuses the settings (as runc does) instead of dropping them.
@test "linux.resources.network: applied where net_cls and net_prio exist, refused where they do not" {
  setup_bundle sleep 100
  update_config '.linux.resources.network = {classID: 1048577}'
  if grep -q '[:,]net_cls[,:]' /proc/self/cgroup; then
    cell_detached run -d "$CID"
    [ "$(cg_read "$(container_pid "$CID")" net_cls net_cls.classid)" = 1048577 ]
  else
    run -1 cell_detached create "$CID"
    expect_message "linux.resources.network.classID: this host has no net_cls cgroup controller"
    no_cgroup_left
    run -1 cell state "$CID"
  fi

  update_config 'del(.linux.resources.network.classID)
    | .linux.resources.network.priorities = [{name: "lo", priority: 3}]'
  if grep -q '[:,]net_prio[,:]' /proc/self/cgroup; then
    cell_detached run -d "$CID-b"
    grep -qx 'lo 3' <<<"$(cg_read "$(container_pid "$CID-b")" net_prio net_prio.ifpriomap)"
  else
    run -1 cell_detached create "$CID-b"
    expect_message "linux.resources.network.priorities: this host has no net_prio cgroup controller"
    no_cgroup_left
  fi
}
