#!/usr/bin/env bash
# Build and run every test. This is README's test command; .ci/run calls it verbatim.
#   1. the whole suite (ctest: cmocka programs across real processes)
#   2. the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. the concurrency tests under ThreadSanitizer
#   4. the libFuzzer harnesses, each for SHMBUS_FUZZ_SECONDS (default 15)
#   5. a publish/subscribe round trip under valgrind memcheck
#   6. shmbus-chaos for SHMBUS_CHAOS_SECONDS (default 30): kills, stops, checksums, leaks
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
start=$SECONDS

run() { # run DIR SANITIZER [ctest args...]
  local dir=$1 san=$2; shift 2
  echo "=== ${san:-normal} build ($dir) ==="
  scripts/build.sh "$dir" "$san"
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j2 "$@")
}

run build ""
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp" \
  UBSAN_OPTIONS=print_stacktrace=1 run build-asan address
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run build-tsan thread -L concurrency
scripts/fuzz.sh "${SHMBUS_FUZZ_SECONDS:-15}"
echo "=== valgrind ==="
scripts/valgrind-roundtrip.sh build
echo "=== chaos ==="
for d in nng shm; do build/bin/shmbus-chaos --seconds "$((${SHMBUS_CHAOS_SECONDS:-30} / 2))" --delivery $d --seed "${SHMBUS_CHAOS_SEED:-$RANDOM}"; done
echo "=== all test runs passed in $((SECONDS - start)) s ==="
