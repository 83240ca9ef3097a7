#!/usr/bin/env bash
# test_onnx_cli.sh - ONNX export from the command line: `replay --save F.onnx`
# for every head x {0, 1, 3} hidden layers x activation (dense, bin and
# hashed named features, int and str keys mixed), trained with the defaults
# (online scaling on), computes exactly replay's predictions on the same
# weights, with the scaler as nodes and folded into layer 0 (--fold-scaler),
# and without scaling (--scale off) (judged by ONNX's checker and a numpy
# evaluation, tests/integration/onnx_check.py); `models export V --format
# onnx` of a scaled version against a real redis-server with its metadata;
# bad input and exit statuses.
set -euo pipefail

SL_BIN=${SL_BIN:?SL_BIN must name the streamlearn binary}
SRC=${SL_SOURCE_DIR:?SL_SOURCE_DIR must name the source tree}
PY=/usr/bin/python3
CHECK=("$PY" "$SRC/tests/integration/onnx_check.py")
TMP=$(mktemp -d /tmp/sl_onnx_cli.XXXXXX)
REDIS_PID=
cleanup() {
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }
# expect_status CODE CMD...: runs CMD, checks its exit status (stdout/stderr in $TMP/out, $TMP/err)
expect_status() {
    local want=$1; shift
    set +e; "$@" >"$TMP/out" 2>"$TMP/err"; local got=$?; set -e
    [ "$got" = "$want" ] || { cat "$TMP/err" >&2; fail "$* exited $got, expected $want"; }
}
expect_err() { grep -q -- "$1" "$TMP/err" || { cat "$TMP/err" >&2; fail "stderr lacks: $1"; }; }

# --- replay --save F.onnx: every architecture, same weights as replay's predictions
: >"$TMP/list"
case_id=0
# add_case HEAD HIDDEN ACT FORM [SCALE]: trains on labelled samples (--scale
# SCALE, default the default: auto), then predicts unlabelled ones from the
# trained weights (no step: the weights stay) and saves them as ONNX from that
# same run; then the same weights with the scaler folded into layer 0, as ONNX
# and as safetensors (their weights must agree bit for bit).
add_case() {
    local head=$1 hidden=$2 act=$3 form=$4 scale=${5:-auto} dim=6
    local k=() stream=(--stream hyperplane --form "$form")
    [ "$head" = softmax ] && k=(--classes 3) && stream=(--stream blobs --form "$form")
    case $form in named | mixed) dim=32 stream=(--stream sparse --vocab 300 --nnz 6) ;; esac
    local d="$TMP/c$case_id" data="$TMP/data-$head-$form"
    case_id=$((case_id + 1))
    mkdir "$d"
    if [ ! -d "$data" ]; then # one stream per head and form, shared by its cases
        mkdir "$data"
        "$SL_BIN" gen --model "$head" --dim "$dim" "${k[@]}" "${stream[@]}" --samples 300 --seed 3 \
            --output "$data/train.mp" 2>/dev/null
        "$SL_BIN" gen --model "$head" --dim "$dim" "${k[@]}" "${stream[@]}" --samples 80 --seed 4 \
            --labelled-fraction 0 --output "$data/eval.mp" 2>/dev/null
        if [ "$form" = mixed ]; then
            "$PY" "$SRC/tests/integration/onnx_mixed_samples.py" "$data/eval.mp" "$dim"
        fi
    fi
    ln -s "$data/train.mp" "$d/train.mp"
    ln -s "$data/eval.mp" "$d/eval.mp"
    local learn=(--model "$head" --dim "$dim" "${k[@]}" --hidden "$hidden" --activation "$act"
        --batch-size 16 --seed 9)
    "$SL_BIN" replay "${learn[@]}" --scale "$scale" --input "$d/train.mp" --output /dev/null \
        --save "$d/w.safetensors" 2>/dev/null || fail "replay $head [$hidden] $act: training"
    "$SL_BIN" replay "${learn[@]}" --init "$d/w.safetensors" --input "$d/eval.mp" \
        --output "$d/pred.mp" --save "$d/w.onnx" 2>/dev/null || fail "replay $head [$hidden] $act: --save .onnx"
    for ext in onnx safetensors; do
        "$SL_BIN" replay "${learn[@]}" --init "$d/w.safetensors" --input "$d/eval.mp" \
            --output /dev/null --save "$d/w-fold.$ext" --fold-scaler 2>/dev/null ||
            fail "replay $head [$hidden] $act: --save .$ext --fold-scaler"
    done
    local act_meta=$act scaling=shift_mult folded=folded
    [ -z "$hidden" ] && act_meta=none
    [ "$scale" = off ] && scaling=none folded=none
    local meta="--meta head=$head --meta activation=$act_meta --meta hidden=$hidden"
    meta+=" --meta feature_dim=$dim --meta step=0 --meta version=0"
    meta+=" --meta feature_hash=MurmurHash3_x86_32 --meta feature_hash_seed=0"
    echo "$d/w.onnx $d/eval.mp $d/pred.mp --safetensors $d/w.safetensors $meta" \
        "--meta scaling=$scaling" >>"$TMP/list"
    echo "$d/w-fold.onnx $d/eval.mp $d/pred.mp --safetensors $d/w-fold.safetensors $meta" \
        "--meta scaling=$folded" >>"$TMP/list"
}
for head in linear logistic softmax; do
    add_case "$head" "" relu array
    for hidden in 5 5,4,3; do
        for act in relu tanh sigmoid; do add_case "$head" "$hidden" "$act" array; done
    done
    add_case "$head" 5 tanh bin
done
add_case logistic "" relu named
add_case softmax 8 relu named
add_case linear 4 sigmoid mixed
add_case logistic 5 relu array off
add_case linear "" relu array off
# the scaled cases had a scaler to write: scaler.* tensors and scaling nodes
for c in c0 c8 c24 c26; do
    "$PY" -c '
import json, struct, sys
data = open(sys.argv[1], "rb").read()
h = json.loads(data[8:8 + struct.unpack_from("<Q", data)[0]])
assert "scaler.shift" in h and "scaler.mult" in h, sorted(h)
' "$TMP/$c/w.safetensors" || fail "$c: trained with the defaults but saved no scaler"
done
"${CHECK[@]}" replay-list "$TMP/list" | tee "$TMP/check.log" | tail -1 || fail "replay-list"
pass "replay --save F.onnx (scaling nodes, and folded with --fold-scaler) equals replay's predictions for $case_id models (every head x 0/1/3 hidden x activation; array, bin, named, mixed keys; scaled by default and --scale off)"

# The file a training run saves carries its counters.
"$SL_BIN" replay --model logistic --dim 6 --hidden 4 --batch-size 10 --input "$TMP/c8/train.mp" \
    --output /dev/null --save "$TMP/trained.onnx" 2>"$TMP/log"
steps=$($PY -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "replay finished" in l][0]["steps"])' "$TMP/log")
$PY -c '
import onnx, sys
p = {e.key: e.value for e in onnx.load(sys.argv[1]).metadata_props}
assert p["step"] == sys.argv[2] and p["samples"] == "300" and p["version"] == "0", p
assert "model_name" not in p and p["created_at"].endswith("Z"), p
' "$TMP/trained.onnx" "$steps" || fail "metadata of a trained replay"
pass "replay's ONNX metadata: step $steps, samples 300, version 0, created_at"

# --- models export V --format onnx, against a real redis-server
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$PORT" ping >/dev/null || fail "redis-server did not start"
M=(--redis "redis://127.0.0.1:$PORT" --model-name clicks)
models() { "$SL_BIN" models "$@" "${M[@]}"; }

W="$TMP/c23" # softmax, hidden 5, tanh, bin features, scaled (the defaults)
[ -f "$W/w.safetensors" ] || fail "case c23 missing"
expect_status 0 models import "$W/w.safetensors"
expect_status 0 models import "$W/w.safetensors"
expect_status 0 models export 2 --format onnx --out "$TMP/v2.onnx"
grep -q 'ONNX' "$TMP/out" || fail "export says what it wrote: $(cat "$TMP/out")"
expect_status 0 models show 2 --json
cp "$TMP/out" "$TMP/show.json"
read -r created samples step < <($PY -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["created_at"], j["samples"], j["step"])' "$TMP/show.json")
"${CHECK[@]}" replay "$TMP/v2.onnx" "$W/eval.mp" "$W/pred.mp" --safetensors "$W/w.safetensors" \
    --meta model_name=clicks --meta version=2 --meta parent=1 --meta "created_at=$created" \
    --meta "samples=$samples" --meta "step=$step" --meta head=softmax --meta hidden=5 \
    --meta activation=tanh --meta classes=3 --meta feature_dim=6 --meta scaling=shift_mult \
    --meta "streamlearn_version=$("$SL_BIN" --version | grep -o '[0-9][0-9.]*' | head -1)" || fail "models export 2"
pass "models export 2 --format onnx: replay's predictions, weights and scaler bit for bit, metadata (name, version, parent, created_at, samples, step, scaling, feature mapping)"
expect_status 0 models export 2 --format onnx --fold-scaler --out "$TMP/v2-fold.onnx"
"${CHECK[@]}" replay "$TMP/v2-fold.onnx" "$W/eval.mp" "$W/pred.mp" \
    --safetensors "$W/w-fold.safetensors" --meta version=2 --meta scaling=folded ||
    fail "models export 2 --fold-scaler"
pass "models export 2 --format onnx --fold-scaler: replay's predictions from a graph on raw features, the same folded weights as replay --save --fold-scaler"

expect_status 0 models export 2 --out "$TMP/by-extension.ONNX"
cmp -s "$TMP/v2.onnx" "$TMP/by-extension.ONNX" || fail ".ONNX extension should write the same ONNX file"
expect_status 0 models export 2 --format onnx --out "$TMP/v2.bin"
cmp -s "$TMP/v2.onnx" "$TMP/v2.bin" || fail "--format onnx with another extension"
expect_status 0 models export 2 --out "$TMP/v2.safetensors"
# The version holds the imported file's transform to the bit; its variance
# statistics are kept as that transform implies them (1 / mult^2), so
# scaler.var may differ from the file's in the last bits.
"$PY" - "$TMP/v2.safetensors" "$W/w.safetensors" <<'EOF_PY' || fail "safetensors export changed"
import json, struct, sys
import numpy as np
def load(path):
    data = open(path, "rb").read()
    n = struct.unpack_from("<Q", data)[0]
    head = json.loads(data[8:8 + n])
    meta = head.pop("__metadata__")
    return meta, {k: np.frombuffer(data, "<f4", int(np.prod(v["shape"])), 8 + n + v["data_offsets"][0])
                  for k, v in head.items()}
(ma, a), (mb, b) = load(sys.argv[1]), load(sys.argv[2])
assert ma == mb and sorted(a) == sorted(b), (ma, mb, sorted(a), sorted(b))
for k in a:
    if k == "scaler.var":
        assert np.allclose(a[k], b[k], rtol=1e-6, atol=0), k
    else:
        assert a[k].tobytes() == b[k].tobytes(), k
EOF_PY
pass "format from --format or the .onnx extension (any case); safetensors otherwise: the imported weights and scaler transform bit for bit"

# --- bad input
expect_status 1 models export 99 --format onnx --out "$TMP/x.onnx"
expect_err 'no version 99'
[ ! -e "$TMP/x.onnx" ] || fail "unknown version left a file"
expect_status 1 models export 2 --out "$TMP/no/such/dir/x.onnx"
expect_err "$TMP/no/such/dir/x.onnx"
expect_status 2 models export 2 --format torchscript --out "$TMP/x.pt"
expect_err '--format'
expect_status 2 models export 2 --format safetensors --out "$TMP/x.onnx"
expect_err 'contradicts'
expect_status 2 models export 2 --format onnx
expect_err '--out'
[ ! -e "$TMP/x.onnx" ] && [ ! -e "$TMP/x.pt" ] || fail "a refused export left a file"
# usage is judged before Redis is reached: exit 2 even with Redis down
expect_status 2 "$SL_BIN" models export 2 --format onnx --out "$TMP/x.safetensors" \
    --redis redis://127.0.0.1:1 --model-name clicks
expect_err 'contradicts'
STREAMLEARN_FORMAT=pt expect_status 2 models export 2 --out "$TMP/x"
expect_err 'STREAMLEARN_FORMAT'
pass "models export: unknown version and unwritable path exit 1, bad or contradicting --format exit 2, naming what"

expect_status 2 "$SL_BIN" replay --model logistic --dim 67108864 --hidden 9 --input "$W/eval.mp" \
    --output /dev/null --save "$TMP/huge.onnx"
expect_err '2 GiB'
expect_status 1 "$SL_BIN" replay --model logistic --dim 6 --input "$TMP/c8/eval.mp" --output /dev/null \
    --save "$TMP/no/such/dir/w.onnx"
expect_err "$TMP/no/such/dir/w.onnx"
pass "replay --save: a model too big for one ONNX file exits 2 before any work; an unwritable path exits 1"

echo "all ONNX CLI tests passed"
