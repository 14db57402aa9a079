#!/usr/bin/env bats
# shellcheck disable=SC2016 # container scripts are single-quoted on purpose
# process.apparmorProfile confines the container's program.  Needs a kernel
# with AppArmor enabled and apparmor_parser: `make check-cgroupv2` runs it in
# its VM; elsewhere it skips.

load helpers

apparmor_ready() {
  [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] ||
    return 1
  command -v apparmor_parser >/dev/null || return 1
  [ -d /sys/kernel/security/apparmor ] ||
    mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
  [ -d /sys/kernel/security/apparmor ]
}

@test "process.apparmorProfile: a read the profile denies is denied in the container" {
  apparmor_ready || skip "AppArmor is not enabled here, or apparmor_parser is missing"
  cat >"$BATS_TEST_TMPDIR/profile" <<'EOF2'
profile cell-test-deny flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  signal,
  unix,
  deny /host/denied r,
}
EOF2
  apparmor_parser -K -r "$BATS_TEST_TMPDIR/profile"
  on_teardown "apparmor_parser -K -R '$BATS_TEST_TMPDIR/profile'"
  setup_bundle sh -c 'cat /proc/self/attr/current; cat /host/allowed; cat /host/denied'
  echo allowed-content >"$HOSTDIR/allowed"
  echo SECRET >"$HOSTDIR/denied"
  update_config '.process.apparmorProfile = "cell-test-deny"'
  run cell run "$CID"
  echo "$output"
  [[ $output == *"cell-test-deny (enforce)"* ]]
  [[ $output == *allowed-content* ]]
  [[ $output != *SECRET* ]]
  [[ $output == *"Permission denied"* ]]
}
