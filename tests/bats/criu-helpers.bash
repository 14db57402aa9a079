# shellcheck shell=bash
# What the checkpoint tests share (criu.bats, celld-criu.bats,
# celld-migrate.bats): whether criu can work here, the skips that follow
# from it, and a counter whose value only a restore keeps.

# CRIU_BIN (empty: not installed), CRIU_WORKS (yes|no) and CRIU_REASON
# (what `criu check` says is wrong), exported for the file's tests.
criu_probe() {
  CRIU_BIN=$(PATH=$PATH:/usr/sbin:/sbin command -v criu || true)
  CRIU_WORKS=no
  CRIU_REASON="criu is not installed"
  if [ -n "$CRIU_BIN" ]; then
    CRIU_REASON=$("$CRIU_BIN" check 2>&1 | grep -m1 Error | sed 's/^Error ([^)]*): //')
    if "$CRIU_BIN" check >/dev/null 2>&1; then
      CRIU_WORKS=yes
    fi
  fi
  export CRIU_BIN CRIU_WORKS CRIU_REASON
}

needs_working_criu() {
  [ "$CRIU_WORKS" = yes ] ||
    skip "criu cannot work here (${CRIU_REASON:-see criu check}): make check-criu runs this in a VM where it does"
}

needs_failing_criu() {
  [ -n "$CRIU_BIN" ] || skip "criu is not installed"
  [ "$CRIU_WORKS" = no ] || skip "criu works on this kernel: there is no refusal to test"
}

# A counter kept in the shell's memory, written to /count: a restored
# process goes on from where it was, a restarted one would start over.
COUNTER="/bin/sh -c 'exec </dev/null >/dev/null 2>&1; i=0; while :; do i=\$((i+1)); echo \$i > /count.new; mv /count.new /count; sleep 0.1; done'"

# DIR/criu: the criu on PATH, preloaded with tests/helpers/late-open.so,
# which records each command it ran (its first word) in DIR/ran.  For a
# celld's PATH.  Its opens for writing of files named PREFIXES (colon-
# separated) wait: while GATE exists, if given, else 1 s.  DIR/waiting
# appears when criu first waits.
late_open_criu() { # DIR PREFIXES [GATE]
  local real
  real=$(command -v criu)
  mkdir -p "$1"
  printf '#!/bin/sh\necho "$1" >>%s/ran\nLATE_OPEN=%s LATE_OPEN_GATE=%s LATE_OPEN_MARK=%s/waiting LD_PRELOAD=%s exec %s "$@"\n' \
    "$1" "$2" "${3:-}" "$1" "$(dirname "$CELLD")/tests/late-open.so" "$real" >"$1/criu"
  chmod +x "$1/criu"
}

# DIR/criu: a criu that writes a restored user namespace's id maps 1 s
# late (see late_open_criu).
late_id_map_criu() { # DIR
  late_open_criu "$1" uid_map:gid_map
}
