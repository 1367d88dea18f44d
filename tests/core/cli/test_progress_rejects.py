"""The progress of forward and replay moves on rejected inputs too (the Forwarder's loop): a long file of events
that all fail validation (a wrong export, another format) showed no progress until its end."""
from __future__ import annotations

from wia_security.connectors.base import DeliveryReport
from wia_security.errors import ParseError
from wia_security.pipeline import Forwarder
from wia_security.reader import Item

from strategies import event_dicts


class _Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int, bool]] = []

    def update(self, events: int, rejected: int = 0, *, force: bool = False) -> None:
        self.calls.append((events, rejected, force))


class _Sink:
    name = "sink"

    def send(self, events):
        return DeliveryReport(self.name, delivered=len(events))

    def flush(self):
        return DeliveryReport(self.name)


class _DeadLetter:
    def __init__(self) -> None:
        self.records = []

    def put(self, rejected) -> None:
        self.records.append(rejected)


def _run(items: list[Item]) -> tuple[_Progress, _DeadLetter]:
    progress, dead = _Progress(), _DeadLetter()
    Forwarder(_Sink(), dead, batch_size=10, progress=progress).run(items)
    return progress, dead


def test_progress_moves_on_invalid_events():
    items = [Item("in.ndjson", n, {"bad": n}) for n in range(1, 501)]
    progress, dead = _run(items)
    assert len(dead.records) == 500
    unforced = [call for call in progress.calls if not call[2]]
    assert len(unforced) >= 499                        # one chance to redraw per item, as for valid events
    assert max(rejected for _, rejected, _ in unforced) >= 499
    assert progress.calls[-1] == (500, 500, True)


def test_progress_moves_on_unparseable_input():
    items = [Item("in.ndjson", n, error=ParseError("Expecting value", source="in.ndjson", line=n)) for n in range(1, 301)]
    progress, _ = _run(items)
    assert len([call for call in progress.calls if not call[2]]) >= 299
    assert progress.calls[-1] == (300, 300, True)


def test_progress_on_valid_events_unchanged():
    items = [Item("in.ndjson", n, event) for n, event in enumerate(event_dicts(50, seed=5), 1)]
    progress, _ = _run(items)
    assert len([call for call in progress.calls if not call[2]]) >= 49
    assert progress.calls[-1] == (50, 0, True)
