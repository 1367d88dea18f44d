"""A cluster (or a proxy before it) that echoes the request's Authorization header in its 401 answer, as a
security_exception reason: driven by elasticsearch-py and opensearch-py through the sink, the credential
(the password, `user:password`, and the base64 both clients send for Basic and for an (id, key) API key)
appears in no refusal reason, dead letter or log record. A contract server on 127.0.0.1."""
from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from servers.osmem import EsCompatNode
from strategies import event_dicts

from wia_security.connectors.config import Secret
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.elastic import ElasticSink, OpenSearchSink

ONE_TRY = DeliveryPolicy(max_attempts=1, initial_backoff=0.01, max_backoff=0.02, max_events=10, max_wait=0)


class EchoingCluster:
    """Answers every request 401 with Elasticsearch's error shape, quoting the Authorization header."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                authorization = self.headers.get("Authorization", "")
                server.authorizations.append(authorization)
                reason = f"unable to authenticate with provided credentials [{authorization}]"
                body = json.dumps({"error": {"root_cause": [{"type": "security_exception", "reason": reason}],
                                             "type": "security_exception", "reason": reason}, "status": 401}).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "EchoingCluster":
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def forms(user: str, secret: str) -> list[str]:
    pair = f"{user}:{secret}"
    return [secret, pair, base64.b64encode(pair.encode()).decode()]


@pytest.mark.parametrize("kind", ["opensearch-py basic", "elasticsearch-py basic", "elasticsearch-py api key pair"])
def test_contract_an_echoed_authorization_header_is_masked_in_every_form(kind, tmp_path, caplog):
    user, secret = "wia-writer", f"pw-{uuid.uuid4().hex[:14]}"         # unique: masking is process-wide
    caplog.set_level(logging.DEBUG)
    dead = tmp_path / "dead.ndjson"
    events = event_dicts(3, seed=66)
    with EchoingCluster() as cluster:
        common = {"format": "wia", "delivery": ONE_TRY, "dead_letter": str(dead), "install_template": False}
        if kind.startswith("opensearch"):
            sink = OpenSearchSink(cluster.url, username=user, password=Secret(secret, "test"), **common)
        elif kind.endswith("pair"):
            sink = ElasticSink(cluster.url, api_key=(user, Secret(secret, "test")),
                               client_options={"node_class": EsCompatNode}, **common)
        else:
            sink = ElasticSink(cluster.url, username=user, password=Secret(secret, "test"),
                               client_options={"node_class": EsCompatNode}, **common)
        with sink:
            report = sink.send(events).merge(sink.flush())
    sent = base64.b64encode(f"{user}:{secret}".encode()).decode()
    assert cluster.authorizations and all(sent in a for a in cluster.authorizations)     # it had it to echo
    assert report.delivered == 0 and len(report.failed) == 3
    reasons = " ".join(f.reason for f in report.failed)
    assert "401" in reasons or "security_exception" in reasons, reasons
    texts = [reasons, dead.read_text() if dead.exists() else "", caplog.text, repr(sink)]
    for text in texts:
        for form in forms(user, secret):
            assert form not in text, (form, text[:300])
