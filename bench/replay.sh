#!/usr/bin/env bash
# The replay benchmark (issue: learning pipeline), side by side with the
# PyTorch peer over the same file, on one core. The PyTorch-equivalent loop
# (--optimizer adam --scale off), then dense32 again with online scaling
# (--scale standard) and with the defaults (shape flags only: --optimizer
# auto, --scale auto); then what scaling costs, the three interleaved; then
# a C loop through msgpack-c's generic decoder and encoder
# (bench/msgpack_loop.c):
#   bench/replay.sh [N]          N samples (default 1000000)
# Needs /usr/bin/python3 with torch and msgpack (python3-torch, python3-msgpack).
# Prints tables with ratios and writes bench/results/replay.json,
# replay_scaling.json and replay_c_loop.json (bench/record.py).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
py=/usr/bin/python3
data=${BENCH_DATA:-/tmp/streamlearn-bench}
mkdir -p "$data" bench/results

cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench -j2 --target streamlearn >/dev/null
bin=$(pwd)/build/bench/streamlearn
gcc -O2 -std=c11 -D_GNU_SOURCE bench/msgpack_loop.c $(pkg-config --cflags --libs msgpack) \
  -o "$data/msgpack_loop"

gen() { # file n args...: a labelled stream from `streamlearn gen` (float32 values)
  local f=$1 n=$2; shift 2
  [ -s "$f" ] || $bin gen --samples "$n" --seed 1 --output "$f" "$@" 2>/dev/null
}
gen "$data/dense32-$n.msgpack" "$n" --dim 32
gen "$data/bin32-$n.msgpack" "$n" --dim 32 --form bin
m=$(( n / 10 ))
gen "$data/mnistlike-$m.msgpack" "$m" --model softmax --dim 784 --classes 10 --stream blobs --form bin

# run NAME CMD...: wall seconds, CPU seconds and peak RSS of one command.
run() {
  local name=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$data/time.$name" "$@" 2>"$data/log.$name" >/dev/null ||
    { echo "$name failed:"; tail -5 "$data/log.$name"; exit 1; }
  read -r wall user sys rss < "$data/time.$name"
  echo "$name $wall $(printf "%.2f" "$(echo "$user + $sys" | bc)") $rss"  # printf: JSON needs the leading 0
}

# Throughput is each program's own measure of its loop (file open to last
# prediction written), so interpreter start-up does not count against PyTorch.
rate_sl() { sed -n 's/.*"samples_per_s":\([0-9.e+]*\).*/\1/p' "$data/log.sl-$1" | tail -1; }
rate_pt() { sed -n 's/.* \([0-9]*\) samples\/s$/\1/p' "$data/log.pt-$1" | tail -1; }

# median3 KIND LABEL CMD...: three runs, keeps the one with the median rate as
# KIND-LABEL (the machine is a shared VM: single runs move by up to 2x).
median3() {
  local kind=$1 label=$2; shift 2
  local i runs=()
  for i in 1 2 3; do
    run "$kind-$label-$i" "$@" >/dev/null
    runs+=("$(rate_$kind "$label-$i") $i")
  done
  i=$(printf '%s\n' "${runs[@]}" | sort -g | sed -n 2p | cut -d' ' -f2)
  cp "$data/log.$kind-$label-$i" "$data/log.$kind-$label"
  cp "$data/time.$kind-$label-$i" "$data/time.$kind-$label"
  read -r wall user sys rss < "$data/time.$kind-$label"
  echo "$kind-$label $wall $(printf "%.2f" "$(echo "$user + $sys" | bc)") $rss"
}

results=()
bench_case() { # label samples scale sl-args torch-args
  local label=$1 samples=$2 scale=$3 slargs=$4 ptargs=$5
  local s t
  s=$(median3 sl "$label" env OPENBLAS_NUM_THREADS=1 $bin replay $slargs --output /dev/null)
  t=$(median3 pt "$label" $py bench/peers/replay_torch.py $ptargs --output /dev/null)
  results+=("$label $samples $scale $s $t")
}

bench_case dense32 "$n" off \
  "--model logistic --dim 32 --optimizer adam --scale off --batch-size 256 --input $data/dense32-$n.msgpack" \
  "--dim 32 --batch-size 256 --input $data/dense32-$n.msgpack"
bench_case bin32 "$n" off \
  "--model logistic --dim 32 --optimizer adam --scale off --batch-size 256 --input $data/bin32-$n.msgpack" \
  "--dim 32 --batch-size 256 --input $data/bin32-$n.msgpack"
bench_case mlp784 "$m" off \
  "--model softmax --dim 784 --classes 10 --hidden 128 --optimizer adam --scale off --batch-size 256 --input $data/mnistlike-$m.msgpack" \
  "--dim 784 --classes 10 --hidden 128 --batch-size 256 --input $data/mnistlike-$m.msgpack"
bench_case dense32-scaled "$n" standard \
  "--model logistic --dim 32 --optimizer adam --scale standard --batch-size 256 --input $data/dense32-$n.msgpack" \
  "--dim 32 --batch-size 256 --input $data/dense32-$n.msgpack"
bench_case dense32-defaults "$n" auto \
  "--model logistic --dim 32 --batch-size 256 --input $data/dense32-$n.msgpack" \
  "--dim 32 --batch-size 256 --input $data/dense32-$n.msgpack"

# Wall, CPU and peak RSS are of the whole process (the median run's).
printf '\n%-16s %9s | %14s %8s %7s | %14s %8s %7s | %7s\n' case samples "streamlearn/s" "RSS MB" \
  "CPU s" "pytorch/s" "RSS MB" "CPU s" speedup
json="["
for r in "${results[@]}"; do
  read -r label samples scale _ swall scpu srss _ twall tcpu trss <<<"$r"
  srate=$(printf '%.0f' "$(rate_sl "$label")")
  trate=$(rate_pt "$label")
  ratio=$(printf "%.1f" "$(echo "scale=3; $srate / $trate" | bc)")
  printf '%-16s %9d | %14d %8d %7s | %14d %8d %7s | %6sx\n' "$label" "$samples" "$srate" \
    $((srss / 1024)) "$scpu" "$trate" $((trss / 1024)) "$tcpu" "$ratio"
  json+="{\"case\":\"$label\",\"samples\":$samples,\"scale\":\"$scale\",\"streamlearn\":{\"samples_per_s\":$srate,\"wall_s\":$swall,\"cpu_s\":$scpu,\"rss_kb\":$srss},\"pytorch\":{\"samples_per_s\":$trate,\"wall_s\":$twall,\"cpu_s\":$tcpu,\"rss_kb\":$trss},\"speedup\":$ratio},"
done
echo "${json%,}]" | $py bench/record.py replay "bench/replay.sh $n"
# What online scaling costs, dense32: the three settings interleaved, five
# rounds, best of each (its own loop's samples/s), so that other load on the
# machine hits all three alike. Written to bench/results/replay_scaling.json.
declare -A best=([off]=0 [standard]=0 [defaults]=0)
for round in 1 2 3 4 5; do
  for setting in off standard defaults; do
    case $setting in
      off) extra=(--optimizer adam --scale off) ;;
      standard) extra=(--optimizer adam --scale standard) ;;
      defaults) extra=() ;;
    esac
    OPENBLAS_NUM_THREADS=1 $bin replay --model logistic --dim 32 --batch-size 256 "${extra[@]}" \
      --input "$data/dense32-$n.msgpack" --output /dev/null 2>"$data/log.scaling"
    r=$(sed -n 's/.*"samples_per_s":\([0-9.e+]*\).*/\1/p' "$data/log.scaling" | tail -1)
    best[$setting]=$(awk -v a="${best[$setting]}" -v b="$r" 'BEGIN { printf "%.0f", (b > a ? b : a) }')
  done
done
awk -v off="${best[off]}" -v on="${best[standard]}" -v def="${best[defaults]}" 'BEGIN {
  printf "\nonline scaling (dense32, best of 5 interleaved): %d samples/s off, %d with --scale standard (%.0f%%), %d with the defaults (%.0f%%)\n", off, on, 100 * on / off, def, 100 * def / off
}'
awk -v off="${best[off]}" -v on="${best[standard]}" -v def="${best[defaults]}" -v n="$n" 'BEGIN {
  printf "{\"case\":\"dense32\",\"samples\":%d,\"rounds\":5,\"samples_per_s\":{\"scale_off\":%d,\"scale_standard\":%d,\"defaults\":%d},\"standard_vs_off\":%.3f,\"defaults_vs_off\":%.3f}\n", n, off, on, def, on / off, def / off
}' | $py bench/record.py replay_scaling "bench/replay.sh $n"

# Side by side with the C comparison loop (bench/msgpack_loop.c: msgpack-c's
# generic unpacker per sample, one prediction map packed per sample, no
# learning), the median of three runs of each, alternating.
rate_c() { sed -n 's/.*: \([0-9]*\) samples\/s$/\1/p' "$data/log.c-$1" | tail -1; }
printf '\n%-8s %14s %14s %8s\n' case "streamlearn/s" "msgpack-c/s" ratio
cj="["
for label in dense32 bin32; do
  f=$data/$([ $label = dense32 ] && echo "dense32-$n" || echo "bin32-$n").msgpack
  sl=() c=()
  for i in 1 2 3; do
    run "sl-$label-c$i" env OPENBLAS_NUM_THREADS=1 $bin replay --model logistic --dim 32 \
      --optimizer adam --scale off --batch-size 256 --input "$f" --output /dev/null >/dev/null
    sl+=("$(rate_sl "$label-c$i")")
    run "c-$label-$i" "$data/msgpack_loop" "$f" /dev/null >/dev/null
    c+=("$(rate_c "$label-$i")")
  done
  s_med=$(printf '%s\n' "${sl[@]}" | sort -g | sed -n 2p)
  c_med=$(printf '%s\n' "${c[@]}" | sort -g | sed -n 2p)
  ratio=$(printf "%.2f" "$(echo "scale=4; $s_med / $c_med" | bc)")
  printf '%-8s %14.0f %14.0f %7sx\n' "$label" "$s_med" "$c_med" "$ratio"
  cj+="{\"case\":\"$label\",\"samples\":$n,\"streamlearn_per_s\":$(printf '%.0f' "$s_med"),\"msgpack_c_loop_per_s\":$c_med,\"ratio\":$ratio,\"command\":\"bench/replay.sh $n\"},"
done
echo "${cj%,}]" | $py bench/record.py replay_c_loop "bench/replay.sh $n"
