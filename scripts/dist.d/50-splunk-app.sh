#!/usr/bin/env bash
# The Splunk app package: dist/wia_security-<core version>.tgz (install it from Apps > Manage Apps >
# Install app from file). The build vendors the core and the SOAR connectors into bin/lib.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python splunk_app/build.py --out dist 2>&1 | grep -v -E "^WARNING: Location|is ignored" || true
version=$(.venv/bin/python -c "import wia_security; print(wia_security.__version__)")
test -s "dist/wia_security-${version}.tgz"
