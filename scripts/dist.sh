#!/usr/bin/env bash
# `make dist`: every artefact into dist/, each stamped with the same core version.
# The wheel is built here; each deployable adds its build as a script in scripts/dist.d/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh "" >/dev/null
.venv/bin/python -m pip install -q build 2>&1 | grep -v -E "^WARNING: Location" || true
rm -rf dist && mkdir -p dist
.venv/bin/python -m build --wheel --outdir dist . >/dev/null
for step in scripts/dist.d/*.sh; do
    [ -e "$step" ] || continue
    echo "== dist: $step"
    bash "$step"
done
ls -l dist
