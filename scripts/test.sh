#!/usr/bin/env bash
# Installs what the tests need, builds with warnings as errors and runs every test:
#   1. the release build: unit, integration, differential and end-to-end tests;
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build: unit and integration tests;
#   3. a ThreadSanitizer build: the concurrency tests of the stores and the server;
#   4. the libFuzzer targets (clang), each for a bounded time on its seed corpus.
# GREYLIGHT_STAGES picks stages by name (default: "release asan tsan fuzz"; CI runs the
# release stage in a brand-new Debian root and the others here); GREYLIGHT_QUICK=1 is
# GREYLIGHT_STAGES=release.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
jobs=$(nproc)
fuzz_seconds=${GREYLIGHT_FUZZ_SECONDS:-30}
stages=${GREYLIGHT_STAGES:-release asan tsan fuzz}
[ "${GREYLIGHT_QUICK:-0}" = 1 ] && stages=release
for name in $stages; do
  case $name in release|asan|tsan|fuzz) ;; *) echo "unknown stage '$name'" >&2; exit 2 ;; esac
done

stage() { printf '\n=== %s (%s) ===\n' "$*" "$(date -u +%H:%M:%S)"; }
wanted() { [[ " $stages " == *" $1 "* ]]; }

if wanted release; then
stage "release build and full suite"
# The build directory and flags of scripts/run-dev.sh, plus the tests and the load
# generator: after the Quick start's first command, the daemon's objects are built already.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREYLIGHT_WERROR=ON \
      -DGREYLIGHT_BUILD_TESTS=ON -DGREYLIGHT_BUILD_BENCH=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j2 --timeout 900
fi

if wanted asan; then
stage "AddressSanitizer + UndefinedBehaviorSanitizer: unit and integration tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGREYLIGHT_WERROR=ON \
      -DGREYLIGHT_SANITIZE=address,undefined -DGREYLIGHT_BUILD_BENCH=OFF
cmake --build build-asan -j"$jobs"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 -L 'unit|integration' \
        -E 'differential'
fi

if wanted tsan; then
stage "ThreadSanitizer: store and server concurrency tests"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DGREYLIGHT_WERROR=ON \
      -DGREYLIGHT_SANITIZE=thread -DGREYLIGHT_BUILD_BENCH=OFF
# Only what the stage runs: the unit-test binary and the daemon.
cmake --build build-tsan -j"$jobs" --target greylight_unit_tests greylightd
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build-tsan --output-on-failure -j2 --timeout 900 \
        -R 'StoreConformance|LmdbStore|Redis|DnsListChecker|DnsResolver|SpfChecker|ServerTest|integration_daemon|integration_limits'
fi

if wanted fuzz; then
stage "libFuzzer targets, ${fuzz_seconds}s each"
CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREYLIGHT_FUZZ=ON \
      -DGREYLIGHT_BUILD_TESTS=OFF -DGREYLIGHT_BUILD_BENCH=OFF
cmake --build build-fuzz -j"$jobs"
for corpus in tests/fuzz/corpus/*/; do
  name=$(basename "$corpus")
  target=build-fuzz/tests/fuzz/fuzz_$name
  [ -x "$target" ] || continue
  work=$(mktemp -d)
  log="$work.log"
  # New inputs go to a scratch directory; a crash makes libFuzzer exit non-zero and write
  # the input to crash-* for a regression test.
  if ! "$target" -max_total_time="$fuzz_seconds" -print_final_stats=1 \
       -artifact_prefix="$work/" "$work" "$corpus" > "$log" 2>&1; then
    tail -50 "$log"
    echo "fuzz_$name found a crash: $(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null)"
    exit 1
  fi
  echo "fuzz_$name: $(grep -E 'stat::number_of_executed_units' "$log")"
  rm -rf "$work" "$log"
done
fi
echo "stages passed: $stages"
