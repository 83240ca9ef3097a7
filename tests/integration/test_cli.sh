#!/usr/bin/env bash
# The streamlearn binary as users drive it: --help/--version, exit codes,
# replay's one-output-per-input rule with bad samples, stdin/stdout streaming,
# --init/--save round trip, gen's determinism, drift and label fraction, the
# exit-status rule (2 usage/config, 1 runtime) for missing files and all-bad
# input, messages that name the file and what was expected, warnings for
# settings that do not apply, one INI file shared by every command, boolean
# flag syntax, dev-kafka's --broker-count, and docs/CONFIGURATION.md kept
# equal to the option table.
set -euo pipefail
bin=${SL_BIN:?SL_BIN must point at the streamlearn binary}
src=${SL_SOURCE_DIR:?}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }
expect_exit() { # code description cmd...
  local want=$1 what=$2; shift 2
  local got=0
  "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
  if [ "$got" = "$want" ]; then ok "$what (exit $got)"; else no "$what: exit $got, want $want: $(head -c 300 "$tmp/err")"; fi
}
err_has() { # text description
  if grep -qF -- "$1" "$tmp/err"; then ok "$2"; else no "$2: stderr lacks \"$1\": $(head -c 300 "$tmp/err")"; fi
}

expect_exit 0 "--version" "$bin" --version
grep -q '^streamlearn [0-9]' "$tmp/out" && ok "--version prints the version" || no "--version output"
expect_exit 0 "--help" "$bin" --help
for c in replay gen; do
  expect_exit 0 "$c --help" "$bin" "$c" --help
  grep -q -- "--dim" "$tmp/out" && ok "$c --help lists --dim" || no "$c --help lacks --dim"
done
expect_exit 2 "unknown command" "$bin" frobnicate
expect_exit 2 "no command" "$bin"

# Usage and config errors exit 2 and name the flag.
expect_exit 2 "replay without --dim" "$bin" replay --input /dev/null
err_has "--dim" "missing --dim is named"
expect_exit 2 "replay with a bad --lr" "$bin" replay --dim 3 --lr abc --input /dev/null
err_has "--lr" "bad --lr is named"
STREAMLEARN_BATCH_SIZE=0 expect_exit 2 "batch size 0 from the environment" "$bin" replay --dim 3 --input /dev/null
err_has "STREAMLEARN_BATCH_SIZE" "the environment variable is named"
expect_exit 2 "softmax without --classes" "$bin" replay --model softmax --dim 3 --input /dev/null
err_has "--classes" "missing --classes is named"
expect_exit 2 "ftrl with hidden layers" "$bin" replay --dim 3 --hidden 4 --optimizer ftrl --input /dev/null
err_has "ftrl" "ftrl refusal says why"
expect_exit 2 "nesterov without momentum" "$bin" replay --dim 3 --optimizer sgd --nesterov --input /dev/null
printf '[model]\ndim = 3\nwat = 1\n' > "$tmp/bad.ini"
expect_exit 2 "unknown INI key" "$bin" replay -c "$tmp/bad.ini" --input /dev/null
err_has "wat" "unknown INI key is named"
expect_exit 2 "missing input file" "$bin" replay --dim 3 --input "$tmp/nope.msgpack"
err_has "--input $tmp/nope.msgpack: cannot open the samples file" "missing input file is named with its flag"
expect_exit 2 "missing --init file" "$bin" replay --dim 3 --init "$tmp/nope.safetensors" --input /dev/null
err_has "nope.safetensors" "missing --init file is named"
expect_exit 2 "missing -c file" "$bin" replay -c "$tmp/nope.ini" --dim 3 --input /dev/null
err_has "nope.ini" "missing config file is named"
expect_exit 1 "unwritable --output (a runtime failure)" "$bin" replay --dim 3 --input /dev/null --output "$tmp/no/such/dir/p"

# Replay: one output per input sample, in order, bad ones as error maps.
$py - "$tmp/mixed.msgpack" <<'PY'
import msgpack, struct, sys
p = msgpack.Packer(use_single_float=True)
out = b""
out += p.pack({"id": "a", "x": [1.0, 2.0, 3.0], "y": 1})
out += p.pack({"id": "b", "x": [1.0, 2.0], "y": 1})                  # wrong length
out += p.pack([{"id": "c", "x": {0: 1.0, "color=red": 2.0}}, {"id": "d", "x": [0.5, float("nan"), 1.0], "y": 0},
               {"id": "e", "x": struct.pack("<3f", 1, 2, 3), "y": 0, "w": 2.0}])
out += b"\xc1"                                                        # never valid msgpack
out += p.pack({"id": "f", "x": [1.0, 1.0, 1.0], "y": 7})              # not a 0/1 label
out += p.pack({"id": "g", "x": [1.0, 1.0, 1.0]})
out += b"\xdd\x00\xff\xff\xff"                                        # array32 of 16M items, 5 bytes
open(sys.argv[1], "wb").write(out)
PY
expect_exit 0 "replay over mixed good and bad samples" "$bin" replay --dim 3 --batch-size 2 --input "$tmp/mixed.msgpack" --output "$tmp/pred.msgpack"
$py - "$tmp/pred.msgpack" <<'PY' && ok "one prediction per sample, errors in place, ids kept" || no "replay output (see above)"
import msgpack, sys
preds = list(msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False, strict_map_key=False))
ids = [p.get("id") for p in preds]
assert ids == ["a", "b", "c", "d", "e", None, "f", "g", None], ids
good = {p["id"] for p in preds if "pred" in p}
assert good == {"a", "c", "e", "g"}, good
errs = [p["error"] for p in preds if "error" in p]
assert "expected 3" in errs[0] or "3 features" in errs[0], errs[0]
assert any("finite" in e for e in errs), errs
assert any("label" in e or "y" in e for e in errs[3:4]), errs
for p in preds:
    assert p["version"] == 0 and isinstance(p["step"], int)
    if "pred" in p:
        assert 0.0 <= p["pred"] <= 1.0
PY
grep -q '"bad":5' "$tmp/err" && ok "final metrics count the bad samples" || no "bad count in: $(tail -1 "$tmp/err")"

# stdin -> stdout streaming gives the same bytes as files.
"$bin" gen --dim 4 --samples 3000 --seed 5 --output "$tmp/s.msgpack" 2>/dev/null
"$bin" replay --dim 4 --seed 1 --input "$tmp/s.msgpack" --output "$tmp/p1" 2>/dev/null
"$bin" replay --dim 4 --seed 1 --input - --output - < "$tmp/s.msgpack" > "$tmp/p2" 2>/dev/null
cmp -s "$tmp/p1" "$tmp/p2" && ok "stdin/stdout replay equals file replay" || no "stdin/stdout replay differs"

# A truncated last object is one error map, not a hang or a crash.
head -c -3 "$tmp/s.msgpack" > "$tmp/trunc.msgpack"
expect_exit 0 "replay of a truncated file" "$bin" replay --dim 4 --input "$tmp/trunc.msgpack" --output "$tmp/pt"
$py -c "
import msgpack,sys
p=list(msgpack.Unpacker(open('$tmp/pt','rb')))
assert len(p)==3000 and 'error' in p[-1] and 'truncated' in p[-1]['error'], p[-1]
" && ok "truncated last object reported" || no "truncated last object"

# --save then --init continues from the saved weights; shape mismatch exits 2.
"$bin" replay --dim 4 --hidden 5 --input "$tmp/s.msgpack" --output /dev/null --save "$tmp/w.safetensors" 2>/dev/null
expect_exit 0 "--init from --save" "$bin" replay --dim 4 --hidden 5 --init "$tmp/w.safetensors" --input "$tmp/s.msgpack" --output /dev/null
expect_exit 2 "--init with other shapes" "$bin" replay --dim 4 --hidden 6 --init "$tmp/w.safetensors" --input "$tmp/s.msgpack" --output /dev/null
err_has "0.weight" "mismatch names the tensor"
err_has "[5, 4]" "mismatch gives the file's shape"
err_has "[6, 4]" "mismatch gives the model's shape"

# The scaler in the weights file: (x - scaler.shift) * scaler.mult before the
# layers reproduces the served model in numpy; --fold-scaler gives a plain
# network on raw features; --init of either predicts what the model does.
$py - "$tmp/raw.msgpack" <<'EOF'
import msgpack, random, sys
random.seed(5)
with open(sys.argv[1], "wb") as f:
    for i in range(300):
        x = [random.uniform(0, 5000), random.uniform(-1, 1) * 1e-3, float(i % 2), random.gauss(40, 3)]
        f.write(msgpack.packb({"x": x, "y": 1 if x[0] / 5000 + 1e3 * x[1] > 0.5 else 0, "id": i}))
EOF
learn=(--dim 4 --hidden 3 --activation tanh --batch-size 16)
"$bin" replay "${learn[@]}" --input "$tmp/raw.msgpack" --output /dev/null \
  --save "$tmp/scaled.safetensors" --report 2>"$tmp/report"
"$bin" replay "${learn[@]}" --input "$tmp/raw.msgpack" --output /dev/null \
  --save "$tmp/folded.safetensors" --fold-scaler 2>/dev/null
grep -q '^  score      accuracy 0\.[0-9]\{4\}' "$tmp/report" && ok "--report prints the prequential score" ||
  no "--report: $(cat "$tmp/report")"
grep -q 'scale auto (standard)' "$tmp/report" && grep -q 'optimizer  auto' "$tmp/report" &&
  ok "--report names the settings" || no "--report settings: $(cat "$tmp/report")"
# Predictions of the final weights on every sample, three ways: numpy on the
# exported tensors, and replay --init of each file over an unlabelled copy.
$py - "$tmp/raw.msgpack" "$tmp/nolabel.msgpack" <<'EOF'
import msgpack, sys
with open(sys.argv[2], "wb") as f:
    for s in msgpack.Unpacker(open(sys.argv[1], "rb")):
        f.write(msgpack.packb({"x": s["x"], "id": s["id"]}))
EOF
for w in scaled folded; do
  "$bin" replay "${learn[@]}" --init "$tmp/$w.safetensors" --input "$tmp/nolabel.msgpack" \
    --output "$tmp/again-$w.msgpack" 2>/dev/null
done
# --scale off with a file that has a scaler folds it into layer 0
"$bin" replay "${learn[@]}" --scale off --init "$tmp/scaled.safetensors" \
  --input "$tmp/nolabel.msgpack" --output "$tmp/again-off.msgpack" 2>"$tmp/err" ||
  no "--scale off --init with a scaler: $(cat "$tmp/err")"
if $py - "$tmp" <<'EOF'
import json, struct, sys
import msgpack, numpy as np
d = sys.argv[1]
def load(path):
    data = open(path, "rb").read()
    n = struct.unpack_from("<Q", data)[0]
    h = json.loads(data[8:8 + n])
    t = {k: np.frombuffer(data, "<f4", int(np.prod(v["shape"])), 8 + n + v["data_offsets"][0]).reshape(v["shape"])
         for k, v in h.items() if k != "__metadata__"}
    return t, h["__metadata__"]
def forward(t, x):
    h = np.tanh(x @ t["0.weight"].T.astype(np.float64) + t["0.bias"])
    return 1 / (1 + np.exp(-(h @ t["2.weight"].T.astype(np.float64) + t["2.bias"])))[:, 0]
x = np.array([s["x"] for s in msgpack.Unpacker(open(d + "/raw.msgpack", "rb"))], dtype=np.float32)
ts, ms = load(d + "/scaled.safetensors")
tf, mf = load(d + "/folded.safetensors")
assert ms["streamlearn.scale"] == "auto" and set(ts) >= {"scaler.shift", "scaler.mult", "scaler.var"}, ms
assert mf["streamlearn.scale"] == "folded" and not any(k.startswith("scaler.") for k in tf), mf
xs = (x - ts["scaler.shift"]) * ts["scaler.mult"]   # float32: subtraction, then multiplication
p_scaled = forward(ts, xs.astype(np.float64))
p_folded = forward(tf, x.astype(np.float64))
again = {w: np.array([p["pred"] for p in msgpack.Unpacker(open(d + "/again-%s.msgpack" % w, "rb"))])
         for w in ("scaled", "folded", "off")}
for name, a, b, tol in (("scaled", p_scaled, again["scaled"], 1e-5), ("folded", p_folded, again["folded"], 1e-5),
                        ("scaled vs folded", p_scaled, p_folded, 1e-4),
                        ("--scale off --init (folded on load)", p_scaled, again["off"], 1e-4)):
    if not np.allclose(a, b, atol=tol):
        sys.exit("%s: max difference %g" % (name, abs(a - b).max()))
EOF
then ok "exported scaler tensors and the folded file reproduce the model in numpy and through --init (also folded on load by --scale off)"
else no "exported scaler tensors"; fi
expect_exit 2 "--scale maxabs with a file carrying a standard scaler" "$bin" replay "${learn[@]}" \
  --scale maxabs --init "$tmp/scaled.safetensors" --input "$tmp/nolabel.msgpack" --output /dev/null
err_has "carries a standard scaler" "the scaler mismatch is named"

# gen: same seed, same bytes; the drift and the labelled fraction are as asked.
"$bin" gen --dim 4 --samples 3000 --seed 5 --output "$tmp/s2.msgpack" 2>/dev/null
cmp -s "$tmp/s.msgpack" "$tmp/s2.msgpack" && ok "gen is deterministic under a seed" || no "gen not deterministic"
"$bin" gen --dim 4 --samples 3000 --seed 6 --output "$tmp/s3.msgpack" 2>/dev/null
cmp -s "$tmp/s.msgpack" "$tmp/s3.msgpack" && no "different seeds gave the same stream" || ok "different seeds differ"
"$bin" gen --dim 8 --samples 20000 --seed 2 --labelled-fraction 0.25 --drift-at 10000 --noise 0 \
  --per-message 4 --output "$tmp/d.msgpack" 2>/dev/null
$py - "$tmp/d.msgpack" <<'PY' && ok "gen: label fraction, batching per message, drift point" || no "gen stream properties"
import msgpack, sys
import numpy as np
msgs = list(msgpack.Unpacker(open(sys.argv[1], "rb")))
assert all(isinstance(m, list) and len(m) == 4 for m in msgs), "4 samples per message"
s = [x for m in msgs for x in m]
assert [x["id"] for x in s] == list(range(20000))
frac = sum("y" in x for x in s) / len(s)
assert 0.23 < frac < 0.27, frac
def fit(part):  # least squares hyperplane on +-1 labels, then its accuracy on the other part
    X = np.array([x["x"] for x in part if "y" in x]); y = np.array([x["y"] for x in part if "y" in x]) * 2 - 1
    return X, y, np.linalg.lstsq(X, y, rcond=None)[0]
Xa, ya, wa = fit(s[:10000]); Xb, yb, wb = fit(s[10000:])
acc = lambda X, y, w: float(np.mean(np.sign(X @ w) == y))
assert acc(Xa, ya, wa) > 0.9 and acc(Xb, yb, wb) > 0.9, "each concept is learnable"
assert acc(Xb, yb, wa) < 0.8, "the concept changed at the drift point: %f" % acc(Xb, yb, wa)
PY
"$bin" gen --rate 2000 --dim 2 --samples 1000 --output /dev/null 2>"$tmp/err"
$py -c "
import json,sys
l=json.loads(open('$tmp/err').read().strip().splitlines()[-1])
assert l['seconds'] >= 0.45 and l['samples_per_s'] <= 2100, l
" && ok "gen honours --rate and reports the rate achieved" || no "gen --rate: $(cat "$tmp/err")"

# gen to a topic of the embedded cluster; read back with kcat (not our client).
"$bin" dev-kafka --topics gen-in:3 --bootstrap-file "$tmp/bootstrap" >/dev/null 2>"$tmp/dk.err" &
dk=$!
for _ in $(seq 100); do [ -s "$tmp/bootstrap" ] && break; sleep 0.1; done
if [ -s "$tmp/bootstrap" ]; then
  bs=$(cat "$tmp/bootstrap")
  "$bin" gen --dim 4 --samples 3000 --seed 5 --brokers "$bs" --topic gen-in 2>/dev/null &&
    ok "gen produces to a topic" || no "gen to a topic failed"
  kcat -b "$bs" -C -t gen-in -e -q -f '%k %S\n' > "$tmp/kc" 2>/dev/null || true
  [ "$(wc -l < "$tmp/kc")" = 3000 ] && ok "kcat reads every message gen produced" ||
    no "kcat read $(wc -l < "$tmp/kc") messages, want 3000"
  [ "$(cut -d' ' -f1 "$tmp/kc" | sort -n | uniq | wc -l)" = 3000 ] && ok "each message has its own key" ||
    no "message keys not unique"
else
  no "dev-kafka wrote no bootstrap file: $(cat "$tmp/dk.err")"
fi
kill "$dk" 2>/dev/null; wait "$dk" 2>/dev/null || true
"$bin" gen --dim 4 --samples 10 --topic t 2>"$tmp/err" >/dev/null && no "gen --topic without --brokers" ||
  { grep -q -- "--brokers" "$tmp/err" && ok "gen --topic without --brokers names the flag" || no "gen error: $(cat "$tmp/err")"; }

# Exit status for input that is all bad: 2 (the flags or the file are wrong),
# with every prediction still written as an error map.
"$bin" gen --dim 4 --samples 50 --seed 3 --output "$tmp/g4.msgpack" 2>/dev/null
expect_exit 2 "replay where every sample is bad (wrong --dim)" "$bin" replay --dim 5 --input "$tmp/g4.msgpack" --output "$tmp/p5"
err_has "all 50 samples were bad" "all-bad input says so"
err_has "check --dim" "all-bad input says what to check"
$py -c "
import msgpack
p=list(msgpack.Unpacker(open('$tmp/p5','rb')))
assert len(p)==50 and all('error' in x for x in p), p[:2]
" && ok "all-bad input still writes one error map per sample" || no "all-bad input output"
expect_exit 0 "an empty input file is not all bad" "$bin" replay --dim 4 --input /dev/null --output /dev/null

# Weights files: what the file is and what was expected.
"$bin" replay --dim 4 --hidden 3 --activation tanh --input "$tmp/g4.msgpack" --output /dev/null \
  --save "$tmp/h3.safetensors" 2>/dev/null
expect_exit 2 "replay with a safetensors file as --input" "$bin" replay --dim 4 --input "$tmp/h3.safetensors" --output /dev/null
err_has "samples were bad" "a safetensors file as input is refused"
expect_exit 2 "--init that is not safetensors" "$bin" replay --dim 4 --init "$tmp/g4.msgpack" --input /dev/null --output /dev/null
err_has "--init $tmp/g4.msgpack: not a safetensors file" "not-a-safetensors names the file and what it is not"
expect_exit 2 "--init with an extra layer" "$bin" replay --dim 4 --init "$tmp/h3.safetensors" --input /dev/null --output /dev/null
err_has "the file has 2 dense layers (0.weight, 0.bias, 2.weight, 2.bias), the model 1 (0.weight, 0.bias)" "extra layer: both layer lists, readable"
err_has "check --hidden" "extra layer: says which flag to check"
expect_exit 0 "--init saved with tanh, run with relu" "$bin" replay --dim 4 --hidden 3 --activation relu --init "$tmp/h3.safetensors" --input /dev/null --output /dev/null
err_has "saved with another activation" "activation mismatch warns"
err_has '"file":"tanh"' "the warning names the file's activation"
grep '"level":"warn"' "$tmp/err" | grep -q "activation" && ok "the activation note is a warning" || no "activation note level: $(cat "$tmp/err")"
expect_exit 0 "--init saved with tanh, run with tanh" "$bin" replay --dim 4 --hidden 3 --activation tanh --init "$tmp/h3.safetensors" --input /dev/null --output /dev/null
grep -q "another activation" "$tmp/err" && no "a matching activation warned" || ok "a matching activation does not warn"

# Settings that do not apply: a warning, not an error, not silence.
expect_exit 0 "--optimizer adam --momentum 0.9" "$bin" replay --dim 4 --optimizer adam --momentum 0.9 --input /dev/null --output /dev/null
err_has '"setting":"--momentum"' "an unused optimizer flag is named"
err_has '"optimizer":"adam"' "the warning names the optimizer"
expect_exit 0 "--optimizer ftrl --lr 0.1" "$bin" replay --dim 4 --optimizer ftrl --lr 0.1 --input /dev/null --output /dev/null
err_has '"setting":"--lr"' "ftrl does not use --lr: warned"
STREAMLEARN_BETA1=0.8 expect_exit 0 "sgd with STREAMLEARN_BETA1" "$bin" replay --dim 4 --optimizer sgd --input /dev/null --output /dev/null
err_has '"setting":"STREAMLEARN_BETA1"' "the warning names where the setting came from"
expect_exit 0 "--optimizer adam --nesterov" "$bin" replay --dim 4 --optimizer adam --nesterov --input /dev/null --output /dev/null
err_has '"setting":"--nesterov"' "--nesterov with adam warns"
expect_exit 0 "--activation without --hidden" "$bin" replay --dim 4 --activation tanh --input /dev/null --output /dev/null
err_has '"setting":"--activation"' "an activation without hidden layers warns"
expect_exit 0 "plain adam" "$bin" replay --dim 4 --optimizer adam --lr 0.01 --input /dev/null --output /dev/null
grep -q "setting ignored" "$tmp/err" && no "a setting that applies warned: $(cat "$tmp/err")" || ok "settings that apply do not warn"

# run: snapshot and HTTP flags without what they apply to warn (the missing
# --init then stops it before it connects anywhere: exit 2).
expect_exit 2 "run with --model-name and --http-bind alone" "$bin" run --brokers embedded --input-topic i \
  --output-topic o --dim 4 --model-name m --snapshot-every-ms 100 --http-bind 0.0.0.0 --init "$tmp/nope.safetensors"
err_has '"setting":"--model-name"' "--model-name without --redis warns"
err_has '"setting":"--snapshot-every-ms"' "--snapshot-every-ms without --redis warns"
err_has '"setting":"--http-bind"' "--http-bind without --http-port warns"
err_has "nope.safetensors" "then the missing --init file is named"

# Boolean flags take --flag or --flag=false; a separate word is refused.
expect_exit 2 "--nesterov false" "$bin" replay --dim 4 --optimizer sgd --momentum 0.9 --nesterov false --input /dev/null
err_has "--nesterov takes no separate value" "a separate boolean word is refused"
err_has "--nesterov=false" "the message shows the syntax"
expect_exit 0 "--nesterov=false" "$bin" replay --dim 4 --optimizer sgd --nesterov=false --input /dev/null --output /dev/null
expect_exit 2 "models list --json false" "$bin" models list --json false --redis redis://nonexistent.invalid
err_has "--json=false" "models: the boolean syntax is shown"

# One INI file for every command: other commands' keys are skipped (named at
# debug level); unknown keys are still errors.
cat > "$tmp/shared.ini" <<'INI'
; one file for run, replay, models and gen
brokers = localhost:9092
input-topic = samples
output-topic = predictions
model-name = clicks
dim = 4
input = g4.msgpack
json = true
[kafka]
acks = all
INI
(cd "$tmp" && expect_exit 0 "replay -c with run and models keys" "$bin" replay -c shared.ini --output /dev/null --log-level debug)
err_has '"key":"brokers"' "the skipped key is named at debug level"
err_has "belongs to another command" "the debug note says why"
(cd "$tmp" && expect_exit 0 "gen -c with run and replay keys" "$bin" gen -c shared.ini --samples 5 --output /dev/null)
expect_exit 1 "models -c with run keys reaches Redis" "$bin" models list -c "$tmp/shared.ini" --redis redis://nonexistent.invalid
printf 'dim = 4\nbatchsize = 3\n' > "$tmp/typo.ini"
expect_exit 2 "an INI key no command has" "$bin" replay -c "$tmp/typo.ini" --input /dev/null
err_has 'unknown key "batchsize"' "the unknown key is named"
expect_exit 2 "the shared deploy INI with a bad value still fails" env STREAMLEARN_DIM=x "$bin" replay -c "$tmp/shared.ini" --input /dev/null
err_has "STREAMLEARN_DIM" "bad values are still named"

# redis:// without a port: the message says which port was tried.
expect_exit 1 "Redis host without a port" "$bin" models list --redis redis://nonexistent.invalid --model-name m
err_has "nonexistent.invalid:6379" "the default port is shown"

# dev-kafka: --broker-count is its own name; an exported bootstrap list does not break it.
rm -f "$tmp/bs"
STREAMLEARN_BROKERS=localhost:9092 "$bin" dev-kafka --bootstrap-file "$tmp/bs" >/dev/null 2>"$tmp/dk.err" &
dk=$!
for _ in $(seq 100); do [ -s "$tmp/bs" ] && break; sleep 0.1; done
[ -s "$tmp/bs" ] && ok "dev-kafka starts with STREAMLEARN_BROKERS set to a bootstrap list" ||
  no "dev-kafka with STREAMLEARN_BROKERS: $(cat "$tmp/dk.err")"
kill "$dk" 2>/dev/null; wait "$dk" 2>/dev/null || true
expect_exit 2 "dev-kafka --broker-count 0" "$bin" dev-kafka --broker-count 0
err_has "--broker-count" "the count is named by its own name"
expect_exit 2 "dev-kafka --brokers 0 (the older name)" "$bin" dev-kafka --brokers 0
err_has "--brokers: 0 is out of range" "the older name is still a count, named as typed"

# --help: optional flags shown as optional, no references to files users lack.
expect_exit 0 "run --help" "$bin" run --help
grep -q -- "\[--group G\]" "$tmp/out" && ok "run --help shows --group as optional" || no "run --help: $(head -3 "$tmp/out")"
for c in run replay gen dev-kafka models help-config; do
  "$bin" "$c" --help >"$tmp/help" 2>&1 || true
  grep -qiE "CONTRACT|FACTS\.md" "$tmp/help" && no "$c --help cites a file users do not have" || ok "$c --help cites no missing file"
done

# The configuration reference is generated from the option table.
"$bin" help-config > "$tmp/CONFIGURATION.md"
diff -u "$src/docs/CONFIGURATION.md" "$tmp/CONFIGURATION.md" >/dev/null && ok "docs/CONFIGURATION.md is up to date" ||
  no "docs/CONFIGURATION.md differs from 'streamlearn help-config' (regenerate it)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
