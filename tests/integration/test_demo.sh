#!/usr/bin/env bash
# test_demo.sh - the Quick start's first command in its bounded CI form:
# `scripts/demo.sh --quick --bin $SL_BIN` must exit 0, print the summary
# (samples, accuracy before and after the drift), list versions in Redis,
# roll back on the running worker, and leave no redis-server or dev-kafka behind.
set -uo pipefail

SL_BIN=${SL_BIN:?SL_BIN must name the streamlearn binary}
SRC=${SL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
TMP=$(mktemp -d /tmp/sl_demo_test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
check() { # check NAME CMD...: runs CMD, counts and reports the result
    local name=$1
    shift
    if "$@"; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "FAIL - $name"
        failed=$((failed + 1))
    fi
}
has() { grep -qE -- "$1" "$TMP/out"; }

DEMO_PIDFILE="$TMP/pids" timeout 180 "$SRC/scripts/demo.sh" --quick --bin "$SL_BIN" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "demo exits 0 (got $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -n 30 "$TMP/out" "$TMP/err"

check "summary: samples line counts every generated sample" has '^samples: 100000, each predicted then trained'
check "summary: accuracy before the drift" \
    has '^prequential accuracy \(last 5000 labelled\) before the drift: 0\.[0-9]{3}'
check "summary: accuracy after the drift" \
    has '^prequential accuracy \(last 5000 labelled\) after the drift: +0\.[0-9]{3}'
# The stream is learnable: a model that learned nothing would sit near 1/3.
acc_ok() {
    local a
    a=$(sed -n 's/.*after the drift: *\(0\.[0-9]*\).*/\1/p' "$TMP/out")
    [ -n "$a" ] && awk -v a="$a" 'BEGIN { exit !(a > 0.6) }'
}
check "accuracy after the drift is well above chance" acc_ok
check "a rollback was issued on the running worker" has '^== models pin [0-9]+; models rollback [0-9]+ --reason demo'
check "the worker switched to the rolled-back version" has '^== the running worker switched to version [0-9]+'
check "summary: rollback recorded" has '^rollback: head [0-9]+ -> [0-9]+ while running; the worker switched: yes'
# Training went on from the rolled-back version: some listed version has it as parent
# and is newer than the head that was replaced.
lineage_ok() {
    local from to
    read -r from to < <(sed -n 's/^rollback: head \([0-9]*\) -> \([0-9]*\).*/\1 \2/p' "$TMP/out")
    [ -n "$to" ] && awk -v from="$from" -v to="$to" \
        '$1 ~ /^[0-9]+$/ && $2 == to && $1 > from { found = 1 } END { exit !found }' "$TMP/out"
}
check "a version newer than the old head descends from the rollback target" lineage_ok
check "versions listed as models list prints them" has '^VERSION +PARENT +CREATED'
check "head is one of the listed versions" has '^[0-9]+ +[0-9]+ .* head '

gone() {
    [ -s "$TMP/pids" ] || return 1
    local name pid
    while read -r name pid _; do
        [ "$name" = workdir ] && continue
        if kill -0 "$pid" 2>/dev/null; then
            echo "still running: $name $pid"
            return 1
        fi
    done <"$TMP/pids"
}
check "redis-server and dev-kafka it started are gone" gone
leftover() {
    local dir
    dir=$(sed -n 's/^workdir - //p' "$TMP/pids" 2>/dev/null)
    [ -n "$dir" ] && [ ! -e "$dir" ]
}
check "temp dir removed" leftover
usage_rc() {
    "$SRC/scripts/demo.sh" --bogus >/dev/null 2>&1
    [ $? -eq 2 ]
}
check "unknown flag exits 2" usage_rc

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
