#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets (clang-14) and runs each for a bounded time over a copy
# of its seed corpus; exits non-zero on any crash, leak, OOM or stall.
#
#   scripts/fuzz.sh [BUILD_DIR]        (default build-fuzz)
#   FUZZ_SECONDS=60                    time per target
#
# fuzz/fuzz_<name>.c uses the corpus fuzz/corpus/<name>/; new inputs found
# during a run stay in the copy (BUILD_DIR/corpus-<name>), so the committed
# corpus changes only by hand. Crash inputs land in BUILD_DIR/artifacts/.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build-fuzz}"
secs="${FUZZ_SECONDS:-60}"

targets=()
for f in "$src"/fuzz/fuzz_*.c; do
    [ -e "$f" ] || continue
    targets+=("$(basename "$f" .c)")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz.sh: no fuzz targets in $src/fuzz" >&2
    exit 1
fi

cmake -S "$src" -B "$build" -DSL_FUZZ=ON -DCMAKE_C_COMPILER=clang-14 \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target "${targets[@]}"

mkdir -p "$build/artifacts"
status=0
for t in "${targets[@]}"; do
    name="${t#fuzz_}"
    work="$build/corpus-$name"
    rm -rf "$work"
    mkdir -p "$work"
    if [ -d "$src/fuzz/corpus/$name" ]; then
        cp -r "$src/fuzz/corpus/$name/." "$work/"
    fi
    echo "fuzz.sh: running $t for ${secs}s" >&2
    # -timeout catches stalls; libFuzzer exits non-zero on crash, leak, OOM or timeout.
    if ! "$build/$t" "$work" -max_total_time="$secs" -rss_limit_mb=512 -malloc_limit_mb=256 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
        2>"$build/$t.log"; then
        echo "fuzz.sh: $t FAILED; see $build/$t.log and $build/artifacts/" >&2
        tail -n 40 "$build/$t.log" >&2
        status=1
    else
        grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$build/$t.log" >&2 || true
    fi
done
exit $status
