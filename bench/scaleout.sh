#!/usr/bin/env bash
# scaleout.sh - prediction throughput of 1, 2 and 4 `--role predictor`
# replicas, and CPU per sample of a predictor versus `--role both`, on a
# dev-kafka cluster and a throwaway redis-server. Prints a table.
#
# usage: bench/scaleout.sh [path/to/streamlearn] [samples]
# Each run starts its replicas on a fresh input topic, waits until the group
# has settled (every partition assigned), then writes the stream with `gen`
# (sharing the 2 cores) and times from gen's start until every sample is
# predicted (sum of streamlearn_predictions_total); CPU per sample is the
# replicas' user+system time from /proc over the samples.
set -euo pipefail
[ -n "${SL_BENCH_DEBUG:-}" ] && set -x

BIN=${1:-build/streamlearn}
N=${2:-200000}
PARTS=8
DIM=32
TMP=$(mktemp -d /tmp/sl_scaleout.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RPORT=$(free_port)
redis-server --port "$RPORT" --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
"$BIN" dev-kafka --topics "in1:$PARTS,in2:$PARTS,in3:$PARTS,in4:$PARTS,out:$PARTS" --bootstrap-file "$TMP/boot" >"$TMP/dk.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$TMP/boot" ] && break; sleep 0.1; done
BROKERS=$(head -n1 "$TMP/boot")

# cpu_ticks PID: user+system clock ticks so far
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run ROLE REPLICAS TOPIC: prints "seconds cpu_us_per_sample"
run() {
    local role=$1 replicas=$2 group="g-$1-$2-$RANDOM" ports=() pids=()
    local extra=(--output-topic out)
    [ "$role" = predictor ] && extra+=(--role predictor --redis "redis://127.0.0.1:$RPORT" --model-name bench)
    local topic=$3
    for i in $(seq "$replicas"); do
        local port
        port=$(free_port)
        "$BIN" run --dim "$DIM" --batch-size 256 --brokers "$BROKERS" --group "$group" \
            --input-topic "$topic" "${extra[@]}" --http-port "$port" \
            --kafka-opt auto.offset.reset=earliest --kafka-opt heartbeat.interval.ms=500 \
            --kafka-opt session.timeout.ms=6000 --log-level warn 2>>"$TMP/run.log" &
        pids+=($!)
        PIDS+=($!)
        ports+=("$port")
    done
    # settled: every partition assigned, twice a second apart
    local settled=0
    for _ in $(seq 300); do
        local parts=0
        for port in "${ports[@]}"; do
            local v
            # || true: the HTTP port may not listen yet, and set -e would end the run
            v=$(curl -s "127.0.0.1:$port/metrics" | awk '/^streamlearn_partitions_assigned/ {print $2}' || true)
            parts=$((parts + ${v:-0}))
        done
        if [ "$parts" -eq "$PARTS" ]; then settled=$((settled + 1)); else settled=0; fi
        [ "$settled" -ge 2 ] && break
        sleep 1
    done
    local t0
    t0=$(date +%s.%N)
    local ticks0=0
    for p in "${pids[@]}"; do ticks0=$((ticks0 + $(cpu_ticks "$p"))); done
    "$BIN" gen --dim "$DIM" --samples "$N" --brokers "$BROKERS" --topic "$topic" 2>>"$TMP/gen.log" &
    local genpid=$!
    local done_at=""
    for _ in $(seq 1200); do
        local total=0
        for port in "${ports[@]}"; do
            local v
            v=$(curl -s "127.0.0.1:$port/metrics" | awk '/^streamlearn_predictions_total/ {print $2}' || true)
            total=$((total + ${v:-0}))
        done
        if [ "$total" -ge "$N" ]; then
            done_at=$(date +%s.%N)
            break
        fi
        sleep 0.1
    done
    local ticks=$((-ticks0))
    for p in "${pids[@]}"; do ticks=$((ticks + $(cpu_ticks "$p"))); done
    wait "$genpid" || true
    for p in "${pids[@]}"; do kill -TERM "$p"; done
    for p in "${pids[@]}"; do wait "$p" || true; done
    [ -n "$done_at" ] || { echo "timeout" >&2; return 1; }
    local hz
    hz=$(getconf CLK_TCK)
    awk -v t0="$t0" -v t1="$done_at" -v ticks="$ticks" -v hz="$hz" -v n="$N" \
        'BEGIN { printf "%.2f %.2f\n", t1 - t0, ticks / hz * 1e6 / n }'
}

printf '%-10s %-9s %10s %14s %16s\n' role replicas seconds samples/s cpu_us/sample
json="["
for spec in "both 1 in1" "predictor 1 in2" "predictor 2 in3" "predictor 4 in4"; do
    set -- $spec
    read -r secs cpu < <(run "$1" "$2" "$3")
    awk -v r="$1" -v k="$2" -v s="$secs" -v c="$cpu" -v n="$N" \
        'BEGIN { printf "%-10s %-9s %10.2f %14.0f %16.2f\n", r, k, s, n / s, c }'
    json+=$(awk -v r="$1" -v k="$2" -v s="$secs" -v c="$cpu" -v n="$N" \
        'BEGIN { printf "{\"role\":\"%s\",\"replicas\":%d,\"samples\":%d,\"seconds\":%.2f,\"samples_per_s\":%.0f,\"cpu_us_per_sample\":%.2f},", r, k, n, s, n / s, c }')
done
echo "(gen produces the stream during the timing on the same 2 cores; cpu is the replicas' only)"
echo "${json%,}]" | /usr/bin/python3 "$(dirname "$0")/record.py" scaleout "bench/scaleout.sh $BIN $N"
