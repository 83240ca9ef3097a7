#!/usr/bin/env bash
# The Kafka benchmark (issue: the worker), on `streamlearn dev-kafka`:
#   1. 300,000 pre-produced samples (dim 32, one per message) on 32 partitions;
#      until every prediction is on the output topic, the wall time and CPU
#      seconds of: `streamlearn run` (logistic, Adam, batch 256), the PyTorch
#      worker (bench/peers/worker_torch.py: confluent-kafka + msgpack + torch),
#      and a bare librdkafka consume->produce loop (bench/bare_loop.c, the ceiling);
#   2. latency from a sample's timestamp to its prediction's, at 20,000
#      samples/s offered by `streamlearn gen --rate`.
#   bench/kafka.sh [N]     (default 300000); writes bench/results/kafka.json
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300000}
py=/usr/bin/python3
data=${BENCH_DATA:-/tmp/streamlearn-bench}/kafka
rm -rf "$data"; mkdir -p "$data" bench/results

cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench -j2 --target streamlearn >/dev/null
bin=$(pwd)/build/bench/streamlearn
gcc -O2 -std=c11 -D_GNU_SOURCE bench/bare_loop.c $(pkg-config --cflags --libs rdkafka) -o "$data/bare_loop"

"$bin" dev-kafka --topics in:32,out-sl:32,out-pt:32,out-bare:32,lat-in:32,lat-out:32 \
  --bootstrap-file "$data/bootstrap" >/dev/null 2>"$data/dev-kafka.log" &
dk=$!
trap 'kill $dk 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$data/bootstrap" ] && break; sleep 0.1; done
bs=$(cat "$data/bootstrap")
"$bin" gen --dim 32 --samples "$n" --seed 1 --brokers "$bs" --topic in 2>/dev/null

# measure NAME OUT_TOPIC STOP(yes|no) CMD...: wall seconds until N predictions
# are on OUT_TOPIC, then CPU seconds and peak RSS of the whole process.
measure() {
  local name=$1 out=$2 stop=$3; shift 3
  local t0 t1 pid
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S %M" -o "$data/time.$name" "$@" >/dev/null 2>"$data/log.$name" &
  pid=$!
  $py bench/kafka_tools.py wait "$bs" "$out" "$n" 600 >/dev/null
  t1=$(date +%s.%N)
  [ "$stop" = yes ] && pkill -TERM -P "$pid" || true
  wait "$pid"
  read -r user sys rss < "$data/time.$name"
  echo "$name $(printf "%.3f %.2f" "$(echo "$t1 - $t0" | bc)" "$(echo "$user + $sys" | bc)") $rss"  # JSON needs the leading 0
}

common="--brokers $bs --input-topic in --dim 32 --batch-size 256"
r_sl=$(measure streamlearn out-sl yes "$bin" run $common --group g-sl --output-topic out-sl \
  --model logistic --optimizer adam)
r_pt=$(measure pytorch out-pt no $py bench/peers/worker_torch.py $common --group g-pt \
  --output-topic out-pt --samples "$n")
r_bare=$(measure bare out-bare no "$data/bare_loop" "$bs" g-bare in out-bare "$n")

# Latency at 20,000 samples/s offered. librdkafka 2.0.2's mock broker does not
# answer a waiting fetch when data arrives (a real broker does): it holds every
# empty fetch for fetch.wait.max.ms (default 500 ms), which alone would put
# p50 near 250 ms. So this run sets it to 5 ms, as a real broker's long poll
# behaves.
lat_n=$(( n / 3 ))
"$bin" run --brokers "$bs" --group g-lat --input-topic lat-in --output-topic lat-out --dim 32 \
  --batch-size 256 --linger-ms 20 --kafka-opt consumer.fetch.wait.max.ms=5 \
  >/dev/null 2>"$data/log.latency" &
wk=$!
# Offer load only once the group has assigned the partitions: samples sent
# before that wait for the join, which is start-up, not steady-state latency.
for _ in $(seq 300); do grep -q 'partitions assigned' "$data/log.latency" && break; sleep 0.1; done
"$bin" gen --dim 32 --samples "$lat_n" --seed 2 --rate 20000 --brokers "$bs" --topic lat-in 2>/dev/null
$py bench/kafka_tools.py wait "$bs" lat-out "$lat_n" 300 >/dev/null
kill -TERM "$wk"; wait "$wk" || true
lat=$($py bench/kafka_tools.py latency "$bs" lat-in lat-out)

printf '\n%-12s %9s %9s %14s %9s %8s\n' worker "wall s" "CPU s" "CPU us/sample" samples/s "RSS MB"
json="{\"samples\":$n,\"workers\":["
for r in "$r_sl" "$r_pt" "$r_bare"; do
  read -r name wall cpu rss <<<"$r"
  printf '%-12s %9.2f %9.2f %14.2f %9.0f %8d\n' "$name" "$wall" "$cpu" \
    "$(echo "$cpu * 1000000 / $n" | bc -l)" "$(echo "$n / $wall" | bc -l)" $((rss / 1024))
  json+="{\"name\":\"$name\",\"wall_s\":$wall,\"cpu_s\":$cpu,\"rss_kb\":$rss},"
done
read -r _ wsl csl _ <<<"$r_sl"; read -r _ wpt cpt _ <<<"$r_pt"; read -r _ wb _ _ <<<"$r_bare"
printf '\nstreamlearn CPU per sample = %.2f of the PyTorch worker'"'"'s; wall = %.2fx the bare loop\n' \
  "$(echo "$csl / $cpt" | bc -l)" "$(echo "$wsl / $wb" | bc -l)"
echo "latency at 20000 samples/s offered (linger 20 ms): $lat"
echo "${json%,}],\"latency\":$lat}" | $py bench/record.py kafka "bench/kafka.sh $n"
