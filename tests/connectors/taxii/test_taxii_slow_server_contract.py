"""TAXII 2.1 servers that stop answering, trickle their answer or answer far too much (contract tests).

taxii2-client gives requests no timeout, so before the connector set one a server that accepted the
connection and then said nothing held `pull` (and the checkpoint's lock, so every later run stopped on
it) and a sink's flush for ever; nor was an answer's size bounded. The server here answers the TAXII 2.1
endpoints the client calls with the envelopes TAXII 2.1 documents; the faults are queued per path.
"""
from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from strategies import event_dicts

from wia_security import convert
from wia_security.cli import main
from wia_security.connectors import taxii
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.taxii import Checkpoint, TaxiiError, TaxiiSink, TaxiiSource
from wia_security.errors import ConfigError

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))
from intel_http import ContractServer, Fault  # noqa: E402

STAMP = "2025-03-01T12:00:00.000000Z"
COLLECTION = "0b8a7bb5-6f2e-4d38-9a0c-1d1f5ddc0a11"
TAXII = {"Content-Type": "application/taxii+json;version=2.1"}
DATES = {"X-TAXII-Date-Added-First": STAMP, "X-TAXII-Date-Added-Last": STAMP}
OBJECTS = f"/api1/collections/{COLLECTION}/objects/"


def indicator(n: int) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=n + 1)}",
            "created": "2025-03-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z", "name": f"bad ip {n}",
            "pattern": f"[ipv4-addr:value = '198.51.100.{n % 250}']", "pattern_type": "stix",
            "valid_from": "2025-03-01T00:00:00Z", "indicator_types": ["malicious-activity"]}


class Collection(ContractServer):
    """One collection holding `objects` (one page); Add Objects answers a complete status for what it got."""

    def __init__(self, objects: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.objects = objects or []

    def handle(self, req: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if req.path == f"/api1/collections/{COLLECTION}/":
            return 200, {"id": COLLECTION, "title": "slow", "can_read": True, "can_write": True,
                         "media_types": ["application/stix+json;version=2.1"]}, dict(TAXII)
        if req.path == "/api1/":
            return 200, {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                         "max_content_length": 1_000_000}, dict(TAXII)
        if req.path == OBJECTS and req.method == "GET":
            return 200, {"more": False, "objects": self.objects}, {**TAXII, **DATES}
        if req.path == OBJECTS and req.method == "POST":
            added = [{"id": o["id"], "version": o.get("modified", STAMP)} for o in req.body["objects"]]
            return 202, {"id": "status-1", "status": "complete", "total_count": len(added),
                         "success_count": len(added), "successes": added, "failure_count": 0,
                         "pending_count": 0}, dict(TAXII)
        return 404, {"title": "not found", "http_status": "404"}, dict(TAXII)

    @property
    def collection_url(self) -> str:
        return f"{self.url}/api1/collections/{COLLECTION}/"

    def stall(self, seconds: float, answer: tuple[int, Any] | None = None) -> None:
        """The next request for the objects is answered only after `seconds` (a server that stopped answering),
        with `answer` (status, body): by default the page of objects."""
        status, body = answer or (200, {"more": False, "objects": self.objects})
        self.faults.append(Fault(status, body, {**TAXII, **DATES}, delay=seconds, path_prefix=OBJECTS))


def test_pull_from_a_server_that_stops_answering_ends_with_a_timeout_and_leaves_the_checkpoint(tmp_path, capsys):
    with Collection([indicator(1)]) as server:
        server.stall(60)
        checkpoint = tmp_path / "cp.json"
        args = ["pull", f"taxii+{server.collection_url}?settle=0&timeout=3", "--to", f"sqlite:///{tmp_path}/s.db",
                "--checkpoint", str(checkpoint), "--dead-letter", str(tmp_path / "dl.ndjson")]
        assert main(args) == 2                         # before: waited out the server's whole minute
        assert "timed out" in capsys.readouterr().err and not checkpoint.exists()
        assert main(args) == 0                         # the lock was released: the next run reads
        assert Checkpoint.load(str(checkpoint)).added_after == STAMP


def test_a_sink_whose_add_is_not_answered_retries_it_after_the_timeout():
    events = event_dicts(2, seed=125, event_type="threat_intel")
    objects = [o for e in events for o in convert(e, to="stix")["objects"] if o["type"] != "extension-definition"]
    added = [{"id": o["id"], "version": o["modified"]} for o in objects]
    complete = {"id": "status-1", "status": "complete", "total_count": len(added), "success_count": len(added),
                "successes": added, "failure_count": 0, "pending_count": 0}
    with Collection() as server:
        server.stall(60, (202, complete))             # a whole status, a minute late
        sink = TaxiiSink(server.collection_url, timeout=3, delivery=DeliveryPolicy(max_attempts=3, initial_backoff=0.01,
                                                                                   max_backoff=0.02))
        report = sink.send(events).merge(sink.flush())
        sink.close()
    assert report.delivered == 2 and not report.failed
    assert len([r for r in server.calls(OBJECTS) if r.method == "POST"]) >= 2     # the first one timed out


def test_a_body_trickled_a_byte_at_a_time_is_given_up_after_ten_timeouts(monkeypatch):
    monkeypatch.setattr(taxii, "ANSWER_TIMEOUTS", 2)            # 10 in use: 2 keeps the test short
    page = {"more": False, "objects": [indicator(i) for i in range(5)]}
    with Collection() as server:
        # a byte every 0.3 s never trips a 2 s read timeout; the whole body would take minutes
        server.faults.append(Fault(200, page, {**TAXII, **DATES}, trickle=0.3, give_up=60, path_prefix=OBJECTS))
        source = TaxiiSource(server.collection_url, settle=0, timeout=2)
        with pytest.raises(requests.exceptions.ReadTimeout, match=r"took more than 4 s \(2 x timeout=2\)"):
            list(source.poll(Checkpoint()))
        source.close()


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_an_answer_larger_than_the_bound_is_refused_not_read_into_memory(monkeypatch, compressed):
    monkeypatch.setattr(taxii, "MAX_ANSWER_BYTES", 20_000)
    page = {"more": False, "objects": [indicator(i) for i in range(200)]}      # ~100 KB; gzip: ~5 KB on the wire
    with Collection(page["objects"]) as server:
        server.faults.append(Fault(200, page, {**TAXII, **DATES}, gzip=compressed, path_prefix=OBJECTS))
        source = TaxiiSource(server.collection_url, settle=0)
        with pytest.raises(TaxiiError, match=r"/objects/ answered more than 20000 bytes"):
            list(source.poll(Checkpoint()))
        monkeypatch.setattr(taxii, "MAX_ANSWER_BYTES", 1_000_000)
        assert [len(p.events) for p in source.poll(Checkpoint())] == [200]     # within the bound: read
        source.close()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_seconds_is_a_config_error(value):
    url = f"taxii+https://taxii.example/api1/collections/{COLLECTION}/?timeout={value}"
    for opener, more in ((TaxiiSource.from_url, ""), (TaxiiSink.from_url, "&max_content_length=1000")):
        with pytest.raises(ConfigError, match="timeout: must be a number of seconds"):
            opener(url + more)
