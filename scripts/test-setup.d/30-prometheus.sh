#!/usr/bin/env bash
# Prometheus from Debian (`prometheus` and `promtool`) for the gateway's /metrics tests
# (tests/servers/prometheus.py starts its own server on a free loopback port with a temporary
# storage directory; the package's system service is not wanted). Idempotent.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# The postinst starts the service (on :9090) where invoke-rc.d allows it. A policy-rc.d that answers 101
# forbids that; containers usually have one already, so only install our own when there is none.
POLICY=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# installed by wia-security scripts/test-setup.d/30-prometheus.sh for one install\nexit 101\n' \
        | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    own_policy=1
    trap '$SUDO rm -f "$POLICY"' EXIT
fi

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# Belt and braces: if a service came up anyway (or was installed before with its service running), stop and
# disable it, so nothing of ours holds port 9090. None of this may fail the set-up.
if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
else
    [ -x /etc/init.d/prometheus ] && $SUDO /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    $SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true
    command -v deb-systemd-helper >/dev/null 2>&1 && $SUDO deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
fi
[ -z "$own_policy" ] || { $SUDO rm -f "$POLICY"; trap - EXIT; }

prometheus --version 2>&1 | head -n 1
promtool --version 2>&1 | head -n 1
