#!/usr/bin/env bash
# The guarded-learning benchmark: guarded vs unguarded learning in one run on
# seeded `gen` streams (logistic, dim 32, 5% label noise, Adam, batches of
# 64), through the same decode -> batch -> learn path as `replay`
# (bench/guard_bench.c on tests/support/guardsim.c):
#   stationary     2,000,000 samples: false alarms, switches, promotions
#   sudden         400,000 samples, concept B from 200,000
#   gradual        400,000 samples, A -> B over 200,000 .. 220,000
#   poison         400,000 samples, labels flipped over 200,000 .. 250,000
#   poison-random  the same with random labels
# for ADWIN and Page-Hinkley, seeds 1..SEEDS (default 3): detection delay,
# false alarms per 1M and mean time between them, samples until the served
# accuracy is back within 0.01 of its level before the event (from the end of
# the event), and accuracy over the whole stream against the true labels and
# against the stream's own (River's prequential measure; they differ only
# under poison). Then the learning step's CPU per sample (plain, guard with 0
# and with 2 challengers) beside `streamlearn replay`'s whole CPU per sample
# on the same stream, to project the cost in replay.
#   bench/guard.sh [SEEDS]      writes bench/results/guard.json and prints the table
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-3}
py=/usr/bin/python3
data=${BENCH_DATA:-/tmp/streamlearn-bench}/guard
rm -rf "$data"
mkdir -p "$data" bench/results

cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench -j2 --target slcore streamlearn >/dev/null
# shellcheck disable=SC2046
gcc -O2 -std=c11 -D_GNU_SOURCE -I. bench/guard_bench.c tests/support/guardsim.c \
  build/bench/libslcore.a \
  $(pkg-config --cflags --libs hiredis msgpack openblas libxxhash libcjson rdkafka inih) \
  $(pkg-config --libs libmicrohttpd 2>/dev/null || true) -lpthread -lm -o "$data/guard_bench"

out="$data/results.jsonl"
for det in adwin ph; do
  for seed in $(seq "$seeds"); do
    for sc in stationary sudden gradual poison poison-random; do
      OPENBLAS_NUM_THREADS=1 "$data/guard_bench" "$sc" 0 "$seed" "$det" >>"$out"
    done
  done
done
OPENBLAS_NUM_THREADS=1 "$data/guard_bench" cpu 1000000 1 adwin >>"$out"
OPENBLAS_NUM_THREADS=1 "$data/guard_bench" cpu 1000000 1 ph >>"$out"

# replay's whole CPU per sample on the same stream (best of 3)
bin=build/bench/streamlearn
$bin gen --samples 1000000 --seed 1 --dim 32 --output "$data/d32.msgpack" 2>/dev/null
best=""
for _ in 1 2 3; do
  /usr/bin/time -f "%U %S" -o "$data/time" env OPENBLAS_NUM_THREADS=1 $bin replay \
    --model logistic --dim 32 --optimizer adam --batch-size 64 \
    --input "$data/d32.msgpack" --output /dev/null 2>/dev/null
  t=$(awk '{print ($1 + $2) * 1000}' "$data/time") # ns per sample for 1e6 samples
  if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a < b)}'; then best=$t; fi
done
echo "{\"scenario\":\"replay\",\"ns_per_sample\":$best}" >>"$out"

$py - "$out" "$out.raw.json" <<'EOF'
import json, math, platform, statistics, sys
rows = [json.loads(l.replace("inf", "1e999").replace("nan", "NaN")) for l in open(sys.argv[1])]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def fmt(v, p=0):
    if v is None or (isinstance(v, float) and (math.isinf(v) or math.isnan(v))):
        return "-"
    return f"{v:.{p}f}" if p else f"{v:,.0f}"
table = []
print("| detector | stream | arm | accuracy (true labels) | accuracy (stream labels) | detection delay | "
      "false alarms / 1M | recovery (samples) | alarms | promotions | switches |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for det in ("adwin", "ph"):
    for sc in ("stationary", "sudden", "gradual", "poison", "poison-random"):
        for g in (False, True):
            rs = [r for r in rows if r.get("detector") == det and r["scenario"] == sc and r.get("guarded") == g]
            if not rs:
                continue
            agg = {k: med([r[k] for r in rs]) for k in ("accuracy", "accuracy_labels", "detection_delay",
                   "false_alarms_per_1M", "recovery_samples", "alarms", "promotions", "switches")}
            agg.update(detector=det, scenario=sc, guarded=g, seeds=len(rs))
            table.append(agg)
            print(f"| {det} | {sc} | {'guarded' if g else 'unguarded'} | {fmt(agg['accuracy'], 4)} | "
                  f"{fmt(agg['accuracy_labels'], 4)} | {fmt(agg['detection_delay']) if g else '-'} | "
                  f"{fmt(agg['false_alarms_per_1M'], 2) if g else '-'} | {fmt(agg['recovery_samples'])} | "
                  f"{fmt(agg['alarms'])} | {fmt(agg['promotions'])} | {fmt(agg['switches'])} |")
replay = next(r["ns_per_sample"] for r in rows if r["scenario"] == "replay")
print()
print("| detector | learning step, ns/sample: plain | guard, 0 challengers | guard, 2 challengers | "
      "replay ns/sample | projected replay with 2 challengers vs without guard | vs guard with 0 |")
print("| --- | --- | --- | --- | --- | --- | --- |")
cpu = []
for r in rows:
    if r["scenario"] != "cpu":
        continue
    plain, g0, g2 = r["ns_per_sample_plain"], r["ns_per_sample_guard0"], r["ns_per_sample_guard2"]
    vs_plain = (replay - plain + g2) / replay
    vs_g0 = (replay - plain + g2) / (replay - plain + g0)
    cpu.append(dict(r, replay_ns_per_sample=replay, projected_ratio=vs_plain, projected_ratio_vs_guard0=vs_g0))
    print(f"| {r['detector']} | {plain:.0f} | {g0:.0f} | {g2:.0f} | {replay:.0f} | {vs_plain:.2f}x | {vs_g0:.2f}x |")
json.dump({"seeds": max(t["seeds"] for t in table), "table": table, "cpu": cpu},
          open(sys.argv[2], "w"), indent=1)
EOF
$py bench/record.py guard "bench/guard.sh $*" "$out.raw.json"
