#!/usr/bin/env bash
# Splunk AppInspect (the Splunk app's packaging gate) in its own venv, .venv-appinspect.
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."
APPINSPECT_VERSION="${APPINSPECT_VERSION:-4.3.1}"
VENV=.venv-appinspect
if [ -x "$VENV/bin/splunk-appinspect" ] \
   && "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('splunk-appinspect') != '$APPINSPECT_VERSION')" 2>/dev/null; then
    exit 0
fi
# libmagic is needed by python-magic (AppInspect's file-type checks).
if ! ldconfig -p 2>/dev/null | grep -q libmagic.so.1; then
    (apt-get install -y -q libmagic1 >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q libmagic1 >/dev/null; })
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v -E "^WARNING: Location" || true
"$VENV/bin/python" -m pip install -q "splunk-appinspect==$APPINSPECT_VERSION" 2>&1 | grep -v -E "^WARNING: Location|is ignored" || true
"$VENV/bin/splunk-appinspect" --help >/dev/null
