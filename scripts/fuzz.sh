#!/usr/bin/env bash
# Build the libFuzzer harnesses with clang (ASan + UBSan) and run each for a bounded time,
# starting from the seed corpus in tests/fuzz/corpus/<harness>. A crash, or a hang (one input
# running over 20 s), fails the script and leaves the input in build-fuzz/crashes/.
# usage: scripts/fuzz.sh [SECONDS_PER_HARNESS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
CC=clang cmake -S . -B build-fuzz -DSHMBUS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
mkdir -p build-fuzz/crashes
for h in build-fuzz/bin/fuzz_*; do
  name=${h##*/fuzz_}
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
  echo "=== fuzz $name for ${secs}s ==="
  if ! "$h" -max_total_time="$secs" -timeout=20 -print_final_stats=1 -artifact_prefix=build-fuzz/crashes/ \
       "$work" 2>build-fuzz/fuzz_$name.log; then
    tail -40 build-fuzz/fuzz_$name.log
    rm -rf "$work"
    echo "fuzz $name: FAILED (input in build-fuzz/crashes/)"
    exit 1
  fi
  grep -E "stat::number_of_executed_units|cov:" build-fuzz/fuzz_$name.log | tail -2
  rm -rf "$work"
done
echo "=== fuzzing passed ==="
