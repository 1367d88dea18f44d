#!/usr/bin/env bash
# The AWS Lambda forwarder: dist/wia-security-lambda-<version>.zip and a SAM template beside it.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python lambda/build.py --dist dist
