"""Security Hub source: the run's lenient mode reaches the ASFF reader. An event sent with null for an absent
optional member (two of the upstream samples carry them; the lenient forward accepts them everywhere) is
stored in this project's ProductFields layout with the null; read back strictly it is an error Item naming
the member, and `items(lenient=True)` (as `Forwarder(..., lenient=True)` runs) reads it. boto3 against moto
and the Security Hub contract layer (tests/servers/moto.py)."""
from __future__ import annotations

import json

from wia_security.connectors import open_sink
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.sqlite import SqliteSink
from wia_security.pipeline import Forwarder

POLICY = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.01, max_attempts=2)


def imported_with_nulls(samples):
    hub = open_sink("securityhub://us-east-1", delivery=POLICY)
    events = [samples["incident-sample"], samples["auth-event-sample"]]       # nulls as upstream wrote them
    report = hub.send(events)
    report.merge(hub.flush())
    assert report.delivered == 2, report.failed
    return hub, events


def test_contract_strict_read_names_the_null_and_lenient_reads_the_event(aws, samples):
    hub, events = imported_with_nulls(samples)
    try:
        strict = list(hub.items())
        lenient = list(hub.items(lenient=True))
        read = {e["id"]: e for e in hub.get_events(lenient=True)}
    finally:
        hub.close()
    assert len(strict) == 2 and not any(i.ok for i in strict)
    assert any("null" in str(i.error) and "/data/root_cause" in str(i.error) for i in strict)
    assert [i.error for i in lenient] == [None, None]                       # before: the same two errors
    assert set(read) == {e["id"] for e in events}
    assert read[samples["incident-sample"]["id"]]["data"]["title"] == samples["incident-sample"]["data"]["title"]


def test_contract_lenient_forward_of_the_findings_stores_them(aws, samples, tmp_path):
    hub, events = imported_with_nulls(samples)
    try:
        with SqliteSink(str(tmp_path / "s.db")) as store, DeadLetterFile(str(tmp_path / "dl.ndjson")) as dl:
            summary = Forwarder(store, dl, lenient=True).run(hub.items(lenient=True))
    finally:
        hub.close()
    dead = [json.loads(x) for x in (tmp_path / "dl.ndjson").read_text().splitlines()] \
        if (tmp_path / "dl.ndjson").exists() else []
    assert summary.delivered == 2 and not dead, dead[:1]
