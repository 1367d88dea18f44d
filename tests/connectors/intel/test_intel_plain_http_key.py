"""The VirusTotal and OTX API keys and QRadar's SEC token sent over plain http:// to a host that is not this
machine are warned about, as the other connectors' secrets are (delivery.urls.warn_plain_http_secret). The
hosts are TEST-NET addresses (RFC 5737) with a port drawn per test (the warning is once per destination and
process, so a fixed one would pass only the first time in a process): constructing the clients connects to
nothing."""
from __future__ import annotations

import logging
import random

import pytest

from wia_security.connectors.intel.otx import OtxSource
from wia_security.connectors.intel.virustotal import VirusTotalEnricher
from wia_security.connectors.qradar import QRadarClient

KEY = "key-value-109-5c2e7a"


def _plain_http_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "plain HTTP" in r.getMessage()]


def _virustotal(url: str) -> None:
    VirusTotalEnricher(KEY, host=url).close()


def _otx(url: str) -> None:
    OtxSource(KEY, base_url=url).close()


def _qradar(url: str) -> None:
    QRadarClient(url, token=KEY).close()


@pytest.mark.parametrize("open_, says", [
    (_virustotal, "virustotal:http://{0}: the VirusTotal API key is sent over plain HTTP to http://{0}"),
    (_otx, "otx:{0}: the OTX API key is sent over plain HTTP to http://{0}"),
    (_qradar, "qradar:{0}: the SEC token is sent over plain HTTP to http://{0}"),
], ids=["virustotal", "otx", "qradar"])
def test_a_key_over_plain_http_to_another_host_is_warned_never_shown(open_, says, caplog):
    netloc = f"198.51.100.{random.randrange(1, 255)}:{random.randrange(20000, 60000)}"
    caplog.set_level(logging.WARNING)
    open_(f"http://{netloc}")
    says = says.format(netloc)
    warnings = _plain_http_warnings(caplog)
    assert len(warnings) == 1 and says in warnings[0]
    assert KEY not in caplog.text


@pytest.mark.parametrize("open_", [_virustotal, _otx, _qradar], ids=["virustotal", "otx", "qradar"])
@pytest.mark.parametrize("url", ["http://127.0.0.1:10904", "https://198.51.100.109:10905"], ids=["loopback", "https"])
def test_loopback_or_https_is_quiet(open_, url, caplog):
    caplog.set_level(logging.WARNING)
    open_(url)
    assert _plain_http_warnings(caplog) == []
