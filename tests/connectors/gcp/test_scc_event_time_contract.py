"""SCC, contract test: every RFC 3339 spelling of an event's time lands as its instant in event_time (a protobuf
Timestamp: UTC, 0001-01-01 to 9999-12-31). One the standard takes whose UTC instant is past 9999-12-31 (the year
9999 at a negative offset) is ahead of every clock, so it is sent as now, as any future time is (SCC refuses a
future event_time); one before 0001-01-01 UTC is dead-lettered naming the timestamp. Both failed with Python's
bare 'OverflowError: date value out of range' before."""
from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")

from servers.scc_grpc import scc, scc_server  # noqa: E402,F401

from wia_security import validate_event  # noqa: E402
from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.timeutil import parse_iso  # noqa: E402

FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.01, max_attempts=4)
SPELLINGS = ["2025-12-14T09:30:00Z", "2025-12-14t09:30:00z", "2025-12-14T09:30:00.123456789Z",
             "2025-12-14T09:30:00.1234567891Z", "2025-12-14T09:30:00-07:00", "2025-12-14T09:30:00.5+05:45",
             "2025-12-31T23:30:00-05:45", "2025-12-14T09:30:00.042Z\n", "0001-01-01T00:00:00Z"]


def timed(base: dict, timestamp: str) -> dict:
    event = copy.deepcopy(base)
    event["id"], event["timestamp"] = str(uuid.uuid4()), timestamp
    assert validate_event(event).valid, (timestamp, validate_event(event).errors)
    return event


def send(scc, events):
    source = scc.create_source()
    url = f"scc://{source}?endpoint={scc.endpoint}&ca_file={scc.ca_file}&auth=anonymous"
    with open_sink(url, delivery=FAST) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    return report, {f.source_properties["wia_event_id"]: f for f in scc.state.findings.values()}


def test_contract_every_spelling_lands_as_its_instant_to_the_millisecond(scc, samples):
    events = [timed(samples["alert-sample"], t) for t in SPELLINGS]
    report, findings = send(scc, events)
    assert report.delivered == len(events) and not report.failed, [f.reason for f in report.failed]
    for event in events:
        stored = findings[event["id"]].event_time
        assert abs(stored - parse_iso(event["timestamp"])) < timedelta(milliseconds=1), (event["timestamp"], stored)


def test_contract_times_past_the_timestamp_range_are_now_or_dead_lettered_with_the_reason(scc, samples):
    future = timed(samples["alert-sample"], "9999-12-31T23:59:59.999-00:01")     # 10000-01-01 in UTC
    past = timed(samples["alert-sample"], "0001-01-01T00:59:59+01:00")          # 0000-12-31 in UTC
    before = datetime.now(timezone.utc)
    report, findings = send(scc, [future, past])
    assert report.delivered == 1 and [f.event["id"] for f in report.failed] == [past["id"]]
    assert before - timedelta(seconds=1) <= findings[future["id"]].event_time <= datetime.now(timezone.utc)
    failed = report.failed[0]
    assert "0001-01-01T00:59:59+01:00" in failed.reason and "before 0001-01-01" in failed.reason, failed.reason
    assert not failed.retryable
