#!/usr/bin/env bash
# The main job: install what is missing, build everything, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build ""
exec build/bin/shmbus-demo "$@"
