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
# The whole suite (no arguments) also runs the core tests under the newest Python >= 3.12 here, if any.
# It runs alongside the main run: both spend much of their time waiting on servers (brokers, crash
# tests, timeouts). Its output is shown after the main run's.
newer_pid=""
if [ $# -eq 0 ]; then
    newer_log=$(mktemp)
    trap 'rm -f "$newer_log"' EXIT
    # `trap -`: a background job of a non-interactive shell starts with SIGINT and SIGQUIT ignored, and
    # the signal tests need them as a user's shell leaves them
    ( trap - INT QUIT; exec scripts/test-newer-python.sh ) >"$newer_log" 2>&1 &
    newer_pid=$!
fi
# Worker processes (pytest-xdist): most of the suite's time is spent waiting on servers, child processes and
# timeouts, not on the CPU, so 4 workers on 2 cores take the main run from ~24 to ~10 minutes. Tests are
# handed out as workers free up (worksteal: the long crash and fault tests do not queue behind one
# worker). WIA_TEST_WORKERS=0 runs in this process (for debugging); a run with arguments (one file,
# `-k ...`) is not split unless WIA_TEST_WORKERS says so.
workers="${WIA_TEST_WORKERS:-}"
[ -n "$workers" ] || { [ $# -eq 0 ] && workers=4 || workers=0; }
split=()
[ "$workers" = "0" ] || split=(-n "$workers" --dist worksteal)
.venv/bin/python -m pytest -q -p no:cacheprovider "${split[@]}" "$@" || status=$?
if [ -n "$newer_pid" ]; then
    newer_status=0
    wait "$newer_pid" || newer_status=$?
    cat "$newer_log"
    [ "$status" -ne 0 ] || status=$newer_status
fi
exit "$status"
