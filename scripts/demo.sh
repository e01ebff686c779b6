#!/usr/bin/env bash
# The main job: install what is missing, build everything, and run the camera demo
# (scripts/camera-demo.sh: 1080p RGB at 30 fps to three subscriber processes for ~10 s).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build ""
exec scripts/camera-demo.sh "$@"
