"""DashboardAggregator: every number checked against an independent recount of the same events."""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from statistics import mean, median

import pytest

import dataset
from wia_security.builders import AlertBuilder, IncidentBuilder, NetworkEventBuilder
from wia_security.dashboard import DashboardAggregator, aggregate, detection_times
from wia_security.severity import band


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def week() -> list[dict]:
    return dataset.week()


def test_totals_match_an_independent_count(week):
    report = aggregate(week)
    assert report["totals"]["events"] == len(week) == report["inputs"]["in_window"]
    assert report["totals"]["by_type"] == dict(Counter(e["type"] for e in week))
    bands = Counter(band(e["severity"]) for e in week)
    assert {k: v for k, v in report["totals"]["by_band"].items() if v} == dict(bands)
    assert report["totals"]["by_source"] == dict(Counter(e["source"]["name"] for e in week))
    for etype in ("alert", "incident", "threat_intel"):
        expected = Counter(e["data"]["status"] for e in week if e["type"] == etype)
        assert report["totals"]["by_status"][etype] == dict(expected)
    assert report["totals"]["mean_severity"] == round(mean(e["severity"] for e in week), 2)


def test_time_series_buckets_sum_to_total_and_cover_the_window(week):
    report = aggregate(week, since="2026-03-01T00:00:00Z", until="2026-03-08T00:00:00Z")
    series = report["time_series"]
    assert series["bucket_seconds"] == 6 * 3600                         # 7 days / 48 target -> 6 h steps
    assert len(series["buckets"]) == 28
    assert sum(b["total"] for b in series["buckets"]) == len(week)
    for b in series["buckets"]:
        assert sum(b["by_band"].values()) == b["total"]
    # each event lands in the bucket whose start is the floor of its time
    first = series["buckets"][0]["start"]
    assert first == "2026-03-01T00:00:00.000Z"
    counts = Counter(int((_ts(e["timestamp"]) - _ts(first)) // (6 * 3600)) for e in week)
    assert [b["total"] for b in series["buckets"]] == [counts.get(i, 0) for i in range(28)]


def test_window_excludes_and_counts_events_outside(week):
    since, until = "2026-03-03T00:00:00Z", "2026-03-05T00:00:00Z"
    report = aggregate(week, since=since, until=until)
    inside = [e for e in week if _ts(since) <= _ts(e["timestamp"]) < _ts(until)]
    assert report["totals"]["events"] == len(inside)
    assert report["inputs"]["outside_window"] == len(week) - len(inside)
    assert report["window"] == {"since": "2026-03-03T00:00:00.000Z", "until": "2026-03-05T00:00:00.000Z", "bounded": True}


def test_top_techniques_and_tactics(week):
    report = aggregate(week)
    expected = Counter()
    for e in week:
        ids = set()
        if "mitre" in e:
            ids.add(e["mitre"].get("sub_technique") or e["mitre"]["technique"])
        for ttp in e["data"].get("ttps", []) if e["type"] == "threat_intel" else []:
            ids.add(ttp["technique"])
        expected.update(ids)
    top = report["attack"]["top_techniques"]
    assert [(t["id"], t["count"]) for t in top] == sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert top[0]["name"]                                   # names come from ATT&CK v18.1
    assert report["attack"]["distinct_techniques"] == len(expected)
    tactic_counts = Counter()
    for e in week:
        tactics = {e["mitre"]["tactic"]} if "mitre" in e and "tactic" in e["mitre"] else set()
        tactics |= {t["tactic"] for t in e["data"].get("ttps", []) if "tactic" in t} if e["type"] == "threat_intel" else set()
        tactic_counts.update(tactics)
    assert {t["id"]: t["count"] for t in report["attack"]["top_tactics"]} == dict(
        sorted(tactic_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10])


def test_mttd_mttr_and_first_action_follow_the_documented_definitions(week):
    report = aggregate(week)
    detect, resolve, act = [], [], []
    for e in week:
        d = e["data"]
        if e["type"] == "alert" and "first_seen" in d:
            detect.append(_ts(e["timestamp"]) - _ts(d["first_seen"]))
        if e["type"] == "incident":
            detected = min([_ts(d["created_at"])] + [_ts(t["timestamp"]) for t in d.get("timeline", [])])
            onset = min(_ts(i["first_seen"]) for i in d["iocs"])
            detect.append(detected - onset)
            if "closed_at" in d:
                resolve.append(_ts(d["closed_at"]) - detected)
            act.append(min(_ts(a["timestamp"]) for a in d["response_actions"]) - detected)
    r = report["response"]
    assert r["mttd"]["samples"] == len(detect) and r["mttd"]["mean_seconds"] == pytest.approx(mean(detect), abs=1e-3)
    assert r["mttd"]["median_seconds"] == pytest.approx(median(detect), abs=1e-3)
    assert r["mttr"]["samples"] == len(resolve) > 0
    assert r["mttr"]["mean_seconds"] == pytest.approx(mean(resolve), abs=1e-3)
    assert r["time_to_first_action"]["mean_seconds"] == pytest.approx(mean(act), abs=1e-3)


def test_incident_detection_uses_earliest_of_created_at_and_timeline():
    e = (IncidentBuilder().title("x").timestamp("2026-01-01T12:00:00Z")
         .timeline("first alert", "2026-01-01T10:30:00Z").ioc("ip", "203.0.113.9", first_seen="2026-01-01T10:00:00Z")
         .dates(created_at="2026-01-01T11:00:00Z", closed_at="2026-01-01T13:30:00Z").build().to_dict())
    onset, detected = detection_times(e)
    assert (detected - onset) / 1000 == 30 * 60
    report = aggregate([e])
    assert report["response"]["mttd"]["mean_seconds"] == 1800
    assert report["response"]["mttr"]["mean_seconds"] == 3 * 3600


def test_clock_skew_is_counted_not_averaged():
    # first_seen after the alert was raised: a negative duration is reported apart, never averaged in
    e = AlertBuilder().title("x").timestamp("2026-01-01T10:00:00Z").seen("2026-01-01T10:05:00Z").build().to_dict()
    report = aggregate([e])
    assert report["response"]["mttd"] == {"samples": 0, "mean_seconds": None, "median_seconds": None,
                                          "skipped_negative": 1}


def test_events_without_usable_timestamp_are_counted():
    good = NetworkEventBuilder().src("10.0.0.1").dst("10.0.0.2").protocol("TCP").build().to_dict()
    agg = DashboardAggregator()
    agg.add(good)
    agg.add({"id": "broken", "type": "alert", "timestamp": "yesterday"})
    report = agg.report()
    assert report["inputs"] == {"events_read": 2, "in_window": 1, "outside_window": 0, "without_timestamp": 1}


def test_bad_window_is_a_clear_error():
    with pytest.raises(ValueError, match="since: 'last tuesday'"):
        DashboardAggregator(since="last tuesday")


def test_empty_input_gives_an_empty_but_complete_report():
    report = aggregate([])
    assert report["totals"]["events"] == 0
    assert report["response"]["mttr"]["mean_seconds"] is None
    assert report["window"]["since"] is None


def test_an_integer_severity_beyond_float_range_is_not_a_crash():
    """JSON integers have no size limit (json.loads reads 10**400 exactly); both APIs take unvalidated
    events, and math.isfinite / float() raised OverflowError on it. It is out of range like inf: in the
    emergency band, left out of the mean, and max_severity 0 in the compliance report as inf is."""
    from wia_security.compliance import ComplianceTracker
    huge = {"type": "alert", "id": "x", "timestamp": "2026-01-01T00:00:00Z", "severity": 10**400,
            "source": {"name": "s"}, "data": {"status": "new"}}
    normal = dict(huge, id="y", severity=4)
    report = DashboardAggregator().add_all([huge, normal]).report()
    assert report["totals"]["by_band"]["emergency"] == 1 and report["totals"]["mean_severity"] == 4
    controls = ComplianceTracker(["nist-sp800-53r5"]).add_all([huge]).report()["frameworks"][0]["controls"]
    assert {c["id"]: (c["max_severity"], c["open_findings"]) for c in controls} == {"SI-4": (0.0, 1), "AU-6": (0.0, 1)}
