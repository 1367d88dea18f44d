"""A web page on another site cannot make the browser write to the gateway or read its stream.

A page can make the browser POST to the gateway without a CORS preflight (a form, or `fetch` with a text/plain
body) and open a WebSocket to it (browsers apply no same-origin policy there), and the browser adds the Basic
credentials it remembers for the gateway (typed into the TAXII endpoint's 401 prompt), or nothing at all when the
gateway runs with --allow-anonymous. Before, such a page could inject events through POST /v1/events and the HEC
endpoint and read every event from /v1/stream of a gateway on the user's machine. Browsers mark those requests
with Origin and Sec-Fetch-Site; forwarders, SDKs and curl send neither. Real gateway, real requests and websockets
clients, the headers a browser sends."""
from __future__ import annotations

import asyncio
import base64

import pytest
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from wia_security import AlertBuilder, jsonio

from gateway_helpers import AUTH, TOKEN

EVIL = "https://evil.example"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"wia:{TOKEN}".encode()).decode()}


def _event() -> str:
    return jsonio.dumps(AlertBuilder().title("injected?").build().to_dict())


def _stored(gw) -> int:
    return len(requests.get(f"{gw.url}/v1/events", params={"after": "0"}, headers=AUTH, timeout=30).json()["events"])


@pytest.mark.parametrize("browser", [{"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"},
                                     {"Origin": "http://localhost:1", "Sec-Fetch-Site": "same-site"}])
def test_a_cross_site_post_is_refused_and_nothing_is_stored(make_gateway, browser):
    gw = make_gateway(tokens=[], allow_anonymous=True)
    form = {"Content-Type": "text/plain", **browser}              # what a page can send without a preflight
    answer = requests.post(f"{gw.url}/v1/events", data=_event(), headers=form, timeout=30)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "E2002", answer.text
    hec = requests.post(f"{gw.url}/services/collector/event", data='{"event": {"x": 1}}', headers=form, timeout=30)
    assert hec.status_code == 403
    assert _stored(gw) == 0


def test_remembered_basic_credentials_do_not_let_a_page_write(make_gateway):
    gw = make_gateway()
    hec = {"Content-Type": "text/plain", "Origin": EVIL, **BASIC}
    assert requests.post(f"{gw.url}/services/collector/event", data=jsonio.dumps({"event": {"a": 1}}), headers=hec,
                         timeout=30).status_code == 403
    assert requests.post(f"{gw.url}/v1/events", data=_event(), headers=hec, timeout=30).status_code == 403
    assert _stored(gw) == 0
    metrics = requests.get(f"{gw.url}/metrics", headers=AUTH, timeout=30).text.splitlines()
    assert {'wia_gateway_requests_refused_total{source="http",reason="cross_site"} 1',
            'wia_gateway_requests_refused_total{source="hec",reason="cross_site"} 1'} <= set(metrics)


def test_forwarders_clients_sending_their_own_origin_and_navigations_are_served(make_gateway):
    gw = make_gateway()
    host = gw.url.split("://", 1)[1]
    plain = requests.post(f"{gw.url}/v1/events", data=_event(), headers={**AUTH, "Content-Type": "application/json"},
                          timeout=30)
    # a client library that sends the target's own Origin (websocket-client does), without a browser's Sec-Fetch-*
    same = requests.post(f"{gw.url}/v1/events", data=_event(), timeout=30, headers={**AUTH, "Origin": f"http://{host}"})
    assert plain.status_code == 200 and same.status_code == 200, (plain.text, same.text)
    read = requests.get(f"{gw.url}/v1/events", params={"after": "0"}, headers={**AUTH, "Origin": EVIL}, timeout=30)
    assert read.status_code == 200 and len(read.json()["events"]) == 2       # reads: a page cannot see the answer
    for site in ("none", "same-origin", "cross-site"):                         # a user's navigation (typed, a link)
        typed = requests.get(f"{gw.url}/v1/events", headers={**AUTH, "Sec-Fetch-Site": site, "Sec-Fetch-Mode":
                                                                 "navigate"}, timeout=30)
        assert typed.status_code == 200, site


REBOUND = "rebound.example"


def test_a_dns_rebinding_page_can_neither_read_nor_write_nor_open_the_stream(make_gateway):
    """A page at http://rebound.example:PORT whose name then resolves to the gateway's address: the browser sends
    its fetches to the gateway as same-origin ones, answers readable, credentials none needed (--allow-anonymous)."""
    gw = make_gateway(tokens=[], allow_anonymous=True)
    requests.post(f"{gw.url}/v1/events", data=_event(), timeout=30)            # a forwarder's event
    page = {"Host": f"{REBOUND}:{gw.port}", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    read = requests.get(f"{gw.url}/v1/events", params={"after": "0"}, headers=page, timeout=30)
    assert read.status_code == 403 and read.json()["error"]["code"] == "E2002", read.text
    write = requests.post(f"{gw.url}/v1/events", data=_event(), timeout=30,
                          headers={**page, "Origin": f"http://{REBOUND}:{gw.port}", "Content-Type": "text/plain"})
    assert write.status_code == 403
    assert _stored(gw) == 1

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(gw.ws_url, origin=f"http://{REBOUND}:{gw.port}",
                               additional_headers={"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "websocket"}):
                pass
        assert refused.value.response.status_code == 403
    asyncio.run(scenario())


def test_a_cross_site_websocket_cannot_read_the_stream(make_gateway):
    gw = make_gateway(tokens=[], allow_anonymous=True)

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(gw.ws_url, origin=EVIL):
                pass
        assert refused.value.response.status_code == 403
        async with connect(gw.ws_url) as ws:                                   # an SDK: no Origin
            await ws.send(jsonio.dumps({"action": "subscribe", "filters": {}}))
            assert jsonio.loads(await asyncio.wait_for(ws.recv(), 30))["action"] == "subscribed"

    asyncio.run(scenario())
