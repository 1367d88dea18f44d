"""Versions of one event id against osmem-server ("emulator" tests), with both clients: a newer version
replaces the stored document, a re-send or an older version arriving late changes nothing and counts as a
duplicate (the order the SQLite store keeps versions in, docs/connectors/elastic.md); events far in the
past or the future are indexed too."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from test_elastic_sink import CLIENTS, deliver, make_sink, reader, unique_events
from wia_security.connectors.elastic import MAX_EXTERNAL_VERSION, event_version


def stored(url: str, event_id: str) -> list[dict[str, Any]]:
    client = reader(url)
    client.indices.refresh(index="wia-security-*")
    return client.search(index="wia-security-*", body={"query": {"ids": {"values": [event_id]}}})["hits"]["hits"]


def counts(report: Any) -> tuple[int, int, list[str]]:
    return report.delivered, report.duplicates, [r.reason for r in report.failed]


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_a_newer_version_replaces_and_an_older_one_changes_nothing(kind: str, osmem: str) -> None:
    first = unique_events(1, seed=31)[0]
    first["timestamp"] = "2025-12-14T09:30:00.000Z"
    newer = copy.deepcopy(first)
    newer["timestamp"] = "2025-12-14T11:00:00.000001+01:00"          # 10:00 UTC, the same UTC day
    newer["severity"] = 9.5 if first["severity"] != 9.5 else 1.5
    assert counts(deliver(make_sink(kind, osmem), [first])) == (1, 0, [])
    assert counts(deliver(make_sink(kind, osmem), [newer])) == (1, 0, [])
    hits = stored(osmem, first["id"])
    assert len(hits) == 1 and hits[0]["_source"] == make_sink(kind, osmem).document(newer)
    # a re-send of either version, in any order, is a duplicate and leaves the newer one stored
    assert counts(deliver(make_sink(kind, osmem), [newer, first])) == (0, 2, [])
    assert [h["_source"] for h in stored(osmem, first["id"])] == [make_sink(kind, osmem).document(newer)]


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_an_incident_updated_later_replaces_its_earlier_state(kind: str, osmem: str) -> None:
    opened = unique_events(1, seed=32)[0]
    opened.update(type="incident", timestamp="2025-12-14T09:30:00Z", data={
        "incident_id": "INC-7", "title": "t", "category": "malware", "status": "new", "priority": "high",
        "updated_at": "2025-12-14T09:30:00Z"})
    closed = copy.deepcopy(opened)
    closed["data"].update(status="closed", updated_at="2025-12-14T17:45:00Z")      # same timestamp, later update
    assert counts(deliver(make_sink(kind, osmem), [opened])) == (1, 0, [])
    assert counts(deliver(make_sink(kind, osmem), [closed])) == (1, 0, [])
    assert counts(deliver(make_sink(kind, osmem), [opened])) == (0, 1, [])
    hits = stored(osmem, opened["id"])
    assert len(hits) == 1 and hits[0]["_source"] == make_sink(kind, osmem).document(closed)


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_events_far_in_the_past_or_future_are_indexed_by_their_utc_day(kind: str, osmem: str) -> None:
    events = unique_events(4, seed=33)
    stamps = ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z",
              "9999-12-31T20:00:00-03:59"]
    for event, stamp in zip(events, stamps):
        event["timestamp"] = stamp
    report = deliver(make_sink(kind, osmem), events)
    assert counts(report) == (4, 0, [])
    days = [stored(osmem, e["id"])[0]["_index"].rsplit("-", 1)[1] for e in events]
    assert days == ["0001.01.01", "1969.12.31", "9999.12.31", "9999.12.31"]


def test_versions_are_valid_external_versions_ordered_as_the_instants() -> None:
    event = unique_events(1, seed=34)[0]

    def at(stamp: str, updated: str | None = None) -> int:
        copy_ = {**event, "timestamp": stamp}
        if updated is not None:
            copy_ = {**copy_, "type": "incident", "data": {"updated_at": updated}}
        return event_version(copy_)

    oldest, newest = at("0001-01-01T00:00:00Z"), at("9999-12-31T23:59:59.999999Z")
    assert 0 <= oldest < at("1969-12-31T23:59:59.999999Z") < at("1970-01-01T00:00:00Z") < newest
    assert newest <= MAX_EXTERNAL_VERSION < 2 ** 63
    # instants, not spellings; microseconds count
    assert at("2025-12-14T10:00:00+01:00") == at("2025-12-14T09:00:00Z") == at("2025-12-14t09:00:00.0000009z")
    assert at("2025-12-14T09:00:00.000001Z") == at("2025-12-14T09:00:00Z") + 1
    # an incident's data.updated_at counts when it is later than the timestamp
    assert at("2025-12-14T09:00:00Z", "2025-12-14T10:00:00Z") == at("2025-12-14T10:00:00Z")
    assert at("2025-12-14T09:00:00Z", "2025-12-13T10:00:00Z") == at("2025-12-14T09:00:00Z")


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_an_id_over_512_bytes_fails_alone_not_its_whole_batch(kind: str, osmem: str) -> None:
    # The server refuses a bulk request holding an _id over 512 bytes as a whole (400
    # action_request_validation_exception): one such event (a library caller's; validated events have UUIDs)
    # dead-lettered every event of its batch.
    events = unique_events(5, seed=35)
    events[2]["id"] = "é" * 257                       # 514 bytes in UTF-8, 257 characters
    report = deliver(make_sink(kind, osmem), events)
    assert report.delivered == 4
    [rejected] = report.failed
    assert rejected.event is events[2] and "514 bytes" in rejected.reason and "512" in rejected.reason
    assert not rejected.retryable


@pytest.mark.parametrize("kind", CLIENTS)
def test_emulator_a_timestamp_whose_utc_day_is_outside_years_1_to_9999_fails_alone_with_the_reason(
        kind: str, osmem: str, caplog: pytest.LogCaptureFixture) -> None:
    # Valid RFC 3339 (and valid WIA), but in UTC a day before 0001-01-01 or after 9999-12-31: no daily index.
    # It failed as "OverflowError: date value out of range", logged as an encoding bug with its traceback.
    events = unique_events(3, seed=36)
    events[0]["timestamp"] = "9999-12-31T23:59:59-00:01"
    events[1]["timestamp"] = "0001-01-01T00:00:00+00:01"
    report = deliver(make_sink(kind, osmem), events)
    assert report.delivered == 1 and len(report.failed) == 2
    for rejected in report.failed:
        assert "outside the years 0001-9999 in UTC" in rejected.reason and "OverflowError" not in rejected.reason
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
