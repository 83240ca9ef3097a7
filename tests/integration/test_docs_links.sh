#!/usr/bin/env bash
# No Markdown file cites a file, link target or heading the repository lacks
# (scripts/doc_links.py says what is checked), and every metric the binary
# exports is listed where operators look for it.
set -euo pipefail
src=${SL_SOURCE_DIR:?}
rc=0
/usr/bin/python3 "$src/scripts/doc_links.py" || rc=1
metrics=$(grep -o 'streamlearn_[a-z_]*' "$src/cli/ops.c" | sort -u)
[ -n "$metrics" ] || { echo "FAIL - no metric names found in cli/ops.c"; exit 1; }
for m in $metrics; do
  for d in docs/OPERATIONS.md deploy/README.md; do
    if grep -q "\`$m\`" "$src/$d"; then
      echo "ok - $d lists $m"
    else
      echo "FAIL - $d does not list the metric $m (cli/ops.c exports it)"
      rc=1
    fi
  done
done
exit $rc
