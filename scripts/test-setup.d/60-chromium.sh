#!/usr/bin/env bash
# Headless Chromium for the dashboard browser test (tests/core/dashboard/test_report_browser.py).
# Idempotent: does nothing when /usr/bin/chromium is already there. Debian's package, no download
# of a browser build of its own.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "60-chromium: not root and chromium missing; the browser test will report it" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
chromium --version
