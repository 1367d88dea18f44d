"""The configured credentials are the only ones sent: requests (trust_env, kept for proxies and CA bundles) adds
Basic auth from ~/.netrc or $NETRC to any request without an auth of its own. For HEC that replaced the
"Authorization: Splunk <token>" header, so every event was refused (401) and dead-lettered; for a connector whose
key is a header of its own (OTX, SOAR, QRadar) it sent a user's password beside the key."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "servers"))  # otx_contract imports intel_http by name
from servers.hec_contract import HecContractServer  # noqa: E402
from servers.intel_http import Request  # noqa: E402
from servers.otx_contract import OtxServer  # noqa: E402

from wia_security.connectors.delivery import DeliveryPolicy  # noqa: E402
from wia_security.connectors.intel.otx import OtxSource  # noqa: E402
from wia_security.connectors.splunk.hec import HecSink  # noqa: E402

HEC_TOKEN = "5e1c2a3b-0d4f-4e6a-9b8c-7d6e5f4a3b2c"
OTX_KEY = "otx-netrc-test-key"
FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.005, max_attempts=2)


@pytest.fixture
def netrc(tmp_path, monkeypatch):
    path = tmp_path / "netrc"
    path.write_text("machine 127.0.0.1\nlogin admin\npassword netrc-password-0c7\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    return path


def test_contract_hec_keeps_its_token_header_with_a_netrc_entry_for_the_host(netrc, samples):
    events = list(samples.values())
    with HecContractServer({HEC_TOKEN: {}}) as hec:
        with HecSink(hec.url, token=HEC_TOKEN, delivery=FAST, sleep=lambda _s: None) as sink:
            report = sink.send(events)
            report.merge(sink.flush())
        assert (report.delivered, report.failed) == (len(events), [])      # before: 0 delivered, 401 each
        assert {e["event"]["id"] for e in hec.events} == {e["id"] for e in events}


class _RecordingOtx(OtxServer):
    def __init__(self) -> None:
        super().__init__(OTX_KEY)
        self.authorizations: list[str | None] = []

    def handle(self, req: Request, headers: dict[str, str]):
        self.authorizations.append(headers.get("authorization"))
        return super().handle(req, headers)


def test_contract_otx_sends_its_key_and_no_netrc_password(netrc):
    with _RecordingOtx() as server:
        list(OtxSource(OTX_KEY, base_url=server.url).poll())
    assert server.authorizations and server.authorizations == [None] * len(server.authorizations)


def test_a_redirect_keeps_the_configured_credentials_and_adds_no_netrc_password(netrc):
    """requests' rebuild_auth adds ~/.netrc's credentials for the redirect's host: a same-host 307 replaced
    'Authorization: Splunk <token>' with the netrc user's Basic password (helper 125's probe). A redirect to
    another host still drops the credentials (requests' rule, and the connectors' own key headers)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from wia_security.connectors.delivery.http import new_session

    seen: dict[str, str | None] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen[self.path] = self.headers.get("Authorization")
            if self.path == "/start":
                self.send_response(307)
                self.send_header("Location", "/moved")
            elif self.path == "/elsewhere":
                self.send_response(307)
                self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/other-host")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        session = new_session(headers={"Authorization": f"Splunk {HEC_TOKEN}"})
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert session.get(f"{base}/start", timeout=30).status_code == 200
        assert session.get(f"{base}/elsewhere", timeout=30).status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    assert seen["/start"] == seen["/moved"] == f"Splunk {HEC_TOKEN}"          # before: Basic from netrc on /moved
    assert seen["/other-host"] is None                                        # localhost is another host
