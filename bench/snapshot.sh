#!/usr/bin/env bash
# The snapshot benchmark (issue: snapshots), against a throwaway redis-server
# on loopback, for logistic models of 1e3, 1e5 and 1e7 parameters with Adam
# state (a blob of ~12 bytes per parameter):
#   streamlearn (bench/snapshot_bench.c, the store's own functions):
#     pause    the worker thread's share: sl_learner_copy into the store's spare
#              learner (a memcpy; the writer thread does the rest while
#              training goes on);
#     publish  the writer thread's share: sl_learner_save + sl_snapshot_describe
#              of the copy, then sl_snapshot_publish: chunks, metadata, the
#              atomic Lua publish;
#     load     sl_snapshot_load: read, verify the xxh64 checksum, rebuild the learner;
#   ceiling: one SET / one GET of the same bytes on the same hiredis connection;
#   PyTorch peer (bench/peers/snapshot_torch.py): torch.save of the model's and
#     Adam's state_dict into a BytesIO + redis-py SET; GET + torch.load +
#     load_state_dict. The training loop waits for all of it.
# Each figure is the median of several repeats.
#   bench/snapshot.sh      writes bench/results/snapshot.json
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3
data=${BENCH_DATA:-/tmp/streamlearn-bench}/snapshot
rm -rf "$data"
mkdir -p "$data" bench/results

cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench -j2 --target slcore >/dev/null
# shellcheck disable=SC2046
gcc -O2 -std=c11 -D_GNU_SOURCE -I. bench/snapshot_bench.c build/bench/libslcore.a \
  $(pkg-config --cflags --libs hiredis msgpack openblas libxxhash libcjson rdkafka inih) \
  $(pkg-config --libs libmicrohttpd 2>/dev/null || true) -lpthread -lm -o "$data/snapshot_bench"

port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$data" \
  >"$data/redis.log" 2>&1 &
rs=$!
trap 'kill $rs 2>/dev/null || true; wait $rs 2>/dev/null || true' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
url="redis://127.0.0.1:$port"

: >"$data/sl.jsonl"
: >"$data/pt.jsonl"
for case in 1000:20 100000:10 10000000:3; do
  params=${case%:*} repeats=${case#*:}
  "$data/snapshot_bench" "$url" "$params" "$repeats" 2>>"$data/sl.log" >>"$data/sl.jsonl"
  $py bench/peers/snapshot_torch.py "$url" "$params" "$repeats" >>"$data/pt.jsonl"
done

$py - "$data/sl.jsonl" "$data/pt.jsonl" "$data/snapshot.json" <<'EOF'
import json, sys
sl = [json.loads(l) for l in open(sys.argv[1])]
pt = [json.loads(l) for l in open(sys.argv[2])]
rows = []
print("\n%10s %11s | %9s %10s %9s | %8s %8s | %11s %10s | %12s %10s"
      % ("params", "blob bytes", "pause ms", "publish ms", "load ms", "SET ms", "GET ms",
         "torch save", "torch load", "pause/save", "load/load"))
for s, p in zip(sl, pt):
    row = {"params": s["params"], "streamlearn": s, "pytorch": p,
           "pause_vs_torch_save": round(s["pause_ms"] / p["save_ms"], 3),
           "publish_vs_redis_set": round(s["publish_ms"] / s["redis_set_ms"], 2),
           "load_vs_torch_load": round(s["load_ms"] / p["load_ms"], 3)}
    rows.append(row)
    print("%10d %11d | %9.3f %10.3f %9.3f | %8.3f %8.3f | %11.3f %10.3f | %11.3fx %9.3fx"
          % (s["params"], s["bytes"], s["pause_ms"], s["publish_ms"], s["load_ms"],
             s["redis_set_ms"], s["redis_get_ms"], p["save_ms"], p["load_ms"],
             row["pause_vs_torch_save"], row["load_vs_torch_load"]))
json.dump(rows, open(sys.argv[3], "w"))
EOF
$py bench/record.py snapshot "bench/snapshot.sh" "$data/snapshot.json"
