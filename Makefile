# The two commands of the README: `make run` and `make test`.
BUILD      ?= build
BUILD_ASAN ?= build-asan
DATA_DIR   ?= data
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps deps-test build build-asan run test clean bench format

all: build

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh --test

build: deps
	cmake -S . -B $(BUILD) -DPROV_WERROR=$(if $(CI),ON,OFF) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps-test
	cmake -S . -B $(BUILD_ASAN) -DPROV_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
	    -DPROV_WERROR=$(if $(CI),ON,OFF) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)

# Initialise a data directory once (never over an existing one), then serve in the foreground.
run: build
	@[ -f $(DATA_DIR)/provd.json ] || $(BUILD)/bin/provd init --data-dir $(DATA_DIR)
	$(BUILD)/bin/provd serve --data-dir $(DATA_DIR)

# The whole suite: the sanitizer build first, then the regular build, whose CTest summary
# closes the output.
test: deps-test build-asan build
	cd $(BUILD_ASAN) && ctest --output-on-failure -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)

# Installs provd (sbin), provctl and prov-agent (bin) with their man pages, and libprov
# (libprov.so, libprov.a, include/prov, prov.pc) under PREFIX; DESTDIR is honoured for packaging.
PREFIX ?= /usr/local

.PHONY: install
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# Benchmarks (not part of `make test`): provd's registration and handshake rates and CPU per
# registration beside the machine's physics, with the provbench load generator (BENCHMARKS.md).
bench: build
	@scripts/deps.sh --bench
	bench/run.sh $(BUILD)

# Fuzzing (not part of `make test`, which only replays the seed corpora): builds the libFuzzer
# harnesses with clang and runs each for FUZZ_SECONDS on a copy of its corpus in $(BUILD_FUZZ),
# so new inputs and crash files stay out of the source tree.
BUILD_FUZZ   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZERS      ?= sas base64 urlenc regid enrollment config csr dps_answer state est_basic \
                custom_alloc template endpoint

.PHONY: fuzz
# deps-test too: configuring the tree needs cmocka even though only the fuzzers are built.
fuzz: deps-test
	@scripts/deps.sh --fuzz
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzzers
	@for f in $(FUZZERS); do \
	    mkdir -p $(BUILD_FUZZ)/corpus/$$f $(BUILD_FUZZ)/artifacts/$$f || exit 1; \
	    cp fuzz/corpus/$$f/* $(BUILD_FUZZ)/corpus/$$f/ || exit 1; \
	    dict=; if [ -f fuzz/$$f.dict ]; then dict=-dict=fuzz/$$f.dict; fi; \
	    echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
	    $(BUILD_FUZZ)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict \
	        -artifact_prefix=$(BUILD_FUZZ)/artifacts/$$f/ $(BUILD_FUZZ)/corpus/$$f || exit 1; \
	done
