#!/usr/bin/env bash
# The Kafka benchmark, on `streamlearn dev-kafka` and a throwaway redis-server:
#   1. 300,000 pre-produced samples (dim 32, one per message) on 32 partitions,
#      consumed by: `streamlearn run` (logistic, Adam, batch 256, snapshots to
#      Redis every 100 batches and every 2 s, the defaults' and the latency
#      run's settings), the PyTorch worker (bench/peers/worker_torch.py:
#      confluent-kafka + msgpack + torch) and a bare librdkafka
#      consume->produce loop (bench/bare_loop.c, the floor; its producer
#      queue holds all N outputs: at the default 100,000 it fills while the
#      loop drains the prefetched input faster than the mock broker takes
#      outputs, and then stalls ~0.5 s, so the floor would be slower than
#      what a bare loop can do here). ROUNDS rounds
#      (default 5), the sides alternating; best and median round per side.
#      Two figures per side:
#        steady state: from the process's first output to its last (the
#          outputs' timestamps), and the CPU it used between them (sampled from
#          /proc every 10 ms): what the worker costs once running;
#        whole process: from start until the last output is on the topic, and
#          all its CPU: includes the ~4 s group join and, for PyTorch, the
#          ~1.5 CPU-seconds of `import torch`.
#      The 1-minute load average before each run is kept: other work on the
#      machine moves these figures.
#   2. bench/latency.sh for LATENCY_S seconds (default 30; 0 skips it; the
#      issue's five-minute run is `bench/latency.sh 300`, which writes
#      bench/results/latency.json): latency at 20,000 samples/s offered.
#   bench/kafka.sh [N]     (default 300000); writes bench/results/kafka.json
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300000}
rounds=${ROUNDS:-5}
lat_s=${LATENCY_S:-30}
py=/usr/bin/python3
tools=bench/kafka_tools.py
data=${BENCH_DATA:-/tmp/streamlearn-bench}/kafka
rm -rf "$data"; mkdir -p "$data" bench/results

if [ -n "${BENCH_BIN:-}" ]; then # another build, e.g. to compare two versions
  bin=$BENCH_BIN
else
  cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/bench -j2 --target streamlearn >/dev/null
  bin=$(pwd)/build/bench/streamlearn
fi
gcc -O2 -std=c11 -D_GNU_SOURCE bench/bare_loop.c $(pkg-config --cflags --libs rdkafka) -o "$data/bare_loop"

topics=in:32
for r in $(seq "$rounds"); do topics+=",out-sl$r:32,out-pt$r:32,out-bare$r:32"; done
"$bin" dev-kafka --topics "$topics" --bootstrap-file "$data/bootstrap" >/dev/null 2>"$data/dev-kafka.log" &
dk=$!
rport=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$data/redis.log" 2>&1 &
rs=$!
trap 'kill $dk $rs 2>/dev/null || true' EXIT
for _ in $(seq 300); do [ -s "$data/bootstrap" ] && break; sleep 0.1; done
bs=$(cat "$data/bootstrap")
redis="redis://127.0.0.1:$rport"
"$bin" gen --dim 32 --samples "$n" --seed 1 --brokers "$bs" --topic in 2>/dev/null

# measure NAME OUT_TOPIC STOP(yes|no) CMD...: prints
#   NAME steady_wall steady_cpu whole_wall whole_cpu rss_kb loadavg_1m
measure() {
  local name=$1 out=$2 stop=$3; shift 3
  local t0 t1 pid child load
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S %M" -o "$data/time.$name" "$@" >/dev/null 2>"$data/log.$name" &
  pid=$!
  for _ in $(seq 100); do child=$(pgrep -P "$pid" | head -1) && [ -n "$child" ] && break; sleep 0.01; done
  $py $tools sample "$child" "$data/cpu.$name" &
  local sampler=$!
  $py $tools wait "$bs" "$out" "$n" 600 >/dev/null
  t1=$(date +%s.%N)
  [ "$stop" = yes ] && kill -TERM "$child" || true
  wait "$pid"; wait "$sampler" || true
  read -r user sys rss < "$data/time.$name"
  local st
  st=$($py $tools steady "$bs" "$out" "$data/cpu.$name")
  rm -f "$data/cpu.$name"
  $py -c 'import json,sys; s=json.loads(sys.argv[1]); print(sys.argv[2], s["wall_s"], s["cpu_s"], *sys.argv[3:])' \
    "$st" "$name" "$(echo "$t1 - $t0" | bc)" "$(echo "$user + $sys" | bc)" "$rss" "$load"
}

common="--brokers $bs --input-topic in --dim 32 --batch-size 256"
: > "$data/rounds"
for r in $(seq "$rounds"); do
  measure streamlearn "out-sl$r" yes "$bin" run $common --group "g-sl$r" --output-topic "out-sl$r" \
    --model logistic --optimizer adam --redis "$redis" --model-name "bench$r" \
    --snapshot-every-ms 2000 >> "$data/rounds"
  measure bare "out-bare$r" no "$data/bare_loop" "$bs" "g-bare$r" in "out-bare$r" "$n" \
    producer.queue.buffering.max.messages=1000000 >> "$data/rounds"
  measure pytorch "out-pt$r" no $py bench/peers/worker_torch.py $common --group "g-pt$r" \
    --output-topic "out-pt$r" --samples "$n" >> "$data/rounds"
done
kill $dk $rs 2>/dev/null || true
wait $dk $rs 2>/dev/null || true

lat=null
if [ "$lat_s" -gt 0 ]; then
  bench/latency.sh "$lat_s" "$data/latency.json"
  lat=$(cat "$data/latency.json")
fi

$py - "$n" "$data/rounds" "$lat" "$data/kafka_raw.json" <<'PY'
import json, os, statistics, sys, time
n, rounds, lat, raw = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
runs = {}
for line in open(rounds):
    name, sw, sc, ww, wc, rss, load = line.split()
    runs.setdefault(name, []).append({"steady_wall_s": float(sw), "steady_cpu_s": float(sc),
                                      "wall_s": float(ww), "cpu_s": float(wc), "rss_kb": int(rss),
                                      "loadavg_1m": float(load)})
figures = ("steady_wall_s", "steady_cpu_s", "wall_s", "cpu_s", "rss_kb")
best, median = {}, {}
for name, rs in runs.items():
    best[name] = {k: min(r[k] for r in rs) for k in figures}  # best of the rounds, per figure
    best[name].update(name=name, rounds=rs)
    median[name] = {k: statistics.median(r[k] for r in rs) for k in figures}

def table(title, t):
    print(f"\n{title}")
    print(f"{'':12} {'steady state (first output to last)':>38}   {'whole process':>30}")
    print(f"{'worker':12} {'wall s':>9} {'CPU s':>8} {'CPU us/smp':>11} {'smp/s':>8}   {'wall s':>8} {'CPU s':>7} {'CPU us/smp':>11} {'RSS MB':>7}")
    for name in ("streamlearn", "bare", "pytorch"):
        b = t[name]
        print(f"{name:12} {b['steady_wall_s']:9.3f} {b['steady_cpu_s']:8.3f} {b['steady_cpu_s']*1e6/n:11.2f} "
              f"{n/b['steady_wall_s']:8.0f}   {b['wall_s']:8.2f} {b['cpu_s']:7.2f} {b['cpu_s']*1e6/n:11.2f} {int(b['rss_kb'])//1024:7d}")

def ratios(t):
    sl, bare, pt = t["streamlearn"], t["bare"], t["pytorch"]
    return {"steady_cpu_vs_bare": round(sl["steady_cpu_s"] / bare["steady_cpu_s"], 3),
            "steady_wall_vs_bare": round(sl["steady_wall_s"] / bare["steady_wall_s"], 3),
            "steady_cpu_vs_pytorch": round(sl["steady_cpu_s"] / pt["steady_cpu_s"], 3),
            "steady_wall_vs_pytorch": round(sl["steady_wall_s"] / pt["steady_wall_s"], 3),
            "whole_cpu_vs_pytorch": round(sl["cpu_s"] / pt["cpu_s"], 3)}

k = len(runs["bare"])
table(f"best of {k} rounds (per figure)", best)
table(f"median of {k} rounds", median)
rb, rm = ratios(best), ratios(median)
for label, r in (("best", rb), ("median", rm)):
    print(f"{label}: streamlearn steady-state CPU/sample = {r['steady_cpu_vs_bare']:.2f}x the bare loop's, "
          f"wall = {r['steady_wall_vs_bare']:.2f}x; CPU = {r['steady_cpu_vs_pytorch']:.2f}x the PyTorch worker's")
loads = [r["loadavg_1m"] for rs in runs.values() for r in rs]
print(f"1-min load average before the runs: {min(loads):.2f} to {max(loads):.2f} on {os.cpu_count()} cores")
if lat:
    print(f"latency at 20000 samples/s for {lat['seconds']} s: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, "
          f"max {lat['max_ms']} ms (bare loop alongside: p99 {lat['bare']['p99_ms']} ms)")
json.dump({"samples": n, "workers": [best[k] for k in ("streamlearn", "pytorch", "bare")],
           "median": median, "ratios": rb, "ratios_median": rm, "latency": lat},
          open(raw, "w"), indent=1)
PY
$py bench/record.py kafka "bench/kafka.sh $* (ROUNDS=$rounds LATENCY_S=$lat_s)" "$data/kafka_raw.json"
