#!/usr/bin/env bash
# The Azure Function (Event Hub / HTTP -> Sentinel) zip and the Sentinel ARM template.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python azure_function/build.py --dist dist
