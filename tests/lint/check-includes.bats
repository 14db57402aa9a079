#!/usr/bin/env bats
# The layer checker catches what it is there to catch: each test builds a
# small tree with one wrong include and expects the checker to fail, naming
# the file and line.

CHECK=$BATS_TEST_DIRNAME/check-includes

setup() {
  T=$BATS_TEST_TMPDIR/tree
  mkdir -p "$T"/lib/{base,oci,cgroup,net,runtime,storage,daemon} "$T"/cmd/tool
  # A tree that obeys the layers: the checker accepts it.
  header "$T/lib/base/util.h" ""
  source_of "$T/lib/base/util.c" '#include "base/util.h"'
  header "$T/lib/cgroup/cgroup.h" '#include "base/util.h"'
  source_of "$T/lib/cgroup/cgroup.c" '#include "cgroup/cgroup.h"'
  header "$T/lib/net/netlink.h" '#include "base/util.h"'
  source_of "$T/lib/net/netlink.c" '#include "net/netlink.h"'
  header "$T/lib/runtime/container.h" '#include "cgroup/cgroup.h"'
  source_of "$T/lib/runtime/container.c" '#include "runtime/container.h"
#include "net/netlink.h"'
  header "$T/lib/daemon/daemon.h" '#include "runtime/container.h"'
  source_of "$T/lib/daemon/daemon.c" '#include "daemon/daemon.h"'
  printf '#include "daemon/daemon.h"\nint main(void) { return 0; }\n' >"$T/cmd/tool/main.c"
}

# header FILE INCLUDES: a header that declares the function of its .c.
header() {
  local name
  name=$(basename "${1%.h}" | tr - _)
  printf '#pragma once\n%s\nint %s_fn(void);\n' "$2" "$name" >"$1"
}

# source_of FILE INCLUDES: the .c that defines it.
source_of() {
  local name
  name=$(basename "${1%.c}" | tr - _)
  printf '%s\nint %s_fn(void) { return 0; }\n' "$2" "$name" >"$1"
}

@test "the checker accepts a tree that follows the layers" {
  run "$CHECK" "$T"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
}

@test "the checker accepts this repository" {
  run "$CHECK" "$BATS_TEST_DIRNAME/../.."
  echo "$output"
  [ "$status" -eq 0 ]
}

@test "an include of a higher layer fails, naming the file and line" {
  printf '#include "base/util.h"\n#include "runtime/container.h"\nint util_fn(void) { return 0; }\n' >"$T/lib/base/util.c"
  run "$CHECK" "$T"
  [ "$status" -eq 1 ]
  [[ $output == *'lib/base/util.c:2: includes "runtime/container.h" from a higher layer (runtime is above base)'* ]]
}

@test "an include of a sibling layer fails: cgroup and net are independent" {
  printf '#include "cgroup/cgroup.h"\n#include "net/netlink.h"\nint cgroup_fn(void) { return 0; }\n' >"$T/lib/cgroup/cgroup.c"
  run "$CHECK" "$T"
  [ "$status" -eq 1 ]
  [[ $output == *'lib/cgroup/cgroup.c:2: includes "net/netlink.h" from a sibling layer'* ]]
}

@test "modules that include each other in a circle fail" {
  header "$T/lib/daemon/conn.h" ""
  source_of "$T/lib/daemon/conn.c" '#include "daemon/conn.h"
#include "daemon/ops.h"'
  header "$T/lib/daemon/ops.h" ""
  source_of "$T/lib/daemon/ops.c" '#include "daemon/ops.h"
#include "daemon/conn.h"'
  run "$CHECK" "$T"
  [ "$status" -eq 1 ]
  [[ $output == *'lib/daemon/conn.c:2: include circle: daemon/conn includes daemon/ops'* ]]
  [[ $output == *'lib/daemon/ops.c:2: include circle: daemon/ops includes daemon/conn'* ]]
}

@test "a header that declares another file's function fails" {
  printf '#pragma once\nint container_fn(void);\nint daemon_fn(void);\n' >"$T/lib/runtime/container.h"
  run "$CHECK" "$T"
  [ "$status" -eq 1 ]
  [[ $output == *'lib/runtime/container.h:3: declares daemon_fn(), which container.c does not define'* ]]
}

@test "an extern declaration of a function in a .c file fails" {
  printf '#include "daemon/daemon.h"\nextern int util_fn(void);\nint daemon_fn(void) { return util_fn(); }\n' >"$T/lib/daemon/daemon.c"
  run "$CHECK" "$T"
  [ "$status" -eq 1 ]
  [[ $output == *'lib/daemon/daemon.c:2: declares another file'* ]]
}

@test "a header marked internal to its layer cannot be included from above" {
  printf '/* Internal to lib/cgroup. */\n#pragma once\nint common_fn(void);\n' >"$T/lib/cgroup/common.h"
  source_of "$T/lib/cgroup/common.c" '#include "cgroup/common.h"'
  printf '#include "cgroup/cgroup.h"\n#include "cgroup/common.h"\nint cgroup_fn(void) { return 0; }\n' >"$T/lib/cgroup/cgroup.c"
  run "$CHECK" "$T"
  [ "$status" -eq 0 ]
  printf '#include "runtime/container.h"\n#include "cgroup/common.h"\nint container_fn(void) { return 0; }\n' >"$T/lib/runtime/container.c"
  run "$CHECK" "$T"
  [ "$status" -eq 1 ]
  [[ $output == *'lib/runtime/container.c:2: includes "cgroup/common.h", which is internal to lib/cgroup'* ]]
}

@test "a folder under lib/ that is not a layer fails" {
  mkdir "$T/lib/misc"
  source_of "$T/lib/misc/thing.c" '#include "base/util.h"'
  run "$CHECK" "$T"
  [ "$status" -eq 1 ]
  [[ $output == *'lib/misc/thing.c:1: lib/misc is not a layer'* ]]
}

@test "a raw syscall() outside lib/base/syscalls.h fails" {
  printf '#include "net/netlink.h"\n#include <unistd.h>\nint netlink_fn(void) { return (int)syscall(39); }\n' >"$T/lib/net/netlink.c"
  run "$CHECK" "$T"
  [ "$status" -eq 1 ]
  [[ $output == *'lib/net/netlink.c:3: a raw syscall(): add a typed wrapper to lib/base/syscalls.h'* ]]
}
