#!/usr/bin/env bash
# The Quick start's first command: installs what is missing, builds Release,
# and runs the worker end to end on the embedded default, with nothing else
# installed or running:
#   - a throwaway redis-server on a free loopback port, in a temp dir, no persistence;
#   - `streamlearn dev-kafka` (the embedded Kafka-protocol cluster);
#   - `streamlearn gen` producing a labelled softmax stream (dim 16, 3 classes)
#     at a fixed rate, whose concept changes suddenly halfway;
#   - `streamlearn run` (softmax 16-32-3, Adam) predicting then training,
#     snapshotting to Redis every 2 s;
#   - a live progress line from the worker's stats lines (samples/s, prequential
#     accuracy over the last 5000 labelled samples, model version, lag);
#   - at 60% of the stream, `streamlearn models pin V` and `rollback V` to the last version
#     taken before the drift, while the worker runs: it switches and trains on from V;
#   - a summary: samples, accuracy before and after the drift, `models list`.
# It stops by itself (about a minute; `--quick`: a few seconds), exits 0, and
# leaves nothing running.
#   scripts/demo.sh [--quick] [--samples N] [--rate R] [--bin PATH]
#     --quick        100,000 samples, snapshots every 500 ms (what CI runs)
#     --samples N    stream length (default 1,200,000)
#     --rate R       samples/s offered by gen (default 25,000)
#     --bin PATH     use this streamlearn binary, skip install and build
#                    (also STREAMLEARN_BIN=PATH)
set -euo pipefail
cd "$(dirname "$0")/.."

samples=1200000
rate=25000
snap_ms=2000
stats_ms=1000
bin=${STREAMLEARN_BIN:-}
usage() { sed -n 's/^#   \{0,1\}//p' "$0" | sed -n '/^scripts\/demo.sh/,$p'; }
while [ $# -gt 0 ]; do
  case $1 in
    --quick) samples=100000; rate=20000; snap_ms=500; stats_ms=500 ;;
    --samples) samples=${2:?--samples needs a number}; shift ;;
    --rate) rate=${2:?--rate needs a number}; shift ;;
    --bin) bin=${2:?--bin needs a path}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case $samples in '' | *[!0-9]*) echo "demo.sh: --samples: not a number: $samples" >&2; exit 2 ;; esac
[ "$samples" -ge 10000 ] || { echo "demo.sh: --samples: at least 10000" >&2; exit 2; }
drift=$((samples / 2))
rollback_at=$((samples * 6 / 10))
py=/usr/bin/python3

if [ -z "$bin" ]; then
  scripts/install-deps.sh
  echo "== building (Release)"
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release -j"$(nproc)" --target streamlearn >/dev/null
  bin=build/release/streamlearn
fi
[ -x "$bin" ] || { echo "demo.sh: no streamlearn binary at $bin" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

work=$(mktemp -d /tmp/streamlearn-demo.XXXXXX)
pids=()
cleanup() { # TERM everything started here; KILL what is still up after 20 s
  local p i
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for i in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
failed() { # what went wrong, from the worker's log (stats lines left out)
  echo "demo.sh: $1; the worker's last events:" >&2
  grep -v '"msg":"stats"' "$work/run.log" | tail -n 15 >&2
  exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The monitor: follows the worker's JSON log, keeps one progress line, rolls
# back once, and knows when every sample is in.
cat >"$work/monitor.py" <<'EOF'
import json, os, subprocess, sys, time

log, n, drift, rollback_at, bin_, url, name, deadline, snap_ms = sys.argv[1:10]
n, drift, rollback_at, deadline = int(n), int(drift), int(rollback_at), float(deadline)
snap_s = int(snap_ms) / 1000.0
all_in = None  # when every sample had been trained
tty = sys.stdout.isatty()
models = [bin_, "models", "--redis", url, "--model-name", name]
state = {"before": None, "rolled_back_to": None, "head_before_rollback": None,
         "switched": False, "parent_after": None, "last": None}

def say(line, quiet):
    if tty:
        sys.stdout.write("\r\033[K" + line)
    elif not quiet:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()

def event(line):
    if tty:
        sys.stdout.write("\r\033[K")
    print(line, flush=True)

def rollback(head):
    state["rollback_tried"] = True
    out = subprocess.run(models + ["list", "--json"], check=True, capture_output=True, text=True).stdout
    # a version retention dropped between list and read shows with samples null
    versions = [v for v in json.loads(out) if v.get("samples") is not None]
    head = next((v["version"] for v in versions if v["head"]), head)
    older = [v for v in versions if v["samples"] <= drift and v["version"] != head]
    if not older:
        older = [v for v in versions if v["version"] != head]
    if not older:
        event("   (no earlier version to roll back to)")
        return
    target = older[0]
    # pinned, so retention keeps it in the list below beside its descendants
    subprocess.run(models + ["pin", str(target["version"])], check=True, capture_output=True, text=True)
    out = subprocess.run(models + ["rollback", str(target["version"]), "--reason", "demo", "--json"],
                         check=True, capture_output=True, text=True).stdout
    head = json.loads(out)["from"]  # head as Redis had it: the worker may be a snapshot ahead of its stats
    state["rolled_back_to"] = target["version"]
    state["head_before_rollback"] = head
    state["target_step"] = target["step"]
    event("== models pin %d; models rollback %d --reason demo   (head was %d; %d trained samples in %d, step %d)"
          % (target["version"], target["version"], head, target["samples"], target["version"],
             target["step"]))

f = None
while f is None:
    try:
        f = open(log)
    except FileNotFoundError:
        time.sleep(0.1)
buf = ""
while True:
    if time.time() > deadline:
        event("== demo: timed out waiting for the worker")
        sys.exit(1)
    chunk = f.read()
    if not chunk:
        time.sleep(0.1)
        continue
    buf += chunk
    *lines, buf = buf.split("\n")
    for line in lines:
        try:
            j = json.loads(line)
        except ValueError:
            continue
        msg = j.get("msg")
        # The worker logs the switch itself; a stats line may never show V when
        # the next snapshot lands within one stats period.
        if msg == "head changed: switching to it" and state["rolled_back_to"] and not state["switched"] \
                and j.get("version") == state["rolled_back_to"]:
            state["switched"] = True
            event("== the running worker switched to version %d without a restart (its step %d)"
                  % (j["version"], state["target_step"]))
            continue
        if msg == "snapshot published" and state["switched"] and state["parent_after"] is None \
                and j["parent"] == state["rolled_back_to"]:
            state["parent_after"] = (j["version"], j["parent"])
            event("== snapshot %d published with parent %d: training goes on from the rolled-back version"
                  % (j["version"], j["parent"]))
            continue
        if msg == "stats":
            s = j
            state["last"] = s
            if s["samples"] <= drift and s["window_accuracy"] is not None:
                state["before"] = s
            if state["rolled_back_to"] and not state["switched"] and s["version"] == state["rolled_back_to"]:
                state["switched"] = True
                event("== the running worker switched to version %d without a restart (its step %d)"
                      % (s["version"], state["target_step"]))
            acc = "%.3f" % s["window_accuracy"] if s["window_accuracy"] is not None else "  -  "
            say("%9d samples %8.0f samples/s   accuracy (last 5000) %s   version %3d   lag %d"
                % (s["samples"], s["samples_per_s"], acc, s["version"], s["lag"]),
                s["samples"] == 0 or s["samples_per_s"] == 0)
            if s["samples"] >= drift and state.get("drift_said") is None:
                state["drift_said"] = True
                event("== the concept changed at sample %d" % drift)
            if s["samples"] >= rollback_at and not state.get("rollback_tried") and s["version"] > 0:
                rollback(s["version"])
            if s["samples"] >= n and s["lag"] == 0 and all_in is None:
                all_in = time.time()
            # Done once every sample is in and the rollback was followed by a
            # snapshot descending from it (or two snapshot periods passed).
            if all_in is not None and (not state["rolled_back_to"] or state["switched"]) and (
                    state["parent_after"] or time.time() - all_in > 2 * snap_s + 1):
                if tty:
                    print()
                json.dump(state, open(log + ".state", "w"))
                sys.exit(0)
EOF

echo "== starting a throwaway redis-server and the embedded Kafka cluster (dev-kafka)"
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)
echo "redis-server $! $port" >"$work/pids"
"$bin" dev-kafka --topics samples:4,predictions:4 --bootstrap-file "$work/bootstrap" \
  >/dev/null 2>"$work/dev-kafka.log" &
pids+=($!)
echo "dev-kafka $!" >>"$work/pids"
echo "workdir - $work" >>"$work/pids"
[ -n "${DEMO_PIDFILE:-}" ] && cp "$work/pids" "$DEMO_PIDFILE"
for _ in $(seq 100); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && [ -s "$work/bootstrap" ] && break
  sleep 0.1
done
redis-cli -p "$port" ping >/dev/null 2>&1 || { echo "demo.sh: redis-server did not start" >&2; exit 1; }
[ -s "$work/bootstrap" ] || { echo "demo.sh: dev-kafka did not start" >&2; exit 1; }
brokers=$(head -1 "$work/bootstrap")
url="redis://127.0.0.1:$port"
echo "   redis $url, kafka $brokers"

# fetch.wait.max.ms=10: dev-kafka (librdkafka's mock broker) holds a fetch
# that finds nothing for the whole wait even when samples arrive meanwhile;
# with the default 500 ms the caught-up worker stalls half a second at a time
# (the lag jumps by ~12,500 samples at 25,000/s). A real broker answers at once.
echo "== streamlearn run: softmax 16-32-3, Adam, batch 64; snapshots to Redis every $snap_ms ms"
"$bin" run --brokers "$brokers" --group demo --input-topic samples --output-topic predictions \
  --redis "$url" --model-name demo --model softmax --dim 16 --classes 3 --hidden 32 \
  --optimizer adam --lr 0.01 --batch-size 64 --metrics-window 5000 \
  --snapshot-every-ms "$snap_ms" --snapshot-every-batches 0 --keep-versions 10 \
  --stats-interval-ms "$stats_ms" \
  --kafka-opt consumer.heartbeat.interval.ms=500 --kafka-opt consumer.session.timeout.ms=6000 \
  --kafka-opt consumer.fetch.wait.max.ms=10 \
  >/dev/null 2>"$work/run.log" &
worker=$!
pids+=("$worker")
for _ in $(seq 300); do
  grep -q '"partitions assigned"' "$work/run.log" && break
  kill -0 "$worker" 2>/dev/null || { cat "$work/run.log" >&2; exit 1; }
  sleep 0.1
done

echo "== streamlearn gen: $samples labelled samples at $rate/s, concept drift at sample $drift"
"$bin" gen --model softmax --dim 16 --classes 3 --samples "$samples" --drift-at "$drift" \
  --seed 7 --rate "$rate" --brokers "$brokers" --topic samples 2>"$work/gen.log" &
gen=$!
pids+=("$gen")

deadline=$(($(date +%s) + 60 + samples / rate * 3))
$py "$work/monitor.py" "$work/run.log" "$samples" "$drift" "$rollback_at" "$bin" "$url" demo \
  "$deadline" "$snap_ms" || failed "the worker did not finish in time"
wait "$gen" || { cat "$work/gen.log" >&2; exit 1; }
kill -TERM "$worker"
wait "$worker" || failed "the worker exited with status $?"

echo "== summary"
$py - "$work/run.log" "$work/gen.log" "$drift" <<'EOF'
import json, sys
log, genlog, drift = sys.argv[1], sys.argv[2], int(sys.argv[3])
state = json.load(open(log + ".state"))
stats = [j for j in map(json.loads, filter(None, open(log).read().split("\n"))) if j.get("msg") == "stats"]
last = stats[-1]
gen = [j for j in map(json.loads, filter(None, open(genlog).read().split("\n"))) if j.get("msg") == "gen finished"]
b = state["before"]
print("samples: %d, each predicted then trained by the worker (bad %d); gen offered %.0f samples/s"
      % (last["samples"], last["bad"], gen[-1]["samples_per_s"] if gen else 0))
if b:
    print("prequential accuracy (last 5000 labelled) before the drift: %.3f  (at sample %d)"
          % (b["window_accuracy"], b["samples"]))
print("prequential accuracy (last 5000 labelled) after the drift:  %.3f  (at sample %d)"
      % (last["window_accuracy"], last["samples"]))
if state["rolled_back_to"]:
    print("rollback: head %d -> %d while running; the worker switched: %s"
          % (state["head_before_rollback"], state["rolled_back_to"], "yes" if state["switched"] else "no"))
print("worker stopped at version %d, step %d" % (last["version"], last["step"]))
EOF
echo "versions in Redis (streamlearn models list --redis $url --model-name demo):"
"$bin" models list --redis "$url" --model-name demo
echo "== done: stopping redis-server and dev-kafka"
