#!/usr/bin/env bash
# Learns well out of the box: `streamlearn replay` with shape flags only (its
# defaults: --optimizer auto, --scale auto) on real data sets bundled with
# scikit-learn (committed in tests/fixtures/quality, written by
# scripts/gen_quality_data.py --fixtures), three passes over one shuffle,
# batches of 16. Each must reach a committed floor of its prequential score
# (--report: accuracy, or R^2 for regression, over every labelled sample),
# and raw features must score what standardised ones do. The floors sit
# between the defaults' score and what PyTorch's defaults (Adam, lr 1e-3,
# raw features: --optimizer adam --scale off) reach, which fall well short:
# the test fails if the defaults regress to them.
set -euo pipefail
bin=${SL_BIN:?SL_BIN must point at the streamlearn binary}
fix=${SL_FIXTURES:?}/quality
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "FAIL - $1"; }

flags() { $py -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))[sys.argv[2]]['flags']))" \
  "$fix/sets.json" "$1"; }

# score STREAM ARGS...: the prequential score --report prints, three passes.
score() {
  local stream=$1; shift
  local z=$fix/$stream.msgpack.gz
  gzip -dc "$z" "$z" "$z" | "$bin" replay $(flags "$stream") --batch-size 16 --input - \
    --output /dev/null --report --log-level error "$@" 2>"$tmp/report" ||
    { echo "replay failed: $(cat "$tmp/report")" >&2; echo nan; return; }
  sed -n 's/^  score *\(accuracy\|R^2\) \([-0-9.na]*\).*/\2/p' "$tmp/report"
}
at_least() { # value floor description
  if awk -v v="$1" -v f="$2" 'BEGIN { exit !(v + 0 == v && v >= f) }'; then
    ok "$3: $1 >= $2"
  else
    no "$3: $1, floor $2"
  fi
}
below() { # value ceiling description
  if awk -v v="$1" -v c="$2" 'BEGIN { exit !(v + 0 == v && v < c) }'; then
    ok "$3: $1 < $2"
  else
    no "$3: $1, expected below $2"
  fi
}

# stream floor (defaults: measured 0.966, 0.868, 0.964, 0.406, 0.935)
while read -r stream floor; do
  s=$(score "$stream")
  at_least "$s" "$floor" "defaults on $stream"
  echo "$stream $s" >>"$tmp/scores"
done <<'EOF'
breast_cancer-raw 0.95
breast_cancer-std 0.95
breast_cancer-hashed 0.85
wine-raw 0.94
wine-std 0.94
diabetes-raw 0.38
diabetes-std 0.38
digits-sparse 0.92
EOF

# Raw and standardised features: the same score (online scaling).
for set in breast_cancer wine diabetes; do
  r=$(awk -v s="$set-raw" '$1 == s { print $2 }' "$tmp/scores")
  d=$(awk -v s="$set-std" '$1 == s { print $2 }' "$tmp/scores")
  if awk -v r="$r" -v d="$d" 'BEGIN { exit !(r - d < 0.005 && d - r < 0.005) }'; then
    ok "$set: raw features score as standardised ones ($r vs $d)"
  else
    no "$set: raw $r vs standardised $d"
  fi
done

# A hidden layer learns too (measured 0.966, 0.386).
at_least "$(score wine-raw --hidden 16)" 0.94 "defaults with --hidden 16 on wine-raw"
at_least "$(score diabetes-raw --hidden 16)" 0.36 "defaults with --hidden 16 on diabetes-raw"

# PyTorch's defaults on raw features fall below the floors: the floors mean something.
below "$(score breast_cancer-raw --optimizer adam --scale off)" 0.95 "Adam lr 1e-3, no scaling, breast_cancer-raw"
below "$(score wine-raw --optimizer adam --scale off)" 0.94 "Adam lr 1e-3, no scaling, wine-raw"
below "$(score diabetes-raw --optimizer adam --scale off)" 0.38 "Adam lr 1e-3, no scaling, diabetes-raw"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
