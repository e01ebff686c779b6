#!/usr/bin/env bash
# Configure and build one flavour of shmbus.
# usage: scripts/build.sh [BUILD_DIR] [SANITIZER]   (SANITIZER: address | thread | empty)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
san=${2:-}
cmake -S . -B "$dir" -DSHMBUS_SANITIZE="$san" -DSHMBUS_TESTS=ON -DSHMBUS_FUZZ=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)"
