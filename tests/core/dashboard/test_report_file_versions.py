"""Event files count each event once, as its newest version, as the store does: an export holding an incident
as opened, contained and closed, or two exports that overlap, gave the dashboard and the compliance tracker
every version (three incidents, two of them open findings at severity 8, and the closed one's evidence listed
beside its own older copies) while the same events from the store counted once. The rule is the store's: a
later `timestamp` wins, or the same instant with a later incident `data.updated_at`; a repeat changes nothing.

The oracle below keeps the newest version by its own parsing of the times (no wia_security code), then feeds
the aggregator and the tracker, which other tests check against their own recounts."""
from __future__ import annotations

import copy
import json
import random
import re
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))          # tests/ for strategies
from strategies import event_dicts, events as event_strategy  # noqa: E402

from wia_security.builders import AlertBuilder, IncidentBuilder  # noqa: E402
from wia_security.cli import main  # noqa: E402
from wia_security.cli.report import RejectLog, Versions, newest_versions  # noqa: E402
from wia_security.compliance import ComplianceTracker  # noqa: E402
from wia_security.connectors.sqlite import EventStore  # noqa: E402
from wia_security.dashboard import DashboardAggregator  # noqa: E402

INCIDENT_ID = "11111111-1111-4111-8111-111111111111"
ALERT_ID = "22222222-2222-4222-8222-222222222222"
MOVED_ID = "33333333-3333-4333-8333-333333333333"
WINDOW = ["--since", "2026-03-01T00:00:00Z", "--until", "2026-03-02T00:00:00Z"]


def _incident(ts: str, status: str) -> dict:
    return (IncidentBuilder().id(INCIDENT_ID).timestamp(ts).severity(8).title("ransomware").category("ransomware")
            .status(status).priority("critical").build().to_dict())


def _alert(event_id: str, ts: str, status: str) -> dict:
    return AlertBuilder().id(event_id).timestamp(ts).severity(9).title("x").status(status).build().to_dict()


#: Two exports that overlap (the alert's first version is in both), holding every version of three events.
MONDAY = [_incident("2026-03-01T01:00:00Z", "new"), _alert(ALERT_ID, "2026-03-01T02:00:00Z", "new"),
          _alert(MOVED_ID, "2026-03-01T03:00:00Z", "new"), _incident("2026-03-01T04:00:00Z", "containing")]
TUESDAY = [_alert(ALERT_ID, "2026-03-01T02:00:00Z", "new"), _incident("2026-03-01T05:00:00Z", "closed"),
           _alert(ALERT_ID, "2026-03-01T06:00:00Z", "resolved"), _alert(MOVED_ID, "2026-03-03T00:00:00Z", "resolved"),
           _incident("2026-03-01T01:00:00Z", "new")]                # an old version arriving late


def _write(path: Path, events: list[dict]) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), "utf-8")
    return str(path)


def _twin(argv: list[str], tmp_path: Path, name: str) -> dict:
    out = tmp_path / f"{name}.html"
    assert main(["report", *argv, "-o", str(out), "--no-progress"]) == 0
    return json.loads(out.with_suffix(".json").read_text("utf-8"))


def _numbers(twin: dict) -> dict:
    return {k: v for k, v in twin.items() if k not in ("generated_at", "inputs")}


def test_versions_in_files_count_once_as_the_newest_as_from_the_store(tmp_path):
    files = [_write(tmp_path / "monday.ndjson", MONDAY), _write(tmp_path / "tuesday.ndjson", TUESDAY)]
    store = EventStore(str(tmp_path / "events.db"))
    store.insert(MONDAY)
    store.insert(TUESDAY)
    store.close()
    from_files = _twin([*files, *WINDOW], tmp_path, "files")
    from_store = _twin(["--db", str(tmp_path / "events.db"), *WINDOW], tmp_path, "store")
    assert _numbers(from_files) == _numbers(from_store)
    assert from_files["inputs"] == {"events_read": 9, "in_window": 2, "outside_window": 1, "without_timestamp": 0,
                                    "duplicates": 6, "rejected": 0}
    assert from_store["inputs"] == {"events_read": 2, "in_window": 2, "outside_window": 0, "without_timestamp": 0,
                                    "duplicates": 0, "rejected": 0}            # the store is asked for the window only
    assert from_files["totals"]["by_status"] == {"alert": {"resolved": 1}, "incident": {"closed": 1}}
    frameworks = {f["id"]: f for f in from_files["compliance"]["frameworks"]}
    assert all(f["controls_attention"] == 0 for f in frameworks.values())       # the closed incident is no finding
    csf = {c["id"]: c for c in frameworks["nist-csf-2.0"]["controls"]}
    assert csf["DE.AE-08"]["evidence"] == [INCIDENT_ID]                           # once, not three times


def test_compliance_from_files_counts_each_event_once(tmp_path, capsys):
    files = [_write(tmp_path / "monday.ndjson", MONDAY), _write(tmp_path / "tuesday.ndjson", TUESDAY)]
    assert main(["compliance", *files, *WINDOW, "--format", "json", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["events"] == 2
    assert report["inputs"] == {"events_read": 9, "in_window": 2, "outside_window": 1, "without_timestamp": 0,
                                "duplicates": 6, "rejected": 0}
    sp = {c["id"]: c for c in next(f for f in report["frameworks"] if f["id"] == "nist-sp800-53r5")["controls"]}
    assert sp["IR-4"]["evidence_count"] == 2 and sp["IR-4"]["open_findings"] == 0
    assert "9 events read: 2 in window, 1 outside it, 6 older versions or repeats of another event (same id)" in err


def test_the_temporary_store_is_removed(tmp_path, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    files = [_write(tmp_path / "monday.ndjson", MONDAY)]
    _twin(files, tmp_path, "r")
    assert list(temp.iterdir()) == []


# --- the oracle -------------------------------------------------------------------------------------------------
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)\n?")


def _instant_us(text: Any) -> int | None:
    """Epoch microseconds of an RFC 3339 time (fraction floored to 6 digits), parsed here."""
    m = _TIME.fullmatch(text) if isinstance(text, str) else None
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    days = (datetime(int(y), int(mo), int(d)) - datetime(1970, 1, 1)).days
    offset = 0 if zone in "Zz" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 60 + int(zone[4:6]))
    return (((days * 24 + int(h)) * 60 + int(mi) - offset) * 60 + int(s)) * 10**6 + int((frac or "0")[:6].ljust(6, "0"))


def _version(event: dict) -> tuple[int, int]:
    data = event.get("data")
    updated = _instant_us(data.get("updated_at")) if event["type"] == "incident" and isinstance(data, dict) else None
    return _instant_us(event["timestamp"]), -(2 ** 63) if updated is None else updated


def _newest(events: list[dict]) -> list[dict]:
    kept: dict[str, dict] = {}
    for event in events:
        if event["id"] not in kept or _version(event) > _version(kept[event["id"]]):
            kept[event["id"]] = event
    return list(kept.values())


STATUSES = {"alert": ["new", "investigating", "resolved", "false_positive", "closed"],
            "incident": ["new", "triaging", "containing", "recovering", "closed"]}


def _with_versions(events: list[dict], rnd: random.Random) -> list[dict]:
    """Each event, and for some of them later, earlier and same-instant versions and exact repeats, shuffled."""
    out = []
    for event in events:
        out.append(event)
        for _ in range(rnd.choice([0, 0, 1, 2, 3])):
            other = copy.deepcopy(event)
            kind = rnd.random()
            if kind < 0.6:
                us = _instant_us(event["timestamp"]) + rnd.choice([-1, 1]) * rnd.choice([1, 999, 10**6, 86400 * 10**6])
                if -62135596800 * 10**6 <= us < 253402300800 * 10**6:
                    t = datetime(1970, 1, 1) + timedelta(microseconds=us)
                    other["timestamp"] = (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:"
                                          f"{t.second:02d}.{t.microsecond:06d}Z")
            if isinstance(other.get("data"), dict) and other["type"] in ("alert", "incident") and rnd.random() < 0.5:
                other["data"]["status"] = rnd.choice(STATUSES[other["type"]])
            if other["type"] == "incident" and isinstance(other.get("data"), dict) and kind >= 0.6:
                other["data"]["updated_at"] = rnd.choice(["2026-03-01T00:00:00Z", "2026-03-02T00:00:00+05:00",
                                                          "2025-01-01T00:00:00.000001Z"])
            other["severity"] = rnd.choice([0, 3.5, 7, 9.9])
            out.append(other)
    rnd.shuffle(out)
    return out


def _comparable(compliance: dict) -> dict:
    """Evidence lists hold the first 25 ids in the order events are fed: compared as sets when complete."""
    compliance = copy.deepcopy(compliance)
    for fw in compliance["frameworks"]:
        for row, key, count in [(c, "evidence", "evidence_count") for c in fw["controls"]] + \
                               [(c, "events", "event_count") for c in fw["relevant"]]:
            row[key] = sorted(row[key]) if row[count] <= 25 else None
    return compliance


def _spelled(us: int, offset_minutes: int = 0) -> str:
    t = datetime(1970, 1, 1) + timedelta(microseconds=us, minutes=offset_minutes)
    zone = "Z" if not offset_minutes else f"{'+' if offset_minutes > 0 else '-'}{abs(offset_minutes) // 60:02d}:" \
                                          f"{abs(offset_minutes) % 60:02d}"
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}{zone}"


@pytest.mark.parametrize("seed,window", [(1, None), (2, (0.2, 0.8, 0)), (3, (0.1, 0.6, 14 * 60))])
def test_random_versions_in_several_files_match_the_oracle(tmp_path, seed, window):
    rnd = random.Random(seed)
    corpus = _with_versions(event_dicts(250, seed=seed), rnd)
    parts: list[list[dict]] = [[], [], []]
    for event in corpus:
        rnd.choice(parts).append(event)
    files = [_write(tmp_path / f"part{i}.ndjson", part) for i, part in enumerate(parts)]
    bounds = None
    if window:                  # between two of the corpus's own instants, whatever years the strategy draws
        instants = sorted(_instant_us(e["timestamp"]) for e in corpus)
        bounds = tuple(_spelled(instants[int(q * len(instants))], window[2]) for q in window[:2])
    twin = _twin([*files, *(["--since", bounds[0], "--until", bounds[1]] if bounds else [])], tmp_path, "r")
    newest = _newest([event for part in parts for event in part])      # in the order read: ties keep the first
    expected = DashboardAggregator(*(bounds or (None, None)))
    tracker = ComplianceTracker()
    for event in newest:
        if expected.add(event):
            tracker.add(event)
    assert twin["inputs"]["duplicates"] == len(corpus) - len(newest) > 0
    assert twin["inputs"]["events_read"] == len(corpus) and twin["inputs"]["rejected"] == 0
    assert twin["totals"]["events"] > 50
    assert _numbers(twin) == {**_numbers(expected.report()), "title": twin["title"], "tool_version": twin["tool_version"],
                              "compliance": twin["compliance"]}
    assert _comparable(twin["compliance"]) == _comparable(tracker.report())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_strategy(), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_newest_versions_keeps_what_the_oracle_keeps(events, rnd):
    corpus = _with_versions(events, rnd)
    for event in rnd.sample(corpus, k=min(3, len(corpus))):      # the same id across unrelated events too
        event["id"] = corpus[0]["id"]
    counts = Versions()
    kept = list(newest_versions(iter(copy.deepcopy(corpus)), RejectLog(), counts))
    want = _newest(corpus)
    assert sorted(json.dumps(e, sort_keys=True) for e in kept) == sorted(json.dumps(e, sort_keys=True) for e in want)
    assert counts.read == len(corpus) and counts.duplicates == len(corpus) - len(want)
