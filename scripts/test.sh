#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one: installs what it needs, then runs pytest.
# Each area adds its own set-up (Debian packages, validator venvs, server binaries) as a script in
# scripts/test-setup.d/, run in name order; each must be idempotent and quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh "test,all"
for step in scripts/test-setup.d/*.sh; do
    [ -e "$step" ] || continue
    echo "== test set-up: $step"
    bash "$step"
done
export WIA_NO_SKIPS=1
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
# The whole suite (no arguments) also runs the core tests under the newest Python >= 3.12 here, if any.
if [ $# -eq 0 ]; then
    scripts/test-newer-python.sh || { rc=$?; [ "$status" -ne 0 ] || status=$rc; }
fi
exit "$status"
