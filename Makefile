# Fenghuo (烽火) - the one build file.
#
#   make            build everything into build/bin/
#   make deps       install the Debian packages and GeoIP data the build, run and tests need
#   make test       deps + build + every test (unit, end-to-end, real corpus)
#   make run        deps + build + run broker, sensor and correlator on the bundled test traffic
#   make asan       build with ASan+UBSan into build/asan/ and run the tests under it
#   make bench      throughput and memory against ndpiReader on the same capture
#   make fuzz       libFuzzer targets (packets, TCP conversations, events, rules), FUZZ_SECONDS each
#   make help       this list;  V=1 shows the commands
#
# Variables: BUILD (output folder, default build), SAN=1 (sanitizers), CC, EXTRA_CFLAGS.

SHELL := /bin/bash
.DEFAULT_GOAL := all

BUILD ?= build
CC ?= cc
PY := /usr/bin/python3
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Debian packages: build, run, tests and benchmark. `make deps` installs what is missing.
# Hyperscan (the YARA prefilter's literal search) is built for amd64 only in Debian 12;
# elsewhere (arm64: Kunpeng, Phytium) its portable fork Vectorscan, the same API and libhs.pc,
# stands in.
DEB_HS := $(if $(filter-out amd64,$(shell dpkg --print-architecture 2>/dev/null || echo amd64)),libvectorscan-dev,libhyperscan-dev)
DEB_BUILD := build-essential pkg-config libpcap-dev libndpi-dev libmaxminddb-dev libyaml-dev \
	nettle-dev libcmocka-dev librdkafka-dev zlib1g-dev libpcre2-dev libsimdjson-dev libsqlite3-dev \
	libyara-dev g++ libcairo2-dev libpango1.0-dev libpq-dev libsodium-dev libmicrohttpd-dev libjansson-dev \
	libzstd-dev libhtp-dev libmagic-dev libgmime-3.0-dev $(DEB_HS)
DEB_RUN := libndpi-bin mmdb-bin libmaxmind-db-writer-perl npm=nodejs,npm fonts-noto-cjk
DEB_TEST := python3 python3-scapy python3-jsonschema python3-pytest python3-yaml tcpreplay \
	tshark time kcat sqlite3 clang-14 libclang-rt-14-dev poppler-utils clang-format postgresql wrk \
	openssl chromium
DEB_PKGS := $(DEB_BUILD) $(DEB_RUN) $(DEB_TEST)

PKG_LIBS := libpcap libndpi libmaxminddb yaml-0.1 nettle rdkafka zlib yara libmicrohttpd jansson htp libmagic libsodium gmime-3.0 libhs
CORR_PKG_LIBS := libpcre2-8 yaml-0.1 rdkafka sqlite3 simdjson nettle libpq libsodium libmicrohttpd libzstd
PKG_CFLAGS = $(shell pkg-config --cflags $(PKG_LIBS) $(CORR_PKG_LIBS) 2>/dev/null)
CORR_LDLIBS = $(shell pkg-config --libs $(CORR_PKG_LIBS) 2>/dev/null)
# The console's PDF reports: cairo + pango (with Debian's fonts-noto-cjk for Chinese).
CONSOLE_PKG_LIBS := pangocairo fontconfig libmicrohttpd jansson
CONSOLE_CFLAGS = $(shell pkg-config --cflags $(CONSOLE_PKG_LIBS) 2>/dev/null)
CONSOLE_LDLIBS = $(shell pkg-config --libs $(CONSOLE_PKG_LIBS) 2>/dev/null)
PKG_LDLIBS = $(shell pkg-config --libs $(PKG_LIBS) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) -D_GNU_SOURCE \
	-DFH_VERSION='"$(VERSION)"' -DFH_GIT_REV='"$(GIT_REV)"' -MMD -MP
CXX ?= g++
ALL_CXXFLAGS := -std=gnu++17 -Wall -Wextra -Wshadow $(CFLAGS) $(EXTRA_CFLAGS) -D_GNU_SOURCE -MMD -MP
LDLIBS := -lm -lpthread

ifeq ($(SAN),1)
ALL_CFLAGS += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
ALL_CXXFLAGS += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin

COMMON_SRC := $(wildcard common/*.c)
SENSOR_SRC := $(filter-out sensor/main.c,$(wildcard sensor/*.c))
SENSOR_OBJ := $(COMMON_SRC:%.c=$(OBJ)/%.o) $(SENSOR_SRC:%.c=$(OBJ)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
CORR_C_SRC := $(filter-out correlator/main.c,$(wildcard correlator/*.c))
CORR_CXX_SRC := $(wildcard correlator/*.cpp)
CORR_OBJ := $(COMMON_SRC:%.c=$(OBJ)/%.o) $(CORR_C_SRC:%.c=$(OBJ)/%.o) $(CORR_CXX_SRC:%.cpp=$(OBJ)/%.o)
CORR_UNIT_SRC := $(wildcard tests/unit/correlator/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/test/%) \
	$(CORR_UNIT_SRC:tests/unit/correlator/%.c=$(BUILD)/test/correlator/%)

GEOIP_DIR := build/geoip
TESTDATA := build/testdata

.PHONY: all deps geoip-data test test-unit test-e2e testdata run asan asan-tests bench help clean format \
	check-format check-libs fuzz fuzz-build fuzz-seeds fuzz-smoke web test-browser check-vectorscan

all: check-libs $(BIN)/fenghuo-sensor $(BIN)/fenghuo-broker $(BIN)/fenghuo-correlator \
	$(BIN)/fenghuo-console

help:
	@sed -n 's/^#   //p' Makefile

check-libs:
	@pkg-config --exists $(PKG_LIBS) $(CORR_PKG_LIBS) $(CONSOLE_PKG_LIBS) || { \
	  echo "missing build libraries: run 'make deps' first (as root or with sudo)"; \
	  exit 1; }

deps:
	$(Q)tools/deps.sh $(DEB_PKGS)
	$(Q)$(MAKE) --no-print-directory geoip-data

# Free GeoIP data from the npm registry (ip-location-db, CC BY 4.0); see tools/geoip/README.md.
geoip-data:
	$(Q)tools/geoip/fetch.sh $(GEOIP_DIR)

$(BIN)/fenghuo-sensor: $(OBJ)/sensor/main.o $(SENSOR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LDLIBS) $(LDLIBS)

BROKER_SRC := $(wildcard broker/*.c)
BROKER_OBJ := $(COMMON_SRC:%.c=$(OBJ)/%.o) $(BROKER_SRC:%.c=$(OBJ)/%.o)

$(BIN)/fenghuo-broker: $(BROKER_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LDLIBS) $(LDLIBS)

$(BIN)/fenghuo-correlator: $(OBJ)/correlator/main.o $(CORR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $^ $(CORR_LDLIBS) $(LDLIBS)

CONSOLE_SRC := $(wildcard console/*.c)

# The console links the correlator's code (the store, the rectification logic).
$(BIN)/fenghuo-console: $(CONSOLE_SRC:%.c=$(OBJ)/%.o) $(CORR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $^ $(CORR_LDLIBS) $(CONSOLE_LDLIBS) $(LDLIBS)

$(OBJ)/console/%.o: console/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) $(CONSOLE_CFLAGS) -c -o $@ $<

# The revision compiled into --version and the API: the files that print it are compiled
# again when it changes (a stamp rewritten only when HEAD moved).
REV_STAMP := $(BUILD)/.git-rev
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(REV_STAMP) 2>/dev/null)" = "$(GIT_REV)" ] || \
	echo "$(GIT_REV)" > $(REV_STAMP); })
$(OBJ)/sensor/main.o $(OBJ)/correlator/main.o $(OBJ)/console/api.o $(OBJ)/console/main.o: \
	$(REV_STAMP)

$(OBJ)/%.o: %.cpp
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(ALL_CXXFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/test/correlator/%: $(OBJ)/tests/unit/correlator/%.o $(CORR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $^ $(CORR_LDLIBS) -lcmocka $(LDLIBS)

$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/test/%: $(OBJ)/tests/unit/%.o $(SENSOR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LDLIBS) -lcmocka $(LDLIBS)

# Test inputs made at test time: crafted pcaps (scapy) and a small GeoIP database.
testdata: $(TESTDATA)/.stamp

$(TESTDATA)/.stamp: tests/traffic/gen_pcaps.py tests/tools/build-test-mmdb.pl
	@mkdir -p $(TESTDATA)/pcap $(TESTDATA)/geoip
	$(Q)$(PY) tests/traffic/gen_pcaps.py $(TESTDATA)/pcap
	$(Q)perl tests/tools/build-test-mmdb.pl $(TESTDATA)/geoip
	@touch $@

# `make test` runs everything twice: a normal build, then ASan+UBSan (the real
# corpus must not crash under the sanitizers either); then each fuzz target for a
# fixed number of runs over its seeds and regression cases.
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory test-unit check-vectorscan test-e2e test-browser
	$(Q)$(MAKE) --no-print-directory asan-tests
	$(Q)$(MAKE) --no-print-directory fuzz-smoke

# The YARA prefilter's unit test against Vectorscan, the library arm64 builds get (DEB_HS).
check-vectorscan:
	$(Q)tools/vectorscan-check.sh

# ---- fuzzing (libFuzzer, clang 14; tests/fuzz/README.md) ----------------------------------
# The targets link the project's objects built by clang with ASan+UBSan and the fuzzer's
# coverage into build/fuzz/. Seeds come from the crafted and shared captures, the rule-pack
# events and the shipped rules (tests/fuzz/seed.py); tests/fuzz/regress/<target>/ holds every
# input that once crashed or hung, run each time.
FUZZ_TARGETS := decode event rules flow dns krb5 yara_prefilter
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SECONDS ?= 300
# runs per target in `make test` (fixed seed: the same inputs every time)
FUZZ_RUNS_decode := 300000
FUZZ_RUNS_event := 30000
FUZZ_RUNS_rules := 10000
FUZZ_RUNS_flow := 20000
FUZZ_RUNS_dns := 200000
FUZZ_RUNS_krb5 := 200000
FUZZ_RUNS_yara_prefilter := 20000
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

ifeq ($(FUZZ),1)
ALL_CFLAGS += -O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN) -DFH_REPO='"$(CURDIR)"'
ALL_CXXFLAGS += -O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_LD := -fsanitize=fuzzer $(FUZZ_SAN)

$(BUILD)/fuzz_decode: $(OBJ)/tests/fuzz/fuzz_decode.o $(SENSOR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(FUZZ_LD) -o $@ $^ $(PKG_LDLIBS) $(LDLIBS)

$(BUILD)/fuzz_flow: $(OBJ)/tests/fuzz/fuzz_flow.o $(SENSOR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(FUZZ_LD) -o $@ $^ $(PKG_LDLIBS) $(LDLIBS)

$(BUILD)/fuzz_krb5: $(OBJ)/tests/fuzz/fuzz_krb5.o $(SENSOR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(FUZZ_LD) -o $@ $^ $(PKG_LDLIBS) $(LDLIBS)

$(BUILD)/fuzz_dns: $(OBJ)/tests/fuzz/fuzz_dns.o $(SENSOR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(FUZZ_LD) -o $@ $^ $(PKG_LDLIBS) $(LDLIBS)

$(BUILD)/fuzz_yara_prefilter: $(OBJ)/tests/fuzz/fuzz_yara_prefilter.o $(SENSOR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(FUZZ_LD) -o $@ $^ $(PKG_LDLIBS) $(LDLIBS)

$(BUILD)/fuzz_event: $(OBJ)/tests/fuzz/fuzz_event.o $(CORR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(FUZZ_LD) -o $@ $^ $(CORR_LDLIBS) $(LDLIBS)

$(BUILD)/fuzz_rules: $(OBJ)/tests/fuzz/fuzz_rules.o $(CORR_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(FUZZ_LD) -o $@ $^ $(CORR_LDLIBS) $(LDLIBS)
endif

fuzz-build:
	$(Q)$(MAKE) --no-print-directory FUZZ=1 BUILD=$(FUZZ_BUILD) CC=clang-14 CXX=clang++-14 \
	  $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

fuzz-seeds: testdata
	$(Q)rm -rf $(FUZZ_BUILD)/corpus && $(PY) tests/fuzz/seed.py $(FUZZ_BUILD)/corpus ../shared/data

# A fixed number of runs per target from a fixed seed (part of `make test`). New inputs
# go to build/fuzz/new/<target>, emptied first, so the corpus read is the same each time.
fuzz-smoke: fuzz-build fuzz-seeds
	@echo "== fuzz targets, fixed runs (build/fuzz)"
	$(Q)for t in $(FUZZ_TARGETS); do \
	  case $$t in decode) runs=$(FUZZ_RUNS_decode);; event) runs=$(FUZZ_RUNS_event);; \
	    flow) runs=$(FUZZ_RUNS_flow);; dns) runs=$(FUZZ_RUNS_dns);; \
	    krb5) runs=$(FUZZ_RUNS_krb5);; yara_prefilter) runs=$(FUZZ_RUNS_yara_prefilter);; \
	    *) runs=$(FUZZ_RUNS_rules);; esac; \
	  rm -rf $(FUZZ_BUILD)/new/$$t && mkdir -p $(FUZZ_BUILD)/new/$$t tests/fuzz/regress/$$t && \
	  $(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_$$t -seed=1 -runs=$$runs -timeout=30 -rss_limit_mb=3072 \
	    -artifact_prefix=$(FUZZ_BUILD)/crash-$$t- \
	    $(FUZZ_BUILD)/new/$$t tests/fuzz/regress/$$t $(FUZZ_BUILD)/corpus/$$t \
	    > $(FUZZ_BUILD)/$$t.log 2>&1 \
	  || { tail -n 60 $(FUZZ_BUILD)/$$t.log; \
	       echo "fuzz_$$t: FAILED (the input is in $(FUZZ_BUILD)/crash-$$t-*)"; exit 1; }; \
	  echo "fuzz_$$t: $$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' $(FUZZ_BUILD)/$$t.log), no crash"; \
	done

# Longer runs (FUZZ_SECONDS each); new inputs accumulate in build/fuzz/corpus/<target>.
fuzz: deps
	$(Q)$(MAKE) --no-print-directory testdata fuzz-build
	$(Q)test -d $(FUZZ_BUILD)/corpus || $(MAKE) --no-print-directory fuzz-seeds
	$(Q)for t in $(FUZZ_TARGETS); do \
	  mkdir -p tests/fuzz/regress/$$t && \
	  $(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
	    -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crash-$$t- \
	    $(FUZZ_BUILD)/corpus/$$t tests/fuzz/regress/$$t > $(FUZZ_BUILD)/$$t.log 2>&1; \
	  rc=$$?; tail -n 25 $(FUZZ_BUILD)/$$t.log; [ $$rc = 0 ] || exit 1; \
	done

# The store's tests run on SQLite and on a PostgreSQL server that tests/tools/pg.sh starts
# for the run (initdb and pg_ctl on a free local port, in a temporary directory).
test-unit: $(UNIT_BIN) testdata
	$(Q)tests/tools/pg.sh run sh -c 'fail=0; for t in $(UNIT_BIN); do \
	  FH_TESTDATA=$(TESTDATA) FH_SHARED=../shared/data $$t || fail=1; \
	done; exit $$fail'

test-e2e: all testdata
	$(Q)FH_BUILD=$(BUILD) FH_TESTDATA=$(TESTDATA) FH_GEOIP=$(GEOIP_DIR) FH_SHARED=../shared/data \
	  $(PY) -m pytest -q -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

# The dashboard's third-party assets (ECharts) and the browser tests' tools, from npm.
web:
	$(Q)tools/web/build.sh

# The dashboard in Debian's chromium (playwright-core); screenshots in build/test-artifacts.
test-browser: all web
	$(Q)FH_BUILD=$(BUILD) node --test tests/browser/

asan: deps
	$(Q)$(MAKE) --no-print-directory asan-tests

asan-tests:
	@echo "== tests under ASan+UBSan (build/asan)"
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 all
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  $(MAKE) --no-print-directory BUILD=build/asan SAN=1 test-unit test-e2e

run: deps
	$(Q)$(MAKE) --no-print-directory all testdata web
	$(Q)tools/run.sh $(BUILD)

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/bench/micro
	$(Q)bench/bench.sh $(BUILD)

# Micro-benchmarks of the spool, the inventory lookup and the event decoder (bench/micro.c).
$(BUILD)/bench/micro: $(OBJ)/bench/micro.o $(CORR_OBJ) $(OBJ)/sensor/spool.o
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $^ $(CORR_LDLIBS) -lz $(LDLIBS)

FORMAT_SRC = $(wildcard common/*.[ch] sensor/*.[ch] broker/*.[ch] correlator/*.[ch] console/*.[ch] \
	correlator/*.cpp tests/unit/*.[ch] tests/unit/correlator/*.[ch] tests/fuzz/*.c)

format:
	$(Q)clang-format -i $(FORMAT_SRC)

check-format:
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build

.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
