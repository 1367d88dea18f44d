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


def test_a_get_manifest_error_echoing_the_request_reaches_the_server_log_masked(integration, demisto, medallion,
                                                                                monkeypatch):
    """A fetch splitting a page that straddles the settle cutoff asks Get Manifest; an error there is logged (debug)
    and Get Objects lists the ids instead. The log line quoted the error whole, unmasked: a server (or a proxy in
    front of it) answering with the request it got put the instance's Basic credential in the server log; and it
    cut the text at 200 characters before any masking could see a secret whole (helper 75)."""
    import base64

    from servers.medallion import PASSWORD, USER
    from strategies import event_dicts
    from taxii_settle_helpers import SETTLED, add
    older, newer = event_dicts(4, seed=7501, event_type="threat_intel"), event_dicts(2, seed=7502, event_type="threat_intel")
    add(medallion, older)
    medallion.clock_offset = SETTLED                  # settled; the next Add is fresh: the one page straddles the cutoff
    add(medallion, newer)
    flask_app = medallion.server.app.app
    echoed: list[str] = []

    def manifest_echoes_the_request(environ, start_response):
        if not environ["PATH_INFO"].endswith("/manifest/"):
            return flask_app(environ, start_response)
        echoed.append(environ.get("HTTP_AUTHORIZATION", ""))
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [f"bad request: Authorization: {environ.get('HTTP_AUTHORIZATION', '')}".encode()]
    monkeypatch.setattr(medallion.server.app, "app", manifest_echoes_the_request)
    params = {"url": medallion.collection_url(), "source_type": "taxii", "max_fetch": "100", "settle": "60",
              "credentials": {"identifier": USER, "password": PASSWORD}}
    assert run_command(integration, demisto, "fetch-incidents", params=params) == []
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert echoed == [f"Basic {basic}"]               # the manifest was asked, and its error quoted the credential
    logged = [message for _, message in demisto.logs if "Get Manifest failed" in message]
    assert logged and "bad request: Authorization: Basic ***" in logged[0], logged
    shown = json.dumps(demisto.logs) + json.dumps(demisto.results_log)
    assert basic not in shown and basic[:40] not in shown and PASSWORD not in shown
