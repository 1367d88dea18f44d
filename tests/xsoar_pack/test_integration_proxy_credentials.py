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
