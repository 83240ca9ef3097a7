#!/usr/bin/env bash
# Latency of `streamlearn run` at 20,000 samples/s offered, on `streamlearn
# dev-kafka` and a throwaway redis-server:
#   - `streamlearn gen --rate 20000` produces dim-32 samples (one per
#     message) for SECONDS seconds to lat-in;
#   - `streamlearn run` (logistic, Adam, batch 256, --linger-ms 20, snapshots
#     to Redis every 2 s) reads them in one group and writes lat-sl, and, at
#     the same time on the same input, the bare consume->produce loop
#     (bench/bare_loop.c) reads them in another group and writes lat-bare:
#     the floor under the same broker and machine load;
#   - bench/latency_reader.c reads the three topics while they are written
#     (the mock broker keeps only ~5 MB per partition) and reports, from each
#     input message's timestamp to its output's, p50/p90/p99/p99.9/max per
#     loop, per 10 s window, and the worker's output time minus the bare
#     loop's for the same message (what the worker adds).
# Timestamps are the producers' create times: gen's when it sends a sample,
# the loop's when it queues the output (the output's own linger and
# delivery come after). Both consumers set fetch.wait.max.ms=10: librdkafka
# 2.0.2's mock broker holds a fetch that finds nothing for that long even
# when data arrives (a real broker answers at once). PARTITIONS (default 4,
# as `--brokers embedded` makes them) per topic: the mock broker runs on one
# thread and pays per produce request, which at 20,000/s grows with the
# partition count; at 32 it takes most of a core here. The 1-minute load
# average is sampled every 10 s.
#   bench/latency.sh [SECONDS] [OUT_JSON]   (defaults 300, bench/results/latency.json)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
out=${2:-bench/results/latency.json}
parts=${PARTITIONS:-4}
rate=${RATE:-20000}
linger=20
snap_ms=2000
py=/usr/bin/python3
data=${BENCH_DATA:-/tmp/streamlearn-bench}/latency
rm -rf "$data"; mkdir -p "$data" "$(dirname "$out")"

if [ -n "${BENCH_BIN:-}" ]; then # another build, e.g. to compare two versions
  bin=$BENCH_BIN
else
  cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/bench -j2 --target streamlearn >/dev/null
  bin=$(pwd)/build/bench/streamlearn
fi
rdk=$(pkg-config --cflags --libs rdkafka)
gcc -O2 -std=c11 -D_GNU_SOURCE bench/bare_loop.c $rdk -o "$data/bare_loop"
gcc -O2 -std=c11 -D_GNU_SOURCE ${READER_CFLAGS:-} bench/latency_reader.c $rdk -o "$data/latency_reader"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$bin" dev-kafka --topics "lat-in:$parts,lat-sl:$parts,lat-bare:$parts" \
  --bootstrap-file "$data/bootstrap" >/dev/null 2>"$data/dev-kafka.log" &
pids+=($!)
rport=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$data/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$data/bootstrap" ] && break; sleep 0.1; done
bs=$(cat "$data/bootstrap")
n=$((rate * secs))

"$bin" run --brokers "$bs" --group g-lat --input-topic lat-in --output-topic lat-sl --dim 32 \
  --model logistic --optimizer adam --batch-size 256 --linger-ms "$linger" \
  --kafka-opt consumer.fetch.wait.max.ms=10 --redis "redis://127.0.0.1:$rport" --model-name lat \
  --snapshot-every-ms "$snap_ms" --snapshot-every-batches 0 >/dev/null 2>"$data/log.streamlearn" &
worker=$!
pids+=($worker)
"$data/bare_loop" "$bs" g-lat-bare lat-in lat-bare "$n" fetch.wait.max.ms=10 \
  2>"$data/log.bare" &
bare=$!
pids+=($bare)
# Offer load only once both groups have their partitions: samples sent
# before that wait for the join, which is start-up, not steady state.
for _ in $(seq 300); do
  grep -q 'partitions assigned' "$data/log.streamlearn" && grep -q assigned "$data/log.bare" && break
  sleep 0.1
done
"$data/latency_reader" "$bs" lat-in "$n" $((secs * 2 + 60)) lat-sl lat-bare >"$data/reader.json" &
reader=$!
(while kill -0 "$reader" 2>/dev/null; do cut -d' ' -f1 /proc/loadavg; sleep 10; done) >"$data/loadavg" &
sampler=$!
"$bin" gen --dim 32 --samples "$n" --seed 2 --rate "$rate" --brokers "$bs" --topic lat-in \
  2>"$data/log.gen"
wait "$reader"
wait "$sampler" || true
kill -TERM "$worker"; wait "$worker" || true
kill "$bare" 2>/dev/null || true; wait "$bare" 2>/dev/null || true
snaps=$(grep -c '"snapshot published"' "$data/log.streamlearn" || true)

$py - "$data/reader.json" "$data/loadavg" "$data/latency_raw.json" "$secs" "$parts" "$snaps" "bench/latency.sh $*" "$rate" <<'PY'
import json, os, sys, time
reader, loadavg, out = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
secs, parts, snaps, rate = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[8])
command = sys.argv[7].strip()
sl, bare = reader["outputs"]["lat-sl"], reader["outputs"]["lat-bare"]
res = {
    "command": command,
    "what": "ms from each input message's create time (gen) to its output's (the loop queueing it)",
    "seconds": secs, "offered_per_s": rate, "expected": reader["expected"], "partitions": parts,
    "linger_ms": 20, "batch_size": 256, "snapshot_every_ms": 2000, "snapshots_published": snaps,
    "fetch_wait_max_ms": 10, "windows_s": reader["windows_s"],
    # the worker's figures at the top level (bench/run_all.sh reads p50_ms and p99_ms)
    **{k: sl[k] for k in ("n", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "windows")},
    "bare": bare,
    "streamlearn_minus_bare": reader.get("first_minus_second"),
    "loadavg_1m": [float(x) for x in open(loadavg).read().split()],
}
json.dump(res, open(out, "w"), indent=1)
d = res["streamlearn_minus_bare"] or {}
print(f"latency at {rate} samples/s for {secs} s ({parts} partitions, linger 20 ms, "
      f"{snaps} snapshots published), ms from input to output timestamp:")
print(f"{'':22} {'n':>9} {'p50':>5} {'p90':>5} {'p99':>5} {'p99.9':>6} {'max':>5}")
for name, s in (("streamlearn run", sl), ("bare loop (floor)", bare), ("run minus bare", d)):
    if s:
        print(f"{name:22} {s['n']:9d} {s['p50_ms']:5d} {s['p90_ms']:5d} {s['p99_ms']:5d} "
              f"{s['p999_ms']:6d} {s['max_ms']:5d}")
la = res["loadavg_1m"]
if la:
    print(f"1-min load average during the run: {min(la):.2f} to {max(la):.2f} on {os.cpu_count()} cores")
PY
if [ "$out" = bench/results/latency.json ]; then
  $py bench/record.py latency "bench/latency.sh $*" "$data/latency_raw.json"
else
  cp "$data/latency_raw.json" "$out" && echo "wrote $out"
fi
