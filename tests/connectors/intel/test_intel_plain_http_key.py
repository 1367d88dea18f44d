"""The VirusTotal and OTX API keys and QRadar's SEC token sent over plain http:// to a host that is not this
machine are warned about, as the other connectors' secrets are (delivery.urls.warn_plain_http_secret). The
hosts are TEST-NET addresses (RFC 5737) with ports no other test uses (the warning is once per destination
and process): constructing the clients connects to nothing."""
from __future__ import annotations

import logging

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


@pytest.mark.parametrize("open_, url, says", [
    (_virustotal, "http://198.51.100.109:10901", "virustotal:http://198.51.100.109:10901: the VirusTotal API key is "
                                                 "sent over plain HTTP to http://198.51.100.109:10901"),
    (_otx, "http://198.51.100.109:10902", "otx:198.51.100.109:10902: the OTX API key is sent over plain HTTP"),
    (_qradar, "http://198.51.100.109:10903", "qradar:198.51.100.109:10903: the SEC token is sent over plain HTTP"),
], ids=["virustotal", "otx", "qradar"])
def test_a_key_over_plain_http_to_another_host_is_warned_never_shown(open_, url, says, caplog):
    caplog.set_level(logging.WARNING)
    open_(url)
    warnings = _plain_http_warnings(caplog)
    assert len(warnings) == 1 and says in warnings[0]
    assert KEY not in caplog.text


@pytest.mark.parametrize("open_", [_virustotal, _otx, _qradar], ids=["virustotal", "otx", "qradar"])
@pytest.mark.parametrize("url", ["http://127.0.0.1:10904", "https://198.51.100.109:10905"], ids=["loopback", "https"])
def test_loopback_or_https_is_quiet(open_, url, caplog):
    caplog.set_level(logging.WARNING)
    open_(url)
    assert _plain_http_warnings(caplog) == []
