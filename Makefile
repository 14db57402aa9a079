# cell — build, test, install.  `make help` lists the targets.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build

CC      ?= gcc
PKGS    := yajl libcap libseccomp libnftables libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# CFLAGS is the user's (optimisation, debug); what the code needs is in
# CELL_CFLAGS so that `make CFLAGS=...` cannot drop it.
CFLAGS  ?= -O2 -g
CELL_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
           -fno-strict-aliasing -D_GNU_SOURCE $(PKG_CFLAGS) -iquote lib -MMD -MP
# yajl, libcap and libseccomp are linked statically (Debian ships the .a
# files): no dynamic loading of them at every container start.  libnftables
# has no static archive; --as-needed drops it from programs that do not use
# it (only celld filters bridge ports).  libarchive (layer tarballs) and
# libcrypto (their sha256) are linked dynamically: the static libarchive
# would drag in every compression library it knows.  libmicrohttpd (celld's
# metrics over HTTP) likewise, and only celld uses it.
MHD_LIBS := $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
STATIC_LIBS := -lyajl_s -lcap -lseccomp
LDLIBS  += -Wl,--as-needed -Wl,-Bstatic $(STATIC_LIBS) -Wl,-Bdynamic -lnftables \
           -larchive -lcrypto $(MHD_LIBS)
# cell, run for every container and every command a client sends, and
# cellctl, run for every command of a VPS host's operator, are linked
# statically, libc included (static-pie: their addresses are still
# random): the dynamic loader and libc's relocations cost more CPU than
# all of cell's own start (perf stat).  They need none of the dynamic
# libraries: the netlink messages are our own (lib/net/nlmsg.c), cellctl's
# tar streams are cellctl-tree's, and neither looks users up through NSS.
# Under the sanitizers, whose runtimes need dynamic linking, they are
# linked like the others; the fault walk, which preloads its shim, runs
# tests/cell-dynamic, cell's objects linked so.
STATIC_PIE_LDLIBS := $(if $(SAN_FLAGS),$(LDLIBS),-static-pie $(STATIC_LIBS))
SAN_FLAGS ?=

# libcell: one folder per layer (docs/architecture.md).
LAYERS   := base oci cgroup net runtime storage daemon
LIB_SRC  := $(sort $(foreach l,$(LAYERS),$(wildcard lib/$(l)/*.c)))
LIB_ASM  := $(sort $(foreach l,$(LAYERS),$(wildcard lib/$(l)/*.S)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(LIB_ASM:%.S=$(BUILD)/%.o)
LIBCELL  := $(BUILD)/libcell.a
PROGRAMS := $(BUILD)/cell $(BUILD)/celld $(BUILD)/cellctl
# Run by the programs, not by users: cellctl's tar streams (libarchive
# stays out of cellctl, cmd/cellctl-tree/main.c) and criu's action script
# at celld's restores (cmd/celld-criu-action/main.c).
LIBEXECDIR ?= $(PREFIX)/libexec/cell
LIBEXEC_PROGRAMS := $(BUILD)/cellctl-tree $(BUILD)/celld-criu-action
UNIT_SRC := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Programs the bats tests use (tests/helpers).
# Static helpers run inside the busybox rootfs of containers and instances,
# which has no libc.
STATIC_HELPERS := $(BUILD)/tests/nested-procfs $(BUILD)/tests/syscall-probe \
                  $(BUILD)/tests/try-syscall $(BUILD)/tests/dev-probe $(BUILD)/tests/exe-watch
TEST_HELPERS := $(BUILD)/tests/recvtty $(BUILD)/tests/fault-inject.so $(BUILD)/tests/late-open.so \
                $(BUILD)/tests/cell-dynamic \
                $(BUILD)/tests/seccomp-agent $(BUILD)/tests/oci-inspect $(STATIC_HELPERS)

# Debian packages the build and the tests need (make deps).
DEB_BUILD := build-essential pkg-config libyajl-dev libcap-dev libseccomp-dev \
             libnftables-dev libarchive-dev libssl-dev libmicrohttpd-dev
DEB_TEST  := bats jq busybox-static iproute2 util-linux procps psmisc kmod lxcfs \
             bsdutils podman containerd nftables python3 apparmor mmdebstrap \
             skopeo zstd xz-utils btrfs-progs man-db xfsprogs criu dnsmasq-base \
             isc-dhcp-client
# The fuzzers (make fuzz): clang and its libFuzzer runtime.
DEB_FUZZ  := clang libclang-rt-14-dev

.PHONY: all docs deps check lint unit bats asan install uninstall clean demo rootfs rootfs-debian help bench \
        fuzz fuzz-ci fuzz-build

all: $(PROGRAMS) $(LIBEXEC_PROGRAMS) $(LIBCELL) docs

# Man pages and bash completion, made of the programs' own --help and of
# config/celld.conf (docs/cli/), so that they cannot disagree.
MAN_PAGES := $(BUILD)/man/cell.8 $(BUILD)/man/celld.8 $(BUILD)/man/cellctl.1 $(BUILD)/man/celld.conf.5
COMPLETION := $(BUILD)/completion/cell
docs: $(MAN_PAGES) $(COMPLETION)

$(BUILD)/man/cell.8: $(BUILD)/cell docs/cli/help2roff
	@mkdir -p $(@D)
	docs/cli/help2roff $< 8 "an OCI container runtime, a drop-in for runc" >$@.tmp && mv $@.tmp $@
$(BUILD)/man/celld.8: $(BUILD)/celld docs/cli/help2roff
	@mkdir -p $(@D)
	docs/cli/help2roff $< 8 "the daemon that keeps cell's persistent instances" >$@.tmp && mv $@.tmp $@
$(BUILD)/man/cellctl.1: $(BUILD)/cellctl docs/cli/help2roff
	@mkdir -p $(@D)
	docs/cli/help2roff $< 1 "manage celld's instances, images, snapshots and networks" >$@.tmp && mv $@.tmp $@
$(BUILD)/man/celld.conf.5: config/celld.conf docs/cli/conf2roff
	@mkdir -p $(@D)
	docs/cli/conf2roff $< >$@.tmp && mv $@.tmp $@
$(COMPLETION): $(BUILD)/cellctl $(BUILD)/cell docs/cli/help2completion
	@mkdir -p $(@D)
	docs/cli/help2completion $(BUILD)/cellctl $(BUILD)/cell >$@.tmp && mv $@.tmp $@

help:
	@echo "make            build $(BUILD)/cell and $(BUILD)/libcell.a"
	@echo "make deps       apt-get install what the build and tests need"
	@echo "make check      layer check + unit tests + bats end-to-end tests"
	@echo "make lint       check that lib/'s includes follow its layers"
	@echo "make fault      fail each fallible call of cell's commands in turn"
	@echo "make check-cgroupv2  the cgroup tests in a cgroup-v2-only VM (../shared/tools/vm-run)"
	@echo "make check-criu      the checkpoint/restore tests in that VM, where criu works"
	@echo "make test-build      build all that check and the VM targets use (then they may run side by side)"
	@echo "make asan       build and run every test under ASan + UBSan"
	@echo "make fuzz       run each libFuzzer target FUZZ_SECONDS (300) under ASan + UBSan"
	@echo "make fuzz-ci    the same, 25 s each: fails on a crash, leak or timeout"
	@echo "make demo       build a busybox rootfs and run a demo container"
	@echo "make rootfs-debian  a systemd Debian guest in $(BUILD)/rootfs-debian (mmdebstrap);"
	@echo "                    IMPORT=NAME[:TAG]: then into celld's image store"
	@echo "make install    install into \$$DESTDIR\$$PREFIX"
	@echo "make bench      cell against crun, runc and the kernel's floor, celld against LXC, image and clone (figures)"
	@echo "make soak       1000 instance lifecycles with celld killed -9 in 50; checks for leaks"

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_BUILD) $(DEB_TEST) $(DEB_FUZZ)

$(BUILD)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CELL_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(BUILD)/lib/%.o: lib/%.S $(wildcard config/*.json)
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) -c -o $@ $<

$(LIBCELL): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# Each program is the objects of its folder in cmd/, linked with libcell.
CMD_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard cmd/$(1)/*.c)))

$(BUILD)/cmd/%.o: cmd/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CELL_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

# The commit `cell --version` prints ("unknown" outside a git tree, as in a
# tarball build).  The stamp is rewritten only when the commit changes, so
# main.o is rebuilt then and only then.
CELL_COMMIT := $(or $(if $(wildcard .git),$(shell git describe --tags --always --dirty 2>/dev/null)),unknown)

# (A temporary file of its own: two makes may run at once, as in CI, where
# the VM targets start beside make check on a tree already built.)
$(BUILD)/cell-commit.stamp: FORCE
	@mkdir -p $(@D)
	@t=$@.tmp.$$$$; echo '$(CELL_COMMIT)' >$$t; \
	  if cmp -s $$t $@; then rm $$t; else mv $$t $@; fi

$(BUILD)/cmd/cell/main.o: $(BUILD)/cell-commit.stamp
$(BUILD)/cmd/cell/main.o: CELL_CFLAGS += -DCELL_COMMIT='"$(CELL_COMMIT)"'
$(BUILD)/lib/base/libexec.o: CELL_CFLAGS += -DCELL_LIBEXECDIR='"$(LIBEXECDIR)"'

FORCE:

.SECONDEXPANSION:
$(PROGRAMS) $(LIBEXEC_PROGRAMS): $(BUILD)/%: $$(call CMD_OBJ,%) $(LIBCELL)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $(filter %.o,$^) $(LIBCELL) $(LDLIBS) $(SAN_FLAGS)
$(BUILD)/cell $(BUILD)/cellctl $(BUILD)/celld-criu-action: LDLIBS := $(STATIC_PIE_LDLIBS)

$(BUILD)/tests/cell-dynamic: $(call CMD_OBJ,cell) $(LIBCELL) | $(BUILD)/tests
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $(filter %.o,$^) $(LIBCELL) $(LDLIBS) $(SAN_FLAGS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(LIBCELL) | $(BUILD)/tests
	$(CC) $(CFLAGS) $(CELL_CFLAGS) $(SAN_FLAGS) -iquote tests/unit -o $@ $< $(LIBCELL) $(LDLIBS) $(SAN_FLAGS)

# Preloaded into cell by tests/bats/fault.bats; never sanitized itself.
$(BUILD)/tests/fault-inject.so: tests/fault/fault-inject.c | $(BUILD)/tests
	$(CC) -O1 -g -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

# Preloaded into criu by tests/bats/celld-criu.bats; never sanitized.
$(BUILD)/tests/late-open.so: tests/helpers/late-open.c | $(BUILD)/tests
	$(CC) -O1 -g -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

$(BUILD)/tests/recvtty: tests/helpers/recvtty.c | $(BUILD)/tests
	$(CC) $(CFLAGS) $(CELL_CFLAGS) $(SAN_FLAGS) -o $@ $< $(SAN_FLAGS)

$(BUILD)/tests/seccomp-agent: tests/helpers/seccomp-agent.c | $(BUILD)/tests
	$(CC) $(CFLAGS) $(CELL_CFLAGS) $(SAN_FLAGS) -o $@ $< $(SAN_FLAGS)

$(BUILD)/tests/oci-inspect: tests/helpers/oci-inspect.c $(LIBCELL) | $(BUILD)/tests
	$(CC) $(CFLAGS) $(CELL_CFLAGS) $(SAN_FLAGS) -o $@ $< $(LIBCELL) $(LDLIBS) $(SAN_FLAGS)

# Static, and never sanitized (the sanitizers' runtimes do not link
# statically).
$(STATIC_HELPERS): $(BUILD)/tests/%: tests/helpers/%.c | $(BUILD)/tests
	$(CC) -O2 -g -Wall -Wextra -Werror -static -pthread -o $@ $<

$(BUILD)/tests:
	mkdir -p $@

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "# $$t"; $$t; done

# End-to-end tests drive the real binary; they need root.
bats: $(PROGRAMS) $(LIBEXEC_PROGRAMS) $(TEST_HELPERS)
	CELL=$(abspath $(BUILD)/cell) CELLD=$(abspath $(BUILD)/celld) CELLCTL=$(abspath $(BUILD)/cellctl) CELL_TEST_HELPERS=$(abspath $(BUILD)/tests) bats --timing tests/bats

# The layers of lib/ (docs/architecture.md), and the checker's own tests.
lint:
	tests/lint/check-includes
	bats tests/lint

# Every fallible call of cell's commands failed in turn (tests/fault).
.PHONY: fault
fault: $(PROGRAMS) $(TEST_HELPERS)
	CELL=$(abspath $(BUILD)/tests/cell-dynamic) CELL_TEST_HELPERS=$(abspath $(BUILD)/tests) bats --timing tests/fault

check: all lint unit bats fault

# Everything check and the VM targets build, built: after it, makes of
# these targets run side by side build nothing (CI does so).
.PHONY: test-build
test-build: all rootfs $(UNIT_BIN) $(TEST_HELPERS)

# The cgroup tests once more, in a VM whose kernel has cgroup v2 only
# (tests/bats/cgroupv2.sh).  Fails when there is no VM tool.
VM_RUN ?= $(abspath ../shared/tools/vm-run)
.PHONY: check-cgroupv2
check-cgroupv2: all rootfs $(BUILD)/tests/test-cgroup $(TEST_HELPERS)
	tests/bats/cgroupv2.sh "$(VM_RUN)" "$(BUILD)"

# The checkpoint and restore tests (tests/bats/criu.bats) in the same VM,
# whose kernel criu knows (tests/bats/criu.sh).  Fails when there is no VM
# tool.
.PHONY: check-criu
check-criu: all rootfs
	tests/bats/criu.sh "$(VM_RUN)" "$(BUILD)"

asan:
	$(MAKE) BUILD=build-asan SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  CFLAGS="-O1 -g" all lint unit bats

# libFuzzer targets (tests/fuzz/fuzz-*.c): libcell built again with clang in
# build-fuzz, instrumented for the fuzzer, ASan and UBSan.  New inputs go to
# build-fuzz/corpus, crashes to build-fuzz/artifacts; tests/fuzz/corpus holds
# the seeds (tests/fuzz/run).
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_CI_SECONDS ?= 25
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz-%.c,%,$(sort $(wildcard tests/fuzz/fuzz-*.c)))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="-O1 -g" \
	  SAN_FLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	  $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz/fuzz-%)

$(BUILD)/fuzz/fuzz-%: tests/fuzz/fuzz-%.c $(wildcard tests/fuzz/*.h) $(LIBCELL)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CELL_CFLAGS) -iquote tests/fuzz -fsanitize=fuzzer $(FUZZ_SAN) \
	  -o $@ $< $(LIBCELL) $(LDLIBS)

fuzz: fuzz-build
	tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-ci:
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_CI_SECONDS)

# Figures, not tests: cell against crun and runc on one bundle, what an
# instance costs celld, what images cost it, and the frozen time of a
# checkpoint + restore against runc's where criu works (needs root).
bench: all rootfs $(BUILD)/timeit $(BUILD)/floor
	tests/bench/bench.sh $(BUILD)
	tests/bench/bench-celld.sh $(BUILD)
	tests/bench/bench-lxc.sh $(BUILD)
	tests/bench/bench-images.sh $(BUILD)
	tests/bench/bench-criu.sh $(BUILD)
	tests/bench/bench-clones.sh $(BUILD)

$(BUILD)/timeit: tests/bench/timeit.c
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/floor: tests/bench/floor.c
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

# Not in make check: 1000 cycles of an instance's life through celld, with
# celld killed -9 in 50 of them; nothing may be left (needs root).
.PHONY: soak
soak: all rootfs
	tests/soak/soak.sh $(BUILD)

rootfs: $(BUILD)/rootfs/bin/busybox
$(BUILD)/rootfs/bin/busybox:
	rootfs-tools/mkrootfs-busybox $(BUILD)/rootfs

# A standard Debian guest (systemd, networkd) for celld templates; minutes
# of apt the first time, nothing after (remove the directory to rebuild).
# IMPORT=NAME[:TAG]: then into celld's image store (the build as it is,
# when there is one already; the same tree again is the same image).
rootfs-debian: $(BUILD)/rootfs-debian/sbin/init $(if $(IMPORT),$(BUILD)/cellctl)
ifneq ($(IMPORT),)
	$(BUILD)/cellctl image import $(BUILD)/rootfs-debian --name $(IMPORT) --progress=none
endif
$(BUILD)/rootfs-debian/sbin/init:
	rm -rf $(BUILD)/rootfs-debian
	rootfs-tools/mkrootfs-debian $(BUILD)/rootfs-debian

demo: all rootfs
	rootfs-tools/demo $(abspath $(BUILD)/cell) $(abspath $(BUILD)/rootfs)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/cell
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(LIBEXEC_PROGRAMS) $(DESTDIR)$(LIBEXECDIR)/
	install -m 0755 rootfs-tools/mkrootfs-busybox $(DESTDIR)$(PREFIX)/bin/cell-mkrootfs-busybox
	install -m 0755 rootfs-tools/mkrootfs-debian $(DESTDIR)$(PREFIX)/bin/cell-mkrootfs-debian
	install -m 0644 config/*.json $(DESTDIR)$(PREFIX)/share/cell/
	install -m 0644 config/celld.conf config/celld.service $(DESTDIR)$(PREFIX)/share/cell/
	install -d $(DESTDIR)$(PREFIX)/share/doc/cell
	install -m 0644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/cell/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
	  $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0644 $(BUILD)/man/cellctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 $(BUILD)/man/celld.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 0644 $(BUILD)/man/cell.8 $(BUILD)/man/celld.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 $(COMPLETION) $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cell
	ln -sf cell $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cellctl

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/cell $(DESTDIR)$(PREFIX)/bin/celld $(DESTDIR)$(PREFIX)/bin/cellctl $(DESTDIR)$(PREFIX)/bin/cell-mkrootfs-busybox $(DESTDIR)$(PREFIX)/bin/cell-mkrootfs-debian
	rm -rf $(DESTDIR)$(PREFIX)/share/cell $(DESTDIR)$(PREFIX)/share/doc/cell $(DESTDIR)$(LIBEXECDIR)
	rm -f $(DESTDIR)$(PREFIX)/share/man/man1/cellctl.1 $(DESTDIR)$(PREFIX)/share/man/man5/celld.conf.5 \
	  $(DESTDIR)$(PREFIX)/share/man/man8/cell.8 $(DESTDIR)$(PREFIX)/share/man/man8/celld.8 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cell \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cellctl

# Header dependencies, written by -MMD.
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

clean:
	rm -rf build build-asan build-fuzz
