#!/bin/sh
# taps_racing as a dependency, the way users take it (ctest packaging_install):
#   check_install.sh SOURCE_DIR BUILD_DIR LIBDIR VERSION GENERATOR C_COMPILER
# 1. `"$CMAKE" --install BUILD_DIR --prefix TMP --strip`: the libraries (stripped,
#    SONAME and links), every header of include/, the CMake package, the .pc;
# 2. tests/packaging/consumer with find_package(taps_racing CONFIG): C,
#    static and shared, and the C++ wrapper (main.cpp); main.c through
#    pkg-config (shared, static with --static, fully static) and main.cpp
#    (shared); a program with its own compiler builtins;
# 3. tests/packaging/parent: add_subdirectory of the source tree adds only
#    the library targets (it shares BUILD_DIR's cargo target directory);
# 4. cpack: the .tar.gz and the .deb hold the same files.
# Each program built runs and must print taps_strerror(0). CMAKE, CTEST and
# CPACK in the environment name the tools (default: from PATH).
set -eu
src=$1 build=$2 libdir=$3 version=$4 generator=$5 cc=$6
CMAKE=${CMAKE:-cmake} CTEST=${CTEST:-ctest} CPACK=${CPACK:-cpack}
major=${version%%.*}
here="$src/tests/packaging"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "packaging_install: $*" >&2; exit 1; }
step() { echo "== $*"; }
run() { out=$("$@") || fail "$* failed: $out"; echo "$out"; echo "$out" | grep -q "success" || fail "$*: unexpected output"; }

step ""$CMAKE" --install --strip"
prefix="$tmp/prefix"
"$CMAKE" --install "$build" --prefix "$prefix" --strip > "$tmp/install.log" || { cat "$tmp/install.log"; fail "install failed"; }
lib="$prefix/$libdir"
"$here/check_library.sh" "$lib" "$prefix/include" "$version"
for h in "$src"/include/*.h "$src"/include/*.hpp; do
  [ -e "$h" ] || continue
  [ -f "$prefix/include/$(basename "$h")" ] || fail "$(basename "$h") is not installed"
done
[ -f "$lib/pkgconfig/taps_racing.pc" ] || fail "taps_racing.pc is not installed"
[ -f "$lib/cmake/taps_racing/taps_racingConfig.cmake" ] || fail "taps_racingConfig.cmake is not installed"
! readelf -S "$lib/libtaps_racing.so.$version" | grep -q -E '\] \.(symtab|debug_)' || fail "the shared library is not stripped"
! readelf -S --wide "$lib/libtaps_racing.a" 2>/dev/null | grep -q -E '\] \.debug_' || fail "the static library still has debug info"
ls -l "$lib" | sed 's/^/   /'

step "find_package(taps_racing CONFIG): static and shared targets"
"$CMAKE" -S "$here/consumer" -B "$tmp/consumer" -G "$generator" "-DCMAKE_C_COMPILER=$cc" \
  "-DCMAKE_PREFIX_PATH=$prefix" > "$tmp/consumer.log" || { cat "$tmp/consumer.log"; fail "consumer configure failed"; }
"$CMAKE" --build "$tmp/consumer" > "$tmp/consumer-build.log" || { cat "$tmp/consumer-build.log"; fail "consumer build failed"; }
run "$tmp/consumer/consumer_static"
run "$tmp/consumer/consumer_shared"
run "$tmp/consumer/consumer_cxx"
ldd "$tmp/consumer/consumer_shared" | grep -q "libtaps_racing.so.$major => $lib/" || fail "consumer_shared does not load $lib/libtaps_racing.so.$major"
! ldd "$tmp/consumer/consumer_static" | grep -q libtaps_racing || fail "consumer_static loads the shared library"

if command -v pkg-config > /dev/null 2>&1; then
  export PKG_CONFIG_PATH="$lib/pkgconfig"
  step "pkg-config: $(pkg-config --libs taps_racing) | --static: $(pkg-config --static --libs taps_racing)"
  pc_libdir=$(pkg-config --variable=libdir taps_racing)
  # shellcheck disable=SC2046
  "$cc" -o "$tmp/pc_shared" "$here/consumer/main.c" $(pkg-config --cflags --libs taps_racing) "-Wl,-rpath,$pc_libdir" \
    || fail "pkg-config shared link failed"
  run "$tmp/pc_shared"
  # The C++ wrapper through pkg-config, against the shared library.
  # shellcheck disable=SC2046
  c++ -std=c++17 -o "$tmp/pc_cxx" "$here/consumer/main.cpp" $(pkg-config --cflags --libs taps_racing) "-Wl,-rpath,$pc_libdir" \
    || fail "pkg-config C++ link failed"
  run "$tmp/pc_cxx"
  ldd "$tmp/pc_shared" | grep -q "libtaps_racing.so.$major => $lib/" || fail "pc_shared does not load libtaps_racing.so.$major"
  # The static library with a dynamic libc: --static flags, libtaps_racing.a by name.
  # shellcheck disable=SC2046
  "$cc" -o "$tmp/pc_static" "$here/consumer/main.c" \
    $(pkg-config --static --cflags --libs taps_racing | sed 's/-ltaps_racing/-l:libtaps_racing.a/') \
    || fail "pkg-config --static link (libtaps_racing.a) failed"
  run "$tmp/pc_static"
  # Fully static (needs libc.a: Debian's libc6-dev has it).
  # shellcheck disable=SC2046
  "$cc" -static -o "$tmp/pc_static_full" "$here/consumer/main.c" $(pkg-config --static --cflags --libs taps_racing) \
    2> "$tmp/static.log" || { cat "$tmp/static.log"; fail "pkg-config --static link with -static failed"; }
  run "$tmp/pc_static_full"
  # The program's own compiler builtins next to the library's copies.
  # shellcheck disable=SC2046
  "$cc" -ftrapv -static -o "$tmp/builtins" "$here/builtins.c" $(pkg-config --static --cflags --libs taps_racing) \
    2> "$tmp/builtins.log" || { cat "$tmp/builtins.log"; fail "builtins link failed"; }
  run "$tmp/builtins"
  # shellcheck disable=SC2046
  "$cc" -ftrapv -o "$tmp/builtins_dyn" "$here/builtins.c" \
    $(pkg-config --static --cflags --libs taps_racing | sed 's/-ltaps_racing/-l:libtaps_racing.a/') \
    || fail "builtins link (dynamic libc) failed"
  run "$tmp/builtins_dyn"
else
  echo "pkg-config not found: the pkg-config links are not checked"
fi

step "add_subdirectory from a parent project"
"$CMAKE" -S "$here/parent" -B "$tmp/parent" -G "$generator" "-DCMAKE_C_COMPILER=$cc" \
  "-DTAPS_RACING_SOURCE_DIR=$src" "-DTAPS_CARGO_TARGET_DIR=$build/cargo" > "$tmp/parent.log" \
  || { cat "$tmp/parent.log"; fail "parent configure failed"; }
grep "parent:" "$tmp/parent.log"
"$CMAKE" --build "$tmp/parent" > "$tmp/parent-build.log" 2>&1 || { cat "$tmp/parent-build.log"; fail "parent build failed"; }
"$CTEST" --test-dir "$tmp/parent" -N | grep -q "Total Tests: 2" || { "$CTEST" --test-dir "$tmp/parent" -N; fail "the parent has tests of taps_racing"; }
"$CTEST" --test-dir "$tmp/parent" --output-on-failure > "$tmp/parent-test.log" || { cat "$tmp/parent-test.log"; fail "parent tests failed"; }
ldd "$tmp/parent/parent_shared" | grep -q "libtaps_racing.so.$major => $tmp/parent/taps_racing/lib/" \
  || fail "parent_shared does not load the build tree's libtaps_racing.so.$major"

step "cpack: .tar.gz and .deb"
"$CPACK" --config "$build/CPackConfig.cmake" -B "$tmp/cpack" > "$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; fail "cpack failed"; }
tgz=$(ls "$tmp"/cpack/*.tar.gz)
deb=$(ls "$tmp"/cpack/*.deb)
tar tvzf "$tgz" > "$tmp/tgz.list"
if command -v dpkg-deb > /dev/null 2>&1; then dpkg-deb -c "$deb" > "$tmp/deb.list"; else cp "$tmp/tgz.list" "$tmp/deb.list"; fi
for f in "lib/libtaps_racing.a" "lib/libtaps_racing.so.$version" "lib/libtaps_racing.so.$major -> libtaps_racing.so.$version" \
         "lib/libtaps_racing.so -> libtaps_racing.so.$major" "include/taps_racing.h" "lib/pkgconfig/taps_racing.pc" \
         "lib/cmake/taps_racing/taps_racingConfig.cmake" "lib/cmake/taps_racing/taps_racingConfigVersion.cmake"; do
  f=$(echo "$f" | sed "s|^lib/|$libdir/|")
  grep -q -F "/$f" "$tmp/tgz.list" || fail "$(basename "$tgz") lacks $f"
  grep -q -F "/$f" "$tmp/deb.list" || fail "$(basename "$deb") lacks $f"
done
echo "   $(basename "$tgz"), $(basename "$deb")"
echo "packaging_install: all good"
