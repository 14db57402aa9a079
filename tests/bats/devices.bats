#!/usr/bin/env bats
# shellcheck disable=SC2016 # jq filters and container scripts are single-quoted on purpose
# /dev inside the container: the default devices, linux.devices.

load helpers

# "NAME TYPE MAJOR:MINOR MODE" of each path, from inside the container
# (stat prints major and minor in hex; all of ours are below 10).
stat_script='for d in "$@"; do stat -c "%n %F %t:%T %a" "$d"; done'

@test "the default devices exist with the right numbers" {
  setup_bundle sh -c "$stat_script" sh /dev/null /dev/zero /dev/full \
    /dev/random /dev/urandom /dev/tty
  run -0 cell run "$CID"
  [ "${lines[0]}" = "/dev/null character special file 1:3 666" ]
  [ "${lines[1]}" = "/dev/zero character special file 1:5 666" ]
  [ "${lines[2]}" = "/dev/full character special file 1:7 666" ]
  [ "${lines[3]}" = "/dev/random character special file 1:8 666" ]
  [ "${lines[4]}" = "/dev/urandom character special file 1:9 666" ]
  [ "${lines[5]}" = "/dev/tty character special file 5:0 666" ]
}

@test "the default devices work" {
  setup_bundle sh -c 'echo x > /dev/null && echo null-ok
    head -c 4 /dev/zero | od -An -tx1
    echo x 2>&1 > /dev/full || echo full-fails
    head -c 16 /dev/urandom | wc -c'
  run -0 cell run "$CID"
  [ "${lines[0]}" = null-ok ]
  [ "${lines[1]// /}" = 00000000 ]
  [[ "$output" == *full-fails* ]]
  [ "${lines[-1]}" = 16 ]
}

@test "/dev/pts, /dev/ptmx, /dev/shm, /dev/mqueue" {
  setup_bundle sh -c 'test -d /dev/pts && echo pts; test -c /dev/pts/ptmx && echo pts-ptmx
    test -c /dev/ptmx && echo ptmx; test -d /dev/shm && touch /dev/shm/x && echo shm
    test -d /dev/mqueue && echo mqueue'
  run -0 cell run "$CID"
  [ "${lines[*]}" = "pts pts-ptmx ptmx shm mqueue" ]
}

@test "/dev/fd, /dev/stdin, /dev/stdout, /dev/stderr links" {
  setup_bundle sh -c 'for l in fd stdin stdout stderr; do echo "$l -> $(readlink /dev/$l)"; done
    echo via-stdout > /dev/stdout; ls /dev/fd/ | head -n 3 | tr "\n" " "'
  run -0 cell run "$CID"
  [ "${lines[0]}" = "fd -> /proc/self/fd" ]
  [ "${lines[1]}" = "stdin -> /proc/self/fd/0" ]
  [ "${lines[2]}" = "stdout -> /proc/self/fd/1" ]
  [ "${lines[3]}" = "stderr -> /proc/self/fd/2" ]
  [ "${lines[4]}" = via-stdout ]
  [ "${lines[5]}" = "0 1 2 " ]
}

@test "/dev is a fresh tmpfs without the host's devices" {
  setup_bundle sh -c 'ls /dev'
  run -0 cell run "$CID"
  [[ "$output" != *vda* && "$output" != *kmsg* && "$output" != *mem$'\n'* ]]
}

mynull_device='{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                "fileMode": 384, "uid": 0, "gid": 0}'

@test "linux.devices: a device is created with its numbers and mode" {
  setup_bundle sh -c "$stat_script"'; echo data > /dev/mynull && echo write-ok; cat /dev/mynull | wc -c' \
    sh /dev/mynull
  update_config '.linux.devices = [$d]' --argjson d "$mynull_device"
  run -0 cell run "$CID"
  [ "${lines[0]}" = "/dev/mynull character special file 1:3 600" ]
  [ "${lines[1]}" = write-ok ]
  [ "${lines[2]}" = 0 ]
}

@test "linux.devices: owner and a device in a new subdirectory" {
  setup_bundle sh -c 'stat -c "%u:%g %F %t:%T" /dev/sub/dir/myzero; head -c 3 /dev/sub/dir/myzero | wc -c'
  update_config '.linux.devices = [{path: "/dev/sub/dir/myzero", type: "c",
                                    major: 1, minor: 5, uid: 1000, gid: 100}]'
  run -0 cell run "$CID"
  [ "${lines[0]}" = "1000:100 character special file 1:5" ]
  [ "${lines[1]}" = 3 ]
}

@test "linux.devices inside a user namespace" {
  # No mknod in a user namespace: runtimes bind-mount the host's node of
  # the same path, so take one the host has and the default /dev lacks.
  [ -c /dev/kmsg ] || skip "the host has no /dev/kmsg"
  setup_bundle sh -c 'stat -c "%F %t:%T" /dev/kmsg; stat -c "%F %t:%T" /dev/null
    echo x > /dev/null && echo write-ok'
  use_user_namespace
  update_config '.linux.devices = [{path: "/dev/kmsg", type: "c", major: 1, minor: 11}]'
  run -0 cell run "$CID"
  [ "${lines[0]}" = "character special file 1:b" ]
  [ "${lines[1]}" = "character special file 1:3" ]
  [ "${lines[2]}" = write-ok ]
}

@test "linux.devices of a device the host lacks (mknod)" {
  # 1:12 is /dev/oldmem on old kernels; no node is needed on the host
  # for mknod inside the container's /dev.
  setup_bundle stat -c '%F %t:%T' /dev/cell-test-dev
  update_config '.linux.devices = [{path: "/dev/cell-test-dev", type: "c",
                                    major: 1, minor: 12, fileMode: 420}]'
  run -0 cell run "$CID"
  [ "$output" = "character special file 1:c" ]
}
