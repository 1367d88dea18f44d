"""The store's time filters and order are exact to the microsecond, as its versions are.

ts_ms (the indexed column) is the instant truncated to a millisecond, toward zero: two events in one millisecond
share it, and so do events on either side of the epoch within a millisecond of it. Filtering and ordering on it
alone showed an event before --since, hid one before --until, and listed events of one millisecond by id."""
from __future__ import annotations

import copy

from strategies import event_dicts
from store_versions import version_1_store
from wia_security.connectors.sqlite import EventStore

A = "00000000-0000-4000-8000-00000000000a"      # the later event of the millisecond has the smaller id
B = "00000000-0000-4000-8000-00000000000b"


def _events(*stamps: tuple[str, str]) -> list[dict]:
    base = event_dicts(1, seed=41)[0]
    events = []
    for event_id, timestamp in stamps:
        event = copy.deepcopy(base)
        event["id"], event["timestamp"] = event_id, timestamp
        events.append(event)
    return events


def _ids(store: EventStore, **filters) -> list[str]:
    return [row.id for row in store.query(limit=None, **filters)]


def test_events_in_one_millisecond_come_in_time_order(tmp_path):
    store = EventStore(str(tmp_path / "s.db"))
    store.insert(_events((A, "2025-12-14T09:30:00.000900Z"), (B, "2025-12-14T09:30:00.000100Z")))
    assert _ids(store, newest_first=False) == [B, A]
    assert _ids(store, newest_first=True) == [A, B]


def test_since_and_until_compare_microseconds(tmp_path):
    store = EventStore(str(tmp_path / "s.db"))
    store.insert(_events((A, "2025-12-14T09:30:00.000900Z"), (B, "2025-12-14T09:30:00.000100Z")))
    assert _ids(store, since="2025-12-14T09:30:00.000500Z") == [A]
    assert _ids(store, until="2025-12-14T09:30:00.000500Z") == [B]
    assert store.count(since="2025-12-14T18:30:00.000500+09:00") == 1       # the same instant, another offset
    assert store.count(since="2025-12-14T09:30:00.000100Z", until="2025-12-14T09:30:00.000900Z") == 1


def test_bounds_next_to_the_epoch(tmp_path):
    """int() truncates toward zero: -0.5 ms and +0.5 ms both have ts_ms 0."""
    store = EventStore(str(tmp_path / "s.db"))
    store.insert(_events((A, "1969-12-31T23:59:59.999500Z"), (B, "1970-01-01T00:00:00.000500Z")))
    assert _ids(store, until="1970-01-01T00:00:00Z") == [A]
    assert _ids(store, since="1970-01-01T00:00:00Z") == [B]
    assert _ids(store, since="1969-12-31T23:59:59.9999Z") == [B]


def test_a_version_1_store_is_still_filtered_by_millisecond(tmp_path):
    """A version-1 store (read as it is by `query`) has no ts_us: its filters and order stay as they were."""
    import sqlite3
    path = str(tmp_path / "old.db")
    events = _events((A, "2025-12-14T09:30:00.002Z"), (B, "2025-12-14T09:30:00.001Z"))
    version_1_store(path, events)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    store = EventStore.reader(path, db)
    assert _ids(store, newest_first=False) == [B, A]
    assert _ids(store, since="2025-12-14T09:30:00.002Z") == [A]
    assert _ids(store, until="2025-12-14T09:30:00.002Z") == [B]
    db.close()
