"""VirusTotal lookups go through the proxy HTTP(S)_PROXY names, as the requests-based connectors' do
(contract test: vt-py against the VirusTotal contract server, behind a small forwarding HTTP proxy). vt-py's
aiohttp session reads no proxy variable, so behind an egress proxy every lookup failed as "VirusTotal
unreachable" while OTX and MISP worked. NO_PROXY still exempts a host."""
from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.connectors.intel.virustotal import VirusTotalEnricher

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


class ForwardingProxy:
    """Takes absolute-form requests (`GET http://host/path`, what a client sends an HTTP proxy for an http
    target), records each URL, and forwards them with their headers."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # not itself, via $http_proxy

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy.seen.append(self.path)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "proxy-connection")}
                try:
                    with direct.open(urllib.request.Request(self.path, headers=headers), timeout=10) as r:
                        status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
                except urllib.error.HTTPError as exc:
                    status, body, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _enrich(vt: VirusTotalServer) -> dict:
    event = AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()
    enricher = VirusTotalEnricher("k", host=vt.url, request_timeout=5)
    try:
        return enricher.enrich_all([event])[0]["meta"]["custom"]["enrichment"]["virustotal"]
    finally:
        enricher.close()


def test_contract_lookups_go_through_the_environment_proxy(monkeypatch):
    proxy = ForwardingProxy()
    try:
        with VirusTotalServer(api_key="k") as vt:
            vt.add_file(SHA256, last_analysis_stats={"malicious": 61, "undetected": 9})
            for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            monkeypatch.setenv("http_proxy", proxy.url)
            block = _enrich(vt)
            assert block["status"] == "complete" and block["indicators"][0]["malicious"] == 61
            assert proxy.seen == [f"{vt.url}/api/v3/files/{SHA256}"]
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            monkeypatch.setenv("no_proxy", "127.0.0.1")
            assert _enrich(vt)["status"] == "complete"
            assert len(proxy.seen) == 1                   # exempt: straight to the server
    finally:
        proxy.close()


def test_contract_a_proxy_vt_py_cannot_use_is_passed_by(monkeypatch, caplog):
    """ALL_PROXY=socks5://… (curl's) is not an HTTP proxy, which aiohttp alone takes: every lookup failed with a
    ValueError reported as an unreadable answer. It is warned about and the lookups go direct, as before."""
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 61, "undetected": 9})
        for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("ALL_PROXY", "socks5://user:pw-secret@127.0.0.1:9")
        monkeypatch.setenv("all_proxy", "socks5://user:pw-secret@127.0.0.1:9")
        with caplog.at_level("WARNING"):
            block = _enrich(vt)
    assert block["status"] == "complete", block
    assert "not an HTTP proxy (socks5://)" in caplog.text and "pw-secret" not in caplog.text
