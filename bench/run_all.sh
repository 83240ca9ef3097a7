#!/usr/bin/env bash
# The benchmark suite: one command runs every benchmark, each side by side
# with its PyTorch peer or ceiling in the same run, prints one table with
# ratios and updates the figures in README.md and docs/BENCHMARKS.md. Each
# benchmark writes bench/results/<name>.json with the machine, date and
# command (bench/record.py); bench/figures.py renders the docs from them.
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

# The table, from the results just written; then every figure of README.md and
# docs/BENCHMARKS.md (bench/figures.py renders them from bench/results/ only).
echo
$py bench/figures.py --table
$py bench/figures.py
