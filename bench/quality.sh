#!/usr/bin/env bash
# The quality benchmark: what `streamlearn replay` learns with shape flags
# only (its defaults), side by side in one run with scikit-learn's SGD
# defaults (partial_fit on the same batches) and with Adam at the best
# learning rate of a grid (scaling on, and off: the PyTorch loop), on real
# data sets bundled with scikit-learn, raw and standardised, plus sparse and
# hashed forms; then the same with a hidden layer.
#   bench/quality.sh [SEEDS]     shuffles per data set (default 5)
# Needs /usr/bin/python3 with python3-sklearn, python3-numpy, python3-msgpack.
# Prints the tables and writes bench/results/quality.json (bench/record.py).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-5}
py=/usr/bin/python3
work=${BENCH_DATA:-/tmp/streamlearn-bench}/quality
grid=0.001,0.003,0.01,0.03,0.1,0.3
shapes=h0,h32
batch=16
rm -rf "$work"
mkdir -p "$work/data" "$work/pred" bench/results

cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench -j2 --target streamlearn >/dev/null
bin=$(pwd)/build/bench/streamlearn

$py scripts/gen_quality_data.py "$work/data" --seeds "$(seq -s, 0 $((seeds - 1)))" --npz
$py bench/peers/quality_sklearn.py "$work/data" "$work/pred" --batch-size $batch

# replay STREAM SHAPE LABEL ARGS...: one streamlearn run (shape flags in
# $flags), predictions kept.
replay() {
  local stream=$1 shape=$2 label=$3; shift 3
  local hidden=()
  [ "$shape" = h0 ] || hidden=(--hidden "${shape#h}")
  OPENBLAS_NUM_THREADS=1 "$bin" replay $flags "${hidden[@]}" --batch-size $batch "$@" \
    --input "$work/data/$stream.msgpack" --output "$work/pred/$stream.$shape.$label.msgpack" \
    --log-level error
}

# One line per stream: its name, then its shape flags.
$py -c "import json,sys; [print(k, ' '.join(v['flags'])) for k, v in sorted(json.load(open(sys.argv[1])).items())]" \
  "$work/data/sets.json" > "$work/streams.txt"
while read -r stream flags; do
  for shape in ${shapes//,/ }; do
    replay "$stream" "$shape" default
    for lr in ${grid//,/ }; do
      replay "$stream" "$shape" "adam-$lr" --optimizer adam --lr "$lr"
      replay "$stream" "$shape" "adamoff-$lr" --optimizer adam --lr "$lr" --scale off
    done
  done
done < "$work/streams.txt"

$py bench/quality_report.py "$work/data" "$work/pred" "$work/quality.json" \
  --grid "$grid" --shapes "$shapes"
$py bench/record.py quality "bench/quality.sh $seeds" "$work/quality.json"
