"""Sentinel rows, contract test: EventTime lands as the event's instant whatever RFC 3339 spelling the event uses.

The column is a Log Analytics datetime (UTC, 100-ns ticks). The event's timestamp used to be sent as written, so
an event timed with a lower-case t/z, an offset or more than 7 fraction digits reached the service in a spelling
Microsoft does not document for ingested datetimes; the contract server (like the service with a value it cannot
read) stores such a value empty, and the event's time was lost from the column KQL queries filter on."""
from __future__ import annotations

import copy
import uuid

import pytest

pytest.importorskip("azure.monitor.ingestion", reason="the azure extra is not installed")

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401

from wia_security import validate_event  # noqa: E402
from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.azure.sentinel import column_datetime  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.timeutil import parse_iso  # noqa: E402

DCR = "dcr-00000000000000000000000000000000"
FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.01, max_attempts=4)

#: every RFC 3339 spelling the standard's validator takes, and the EventTime each must land as
SPELLINGS = {
    "2025-12-14T09:30:00Z": "2025-12-14T09:30:00Z",
    "2025-12-14t09:30:00z": "2025-12-14T09:30:00Z",
    "2025-12-14T09:30:00.1Z": "2025-12-14T09:30:00.1Z",
    "2025-12-14T09:30:00.123Z": "2025-12-14T09:30:00.123Z",
    "2025-12-14T09:30:00.1234567Z": "2025-12-14T09:30:00.1234567Z",
    "2025-12-14T09:30:00.12345678Z": "2025-12-14T09:30:00.1234567Z",
    "2025-12-14T09:30:00.123456789Z": "2025-12-14T09:30:00.1234567Z",
    "2025-12-14T09:30:00.9999999999z": "2025-12-14T09:30:00.9999999Z",     # cut, never rounded to :01
    "2025-12-14T09:30:00-07:00": "2025-12-14T16:30:00Z",
    "2025-12-14T09:30:00.5+05:45": "2025-12-14T03:45:00.5Z",
    "2025-12-31T23:30:00-05:45": "2026-01-01T05:15:00Z",                    # into the next year in UTC
    "2025-12-14T09:30:00+00:00": "2025-12-14T09:30:00Z",
    "2025-12-14T09:30:00-00:00": "2025-12-14T09:30:00Z",
    "2025-12-14T09:30:00.042Z\n": "2025-12-14T09:30:00.042Z",              # the validator's `$` takes one
}


def make_sink(server):
    return open_sink(f"sentinel://localhost:{server.port}/{DCR}?ca_file={server.ca_file}", delivery=FAST)


def timed(event: dict, timestamp: str) -> dict:
    event = copy.deepcopy(event)
    event["id"], event["timestamp"] = str(uuid.uuid4()), timestamp
    return event


@pytest.mark.parametrize("written, expected", list(SPELLINGS.items()))
def test_column_datetime_is_the_instant_in_utc_to_the_tick(written, expected):
    assert column_datetime(written) == expected
    assert parse_iso(expected) == parse_iso(written)       # the same instant (to the microsecond parse_iso reads)


def test_contract_event_time_of_every_spelling_lands_as_its_instant(sentinel, samples):
    events = [timed(samples["alert-sample"], written) for written in SPELLINGS]
    for event in events:
        assert validate_event(event).valid, (event["timestamp"], validate_event(event).errors)
    with make_sink(sentinel) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    assert report.delivered == len(events) and not report.failed
    assert sentinel.state.unread_datetimes == []             # TimeGenerated and EventTime, every row
    rows = {row["EventId"]: row for row in sentinel.state.all_rows()}
    for event in events:
        row = rows[event["id"]]
        assert row["EventTime"] == SPELLINGS[event["timestamp"]], event["timestamp"]
        assert row["Event"]["timestamp"] == event["timestamp"]    # the event itself keeps it as written


def test_contract_an_event_whose_time_is_no_rfc3339_time_is_dead_lettered_with_the_reason(sentinel, samples):
    good = timed(samples["alert-sample"], "2025-12-14T09:30:00Z")
    bad = [timed(samples["alert-sample"], written) for written in ("2025-12-14 09:30:00", "yesterday",
                                                                   "0001-01-01T00:00:00+01:00")]
    with make_sink(sentinel) as sink:
        report = sink.send([bad[0], good, *bad[1:]])
        report.merge(sink.flush())
    assert report.delivered == 1
    assert sorted(f.event["id"] for f in report.failed) == sorted(e["id"] for e in bad)     # nothing lost
    for failure in report.failed:
        assert "timestamp" in failure.reason and failure.event["timestamp"][:20] in failure.reason
        assert not failure.retryable
    reasons = {f.event["timestamp"]: f.reason for f in report.failed}
    assert reasons["0001-01-01T00:00:00+01:00"].endswith("is not an instant Log Analytics holds (UTC years 0001-9999)")
    assert reasons["yesterday"].endswith("is not an RFC 3339 date-time")
    assert [row["EventId"] for row in sentinel.state.all_rows()] == [good["id"]]


def test_a_time_of_rfc3339_shape_off_the_calendar_is_named_as_no_date_time():
    with pytest.raises(ValueError, match=r"'2025-13-14T25:30:00Z' is not an RFC 3339 date-time"):
        column_datetime("2025-13-14T25:30:00Z")


def test_contract_incident_activity_times_of_every_spelling_land_as_their_instants(sentinel, samples):
    """The incidents API (azure-mgmt-securityinsight): first/last activity in UTC. The SDK's ISO 8601 reader refused
    a time with the trailing newline the standard's validator takes, so such an incident was dead-lettered."""
    ws = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-sec/providers/" \
         "Microsoft.OperationalInsights/workspaces/ws-sec"
    client = open_sink(f"sentinel-incidents://{ws}?base_url={sentinel.endpoint}&ca_file={sentinel.ca_file}")
    events = []
    for written in SPELLINGS:
        event = timed(samples["alert-sample"], written)
        event["data"]["first_seen"] = written
        event["data"].pop("last_seen", None)
        assert validate_event(event).valid, (written, validate_event(event).errors)
        events.append(event)
    report = client.send(events)
    assert report.delivered == len(events) and not report.failed, [f.reason for f in report.failed]
    for event in events:
        props = sentinel.state.incidents[event["id"]]["properties"]
        for prop in ("firstActivityTimeUtc", "lastActivityTimeUtc"):
            assert parse_iso(props[prop]) == parse_iso(event["timestamp"]), (prop, event["timestamp"], props[prop])
    client.close()
