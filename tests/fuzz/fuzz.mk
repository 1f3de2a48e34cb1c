# tests/fuzz/fuzz.mk -- make fuzz: libFuzzer over the message pipeline (included by the Makefile).
#
#   make fuzz                    build build/fuzz/fuzz_pipeline and run it for FUZZ_SECONDS (60)
#   make fuzz FUZZ_SECONDS=600   a longer run; what it learns stays in build/fuzz/corpus
#
# The harness is built with clang (libFuzzer needs -fsanitize=fuzzer: Debian's
# libclang-rt-14-dev) over the sources of the no-broker pipeline: the router,
# identity and its libphonenumber unit, the links, the handlers and their JSON writer,
# and config (for config_load, which links librdkafka to check kafka.properties).
# It runs on build/fuzz/corpus, seeded from tests/fuzz/corpus, which it never
# writes; a crash leaves its input in build/fuzz/ and fails the make.
#
# To replay one input, with each value's outcome printed:
#   FUZZ_PIPELINE_TRACE=1 build/fuzz/fuzz_pipeline build/fuzz/crash-<sha1>

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 65536
FUZZ_O       := build/fuzz
FUZZ_BIN     := $(FUZZ_O)/fuzz_pipeline
FUZZ_SRCS    := tests/fuzz/fuzz_pipeline.c src/arena.c src/utf8.c src/json.c src/router.c src/identity.c src/jsonbuf.c \
                src/links.c src/linkstore.c src/clock.c \
                src/config.c src/log.c src/handlers/handlers.c src/handlers/email.c \
                src/handlers/whatsapp.c src/handlers/form.c
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -DCRM_VERSION='"$(VERSION)"' -g -O1 $(WARNINGS) \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer -Isrc -Itests \
                $(shell $(PKG_CONFIG) --cflags libcjson libconfig rdkafka lmdb)
FUZZ_LIBS    := $(shell $(PKG_CONFIG) --libs libcjson libconfig rdkafka lmdb) -lcrypt
# identity.c and config.c call libphonenumber through src/phone.cc, built by clang++ with the
# same sanitizers (and libFuzzer's coverage) and linked with its C++ runtimes.
FUZZ_CXX     ?= clang++
FUZZ_PHONE   := $(FUZZ_O)/phone.o
FUZZ_LIBS    += $(FUZZ_PHONE) -fsanitize-link-c++-runtime $(PHONE_LIBS)

$(FUZZ_PHONE): src/phone.cc src/phone.h tests/fuzz/fuzz.mk
	@mkdir -p $(FUZZ_O)
	$(FUZZ_CXX) -std=c++17 -g -O1 $(CXX_WARNINGS) -fsanitize=fuzzer-no-link,address,undefined \
	    -fno-sanitize-recover=all -fno-omit-frame-pointer -c -o $@ $< $(CXXFLAGS)

$(FUZZ_BIN): $(FUZZ_PHONE) $(FUZZ_SRCS) $(wildcard src/*.h src/handlers/*.h) tests/json_same.h tests/fuzz/fuzz.mk
	@command -v $(FUZZ_CC) >/dev/null 2>&1 && \
	    test -f "$$($(FUZZ_CC) -print-file-name=libclang_rt.fuzzer-$$(uname -m).a)" || \
	    { echo "make fuzz needs $(FUZZ_CC) with libFuzzer: apt-get install clang" \
	        "libclang-rt-14-dev" >&2; exit 1; }
	@mkdir -p $(FUZZ_O)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS) $(FUZZ_LIBS) $(CFLAGS) $(LDFLAGS)

# Seeds are copied in without overwriting, so the corpus grown by earlier runs is kept.
fuzz: $(FUZZ_BIN)
	@mkdir -p $(FUZZ_O)/corpus
	@for f in tests/fuzz/corpus/*; do \
	    test -e $(FUZZ_O)/corpus/$${f##*/} || cp $$f $(FUZZ_O)/corpus/ || exit 1; done
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=30 \
	    -dict=tests/fuzz/json.dict -artifact_prefix=$(FUZZ_O)/ -print_final_stats=1 \
	    $(FUZZ_O)/corpus
