"""Window bounds finer than a millisecond are kept: `since` ...00.0005 leaves out an event at ...00.0001
and `until` ...01.0005 takes in one at ...01.0003. Both were floored to the millisecond first, so the
first was counted and the second left out, in the dashboard and in the compliance counts alike."""
from __future__ import annotations

import json

import pytest

import dataset
from wia_security.cli import main
from wia_security.dashboard import DashboardAggregator

SINCE, UNTIL = "2026-03-01T00:00:00.0005Z", "2026-03-01T00:00:01.0005Z"
INSIDE = ["2026-03-01T00:00:00.0005Z", "2026-03-01T09:00:00.0007+09:00", "2026-03-01T00:00:01.0003Z",
          "2026-03-01T00:00:01.000499Z"]
# One more outside event that flooring would take in than inside ones it would leave out, so a floored
# window cannot reach the right count by chance.
OUTSIDE = ["2026-03-01T00:00:00.0001Z", "2026-03-01T00:00:00.000499Z", "2026-03-01T00:00:00.0004Z",
           "2026-03-01T00:00:01.0005Z", "2026-02-28T19:00:01.0009-05:00"]


def _events() -> list[dict]:
    base = dataset.week()[0]
    return [{**base, "id": f"00000000-0000-4000-8000-{i:012d}", "timestamp": ts}
            for i, ts in enumerate(INSIDE + OUTSIDE)]


def test_sub_millisecond_bounds_are_compared_exactly():
    agg = DashboardAggregator(SINCE, UNTIL)
    assert [agg.add(e) for e in _events()] == [True] * len(INSIDE) + [False] * len(OUTSIDE)
    report = agg.report()
    assert report["inputs"]["in_window"] == len(INSIDE) and report["inputs"]["outside_window"] == len(OUTSIDE)
    # the chart's window holds every counted event (until rounded up to the millisecond)
    assert sum(b["total"] for b in report["time_series"]["buckets"]) == len(INSIDE)
    assert report["window"] == {"since": "2026-03-01T00:00:00.000Z", "until": "2026-03-01T00:00:01.001Z",
                                "bounded": True}


def test_bounds_within_one_millisecond_make_a_window():
    agg = DashboardAggregator("2026-03-01T00:00:00.0002Z", "2026-03-01T00:00:00.0008Z")
    assert agg.add({"timestamp": "2026-03-01T00:00:00.0005Z", "type": "alert", "severity": 1})
    assert not agg.add({"timestamp": "2026-03-01T00:00:00.0009Z", "type": "alert", "severity": 1})
    assert agg.report()["inputs"]["in_window"] == 1


@pytest.mark.parametrize("command", ["report", "compliance"])
def test_the_commands_count_the_same_window_from_files_and_from_the_store(command, tmp_path, capsys):
    from wia_security.connectors.sqlite import EventStore
    events = _events()
    src = tmp_path / "events.ndjson"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    db = tmp_path / "events.db"
    store = EventStore(str(db))
    try:
        assert store.insert(events)[0] == len(events)
    finally:
        store.close()
    for where in ([str(src)], ["--db", str(db)]):
        extra = ["-o", str(tmp_path / "r.html"), "--json", "-"] if command == "report" else ["--format", "json"]
        assert main([command, *where, "--since", SINCE, "--until", UNTIL, "--no-progress", *extra]) == 0
        inputs = json.loads(capsys.readouterr().out)["inputs"]
        assert inputs["in_window"] == len(INSIDE), where
        assert inputs["outside_window"] == inputs["events_read"] - len(INSIDE), where
