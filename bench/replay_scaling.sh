#!/usr/bin/env bash
# What online feature scaling (on by default) costs `streamlearn replay`:
# dense32 (1M {"id", "x": [32 float32], "y"}, logistic, batch 256) with
# --optimizer adam --scale off (the PyTorch loop), --optimizer adam --scale
# standard, and the defaults (shape flags only: --optimizer auto, --scale
# auto), interleaved, ROUNDS rounds (default 5), best of each (its own loop's
# samples/s), so that other load on the machine hits all three alike.
#   bench/replay_scaling.sh [N]  N samples (default 1000000)
# bench/replay.sh runs it last. Writes bench/results/replay_scaling.json
# (bench/record.py).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
rounds=${ROUNDS:-5}
py=/usr/bin/python3
data=${BENCH_DATA:-/tmp/streamlearn-bench}
mkdir -p "$data" bench/results

cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench -j2 --target streamlearn >/dev/null
bin=$(pwd)/build/bench/streamlearn
f=$data/dense32-$n.msgpack
[ -s "$f" ] || $bin gen --samples "$n" --seed 1 --output "$f" --dim 32 2>/dev/null

load=$(cut -d' ' -f1 /proc/loadavg)
declare -A best=([off]=0 [standard]=0 [defaults]=0) all=()
for round in $(seq "$rounds"); do
  for setting in off standard defaults; do
    case $setting in
      off) extra=(--optimizer adam --scale off) ;;
      standard) extra=(--optimizer adam --scale standard) ;;
      defaults) extra=() ;;
    esac
    OPENBLAS_NUM_THREADS=1 $bin replay --model logistic --dim 32 --batch-size 256 "${extra[@]}" \
      --input "$f" --output /dev/null 2>"$data/log.scaling"
    r=$(sed -n 's/.*"samples_per_s":\([0-9.e+]*\).*/\1/p' "$data/log.scaling" | tail -1 |
      xargs printf '%.0f')
    all[$setting]+="${all[$setting]:+,}$r"
    [ "$r" -gt "${best[$setting]}" ] && best[$setting]=$r
  done
done
awk -v off="${best[off]}" -v on="${best[standard]}" -v def="${best[defaults]}" -v k="$rounds" 'BEGIN {
  printf "online scaling (dense32, best of %d interleaved): %d samples/s off, %d with --scale standard (%.0f%%), %d with the defaults (%.0f%%)\n", k, off, on, 100 * on / off, def, 100 * def / off
}'
printf '{"case":"dense32","samples":%d,"rounds":%d,"load_avg_at_start":%s,"samples_per_s":{"scale_off":%d,"scale_standard":%d,"defaults":%d},"rounds_samples_per_s":{"scale_off":[%s],"scale_standard":[%s],"defaults":[%s]},"standard_vs_off":%s,"defaults_vs_off":%s}\n' \
  "$n" "$rounds" "$load" "${best[off]}" "${best[standard]}" "${best[defaults]}" "${all[off]}" \
  "${all[standard]}" "${all[defaults]}" \
  "$(printf '%.3f' "$(echo "scale=4; ${best[standard]} / ${best[off]}" | bc)")" \
  "$(printf '%.3f' "$(echo "scale=4; ${best[defaults]} / ${best[off]}" | bc)")" |
  $py bench/record.py replay_scaling "bench/replay_scaling.sh $n"
