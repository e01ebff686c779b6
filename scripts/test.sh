#!/usr/bin/env bash
# Build and run every test: the whole suite normally, again under AddressSanitizer +
# UndefinedBehaviorSanitizer, and the concurrency tests under ThreadSanitizer.
# This is README's test command; .ci/run calls it verbatim.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

run() { # run DIR SANITIZER [ctest args...]
  local dir=$1 san=$2; shift 2
  echo "=== ${san:-normal} build ($dir) ==="
  scripts/build.sh "$dir" "$san"
  (cd "$dir" && ctest --output-on-failure --timeout 300 "$@")
}

run build ""
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run build-asan address
TSAN_OPTIONS=halt_on_error=1 run build-tsan thread -L concurrency
echo "=== all test runs passed ==="
