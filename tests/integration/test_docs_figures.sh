#!/usr/bin/env bash
# The benchmark figures in README.md and docs/BENCHMARKS.md equal what
# bench/figures.py renders from the committed bench/results/*.json, and every
# results file is shown by some figure.
set -euo pipefail
exec /usr/bin/python3 "${SL_SOURCE_DIR:?}/bench/figures.py" --check
