#!/usr/bin/env bash
# test_models_cli.sh - `streamlearn models` against a real redis-server:
# import, list (table and --json), show, pin/unpin, rollback with audit,
# export/import round trip, a corrupted version, and exit statuses.
set -euo pipefail

SL_BIN=${SL_BIN:?SL_BIN must name the streamlearn binary}
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/sl_models_cli.XXXXXX)
REDIS_PID=
cleanup() {
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$PORT" ping >/dev/null || fail "redis-server did not start"

URL="redis://127.0.0.1:$PORT"
M=(--redis "$URL" --model-name m)
models() { "$SL_BIN" models "$@" "${M[@]}"; }
# expect_status CODE CMD...: runs CMD, checks its exit status
expect_status() {
    local want=$1; shift
    set +e; "$@" >"$TMP/out" 2>"$TMP/err"; local got=$?; set -e
    [ "$got" = "$want" ] || { cat "$TMP/err" >&2; fail "$* exited $got, expected $want"; }
}

# Two weight files from replay (dim 4, one tanh hidden layer of 3).
$PY - "$TMP/samples.mp" <<'EOF'
import msgpack, random, sys
random.seed(1)
with open(sys.argv[1], "wb") as f:
    for i in range(64):
        x = [random.uniform(-1, 1) for _ in range(4)]
        f.write(msgpack.packb({"x": x, "y": 1 if x[0] + x[1] > 0 else 0, "id": i}))
EOF
LEARN=(--model logistic --dim 4 --hidden 3 --activation tanh --batch-size 8)
"$SL_BIN" replay "${LEARN[@]}" --seed 1 --input "$TMP/samples.mp" --output /dev/null --save "$TMP/w1.safetensors" 2>/dev/null
"$SL_BIN" replay "${LEARN[@]}" --seed 2 --input "$TMP/samples.mp" --output /dev/null --save "$TMP/w2.safetensors" 2>/dev/null

# json_check EXPR: evaluates a python expression over the JSON in $TMP/out as j
json_check() {
    $PY -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$TMP/out" "$1" \
        || { cat "$TMP/out" >&2; fail "json check: $1"; }
}

expect_status 0 models list --json
json_check 'j == []'
pass "empty model lists as []"

expect_status 0 models import "$TMP/w1.safetensors"
expect_status 0 models import "$TMP/w2.safetensors"
expect_status 0 models list --json
json_check '[e["version"] for e in j] == [2, 1]'
json_check 'j[0]["parent"] == 1 and j[1]["parent"] == 0'
json_check 'j[0]["head"] is True and j[1]["head"] is False'
json_check 'all(e["checksum_ok"] is True and e["pinned"] is False for e in j)'
json_check 'all(isinstance(e["metrics"], dict) and isinstance(e["samples"], int) and isinstance(e["step"], int) for e in j)'
json_check 'all(__import__("re").fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", e["created_at"]) for e in j)'
pass "import makes versions 1 and 2, list --json has the contract's fields"

expect_status 0 models list
grep -q '^VERSION' "$TMP/out" || fail "table header missing"
grep -qE '^2 +1 .*head' "$TMP/out" || { cat "$TMP/out"; fail "table row of head"; }
pass "list prints a table"

expect_status 0 models show 2 --json
json_check 'j["version"] == 2 and j["lineage"] == [1] and j["config"]["dim"] == 4 and j["config"]["hidden"] == [3]'
json_check 'j["config"]["activation"] == "tanh" and len(j["checksum"]) == 16'
json_check 'j["scaler"]["scale"] == "auto" and j["scaler"]["in_force"] == "standard" and j["scaler"]["samples"] == 64'
json_check 'len(j["scaler"]["shift"]) == 4 and all(m > 0 for m in j["scaler"]["mult"])'
expect_status 0 models show 2
grep -q '^lineage' "$TMP/out" || fail "show: lineage line"
grep -q '^scaler .*"in_force":"standard"' "$TMP/out" || fail "show: scaler line"
expect_status 1 models show 9
grep -q 'no version 9' "$TMP/err" || fail "show 9: message"
pass "show V: metadata, config, scaler and lineage; unknown V is an error"

expect_status 0 models pin 1
expect_status 0 models list --json
json_check '[e["pinned"] for e in j] == [False, True]'
expect_status 0 models unpin 1
expect_status 0 models list --json
json_check 'not any(e["pinned"] for e in j)'
expect_status 1 models pin 42
pass "pin/unpin"

expect_status 0 models rollback 1 --reason "bad deploy" --rewind
grep -q '2 -> 1' "$TMP/out" || fail "rollback output"
expect_status 0 models list --json
json_check '[e["head"] for e in j] == [False, True]'
redis-cli -p "$PORT" LINDEX '{sl:m}:audit' 0 >"$TMP/out"
json_check 'j["from"] == 2 and j["to"] == 1 and j["reason"] == "bad deploy" and j["rewind"] is True and "T" in j["time"]'
pass "rollback moves head and records an audit entry"

expect_status 0 models export 2 --out "$TMP/e2.safetensors"
cmp -s "$TMP/e2.safetensors" "$TMP/w2.safetensors" || fail "export of an imported version differs from the file imported"
expect_status 0 models import "$TMP/e2.safetensors"
expect_status 0 models show 3 --json
json_check 'j["parent"] == 1 and j["head"] is True and j["origin"] == "import"'
expect_status 0 models export 3 --out "$TMP/e3.safetensors"
cmp -s "$TMP/e3.safetensors" "$TMP/w2.safetensors" || fail "export/import round trip not byte-identical"
pass "export/import round trip is byte-identical; import descends from head"

# A torch-written file loads by the nn.Sequential names.
$PY - "$TMP/torch.safetensors" <<'EOF'
import json, struct, sys, torch
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
tensors, data = {}, b""
for name, t in net.state_dict().items():
    raw = t.detach().numpy().astype("<f4").tobytes()
    tensors[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
header = json.dumps(tensors).encode()
header += b" " * (-len(header) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(header)) + header + data)
EOF
expect_status 0 models import "$TMP/torch.safetensors"
pass "a torch-written safetensors file imports"

# Wrong shape for head's architecture: refused, nothing published.
"$SL_BIN" replay --model logistic --dim 4 --input "$TMP/samples.mp" --output /dev/null --save "$TMP/flat.safetensors" 2>/dev/null
expect_status 2 models import "$TMP/flat.safetensors"
grep -q 'weight' "$TMP/err" || fail "mismatch message names the tensor"
expect_status 0 models list --json
json_check 'max(e["version"] for e in j) == 4'
pass "a mismatched file is refused with exit 2"

# A corrupted version is shown as such and cannot be rolled back to.
redis-cli -p "$PORT" SETRANGE '{sl:m}:v:2:c:0' 30 XXXX >/dev/null
expect_status 0 models list --json
json_check '{e["version"]: e["checksum_ok"] for e in j}[2] is False'
json_check 'all(e["checksum_ok"] for e in j if e["version"] != 2)'
expect_status 1 models rollback 2
grep -q 'checksum' "$TMP/err" || fail "rollback to a corrupt version: message"
pass "corrupt version: checksum_ok false, rollback refused"

# Usage errors exit 2, runtime failures 1, and passwords never show.
expect_status 2 "$SL_BIN" models list --model-name m
grep -q -- '--redis' "$TMP/err" || fail "missing --redis message"
expect_status 2 models frobnicate
expect_status 2 models show abc
expect_status 2 models export 1
expect_status 2 "$SL_BIN" models list --redis "http://x:1" --model-name m
expect_status 2 "$SL_BIN" models list --redis "$URL" --model-name 'a{b}'
expect_status 1 "$SL_BIN" models list --redis "redis://u:hunter2@127.0.0.1:1" --model-name m
grep -q 'hunter2' "$TMP/err" && fail "password leaked: $(cat "$TMP/err")"
grep -q '\*\*\*' "$TMP/err" || fail "redacted URL expected in: $(cat "$TMP/err")"
expect_status 0 "$SL_BIN" models --help
expect_status 2 models import "$TMP/nope.safetensors"
grep -q 'nope.safetensors' "$TMP/err" || fail "missing import file: message"
pass "exit statuses and redaction"

# The deployment's INI (written for `run`) serves `models` too: run's keys are skipped.
expect_status 0 "$SL_BIN" models list --json -c "${SL_SOURCE_DIR:?}/deploy/k8s/overlays/example/streamlearn.ini" "${M[@]}"
json_check 'len(j) >= 1'
pass "models reads the deployment's shared INI"

echo "all models CLI tests passed"
