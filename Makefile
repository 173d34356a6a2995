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

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# Benchmarks (not part of `make test`): keep-alive registrations/s and CPU per registration.
bench: build
	@command -v wrk >/dev/null || scripts/deps.sh --bench
	bench/wrk-register.sh $(BUILD)
