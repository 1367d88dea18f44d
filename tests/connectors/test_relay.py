"""The cloud-function relay's accounting: every record ends delivered, dead-lettered or marked for retry,
whatever the sink or the dead letter does (the functions' own tests drive it against real servers)."""
from __future__ import annotations

import copy
import logging
import uuid

from strategies import event_dicts

from wia_security.connectors.base import DeliveryReport, Rejected
from wia_security.connectors.relay import LogDeadLetter, Relay, SourceRecord, items_of
from wia_security.errors import ParseError
from wia_security.reader import Item


class RecordingSink:
    name = "recording"

    def __init__(self, fail=None, raise_on_send=False):
        self.fail = fail or {}            # event id -> retryable?
        self.raise_on_send = raise_on_send
        self.sent: list[list[dict]] = []

    def send(self, events):
        if self.raise_on_send:
            raise RuntimeError("boom")
        self.sent.append(list(events))
        report = DeliveryReport(self.name)
        for event in events:
            if event["id"] in self.fail:
                report.failed.append(Rejected("nope", event=event, sink=self.name, retryable=self.fail[event["id"]]))
            else:
                report.delivered += 1
        return report

    def flush(self):
        return DeliveryReport(self.name)


class ListDeadLetter:
    def __init__(self, broken=False):
        self.records: list[Rejected] = []
        self.pending: list[Rejected] = []
        self.broken = broken

    def put(self, rejected):
        self.pending.append(rejected)

    def flush(self):
        if self.broken:
            raise OSError("dead letter unavailable")
        self.records += self.pending
        self.pending = []
        return []


def test_every_record_is_accounted_for_in_order():
    events = event_dicts(6, seed=2)
    bad = copy.deepcopy(events[1])
    bad["severity"] = 99
    sink = RecordingSink(fail={events[2]["id"]: True, events[3]["id"]: False})
    dead = ListDeadLetter()
    records = [SourceRecord("a", items_of([events[0]], "a")),
               SourceRecord("b", items_of([bad], "b")),
               SourceRecord("c", items_of([events[2], events[4]], "c")),
               SourceRecord("d", items_of([events[3]], "d")),
               SourceRecord("e", [Item("e", 1, error=ParseError("not JSON", source="e", line=1), raw=b"{x")]),
               SourceRecord("f", items_of([], "f"))]
    result = Relay(sink, dead).process(records)
    assert result.retry == ["c"]
    by_id = {r.id: r for r in result.records}
    assert (by_id["a"].delivered, by_id["b"].dead_lettered, by_id["d"].dead_lettered, by_id["e"].dead_lettered) == (1, 1, 1, 1)
    assert by_id["c"].delivered == 1 and by_id["c"].retryable[0].event["id"] == events[2]["id"]
    # a destination's refusal names the value's own place (d:1), as invalid and unparseable input do
    assert [r.where for r in dead.records] == ["b:1", "e:1", "d:1"]
    assert by_id["c"].retryable[0].where == "c:1"
    assert result.summary() == {"records": 6, "events": 4, "delivered": 2, "dead_lettered": 3, "invalid": 1,
                                "unparseable": 1, "retry": 1}


def test_chunks_bound_what_the_sink_receives():
    events = event_dicts(25, seed=3)
    sink = RecordingSink()
    result = Relay(sink, ListDeadLetter(), chunk_events=10).process([SourceRecord("big", items_of(events, "big"))])
    assert [len(c) for c in sink.sent] == [10, 10, 5]
    assert result.records[0].delivered == 25 and not result.retry


def test_a_sink_that_raises_retries_the_chunk():
    events = event_dicts(3, seed=4)
    result = Relay(RecordingSink(raise_on_send=True), ListDeadLetter()).process(
        [SourceRecord(str(i), items_of([e], str(i))) for i, e in enumerate(events)])
    assert result.retry == ["0", "1", "2"]


def test_failures_of_copied_events_are_matched_by_id_and_unattributable_ones_retry_all():
    events = event_dicts(2, seed=5)

    class CopyingSink(RecordingSink):
        def send(self, events_):
            report = DeliveryReport(self.name)
            report.failed.append(Rejected("copied", event=copy.deepcopy(events_[1]), retryable=True))
            report.delivered = 1
            return report

    result = Relay(CopyingSink(), ListDeadLetter()).process(
        [SourceRecord("x", items_of([events[0]], "x")), SourceRecord("y", items_of([events[1]], "y"))])
    assert result.retry == ["y"]

    class StrangeSink(RecordingSink):
        def send(self, events_):
            return DeliveryReport(self.name, failed=[Rejected("who?", event={"id": str(uuid.uuid4())})])

    result = Relay(StrangeSink(), ListDeadLetter()).process(
        [SourceRecord("x", items_of([events[0]], "x")), SourceRecord("y", items_of([events[1]], "y"))])
    assert result.retry == ["x", "y"]                 # never lost: the whole chunk goes back


def test_copied_failures_of_two_values_sharing_an_id_each_find_their_own_record():
    """Two values with one event id in one chunk (a source that repeats an event, or two records reusing
    an id), a sink that reports failures on copies: each failure is its own value's, by content first,
    so neither record is counted delivered for the other's failure."""
    first = event_dicts(1, seed=8)[0]
    second = copy.deepcopy(first)
    second["severity"] = 1 if first.get("severity") != 1 else 2             # same id, other content

    class CopyingSink(RecordingSink):
        def send(self, events_):
            failed = [Rejected("refused", event=copy.deepcopy(e), retryable=True) for e in events_]
            return DeliveryReport(self.name, failed=failed[::-1])      # reported in another order

    result = Relay(CopyingSink(), ListDeadLetter()).process(
        [SourceRecord("a", items_of([first], "a")), SourceRecord("b", items_of([second], "b"))])
    assert result.retry == ["a", "b"] and result.delivered == 0
    by_id = {r.id: r for r in result.records}
    assert by_id["a"].retryable[0].event == first and by_id["b"].retryable[0].event == second

    class OneCopiedFailure(RecordingSink):                 # only the second value is refused
        def send(self, events_):
            return DeliveryReport(self.name, delivered=1,
                                  failed=[Rejected("refused", event=copy.deepcopy(events_[1]), retryable=True)])

    result = Relay(OneCopiedFailure(), ListDeadLetter()).process(
        [SourceRecord("a", items_of([first], "a")), SourceRecord("b", items_of([second], "b"))])
    assert result.retry == ["b"] and {r.id: r.delivered for r in result.records} == {"a": 1, "b": 0}


def test_an_unavailable_dead_letter_retries_the_records_it_could_not_take():
    events = event_dicts(2, seed=6)
    bad = copy.deepcopy(events[0])
    del bad["source"]
    result = Relay(RecordingSink(), ListDeadLetter(broken=True)).process(
        [SourceRecord("ok", items_of([events[1]], "ok")), SourceRecord("bad", items_of([bad], "bad"))])
    assert result.retry == ["bad"]


def test_a_record_that_cannot_be_read_is_retried():
    def exploding():
        yield Item("s3", 1, event_dicts(1, seed=7)[0])
        raise ConnectionError("connection reset while reading the object")

    result = Relay(RecordingSink(), ListDeadLetter()).process([SourceRecord("s3://b/k", exploding())])
    assert result.retry == ["s3://b/k"] and "connection reset" in result.records[0].errors[0]["reason"]


def test_log_dead_letter_writes_structured_records(caplog):
    logger = logging.getLogger("test.relay.deadletter")
    dead = LogDeadLetter(logger)
    with caplog.at_level(logging.ERROR, logger="test.relay.deadletter"):
        dead.put(Rejected("invalid: /id: bad", event={"id": "x"}, where="sqs:m1:1"))
    assert dead.flush() == [] and dead.count == 1
    record = caplog.records[0].wia_dead_letter
    assert record["reason"] == "invalid: /id: bad" and record["where"] == "sqs:m1:1" and record["event"] == {"id": "x"}
