"""`wia-security query`: an empty time window is a usage error, and --format json streams its array."""
from __future__ import annotations

import json
import os
import sys
import tracemalloc

import pytest

from strategies import event_dicts
from wia_security.cli import main
from wia_security.connectors.sqlite import EventStore


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "s.db"
    events = event_dicts(20, seed=12)
    s = EventStore(str(path))
    s.insert(events)
    s.close()
    return str(path), events


@pytest.mark.parametrize("since, until", [
    ("1h", "2h"),                                            # relative bounds count back: 2h is before 1h
    ("2025-12-05T00:00:00Z", "2025-12-05T09:00:00+09:00"),   # the same instant: nothing is before it and after it
    ("2025-12-06T00:00:00Z", "2025-12-05T00:00:00Z"),
])
def test_a_window_that_cannot_match_is_a_usage_error(cli, store, since, until):
    """As report and the gateway's GET /v1/events refuse it; it answered 'no events match', exit 0."""
    r = cli("query", "--db", store[0], "--since", since, "--until", until)
    assert r.code == 2 and r.out == ""
    assert f"--since {since}" in r.err and "is not before --until" in r.err and "nothing could match" in r.err


def test_a_window_of_one_microsecond_is_a_window(cli, store):
    r = cli("query", "--db", store[0], "--since", "2025-12-05T00:00:00Z", "--until", "2025-12-05T09:00:00.000001+09:00",
            "--count")
    assert r.code == 0


def test_json_is_the_same_array_as_before(cli, store):
    path, events = store
    got = cli("query", "--db", path, "--format", "json", "--limit", "0", "--oldest-first")
    assert got.code == 0
    listed = json.loads(got.out)
    ndjson = [json.loads(line) for line in cli("query", "--db", path, "--format", "ndjson", "--limit", "0",
                                                "--oldest-first").out.splitlines()]
    assert listed == ndjson and len(listed) == len(events)
    assert json.loads(cli("query", "--db", path, "--format", "json", "--type", "alert", "--min-severity", "10",
                          "--max-severity", "10", "--source", "nobody").out) == []


def test_json_of_a_whole_store_does_not_hold_it_in_memory(tmp_path, monkeypatch):
    """--format json --limit 0 built a list of every event, then one string of them all: 3.8 GB of memory for a
    600 MB store of 300,000 events. Here 300 events of 40 KB (12 MB): the peak stays near one event."""
    path = str(tmp_path / "big.db")
    events = event_dicts(300, seed=13)
    for event in events:
        event.setdefault("meta", {})["note"] = "x" * 40_000
    s = EventStore(path)
    s.insert(events)
    s.close()
    monkeypatch.chdir(tmp_path)
    with open(os.devnull, "w") as devnull:
        monkeypatch.setattr(sys, "stdout", devnull)
        tracemalloc.start()
        try:
            code = main(["query", "--db", path, "--format", "json", "--limit", "0"])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert code == 0
    assert peak < 4_000_000, f"peak {peak:,} bytes for a 12 MB store"
