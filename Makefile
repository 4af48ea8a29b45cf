# chartkeep - build, test, demo.
#
#   make            build/chartkeep
#   make deps       install the missing Debian packages (idempotent)
#   make check      deps + build + every test suite, plus a sanitizer build
#   make demo       deps + build, load demo.db with synthetic data, serve it
#   make SANITIZE=address,undefined   an instrumented build in build-asan/
#   make fuzz       libFuzzer targets (clang) in build-fuzz/

PKGS      := sqlite3 libmicrohttpd json-c libsodium icu-uc
CC        ?= cc
OPT       ?= -O2
SANITIZE  ?=
V         ?=
Q         := $(if $(V),,@)

ifeq ($(SANITIZE),)
BUILD     ?= build
SANFLAGS  :=
else
BUILD     ?= build-asan
SANFLAGS  := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN      := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
             -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS    ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -pthread \
              -Isrc -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP
LDLIBS    := $(PKG_LIBS) -pthread -lm

LIB_SRC   := $(filter-out src/cli/main.c,$(wildcard src/*/*.c))
CLI_MAIN  := src/cli/main.c
GEN_SRC   := $(BUILD)/gen/fhir_model.c $(BUILD)/gen/embedded.c $(BUILD)/gen/x12_maps.c
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(GEN_SRC:%.c=%.o)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
EMBED     := $(sort $(wildcard src/store/*.sql) $(wildcard web/*.html web/*.css web/*.js)) \
             data/fhir/Bundle-searchParams.json data/fhir/CompartmentDefinition-patient.json \
             data/mpi/nicknames.csv

.PHONY: all deps check demo clean fuzz unit bench-deps
all: $(BUILD)/chartkeep

deps:
	@tools/deps.sh

$(BUILD)/chartkeep: $(BUILD)/src/cli/main.o $(BUILD)/libchartkeep.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libchartkeep.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/%.o: %.c | $(BUILD)/gen/fhir_model.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Build-time generators run on the build machine without sanitizers.
TOOL_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Isrc $(PKG_CFLAGS)
$(BUILD)/tools/%: tools/%.c
	@mkdir -p $(dir $@)
	@echo "  TOOL    $<"
	$(Q)$(CC) $(TOOL_CFLAGS) -o $@ $< $(PKG_LIBS)

$(BUILD)/gen/fhir_model.c $(BUILD)/gen/fhir_model.h: $(BUILD)/tools/gen_fhir_model data/fhir/Bundle-types.json data/fhir/Bundle-resources.json
	@mkdir -p $(BUILD)/gen
	@echo "  GEN     fhir_model.c"
	$(Q)$(BUILD)/tools/gen_fhir_model data/fhir $(BUILD)/gen/fhir_model.c $(BUILD)/gen/fhir_model.h

# X12 implementation-guide tables; libxml2 is linked into the generator only.
X12_MAPS := data/x12/maps.txt $(wildcard data/x12/*.xml)
$(BUILD)/tools/gen_x12: tools/gen_x12.c
	@mkdir -p $(dir $@)
	@echo "  TOOL    $<"
	$(Q)$(CC) $(TOOL_CFLAGS) $(shell pkg-config --cflags libxml-2.0) -o $@ $< \
		$(shell pkg-config --libs libxml-2.0)

$(BUILD)/gen/x12_maps.c: $(BUILD)/tools/gen_x12 $(X12_MAPS)
	@mkdir -p $(BUILD)/gen
	@echo "  GEN     x12_maps.c"
	$(Q)$(BUILD)/tools/gen_x12 data/x12 $@

$(BUILD)/gen/embedded.c: $(BUILD)/tools/embed $(EMBED) Makefile
	@mkdir -p $(BUILD)/gen
	@echo "  GEN     embedded.c"
	$(Q)$(BUILD)/tools/embed $@ $(EMBED)

# Unit tests (cmocka).
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libchartkeep.a
	@mkdir -p $(dir $@)
	@echo "  TEST    $<"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libchartkeep.a $(LDLIBS) $(shell pkg-config --libs cmocka)

unit: $(UNIT_BIN)

check: deps
	@tools/check.sh

demo: deps all
	$(BUILD)/chartkeep demo --db demo.db

# libFuzzer targets: clang only.
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang \
		SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined" OPT=-O1 \
		build-fuzz/libchartkeep.a
	@mkdir -p build-fuzz/fuzz
	@for f in $(FUZZ_SRC); do \
		n=$$(basename $$f .c); \
		echo "  FUZZ  $$n"; \
		clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined \
			-Isrc -Ibuild-fuzz/gen $(PKG_CFLAGS) -o build-fuzz/fuzz/$$n $$f \
			build-fuzz/libchartkeep.a $(LDLIBS) || exit 1; \
	done

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(BUILD)/src/cli/main.d
