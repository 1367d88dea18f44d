#!/usr/bin/env bash
# Creates .venv (if missing) and installs the project with the given extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
fi
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
.venv/bin/python -m pip install -q -e "$spec" 2>&1 | grep -v -E "^WARNING: Location|is ignored" || true
.venv/bin/python -c "import wia_security" # fail loudly if the install did not work
