#!/usr/bin/env bash
# Every shell and Python example in the Markdown files runs as written against
# the built binary (marker convention: scripts/doc_examples.py, docs/CONTRIBUTING.md).
set -euo pipefail
exec /usr/bin/python3 "${SL_SOURCE_DIR:?}/scripts/doc_examples.py" --bin "${SL_BIN:?}"
