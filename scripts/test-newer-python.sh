#!/usr/bin/env bash
# The project supports Python >= 3.11 and the main suite runs on .venv's Python (3.11 on CI): this step
# runs the core tests, and the connector tests whose client libraries resolve to other versions on a
# newer Python (splunk-sdk 3.x, azure-functions 2.x), under the newest CPython >= 3.12 on the machine,
# from a NON-editable install (what a user gets). Its venv is .venv-py3.N (ignored by git), reused and
# only refreshed afterwards. With no such Python it prints one line and succeeds (the 3.11 run still
# covers everything). WIA_NEWER_PYTHON=/path/to/python picks the interpreter; WIA_NEWER_PYTHON=none skips.
set -euo pipefail
cd "$(dirname "$0")/.."

# About 7 minutes on 2 cores in 2 workers, alongside the main run. The connector tests are those whose behaviour
# differs on a newer Python: splunk-sdk 3.x (3.13+), azure-functions 2.x (3.13+), demisto-py's distutils
# import (3.12+), Python 3.13's X509_STRICT certificate checks (qradar TLS; Kafka TLS, whose XSOAR and
# Splunk app sources check the broker's certificate with Python's ssl before kafka-python), a reset reported where 3.11
# saw an early EOF (sentinel), and the gateway (its bounded close reaches into asyncio's TLS and TCP
# transports, whose internals change between versions). No server to set up: in-process contract servers, tansu (for
# tests/core/cli/test_pull_signals.py) from the test extra, rsyslog from test-setup.d/20-rsyslog.sh.
TESTS=(tests/core tests/connectors/splunk tests/connectors/azure tests/connectors/qradar
       tests/connectors/soar/test_xsoar_contract.py tests/connectors/intel/test_misp_contract.py
       tests/azure_function/test_function_app.py tests/connectors/test_sqlite.py tests/connectors/test_relay.py
       tests/connectors/kafka/test_kafka_tls.py tests/xsoar_pack/test_integration_kafka_tls.py
       tests/splunk_app/test_modular_input_kafka_tls.py tests/connectors/gateway)
# elastic: tests/core/cli/test_replay_emulator.py replays into the OpenSearch emulator; intel: the enrich tests of tests/core/cli
EXTRAS="test,kafka,splunk,azure,misp,soar,elastic,speedups,server,taxii,intel"

find_python() {
    local best="" best_minor=11 candidate minor
    for candidate in /root/.pyenv/versions/3.*/bin/python3 $(compgen -c python3. 2>/dev/null | sort -u); do
        candidate=$(command -v "$candidate" 2>/dev/null) || continue
        # CPython only (a PyPy or a debug build is not what users run), a final release, >= 3.12
        minor=$("$candidate" -c 'import sys, platform
v = sys.version_info
print(v.minor if platform.python_implementation() == "CPython" and v[:2] >= (3, 12) and v.releaselevel == "final" else 0)' \
                2>/dev/null) || continue
        if [ "${minor:-0}" -gt "$best_minor" ]; then best="$candidate"; best_minor="$minor"; fi
    done
    echo "$best"
}

python="${WIA_NEWER_PYTHON:-}"
[ -z "$python" ] && python=$(find_python)
if [ "$python" = "none" ]; then
    echo "== newer Python: not run (WIA_NEWER_PYTHON=none)"
    exit 0
elif [ -z "$python" ]; then
    echo "== newer Python: no CPython >= 3.12 on this machine; the suite ran on $(.venv/bin/python -V 2>&1) only"
    exit 0
fi
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=".venv-py$version"
echo "== newer Python: $("$python" -V 2>&1) ($python) in $venv"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v -E "^WARNING: Location" || true
fi
# A clean copy of what the wheel is built from: pip builds in the source tree, and a stale build/lib
# there could carry a removed module into the install.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar -c setup.py pyproject.toml README.md LICENSE core connectors | tar -x -C "$src"
"$venv/bin/python" -m pip install -q "$src[$EXTRAS]" 2>&1 | grep -v -E "^WARNING: Location|is ignored" || true
# pip keeps an installed wia-security of the same version: always replace it with this tree's.
"$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$src" 2>&1 | grep -v -E "^WARNING: Location" || true
"$venv/bin/python" -c "import wia_security, sys; assert 'site-packages' in wia_security.__file__, wia_security.__file__"

# Two workers (pytest-xdist, as the main run uses): it runs alongside the main run's four.
WIA_NO_SKIPS=1 exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -n "${WIA_NEWER_TEST_WORKERS:-2}" --dist worksteal \
    "${TESTS[@]}"
