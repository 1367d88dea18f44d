#!/usr/bin/env bash
# The main job on the embedded default: forward the bundled sample events into the SQLite store.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh "" >/dev/null
echo "== wia-security forward samples/*.json  (destination: sqlite:///wia-events.db)"
status=0
.venv/bin/wia-security forward samples/*.json || status=$?
echo
echo "== wia-security query  (what the store now holds)"
.venv/bin/wia-security query --limit 10
if [ "$status" = 1 ]; then
    echo
    echo "Two upstream samples carry null in optional string fields, which the schema forbids; they are in"
    echo "wia-dead-letter.ndjson with the reason. Run with --lenient to treat those nulls as absent."
fi
