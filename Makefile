# opsbot — the two commands a new machine needs:
#   make demo   installs what is missing, builds, starts the console demo
#   make test   installs what is missing, builds, runs every test
BUILD      ?= build
BUILD_ASAN ?= build-asan
CONFIG     ?= deploy/demo/opsbot.yaml

# Debian packages needed to build and test (pkg-config name : package).
DEB_PKGS = gcc pkg-config meson ninja-build libuv1-dev libcjson-dev libpcre2-dev \
           libsodium-dev libyaml-dev libsqlite3-dev libcmocka-dev sqlite3 clang-format \
           util-linux libwebsockets-dev libssl-dev openssl prometheus \
           clang libclang-rt-14-dev

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build demo test test-fast check-format format clean bench

all: build

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=true

# GCC's -fsanitize=undefined leaves out float-cast-overflow (clang's, used
# by the fuzz build, has it): a NaN or 1e300 from YAML or JSON turned into an
# integer is undefined behaviour, so the suite asks for it by name.
$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
	  -Dc_args=-fsanitize=float-cast-overflow -Dc_link_args=-fsanitize=float-cast-overflow

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	@echo "opsbot demo — you are console:dev; try: restart checkout in prod, /as oncall, /approve"
	./$(BUILD)/opsbot console -c $(CONFIG)

# The whole suite: the normal build, then the same tests under ASan+UBSan
# (with LeakSanitizer), then a short libFuzzer run of every fuzz target
# (clang, build-fuzz; tests/fuzz/smoke.sh), then the format check. Ends
# with "N passed, N failed".
test: deps $(BUILD)/build.ninja $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD)
	ninja -C $(BUILD_ASAN)
	sh tests/run-suite.sh --fuzz $(BUILD) $(BUILD_ASAN)

# Normal build only (quicker while developing).
test-fast: build
	sh tests/run-suite.sh $(BUILD)

check-format:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# The load benchmark (tests/bench/, issue 8; never part of `make test`): an
# optimised build of its own, then the real `opsbot run` under load from the
# local Slack. Writes tests/bench/RESULTS.md and tests/bench/results.json.
BUILD_BENCH ?= build-bench
$(BUILD_BENCH)/build.ninja:
	meson setup $(BUILD_BENCH) -Dwerror=true --buildtype=debugoptimized

bench: deps $(BUILD_BENCH)/build.ninja
	ninja -C $(BUILD_BENCH) opsbot tests/opsbot-bench
	./$(BUILD_BENCH)/tests/opsbot-bench ./$(BUILD_BENCH)/opsbot $(CURDIR) tests/bench

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz
