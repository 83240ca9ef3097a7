#!/usr/bin/env bash
# test_kcat.sh - `streamlearn dev-kafka` and `streamlearn run` as processes, driven by
# a client that is not ours (kcat): keys, one prediction per good sample, the
# model.version header, accuracy on a learnable stream, DLQ copies with their
# headers, no secret in the logs, clean exit 0 on SIGTERM; exit 2 on a bad property.
set -euo pipefail

BIN=${SL_BIN:?SL_BIN must name the streamlearn binary}
PY=/usr/bin/python3
N=2000
WORK=$(mktemp -d)
DK_PID=
RUN_PID=

cleanup() {
    [ -n "$RUN_PID" ] && kill -9 "$RUN_PID" 2>/dev/null || true
    [ -n "$DK_PID" ] && kill "$DK_PID" 2>/dev/null || true
    [ -n "$DK_PID" ] && wait "$DK_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in dk.err run.err; do
        [ -f "$WORK/$f" ] && { echo "--- $f (last lines)" >&2; tail -n 20 "$WORK/$f" >&2; }
    done
    exit 1
}

command -v kcat >/dev/null || fail "kcat is not installed"

# 1. The dev cluster prints its bootstrap address on stdout's first line.
"$BIN" dev-kafka --topics in:4,out:4,dlq:1 --bootstrap-file "$WORK/bs" \
    >"$WORK/dk.out" 2>"$WORK/dk.err" &
DK_PID=$!
for _ in $(seq 100); do
    [ -s "$WORK/dk.out" ] && break
    sleep 0.1
done
BS=$(head -n 1 "$WORK/dk.out")
[ -n "$BS" ] || fail "dev-kafka printed no bootstrap address"
[ "$(head -n 1 "$WORK/bs")" = "$BS" ] || fail "--bootstrap-file differs from stdout"

# 2. A learnable stream (logistic, dim 8) and two bad messages, produced by kcat.
"$PY" - "$WORK" "$N" <<'PYEOF'
import random, sys, msgpack
work, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
w_true = [rng.uniform(-1, 1) for _ in range(8)]
KD, MD = b"\x1f", b"\x1e\x1f\x1e"
out, labels = bytearray(), []
for i in range(n):
    while True:
        x = [round(rng.uniform(-1, 1), 3) for _ in range(8)]
        y = 1 if sum(a * b for a, b in zip(w_true, x)) > 0 else 0
        b = msgpack.packb({"x": x, "y": y, "id": i})
        if MD not in b:
            break
    labels.append(y)
    out += b"k%d" % i + KD + b + MD
bad1 = b"\xc1\x00\x01"                                   # not msgpack
bad2 = msgpack.packb({"x": [1.0, 2.0], "y": 1, "id": -1})  # wrong dimension
assert MD not in bad1 and MD not in bad2
out += b"bad1" + KD + bad1 + MD + b"bad2" + KD + bad2 + MD
open(work + "/in.bin", "wb").write(bytes(out))
open(work + "/bad1", "wb").write(bad1)
open(work + "/bad2", "wb").write(bad2)
open(work + "/labels", "w").write("".join(map(str, labels)))
PYEOF
kcat -P -b "$BS" -t in -K '\x1f' -D '\x1e\x1f\x1e' <"$WORK/in.bin" || fail "kcat could not produce"

# 3. A bad librdkafka property is a config error (exit 2) naming the key.
set +e
"$BIN" run --brokers "$BS" --input-topic in --output-topic out --dim 8 \
    --kafka-opt foo.bar=1 >/dev/null 2>"$WORK/bad.err"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "bad --kafka-opt: exit $rc, want 2"
grep -q "foo.bar" "$WORK/bad.err" || fail "bad --kafka-opt: message does not name foo.bar"

# 4. The worker, with a secret property that must never be logged.
"$BIN" run --brokers "$BS" --group kcat-test --input-topic in --output-topic out \
    --dlq-topic dlq --dim 8 --batch-size 32 --stats-interval-ms 500 \
    --kafka-opt consumer.heartbeat.interval.ms=500 \
    --kafka-opt consumer.session.timeout.ms=6000 \
    --kafka-opt sasl.password=hunter2-very-secret \
    >"$WORK/run.out" 2>"$WORK/run.err" &
RUN_PID=$!

count_out() {
    kcat -C -b "$BS" -t out -e -q -f '%o\n' 2>/dev/null | wc -l
}
for _ in $(seq 600); do
    [ "$(count_out)" -ge "$N" ] && break
    kill -0 "$RUN_PID" 2>/dev/null || fail "the worker exited early"
    sleep 0.2
done

# 5. SIGTERM: finish, flush, commit, exit 0.
kill -TERM "$RUN_PID"
set +e
wait "$RUN_PID"
rc=$?
set -e
RUN_PID=
[ "$rc" -eq 0 ] || fail "worker exit status $rc after SIGTERM, want 0"
grep -q '"worker stopped"' "$WORK/run.err" || fail "no 'worker stopped' log line"
grep -q '"stats"' "$WORK/run.err" || fail "no stats log line"
if grep -q "hunter2" "$WORK/run.err" "$WORK/run.out"; then fail "a secret reached the logs"; fi
"$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    json.loads(line)
' "$WORK/run.err" || fail "stderr is not JSON lines"

# 6. Read both topics back with kcat and check them.
kcat -C -b "$BS" -t out -e -q -f '%K:%S:%h\n%k%s' >"$WORK/out.raw" || fail "kcat -C out"
kcat -C -b "$BS" -t dlq -e -q -f '%K:%S:%h\n%k%s' >"$WORK/dlq.raw" || fail "kcat -C dlq"
"$PY" - "$WORK" "$N" <<'PYEOF' || fail "output checks"
import sys, msgpack
work, n = sys.argv[1], int(sys.argv[2])

def records(path):
    data, pos, recs = open(path, "rb").read(), 0, []
    while pos < len(data):
        nl = data.index(b"\n", pos)
        klen, vlen, hdrs = data[pos:nl].decode().split(":", 2)
        pos = nl + 1
        klen, vlen = max(int(klen), 0), max(int(vlen), 0)
        key = data[pos:pos + klen]; pos += klen
        val = data[pos:pos + vlen]; pos += vlen
        h = dict(kv.split("=", 1) for kv in hdrs.split(",") if "=" in kv)
        recs.append((key, val, h))
    return recs

labels = open(work + "/labels").read()
seen, correct, scored = {}, 0, 0
for key, val, h in records(work + "/out.raw"):
    p = msgpack.unpackb(val)
    i = p["id"]
    assert key == b"k%d" % i, f"prediction for id {i} has key {key!r}"
    assert h.get("model.version") == "0", f"model.version header missing or wrong: {h}"
    assert p["version"] == 0 and "step" in p and 0.0 <= p["pred"] <= 1.0, p
    seen[i] = seen.get(i, 0) + 1
    if i >= n // 2:
        scored += 1
        correct += (p["pred"] > 0.5) == (labels[i] == "1")
missing = [i for i in range(n) if i not in seen]
assert not missing, f"{len(missing)} samples without a prediction, e.g. {missing[:5]}"
dup = [i for i, c in seen.items() if c != 1]
assert not dup, f"samples predicted more than once without any fault: {dup[:5]}"
assert set(seen) == set(range(n)), "predictions for unknown ids"
acc = correct / scored
assert acc >= 0.85, f"accuracy on the second half {acc:.3f} < 0.85"

dlq = records(work + "/dlq.raw")
assert len(dlq) == 2, f"{len(dlq)} DLQ messages, want 2"
for key, val, h in dlq:
    want = open(work + "/" + key.decode(), "rb").read()
    assert val == want, f"DLQ copy of {key!r} differs from the original bytes"
    assert h.get("error"), f"DLQ message {key!r} without an error header: {h}"
    assert h.get("source.topic") == "in", h
    assert h.get("source.partition", "").isdigit() and h.get("source.offset", "").isdigit(), h
print(f"ok: {n} predictions, accuracy {acc:.3f} on the second half, 2 DLQ messages")
PYEOF
echo "test_kcat: ok"
