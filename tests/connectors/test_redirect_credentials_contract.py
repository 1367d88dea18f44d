"""A redirect to another origin never carries an API key. requests drops only `Authorization` on such a
redirect, and aiohttp (vt-py) drops none of a session's headers: X-OTX-API-KEY, QRadar's SEC and VirusTotal's
X-Apikey went on to wherever a Location header pointed (HEC and Splunk SOAR follow no redirects at all). Contract servers driven by the
real clients (requests, vt-py), a second local server standing for the other host."""
from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "servers"))

from intel_http import Fault  # noqa: E402
from otx_contract import OtxServer  # noqa: E402
from vt_contract import VirusTotalServer  # noqa: E402

from wia_security.builders import AlertBuilder  # noqa: E402
from wia_security.connectors.delivery import DeliveryPolicy  # noqa: E402
from wia_security.connectors.intel.otx import SUBSCRIBED_PATH, OtxSource  # noqa: E402
from wia_security.connectors.intel.virustotal import VirusTotalEnricher  # noqa: E402
from wia_security.connectors.qradar import QRadarClient  # noqa: E402
from wia_security.errors import DeliveryError  # noqa: E402

KEY = "api-key-0123456789-abcdef"
ONCE = DeliveryPolicy(max_wait=0, max_attempts=1)


class OtherHost:
    """A server on another origin (localhost vs 127.0.0.1, another port) that records what it was sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        other = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                other.received.append({k.lower(): v for k, v in self.headers.items()})
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.httpd.server_address[1]}/collect"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def keys_seen(self) -> list[str]:
        return [v for headers in self.received for v in headers.values() if KEY in v]


@pytest.fixture
def other_host():
    host = OtherHost()
    yield host
    host.httpd.shutdown()
    host.httpd.server_close()


def redirect(server, to: str) -> None:
    server.faults.append(Fault(302, None, headers={"Location": to}))


def test_contract_otx_key_does_not_follow_a_redirect_to_another_host(other_host):
    with OtxServer(api_key=KEY) as otx:
        redirect(otx, other_host.url)
        with pytest.raises(DeliveryError, match="HTTP 404"):
            list(OtxSource(KEY, base_url=otx.url, retry=ONCE).poll())
    assert len(other_host.received) == 1 and other_host.keys_seen() == []      # followed, without the key


def test_contract_otx_same_origin_redirect_keeps_the_key(other_host):
    with OtxServer(api_key=KEY) as otx:
        redirect(otx, f"{otx.url}{SUBSCRIBED_PATH}?limit=50")
        assert list(OtxSource(KEY, base_url=otx.url, retry=ONCE).poll()) == []   # authenticated after the redirect
        assert len(otx.calls(SUBSCRIBED_PATH)) == 2


def test_contract_qradar_sec_token_does_not_follow_a_redirect_to_another_host(other_host):
    with OtxServer(api_key=KEY) as server:                  # any contract server: only the redirect matters
        redirect(server, other_host.url)
        with pytest.raises(DeliveryError, match="HTTP 404"):
            list(QRadarClient(server.url, token=KEY).offenses())
    assert len(other_host.received) == 1 and other_host.keys_seen() == []


def test_contract_virustotal_key_does_not_follow_a_redirect(other_host):
    event = AlertBuilder().title("t").indicator("domain", "malware.example.com").build().to_dict()
    with VirusTotalServer(api_key=KEY) as vt:
        vt.add("domains", "malware.example.com", reputation=-30, last_analysis_stats={"malicious": 7})
        redirect(vt, other_host.url)
        enricher = VirusTotalEnricher(KEY, host=vt.url)
        try:
            enricher.enrich(event)
        finally:
            enricher.close()
        assert len(vt.calls()) == 1
    assert other_host.keys_seen() == []
