"""A TAXII server (or whatever answers in its place) whose answer is not TAXII: `pull` says so and exits 2.

taxii2-client refuses an answer whose Content-Type is not `application/taxii+json` (a proxy's login page
answered 200, an HTML error page) with its own TAXIIServiceException, a collection with `can_read: false`
with an AccessError, and an answer without a Content-Type with a KeyError. None of them is an error `pull`
reports: each ended the run with a Python traceback. They are the connector's TaxiiError now, naming the endpoint.
"""
from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from wia_security.cli import main

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))
from intel_http import ContractServer  # noqa: E402

COLLECTION = "0f6c3d2e-8a41-4c7b-9e15-5b2d7a9c4e31"
TAXII = {"Content-Type": "application/taxii+json;version=2.1"}


class Answering(ContractServer):
    """The collection's information as TAXII; Get Objects answered with `page` (status, body, headers)."""

    def __init__(self, page: tuple[int, Any, dict[str, str]], can_read: bool = True) -> None:
        super().__init__()
        self.page, self.can_read = page, can_read

    def handle(self, req: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if req.path == f"/api1/collections/{COLLECTION}/":
            return 200, {"id": COLLECTION, "title": "t", "can_read": self.can_read, "can_write": False,
                         "media_types": ["application/stix+json;version=2.1"]}, dict(TAXII)
        return self.page


def pull(url: str, tmp_path: Path) -> int:
    return main(["pull", f"taxii+{url}?settle=0", "--to", f"sqlite:///{tmp_path}/s.db",
                 "--checkpoint", str(tmp_path / "cp.json"), "--dead-letter", str(tmp_path / "dl.ndjson")])


@pytest.mark.parametrize("page, can_read, said", [
    ((200, b"<html>Sign in to continue</html>", {"Content-Type": "text/html"}), True,
     "Got Content-Type: 'text/html' for Accept: 'application/taxii+json;version=2.1'"),
    ((200, {"more": False, "objects": []}, {"Content-Type": "application/json"}), True, "Got Content-Type: 'application/json'"),
    ((200, {"more": False, "objects": []}, dict(TAXII)), False, "does not allow reading"),
], ids=["login-page", "plain-json", "can-read-false"])
def test_pull_from_an_answer_that_is_not_taxii_exits_2_naming_the_endpoint(tmp_path, capsys, page, can_read, said):
    with Answering(page, can_read) as server:
        url = f"{server.url}/api1/collections/{COLLECTION}/"
        assert pull(url, tmp_path) == 2                      # before: a traceback (exit 1)
    err = capsys.readouterr().err
    assert said in err and f"/api1/collections/{COLLECTION}/" in err and "Traceback" not in err
    assert not (tmp_path / "cp.json").exists()


class NoContentType(BaseHTTPRequestHandler):
    """Answers every GET 200 with a JSON body and no Content-Type header at all."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = (b'{"id": "%s", "title": "t", "can_read": true, "can_write": false, "media_types": []}' % COLLECTION.encode()
                if self.path.rstrip("/").endswith(COLLECTION) else b'{"more": false, "objects": []}')
        self.send_response_only(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_pull_from_an_answer_without_a_content_type_exits_2(tmp_path, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), NoContentType)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert pull(f"http://127.0.0.1:{server.server_address[1]}/api1/collections/{COLLECTION}/", tmp_path) == 2
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert "the server answered without a Content-Type" in err and "Traceback" not in err


def test_a_sink_whose_api_root_answers_without_a_content_type_is_a_config_error(tmp_path, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), NoContentType)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"taxii+http://127.0.0.1:{server.server_address[1]}/api1/collections/{COLLECTION}/"
        events = tmp_path / "events.ndjson"
        events.write_text("")
        code = main(["forward", str(events), "--to", url, "--dead-letter", str(tmp_path / "dl.ndjson")])
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert code == 2 and "cannot read the API root: the server answered without a Content-Type" in err
    assert "Traceback" not in err                           # before: KeyError: 'content-type' out of main


class StatusBehindAProxy(ContractServer):
    """Add Objects answers a pending status; the first poll of the status gets a proxy's HTML page (200), later
    ones the complete status."""

    def __init__(self) -> None:
        super().__init__()
        self.status_polls = self.adds = 0

    def handle(self, req: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if req.path == "/api1/":
            return 200, {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                         "max_content_length": 1_000_000}, dict(TAXII)
        if req.path == f"/api1/collections/{COLLECTION}/":
            return 200, {"id": COLLECTION, "title": "t", "can_read": True, "can_write": True,
                         "media_types": ["application/stix+json;version=2.1"]}, dict(TAXII)
        if req.path.endswith("/objects/") and req.method == "POST":
            self.adds += 1
            self.added = [{"id": o["id"], "version": o["modified"]} for o in req.body["objects"]]
            return 202, self.status("pending"), dict(TAXII)
        if "/status/" in req.path:
            self.status_polls += 1
            if self.status_polls == 1:
                return 200, b"<html>Session expired, sign in again</html>", {"Content-Type": "text/html"}
            return 200, self.status("complete"), dict(TAXII)
        return 404, {"title": "not found", "http_status": "404"}, dict(TAXII)

    def status(self, state: str) -> dict[str, Any]:
        done = state == "complete"
        return {"id": "status-1", "status": state, "request_timestamp": "2025-03-01T12:00:00.000000Z",
                "total_count": len(self.added), "success_count": len(self.added) if done else 0,
                "successes": self.added if done else [], "failure_count": 0,
                "pending_count": 0 if done else len(self.added), "pendings": [] if done else self.added}


def test_a_sink_whose_status_poll_meets_a_page_that_is_not_taxii_retries_instead_of_failing():
    from strategies import event_dicts

    from wia_security.connectors.delivery import DeliveryPolicy
    from wia_security.connectors.taxii import TaxiiSink
    events = event_dicts(2, seed=1261, event_type="threat_intel")
    with StatusBehindAProxy() as server:
        with TaxiiSink(f"{server.url}/api1/collections/{COLLECTION}/", status_timeout=5,
                       delivery=DeliveryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)) as sink:
            report = sink.send(events).merge(sink.flush())
    # before: both events failed for good ("unexpected error: TAXIIServiceException: ..."), dead-lettered
    assert (report.delivered, report.failed) == (2, []) and server.adds == 2
