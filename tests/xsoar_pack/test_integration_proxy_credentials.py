"""The integration with "Use system proxy settings" behind a proxy that refuses it with 407 and quotes what it
got (tests/servers/refusing_proxy.py): the proxy's credentials (in HTTP_PROXY / HTTPS_PROXY, as the engine sets
them) reach the war-room error and the server log only masked. The stand-in BaseClient sends through requests,
which takes the proxy from the environment as XSOAR's BaseClient does with proxy=True."""
from __future__ import annotations

import json
import os

import pytest

from servers.refusing_proxy import BASIC_LATIN1, USERINFO, RefusingProxy, leaked

from .conftest import run_command

TOKEN = "xsoar-proxy-test-token-7e51a0"


@pytest.fixture
def refusing_proxy(monkeypatch):
    """A 407 proxy in the proxy variables (and no other of the machine running the tests)."""
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    proxy = RefusingProxy()
    try:
        url = proxy.url(USERINFO)
        monkeypatch.setenv("HTTP_PROXY", url)
        monkeypatch.setenv("HTTPS_PROXY", url)
        yield proxy
    finally:
        proxy.close()


@pytest.mark.parametrize("command", ["test-module", "fetch-incidents", "wia-get-events"])
def test_a_proxy_407_page_quoting_its_credentials_is_masked_in_the_war_room(integration, demisto, refusing_proxy,
                                                                            command):
    params = {"url": "http://gateway.example.invalid:8080", "source_type": "gateway", "proxy": True,
              "credentials": {"identifier": "", "password": TOKEN}, "max_fetch": "3"}
    (entry,) = run_command(integration, demisto, command, params=params)
    assert entry["Type"] == 4 and "407" in entry["Contents"], entry
    # the proxy was asked, with the credentials, and its page quoted them back
    assert refusing_proxy.seen and refusing_proxy.seen[-1] == f"Basic {BASIC_LATIN1}"
    assert "Proxy-Authorization: Basic ***" in entry["Contents"]
    shown = json.dumps(demisto.results_log) + json.dumps(demisto.logs)
    assert leaked(shown) == [] and TOKEN not in shown


def test_a_short_proxy_password_is_masked_within_its_pair_only_not_all_over_the_war_room(integration, demisto,
                                                                                        monkeypatch):
    """The core's rule (wia_security.redact.MIN_CHARS): a value under 8 characters is masked only within its pair and
    the Proxy-Authorization base64. The Redactor took every form of 4 characters or more, so a proxy password such as
    "events" garbled each message naming /v1/events (helper 75)."""
    import base64
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    proxy = RefusingProxy()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url("relay:events"))
        monkeypatch.setenv("HTTPS_PROXY", proxy.url("relay:events"))
        params = {"url": "http://gateway.example.invalid:8080", "source_type": "gateway", "proxy": True,
                  "credentials": {"identifier": "", "password": TOKEN}, "max_fetch": "3"}
        (entry,) = run_command(integration, demisto, "test-module", params=params)
    finally:
        proxy.close()
    basic = base64.b64encode(b"relay:events").decode()
    assert proxy.seen and proxy.seen[-1] == f"Basic {basic}"
    assert entry["Type"] == 4 and "407" in entry["Contents"], entry
    assert "/v1/events" in entry["Contents"] and "Proxy-Authorization: Basic ***" in entry["Contents"], entry
    shown = json.dumps(demisto.results_log) + json.dumps(demisto.logs)
    assert basic not in shown and "relay:events" not in shown and TOKEN not in shown
