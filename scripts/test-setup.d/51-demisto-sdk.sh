#!/usr/bin/env bash
# demisto-sdk (the XSOAR pack's validate/zip-packs gate) in its own venv, .venv-demisto: it is
# ~340 MB with its own pins (mypy, pylint, neo4j), which must not meet the project's .venv.
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEMISTO_SDK_VERSION="${DEMISTO_SDK_VERSION:-1.39.13}"
VENV=.venv-demisto
if [ -x "$VENV/bin/demisto-sdk" ] \
   && "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('demisto-sdk') != '$DEMISTO_SDK_VERSION')" 2>/dev/null; then
    exit 0
fi
command -v git >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q git >/dev/null; }
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v -E "^WARNING: Location" || true
"$VENV/bin/python" -m pip install -q "demisto-sdk==$DEMISTO_SDK_VERSION" 2>&1 | grep -v -E "^WARNING: Location|is ignored" || true
"$VENV/bin/demisto-sdk" --version >/dev/null
