#!/usr/bin/env bash
# Install shmbus into a temporary prefix, check what was installed, build the out-of-tree
# example (examples/external) against it three ways (CMake find_package, CMake + pkg-config,
# plain cc with `pkg-config --cflags --libs shmbus`), and run the builds against a live domain;
# build and run the C++ origin node program (examples/cpp) against the installed headers too.
#   usage: install_test.sh BUILD_DIR SOURCE_DIR VERSION [EXTRA_CFLAGS]
# VERSION: the project's (x.y.z); the SONAME, the file names, the pkg-config and CMake
# package versions and the header's SHMBUS_VERSION_* (printed by the example) must all match.
# EXTRA_CFLAGS: the sanitizer flags of a sanitizer build, so the example links the same
# runtime as the instrumented library. Leaves nothing behind (temp dir, shm segments).
set -euo pipefail
build=$1 src=$2 version=$3 cflags=${4:-}
major=${version%%.*}
minor=${version#*.}; minor=${minor%%.*}
tmp=$(mktemp -d /tmp/shmbus-install.XXXXXX)
dom="inst$$"
shm=${SHMBUS_SHM_DIR:-/dev/shm}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
  rm -f "$shm/shmbus.$dom."* # only this test's own domain
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

P=$tmp/prefix
step "cmake --install $build --prefix $P"
cmake --install "$build" --prefix "$P" >"$tmp/install.log"

# ---- what is installed ----------------------------------------------------------------------
step "layout"
pcprefix=$(sed -n 's/^prefix=//p' "$P/lib/pkgconfig/shmbus.pc")
[ "$pcprefix" = "$P" ] || fail "shmbus.pc has prefix '$pcprefix', expected $P"
libdir=$(sed -n 's/^libdir=\${prefix}\///p' "$P/lib/pkgconfig/shmbus.pc" || true)
[ "$libdir" = lib ] || fail "shmbus.pc has libdir '$libdir', expected \${prefix}/lib"
so=libshmbus.so.$major
[ -f "$P/lib/libshmbus.so.$version" ] || fail "no lib/libshmbus.so.$version"
[ "$(readlink "$P/lib/$so")" = "libshmbus.so.$version" ] || fail "$so link"
[ "$(readlink "$P/lib/libshmbus.so")" = "$so" ] || fail "libshmbus.so link"
soname=$(readelf -d "$P/lib/libshmbus.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "$so" ] || fail "SONAME is '$soname', expected $so"
# The installed headers are exactly the public include folder, nothing else.
diff -r "$src/api/include" "$P/include" || fail "include/ differs from api/include/"
# Only the shared library, its links, pkg-config, the CMake package, the Python package and the
# GStreamer plugin in lib/.
extra=$(cd "$P/lib" && find . \( -type f -o -type l \) | sort | grep -v -x -e ./libshmbus.so \
  -e "./$so" -e "./libshmbus.so.$version" -e ./pkgconfig/shmbus.pc \
  -e './cmake/shmbus/shmbus[A-Za-z-]*\.cmake' \
  -e './python3\.[0-9]*/dist-packages/shmbus/[A-Za-z_]*\.py' \
  -e './python3\.[0-9]*/dist-packages/shmbus/_shmbus[A-Za-z0-9_.-]*\.so' \
  -e './gstreamer-1\.0/libgstshmbus\.so' || true)
[ -z "$extra" ] || fail "unexpected files in lib/: $extra"
for f in shmbusConfig.cmake shmbusConfigVersion.cmake shmbusTargets.cmake; do
  [ -f "$P/lib/cmake/shmbus/$f" ] || fail "no lib/cmake/shmbus/$f"
done
progs="camera-pub frame-sink frame-stats shmbus shmbus-bench shmbus-bench-bridge shmbus-bridge shmbus-chaos shmbus-monitor"
[ "$(ls "$P/bin" | sort | tr '\n' ' ')" = "$progs " ] || fail "bin/ has: $(ls "$P/bin")"
for f in README.md config.md ownership.md install.md cpp.md; do
  [ -f "$P/share/doc/shmbus/$f" ] || fail "no share/doc/shmbus/$f"
done
# The programs find the installed library through their RPATH ($ORIGIN/../lib).
for p in $progs; do
  rp=$(readelf -d "$P/bin/$p" | sed -n 's/.*R[UN]*PATH.*\[\(.*\)\]/\1/p')
  [ "$rp" = '$ORIGIN/../lib' ] || fail "$p has RPATH '$rp'"
  got=$(env -u LD_LIBRARY_PATH ldd "$P/bin/$p" | awk '/libshmbus/ {print $3}')
  [ "$got" = "$P/bin/../lib/$so" ] || fail "$p loads libshmbus from '$got'"
done
env -u LD_LIBRARY_PATH "$P/bin/shmbus" config check "$src/tests/install/external.json" \
  >/dev/null || fail "the installed shmbus program does not run"

# ---- the versions agree -------------------------------------------------------------------
export PKG_CONFIG_PATH=$P/lib/pkgconfig
step "versions"
[ "$(pkg-config --modversion shmbus)" = "$version" ] || fail "pkg-config version"
pkg-config --exists "shmbus >= $major.$minor" || fail "pkg-config shmbus >= $major.$minor"

# ---- build the example three ways -----------------------------------------------------------
ext=$src/examples/external
step "find_package(shmbus $major.$minor)"
cmake -S "$ext" -B "$tmp/b-cmake" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="$cflags" \
  -DWANT_VERSION="$major.$minor" \
  -DCMAKE_C_COMPILER="${CC:-cc}" >"$tmp/cmake.log" || { cat "$tmp/cmake.log"; fail "configure"; }
cmake --build "$tmp/b-cmake" >"$tmp/build.log" || { cat "$tmp/build.log"; fail "build"; }
# A package version this install cannot satisfy is refused.
if cmake -S "$ext" -B "$tmp/b-wrong" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="$cflags" \
     -DWANT_VERSION="$major.$((minor + 1))" >/dev/null 2>&1; then
  fail "find_package(shmbus $major.$((minor + 1))) succeeded against $version"
fi

step "pkg-config (CMake pkg_check_modules)"
cmake -S "$ext" -B "$tmp/b-pc" -DUSE_PKG_CONFIG=ON -DCMAKE_C_FLAGS="$cflags" \
  >"$tmp/cmake-pc.log" || { cat "$tmp/cmake-pc.log"; fail "configure"; }
cmake --build "$tmp/b-pc" >"$tmp/build-pc.log" || { cat "$tmp/build-pc.log"; fail "build"; }

step "cc \$(pkg-config --cflags --libs shmbus)"
# shellcheck disable=SC2046,SC2086
${CC:-cc} -std=c11 -Wall -Wextra -Werror $cflags -o "$tmp/external-cc" "$ext/external.c" \
  $(pkg-config --cflags --libs shmbus) -Wl,-rpath,"$(pkg-config --variable=libdir shmbus)"

step "c++ share_mem_origin.cpp \$(pkg-config --cflags --libs shmbus)"
# The C++ headers from the prefix: the origin node program, as a user would build it.
# shellcheck disable=SC2046,SC2086
${CXX:-c++} -std=c++17 -Wall -Wextra -Werror $cflags -o "$tmp/origin" \
  "$src/examples/cpp/share_mem_origin.cpp" $(pkg-config --cflags --libs shmbus) \
  -Wl,-rpath,"$(pkg-config --variable=libdir shmbus)"

# ---- run them against a live domain ---------------------------------------------------------
export SHMBUS_RUNTIME_DIR=$tmp
cfg=$src/tests/install/external.json
run_pair() { # run_pair SUB PUB: the subscriber must receive 10 intact frames
  local sub=$1 pub=$2
  step "$(basename "$(dirname "$sub")")/$(basename "$sub") receives from" \
    "$(basename "$(dirname "$pub")")/$(basename "$pub")"
  "$sub" sub "$dom" "$cfg" 10 >"$tmp/sub.out" &
  local s=$!
  pids+=("$s")
  "$pub" pub "$dom" "$cfg" 10 || fail "publisher exited $?"
  wait "$s" || fail "subscriber exited $?"
  grep -q "^received 10 frames, 0 bad (shmbus $version)\$" "$tmp/sub.out" ||
    fail "subscriber printed: $(cat "$tmp/sub.out")"
  cat "$tmp/sub.out"
}
run_pair "$tmp/b-cmake/external" "$tmp/b-pc/external"
run_pair "$tmp/b-pc/external" "$tmp/external-cc"
run_pair "$tmp/external-cc" "$tmp/b-cmake/external"
step "the origin node program"
out=$(SHMBUS_NODE_DOMAIN=$dom "$tmp/origin") || fail "origin program exited $?"
[[ "$out" =~ ^0x[0-9a-f]+\ 0$ ]] || fail "origin program printed: $out"
echo "$out"
left=$(ls "$shm" | grep -c "^shmbus\.$dom\." || true)
[ "$left" = 0 ] || fail "$left segments of domain $dom left in $shm"
echo "install test passed"
