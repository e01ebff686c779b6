#!/usr/bin/env bash
# Install the Debian packages shmbus needs to build, test and run its demo, if missing.
# Runs apt-get only as root; otherwise prints the command to run and fails.
set -euo pipefail

# build and run: compiler, cmake, the libraries; tests: tmux (monitor screen test), clang and
# its runtime (libFuzzer), valgrind (memcheck round trip), procps (ps/pgrep in scripts).
# Bindings and bridges: Cyclone DDS with idlc (shmbus-bridge), CPython + NumPy + pytest (the
# Python package), GStreamer with its base and good plugins (the gstshmbus plugin), ffmpeg
# (decodes what the pipelines write, in tests). gnuplot-nox draws shmbus-bench latency --plot.
pkgs=(build-essential cmake pkg-config libnng-dev libcjson-dev libcmocka-dev
      libncurses-dev procps tmux clang libclang-rt-14-dev valgrind
      cyclonedds-dev cyclonedds-tools python3-dev python3-numpy python3-pytest
      libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good ffmpeg gnuplot-nox)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "shmbus: missing Debian packages: ${missing[*]}" >&2
  echo "        run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "shmbus: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
