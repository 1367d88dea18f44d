#!/usr/bin/env bash
# The Cloud Function (Pub/Sub / HTTP -> Security Command Center) zip and its custom IAM role.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python gcp_function/build.py --dist dist
