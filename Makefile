# faultd build. Objects go out of tree into $(BUILD); `make V=1` shows
# full commands; `make SANITIZER=address|undefined` builds into its own
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
else
$(error SANITIZER must be empty, 'address' or 'undefined', not '$(SANITIZER)')
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
LIBS    := -lbpf -lelf -ldw -lnl-route-3 -lnl-3 -lz -levent -ljansson -lcrypto \
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

.PHONY: all deps daemon harness harness-asan tests run test bench soak-smoke test-kernels clean help \
	fuzz fuzz-build fuzzers
all: daemon harness tests

help:
	@echo "make          build faultd, faultctl, harness and test programs into $(BUILD)/"
	@echo "make deps     install missing Debian packages (root)"
	@echo "make run      deps + build + run the default scenario set (embedded engine)"
	@echo "make test     deps + build + every test"
	@echo "make bench    benchmarks (ratios measured side by side)"
	@echo "make fuzz     each libFuzzer target for FUZZ_SECONDS (600) from its corpus"
	@echo "make test-kernels  faultctl check and a smoke set on Debian's 5.10, 6.1, 6.12 under qemu"
	@echo "options: V=1  SANITIZER=address|undefined  BUILD=dir"

deps:
	$(Q)sh scripts/deps.sh

daemon: $(BINS)
harness: $(HARNESS_BINS)
tests: $(PROG_BINS) $(UNIT_BINS) $(BENCH_BINS)

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
$(BUILD)/tests/progs/%: tests/progs/%.c | $(BUILD)/tests/progs
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -std=gnu11 -O0 -g -Wall -Wextra -Werror -fno-builtin $< -o $@ -lpthread

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

test: deps
	$(Q)$(MAKE) --no-print-directory all harness-asan fuzz-build
ifneq ($(SANITIZER),)
	$(Q)$(MAKE) --no-print-directory SANITIZER= BUILD=$(BUILD:/san-$(SANITIZER)=) harness
endif
	$(Q)FAULTD_BUILD=$(BUILD) $(PYTHON) -m pytest -q tests/

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
