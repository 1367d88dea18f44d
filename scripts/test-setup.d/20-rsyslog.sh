#!/usr/bin/env bash
# rsyslog from Debian for the QRadar/syslog connector tests (tests/servers/rsyslog.py starts its own
# rsyslogd on loopback ports; the package's system service is not needed). Idempotent.
set -euo pipefail
if command -v rsyslogd >/dev/null 2>&1 && [ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so ] \
   || ls /usr/lib/*/rsyslog/lmnsd_ossl.so >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends rsyslog rsyslog-openssl >/dev/null
