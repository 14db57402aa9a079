#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# linux.namespaces: new ones, joined ones, user and time namespaces.

load helpers

@test "pid namespace: the program is pid 1" {
  setup_bundle sh -c 'echo $$; tr "\0" " " </proc/1/cmdline; echo; ls -d /proc/[0-9]* | wc -l'
  run -0 cell run "$CID"
  [ "${lines[0]}" = 1 ]
  [[ "${lines[1]}" == "sh -c echo "* ]]
  # sh, and the ls of the subshell, and little else.
  [ "${lines[2]}" -le 4 ]
}

@test "network namespace: only lo" {
  setup_bundle sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'
  run -0 cell run "$CID"
  [ "${lines[*]}" = lo ]
}

@test "new namespaces differ from the host's, the cgroup one is kept" {
  setup_bundle sh -c 'for ns in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$ns; done'
  run -0 cell run "$CID"
  i=0
  for ns in pid net ipc uts mnt; do
    [[ "${lines[$i]}" == "$ns:["*"]" ]]
    [ "${lines[$i]}" != "$(ns_of $$ "$ns")" ]
    i=$((i + 1))
  done
  # The default config asks for no cgroup namespace.
  if ! jq -e '.linux.namespaces | map(.type) | index("cgroup")' config.json >/dev/null; then
    [ "${lines[5]}" = "$(ns_of $$ cgroup)" ]
  fi
}

@test "a namespace left out of the config is the host's" {
  setup_bundle sh -c 'readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc'
  update_config '.linux.namespaces |= map(select(.type != "uts" and .type != "ipc"))
                 | del(.hostname)'
  run -0 cell run "$CID"
  [ "${lines[0]}" = "$(ns_of $$ uts)" ]
  [ "${lines[1]}" = "$(ns_of $$ ipc)" ]
}

@test "joining a network namespace by path" {
  netns=cell-test-$$
  ip netns add "$netns"
  on_teardown "ip netns delete $netns"
  # Something to recognise it by from inside.
  ip -n "$netns" link set lo mtu 1234
  setup_bundle sh -c 'readlink /proc/self/ns/net; ip link show lo'
  update_config '(.linux.namespaces[] | select(.type == "network")) |= . + {path: $p}' \
    --arg p "/run/netns/$netns"
  run -0 cell run "$CID"
  [ "${lines[0]}" = "net:[$(stat -L -c %i "/run/netns/$netns")]" ]
  [[ "${lines[1]}" == *" mtu 1234 "* ]]
}

@test "joining the uts namespace of another container" {
  setup_bundle sh -c 'hostname; readlink /proc/self/ns/uts; touch /host/ready; sleep 1000'
  update_config '.hostname = "first"'
  cell_detached run -d "$CID-a"
  wait_for_file "$HOSTDIR/ready"
  pid=$(container_pid "$CID-a")

  set_args sh -c 'hostname; readlink /proc/self/ns/uts'
  update_config 'del(.hostname)
    | (.linux.namespaces[] | select(.type == "uts")) |= . + {path: $p}' \
    --arg p "/proc/$pid/ns/uts"
  run -0 cell run "$CID-b"
  [ "${lines[0]}" = first ]
  [ "${lines[1]}" = "$(ns_of "$pid" uts)" ]
}

@test "joining a namespace path that does not exist fails" {
  setup_bundle true
  update_config '(.linux.namespaces[] | select(.type == "network")) |= . + {path: $p}' \
    --arg p "$BATS_TEST_TMPDIR/no-such-netns"
  run ! cell run "$CID"
}

@test "user namespace: mappings, uid 0 inside, 100000 on the host" {
  setup_bundle sh -c 'cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g
    touch /host/made-inside; stat -c %u:%g /bin/busybox'
  use_user_namespace
  run -0 cell run "$CID"
  read -ra uid_map <<<"${lines[0]}"
  read -ra gid_map <<<"${lines[1]}"
  [ "${uid_map[*]}" = "0 100000 65536" ]
  [ "${gid_map[*]}" = "0 100000 65536" ]
  [ "${lines[2]}" = 0 ]
  [ "${lines[3]}" = 0 ]
  # Host root owns the rootfs and is not mapped: nobody.
  [ "${lines[4]}" = 65534:65534 ]
  [ "$(stat -c %u:%g "$HOSTDIR/made-inside")" = 100000:100000 ]
}

@test "user namespace: a runtime in a pid namespace whose /proc is its parent's still maps its own container" {
  # /proc numbers processes as the parent pid namespace does: the maps
  # written by the container's number must not go to another process.
  setup_bundle sh -c 'cat /proc/self/uid_map /proc/self/gid_map'
  use_user_namespace
  run -0 unshare -p -f --kill-child "$CELL" --root "$ROOT" run "$CID"
  read -ra uid_map <<<"${lines[0]}"
  read -ra gid_map <<<"${lines[1]}"
  [ "${uid_map[*]}" = "0 100000 65536" ]
  [ "${gid_map[*]}" = "0 100000 65536" ]
}

@test "user namespace: a process user is mapped too" {
  setup_bundle sh -c 'id -u; touch /host/by-user'
  use_user_namespace
  chmod 0777 "$HOSTDIR"
  update_config '.process.user = {uid: 1000, gid: 1000}'
  run -0 cell run "$CID"
  [ "$output" = 1000 ]
  [ "$(stat -c %u:%g "$HOSTDIR/by-user")" = 101000:101000 ]
}

@test "user namespace: the container's root is no root on the host" {
  setup_bundle sh -c 'cat /host/root-only'
  use_user_namespace
  # A file of the host's root, visible through the bind mount.
  echo secret >"$HOSTDIR/root-only"
  chmod 0600 "$HOSTDIR/root-only"
  run ! cell run "$CID"
  [[ "$output" != *secret* ]]
}

@test "time namespace: offsets of monotonic and boottime clocks" {
  requires_namespace time
  requires_kernel_file /proc/self/timens_offsets
  setup_bundle sh -c 'cat /proc/self/timens_offsets; cut -d" " -f1 /proc/uptime'
  update_config '.linux.namespaces += [{type: "time"}]
    | .linux.timeOffsets = {monotonic: {secs: 86400, nanosecs: 0},
                            boottime: {secs: 864000, nanosecs: 500}}'
  # Read before the run: read after, it may have passed a second more.
  host_uptime=$(cut -d. -f1 /proc/uptime)
  run -0 cell run "$CID"
  grep -qE '^monotonic +86400 +0$' <<<"$output"
  grep -qE '^boottime +864000 +500$' <<<"$output"
  [ "${lines[2]%.*}" -ge $((host_uptime + 864000)) ]
}

# A type left out of linux.namespaces is shared with the runtime, the mount
# namespace too (runc runs such a config, chrooted).  What would mount
# something in the host's namespace is refused (runc would do it).
@test "no mount namespace: the container shares the runtime's, and a config that would mount in it is refused" {
  setup_bundle sleep 100
  update_config '.mounts = []
    | .linux.namespaces |= map(select(.type != "mount"))
    | del(.linux.maskedPaths, .linux.readonlyPaths)'
  cell_detached run -d "$CID"
  pid=$(container_pid "$CID")
  [ "$(ns_of "$pid" mnt)" = "$(ns_of $$ mnt)" ]
  [ "$(readlink "/proc/$pid/root")" = "$(readlink -f "$TEST_ROOTFS")" ]
  # exec joins no mount namespace there: it must still land in the rootfs,
  # not in the host's /.
  run -0 cell exec "$CID" ls -a /
  grep -qx .cell-test-rootfs <<<"$output"

  if ! is_runc; then
    update_config '.mounts = [{destination: "/proc", type: "proc", source: "proc"}]'
    run -1 cell run "$CID-b"
    expect_message "mounts: needs a mount namespace of the container's own"
  fi
}
