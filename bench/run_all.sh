#!/usr/bin/env bash
# The benchmark suite: one command runs every benchmark, each side by side
# with its PyTorch peer or ceiling in the same run, prints one table with
# ratios and writes bench/results/all.json (with the machine it ran on).
#   bench/replay.sh    replay vs bench/peers/replay_torch.py (same file, one core)
#   bench/kafka.sh     run vs bench/peers/worker_torch.py vs a bare librdkafka
#                      loop on dev-kafka, and latency at 20,000 samples/s offered
#   bench/snapshot.sh  snapshot pause/publish/load vs torch.save/torch.load
#                      through Redis and vs plain SET/GET of the same bytes
#   bench/run_all.sh [REPLAY_N] [KAFKA_N]   (defaults 1000000 and 300000)
# Takes a few minutes; run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
replay_n=${1:-1000000}
kafka_n=${2:-300000}
py=/usr/bin/python3

# The peers need Debian's python3-torch, python3-confluent-kafka,
# python3-msgpack and python3-redis.
missing=()
for pair in torch:python3-torch confluent_kafka:python3-confluent-kafka msgpack:python3-msgpack \
  redis:python3-redis; do
  $py -c "import ${pair%%:*}" 2>/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
scripts/install-deps.sh

echo "== replay ($replay_n samples)"
bench/replay.sh "$replay_n"
echo "== kafka end to end ($kafka_n samples) and latency"
bench/kafka.sh "$kafka_n"
echo "== snapshots"
bench/snapshot.sh

$py - "bench/run_all.sh $*" <<'EOF'
import json, os, platform, subprocess, sys, time

command = sys.argv[1].strip()
replay = json.load(open("bench/results/replay.json"))
kafka = json.load(open("bench/results/kafka.json"))
snap = json.load(open("bench/results/snapshot.json"))

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem_kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
machine = {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kb / 2**20, 1),
           "os": platform.platform(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

# Each row: benchmark, metric, streamlearn, the peer's name and value, and the
# ratio oriented so that > 1 means streamlearn is ahead.
rows = []
def row(bench, metric, sl, peer, pv, better):
    # times below the clock's resolution count as 1 us, not as a division by zero
    sl_, pv_ = max(sl, 1e-3), max(pv, 1e-3)
    ratio = sl_ / pv_ if better == "higher" else pv_ / sl_
    rows.append({"benchmark": bench, "metric": metric, "streamlearn": sl, "peer": peer,
                 "peer_value": pv, "advantage": round(ratio, 2)})

for r in replay:
    row("replay " + r["case"], "samples/s", r["streamlearn"]["samples_per_s"], "PyTorch loop",
        r["pytorch"]["samples_per_s"], "higher")
w = {x["name"]: x for x in kafka["workers"]}
n = kafka["samples"]
row("kafka end to end", "samples/s (wall)", round(n / w["streamlearn"]["wall_s"]), "PyTorch worker",
    round(n / w["pytorch"]["wall_s"]), "higher")
row("kafka end to end", "CPU us/sample", round(w["streamlearn"]["cpu_s"] * 1e6 / n, 2),
    "PyTorch worker", round(w["pytorch"]["cpu_s"] * 1e6 / n, 2), "lower")
row("kafka end to end", "samples/s (wall)", round(n / w["streamlearn"]["wall_s"]),
    "bare librdkafka loop (ceiling)", round(n / w["bare"]["wall_s"]), "higher")
lat = kafka["latency"]
for k in ("p50_ms", "p99_ms"):
    rows.append({"benchmark": "kafka latency @20k/s", "metric": k, "streamlearn": lat[k],
                 "peer": None, "peer_value": None, "advantage": None})
for s in snap:
    p = "1e%d params" % (len(str(s["params"])) - 1)
    sl, pt = s["streamlearn"], s["pytorch"]
    row("snapshot " + p, "worker pause ms", sl["pause_ms"], "torch.save + SET (loop waits)",
        pt["save_ms"], "lower")
    row("snapshot " + p, "publish ms", sl["publish_ms"], "redis SET of the blob (ceiling)",
        sl["redis_set_ms"], "lower")
    row("snapshot " + p, "load ms", sl["load_ms"], "GET + torch.load", pt["load_ms"], "lower")

def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and v < 10:
        return "%.3f" % v
    if isinstance(v, float) and v < 100:
        return "%.1f" % v
    return "{:,}".format(int(round(v)))

print("\n%-24s %-17s %13s  %-32s %13s %9s" % ("benchmark", "metric", "streamlearn", "peer",
                                             "peer", "advantage"))
for r in rows:
    adv = "-" if r["advantage"] is None else "%.2fx" % r["advantage"]
    print("%-24s %-17s %13s  %-32s %13s %9s" % (r["benchmark"], r["metric"], fmt(r["streamlearn"]),
                                             r["peer"] or "-", fmt(r["peer_value"]), adv))
print("\nadvantage > 1: streamlearn ahead (throughput: streamlearn/peer; times: peer/streamlearn)")
print("machine: %d cores, %s, %.1f GiB" % (machine["nproc"], machine["cpu"], machine["mem_gib"]))
json.dump({"command": command, "machine": machine, "table": rows,
           "replay": replay, "kafka": kafka, "snapshot": snap},
          open("bench/results/all.json", "w"), indent=1)
print("wrote bench/results/all.json")
EOF
