#!/usr/bin/env bash
# The replay benchmark: `streamlearn replay` side by side, over the same file,
# with
#   - the PyTorch peer (bench/peers/replay_torch.py: the same test-then-train
#     loop a PyTorch user writes, one thread), and
#   - a C loop through msgpack-c's generic unpacker that packs one prediction
#     map per sample and learns nothing (bench/msgpack_loop.c): what decode +
#     encode cost through msgpack-c, a floor that does not swing with PyTorch.
#   bench/replay.sh [N]          N samples (default 1000000); ROUNDS (default 5)
# Cases: dense32 (1M {"id", "x": [32 float32], "y"}, logistic, Adam, batch 256;
# streamlearn with --scale off: the PyTorch loop exactly),
# bin32 (the same with x as a float32 bin) and mlp784 (N/10 samples, softmax
# 784-128-10 on bin features; no msgpack-c loop: learning dominates there).
# The sides alternate within each round; each side's figure is its best round
# (the machine is shared: single runs move by up to 2x), with every round's
# rate kept in the JSON. samples/s is each program's own timing of its loop
# (file open to last prediction written), so start-up (Python's import torch)
# is not counted; wall, CPU and peak RSS are the whole process's (CPU and wall
# of the best round, RSS the largest of all rounds).
# Needs /usr/bin/python3 with torch and msgpack (python3-torch, python3-msgpack).
# Prints a table with ratios and writes bench/results/replay.json (bench/record.py);
# then bench/replay_scaling.sh measures what online scaling (the default) costs.
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

# side_cmd SIDE CASE: the command line of one side for one case.
side_cmd() {
  local f
  case $2 in
    dense32) f=$data/dense32-$n.msgpack ;;
    bin32) f=$data/bin32-$n.msgpack ;;
    mlp784) f=$data/mnistlike-$m.msgpack ;;
  esac
  case $1-$2 in
    sl-mlp784) echo "env OPENBLAS_NUM_THREADS=1 $bin replay --model softmax --dim 784 --classes 10 \
--hidden 128 --optimizer adam --scale off --batch-size 256 --input $f --output /dev/null" ;;
    sl-*) echo "env OPENBLAS_NUM_THREADS=1 $bin replay --model logistic --dim 32 --optimizer adam \
--scale off --batch-size 256 --input $f --output /dev/null" ;;
    pt-mlp784) echo "$py bench/peers/replay_torch.py --dim 784 --classes 10 --hidden 128 \
--batch-size 256 --input $f --output /dev/null" ;;
    pt-*) echo "$py bench/peers/replay_torch.py --dim 32 --batch-size 256 --input $f --output /dev/null" ;;
    c-*) echo "$data/msgpack_loop $f /dev/null" ;;
  esac
}

# rate SIDE LOG: the samples/s a side printed about its own loop.
rate() {
  case $1 in
    sl) sed -n 's/.*"samples_per_s":\([0-9.e+]*\).*/\1/p' "$2" | tail -1 | xargs printf '%.0f' ;;
    pt) sed -n 's/.* \([0-9]*\) samples\/s$/\1/p' "$2" | tail -1 ;;
    c) sed -n 's/.*: \([0-9]*\) samples\/s$/\1/p' "$2" | tail -1 ;;
  esac
}

# run SIDE CASE ROUND: runs one side once; prints "rate wall cpu rss".
run() {
  local log=$data/log.$1-$2-$3 tm=$data/time.$1-$2-$3
  # shellcheck disable=SC2046
  /usr/bin/time -f "%e %U %S %M" -o "$tm" $(side_cmd "$1" "$2") 2>"$log" >/dev/null ||
    { echo "$1 $2 failed:" >&2; tail -5 "$log" >&2; exit 1; }
  local wall user sys rss
  read -r wall user sys rss < "$tm"
  echo "$(rate "$1" "$log") $wall $(echo "$user + $sys" | bc) $rss"
}

json="["
printf '\n%-7s %-12s %12s %8s %7s %7s   %s\n' case side "samples/s" "wall s" "CPU s" "RSS MB" \
  "rounds (samples/s)"
for label in dense32 bin32 mlp784; do
  sides="sl c pt"
  [ "$label" = mlp784 ] && sides="sl pt"
  load=$(cut -d' ' -f1 /proc/loadavg)
  declare -A best=() rates=() rss=()
  for r in $(seq "$rounds"); do
    for s in $sides; do
      read -r rt wall cpu kb <<<"$(run "$s" "$label" "$r")"
      rates[$s]+="${rates[$s]:+,}$rt"
      [ "${rss[$s]:-0}" -lt "$kb" ] && rss[$s]=$kb
      read -r brt _ <<<"${best[$s]:-0}"
      [ "$rt" -gt "$brt" ] && best[$s]="$rt $wall $cpu"
    done
  done
  obj="{\"case\":\"$label\",\"samples\":$([ $label = mlp784 ] && echo $m || echo $n),\"rounds\":$rounds,\"load_avg_at_start\":$load"
  for s in $sides; do
    read -r brt bwall bcpu <<<"${best[$s]}"
    name=$(case $s in sl) echo streamlearn ;; pt) echo pytorch ;; c) echo msgpack_c_loop ;; esac)
    printf '%-7s %-12s %12d %8s %7.2f %7d   %s\n' "$label" "$name" "$brt" "$bwall" "$bcpu" \
      $((rss[$s] / 1024)) "${rates[$s]}"
    obj+=",\"$name\":{\"samples_per_s\":$brt,\"wall_s\":$bwall,\"cpu_s\":$(printf '%.2f' "$bcpu"),\"rss_kb\":${rss[$s]},\"rounds_samples_per_s\":[${rates[$s]}],\"command\":\"$(side_cmd "$s" "$label" | sed "s|$data|\$BENCH_DATA|g; s|$bin|build/bench/streamlearn|")\"}"
  done
  read -r sl_rate _ <<<"${best[sl]}"
  read -r pt_rate _ <<<"${best[pt]}"
  obj+=",\"speedup\":$(printf '%.1f' "$(echo "scale=3; $sl_rate / $pt_rate" | bc)")"
  if [ "$label" != mlp784 ]; then
    read -r c_rate _ <<<"${best[c]}"
    obj+=",\"vs_msgpack_c_loop\":$(printf '%.2f' "$(echo "scale=4; $sl_rate / $c_rate" | bc)")"
  fi
  json+="$obj,\"command\":\"bench/replay.sh $n\"},"
  unset best rates rss
done
echo "${json%,}]" | $py bench/record.py replay "bench/replay.sh $n"

# The ratios, from the JSON just written.
$py - <<'EOF'
import json
print("\n%-7s %14s %14s %14s %10s %10s" % ("case", "streamlearn/s", "msgpack-c/s", "pytorch/s",
                                           "vs msgpack", "vs torch"))
for r in json.load(open("bench/results/replay.json"))["results"]:
    c = r.get("msgpack_c_loop", {}).get("samples_per_s")
    print("%-7s %14d %14s %14d %10s %9.1fx" % (
        r["case"], r["streamlearn"]["samples_per_s"], c if c else "-",
        r["pytorch"]["samples_per_s"], "%.2fx" % r["vs_msgpack_c_loop"] if c else "-", r["speedup"]))
EOF

bench/replay_scaling.sh "$n"
