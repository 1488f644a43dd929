# faultd build. Objects go out of tree into $(BUILD); `make V=1` shows
# full commands; `make SANITIZER=address|undefined|thread` builds into its own
# directory so sanitized and plain objects never mix.

.DELETE_ON_ERROR:
# Keep the BPF chain's intermediates (.bpf.o, .skel.h): they are outputs too.
.SECONDARY:
.SUFFIXES:

SANITIZER ?=
ifeq ($(SANITIZER),)
BUILD ?= build
BUILD_ASAN := $(BUILD)/san-address
SANFLAGS :=
else ifeq ($(SANITIZER),address)
BUILD ?= build/san-address
BUILD_ASAN := $(BUILD)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SANITIZER),undefined)
BUILD ?= build/san-undefined
BUILD_ASAN := build/san-address
SANFLAGS := -fsanitize=undefined -fno-sanitize-recover=undefined
else ifeq ($(SANITIZER),thread)
# Runs have threads of their own (daemon/run/run_loop.c): data races.
BUILD ?= build/san-thread
BUILD_ASAN := build/san-address
SANFLAGS := -fsanitize=thread
else
$(error SANITIZER must be empty, 'address', 'undefined' or 'thread', not '$(SANITIZER)')
endif

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

CC      ?= gcc
CLANG   ?= clang
STRIP   ?= llvm-strip
BPFTOOL ?= bpftool
PYTHON  ?= /usr/bin/python3
ARCH    := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -MMD -MP -fno-omit-frame-pointer $(SANFLAGS)
# daemon/ is one folder per pipeline stage (docs/architecture.md); a header
# is named by its file alone, wherever its stage keeps it.
DAEMON_DIRS := lib scenario run topo fault probe inv report ctl
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Idaemon $(addprefix -Idaemon/,$(DAEMON_DIRS)) \
	-I$(BUILD) -I/usr/include/libnl3
LDFLAGS += $(SANFLAGS)
LIBS    := -lbpf -lelf -ldw -lnl-route-3 -lnl-3 -lz -levent -levent_pthreads -ljansson -lcrypto -lm \
	   -lnetfilter_queue -lnfnetlink

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I$(BUILD) -Iinclude -I/usr/include/$(shell uname -m)-linux-gnu

# --- sources --------------------------------------------------------------
BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_SKELS  := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
MAINS      := daemon/faultd.c daemon/faultctl.c
LIB_SRCS   := $(foreach d,$(DAEMON_DIRS),$(wildcard daemon/$(d)/*.c))
LIB_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
LIB        := $(BUILD)/libfaultd.a

# harness/common (hc.c) is linked into every workload; it is not one.
HARNESS    := $(notdir $(patsubst %/,%,$(dir $(wildcard harness/*/*.c))))
HARNESS    := $(sort $(filter-out common,$(HARNESS)))
HARNESS_BINS := $(addprefix $(BUILD)/harness/,$(HARNESS))

PROG_SRCS  := $(wildcard tests/progs/*.c)
PROG_BINS  := $(patsubst tests/progs/%.c,$(BUILD)/tests/progs/%,$(PROG_SRCS))
UNIT_SRCS  := $(wildcard tests/unit/*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/tests/bench/%,$(BENCH_SRCS))

BINS := $(BUILD)/faultd $(BUILD)/faultctl

# --- version (issue 20): git describe, or VERSION outside git -------------
# build/version.c holds the string and is rewritten only when it changes, so
# a new commit relinks the programs instead of recompiling them.
# `make deb` passes FAULTD_VERSION in: its copy of the tree has no .git.
FAULTD_VERSION ?= $(shell sh scripts/version.sh)
LIB_OBJS += $(BUILD)/version.o
LIBS     += -lsystemd

.PHONY: FORCE
$(BUILD)/version.c: FORCE | $(BUILD)
	$(Q)printf 'const char faultd_version[] = "%s";\n' '$(FAULTD_VERSION)' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(BUILD)/version.o: $(BUILD)/version.c
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

.PHONY: all deps ext-schemas daemon harness harness-asan progs tests run test bench soak-smoke test-kernels clean help \
	fuzz fuzz-build fuzzers
all: daemon harness tests

help:
	@echo "make          build faultd, faultctl, harness and test programs into $(BUILD)/"
	@echo "make deps     install missing Debian packages (root)"
	@echo "make ext-schemas  the published schemas the tests use, from npm, into build/npm/"
	@echo "make run      deps + build + run the default scenario set (embedded engine)"
	@echo "make test     deps + build + every test"
	@echo "make bench    benchmarks (ratios measured side by side)"
	@echo "make fuzz     each libFuzzer target for FUZZ_SECONDS (600) from its corpus"
	@echo "make test-kernels  faultctl check and a smoke set on Debian's 5.10, 6.1, 6.12 under qemu"
	@echo "make man      man pages into $(BUILD)/man/ (scdoc)"
	@echo "make install  DESTDIR= PREFIX=/usr/local: programs, workloads, unit, man pages, docs"
	@echo "make uninstall  the same variables: removes what install put there"
	@echo "make deb      a Debian package (dpkg-buildpackage) into $(BUILD)/deb/"
	@echo "options: V=1  SANITIZER=address|undefined|thread  BUILD=dir  TEST_JOBS=2 (make test)"

deps:
	$(Q)sh scripts/deps.sh

# Other projects' schemas (SARIF) the tests validate against: npm packages,
# pinned, not in this repository (tests/ext_schemas.py).
ext-schemas: deps
	$(Q)sh scripts/ext-schemas.sh build/npm

daemon: $(BINS)
harness: $(HARNESS_BINS)
progs: $(PROG_BINS)
tests: progs $(UNIT_BINS) $(BENCH_BINS)

# --- BPF chain: vmlinux.h -> .bpf.o -> .skel.h ------------------------------
$(BUILD)/vmlinux.h: | $(BUILD)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h | $(BUILD)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MMD -MP -c $< -o $@
	$(Q)$(STRIP) -g $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# --- daemon library and programs -----------------------------------------
$(BUILD)/daemon/%.o: daemon/%.c | $(BPF_SKELS) $(BUILD)/daemon
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/faultd $(BUILD)/faultctl: $(BUILD)/%: $(BUILD)/daemon/%.o $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

# --- bundled workloads: harness/NAME/*.c -> build/harness/NAME -------------
HARNESS_LIBS_echo-server := -levent
HARNESS_LIBS_lwip-client := $(shell pkg-config --libs lwip) -lpthread
HARNESS_LIBS_msgq := -lpthread
HARNESS_LIBS_qpair := -luring -lpthread
HARNESS_LIBS_ws-server := -lssl -lcrypto -lpthread
# DPDK's headers trip -Wextra in places; its objects keep every other warning.
HARNESS_LIBS_dpdk-client := $(shell pkg-config --libs libdpdk) $(shell pkg-config --libs lwip) \
	-lssl -lcrypto -lpthread
$(BUILD)/obj/harness/dpdk-client/%.o: CPPFLAGS += $(shell pkg-config --cflags libdpdk) \
	$(shell pkg-config --cflags lwip)
$(BUILD)/obj/harness/lwip-client/%.o: CPPFLAGS += $(shell pkg-config --cflags lwip)

# A function, so that no literal % stands in the rule (make would take it
# for the stem).
harness_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard harness/$(1)/*.c harness/common/*.c))
.SECONDEXPANSION:
$(BUILD)/harness/%: $$(call harness_objs,$$*) | $(BUILD)/harness
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(HARNESS_LIBS_$*) -o $@

# Objects live apart from the binaries: build/harness/NAME is a file.
$(BUILD)/obj/harness/%.o: harness/%.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -Iharness/common $(CFLAGS) -c $< -o $@

# --- test programs and C unit tests ----------------------------------------
# Test programs are workloads with known bugs; build them without sanitizers
# or optimisation so the bug happens exactly as written.
# A program that needs more (an allocator, static linking) says so in
# PROG_LDLIBS_name; PROG_CFLAGS_name adds compiler flags.
PROG_LDLIBS_alloc_jemalloc := -ljemalloc
PROG_LDLIBS_alloc_jemalloc_static := -Wl,-Bstatic -ljemalloc_pic -Wl,-Bdynamic -lm -ldl
PROG_LDLIBS_alloc_tcmalloc := -ltcmalloc_minimal
PROG_LDLIBS_alloc_mimalloc := -lmimalloc
PROG_LDLIBS_alloc_unknown := -static -s
PROG_CFLAGS_inline_free := -O2
$(BUILD)/tests/progs/%: tests/progs/%.c $(wildcard tests/progs/*.h) | $(BUILD)/tests/progs
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -std=gnu11 -O0 -g -Wall -Wextra -Werror -fno-builtin \
		$(PROG_CFLAGS_$*) $< -o $@ $(PROG_LDLIBS_$*) -lpthread

$(BUILD)/tests/unit/%: tests/unit/%.c tests/unit/unit_check.h $(LIB) | $(BUILD)/tests/unit
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -o $@

# Benchmarks are built optimised, like the code they measure.
$(BUILD)/tests/bench/%: tests/bench/%.c $(LIB) | $(BUILD)/tests/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LIBS) -o $@

# --- fuzzing: libFuzzer targets (tests/fuzz/*.c) with ASan+UBSan ------------
# Built with clang into their own tree (build/fuzz): the library is compiled
# with coverage (fuzzer-no-link) and the sanitizers, the targets linked with
# libFuzzer's main. `make fuzz` runs each for FUZZ_SECONDS from its seed
# corpus (tests/fuzz/corpus/NAME); `make test` runs each for 30 s (test_fuzz.py).
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
		-fno-omit-frame-pointer
FUZZ_SRCS    := $(wildcard tests/fuzz/*.c)
FUZZ_NAMES   := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRCS))
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 600

# clang's -Wextra also wants every field of a {NULL} table end named.
FUZZ_WARN    := $(WARN) -Wno-missing-field-initializers

fuzz-build:
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang WARN="$(FUZZ_WARN)" \
		SANFLAGS="$(FUZZ_SAN)" fuzzers

fuzzers: $(FUZZ_BINS)

$(BUILD)/tests/fuzz/%: tests/fuzz/%.c $(LIB) | $(BUILD)/tests/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -std=gnu11 $(WARN) -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined $< $(LIB) $(LIBS) -o $@

fuzz: deps fuzz-build
	$(Q)mkdir -p $(FUZZ_BUILD)/findings
	$(Q)for t in $(FUZZ_NAMES); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t && \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s" && \
		$(FUZZ_BUILD)/tests/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/findings/$$t- \
			$(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t >$(FUZZ_BUILD)/$$t.log 2>&1; \
		rc=$$?; \
		grep -E '^(stat::|#[0-9]+[[:space:]]+DONE|==[0-9]+==ERROR|SUMMARY)' $(FUZZ_BUILD)/$$t.log; \
		[ $$rc -eq 0 ] || { echo "fuzz: $$t failed: $(FUZZ_BUILD)/$$t.log"; exit 1; }; \
	done

$(BUILD) $(BUILD)/bpf $(BUILD)/daemon $(BUILD)/harness $(BUILD)/tests/progs $(BUILD)/tests/unit $(BUILD)/tests/bench $(BUILD)/tests/fuzz:
	$(Q)mkdir -p $@

# --- man pages, install, uninstall, Debian package (issue 20) -------------
# `make install` copies what `make` built; DESTDIR stages it (a package's
# tree), PREFIX says where it will live. faultd finds its bundled workloads
# from its own path (PREFIX/sbin/faultd -> PREFIX/lib/faultd/harness), so
# the staged copy runs as well as the installed one. The unit is written
# with the paths of this PREFIX.
PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
LIBDIR      ?= $(PREFIX)/lib
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
DOCDIR      ?= $(DATADIR)/doc/faultd
UNITDIR     ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
SCDOC       ?= scdoc
INSTALL     ?= install

MAN_SRCS  := $(wildcard docs/man/*.scd)
MAN_PAGES := $(patsubst docs/man/%.scd,$(BUILD)/man/%,$(MAN_SRCS))
DOCS      := README.md $(wildcard docs/*.md)
SCHEMAS   := $(wildcard docs/*.schema.json)
SCENARIOS := $(wildcard scenarios/*.json)
# The ASan+UBSan workloads ("asan": true) go along when they were built.
ASAN_HARNESS_BINS = $(wildcard $(BUILD_ASAN)/harness/*)

.PHONY: man install uninstall deb
man: $(MAN_PAGES)

$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	$(call msg,SCDOC,$@)
	$(Q)$(SCDOC) < $< > $@

install: daemon harness man
	$(Q)$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR)/faultd/harness \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)/docs \
		$(DESTDIR)$(DATADIR)/faultd/schemas $(DESTDIR)$(DATADIR)/faultd/scenarios \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(BASHCOMPDIR)
	$(Q)$(INSTALL) -m 755 $(BINS) $(DESTDIR)$(SBINDIR)/
	$(Q)$(INSTALL) -m 755 $(HARNESS_BINS) $(DESTDIR)$(LIBDIR)/faultd/harness/
	$(Q)if [ -n "$(ASAN_HARNESS_BINS)" ]; then \
		$(INSTALL) -d $(DESTDIR)$(LIBDIR)/faultd/san-address/harness && \
		$(INSTALL) -m 755 $(ASAN_HARNESS_BINS) $(DESTDIR)$(LIBDIR)/faultd/san-address/harness/; \
	fi
	$(Q)$(INSTALL) -m 644 $(filter %.5,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man5/
	$(Q)$(INSTALL) -m 644 $(filter %.8,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man8/
	$(Q)$(INSTALL) -m 644 README.md $(DESTDIR)$(DOCDIR)/
	$(Q)$(INSTALL) -m 644 $(filter docs/%,$(DOCS)) $(DESTDIR)$(DOCDIR)/docs/
	$(Q)$(INSTALL) -m 644 $(SCHEMAS) $(DESTDIR)$(DATADIR)/faultd/schemas/
	$(Q)$(INSTALL) -m 644 $(SCENARIOS) $(DESTDIR)$(DATADIR)/faultd/scenarios/
	$(Q)$(INSTALL) -m 644 scripts/faultctl.bash-completion $(DESTDIR)$(BASHCOMPDIR)/faultctl
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' \
		-e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@UNITDIR@|$(UNITDIR)|g' \
		scripts/faultd.service.in > $(DESTDIR)$(UNITDIR)/faultd.service
	$(Q)chmod 644 $(DESTDIR)$(UNITDIR)/faultd.service
	@echo "  INSTALL  $(DESTDIR)$(PREFIX) (unit: $(DESTDIR)$(UNITDIR)/faultd.service)"

# Removes what install put there, by name, and the directories that were
# faultd's alone; shared ones (bin, man8) stay.
uninstall:
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/faultd $(DESTDIR)$(SBINDIR)/faultctl \
		$(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(filter %.5,$(MAN_PAGES)))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(filter %.8,$(MAN_PAGES)))) \
		$(DESTDIR)$(UNITDIR)/faultd.service $(DESTDIR)$(BASHCOMPDIR)/faultctl
	$(Q)rm -rf $(DESTDIR)$(LIBDIR)/faultd $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR)/faultd
	@echo "  UNINSTALL $(DESTDIR)$(PREFIX)"

# A binary package built by dpkg-buildpackage from debian/, in a copy of
# the tree (the files git knows, committed or not) under build/deb, so the
# package is built from clean as a distribution would; the .deb lands in
# build/deb/. The version inside it is this tree's.
DEB_DIR := $(BUILD)/deb
deb:
	$(Q)rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/faultd
	$(Q)if git rev-parse --git-dir >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard | \
		  tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C $(DEB_DIR)/faultd; \
	else \
		tar --exclude=./build --exclude=./build-kt -cf - . | tar -xf - -C $(DEB_DIR)/faultd; \
	fi
	$(call msg,DEB,$(DEB_DIR))
	$(Q)cd $(DEB_DIR)/faultd && FAULTD_VERSION='$(FAULTD_VERSION)' \
		dpkg-buildpackage -b -us -uc $(if $(filter 1,$(V)),,>../build.log 2>&1) || \
		{ echo "deb: dpkg-buildpackage failed; see $(DEB_DIR)/build.log" >&2; \
		  tail -30 ../build.log >&2; exit 1; }
	$(Q)rm -rf $(DEB_DIR)/faultd
	@ls $(DEB_DIR)/*.deb

# --- the two commands of the README -----------------------------------------
# Scenarios with "asan": true run the bundled workloads' ASan+UBSan build.
harness-asan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=address BUILD=$(BUILD_ASAN) harness

# What this host can do comes first: a missing feature explains the
# INCONCLUSIVE verdicts it causes.
run: deps
	$(Q)$(MAKE) --no-print-directory all harness-asan
	$(Q)$(BUILD)/faultctl check || true
	$(Q)$(BUILD)/faultctl run --local --expect scenarios/

# Two passes: most tests TEST_JOBS at a time (pytest-xdist; 0 for one at a
# time), then those conftest.ALONE names, each with the machine to itself.
TEST_JOBS ?= 2
test: deps ext-schemas
	$(Q)$(MAKE) --no-print-directory all harness-asan fuzz-build
ifneq ($(SANITIZER),)
	$(Q)$(MAKE) --no-print-directory SANITIZER= BUILD=$(BUILD:/san-$(SANITIZER)=) harness progs
endif
	$(Q)status=0; \
	FAULTD_BUILD=$(BUILD) $(PYTHON) -m pytest -q -n $(TEST_JOBS) --dist loadfile -m "not alone" \
		tests/ || status=$$?; \
	FAULTD_BUILD=$(BUILD) $(PYTHON) -m pytest -q -m alone tests/ || status=$$?; \
	exit $$status

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)FAULTD_BUILD=$(BUILD) sh tests/bench/run.sh

# Not in CI: 30 minutes of the clean scenarios through the daemon, faultd's
# RSS sampled each minute (SOAK_MINUTES to change).
soak-smoke: deps
	$(Q)$(MAKE) --no-print-directory all harness-asan
	$(Q)FAULTD_BUILD=$(BUILD) sh scripts/soak-smoke.sh

# Not in CI (about 4 minutes a kernel under TCG): Debian's own kernels
# (bullseye 5.10, bookworm 6.1, trixie 6.12) booted under qemu with this
# machine's files, `faultctl check` and the smoke set inside each, and a
# matrix. KERNELS="bookworm trixie" to choose; 5.10 may lack features (its
# INCONCLUSIVEs are right) but no verdict there may be wrong.
test-kernels: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)KERNELS_ALLOW_FAIL="$${KERNELS_ALLOW_FAIL-}" FAULTD_BUILD=$(BUILD) BOOT_ENV="FAULTD_BUILD" \
		bash scripts/test-kernels.sh

clean:
	$(Q)rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
