#!/usr/bin/env bash
# The Quick start's first command: installs what is missing, builds, and runs
# the learning pipeline end to end on an embedded default - a generated stream
# of 200,000 labelled samples whose concept changes suddenly at sample 100,000 -
# printing prequential accuracy before and after the drift.
#   scripts/demo.sh [--samples N]
set -euo pipefail
cd "$(dirname "$0")/.."
samples=200000
[ "${1:-}" = "--samples" ] && samples=${2:?}
drift=$((samples / 2))

scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)" --target streamlearn >/dev/null
bin=build/release/streamlearn
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== generating $samples samples (dim 16, 3 classes), concept drift at $drift"
$bin gen --model softmax --dim 16 --classes 3 --samples "$samples" --drift-at "$drift" \
  --seed 7 --output "$work/stream.msgpack" 2>/dev/null
half() { # replay over the first N samples and print the windowed accuracy
  $bin replay --model softmax --dim 16 --classes 3 --hidden 32 --optimizer adam --lr 0.01 \
    --batch-size 64 --metrics-window 5000 --input "$1" --output /dev/null --save "$work/w.safetensors" 2>&1 |
    sed -n 's/.*"samples":\([0-9]*\).*"samples_per_s":\([0-9.e+]*\).*"accuracy":\([0-9.]*\).*"window_accuracy":\([0-9.]*\).*/\1 \2 \3 \4/p'
}
head -c "$(( $(stat -c %s "$work/stream.msgpack") * (drift - 1000) / samples ))" "$work/stream.msgpack" > "$work/before.msgpack"
read -r n1 rate1 acc1 win1 < <(half "$work/before.msgpack")
read -r n2 rate2 acc2 win2 < <(half "$work/stream.msgpack")
echo "== replay: test-then-train, softmax 16-32-3, Adam, batch 64"
printf '  before the drift: %7d samples, prequential accuracy (last 5000) %.3f\n' "$n1" "$win1"
printf '  after the drift:  %7d samples, prequential accuracy (last 5000) %.3f (all-time %.3f)\n' "$n2" "$win2" "$acc2"
printf '  throughput: %.0f samples/s; final weights: %s\n' "$rate2" "safetensors (nn.Sequential names)"
