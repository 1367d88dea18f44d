#!/usr/bin/env bash
# The XSOAR content pack: dist/WIASecurity-<core version>.zip (upload it in Settings > Marketplace or
# with `demisto-sdk upload`). The build validates the pack with demisto-sdk (offline config), embeds
# the core in the integration and runs demisto-sdk zip-packs; demisto-sdk lives in .venv-demisto.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/test-setup.d/51-demisto-sdk.sh
.venv/bin/python xsoar_pack/build.py --out dist
version=$(.venv/bin/python -c "import wia_security; print(wia_security.__version__)")
test -s "dist/WIASecurity-${version}.zip"
