#!/bin/sh
# The built libraries as a linker and a loader see them (ctest packaging_library):
#   check_library.sh LIB_DIR INCLUDE_DIR VERSION
# - libtaps_racing.so.VERSION carries the SONAME libtaps_racing.so.MAJOR, with
#   the links libtaps_racing.so -> .so.MAJOR -> .so.VERSION beside it;
# - the shared library exports exactly the functions the headers declare;
# - the static library defines each of them as a global function.
set -eu
lib=$1 inc=$2 version=$3
major=${version%%.*}
fail() { echo "packaging_library: $*" >&2; exit 1; }

real="$lib/libtaps_racing.so.$version"
[ -f "$real" ] && [ ! -L "$real" ] || fail "$real is missing"
[ "$(readlink "$lib/libtaps_racing.so.$major")" = "libtaps_racing.so.$version" ] || fail "libtaps_racing.so.$major does not point to libtaps_racing.so.$version"
[ "$(readlink "$lib/libtaps_racing.so")" = "libtaps_racing.so.$major" ] || fail "libtaps_racing.so does not point to libtaps_racing.so.$major"
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libtaps_racing.so.$major" ] || fail "SONAME is '$soname', not libtaps_racing.so.$major"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Function declarations of the public headers: `type name(` at the start of a
# line (cbindgen's layout), static inline helpers left out.
cat "$inc"/*.h | grep -E '^[A-Za-z_][A-Za-z0-9_ *]*[ *][a-z_][a-z0-9_]*\(' | grep -v '^static' \
  | sed -E 's/^[^(]*[ *]([a-z_][a-z0-9_]*)\(.*/\1/' | sort -u > "$tmp/header"
[ -s "$tmp/header" ] || fail "no function declarations found in $inc/*.h"
nm -D --defined-only "$real" | awk '{print $NF}' | sort -u > "$tmp/exported"
if ! diff -u "$tmp/header" "$tmp/exported" > "$tmp/diff"; then
  cat "$tmp/diff" >&2
  fail "the shared library's dynamic symbols differ from the headers' functions (- header only, + exported only)"
fi
nm -g --defined-only "$lib/libtaps_racing.a" 2>/dev/null | awk '$2 == "T" {print $3}' | sort -u > "$tmp/static"
missing=$(comm -23 "$tmp/header" "$tmp/static")
[ -z "$missing" ] || fail "libtaps_racing.a does not define: $missing"
echo "packaging_library: SONAME $soname, $(wc -l < "$tmp/header") functions exported, links in place"
