#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this):
#   1. installs missing Debian packages,
#   2. checks formatting (.clang-format),
#   3. builds warning-free with -Werror and runs every test (ctest),
#   4. builds again with ASan+UBSan (leaks included) and runs every test,
#   5. fuzzes the sample decoder for FUZZ_SECONDS (default 60) over the committed corpus.
# Build trees go to build/ci-*, so a developer's build/ is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${JOBS:-$(nproc)}

scripts/install-deps.sh

echo "== format check"
mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
clang-format --dry-run --Werror "${sources[@]}"

echo "== build (-Werror) and test"
cmake -S . -B build/ci-release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSL_WERROR=ON >/dev/null
cmake --build build/ci-release -j"$jobs"
(cd build/ci-release && ctest --output-on-failure -j"$jobs")

echo "== build with ASan+UBSan and test"
cmake -S . -B build/ci-asan -DCMAKE_BUILD_TYPE=Debug -DSL_WERROR=ON -DSL_SANITIZE=ON >/dev/null
cmake --build build/ci-asan -j"$jobs"
(cd build/ci-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs")

if [ -x scripts/fuzz.sh ]; then
  echo "== fuzz (${FUZZ_SECONDS:-60} s per target)"
  scripts/fuzz.sh "$root/build/ci-fuzz"
fi
echo "== all tests passed"
