"""The relay's failure paths: a dead letter whose put() fails, an on_reject hook that fails, and the
HTTP reply for record ids that are not item indexes. Each record still ends done or retry."""
from __future__ import annotations

import copy
import logging

from strategies import event_dicts

from wia_security.connectors.base import DeliveryReport, Rejected
from wia_security.connectors.relay import Relay, SourceRecord, http_reply, items_of


class Sink:
    name = "list"

    def __init__(self) -> None:
        self.events: list[dict] = []

    def send(self, events):
        self.events += events
        return DeliveryReport(self.name, delivered=len(events))

    def flush(self):
        return DeliveryReport(self.name)


class DeadLetter:
    """Stores what it is given; put() fails for the reasons listed in `refuse` (a full disk, say)."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.stored: list[Rejected] = []

    def put(self, rejected: Rejected) -> None:
        if any(word in rejected.reason for word in self.refuse):
            raise OSError(28, "No space left on device")
        self.stored.append(rejected)

    def flush(self) -> list[Rejected]:
        return []


def records() -> tuple[list[SourceRecord], list[dict]]:
    events = event_dicts(4, seed=12)
    no_source = copy.deepcopy(events[0])
    del no_source["source"]
    no_type = copy.deepcopy(events[1])
    del no_type["type"]
    return [SourceRecord("1", items_of([events[2], no_source], "r1")), SourceRecord("2", items_of([no_type], "r2")),
            SourceRecord("3", items_of([events[3]], "r3"))], events


def test_a_dead_letter_put_that_fails_retries_that_record_instead_of_losing_the_accounting():
    dead = DeadLetter(refuse=("/source",))          # the record-1 rejection cannot be stored, record 2's can
    for chunk in (500, 1):                          # at the end, and part-way (a chunk per event)
        dead.stored.clear()
        result = Relay(Sink(), dead, chunk_events=chunk).process(records()[0])
        assert result.retry == ["1"]
        one, two, three = result.records
        assert any("dead letter unavailable: OSError" in e["reason"] for e in one.errors) and one.dead_lettered == 0
        assert (two.retry, two.dead_lettered, three.retry, three.delivered) == (False, 1, False, 1)
        assert [r.where for r in dead.stored] == ["r2:1"]


def test_an_on_reject_hook_that_fails_is_logged_and_the_rejection_still_stored(caplog):
    batch, _ = records()
    dead = DeadLetter()

    def hook(rejected: Rejected) -> None:
        raise RuntimeError("log shipper down")

    with caplog.at_level(logging.WARNING):
        result = Relay(Sink(), dead, on_reject=hook).process(batch)
    assert result.retry == [] and result.dead_lettered == 2 and result.delivered == 2
    assert len(dead.stored) == 2 and "on_reject failed for r1:2: RuntimeError: log shipper down" in caplog.text


def test_http_reply_keeps_record_ids_that_are_not_indexes():
    batch, _ = records()
    result = Relay(Sink(), DeadLetter(refuse=("/type",))).process(
        [SourceRecord("s3://bucket/key", r.items) if r.id == "2" else r for r in batch])
    status, body, headers = http_reply(result)
    assert status == 503 and body["retry"] == ["s3://bucket/key"] and headers == {"Retry-After": "5"}
    assert [r["index"] for r in body["rejected"]] == [1] and "source" in body["rejected"][0]["reason"]


def test_a_destination_that_reports_fewer_events_than_it_was_given_gets_the_records_back():
    class Forgetful(Sink):
        def send(self, events):
            super().send(events)
            return DeliveryReport(self.name, delivered=len(events) - 1)     # one event not accounted for

    batch, _ = records()
    result = Relay(Forgetful(), DeadLetter()).process(batch)
    assert result.retry == ["1", "3"] and result.delivered == 0 and result.dead_lettered == 2
    assert all(any("the destination accounted for 1 of 2 events" in e["reason"] for e in r.errors)
               for r in result.records if r.retry)
