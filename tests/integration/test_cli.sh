#!/usr/bin/env bash
# The streamlearn binary as users drive it: --help/--version, exit codes,
# replay's one-output-per-input rule with bad samples, stdin/stdout streaming,
# --init/--save round trip, gen's determinism, drift and label fraction, and
# docs/CONFIGURATION.md kept equal to the option table.
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
expect_exit 1 "missing input file" "$bin" replay --dim 3 --input "$tmp/nope.msgpack"
err_has "nope.msgpack" "missing input file is named"

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
         for w in ("scaled", "folded")}
for name, a, b, tol in (("scaled", p_scaled, again["scaled"], 1e-5), ("folded", p_folded, again["folded"], 1e-5),
                        ("scaled vs folded", p_scaled, p_folded, 1e-4)):
    if not np.allclose(a, b, atol=tol):
        sys.exit("%s: max difference %g" % (name, abs(a - b).max()))
EOF
then ok "exported scaler tensors and the folded file reproduce the model in numpy and through --init"
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

# The configuration reference is generated from the option table.
"$bin" help-config > "$tmp/CONFIGURATION.md"
diff -u "$src/docs/CONFIGURATION.md" "$tmp/CONFIGURATION.md" >/dev/null && ok "docs/CONFIGURATION.md is up to date" ||
  no "docs/CONFIGURATION.md differs from 'streamlearn help-config' (regenerate it)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
