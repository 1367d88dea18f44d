"""A TAXII server (or a proxy before it) that echoes the request's headers back: in its error answer's
reason phrase and body, or in a status resource's failure messages. The credential never reaches a
ConfigError, a refusal's reason, a dead-letter record or the log; with HTTP Basic that includes the
`Authorization: Basic <base64(user:password)>` header and the `user:password` pair, not only the
password. A contract server on 127.0.0.1 driven by taxii2-client."""
from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from strategies import event_dicts

from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.taxii import TaxiiSink
from wia_security.errors import ConfigError
from wia_security.redact import MASK

COLLECTION = "0b2a9f0e-5d1c-4d59-9f0e-3f1f0c6a7e21"
TAXII = "application/taxii+json;version=2.1"
FAST = DeliveryPolicy(max_attempts=1, initial_backoff=0.01, max_backoff=0.02)


class EchoingTaxii:
    """TAXII 2.1 API root `api1` with one writable collection. `refuse=True`: every request is answered
    401 with the Authorization header it carried in the reason phrase and every header in the body.
    Otherwise Add Objects answers a complete status refusing every object, the Authorization header
    quoted in each failure's message (and the credentials it decodes to)."""

    def __init__(self, *, refuse: bool) -> None:
        self.refuse = refuse
        self.authorizations: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any, reason: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status, reason)
                self.send_header("Content-Type", TAXII)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                authorization = self.headers.get("Authorization", "")
                server.authorizations.append(authorization)
                path = self.path.split("?", 1)[0]
                if server.refuse:
                    self._answer(401, {"title": "Unauthorized", "description": f"request headers: {dict(self.headers)}"},
                                 reason=f"Unauthorized (got Authorization: {authorization})")
                elif path == "/api1/":
                    self._answer(200, {"title": "api1", "versions": [TAXII], "max_content_length": 1_000_000})
                elif path == f"/api1/collections/{COLLECTION}/":
                    self._answer(200, {"id": COLLECTION, "title": "echo", "can_read": True, "can_write": True,
                                       "media_types": ["application/stix+json;version=2.1"]})
                elif path.endswith("/objects/") and self.command == "POST":
                    scheme, _, value = authorization.partition(" ")
                    decoded = base64.b64decode(value).decode() if scheme == "Basic" else ""
                    objects = json.loads(raw)["objects"]
                    failures = [{"id": o["id"], "version": o.get("modified", ""),
                                 "message": f"not allowed for Authorization: {authorization} ({decoded})"}
                                for o in objects]
                    self._answer(202, {"id": str(uuid.uuid4()), "status": "complete", "total_count": len(objects),
                                       "success_count": 0, "failure_count": len(objects), "pending_count": 0,
                                       "failures": failures})
                elif path.endswith("/manifest/"):
                    self._answer(200, {"more": False})
                else:
                    self._answer(404, {"title": "not found"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.collection_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api1/collections/{COLLECTION}/"

    def __enter__(self) -> "EchoingTaxii":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def unique(prefix: str) -> str:
    """A credential no other test has had remembered (masking is process-wide)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_contract_a_token_echoed_in_the_api_roots_error_is_masked_in_the_config_error(caplog):
    token = unique("taxii-token")
    caplog.set_level(logging.DEBUG)
    with EchoingTaxii(refuse=True) as server, pytest.raises(ConfigError) as info:
        TaxiiSink(server.collection_url, token=token)
    assert server.authorizations == [f"Bearer {token}"]            # the server did have it to echo
    error = info.value
    assert f"cannot read the API root: 401 Client Error: Unauthorized (got Authorization: Bearer {MASK})" in str(error)
    assert token not in str(error) and token not in error.reason and token not in caplog.text


@pytest.mark.parametrize("user", ["wia-reader", "lecteur-é"])      # Latin-1 beyond ASCII: requests sends it so
def test_contract_basic_credentials_echoed_in_an_error_are_masked_in_every_form(user, caplog):
    password = unique("basic-pass")
    pair = f"{user}:{password}"
    sent = base64.b64encode(pair.encode("latin-1")).decode()
    caplog.set_level(logging.DEBUG)
    with EchoingTaxii(refuse=True) as server, pytest.raises(ConfigError) as info:
        TaxiiSink(server.collection_url, user=user, password=password)
    assert server.authorizations == [f"Basic {sent}"]
    assert f"(got Authorization: Basic {MASK})" in str(info.value)
    for form in (sent, pair, password):
        assert form not in str(info.value) and form not in caplog.text


def test_contract_basic_credentials_echoed_in_a_status_resource_never_reach_a_dead_letter(tmp_path, caplog):
    user, password = "wia-writer", unique("basic-pass")
    pair = f"{user}:{password}"
    sent = base64.b64encode(pair.encode()).decode()
    events = event_dicts(1, seed=11, event_type="threat_intel")
    caplog.set_level(logging.DEBUG)
    with EchoingTaxii(refuse=False) as server:
        with TaxiiSink(server.collection_url, user=user, password=password, delivery=FAST) as sink:
            report = sink.send(events).merge(sink.flush())
    assert set(server.authorizations) == {f"Basic {sent}"}
    (rejected,) = report.failed
    with DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
        dead.put(rejected)
    written = (tmp_path / "dead.ndjson").read_text()
    assert f"not allowed for Authorization: Basic {MASK} ({MASK})" in rejected.reason
    assert MASK in written and "not allowed for Authorization" in written
    for form in (sent, pair, password):
        assert form not in rejected.reason and form not in written and form not in caplog.text


def test_contract_pull_prints_an_echoed_token_masked(tmp_path, monkeypatch, capsys):
    """`wia-security pull` of a TAXII source whose server echoes the bearer token in its 401: the CLI's one
    error line (and a traceback, had one escaped) shows the token masked."""
    from wia_security.cli import _masked_excepthook, main

    token = unique("pull-token")
    monkeypatch.setenv("WIA_TEST_TAXII_TOKEN", token)
    monkeypatch.chdir(tmp_path)
    with EchoingTaxii(refuse=True) as server:
        code = main(["pull", f"taxii+{server.collection_url}?token_env=WIA_TEST_TAXII_TOKEN",
                     "--to", f"sqlite:///{tmp_path}/events.db"])
    err = capsys.readouterr().err
    assert server.authorizations and all(a == f"Bearer {token}" for a in server.authorizations)
    assert code != 0 and "401" in err and f"Bearer {MASK}" in err, err
    assert token not in err
    try:
        raise RuntimeError(f"the server said: Authorization: Bearer {token}")
    except RuntimeError as exc:
        _masked_excepthook(type(exc), exc, exc.__traceback__)
    err = capsys.readouterr().err
    assert "RuntimeError: the server said: Authorization: Bearer " + MASK in err and token not in err
