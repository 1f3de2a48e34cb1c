# crm-consumerd -- build, test, install.
#
#   make                 build ./crm-consumerd (make deps first installs what it needs)
#   make demo            the daemon on an embedded broker with sample traffic (installs
#                        missing Debian packages first, as make check does)
#   make check           unit and integration tests
#   make check-slow      resilience scenarios: SIGKILL, outages, fault injection, valgrind
#   make fuzz            libFuzzer over the message pipeline (FUZZ_SECONDS=60)
#   make bench           throughput against kcat's, latency, peak RSS, the identity store
#   make bench-identity  the identity store alone at 1,000,000 links
#   make SANITIZE=address,undefined check
#   make WERROR=1        warnings are errors (CI)
#   make install         PREFIX=/usr/local DESTDIR=
#   make deb             the Debian package into build/deb/, checked by lintian
#   make deps            install the Debian build and test packages that are missing
#   make style-check     clang-format, as CI runs it

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
DESTDIR    ?=

VERSION    := 0.1.0
CC         ?= cc
PKG_CONFIG ?= pkg-config
CLANG_FORMAT ?= clang-format

# Debian 12 packages: to build, to test, and for style-check.
DEB_BUILD := gcc make libc6-dev pkg-config librdkafka-dev libcjson-dev libconfig-dev \
             libmicrohttpd-dev libsystemd-dev check liblmdb-dev
DEB_TEST  := kcat python3-kafka python3-confluent-kafka python3-yaml prometheus mandoc clang-format \
             curl openssl valgrind
# make fuzz: clang and libFuzzer's runtime (only recommended by clang, so named here).
DEB_FUZZ  := clang libclang-rt-14-dev
# Phone numbers: libphonenumber, a C++ library, wrapped by src/phone.cc.
DEB_BUILD += g++ libphonenumber-dev
# make deb, and check-slow's test of the package under a booted systemd.
DEB_PACKAGE := build-essential dpkg-dev debhelper lintian debootstrap systemd-container
DEB_PKGS  := $(DEB_BUILD) $(DEB_TEST) $(DEB_FUZZ) $(DEB_PACKAGE)

PKGS      := rdkafka libcjson libconfig libmicrohttpd libsystemd lmdb
HAVE_DEPS := $(shell command -v $(CC) >/dev/null 2>&1 && \
                     command -v $(PKG_CONFIG) >/dev/null 2>&1 && \
                     $(PKG_CONFIG) --exists $(PKGS) check && echo yes)
# libphonenumber ships no pkg-config file: its header and a C++ compiler stand for it.
ifeq ($(HAVE_DEPS),yes)
HAVE_DEPS := $(shell command -v $(CXX) >/dev/null 2>&1 && \
                     test -f /usr/include/phonenumbers/phonenumberutil.h && echo yes)
endif

WARNINGS  := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wpointer-arith -Wcast-qual -Wwrite-strings -Wundef \
             -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARNINGS  += -Werror
endif
# The same warnings for the C++ unit, less those C++ has no use for, and C++'s own.
CXX_WARNINGS := $(filter-out -Wstrict-prototypes -Wmissing-prototypes,$(WARNINGS)) \
                -Wmissing-declarations -Wold-style-cast -Wnon-virtual-dtor

ifneq ($(SANITIZE),)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
O         := build/san
else
SAN_FLAGS :=
O         := build/default
endif

PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS   = $(shell $(PKG_CONFIG) --libs $(PKGS))
CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags check)
CHECK_LIBS   = $(shell $(PKG_CONFIG) --libs check)

ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DCRM_VERSION='"$(VERSION)"' -g -O2 $(WARNINGS) \
             $(SAN_FLAGS) -MMD -MP $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN_FLAGS) $(LDFLAGS)
ALL_CXXFLAGS = -std=c++17 -g -O2 $(CXX_WARNINGS) $(SAN_FLAGS) -MMD -MP $(CXXFLAGS)
# Linked only where used (the mock cluster does not), with libstdc++ as the C++ unit needs it.
PHONE_LIBS := -Wl,--push-state,--as-needed -lphonenumber -lprotobuf -lstdc++ -Wl,--pop-state
PKG_LIBS  += $(PHONE_LIBS)

LIB_SRCS := src/log.c src/config.c src/arena.c src/utf8.c src/json.c src/router.c src/consumer.c src/identity.c src/jsonbuf.c \
            src/publisher.c src/changelog.c src/linkstore.c src/links.c src/kafka.c \
            src/clock.c src/window.c src/deadletter.c src/offsets.c src/fetchwatch.c src/flow.c \
            src/partitions.c src/procstat.c src/trace.c \
            src/metrics.c src/http.c \
            src/telemetry.c src/notify.c src/demo.c src/demoview.c src/samples.c src/breaker.c \
            src/handlers/handlers.c src/handlers/email.c src/handlers/whatsapp.c \
            src/handlers/form.c \
            src/dlq.c src/replay.c
MAIN_SRCS := src/main.c
TEST_NAMES := check_breaker check_config check_json check_router check_identity check_handlers check_metrics check_http \
              check_telemetry check_publisher check_demo check_consumer check_changelog \
              check_linkstore check_links check_window check_flow check_trace check_deadletter \
              check_replay
# Slow scenarios (make check-slow): every tests/slow/check_*.c is a Check binary, every
# tests/slow/check_*.sh a shell test.
SLOW_NAMES := $(patsubst tests/%.c,%,$(sort $(wildcard tests/slow/check_*.c)))
SLOW_SH    := $(sort $(wildcard tests/slow/check_*.sh))

LIB_OBJS  := $(LIB_SRCS:%.c=$(O)/%.o)
LIB_OBJS  += $(O)/src/phone.o
MAIN_OBJS := $(MAIN_SRCS:%.c=$(O)/%.o)
TEST_BINS := $(TEST_NAMES:%=$(O)/tests/%)
SLOW_BINS := $(SLOW_NAMES:%=$(O)/tests/%)
BIN       := $(O)/crm-consumerd

# Plain `make` builds; it must never start the demo or the benchmark.
.DEFAULT_GOAL := all

.PHONY: all check check-slow fuzz demo bench bench-identity deb install uninstall clean deps deps-list \
        style-check style FORCE

ifeq ($(HAVE_DEPS),yes)

# The daemon on an embedded broker with sample traffic: Ctrl-C stops it.
demo: crm-consumerd
	./crm-consumerd --demo -c conf/crm-consumer.conf

# kcat's raw consume rate against the daemon's, full and --dry-run, on a preloaded mock cluster.
bench: crm-consumerd build/default/tests/mock_cluster build/default/bench/replay \
       build/default/bench/links
	bench/run
	bench/identity

# The identity store alone: rebuild, restart, lookups, size and memory at 1,000,000 links.
bench-identity: crm-consumerd build/default/tests/mock_cluster build/default/bench/links
	bench/identity

# ./crm-consumerd (what `make install` installs) is always the build without sanitizers;
# a SANITIZE build stays in build/san/.
ifeq ($(SANITIZE),)
all: crm-consumerd

crm-consumerd: $(BIN)
	cp $(BIN) $@
else
all: $(BIN)

crm-consumerd:
	$(MAKE) SANITIZE= crm-consumerd
endif

$(BIN): $(MAIN_OBJS) $(LIB_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcrypt -lm

$(O)/%.o: %.c $(O)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/%.o: %.cc $(O)/cflags $(O)/cxxflags
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -c -o $@ $<

$(O)/tests/mock_cluster: tests/mock_cluster.c $(O)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS) $(PKG_LIBS)

$(O)/tests/%: tests/%.c $(LIB_OBJS) $(O)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Isrc -o $@ $< $(LIB_OBJS) $(ALL_LDFLAGS) \
	    $(PKG_LIBS) -lcrypt $(CHECK_LIBS)

# Rebuild everything when the flags change (e.g. SANITIZE on or off).
$(O)/cflags: FORCE
	@mkdir -p $(O)
	@echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)' | cmp -s - $@ || \
	    echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)' > $@

$(O)/cxxflags: FORCE
	@mkdir -p $(O)
	@echo '$(CXX) $(ALL_CXXFLAGS)' | cmp -s - $@ || echo '$(CXX) $(ALL_CXXFLAGS)' > $@

check: $(BIN) $(TEST_BINS) $(O)/tests/mock_cluster $(O)/tests/store_dump
	CRM_BIN=$(BIN) MOCK_BIN=$(O)/tests/mock_cluster DUMP_BIN=$(O)/tests/store_dump \
	    tests/run-tests $(TEST_BINS) tests/check_cli.sh tests/check_daemon.sh \
	    tests/check_e2e.sh tests/check_identities.sh tests/check_trace.sh tests/check_observe.sh \
	    tests/check_alerts.sh tests/check_unit.sh tests/check_install.sh tests/check_replay.sh

check-slow: $(BIN) $(SLOW_BINS) $(O)/tests/mock_cluster $(O)/tests/slow/stall.so $(O)/bench/replay \
            $(O)/tests/store_dump
	CRM_BIN=$(BIN) MOCK_BIN=$(O)/tests/mock_cluster STALL_LIB=$(O)/tests/slow/stall.so \
	    REPLAY_BIN=$(O)/bench/replay DUMP_BIN=$(O)/tests/store_dump \
	    tests/run-tests $(SLOW_BINS) $(SLOW_SH)

# Prints an identity store, for the tests that compare it with the identities topic.
$(O)/tests/store_dump: tests/store_dump.c $(LIB_OBJS) $(O)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $< $(LIB_OBJS) $(ALL_LDFLAGS) $(PKG_LIBS) -lcrypt -lm

# The message pipeline alone, for instruction counts (valgrind --tool=callgrind) and a digest
# of every output: build/default/bench/pipeline VALUES_FILE [COUNT] (see bench/pipeline.c).
$(O)/bench/pipeline: bench/pipeline.c $(LIB_OBJS) $(O)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $< $(LIB_OBJS) $(ALL_LDFLAGS) $(PKG_LIBS) -lcrypt -lm

# The identity store's bench helper: load a changelog of links, time lookups.
$(O)/bench/links: bench/links.c $(LIB_OBJS) $(O)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $< $(LIB_OBJS) $(ALL_LDFLAGS) $(PKG_LIBS) -lcrypt -lm

# The daemon's publisher alone, sending a full run's recorded outputs (see bench/replay.c).
$(O)/bench/replay: bench/replay.c $(LIB_OBJS) $(O)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $< $(LIB_OBJS) $(ALL_LDFLAGS) $(PKG_LIBS) -lcrypt -lm

# Preloaded into the daemon by the stall scenario: a handler that hangs.
$(O)/tests/slow/stall.so: tests/slow/stall.c $(O)/cflags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $<

-include tests/fuzz/fuzz.mk
-include $(LIB_OBJS:.o=.d) $(MAIN_OBJS:.o=.d)

else ifeq ($(DEPS_TRIED),1)

all check check-slow fuzz demo bench bench-identity:
	@echo "still missing after make deps: $(CC), $(PKG_CONFIG) or the pkg-config modules" \
	    "$(PKGS) check" >&2; exit 1

else

# Plain `make` only builds: without the compiler or libraries it says what to do.
all:
	@echo "missing: $(CC), $(PKG_CONFIG) or the pkg-config modules $(PKGS) check;" \
	    "run make deps (as root, or with sudo) to install them" >&2; exit 1

# The quick start's targets install what is missing, then run with a fresh make
# (pkg-config flags are read when the Makefile is parsed).
check check-slow fuzz demo bench bench-identity: deps
	$(MAKE) DEPS_TRIED=1 $@

endif

deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || \
	    echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	echo "deps: installing:" $$missing; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	else echo "deps: not root and no sudo; as root run: apt-get install" $$missing >&2; \
	    exit 1; fi; \
	$$sudo apt-get update && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y --no-install-recommends $$missing

deps-list:
	@echo $(DEB_PKGS)

install: crm-consumerd
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 crm-consumerd $(DESTDIR)$(SBINDIR)/crm-consumerd
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/crm-consumer.conf ]; then \
	    echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/crm-consumer.conf"; \
	else install -m 0644 conf/crm-consumer.conf $(DESTDIR)$(SYSCONFDIR)/crm-consumer.conf; fi
	sed 's|@SBINDIR@|$(SBINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    systemd/crm-consumerd.service > $(DESTDIR)$(UNITDIR)/crm-consumerd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/crm-consumerd.service
	install -m 0644 man/crm-consumerd.8 $(DESTDIR)$(MANDIR)/man8/crm-consumerd.8
	install -m 0644 man/crm-consumer.conf.5 $(DESTDIR)$(MANDIR)/man5/crm-consumer.conf.5

# The configuration file is the operator's: uninstall leaves it in place.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/crm-consumerd $(DESTDIR)$(UNITDIR)/crm-consumerd.service \
	    $(DESTDIR)$(MANDIR)/man8/crm-consumerd.8 $(DESTDIR)$(MANDIR)/man5/crm-consumer.conf.5

# The Debian package (debian/), into build/deb/ with its debug symbols, .buildinfo and
# .changes. dpkg-buildpackage writes beside the tree it builds, so it builds a copy in
# build/deb/src and the checkout's parent stays clean. lintian must find no error and no
# warning; debian/crm-consumerd.lintian-overrides says why a tag is overridden.
DEB_DIR := build/deb

# make deb refuses to build while a package of DEB_BUILD is missing from Build-Depends (the
# compiler and libc come with build-essential; check serves only the tests, which the package
# build does not run): a library added to one list must be added to the other.
DEB_BUILD_DEPENDS := $(filter-out gcc g++ make libc6-dev check,$(DEB_BUILD))

deb:
	@bd=$$(sed -n '/^Build-Depends:/{s/^Build-Depends://;p;:more;n;/^[[:space:]]/{p;b more;};}' \
	    debian/control | tr ',' '\n' | sed 's/[[(<].*//; s/[[:space:]]//g'); \
	for p in $(DEB_BUILD_DEPENDS); do echo "$$bd" | grep -qx "$$p" || missing="$$missing $$p"; \
	done; [ -z "$${missing:-}" ] || \
	    { echo "deb: add to Build-Depends in debian/control:$$missing" >&2; exit 1; }
	@command -v dpkg-checkbuilddeps >/dev/null 2>&1 && dpkg-checkbuilddeps 2>/dev/null && \
	    command -v lintian >/dev/null 2>&1 || $(MAKE) deps
	@v=$$(dpkg-parsechangelog -S Version); [ "$$v" = "$(VERSION)" ] || \
	    { echo "deb: debian/changelog is at $$v, the Makefile at $(VERSION)" >&2; exit 1; }
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/src
	tar -cf - --exclude=./.git --exclude=./build --exclude=./crm-consumerd . | \
	    tar -xf - -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -us -uc -b
	rm -rf $(DEB_DIR)/src
	@# lintian 2.116 leaves temporary files behind: keep them in build/deb/.
	mkdir -p $(DEB_DIR)/tmp
	TMPDIR=$(abspath $(DEB_DIR))/tmp lintian --fail-on error,warning --display-info \
	    $(DEB_DIR)/crm-consumerd_$(VERSION)_*.changes; \
	    status=$$?; rm -rf $(DEB_DIR)/tmp; exit $$status

STYLE_FILES = $(wildcard src/*.c src/*.h src/handlers/*.c src/handlers/*.h tests/*.c tests/*.h tests/slow/*.c \
                         tests/fuzz/*.c bench/*.c)
STYLE_FILES += $(wildcard src/*.cc)

style-check:
	$(CLANG_FORMAT) --dry-run --Werror $(STYLE_FILES)

style:
	$(CLANG_FORMAT) -i $(STYLE_FILES)

clean:
	rm -rf build crm-consumerd
