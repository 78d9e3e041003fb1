#!/usr/bin/env bash
# Build the cargo-fuzz targets and run each for a short time over its
# corpus (ctest `fuzz_smoke`). Exit 77 (ctest: skipped) when the toolchain
# cannot build fuzzers: no cargo-fuzz, or a compiler without the nightly
# features cargo-fuzz needs (stable with RUSTC_BOOTSTRAP=1 works).
#
#   fuzz/run_ci.sh [SECONDS_PER_TARGET]   (default 20)
set -u
cd "$(dirname "$0")"
secs="${1:-20}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "SKIP: cargo-fuzz is not installed (cargo install cargo-fuzz)"
  exit 77
fi
export RUSTC_BOOTSTRAP=1
if ! nice -n 19 cargo fuzz build -O >build.log 2>&1; then
  tail -20 build.log
  # A compile error in the fuzz targets or the library is a failure, not a
  # toolchain that cannot build fuzzers: the targets must follow the API.
  if grep -qE '^error\[E[0-9]+\]' build.log; then
    echo "FAIL: the fuzz targets do not compile (see fuzz/build.log)"
    exit 1
  fi
  echo "SKIP: the toolchain cannot build fuzzers (see fuzz/build.log)"
  exit 77
fi
status=0
for t in host_service address api_calls dns_message; do
  # Run on a copy of the corpus: the repository's corpus stays as it is.
  work="$(mktemp -d)"
  cp -r "corpus/$t/." "$work/"
  echo "== $t: ${secs}s"
  if ! nice -n 19 cargo fuzz run -O "$t" "$work" -- -max_total_time="$secs" -print_final_stats=1 \
      >"run_$t.log" 2>&1; then
    tail -40 "run_$t.log"
    echo "FAIL: $t found a crash (fuzz/artifacts/$t)"
    status=1
  else
    grep -E "stat::number_of_executed_units|^Done" "run_$t.log" | tail -2
  fi
  rm -rf "$work"
done
exit $status
