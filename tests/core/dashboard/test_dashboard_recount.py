"""DashboardAggregator against a naive recount over random corpora with hostile timestamps and values.

The recount below shares no code with the aggregator: its own timestamp parsing, band thresholds,
ranking, bucket arithmetic and MTTD/MTTR rules, written straight from docs/dashboard.md.
"""
from __future__ import annotations

import copy
import random
import re
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import mean, median
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))          # tests/ for strategies
from strategies import event_dicts  # noqa: E402

from wia_security.attack import table  # noqa: E402
from wia_security.dashboard import DashboardAggregator  # noqa: E402
from wia_security.dashboard.aggregator import LIST_LIMIT  # noqa: E402

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
BANDS = ("informational", "low", "medium", "high", "critical", "emergency")
STEPS = [60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400, 604800] + [604800 * 2 ** k for k in range(1, 40)]
ODD_TIMES = [
    "2024-02-29T23:59:59.999Z", "2024-03-01T00:00:00.000+14:00", "2023-12-31T23:59:59.9999999-12:00",
    "2024-01-01T00:00:00Z", "2026-01-01t00:00:00.5z", "2025-06-30T12:00:00.123456+05:30",
    "1969-12-31T23:59:59.9995Z", "1970-01-01T00:00:00.0001Z", "2000-02-29T00:00:00+23:59",
    "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "2025-12-31T23:59:60Z", "2025-02-29T00:00:00Z",
    "yesterday", "", None, 1767225600000,
]


def parse_ms(value: Any) -> int | None:
    """Epoch ms (floor) of an RFC 3339 string, parsed here by regex (not by wia_security.timeutil)."""
    if not isinstance(value, str):
        return None
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)?", value.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        moment = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=timezone.utc)
    except ValueError:
        return None
    us = int((frac or "0")[:6].ljust(6, "0"))
    offset = 0 if tz in (None, "Z", "z") else (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 60 + int(tz[4:6]))
    total_us = (moment - EPOCH).days * 86400 * 10**6 + (moment - EPOCH).seconds * 10**6 + us - offset * 60 * 10**6
    return total_us // 1000


def band_of(severity: Any) -> str:
    if isinstance(severity, bool) or not isinstance(severity, (int, float)) or severity != severity:
        return "unknown"
    for i, upper in enumerate((1, 3, 5, 7, 9)):
        if severity < upper:
            return BANDS[i]
    return "emergency"


def ranked(counter: Counter) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def iso(ms: int) -> str:
    ms = min(max(ms, -62135596800000), 253402300799999)
    t = EPOCH + timedelta(milliseconds=ms)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond // 1000:03d}Z"


def techniques_of(e: dict) -> set[str]:
    out = set()
    m = e.get("mitre")
    if isinstance(m, dict):                 # ids as ATT&CK spells them: blanks around dropped (a trailing "\n" is valid)
        usable = [t.strip() for t in (m.get("sub_technique"), m.get("technique")) if isinstance(t, str) and t.strip()]
        if usable:
            out.add(usable[0].upper())
    if e.get("type") == "threat_intel" and isinstance(e.get("data"), dict) and isinstance(e["data"].get("ttps"), list):
        out |= {t["technique"].strip().upper() for t in e["data"]["ttps"] if isinstance(t, dict)
                and isinstance(t.get("technique"), str) and t["technique"].strip()}
    return out


def tactics_of(e: dict) -> set[str]:
    out = set()
    m = e.get("mitre")
    if isinstance(m, dict) and isinstance(m.get("tactic"), str) and m["tactic"].strip():
        out.add(m["tactic"].strip().upper())
    if e.get("type") == "threat_intel" and isinstance(e.get("data"), dict) and isinstance(e["data"].get("ttps"), list):
        out |= {t["tactic"].strip().upper() for t in e["data"]["ttps"] if isinstance(t, dict)
                and isinstance(t.get("tactic"), str) and t["tactic"].strip()}
    if not out:
        for tech in techniques_of(e):
            found = table().technique(tech)
            if found is not None and len(found.tactic_ids) == 1:
                out.add(found.tactic_ids[0])
    return out


def durations(events: list[dict]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"mttd": [], "mttr": [], "first": []}
    neg = Counter()

    def put(name: str, start: int | None, end: int | None) -> None:
        if start is not None and end is not None:
            if end < start:
                neg[name] += 1
            else:
                out[name].append(end - start)

    for e in events:
        d = e.get("data") if isinstance(e.get("data"), dict) else {}
        lst = lambda v: v if isinstance(v, list) else []  # noqa: E731
        if e.get("type") == "alert":
            put("mttd", parse_ms(d.get("first_seen")), parse_ms(e.get("timestamp")))
        elif e.get("type") == "incident":
            onsets = [parse_ms(i.get("first_seen")) for i in lst(d.get("iocs")) if isinstance(i, dict)]
            onsets = [t for t in onsets if t is not None]
            marks = [parse_ms(d.get("created_at"))] + [parse_ms(t.get("timestamp")) for t in lst(d.get("timeline"))
                                                       if isinstance(t, dict)]
            marks = [t for t in marks if t is not None]
            detected = min(marks) if marks else parse_ms(e.get("timestamp"))
            put("mttd", min(onsets) if onsets else None, detected)
            put("mttr", detected, parse_ms(d.get("closed_at")))
            acts = [parse_ms(a.get("timestamp")) for a in lst(d.get("response_actions")) if isinstance(a, dict)]
            acts = [t for t in acts if t is not None]
            put("first", detected, min(acts) if acts else None)
    out["negative"] = neg  # type: ignore[assignment]
    return out


def summary(values: list[int], negative: int) -> dict[str, Any]:
    if not values:
        return {"samples": 0, "mean_seconds": None, "median_seconds": None, "skipped_negative": negative}
    return {"samples": len(values), "mean_seconds": round(sum(values) / len(values) / 1000, 3),
            "median_seconds": round(median(values) / 1000, 3), "skipped_negative": negative}


def listed(counter: Counter) -> tuple[dict, dict | None]:
    r = ranked(counter)
    rest = r[LIST_LIMIT:]
    return dict(r[:LIST_LIMIT]), ({"keys": len(rest), "events": sum(n for _, n in rest), "exact": True,
                                   "max_undercount": 0} if rest else None)


def recount(events: list[dict], since: str | None = None, until: str | None = None) -> dict[str, Any]:
    lo, hi = parse_ms(since) if since else None, parse_ms(until) if until else None
    inside, outside, untimed = [], 0, 0
    for e in events:
        ts = parse_ms(e.get("timestamp")) if isinstance(e, dict) else None
        if ts is None:
            untimed += 1
        elif (lo is not None and ts < lo) or (hi is not None and ts >= hi):
            outside += 1
        else:
            inside.append((ts, e))
    ev = [e for _, e in inside]
    by_type = Counter(e["type"] if isinstance(e.get("type"), str) else "unknown" for e in ev)
    by_source = Counter(e["source"]["name"] if isinstance(e.get("source"), dict) and isinstance(e["source"].get("name"), str)
                        else "unknown" for e in ev)
    by_status: dict[str, Counter] = {}
    for e in ev:
        if e.get("type") in ("alert", "incident", "threat_intel") and isinstance(e.get("data"), dict) \
                and isinstance(e["data"].get("status"), str):
            by_status.setdefault(e["type"], Counter())[e["data"]["status"]] += 1
    bands = Counter(band_of(e.get("severity")) for e in ev)
    sev = [e["severity"] for e in ev if isinstance(e.get("severity"), (int, float)) and not isinstance(e["severity"], bool)]
    techs, tacts = Counter(), Counter()
    for e in ev:
        techs.update(techniques_of(e))
        tacts.update(tactics_of(e))
    times = [t for t, _ in inside]
    start = lo if lo is not None else (min(times) if times else 0)
    end = hi if hi is not None else (max(times) + 1 if times else start + 1)
    end = max(end, start + 1)
    step = next(s for s in STEPS if end - start <= s * 1000 * 48)
    origin = (start // (step * 1000)) * step * 1000
    n = -(-(end - origin) // (step * 1000))
    buckets = [{"start": iso(origin + i * step * 1000), "total": 0, "by_band": dict.fromkeys(BANDS, 0)} for i in range(n)]
    for ts, e in inside:
        b = buckets[(ts - origin) // (step * 1000)]
        b["total"] += 1
        name = band_of(e.get("severity"))
        b["by_band"][name] = b["by_band"].get(name, 0) + 1
    d = durations(ev)
    not_listed = {}
    out_type, not_listed["by_type"] = listed(by_type)
    out_source, not_listed["by_source"] = listed(by_source)
    out_status = {}
    for t, c in by_status.items():
        out_status[t], not_listed[f"by_status.{t}"] = listed(c)
    attack = table()
    return {
        "window": {"since": iso(start) if times or lo is not None else None,
                   "until": iso(end) if times or hi is not None else None, "bounded": lo is not None or hi is not None},
        "inputs": {"events_read": len(events), "in_window": len(ev), "outside_window": outside, "without_timestamp": untimed},
        "totals": {"events": len(ev), "mean_severity": round(mean(sev), 2) if sev else None,
                   "by_type": out_type, "by_band": {b: bands.get(b, 0) for b in BANDS}
                   | ({"unknown": bands["unknown"]} if bands.get("unknown") else {}),
                   "by_source": out_source, "by_status": out_status,
                   "not_listed": {k: v for k, v in not_listed.items() if v}},
        "attack": {"version": attack.version,
                   "top_tactics": [{"id": k, "name": attack.tactic(k).name if attack.tactic(k) else None, "count": v}
                                   for k, v in ranked(tacts)[:10]],
                   "top_techniques": [{"id": k, "name": attack.technique(k).name if attack.technique(k) else None,
                                       "tactics": list(attack.technique(k).tactic_ids) if attack.technique(k) else [],
                                       "count": v} for k, v in ranked(techs)[:10]],
                   "distinct_techniques": len(techs), "distinct_techniques_exact": True},
        "response": {"mttd": summary(d["mttd"], d["negative"]["mttd"]), "mttr": summary(d["mttr"], d["negative"]["mttr"]),
                     "time_to_first_action": summary(d["first"], d["negative"]["first"])},
        "time_series": {"bucket_seconds": step, "buckets": buckets},
    }


def hostile(events: list[dict], rnd: random.Random) -> list[dict]:
    """Odd timestamps, lenient-mode nulls, missing optional fields, duplicate ids, unicode/empty/numeric-like
    names and ties, in random order."""
    out = []
    for e in events:
        e = copy.deepcopy(e)
        roll = rnd.random()
        if roll < 0.15:
            e["timestamp"] = rnd.choice(ODD_TIMES)
        if rnd.random() < 0.1:
            for key in ("severity", "source", "mitre", "data"):
                if rnd.random() < 0.4:
                    e[key] = None                           # what lenient mode reads as absent
        if rnd.random() < 0.1:
            e.pop(rnd.choice(["mitre", "severity", "source"]), None)
        if rnd.random() < 0.1 and isinstance(e.get("source"), dict):
            e["source"]["name"] = rnd.choice(["", "42", "007", "__proto__", "constructor", "\u202eevil", "é", "e\u0301",
                                              "😀", "\U0001F600\U0001F600", "a" * 500])
        if rnd.random() < 0.05 and out:
            e["id"] = out[-1].get("id")                     # duplicate ids count as often as they appear
        if isinstance(e.get("data"), dict) and rnd.random() < 0.1:
            for key in ("first_seen", "created_at", "closed_at"):
                if key in e["data"]:
                    e["data"][key] = rnd.choice(ODD_TIMES)
        out.append(e)
    rnd.shuffle(out)
    return out


def _strip(report: dict) -> dict:
    report = dict(report)
    report.pop("generated_at")
    report.pop("format")
    report.pop("format_version")
    return report


def _long_names_cut(expected: dict) -> dict:
    """The aggregator cuts names at 200 characters (199 + an ellipsis); apply the same to the recount."""
    cut = lambda k: k if len(k) <= 200 else k[:199] + "\u2026"  # noqa: E731
    t = expected["totals"]
    t["by_source"] = {cut(k): v for k, v in t["by_source"].items()}
    return expected


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_wild_corpus_matches_the_recount(seed):
    rnd = random.Random(seed)
    events = hostile(event_dicts(600, seed=seed, wild=True), rnd)
    got = _strip(DashboardAggregator().add_all(events).report())
    assert got == _long_names_cut(recount(events))


@pytest.mark.parametrize("since,until", [("2019-01-01T00:00:00Z", "2019-01-01T06:00:00Z"),
                                          ("2018-02-28T12:00:00+14:00", "2021-03-01T00:00:00.5-12:00"),
                                          (None, "2020-01-01T00:00:00Z"), ("2024-02-29T00:00:00Z", None)])
def test_windows_match_the_recount(since, until):
    rnd = random.Random(11)
    events = hostile(event_dicts(800, seed=11, wild=True), rnd)
    got = _strip(DashboardAggregator(since, until).add_all(events).report())
    assert got == _long_names_cut(recount(events, since, until))


def test_the_report_does_not_depend_on_event_order():
    """Ties in every top-N and breakdown are broken by key, so shuffled input gives the same report."""
    events = hostile(event_dicts(500, seed=5, wild=True), random.Random(5))
    for e in events[::3]:                                    # many exact ties
        if isinstance(e.get("source"), dict):
            e["source"]["name"] = random.Random(id(e) % 7).choice(["b", "a", "c", "10", "9"])
    first = _strip(DashboardAggregator().add_all(events).report())
    for seed in range(3):
        random.Random(seed).shuffle(events)
        assert _strip(DashboardAggregator().add_all(events).report()) == first


def test_far_apart_years_give_few_buckets_not_half_a_million():
    """Years 0001 and 9999 in one corpus: was a crash (year 0) or 521,000 weekly buckets."""
    events = [{"id": str(i), "type": "alert", "timestamp": t, "severity": 5, "source": {"name": "s"}}
              for i, t in enumerate(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "2026-03-01T00:00:00Z"])]
    got = _strip(DashboardAggregator().add_all(events).report())
    assert got == recount(events)
    series = got["time_series"]
    assert len(series["buckets"]) <= 49 and sum(b["total"] for b in series["buckets"]) == 3
    assert series["buckets"][0]["start"] == "0001-01-01T00:00:00.000Z"       # clamped, 4-digit year
    assert got["window"]["until"] == "9999-12-31T23:59:59.999Z"


def test_milliseconds_are_floored_exactly():
    """int(timestamp() * 1000) was off by one ms for about 1 timestamp in 5 (float error)."""
    from wia_security.dashboard.aggregator import _ms, iso_ms
    rnd = random.Random(3)
    for _ in range(5000):
        ms = rnd.randint(-62135596800000, 253402300799999)
        assert _ms(iso(ms)) == ms
        assert _ms(iso(ms)[:-1] + "4999Z") == ms                           # sub-ms digits floor
        assert iso_ms(ms) == iso(ms)                                       # 4-digit years, exact ms


def test_an_empty_or_inverted_window_is_refused():
    with pytest.raises(ValueError, match="not before"):
        DashboardAggregator(since="2026-03-02T00:00:00Z", until="2026-03-01T00:00:00Z")
    with pytest.raises(ValueError, match="not before"):
        DashboardAggregator(since="2026-03-01T00:00:00+01:00", until="2026-02-28T23:00:00Z")   # same instant


def test_non_dict_and_wrongly_typed_fields_do_not_crash():
    """The Python API takes unvalidated dicts: wrongly typed arrays and names are skipped, not fatal."""
    agg = DashboardAggregator()
    agg.add_all([None, "x", 3, {"timestamp": "2026-01-01T00:00:00Z", "type": ["alert"], "source": "s", "severity": "9",
                                "data": {"iocs": 5, "timeline": "t", "response_actions": {"a": 1}, "ttps": 7}},
                 {"timestamp": "2026-01-01T00:00:00Z", "type": "incident", "data": {"iocs": 5, "timeline": "t",
                                                                                    "response_actions": 3}},
                 {"timestamp": "2026-01-01T00:00:00Z", "type": "threat_intel", "severity": float("nan"),
                  "data": {"ttps": [None, {"technique": 5}, {"technique": ""}]}, "mitre": {"technique": ["T1"]}}])
    report = agg.report()
    assert report["inputs"] == {"events_read": 6, "in_window": 3, "outside_window": 0, "without_timestamp": 3}
    assert report["totals"]["by_type"] == {"incident": 1, "threat_intel": 1, "unknown": 1}
    assert report["totals"]["by_band"]["unknown"] == 3 and report["totals"]["mean_severity"] is None
